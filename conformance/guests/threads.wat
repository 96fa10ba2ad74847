;; threads: a shared memory and an atomic read-modify-write.
(module
  (memory (export "memory") 2 2 shared)
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    (drop (i32.atomic.rmw.add (i32.const 64) (i32.const 1)))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
