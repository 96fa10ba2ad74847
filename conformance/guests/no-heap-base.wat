;; no-heap-base: a valid validate_block, but no __heap_base export.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
