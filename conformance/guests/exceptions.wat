;; exceptions: throws a tag and catches it with try_table.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (tag $e)
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    (block $caught (try_table (catch_all $caught) (throw $e)))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
