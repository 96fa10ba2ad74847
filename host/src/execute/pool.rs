//! The worker side of one execution: link the artifact into the worker's dir (once per
//! worker), send the request, wait within the job's backstop plus a grace, and map the
//! answer to a verdict.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use pvf_common::message::{ExecuteAnswer, ExecuteRequest, ExecuteResponse, LoadedModules};
use pvf_common::params::ArtifactId;
use pvf_common::worker::job_process::JobLimits;

use super::ExecuteJob;
use crate::metrics::Metrics;
use crate::verdict::{Reason, Verdict};
use crate::worker::{WorkerError, WorkerProcess};

/// An execute worker, the executor parameters it serves, and the artifacts in its dir.
pub struct ExecWorker {
    /// The process.
    pub process: WorkerProcess,
    /// [`pvf_common::params::ExecutorParams::prep_hash`] of the jobs it runs.
    pub key: [u8; 32],
    /// Artifacts linked into its dir (and loaded once it ran them).
    pub linked: HashSet<ArtifactId>,
    /// What it keeps loaded, as the metrics count it.
    pub loaded: LoadedGauge,
}

/// One worker's share of the loaded-artifact metrics: updated from each answer, taken back
/// out when the worker goes.
pub struct LoadedGauge {
    bytes: IntGauge,
    artifacts: IntGauge,
    evictions: IntCounter,
    current: LoadedModules,
}

impl LoadedGauge {
    /// Nothing loaded yet.
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            bytes: metrics.execute_loaded_bytes.clone(),
            artifacts: metrics.execute_loaded_artifacts.clone(),
            evictions: metrics.execute_evictions.clone(),
            current: LoadedModules::default(),
        }
    }

    fn update(&mut self, now: LoadedModules) {
        self.bytes.add(now.bytes as i64 - self.current.bytes as i64);
        self.artifacts
            .add(i64::from(now.count) - i64::from(self.current.count));
        self.evictions.inc_by(now.evicted.into());
        self.current = now;
    }
}

impl Drop for LoadedGauge {
    fn drop(&mut self) {
        self.update(LoadedModules::default());
    }
}

/// How long to wait for a worker, and what it may keep loaded.
#[derive(Clone, Copy)]
pub struct RunLimits {
    /// Extra wait beyond a job's backstop before a silent worker is killed.
    pub grace: Duration,
    /// Bytes of artifacts the worker may keep loaded.
    pub module_cache_bytes: u64,
    /// CPU time an artifact holder may use itself before the worker retires it.
    pub holder_cpu_budget: Duration,
}

/// How one execution ended.
pub enum Outcome {
    /// A verdict on the candidate.
    Verdict(Verdict),
    /// The worker refused the artifact file: never a verdict; prepare it again.
    BadArtifact(String),
}

/// Runs `job` on `worker`. Returns the worker if it is still usable, the outcome, and the
/// time the worker took.
pub async fn run(
    mut worker: ExecWorker,
    job: &ExecuteJob,
    limits: RunLimits,
) -> (Option<ExecWorker>, Outcome, Duration) {
    let started = Instant::now();
    match link(&mut worker, job) {
        Ok(()) => {}
        // Deleted under us (by the operator, or pruned): prepare it again, like a bad file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let reason = format!("artifact file missing: {e}");
            return (
                Some(worker),
                Outcome::BadArtifact(reason),
                started.elapsed(),
            );
        }
        Err(e) => {
            let verdict = Verdict::Internal(Reason::Local(format!("linking the artifact: {e}")));
            return (Some(worker), Outcome::Verdict(verdict), started.elapsed());
        }
    }
    let request = ExecuteRequest {
        id: job.id,
        params: job.params.clone(),
        validation_params: job.validation_params.to_vec(),
        timeout_ms: job.timeout.as_millis() as u64,
        module_cache_bytes: limits.module_cache_bytes,
        holder_cpu_budget_ms: limits.holder_cpu_budget.as_millis() as u64,
    };
    let wait = JobLimits::from_cpu(job.timeout).wall + limits.grace;
    let answer = worker
        .process
        .call::<_, ExecuteAnswer>(&request, wait)
        .await;
    let elapsed = started.elapsed();
    let response = answer.map(|answer| {
        worker.loaded.update(answer.modules);
        answer.outcome
    });
    match response {
        Ok(ExecuteResponse::BadArtifact(reason)) => {
            unlink(&mut worker, &job.id);
            (Some(worker), Outcome::BadArtifact(reason), elapsed)
        }
        Ok(response) => (
            Some(worker),
            Outcome::Verdict(Verdict::from_execute_response(response)),
            elapsed,
        ),
        // Dead or stuck: dropping the worker kills it; the queue spawns another.
        Err(e) => (None, Outcome::Verdict(worker_lost(e)), elapsed),
    }
}

/// Hard-links the artifact into the worker's dir, where its sandbox lets it read. A link to
/// an older file of the same id (deleted as bad, then prepared again) is replaced.
fn link(worker: &mut ExecWorker, job: &ExecuteJob) -> std::io::Result<()> {
    let link = worker.process.dir().join(job.id.file_name());
    let current = std::fs::metadata(&job.path)?.ino();
    if std::fs::metadata(&link).is_ok_and(|m| m.ino() == current) {
        return Ok(());
    }
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(&job.path, &link)?;
    worker.linked.insert(job.id);
    Ok(())
}

/// Removes the worker's link to an artifact.
pub fn unlink(worker: &mut ExecWorker, id: &ArtifactId) {
    worker.linked.remove(id);
    let _ = std::fs::remove_file(worker.process.dir().join(id.file_name()));
}

/// The verdict when the execute worker died or stopped answering mid-job.
fn worker_lost(error: WorkerError) -> Verdict {
    match error {
        WorkerError::Timeout(_) => {
            Verdict::PossiblyInvalid(Reason::WallClock(format!("execute worker lost: {error}")))
        }
        WorkerError::Frame(_) => {
            Verdict::PossiblyInvalid(Reason::WorkerDied(format!("execute worker lost: {error}")))
        }
        other => Verdict::Internal(Reason::Local(other.to_string())),
    }
}
