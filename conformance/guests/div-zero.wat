;; div-zero: integer division by zero traps.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func (export "validate_block") (param $p i32) (param $l i32) (result i64)
    (i64.extend_i32_u (i32.div_u (i32.const 1) (i32.sub (local.get $l) (local.get $l))))))
