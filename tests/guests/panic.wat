;; panic: reports a panic through the panic handler, as newer runtimes do; the verdict is
;; Invalid and carries the message.
(module
  (import "env" "ext_panic_handler_abort_on_panic_version_1" (func $abort (param i64)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (data (i32.const 16) "attempt to divide by zero")
  (func (export "validate_block") (param i32 i32) (result i64)
    (call $abort (i64.or (i64.shl (i64.const 25) (i64.const 32)) (i64.const 16)))
    unreachable))
