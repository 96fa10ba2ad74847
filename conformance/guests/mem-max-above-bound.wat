;; mem-max-above-bound: declares maximum 4,000 pages, grows to exactly 2,080 then by one
;; more; the head is both memory.grow results (the second must be -1: the bound holds).
(module
  (memory (export "memory") 2 4000)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func $ret8 (param $a i32) (param $b i32) (result i64)
    (i32.store8 (i32.const 16) (i32.const 0x20))
    (i32.store offset=17 (i32.const 0) (local.get $a))
    (i32.store offset=21 (i32.const 0) (local.get $b))
    (i64.or (i64.shl (i64.const 20) (i64.const 32)) (i64.const 16)))
  (func (export "validate_block") (param i32 i32) (result i64)
    (call $ret8 (memory.grow (i32.const 2078)) (memory.grow (i32.const 1)))))
