//! One execution: find (or load once) the artifact's runtime, run `validate_block` in a
//! confined job process, and report how it ended.

use std::collections::HashMap;
use std::time::Duration;

use pvf_common::artifact::{self, ArtifactError};
use pvf_common::engine::{self, HOST_STACK_MARGIN};
use pvf_common::error::ExecJobError;
use pvf_common::message::{ExecuteRequest, ExecuteResponse};
use pvf_common::params::{ArtifactId, ExecutorParams};
use pvf_common::sandbox;
use pvf_common::validation::ValidationResult;
use pvf_common::worker::WorkerContext;
use pvf_common::worker::job_process::{JobEnd, JobLimits, run_job};
use wasmtime::{Engine, Module};

use crate::runtime::Runtime;

/// What the worker keeps between jobs: one engine per set of preparation parameters, and
/// each artifact's runtime, loaded and verified once.
#[derive(Default)]
pub struct Worker {
    engines: HashMap<[u8; 32], (Engine, [u8; 32])>,
    runtimes: HashMap<ArtifactId, Runtime>,
}

impl Worker {
    /// Answers one request.
    pub fn handle(&mut self, ctx: &WorkerContext, request: ExecuteRequest) -> ExecuteResponse {
        let runtime = match self.runtime(ctx, &request.id, &request.params) {
            Ok(runtime) => runtime,
            Err(response) => return response,
        };
        let limits = JobLimits::from_cpu(Duration::from_millis(request.timeout_ms));
        let stack = request.params.stack_native_max as usize + HOST_STACK_MARGIN;
        let max_pages = request.params.max_memory_pages;
        let end = run_job(
            limits,
            || sandbox::confine_job(ctx),
            || {
                on_big_stack(stack, || {
                    runtime.validate(&request.validation_params, max_pages)
                })
            },
        );
        match end {
            Err(e) => ExecuteResponse::WorkerError(e.to_string()),
            Ok(JobEnd::Finished {
                value: Ok(result),
                cpu,
            }) => ExecuteResponse::Ok {
                result,
                cpu_ms: cpu.as_millis() as u64,
            },
            Ok(JobEnd::Finished { value: Err(e), .. }) => ExecuteResponse::JobError(e),
            Ok(JobEnd::TimedOut { cpu }) => ExecuteResponse::TimedOut {
                cpu_ms: cpu.as_millis() as u64,
            },
            Ok(JobEnd::WallClockExceeded { wall }) => ExecuteResponse::WallClockExceeded {
                wall_ms: wall.as_millis() as u64,
            },
            Ok(JobEnd::Died(death)) => ExecuteResponse::JobDied(death),
        }
    }

    /// The runtime for `id`, loading and verifying the artifact file on first use.
    fn runtime(
        &mut self,
        ctx: &WorkerContext,
        id: &ArtifactId,
        params: &ExecutorParams,
    ) -> Result<&Runtime, ExecuteResponse> {
        if !self.runtimes.contains_key(id) {
            let runtime = self.load(ctx, id, params)?;
            self.runtimes.insert(*id, runtime);
        }
        self.runtimes
            .get(id)
            .ok_or_else(|| ExecuteResponse::WorkerError("runtime vanished".into()))
    }

    fn load(
        &mut self,
        ctx: &WorkerContext,
        id: &ArtifactId,
        params: &ExecutorParams,
    ) -> Result<Runtime, ExecuteResponse> {
        let (engine, fingerprint) = match self.engines.entry(params.prep_hash()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let engine = engine::engine(params)
                    .map_err(|e| ExecuteResponse::WorkerError(e.to_string()))?;
                let fingerprint = engine::fingerprint()
                    .map_err(|e| ExecuteResponse::WorkerError(e.to_string()))?;
                entry.insert((engine, fingerprint))
            }
        };
        let path = ctx.dir.join(id.file_name());
        let verified = artifact::load_verified(&path, fingerprint, id).map_err(|e| match e {
            ArtifactError::Io(e) => {
                ExecuteResponse::WorkerError(format!("reading the artifact: {e}"))
            }
            other => ExecuteResponse::BadArtifact(other.to_string()),
        })?;
        // SAFETY: these bytes were written by our prepare job for this engine configuration
        // (the fingerprint matches) and are exactly the bytes written (the checksum matches).
        let module = unsafe { Module::deserialize(engine, verified.payload()) }
            .map_err(|e| ExecuteResponse::BadArtifact(format!("deserialize: {e:#}")))?;
        tracing::debug!(artifact = %id, "artifact loaded");
        Runtime::new(engine, module)
            .map_err(|e| ExecuteResponse::JobError(ExecJobError::Instantiation(format!("{e:#}"))))
    }
}

/// Runs `f` on a thread whose stack holds the whole native Wasm stack plus host frames.
fn on_big_stack(
    stack: usize,
    f: impl FnOnce() -> Result<ValidationResult, ExecJobError> + Send,
) -> Result<ValidationResult, ExecJobError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("execute".into())
            .stack_size(stack)
            .spawn_scoped(scope, f)
            .map_err(|e| ExecJobError::Internal(format!("spawning the execute thread: {e}")))?;
        thread
            .join()
            .map_err(|_| ExecJobError::Internal("the execute thread panicked".into()))?
    })
}
