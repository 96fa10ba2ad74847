;; reference-types: table.get and ref.is_null on a funcref table.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (table 1 funcref)
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    (if (i32.eqz (ref.is_null (table.get 0 (i32.const 0)))) (then unreachable))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
