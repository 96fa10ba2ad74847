//! The public API: [`start`] returns a cheap-to-clone [`ValidationHost`] handle and the
//! future that runs the host (the coordinator and both queues); the node spawns the future.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pvf_common::error::PrepareError;
use pvf_common::params::{ArtifactId, ExecKind, ExecutorParams};
use pvf_common::sandbox::SandboxMode;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::artifacts::{Artifacts, CacheError};
use crate::config::Config;
use crate::coordinator::{self, ToHost};
use crate::execute::{self, ExecuteJob};
use crate::metrics::{Flavor, Metrics, MetricsError};
use crate::prepare;
use crate::security::{self, SecurityReport};
use crate::verdict::Verdict;
use crate::worker::Spawner;

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cache could not be opened (another host holds it, or it is unusable).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// Secure mode, and the sandbox does not work on this machine.
    #[error("refusing to start: the sandbox does not work here: {}", .0.failures().join("; "))]
    Insecure(SecurityReport),
}

/// Why a request was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The execute queue is full; try again later, or raise `max_queued_executions`.
    #[error("the execute queue is full ({capacity} executions in flight)")]
    QueueFull {
        /// The configured bound.
        capacity: usize,
    },
    /// The host future has stopped (or was never spawned).
    #[error("the validation host has stopped")]
    Stopped,
}

/// Why a pre-check did not produce an artifact.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrecheckError {
    /// The code could not be prepared; [`PrepareError::is_deterministic`] tells whether the
    /// code is invalid or this machine failed.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// The host did not take the request.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// The outcome of one validation, with where the time went.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The verdict.
    pub verdict: Verdict,
    /// Time spent waiting for the artifact to be prepared (zero when it was cached).
    pub prepare_time: Duration,
    /// Time the execute worker took.
    pub execute_time: Duration,
}

/// A prepared artifact.
#[derive(Clone, Debug)]
pub struct ArtifactInfo {
    /// Its id.
    pub id: ArtifactId,
    /// Its file in the cache.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it was already prepared before this request.
    pub cached: bool,
    /// Time spent preparing it for this request (zero when cached).
    pub prepare_time: Duration,
    /// The preparation job's peak resident memory in KiB (`None` when cached).
    pub prepare_max_rss_kib: Option<u64>,
}

/// Where an artifact stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactStatus {
    /// Never asked for, or forgotten.
    Unknown,
    /// Queued or being prepared.
    Preparing,
    /// In the cache.
    Prepared {
        /// Its file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// When it was last needed.
        last_needed: SystemTime,
    },
    /// Its preparation failed; deterministic failures are final.
    Failed {
        /// The last error.
        error: PrepareError,
        /// Failed attempts so far.
        attempts: u32,
    },
}

/// What to validate.
#[derive(Clone, Debug)]
pub struct ExecuteArgs {
    /// The validation code, possibly compressed.
    pub code: Arc<Vec<u8>>,
    /// The executor parameters.
    pub executor_params: ExecutorParams,
    /// SCALE-encoded `ValidationParams`.
    pub validation_params: Arc<Vec<u8>>,
    /// The kind of validation: its priority, and its default time limit.
    pub kind: ExecKind,
    /// CPU-time limit; `None` takes the kind's limit from the executor parameters.
    pub timeout: Option<Duration>,
}

/// A handle to a running host. Cheap to clone; the host stops when every handle is dropped.
#[derive(Clone)]
pub struct ValidationHost {
    to_host: mpsc::UnboundedSender<ToHost>,
    slots: Arc<Semaphore>,
    capacity: usize,
    metrics: Metrics,
}

/// Opens the cache (lock, scan) and returns the handle and the future that runs the host.
/// In secure mode it first runs a real prepare and execute inside the full sandbox, and
/// refuses to start if any layer is missing.
pub async fn start(
    config: Config,
) -> Result<(ValidationHost, impl Future<Output = ()> + Send + 'static), StartError> {
    let metrics = Metrics::new()?;
    let artifacts = Artifacts::open(&config.cache_dir, &metrics)?;
    if config.sandbox == SandboxMode::Enforce {
        let report = security::self_test(&config).await;
        if !report.secure() {
            return Err(StartError::Insecure(report));
        }
    }
    let (prepare_config, execute_config) = queue_configs(&config, &metrics);
    let (to_host, from_handles) = mpsc::unbounded_channel();
    let (to_prepare, prepare_in) = mpsc::unbounded_channel();
    let (prepare_out, from_prepare) = mpsc::unbounded_channel();
    let (to_execute, execute_in) = mpsc::unbounded_channel();
    let (execute_out, from_execute) = mpsc::unbounded_channel();
    let coordinator = coordinator::Coordinator {
        config: config.clone(),
        artifacts,
        metrics: metrics.clone(),
        to_prepare,
        to_execute,
    };
    let run = {
        let metrics = metrics.clone();
        async move {
            tokio::join!(
                coordinator.run(from_handles, from_prepare, from_execute),
                prepare::queue::run(prepare_config, metrics.clone(), prepare_in, prepare_out),
                execute::queue::run(execute_config, metrics, execute_in, execute_out),
            );
        }
    };
    let capacity = config.max_queued_executions.max(1);
    let handle = ValidationHost {
        to_host,
        slots: Arc::new(Semaphore::new(capacity)),
        capacity,
        metrics,
    };
    Ok((handle, run))
}

