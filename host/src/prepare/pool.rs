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
        kind: job.kind,
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
    let prepared = match response {
        Ok(prepared) => prepared,
        Err(e) => return (Some(worker), Err(e)),
    };
    // A rename and a dir fsync: blocking I/O, kept off the async threads.
    let (from, cache_dir, id) = (
        worker.dir().join(&prepared.file_name),
        cache_dir.to_path_buf(),
        job.id,
    );
    let installed = tokio::task::spawn_blocking(move || artifacts::install(&cache_dir, &from, &id))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let result = installed
        .map_err(|e| PrepareError::Internal(format!("storing the artifact: {e}")))
        .map(|path| {
            tracing::info!(
                artifact = %job.id,
                bytes = prepared.artifact_len,
                cpu_ms = prepared.cpu_ms,
                max_rss_kib = prepared.max_rss_kib,
                "prepared"
            );
            PreparedArtifact {
                path,
                size: prepared.artifact_len,
                duration,
                max_rss_kib: prepared.max_rss_kib,
            }
        });
    (Some(worker), result)
}
