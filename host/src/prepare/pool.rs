//! The worker side of one preparation: hand the job to a prepare worker under a fresh
//! artifact file name, wait for it within the job's backstop plus a grace, and take the
//! artifact into the cache ([`intake`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pvf_common::engine;
use pvf_common::error::PrepareError;
use pvf_common::message::{PrepareRequest, PrepareResponse};
use pvf_common::worker::job_process::JobLimits;

use super::{PrepareJob, PreparedArtifact, intake};
use crate::metrics::SecurityEvent;
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
        artifact_file: fresh_artifact_name(),
        kind: job.kind,
    };
    let started = Instant::now();
    let wait = JobLimits::from_cpu(job.timeout).wall + grace;
    let response: PrepareResponse = match worker.call(&request, wait).await {
        Ok(response) => response,
        // Dead, stuck or rogue: dropping the worker kills it; the queue spawns another.
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
    // Reading, hashing, writing and syncing: blocking I/O, kept off the async threads.
    let (worker_dir, name, cache_dir, id) = (
        worker.dir().to_path_buf(),
        request.artifact_file.clone(),
        cache_dir.to_path_buf(),
        job.id,
    );
    let installed = tokio::task::spawn_blocking(move || {
        let fingerprint = engine::fingerprint()
            .map_err(|e| intake::IntakeError::Install(std::io::Error::other(e)))?;
        let installed = intake::install(&worker_dir, &name, &id, &fingerprint, &cache_dir);
        let _ = std::fs::remove_file(worker_dir.join(&name));
        installed
    })
    .await
    .unwrap_or_else(|e| Err(intake::IntakeError::Install(std::io::Error::other(e))));
    match installed {
        Ok((path, size)) => {
            tracing::info!(
                artifact = %job.id,
                bytes = size,
                cpu_ms = prepared.cpu_ms,
                max_rss_kib = prepared.max_rss_kib,
                "prepared"
            );
            let artifact = PreparedArtifact {
                path,
                size,
                duration,
                max_rss_kib: prepared.max_rss_kib,
            };
            (Some(worker), Ok(artifact))
        }
        Err(refused) if refused.is_the_workers() => {
            // It answered Ok without a good file: compromised or broken. Never reuse it.
            worker.security_event(SecurityEvent::Artifact, &refused);
            let error = PrepareError::Internal(format!("artifact file refused: {refused}"));
            (None, Err(error))
        }
        Err(failed) => {
            let error = PrepareError::Internal(format!("storing the artifact: {failed}"));
            (Some(worker), Err(error))
        }
    }
}

/// A name for the artifact file no other request of this host uses.
pub fn fresh_artifact_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("artifact-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
