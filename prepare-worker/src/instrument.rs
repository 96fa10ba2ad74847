//! The deterministic stack limit: code is instrumented at preparation time so that every call
//! adds its frame's logical cost (locals plus the deepest operand stack) to a counter, and
//! traps with `unreachable` when the counter would pass the limit.
//!
//! The native stack depends on the compiler, its version and its opt level; the counter does
//! not, so a given code and limit stop at the same call depth on every validator. We use the
//! same instrumentation as Polkadot's host (`wasm-instrument`'s stack limiter over
//! `parity-wasm`), which makes the depth match Polkadot's exactly rather than approximately.

use wasm_instrument::parity_wasm::{self, elements::Module};

/// Why code could not be instrumented. Deterministic: the same code fails the same way.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InstrumentError {
    /// The module uses something the instrumenter's parser does not accept (as in Polkadot's
    /// host, whose parser is the same).
    #[error("cannot parse the module for stack instrumentation: {0}")]
    Parse(String),
    /// The instrumenter refused the module (e.g. a frame's cost overflows).
    #[error("stack instrumentation failed: {0}")]
    Inject(&'static str),
    /// The instrumented module could not be written back.
    #[error("cannot serialize the instrumented module: {0}")]
    Serialize(String),
}

/// Returns `code` with a logical stack limit of `logical_max` values injected.
pub fn limit_stack(code: &[u8], logical_max: u32) -> Result<Vec<u8>, InstrumentError> {
    let module = parity_wasm::deserialize_buffer::<Module>(code)
        .map_err(|e| InstrumentError::Parse(e.to_string()))?;
    let module = wasm_instrument::inject_stack_limiter(module, logical_max)
        .map_err(InstrumentError::Inject)?;
    parity_wasm::serialize(module).map_err(|e| InstrumentError::Serialize(e.to_string()))
}

#[cfg(test)]
mod tests {
    use wasmtime::{Config, Engine, Instance, OptLevel, Store};

    use super::*;

    /// Counts how deep `$f` recurses before the limit traps.
    const RECURSE: &str = r#"(module
        (global $depth (export "depth") (mut i32) (i32.const 0))
        (func $f (export "f") (param i64) (result i64)
            (local i64 i64 i64)
            (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
            (call $f (i64.add (local.get 0) (i64.const 1)))))"#;

    fn depth_reached(logical_max: u32, opt_level: OptLevel) -> i32 {
        let code = limit_stack(&wat::parse_str(RECURSE).unwrap(), logical_max).unwrap();
        let mut config = Config::new();
        config.cranelift_opt_level(opt_level);
        let engine = Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(&engine, code).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance
            .get_typed_func::<i64, i64>(&mut store, "f")
            .unwrap();
        let trap = f.call(&mut store, 0).unwrap_err();
        assert_eq!(
            trap.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::UnreachableCodeReached),
            "{trap:?}"
        );
        let depth = instance.get_global(&mut store, "depth").unwrap();
        depth.get(&mut store).unwrap_i32()
    }

    #[test]
    fn recursion_stops_at_a_depth_set_by_the_logical_limit() {
        // A frame costs its declared locals (3; parameters are not counted), its deepest
        // operand stack (2) and a fixed activation cost (2): 7. A call that would take the
        // total past the limit traps before entering, so the depth is limit / 7.
        assert_eq!(depth_reached(1024, OptLevel::SpeedAndSize), 146);
        assert_eq!(depth_reached(65_536, OptLevel::SpeedAndSize), 9362);
    }

    #[test]
    fn the_depth_does_not_depend_on_the_compiler_opt_level() {
        for opt_level in [OptLevel::None, OptLevel::Speed, OptLevel::SpeedAndSize] {
            assert_eq!(depth_reached(65_536, opt_level), 9362, "{opt_level:?}");
        }
    }

    /// Whether instrumentation accepts a module with `body` as a function's code.
    fn accepts(body: &str) -> bool {
        let wat = format!("(module (memory 1) (func (param i32 f32) {body}))");
        limit_stack(&wat::parse_str(wat).unwrap(), 1024).is_ok()
    }

    #[test]
    fn the_parser_accepts_what_polkadots_does() {
        // The same parser and features as Polkadot's host: sign extension yes; bulk memory,
        // saturating float-to-int and multi-value blocks no. Code using them fails
        // preparation here as there, whatever the engine would accept.
        assert!(accepts("(drop (i32.extend8_s (local.get 0)))"));
        assert!(!accepts(
            "(memory.fill (i32.const 0) (i32.const 0) (i32.const 0))"
        ));
        assert!(!accepts("(drop (i32.trunc_sat_f32_s (local.get 1)))"));
        assert!(!accepts(
            "(block (result i32 i32) (i32.const 1) (i32.const 2)) (drop) (drop)"
        ));
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            limit_stack(b"\0asm\x01\0\0\0\x01", 1024),
            Err(InstrumentError::Parse(_))
        ));
    }
}
