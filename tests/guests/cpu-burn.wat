;; cpu-burn: runs an LCG for `block_data` (a little-endian u64) iterations and returns the
;; final state as the head: CPU-bound work whose amount the params choose.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $at i32) (local $n i64) (local $x i64) (local $out i32)
    ;; parent_head must be empty (0x00); block_data must hold 8 bytes (compact 8 = 0x20).
    (if (i32.ne (i32.load8_u (local.get $ptr)) (i32.const 0)) (then unreachable))
    (if (i32.ne (i32.load8_u offset=1 (local.get $ptr)) (i32.const 0x20)) (then unreachable))
    (if (i32.lt_u (local.get $len) (i32.const 10)) (then unreachable))
    (local.set $n (i64.load offset=2 (local.get $ptr)))
    (local.set $x (i64.const 1))
    (block $done
      (loop $next
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                               (i64.const 1442695040888963407)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $next)))
    (local.set $out (call $malloc (i32.const 20)))
    (i32.store8 (local.get $out) (i32.const 0x20))
    (i64.store offset=1 (local.get $out) (local.get $x))
    (i32.store8 offset=9 (local.get $out) (i32.const 0))
    (i32.store8 offset=10 (local.get $out) (i32.const 0))
    (i32.store8 offset=11 (local.get $out) (i32.const 0))
    (i64.store offset=12 (local.get $out) (i64.const 0))
    (i64.or (i64.shl (i64.const 20) (i64.const 32)) (i64.extend_i32_u (local.get $out)))))
