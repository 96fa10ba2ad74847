;; upward-messages: returns a ValidationResult with 16,384 empty upward messages and nothing
;; else (empty head, no new code, no horizontal messages, counters zero). Decoding and
;; encoding that result allocates and frees a few hundred KiB in the execute thread, which
;; makes glibc trim the thread's heap: an honest path that must never meet the seccomp filter.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  ;; At 1024: head_data = [] (00), new_validation_code = None (00), upward_messages length
  ;; 16,384 (compact, four-byte mode: 02 00 01 00), then 16,384 empty messages (00 each),
  ;; horizontal_messages = [] (00), processed_downward_messages = 0, hrmp_watermark = 0: the
  ;; zeros are memory's initial contents.
  (data (i32.const 1024) "\00\00\02\00\01\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    ;; 6 + 16,384 + 1 + 4 + 4 = 16,399 bytes at 1024.
    (i64.const 0x400f_0000_0400)))
