;; oob-load: loads from past the end of memory.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func (export "validate_block") (param i32 i32) (result i64)
    (i64.load (i32.const 131070))))
