;; mem-import-env-other-name: imports its memory as env.mem (not env.memory).
(module
  (import "env" "mem" (memory 2))
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))
