//! The straight path from code and params to a verdict: one prepare worker, one execute
//! worker, each respawned when it dies.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pvf_common::error::PrepareError;
use pvf_common::message::{ExecuteRequest, ExecuteResponse, PrepareRequest, PrepareResponse};
use pvf_common::params::{ArtifactId, ExecKind, ExecutorParams, PrepKind};
use pvf_common::worker::job_process::JobLimits;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::verdict::{InvalidReason, Verdict};
use crate::worker::{SpawnSpec, WorkerError, WorkerProcess};

/// Extra time the host gives a worker beyond the job's wall-clock backstop before it
/// declares the worker stuck: covers loading an artifact and a loaded machine.
const WORKER_GRACE: Duration = Duration::from_secs(5);

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cache directory could not be set up.
    #[error("cache dir {path}: {source}")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// A prepared artifact in the cache.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Its id.
    pub id: ArtifactId,
    /// Its file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub artifact_len: u64,
    /// Whether it was already in the cache.
    pub cached: bool,
    /// Wall time spent preparing (zero when cached).
    pub duration: Duration,
}

/// The outcome of one validation, with where the time went.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The verdict.
    pub verdict: Verdict,
    /// Time spent preparing (zero when the artifact was cached).
    pub prepare_time: Duration,
    /// Time spent executing.
    pub execute_time: Duration,
}

/// The validation host.
pub struct Host {
    config: Config,
    workers_dir: PathBuf,
    prepare: Mutex<Option<WorkerProcess>>,
    execute: Mutex<Option<ExecuteWorker>>,
}

/// An execute worker and the artifacts already linked into its dir.
struct ExecuteWorker {
    process: WorkerProcess,
    linked: HashSet<ArtifactId>,
}

impl Host {
    /// Sets up the cache dir; workers are spawned on first use.
    pub fn start(config: Config) -> Result<Self, StartError> {
        let workers_dir = config.cache_dir.join("workers");
        std::fs::create_dir_all(&workers_dir).map_err(|source| StartError::CacheDir {
            path: workers_dir.clone(),
            source,
        })?;
        Ok(Self {
            config,
            workers_dir,
            prepare: Mutex::new(None),
            execute: Mutex::new(None),
        })
    }

    /// The artifact for `code` under `params`, prepared now unless it is in the cache.
    pub async fn prepare(
        &self,
        code: &[u8],
        params: &ExecutorParams,
        kind: PrepKind,
    ) -> Result<Prepared, PrepareError> {
        let id = ArtifactId::new(code, params);
        let path = self.config.cache_dir.join(id.file_name());
        if let Ok(meta) = std::fs::metadata(&path) {
            return Ok(Prepared {
                id,
                path,
                artifact_len: meta.len(),
                cached: true,
                duration: Duration::ZERO,
            });
        }
        let start = Instant::now();
        let timeout = params.prep_timeout(kind);
        let request = PrepareRequest {
            code: code.to_vec(),
            params: params.clone(),
            id,
            timeout_ms: timeout.as_millis() as u64,
        };
        let mut slot = self.prepare.lock().await;
        let worker = match slot.as_mut() {
            Some(worker) => worker,
            None => slot.insert(
                self.spawn(&self.config.prepare_worker, "prepare")
                    .await
                    .map_err(|e| PrepareError::Internal(e.to_string()))?,
            ),
        };
        let wait = JobLimits::from_cpu(timeout).wall + WORKER_GRACE;
        let response: PrepareResponse = match worker.call(&request, wait).await {
            Ok(response) => response,
            Err(e) => {
                *slot = None;
                return Err(PrepareError::Internal(format!("prepare worker lost: {e}")));
            }
        };
        let prepared = response?;
        let from = worker.dir().join(&prepared.file_name);
        move_into_cache(&from, &path)
            .map_err(|e| PrepareError::Internal(format!("storing the artifact: {e}")))?;
        tracing::info!(artifact = %id, bytes = prepared.artifact_len, cpu_ms = prepared.cpu_ms, "prepared");
        Ok(Prepared {
            id,
            path,
            artifact_len: prepared.artifact_len,
            cached: false,
            duration: start.elapsed(),
        })
    }

