//! The worker side of one preparation: hand the job to a prepare worker, wait for it within
//! the job's backstop plus a grace, and move the artifact into the cache.

use std::path::Path;
use std::time::{Duration, Instant};

use pvf_common::error::PrepareError;
use pvf_common::message::{PrepareRequest, PrepareResponse};
use pvf_common::worker::job_process::JobLimits;

use super::{PrepareJob, PreparedArtifact};
use crate::artifacts;
use crate::worker::WorkerProcess;

/// Runs `job` on `worker`. Returns the worker if it is still usable, and the outcome.
pub async fn run(
    mut worker: WorkerProcess,
    job: &PrepareJob,
    cache_dir: &Path,
    grace: Duration,
) -> (
    Option<WorkerProcess>,
    Result<PreparedArtifact, PrepareError>,
) {
    let request = PrepareRequest {
        code: job.code.to_vec(),
        params: job.params.clone(),
        id: job.id,
        timeout_ms: job.timeout.as_millis() as u64,
    };
    let started = Instant::now();
    let wait = JobLimits::from_cpu(job.timeout).wall + grace;
    let response: PrepareResponse = match worker.call(&request, wait).await {
        Ok(response) => response,
        // Dead or stuck: dropping the worker kills it; the queue spawns another.
        Err(e) => {
            let error = PrepareError::Internal(format!("prepare worker lost: {e}"));
            return (None, Err(error));
        }
    };
    let duration = started.elapsed();
    let result = response.and_then(|prepared| {
        let from = worker.dir().join(&prepared.file_name);
        let path = artifacts::install(cache_dir, &from, &job.id)
            .map_err(|e| PrepareError::Internal(format!("storing the artifact: {e}")))?;
        tracing::info!(
            artifact = %job.id,
            bytes = prepared.artifact_len,
            cpu_ms = prepared.cpu_ms,
            "prepared"
        );
        Ok(PreparedArtifact {
            path,
            size: prepared.artifact_len,
            duration,
        })
    });
    (Some(worker), result)
}