/// The two queues' settings, from the host's.
fn queue_configs(
    config: &Config,
    metrics: &Metrics,
) -> (prepare::queue::QueueConfig, execute::queue::QueueConfig) {
    let workers_dir = config.cache_dir.join(crate::artifacts::scan::WORKERS_DIR);
    let spawner = |program: &PathBuf, flavor| Spawner {
        program: program.clone(),
        workers_dir: workers_dir.clone(),
        timeout: config.spawn_timeout,
        sandbox: config.sandbox,
        flavor,
        metrics: metrics.clone(),
    };
    let soft_max = config.prepare_workers_soft_max.max(1);
    let prepare = prepare::queue::QueueConfig {
        spawner: spawner(&config.prepare_worker, Flavor::Prepare),
        cache_dir: config.cache_dir.clone(),
        soft_max,
        hard_max: config.prepare_workers_hard_max.max(soft_max),
        grace: config.worker_grace,
    };
    let execute = execute::queue::QueueConfig {
        spawner: spawner(&config.execute_worker, Flavor::Execute),
        max_workers: config.execute_workers_max.max(1),
        grace: config.worker_grace,
    };
    (prepare, execute)
}

impl ValidationHost {
    /// Prepares `code` (at normal priority, with the pre-check time limit) and tells whether
    /// it could be: an error that [`PrepareError::is_deterministic`] means the code is invalid.
    pub async fn precheck(
        &self,
        code: Arc<Vec<u8>>,
        params: ExecutorParams,
    ) -> Result<ArtifactInfo, PrecheckError> {
        let id = ArtifactId::new(&code, &params);
        let (reply, answer) = oneshot::channel();
        self.send(ToHost::Precheck {
            id,
            code,
            params,
            reply,
        })?;
        answer
            .await
            .map_err(|_| HostError::Stopped)?
            .map_err(Into::into)
    }

    /// Validates a candidate: waits for the code's artifact (preparing it if needed), then
    /// runs `validate_block` on an execute worker.
    pub async fn execute(&self, args: ExecuteArgs) -> Result<Execution, HostError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| HostError::QueueFull {
                capacity: self.capacity,
            })?;
        let timeout = args
            .timeout
            .unwrap_or_else(|| args.executor_params.exec_timeout(args.kind));
        let (reply, answer) = oneshot::channel();
        let job = ExecuteJob {
            id: ArtifactId::new(&args.code, &args.executor_params),
            code: args.code,
            path: PathBuf::new(),
            params: args.executor_params,
            validation_params: args.validation_params,
            kind: args.kind,
            timeout,
            enqueued: Instant::now(),
            prepare_time: Duration::ZERO,
            artifact_replaced: false,
            reply,
            permit,
        };
        self.send(ToHost::Execute(Box::new(job)))?;
        answer.await.map_err(|_| HostError::Stopped)?
    }

    /// Prepares codes ahead of need, at background priority.
    pub fn heads_up(&self, codes: Vec<(Arc<Vec<u8>>, ExecutorParams)>) -> Result<(), HostError> {
        let items = codes
            .into_iter()
            .map(|(code, params)| (ArtifactId::new(&code, &params), code, params))
            .collect();
        self.send(ToHost::HeadsUp(items))
    }

    /// Where the artifact for `code` under `params` stands.
    pub async fn artifact_status(
        &self,
        code: &[u8],
        params: &ExecutorParams,
    ) -> Result<ArtifactStatus, HostError> {
        let (reply, answer) = oneshot::channel();
        self.send(ToHost::Status {
            id: ArtifactId::new(code, params),
            reply,
        })?;
        answer.await.map_err(|_| HostError::Stopped)
    }

    /// The host's metrics (and, through them, its Prometheus registry).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn send(&self, message: ToHost) -> Result<(), HostError> {
        self.to_host.send(message).map_err(|_| HostError::Stopped)
    }
}
