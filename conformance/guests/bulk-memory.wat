;; bulk-memory: memory.fill and memory.copy in validate_block.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    (memory.fill (i32.const 100) (i32.const 7) (i32.const 8))
    (memory.copy (i32.const 200) (i32.const 100) (i32.const 8))
    (if (i32.ne (i32.load8_u (i32.const 207)) (i32.const 7)) (then unreachable))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
