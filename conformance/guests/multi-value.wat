;; multi-value: a function returning two values, and a block with a result pair.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func $pair (result i32 i32) (i32.const 1) (i32.const 2))
  (func (export "validate_block") (param i32 i32) (result i64)
    (if (i32.ne (i32.add (call $pair)) (i32.const 3)) (then unreachable))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
