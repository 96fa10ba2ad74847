;; bad-result: with the default (all-empty, 38-byte) params it returns a pointer and length
;; outside memory; with any other params it returns bytes that are not a ValidationResult
;; (a compact length announcing more bytes than follow).
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (data (i32.const 16) "\ff\ff\ff")
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (if (result i64) (i32.eq (local.get $len) (i32.const 38))
      ;; len 100 at 0xffff_ff00
      (then (i64.const 0x64_ffff_ff00))
      ;; len 3 at 16
      (else (i64.const 0x3_0000_0010)))))
