;; sign-ext: uses i32.extend8_s (the sign-extension proposal) in validate_block.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    (if (i32.ne (i32.extend8_s (i32.const 0xff)) (i32.const -1)) (then unreachable))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
