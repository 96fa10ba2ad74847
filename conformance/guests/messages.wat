;; messages: returns a result with N messages, N a little-endian u32 in block_data's first
;; 4 bytes; block_data[4] = 0 for upward messages (each empty), 1 for horizontal ones
;; (recipient 0, empty data). Polkadot bounds both lists at 16,384 when decoding.
(module
  (memory (export "memory") 4)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $hrmp i32) (local $p i32) (local $size i32)
    ;; params: parent_head compact(0) = 0x00, then compact(5) = 0x14, then the 5 bytes.
    (local.set $n (i32.load offset=2 (local.get $ptr)))
    (local.set $hrmp (i32.load8_u offset=6 (local.get $ptr)))
    (local.set $size (select (i32.const 5) (i32.const 1) (local.get $hrmp)))
    ;; result at 65536: head [], None, upward list, horizontal list, 0u32, 0u32.
    (local.set $p (i32.const 65536))
    (i32.store8 (local.get $p) (i32.const 0))
    (i32.store8 offset=1 (local.get $p) (i32.const 0))
    (local.set $p (i32.add (local.get $p) (i32.const 2)))
    (if (local.get $hrmp) (then
      (i32.store8 (local.get $p) (i32.const 0))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))))
    ;; compact(n): four-byte mode from 16,384, else two-byte mode (so n must be at least 64).
    (if (i32.ge_u (local.get $n) (i32.const 16384))
      (then (i32.store (local.get $p) (i32.or (i32.shl (local.get $n) (i32.const 2)) (i32.const 2)))
            (local.set $p (i32.add (local.get $p) (i32.const 4))))
      (else (i32.store16 (local.get $p) (i32.or (i32.shl (local.get $n) (i32.const 2)) (i32.const 1)))
            (local.set $p (i32.add (local.get $p) (i32.const 2)))))
    ;; the messages: zero bytes (fresh memory is zero).
    (local.set $p (i32.add (local.get $p) (i32.mul (local.get $n) (local.get $size))))
    (if (i32.eqz (local.get $hrmp)) (then
      (i32.store8 (local.get $p) (i32.const 0))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))))
    (i64.store (local.get $p) (i64.const 0))
    (local.set $p (i32.add (local.get $p) (i32.const 8)))
    (i64.or (i64.shl (i64.extend_i32_u (i32.sub (local.get $p) (i32.const 65536))) (i64.const 32))
            (i64.const 65536))))
