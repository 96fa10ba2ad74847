;; nan: block_data holds two f32s a, b (little-endian bits; parent_head empty). The new head
;; is the bits of a / b, then of a + b. NaN results must be canonical (0x7fc00000) whatever
;; the CPU would produce, so every validator returns the same head.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $a f32) (local $b f32) (local $out i32)
    ;; params: 00 (empty head), 20 (compact 8), a, b.
    (local.set $a (f32.load offset=2 (local.get $ptr)))
    (local.set $b (f32.load offset=6 (local.get $ptr)))
    ;; ValidationResult: head (compact 8 = 0x20, 8 bytes), then 11 zero bytes.
    (local.set $out (call $malloc (i32.const 20)))
    (i32.store8 (local.get $out) (i32.const 0x20))
    (f32.store offset=1 (local.get $out) (f32.div (local.get $a) (local.get $b)))
    (f32.store offset=5 (local.get $out) (f32.add (local.get $a) (local.get $b)))
    (i64.store offset=9 (local.get $out) (i64.const 0))
    (i32.store offset=16 (local.get $out) (i32.const 0))
    (i64.or (i64.shl (i64.const 20) (i64.const 32)) (i64.extend_i32_u (local.get $out)))))