    /// Validates a candidate: prepares the code if needed, then runs `validate_block`.
    pub async fn execute(
        &self,
        code: &[u8],
        params: &ExecutorParams,
        validation_params: &[u8],
        kind: ExecKind,
    ) -> Execution {
        let mut prepare_time = Duration::ZERO;
        // A bad artifact is never a verdict: delete it and prepare again, once.
        for _attempt in 0..2 {
            let prepared = match self.prepare(code, params, PrepKind::Lenient).await {
                Ok(prepared) => prepared,
                Err(e) => {
                    return Execution {
                        verdict: Verdict::from_prepare_error(e),
                        prepare_time,
                        execute_time: Duration::ZERO,
                    };
                }
            };
            prepare_time += prepared.duration;
            let start = Instant::now();
            let response = self.run(&prepared, params, validation_params, kind).await;
            let execute_time = start.elapsed();
            let verdict = match response {
                Ok(ExecuteResponse::BadArtifact(reason)) => {
                    tracing::warn!(artifact = %prepared.id, "bad artifact, re-preparing: {reason}");
                    let _ = std::fs::remove_file(&prepared.path);
                    self.forget_artifact(&prepared.id).await;
                    continue;
                }
                Ok(response) => verdict_of(response),
                Err(e) => e,
            };
            return Execution {
                verdict,
                prepare_time,
                execute_time,
            };
        }
        Execution {
            verdict: Verdict::Internal("the artifact was bad twice in a row".into()),
            prepare_time,
            execute_time: Duration::ZERO,
        }
    }

    /// Sends one execution to the execute worker, spawning it if needed.
    async fn run(
        &self,
        prepared: &Prepared,
        params: &ExecutorParams,
        validation_params: &[u8],
        kind: ExecKind,
    ) -> Result<ExecuteResponse, Verdict> {
        let timeout = params.exec_timeout(kind);
        let mut slot = self.execute.lock().await;
        let worker = match slot.as_mut() {
            Some(worker) => worker,
            None => {
                let process = self
                    .spawn(&self.config.execute_worker, "execute")
                    .await
                    .map_err(|e| Verdict::Internal(e.to_string()))?;
                slot.insert(ExecuteWorker {
                    process,
                    linked: HashSet::new(),
                })
            }
        };
        if !worker.linked.contains(&prepared.id) {
            let link = worker.process.dir().join(prepared.id.file_name());
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(&prepared.path, &link)
                .map_err(|e| Verdict::Internal(format!("linking the artifact: {e}")))?;
            worker.linked.insert(prepared.id);
        }
        let request = ExecuteRequest {
            id: prepared.id,
            params: params.clone(),
            validation_params: validation_params.to_vec(),
            timeout_ms: timeout.as_millis() as u64,
        };
        let wait = JobLimits::from_cpu(timeout).wall + WORKER_GRACE;
        match worker.process.call(&request, wait).await {
            Ok(response) => Ok(response),
            Err(e) => {
                // Dead or stuck: kill it (drop) and let the next request spawn a new one.
                *slot = None;
                Err(worker_lost(e))
            }
        }
    }

    /// Drops the execute worker's copy of an artifact so the next run loads it afresh.
    async fn forget_artifact(&self, id: &ArtifactId) {
        if let Some(worker) = self.execute.lock().await.as_mut() {
            worker.linked.remove(id);
            let _ = std::fs::remove_file(worker.process.dir().join(id.file_name()));
        }
        // The worker may hold the bad module in memory; replace it.
        *self.execute.lock().await = None;
    }

    async fn spawn(&self, program: &Path, kind: &str) -> Result<WorkerProcess, WorkerError> {
        let dir =
            self.workers_dir
                .join(format!("{kind}-{}-{}", std::process::id(), unique_suffix()));
        let spec = SpawnSpec {
            program: program.to_path_buf(),
            dir,
            timeout: self.config.spawn_timeout,
            layers: crate::worker::layers_for(self.config.sandbox),
        };
        let worker = WorkerProcess::spawn(&spec).await?;
        tracing::debug!(kind, pid = worker.pid(), "worker spawned");
        Ok(worker)
    }
}

/// The verdict for a response from the execute worker (see [`crate::verdict`]).
fn verdict_of(response: ExecuteResponse) -> Verdict {
    match response {
        ExecuteResponse::Ok { result, .. } => Verdict::Valid(result),
        ExecuteResponse::JobError(e) => Verdict::from_job_error(e),
        ExecuteResponse::TimedOut { cpu_ms } => Verdict::Invalid(InvalidReason::Timeout { cpu_ms }),
        ExecuteResponse::WallClockExceeded { wall_ms } => Verdict::PossiblyInvalid(format!(
            "wall-clock backstop hit after {wall_ms} ms without using the CPU limit"
        )),
        ExecuteResponse::JobDied(death) => Verdict::from_job_death(death),
        ExecuteResponse::BadArtifact(reason) => {
            Verdict::Internal(format!("bad artifact: {reason}"))
        }
        ExecuteResponse::WorkerError(reason) => Verdict::Internal(reason),
    }
}

/// The verdict when the execute worker died or stopped answering mid-job.
fn worker_lost(error: WorkerError) -> Verdict {
    match error {
        WorkerError::Timeout(_) | WorkerError::Frame(_) => {
            Verdict::PossiblyInvalid(format!("execute worker lost: {error}"))
        }
        other => Verdict::Internal(other.to_string()),
    }
}

/// Moves a finished artifact into the cache atomically and makes the rename durable.
fn move_into_cache(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
