;; big-result: returns a ValidationResult whose head data is 20 MiB of zeros, and nothing
;; else: a large answer through every pipe from the job to the host, and large native
;; allocations and frees on the execute thread. Valid.
(module
  ;; 340 pages: the 20 MiB result from address 0, then the heap (and the params) at 21 MiB.
  (memory (export "memory") 340)
  (global (export "__heap_base") i32 (i32.const 22020096))
  ;; head_data length 20,971,520 (compact, four-byte mode: 02 00 00 05); the head's bytes,
  ;; new_validation_code = None, no messages and both counters are zeros: memory's initial
  ;; contents.
  (data (i32.const 0) "\02\00\00\05")
  (func (export "validate_block") (param i32 i32) (result i64)
    ;; 4 + 20,971,520 + 1 + 1 + 1 + 4 + 4 = 20,971,535 bytes at 0.
    (i64.const 0x140_000f_0000_0000)))
