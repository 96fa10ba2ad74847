;; log-and-hash: calls supported host functions the way a runtime does: logs, hashes
;; parent_head with blake2_256 and returns the digest as the new head. The log level and
;; message come from the params, so a bad level traps.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (import "env" "ext_logging_log_version_1" (func $log (param i32 i64 i64)))
  (import "env" "ext_hashing_blake2_256_version_1" (func $blake2 (param i64) (result i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (data (i32.const 16) "guest")
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $head_len i32) (local $digest i32) (local $out i32)
    ;; parent_head: a single-byte compact length (< 64 bytes), then the bytes.
    (local.set $head_len (i32.shr_u (i32.load8_u (local.get $ptr)) (i32.const 2)))
    ;; block_data: compact 4 (0x10) then a u32 log level.
    (call $log
      (i32.load offset=2 (i32.add (local.get $ptr) (local.get $head_len)))
      (i64.or (i64.shl (i64.const 5) (i64.const 32)) (i64.const 16))
      (i64.or (i64.shl (i64.extend_i32_u (local.get $head_len)) (i64.const 32))
              (i64.extend_i32_u (i32.add (local.get $ptr) (i32.const 1)))))
    (local.set $digest
      (call $blake2
        (i64.or (i64.shl (i64.extend_i32_u (local.get $head_len)) (i64.const 32))
                (i64.extend_i32_u (i32.add (local.get $ptr) (i32.const 1))))))
    ;; ValidationResult: head_data = digest (compact 32 = 0x80, 32 bytes), then 11 zeros.
    (local.set $out (call $malloc (i32.const 44)))
    (i32.store8 (local.get $out) (i32.const 0x80))
    (i64.store offset=1 (local.get $out) (i64.load (local.get $digest)))
    (i64.store offset=9 (local.get $out) (i64.load offset=8 (local.get $digest)))
    (i64.store offset=17 (local.get $out) (i64.load offset=16 (local.get $digest)))
    (i64.store offset=25 (local.get $out) (i64.load offset=24 (local.get $digest)))
    (i64.store offset=33 (local.get $out) (i64.const 0))
    (i32.store offset=40 (local.get $out) (i32.const 0))
    (i64.or (i64.shl (i64.const 44) (i64.const 32)) (i64.extend_i32_u (local.get $out)))))
