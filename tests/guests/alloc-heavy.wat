;; alloc-heavy: 2,000 allocations of varying sizes through the host allocator, freeing
;; every other one so later allocations reuse them, plus one 1 MiB block that makes memory
;; grow. Writes to every block. Head = the sum of all returned pointers (u64, LE), which
;; pins the allocator's placement decisions.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (import "env" "ext_allocator_free_version_1" (func $free (param i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (func (export "validate_block") (param i32 i32) (result i64)
    (local $i i32) (local $p i32) (local $sum i64) (local $out i32)
    (local.set $p (call $malloc (i32.const 1048576)))
    (i32.store8 offset=1048575 (local.get $p) (i32.const 1))
    (local.set $sum (i64.extend_i32_u (local.get $p)))
    (loop $next
      (local.set $p
        (call $malloc (i32.add (i32.rem_u (i32.mul (local.get $i) (i32.const 37)) (i32.const 5000))
                               (i32.const 1))))
      (i32.store8 (local.get $p) (local.get $i))
      (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (local.get $p))))
      (if (i32.and (local.get $i) (i32.const 1)) (then (call $free (local.get $p))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 2000))))
    (local.set $out (call $malloc (i32.const 20)))
    (i32.store8 (local.get $out) (i32.const 0x20))
    (i64.store offset=1 (local.get $out) (local.get $sum))
    (i32.store8 offset=9 (local.get $out) (i32.const 0))
    (i32.store8 offset=10 (local.get $out) (i32.const 0))
    (i32.store8 offset=11 (local.get $out) (i32.const 0))
    (i64.store offset=12 (local.get $out) (i64.const 0))
    (i64.or (i64.shl (i64.const 20) (i64.const 32)) (i64.extend_i32_u (local.get $out)))))
