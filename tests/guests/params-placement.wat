;; params-placement: checks that the params are the allocator's first allocation. With
;; __heap_base = 65533 the heap starts at 65536 (rounded up to 8), so the first block's data
;; is at 65536 + 8 (after its header); anything else traps. Returns an all-empty result.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65533))
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (if (i32.ne (local.get $ptr) (i32.const 65544)) (then unreachable))
    (local.set $out (call $malloc (i32.const 12)))
    (i64.store (local.get $out) (i64.const 0))
    (i32.store offset=8 (local.get $out) (i32.const 0))
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.extend_i32_u (local.get $out)))))
