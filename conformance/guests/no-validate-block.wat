;; no-validate-block: exports memory and __heap_base but no validate_block.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func (export "validate") (param i32 i32) (result i64) (i64.const 0)))
