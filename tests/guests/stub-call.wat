;; stub-call: calls a host function this host does not implement (storage access), which
;; must give Internal, not Invalid.
(module
  (import "env" "ext_storage_get_version_1" (func $get (param i64) (result i64)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (func (export "validate_block") (param i32 i32) (result i64)
    (call $get (i64.const 0))))
