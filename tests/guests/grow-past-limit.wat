;; grow-past-limit: grows memory a page at a time until growth fails, then writes one byte
;; past the end it reached: the write traps, so the candidate is invalid. With
;; block_data = [0] it instead returns the page count reached as a 4-byte head, which pins
;; the page limit.
(module
  (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32) (local $pages i32)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (local.set $pages (memory.size))
    ;; params: parent_head empty (00), block_data one byte (04 xx).
    (if (i32.ne (i32.load8_u offset=2 (local.get $ptr)) (i32.const 0))
      (then
        (i32.store8 (i32.mul (local.get $pages) (i32.const 65536)) (i32.const 1))
        unreachable))
    ;; ValidationResult: head_data = pages as u32 (compact 4 = 0x10, 4 bytes), then 11
    ;; zero bytes for the other fields.
    (local.set $out (call $malloc (i32.const 16)))
    (i32.store8 (local.get $out) (i32.const 0x10))
    (i32.store offset=1 (local.get $out) (local.get $pages))
    (i64.store offset=5 (local.get $out) (i64.const 0))
    (i32.store offset=12 (local.get $out) (i32.const 0))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.extend_i32_u (local.get $out)))))
