;; recursion: recurses to the depth given in block_data (a little-endian u32; parent_head
;; empty) and returns an all-empty result. Past the logical stack limit the instrumented
;; code traps with `unreachable`, so the deepest valid depth measures the limit.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))

  (func $down (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))

  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    ;; parent_head must be empty (0x00) and block_data 4 bytes (compact 4 = 0x10).
    (if (i32.ne (i32.load16_u (local.get $ptr)) (i32.const 0x1000)) (then unreachable))
    (drop (call $down (i32.load offset=2 (local.get $ptr))))
    ;; ValidationResult with every field empty or zero: 4 one-byte empty collections or
    ;; None, then two u32 zeros: 12 zero bytes.
    (local.set $out (call $malloc (i32.const 12)))
    (i64.store (local.get $out) (i64.const 0))
    (i32.store offset=8 (local.get $out) (i32.const 0))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.extend_i32_u (local.get $out)))))
