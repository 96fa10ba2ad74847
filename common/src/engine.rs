//! The one wasmtime configuration that both workers build from, and its fingerprint.
//!
//! Every setting here can change a verdict or an artifact, so nothing else in the workspace
//! configures wasmtime. Consensus needs the same module to behave the same on every
//! validator: NaN canonicalization is on, and only the Wasm features that Polkadot's host
//! allows are enabled (wasmtime 48 enables far more by default).
//!
//! One setting differs from Polkadot's on purpose without changing what code computes:
//! compilation is parallel (Polkadot's is single-threaded for reproducible timing).

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use wasmparser::WasmFeatures;
use wasmtime::{Config, Engine, OptLevel, Strategy};

use crate::artifact::FORMAT_VERSION;
use crate::params::ExecutorParams;

/// The wasmtime version we pin; part of the engine fingerprint. A unit test keeps it in sync
/// with `Cargo.lock`.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Room the execute thread keeps beyond the Wasm stack for host frames (host functions,
/// wasmtime's trampolines).
pub const HOST_STACK_MARGIN: usize = 2 * 1024 * 1024;

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the wasmtime engine: {0}")]
pub struct EngineError(String);

/// The Wasm features a module may use under `params`: Wasm 1.0, and bulk memory when the
/// parameters allow it, as Polkadot's executor configures wasmtime. (Its parser, which the
/// prepare worker also runs, knows only Wasm 1.0, so bulk memory instructions are refused
/// before they reach the engine there as here.)
pub fn wasm_features(params: &ExecutorParams) -> WasmFeatures {
    // GC_TYPES (part of wasmparser's Wasm 1.0 set) only matters with reference types, which
    // are off; wasmtime refuses it when built without GC support.
    let mut features = WasmFeatures::WASM1 - WasmFeatures::GC_TYPES;
    if params.wasm_bulk_memory {
        features |= WasmFeatures::BULK_MEMORY;
    }
    features
}

/// The wasmtime `Config` for `params`.
pub fn config(params: &ExecutorParams) -> Config {
    let mut config = Config::new();
    config.strategy(Strategy::Cranelift);
    config.cranelift_opt_level(OptLevel::SpeedAndSize);
    // Float results must not depend on the CPU: canonicalize NaN payloads.
    config.cranelift_nan_canonicalization(true);
    // Start from nothing, then allow exactly the features above.
    config.wasm_features(WasmFeatures::all(), false);
    config.wasm_features(wasm_features(params), true);
    config.max_wasm_stack(params.stack_native_max as usize);
    // Unused (no async), but wasmtime requires it to be at least the Wasm stack.
    config.async_stack_size(params.stack_native_max as usize + HOST_STACK_MARGIN);
    // Trap messages must not depend on symbol information or frame details.
    config.wasm_backtrace_max_frames(None);
    // Compilation is the only multi-threaded work and runs in the prepare job.
    config.parallel_compilation(true);
    config
}

/// Builds the engine for `params`.
pub fn engine(params: &ExecutorParams) -> Result<Engine, EngineError> {
    Engine::new(&config(params)).map_err(|e| EngineError(format!("{e:#}")))
}

/// A hash of everything about this machine and build that decides whether an artifact
/// compiled here may run here: our own version (a release may change instrumentation or
/// prevalidation, and must never serve artifacts an older one produced), our format version,
/// the wasmtime version, wasmtime's own compatibility hash (compiler and ISA flags, i.e. the
/// CPU features the code targets), NaN canonicalization (which wasmtime does not check), and
/// the CPU features detected.
///
/// It is computed from the engine for the default parameters, so that a start-up scan can
/// check any artifact without knowing its parameters. Settings that vary with the executor
/// parameters (features, stack, memory) are covered by the artifact id's parameter hash,
/// which the header also carries.
pub fn fingerprint() -> Result<[u8; 32], EngineError> {
    static FINGERPRINT: OnceLock<Result<[u8; 32], String>> = OnceLock::new();
    FINGERPRINT
        .get_or_init(|| {
            let params = ExecutorParams::default();
            let engine = engine(&params).map_err(|e| e.0)?;
            Ok(fingerprint_of(crate::worker::VERSION, &engine, &params))
        })
        .clone()
        .map_err(EngineError)
}

/// The fingerprint of `engine`, built for `params`, in a build whose version is `version`.
fn fingerprint_of(version: &str, engine: &Engine, params: &ExecutorParams) -> [u8; 32] {
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    version.hash(&mut hasher);
    FORMAT_VERSION.hash(&mut hasher);
    WASMTIME_VERSION.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    "nan-canonicalization".hash(&mut hasher);
    wasm_features(params).bits().hash(&mut hasher);
    cpu_features().hash(&mut hasher);
    *hasher.0.finalize().as_bytes()
}

/// The CPU features that Cranelift may target on this machine.
#[cfg(target_arch = "x86_64")]
fn cpu_features() -> Vec<&'static str> {
    macro_rules! detected {
        ($($f:tt),*) => { vec![$(if std::is_x86_feature_detected!($f) { $f } else { "" }),*] };
    }
    detected!(
        "sse3",
        "ssse3",
        "sse4.1",
        "sse4.2",
        "popcnt",
        "avx",
        "avx2",
        "fma",
        "bmi1",
        "bmi2",
        "lzcnt",
        "avx512f",
        "avx512vl",
        "avx512dq",
        "avx512bitalg",
        "avx512vbmi",
        "cmpxchg16b"
    )
}

/// The CPU features that Cranelift may target on this machine.
#[cfg(not(target_arch = "x86_64"))]
fn cpu_features() -> Vec<&'static str> {
    // wasmtime's ISA flags in the compatibility hash carry the detected features here.
    Vec::new()
}

/// Feeds `std::hash::Hash` into blake3, so the fingerprint is stable across processes.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0.finalize().as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_version_matches_lockfile() {
        let lock = include_str!("../../Cargo.lock");
        let needle = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"");
        assert!(lock.contains(&needle), "WASMTIME_VERSION is out of date");
    }

    #[test]
    fn fingerprint_is_stable_across_engines() {
        let a = fingerprint().unwrap();
        assert_eq!(a, fingerprint().unwrap());
        assert_ne!(a, [0; 32]);
    }

    #[test]
    fn fingerprint_covers_our_own_version() {
        let params = ExecutorParams::default();
        let engine = engine(&params).unwrap();
        let ours = fingerprint_of(crate::worker::VERSION, &engine, &params);
        assert_eq!(ours, fingerprint().unwrap());
        let next_release = fingerprint_of("0.0.0-next", &engine, &params);
        assert_ne!(
            ours, next_release,
            "a new release must not load old artifacts"
        );
    }

    #[test]
    fn disallowed_features_are_rejected() {
        let params = ExecutorParams::default();
        let engine = engine(&params).unwrap();
        let simd = wat::parse_str("(module (func (result v128) v128.const i64x2 0 0))").unwrap();
        assert!(wasmtime::Module::new(&engine, &simd).is_err());
        let mvp = wat::parse_str("(module (func (result i32) i32.const 1))").unwrap();
        assert!(wasmtime::Module::new(&engine, &mvp).is_ok());
    }
}
