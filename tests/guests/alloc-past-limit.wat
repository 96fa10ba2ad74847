;; alloc-past-limit: asks the host allocator for 32 MiB blocks until it refuses. The
;; allocator grows memory only up to the page limit, so the refusal traps: Invalid.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (func (export "validate_block") (param i32 i32) (result i64)
    (loop $more
      (drop (call $malloc (i32.const 33554432)))
      (br $more))
    (i64.const 0)))
