;; memory-grow-loop: grows memory by a page forever, ignoring failures. Memory stops at the
;; page limit (growth returns -1), so the loop can only end at the time limit.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 65536))
  (func (export "validate_block") (param i32 i32) (result i64)
    (loop $forever
      (drop (memory.grow (i32.const 1)))
      (br $forever))
    (i64.const 0)))
