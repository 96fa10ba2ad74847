;; multi-memory: a second, unexported memory written and read.
(module
  (memory $main (export "memory") 2)
  (memory $other 1)
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (memory $main) (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    (i32.store $other (i32.const 0) (i32.const 5))
    (if (i32.ne (i32.load $other (i32.const 0)) (i32.const 5)) (then unreachable))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
