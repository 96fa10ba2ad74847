//! Running `validate_block` on a loaded module: instantiate with the host functions, put
//! the params into the allocator's first allocation, call, and read the result back.
//!
//! Each step fails the way it fails in Polkadot's host, because that decides the verdict:
//! a runtime that cannot be linked or instantiated is a runtime construction error
//! ([`ExecJobError::Instantiation`]); after instantiation, a missing `memory` export,
//! `__heap_base` or `validate_block` is Invalid ([`ExecJobError::BadInterface`]), checked in
//! that order.

use parity_scale_codec::{Decode, Encode};
use pvf_common::error::ExecJobError;
use pvf_common::validation::{MAX_RESULT_LEN, ValidationResult};
use wasmtime::{Engine, InstancePre, Memory, Module, Store, StoreLimitsBuilder, Trap};

use crate::allocator::{FreeingBump, PAGE_SIZE};
use crate::host_functions::{self, HostError, HostState, with_allocator};
use crate::pov::decompressed_params;

/// The export every validation function provides.
const ENTRY_POINT: &str = "validate_block";

/// Why a module could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The module cannot be linked: an import the host does not provide, or of the wrong
    /// type. The guest's fault, a runtime construction error as in Polkadot's host.
    #[error("{0}")]
    Construction(String),
    /// This machine failed (e.g. no memory or memfd for the copy-on-write image).
    #[error("{0}")]
    Local(String),
}

/// A module ready to run: loaded and linked once, in its artifact's holder.
pub struct Runtime {
    pre: InstancePre<HostState>,
}

impl Runtime {
    /// Links `module` against the host functions.
    pub fn new(engine: &Engine, module: Module) -> Result<Self, RuntimeError> {
        let linker = host_functions::linker(engine, &module)?;
        // Build the copy-on-write image of the initial memory here, once (in the artifact's
        // holder), so that the jobs it forks map it instead of each building its own.
        module
            .initialize_copy_on_write_image()
            .map_err(|e| RuntimeError::Local(format!("copy-on-write image: {e:#}")))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| RuntimeError::Construction(format!("{e:#}")))?;
        Ok(Self { pre })
    }

    /// Runs `validate_block` on SCALE-encoded params in a fresh instance, after inflating a
    /// compressed PoV.
    pub fn validate(
        &self,
        params: &[u8],
        max_pages: u32,
    ) -> Result<ValidationResult, ExecJobError> {
        let params = decompressed_params(params)?;
        let limits = StoreLimitsBuilder::new()
            .memory_size(max_pages as usize * PAGE_SIZE as usize)
            .build();
        let mut store = Store::new(
            self.pre.module().engine(),
            HostState::new(limits, max_pages.into()),
        );
        store.limiter(|state| &mut state.limits);
        let instance = self.pre.instantiate(&mut store).map_err(instantiation)?;
        let interface = |what: &str| ExecJobError::BadInterface(what.to_owned());
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| interface("no memory exported as `memory`"))?;
        let heap_base = instance
            .get_global(&mut store, "__heap_base")
            .and_then(|g| g.get(&mut store).i32())
            .ok_or_else(|| interface("no i32 global `__heap_base`"))?;
        let entry = instance
            .get_typed_func::<(i32, i32), i64>(&mut store, ENTRY_POINT)
            .map_err(|e| ExecJobError::BadInterface(format!("{ENTRY_POINT}: {e:#}")))?;
        store.data_mut().memory = Some(memory);
        store.data_mut().allocator = Some(FreeingBump::new(heap_base as u32));

        let len = u32::try_from(params.len())
            .map_err(|_| ExecJobError::BadParams("params larger than 4 GiB".into()))?;
        let ptr = with_allocator(&mut store, |alloc, heap| alloc.allocate(heap, len))
            .map_err(|e| ExecJobError::BadParams(format!("cannot place params: {e:#}")))?;
        memory
            .write(&mut store, ptr as usize, &params)
            .map_err(|e| ExecJobError::BadParams(format!("cannot place params: {e}")))?;

        let packed = entry
            .call(&mut store, (ptr as i32, len as i32))
            .map_err(classify)? as u64;
        read_result(&store, memory, packed)
    }
}

/// Decodes the result `validate_block` returned as `len << 32 | ptr`.
fn read_result(
    store: &Store<HostState>,
    memory: Memory,
    packed: u64,
) -> Result<ValidationResult, ExecJobError> {
    let (ptr, len) = (packed as u32 as usize, (packed >> 32) as usize);
    let output = memory.data(store).get(ptr..ptr + len).ok_or_else(|| {
        ExecJobError::BadResult(format!("result at {ptr:#x}+{len} is outside memory"))
    })?;
    // Trailing bytes are ignored, as Polkadot's host ignores them.
    let result = ValidationResult::decode(&mut &output[..])
        .map_err(|e| ExecJobError::BadResult(format!("undecodable result: {e}")))?;
    let size = result.encoded_size();
    if size > MAX_RESULT_LEN {
        return Err(ExecJobError::HostLimit(format!(
            "a result of {size} bytes; this host carries at most {MAX_RESULT_LEN}"
        )));
    }
    Ok(result)
}

