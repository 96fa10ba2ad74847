;; mem-import-and-export: imports foo.bar memory and also exports it as "memory".
(module
  (import "foo" "bar" (memory 2))
  (export "memory" (memory 0))
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
