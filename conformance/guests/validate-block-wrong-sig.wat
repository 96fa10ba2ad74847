;; validate-block-wrong-sig: validate_block takes (i32) and returns i32.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func (export "validate_block") (param i32) (result i32) (i32.const 0)))
