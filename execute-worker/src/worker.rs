//! The worker side of one execution: find the artifact's holder, or read and verify the
//! artifact file here and fork a holder for it, then hand the request to the holder within
//! the job's time and report how it ended.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pvf_common::artifact::{self, ArtifactError};
use pvf_common::engine::{self, HOST_STACK_MARGIN};
use pvf_common::message::{ExecuteAnswer, ExecuteRequest, ExecuteResponse};
use pvf_common::params::ExecutorParams;
use pvf_common::worker::job_process::JobLimits;
use pvf_common::worker::{Handler, IDLE_TICK, WorkerContext};
use wasmtime::Engine;

use crate::holder::Holder;
use crate::modules::Modules;

/// What the worker keeps between requests: one engine per set of preparation parameters
/// (made here from parameters alone, inherited by the holders), and the loaded artifacts'
/// holders. It keeps no artifact bytes: each is read, verified, handed to its holder by the
/// fork, and dropped.
#[derive(Default)]
pub struct Worker {
    engines: HashMap<[u8; 32], Engine>,
    holders: Modules<Holder>,
    /// The holders' CPU budget, as the last request gave it.
    holder_cpu_budget: Duration,
    /// When every holder's CPU time was last read.
    last_sweep: Option<Instant>,
}

impl Handler for Worker {
    type Request = ExecuteRequest;
    type Response = ExecuteAnswer;

    fn handle(&mut self, ctx: &WorkerContext, request: ExecuteRequest) -> ExecuteAnswer {
        let outcome = self.execute(ctx, request);
        ExecuteAnswer {
            outcome,
            modules: self.holders.report(),
        }
    }

    /// Retires holders past their CPU budget, between requests, at most once per
    /// [`IDLE_TICK`] (two syscalls per holder; the holder a request uses is checked then).
    fn idle(&mut self, _ctx: &WorkerContext) {
        if self
            .last_sweep
            .is_some_and(|last| last.elapsed() < IDLE_TICK)
        {
            return;
        }
        self.last_sweep = Some(Instant::now());
        let budget = self.holder_cpu_budget;
        let retired = self
            .holders
            .retain(|holder| holder.within_cpu_budget(budget));
        if retired > 0 {
            tracing::info!(retired, "artifact holders past their CPU budget retired");
        }
    }
}

impl Worker {
    fn execute(&mut self, ctx: &WorkerContext, request: ExecuteRequest) -> ExecuteResponse {
        // The thread holds the whole native Wasm stack plus host frames.
        let stack = usize::try_from(request.params.stack_native_max)
            .unwrap_or(usize::MAX)
            .saturating_add(HOST_STACK_MARGIN);
        let id = request.id;
        let budget = Duration::from_millis(request.holder_cpu_budget_ms);
        self.holder_cpu_budget = budget;
        let usable = self
            .holders
            .get(&id)
            .map(|holder| holder.is_alive() && holder.within_cpu_budget(budget));
        if usable != Some(true) {
            // Never loaded, unloaded, killed while idle, or past its CPU budget: (re)load it.
            self.holders.remove(&id);
            if let Err(response) = self.load(ctx, &request, stack) {
                return response;
            }
        }
        let Some(holder) = self.holders.get(&id) else {
            return ExecuteResponse::WorkerError("the artifact was not loaded".into());
        };
        let limits = JobLimits::from_cpu(Duration::from_millis(request.timeout_ms));
        let max_pages = request.params.max_memory_pages;
        match holder.run(stack, max_pages, request.validation_params, limits) {
            Ok(response) => response,
            Err(response) => {
                self.holders.remove(&id);
                response
            }
        }
    }

    /// Reads and verifies the artifact, makes room within the budget, and forks its holder.
    fn load(
        &mut self,
        ctx: &WorkerContext,
        request: &ExecuteRequest,
        stack: usize,
    ) -> Result<(), ExecuteResponse> {
        let engine = self.engine(&request.params)?.clone();
        let fingerprint =
            engine::fingerprint().map_err(|e| ExecuteResponse::WorkerError(e.to_string()))?;
        let path = ctx.dir.join(request.id.file_name());
        let verified =
            artifact::load_verified(&path, &fingerprint, &request.id).map_err(|e| match e {
                ArtifactError::Io(e) => {
                    ExecuteResponse::WorkerError(format!("reading the artifact: {e}"))
                }
                other => ExecuteResponse::BadArtifact(other.to_string()),
            })?;
        let bytes = verified.file_len();
        self.holders.make_room(bytes, request.module_cache_bytes);
        let holder = Holder::load(ctx, &engine, verified, stack)?;
        tracing::debug!(artifact = %request.id, bytes, "artifact loaded in its holder");
        self.holders.insert(request.id, holder, bytes);
        Ok(())
    }

    fn engine(&mut self, params: &ExecutorParams) -> Result<&Engine, ExecuteResponse> {
        match self.engines.entry(params.prep_hash()) {
            std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let engine = engine::engine(params)
                    .map_err(|e| ExecuteResponse::WorkerError(e.to_string()))?;
                Ok(entry.insert(engine))
            }
        }
    }
}
