;; mem-max-below-bound: declares maximum 10 pages, then grows by 20; the head is what
;; memory.grow returned (the old size, or -1 if the declared maximum holds).
(module
  (memory (export "memory") 2 10)
  (global (export "__heap_base") i32 (i32.const 1024))
  (func $ret4 (param $v i32) (result i64)
    (i32.store8 (i32.const 16) (i32.const 0x10))
    (i32.store offset=17 (i32.const 0) (local.get $v))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 16)))
  (func (export "validate_block") (param i32 i32) (result i64)
    (call $ret4 (memory.grow (i32.const 20)))))
