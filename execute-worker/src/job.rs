//! One execution: find (or load once) the artifact's runtime, run `validate_block` in a
//! confined job process, and report how it ended.

use std::collections::HashMap;
use std::time::Duration;

use parity_scale_codec::{Decode, Encode};
use pvf_common::artifact::{self, ArtifactError};
use pvf_common::engine::{self, HOST_STACK_MARGIN};
use pvf_common::error::ExecJobError;
use pvf_common::message::{ExecuteRequest, ExecuteResponse};
use pvf_common::params::{ArtifactId, ExecutorParams};
use pvf_common::sandbox;
use pvf_common::validation::ValidationResult;
use pvf_common::worker::job_process::{
    ExitingJob, JobEnd, JobLimits, ReadyJob, RunnerError, prefork,
};
use pvf_common::worker::{Handler, WorkerContext};
use wasmtime::{Engine, Module};

use pvf_execute_worker::runtime::{Runtime, RuntimeError};

/// What the worker keeps between jobs: one engine per set of preparation parameters, each
/// artifact's runtime (loaded and verified once), and the next job process, forked while
/// the worker was idle with its execute thread already started, so that neither the fork
/// nor the thread is on the path from request to verdict.
#[derive(Default)]
pub struct Worker {
    engines: HashMap<[u8; 32], (Engine, [u8; 32])>,
    runtimes: HashMap<ArtifactId, Runtime>,
    /// The execute thread's stack size the last request asked for: the host keys workers by
    /// preparation parameters, so the next request almost always asks the same.
    stack: Option<usize>,
    /// The next job and its execute thread's stack size.
    ready: Option<(usize, ReadyJob<JobOutput>)>,
    /// The last job, which answered and may still be exiting; reaped after the reply.
    exiting: Option<ExitingJob>,
}

/// What a job process reports.
type JobOutput = Result<ValidationResult, ExecJobError>;

/// What a job process is given: only what the job reads.
#[derive(Encode, Decode)]
struct JobInput {
    id: ArtifactId,
    max_pages: u32,
    validation_params: Vec<u8>,
}

impl Handler for Worker {
    type Request = ExecuteRequest;
    type Response = ExecuteResponse;

    fn handle(&mut self, ctx: &WorkerContext, request: ExecuteRequest) -> ExecuteResponse {
        if !self.runtimes.contains_key(&request.id) {
            match self.load(ctx, &request.id, &request.params) {
                Ok(runtime) => self.runtimes.insert(request.id, runtime),
                Err(response) => return response,
            };
            // A job forked before this load does not hold the new runtime.
            self.ready = None;
        }
        let limits = JobLimits::from_cpu(Duration::from_millis(request.timeout_ms));
        // The thread holds the whole native Wasm stack plus host frames.
        let stack = usize::try_from(request.params.stack_native_max)
            .unwrap_or(usize::MAX)
            .saturating_add(HOST_STACK_MARGIN);
        self.stack = Some(stack);
        let input = JobInput {
            id: request.id,
            max_pages: request.params.max_memory_pages,
            validation_params: request.validation_params,
        }
        .encode();
        let end = match self.ready.take() {
            Some((ready_stack, job)) if ready_stack == stack => {
                job.run_until_answer(&input, limits)
            }
            _ => Err(RunnerError::NotReady),
        };
        let end = match end {
            Err(RunnerError::NotReady) => self
                .fork(ctx, stack)
                .and_then(|job| job.run_until_answer(&input, limits)),
            other => other,
        };
        response(end.map(|(end, exiting)| {
            self.exiting = exiting;
            end
        }))
    }

    fn idle(&mut self, ctx: &WorkerContext) {
        // The reply is out: wait for the last job to finish exiting before the next fork.
        self.exiting = None;
        if let (None, Some(stack), false) = (&self.ready, self.stack, self.runtimes.is_empty()) {
            match self.fork(ctx, stack) {
                Ok(job) => self.ready = Some((stack, job)),
                Err(e) => tracing::warn!("forking the next job ahead of time: {e}"),
            }
        }
    }
}

/// How a job ended, as the worker reports it.
fn response(end: Result<JobEnd<JobOutput>, RunnerError>) -> ExecuteResponse {
    match end {
        Err(e) => ExecuteResponse::WorkerError(e.to_string()),
        Ok(JobEnd::Finished {
            value: Ok(result),
            cpu,
            ..
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

impl Worker {
    /// Forks a confined job process that holds every loaded runtime and waits for its input
    /// on an execute thread with a `stack`-byte stack.
    fn fork(&self, ctx: &WorkerContext, stack: usize) -> Result<ReadyJob<JobOutput>, RunnerError> {
        let runtimes = &self.runtimes;
        prefork(
            ctx.job_isolation(),
            Some(stack),
            || sandbox::confine_job(ctx),
            |input: JobInput| {
                let runtime = runtimes.get(&input.id).ok_or_else(|| {
                    ExecJobError::Internal("the artifact was not loaded before the fork".into())
                })?;
                runtime.validate(&input.validation_params, input.max_pages)
            },
        )
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
        Runtime::new(engine, module).map_err(|e| match e {
            RuntimeError::Construction(e) => {
                ExecuteResponse::JobError(ExecJobError::Instantiation(e))
            }
            RuntimeError::Local(e) => ExecuteResponse::WorkerError(e),
        })
    }
}
