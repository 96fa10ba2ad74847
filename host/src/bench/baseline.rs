//! The in-process floor: the workers' own preparation pipeline and runtime, called directly,
//! with no processes, sandbox or IPC. Everything else is identical (engine config, stack
//! instrumentation, host functions, allocator), so a ratio against it is the cost of the
//! host's isolation and nothing else.

use pvf_common::engine;
use pvf_common::params::{ExecutorParams, PrepKind};
use pvf_common::validation::ValidationResult;
use pvf_execute_worker::runtime::Runtime;
use wasmtime::Module;

use super::BenchError;

/// A module compiled and loaded in this process, ready to instantiate and call.
pub struct InProcess {
    runtime: Runtime,
    max_pages: u32,
}

impl InProcess {
    /// Compiles `code` through the prepare worker's pipeline and loads it like the execute
    /// worker does.
    pub fn load(code: &[u8], params: &ExecutorParams) -> Result<Self, BenchError> {
        let compiled = pvf_prepare_worker::compile(code, params, PrepKind::Lenient)
            .map_err(BenchError::Compile)?;
        let engine = engine::engine(params).map_err(|e| BenchError::Baseline(e.to_string()))?;
        // SAFETY: the payload was produced a moment ago, in this process, by
        // `precompile_module` on an engine with this very configuration.
        let module = unsafe { Module::deserialize(&engine, &compiled.payload) }
            .map_err(|e| BenchError::Baseline(format!("deserialize: {e:#}")))?;
        let runtime =
            Runtime::new(&engine, module).map_err(|e| BenchError::Baseline(format!("{e:#}")))?;
        Ok(Self {
            runtime,
            max_pages: params.max_memory_pages,
        })
    }

    /// Instantiates and runs `validate_block`; `Err` is the guest's failure (a trap), which
    /// is an answer here, not a bench failure.
    pub fn validate(&self, validation_params: &[u8]) -> Result<ValidationResult, String> {
        self.runtime
            .validate(validation_params, self.max_pages)
            .map_err(|e| e.to_string())
    }
}
