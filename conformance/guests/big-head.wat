;; big-head: returns a head of N zero bytes, N a little-endian u32 in block_data (the whole
;; block_data is those 4 bytes); memory grows to hold it.
(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $end i32)
    (local.set $n (i32.load offset=2 (local.get $ptr)))
    ;; result at 65536: compact(n) four-byte mode, n zero bytes, 11 zero bytes.
    (local.set $end (i32.add (i32.const 65551) (local.get $n)))
    (if (i32.lt_s (memory.grow (i32.sub (i32.add (i32.shr_u (local.get $end) (i32.const 16)) (i32.const 1))
                                         (memory.size)))
                  (i32.const 0))
      (then unreachable))
    (i32.store (i32.const 65536) (i32.or (i32.shl (local.get $n) (i32.const 2)) (i32.const 2)))
    (i64.or (i64.shl (i64.extend_i32_u (i32.sub (local.get $end) (i32.const 65536))) (i64.const 32))
            (i64.const 65536))))
