//! Running `validate_block` on a loaded module: instantiate with the host functions, put
//! the params into the allocator's first allocation, call, and read the result back.

use parity_scale_codec::Decode;
use pvf_common::error::ExecJobError;
use pvf_common::validation::ValidationResult;
use wasmtime::{
    Engine, InstancePre, Linker, Memory, MemoryType, Module, Store, StoreLimitsBuilder, Trap,
};

use crate::allocator::{FreeingBump, PAGE_SIZE};
use crate::host_functions::{self, HostError, HostState, with_allocator};
use crate::pov::decompressed_params;

/// The export every validation function provides.
const ENTRY_POINT: &str = "validate_block";

/// A module ready to run: loaded and linked once, in its artifact's holder.
pub struct Runtime {
    module: Module,
    linking: Linking,
}

/// How instances are made.
enum Linking {
    /// The module exports its memory: imports are resolved once, here.
    Resolved(InstancePre<HostState>),
    /// The module imports `env.memory`, which each instance needs afresh.
    ImportsMemory(Linker<HostState>, MemoryType),
}

/// Why a module could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The module does not link against the host functions: its own fault.
    #[error("{0:#}")]
    Link(wasmtime::Error),
    /// The copy-on-write image of its initial memory could not be built (a memfd, memory):
    /// this machine's fault, never the module's.
    #[error("building the memory image: {0:#}")]
    Image(wasmtime::Error),
}

impl Runtime {
    /// Links `module` against the host functions.
    pub fn new(engine: &Engine, module: Module) -> Result<Self, RuntimeError> {
        let linker = host_functions::linker(engine, &module).map_err(RuntimeError::Link)?;
        let memory_import = module.imports().find_map(|import| {
            (import.module() == "env" && import.name() == "memory")
                .then(|| import.ty().memory().cloned())
                .flatten()
        });
        // Build the copy-on-write image of the initial memory here, once (in the artifact's
        // holder), so that the jobs it forks map it instead of each building its own.
        module
            .initialize_copy_on_write_image()
            .map_err(RuntimeError::Image)?;
        let linking = match memory_import {
            None => Linking::Resolved(
                linker
                    .instantiate_pre(&module)
                    .map_err(RuntimeError::Link)?,
            ),
            Some(ty) => Linking::ImportsMemory(linker, ty),
        };
        Ok(Self { module, linking })
    }

    /// Runs `validate_block` on SCALE-encoded params in a fresh instance, after inflating a
    /// compressed PoV.
    pub fn validate(
        &self,
        params: &[u8],
        max_pages: u32,
    ) -> Result<ValidationResult, ExecJobError> {
        let params = decompressed_params(params)?;
        let mut store = Store::new(
            self.module.engine(),
            HostState::new(
                StoreLimitsBuilder::new()
                    .memory_size(max_pages as usize * PAGE_SIZE as usize)
                    .build(),
                max_pages.into(),
            ),
        );
        store.limiter(|state| &mut state.limits);
        let (instance, memory) = self.instantiate(&mut store)?;
        let heap_base = instance
            .get_global(&mut store, "__heap_base")
            .and_then(|g| g.get(&mut store).i32())
            .ok_or_else(|| ExecJobError::Instantiation("no i32 export `__heap_base`".into()))?;
        store.data_mut().memory = Some(memory);
        store.data_mut().allocator = Some(FreeingBump::new(heap_base as u32));
        let entry = instance
            .get_typed_func::<(i32, i32), i64>(&mut store, ENTRY_POINT)
            .map_err(|e| ExecJobError::Instantiation(format!("{ENTRY_POINT}: {e:#}")))?;

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
        let (out_ptr, out_len) = (packed as u32 as usize, (packed >> 32) as usize);
        let output = memory
            .data(&store)
            .get(out_ptr..out_ptr + out_len)
            .ok_or_else(|| {
                ExecJobError::BadResult(format!(
                    "result at {out_ptr:#x}+{out_len} is outside memory"
                ))
            })?;
        ValidationResult::decode(&mut &output[..])
            .map_err(|e| ExecJobError::BadResult(format!("undecodable result: {e}")))
    }

    /// Instantiates the module, providing `env.memory` if it imports one.
    fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> Result<(wasmtime::Instance, Memory), ExecJobError> {
        let construction = |e: wasmtime::Error| match e.downcast_ref::<HostError>() {
            Some(HostError::Unsupported(name)) => {
                ExecJobError::UnsupportedHostFunction(name.clone())
            }
            _ => ExecJobError::Instantiation(format!("{e:#}")),
        };
        match &self.linking {
            Linking::ImportsMemory(linker, ty) => {
                let memory = Memory::new(&mut *store, ty.clone()).map_err(construction)?;
                let mut linker = linker.clone();
                linker
                    .define(&*store, "env", "memory", memory)
                    .map_err(construction)?;
                let instance = linker
                    .instantiate(&mut *store, &self.module)
                    .map_err(construction)?;
                Ok((instance, memory))
            }
            Linking::Resolved(pre) => {
                let instance = pre.instantiate(&mut *store).map_err(construction)?;
                let memory = instance
                    .get_memory(&mut *store, "memory")
                    .ok_or_else(|| ExecJobError::Instantiation("no exported `memory`".into()))?;
                Ok((instance, memory))
            }
        }
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