/// Why instantiation failed. A host function that needs the instance's memory or allocator
/// cannot run before instantiation ends (e.g. called from a start function): Polkadot's host
/// panics there, which is Invalid; everything else is a runtime construction error.
fn instantiation(error: wasmtime::Error) -> ExecJobError {
    match error.downcast_ref::<HostError>() {
        Some(HostError::Unsupported(name)) => ExecJobError::UnsupportedHostFunction(name.clone()),
        Some(e @ HostError::NotReady) => ExecJobError::Trap(e.to_string()),
        _ => ExecJobError::Instantiation(format!("{error:#}")),
    }
}

/// Tells apart why a call ended: a host function's reason, or a trap.
fn classify(error: wasmtime::Error) -> ExecJobError {
    if let Some(host) = error.downcast_ref::<HostError>() {
        return match host {
            HostError::Unsupported(name) => ExecJobError::UnsupportedHostFunction(name.clone()),
            HostError::Panic(message) => ExecJobError::Panic(message.clone()),
            other => ExecJobError::Trap(other.to_string()),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(trap) => ExecJobError::Trap(trap.to_string()),
        None => ExecJobError::Trap(format!("{error:#}")),
    }
}

#[cfg(test)]
mod tests {
    use parity_scale_codec::Encode;
    use pvf_common::engine;
    use pvf_common::params::{DEFAULT_MAX_MEMORY_PAGES, ExecutorParams, PrepKind};
    use pvf_common::validation::ValidationParams;

    use super::*;

    /// Links a compiled module.
    fn link(payload: &[u8]) -> Result<Runtime, RuntimeError> {
        let engine = engine::engine(&ExecutorParams::default()).unwrap();
        // SAFETY: compiled a moment ago with the same engine configuration.
        let module = unsafe { Module::deserialize(&engine, payload) }.unwrap();
        Runtime::new(&engine, module)
    }

    /// Prepares `wat` through the prepare worker's pipeline (as for an execution) and links it.
    fn runtime(wat: &str) -> Result<Runtime, RuntimeError> {
        let code = wat::parse_str(wat).unwrap();
        let params = ExecutorParams::default();
        let compiled = pvf_prepare_worker::compile(&code, &params, PrepKind::Lenient).unwrap();
        link(&compiled.payload)
    }

    fn run(wat: &str) -> Result<ValidationResult, ExecJobError> {
        let params = ValidationParams::default().encode();
        runtime(wat)
            .map_err(|e| ExecJobError::Instantiation(e.to_string()))?
            .validate(&params, DEFAULT_MAX_MEMORY_PAGES)
    }

    const HEAP: &str = r#"(global (export "__heap_base") i32 (i32.const 1024))"#;
    /// Returns 16 zero bytes at address 0: an empty result and 4 trailing bytes.
    const ENTRY: &str = r#"(func (export "validate_block") (param i32 i32) (result i64)
        (i64.const 0x0000001000000000))"#;

    #[test]
    fn linking_refuses_imports_the_host_does_not_provide() {
        for import in [
            r#"(import "other" "f" (func))"#,
            r#"(import "env" "ext_allocator_free_version_1" (func (param i64)))"#,
            r#"(import "env" "table" (table 1 funcref))"#,
            r#"(import "env" "g" (global i32))"#,
        ] {
            let wat = format!("(module {import})");
            assert!(
                matches!(runtime(&wat), Err(RuntimeError::Construction(_))),
                "{import}"
            );
        }
        // Preparation turns a memory import into the module's memory; one that reaches the
        // linker anyway is refused too.
        let raw = wat::parse_str(r#"(module (import "env" "memory" (memory 1)))"#).unwrap();
        let engine = engine::engine(&ExecutorParams::default()).unwrap();
        let payload = engine.precompile_module(&raw).unwrap();
        assert!(matches!(link(&payload), Err(RuntimeError::Construction(_))));
        assert!(runtime(r#"(module (import "env" "memory" (memory 1)))"#).is_ok());
    }

    #[test]
    fn instantiation_failures_are_runtime_construction() {
        for wat in [
            // A start function that traps.
            r#"(module (func $s unreachable) (start $s))"#,
            // Initial memory over the bound.
            r#"(module (memory (export "memory") 2081))"#,
            // A data segment outside memory.
            r#"(module (memory (export "memory") 1) (data (i32.const 65536) "x"))"#,
        ] {
            let err = run(wat).unwrap_err();
            assert!(
                matches!(err, ExecJobError::Instantiation(_)),
                "{wat}: {err}"
            );
        }
        // Exactly the bound instantiates.
        let at_bound = format!(r#"(module (memory (export "memory") 2080) {HEAP} {ENTRY})"#);
        assert_eq!(run(&at_bound).unwrap(), ValidationResult::default());
    }

    #[test]
    fn a_host_function_called_by_a_start_function_before_memory_exists_traps() {
        let wat = r#"(module
            (import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))
            (memory (export "memory") 1)
            (func $s (drop (call $malloc (i32.const 8))))
            (start $s))"#;
        assert!(matches!(run(wat), Err(ExecJobError::Trap(_))));
    }

    #[test]
    fn a_missing_memory_heap_base_or_entry_point_is_a_bad_interface_in_that_order() {
        let memory = r#"(memory (export "memory") 1)"#;
        let cases = [
            (format!("(module {HEAP} {ENTRY})"), "memory"),
            (
                format!(r#"(module (memory (export "mem") 1) {HEAP} {ENTRY})"#),
                "memory",
            ),
            (format!("(module {memory} {ENTRY})"), "__heap_base"),
            (
                format!(
                    r#"(module {memory} (global (export "__heap_base") i64 (i64.const 0)) {ENTRY})"#
                ),
                "__heap_base",
            ),
            (format!("(module {memory} {HEAP})"), ENTRY_POINT),
            (
                format!(
                    r#"(module {memory} {HEAP}
                        (func (export "validate_block") (param i32) (result i64) (i64.const 0)))"#
                ),
                ENTRY_POINT,
            ),
        ];
        for (wat, missing) in cases {
            let err = run(&wat).unwrap_err();
            assert!(
                matches!(&err, ExecJobError::BadInterface(m) if m.contains(missing)),
                "{wat}: {err}"
            );
        }
    }

    #[test]
    fn an_imported_memory_under_another_name_is_exported_under_that_name() {
        // Polkadot's host exports the memory under the import's name, so only an import
        // named `memory` gives the call a memory.
        let named =
            |name: &str| format!(r#"(module (import "any" "{name}" (memory 1)) {HEAP} {ENTRY})"#);
        assert_eq!(run(&named("memory")).unwrap(), ValidationResult::default());
        assert!(matches!(
            run(&named("heap")),
            Err(ExecJobError::BadInterface(_))
        ));
    }

    #[test]
    fn trailing_bytes_after_the_result_are_ignored() {
        let wat = format!(r#"(module (memory (export "memory") 1) {HEAP} {ENTRY})"#);
        assert_eq!(run(&wat).unwrap(), ValidationResult::default());
    }

    /// Set in the child process that [`a_copy_on_write_image_that_cannot_be_built_is_local`]
    /// starts, which leaves itself no free file descriptor.
    const NO_FDS: &str = "PVF_TEST_RUNTIME_WITHOUT_FDS";

    #[test]
    fn a_copy_on_write_image_that_cannot_be_built_is_local() {
        if std::env::var_os(NO_FDS).is_none() {
            // Run this test again in a child process, where the limit cannot disturb other
            // tests.
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "runtime::tests::a_copy_on_write_image_that_cannot_be_built_is_local",
                    "--test-threads=1",
                ])
                .env(NO_FDS, "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{stdout}"
            );
            return;
        }
        let wat = r#"(module (memory (export "memory") 1) (data (i32.const 0) "image"))"#;
        let code = wat::parse_str(wat).unwrap();
        let params = ExecutorParams::default();
        let compiled = pvf_prepare_worker::compile(&code, &params, PrepKind::Lenient).unwrap();
        let engine = engine::engine(&params).unwrap();
        // SAFETY: compiled a moment ago with the same engine configuration.
        let module = unsafe { Module::deserialize(&engine, &compiled.payload) }.unwrap();
        // The lowest free descriptor becomes the limit: the image's memfd cannot be opened.
        let lowest_free = {
            use std::os::fd::AsRawFd;
            std::fs::File::open("/dev/null").unwrap().as_raw_fd() as u64
        };
        nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            lowest_free,
            lowest_free,
        )
        .unwrap();
        assert!(
            std::fs::File::open("/dev/null").is_err(),
            "no descriptor left"
        );
        let result = Runtime::new(&engine, module);
        assert!(
            matches!(result, Err(RuntimeError::Local(_))),
            "{:?}",
            result.err()
        );
    }
}
