//! The public API: [`start`] returns a cheap-to-clone [`ValidationHost`] handle and the
//! future that runs the host (the coordinator and both queues); the node spawns the future.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pvf_common::error::PrepareError;
use pvf_common::ipc::frame::MAX_FRAME_LEN;
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
use crate::verdict::{Reason, Verdict};
use crate::worker::{Backoff, Spawner};

/// The largest `validation_params` an execution takes: 64 MiB less room for the rest of the
/// request, far above what Polkadot's candidate validation lets through (a PoV of at most
/// `MAX_POV_SIZE`, 10 MiB) and within a frame (whose cap is sized for results). Larger params
/// are refused as a request error.
pub const MAX_VALIDATION_PARAMS_LEN: usize = 64 * 1024 * 1024 - 64 * 1024;
const _: () = assert!(MAX_VALIDATION_PARAMS_LEN < MAX_FRAME_LEN as usize);

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
    /// A backing execution waited for a worker past [`Config::backing_deadline`] and was
    /// dropped unrun: the host is overloaded. Not a verdict (Polkadot's
    /// `ExecutionDeadline`): do not vote on this candidate.
    #[error(
        "the backing job waited {waited:?} for a worker, past its deadline (the host is overloaded)"
    )]
    DeadlineExceeded {
        /// How long it waited.
        waited: Duration,
    },
    /// The time limit is too large to be enforced (it must fit in a `u64` of milliseconds).
    #[error("the time limit {0:?} is too large (at most u64::MAX milliseconds)")]
    TimeoutTooLarge(Duration),
    /// The validation params exceed what one IPC frame can carry.
    #[error("validation params of {len} bytes exceed the maximum of {MAX_VALIDATION_PARAMS_LEN}")]
    ParamsTooLarge {
        /// Their length.
        len: usize,
    },
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
    /// Time the execute worker took (the last attempt's).
    pub execute_time: Duration,
    /// How many times the execution was retried after a PossiblyInvalid or Internal verdict
    /// (approvals and disputes only; see [`ValidationHost::execute`]).
    pub retries: u32,
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
    /// CPU-time limit; `None` takes the kind's limit from the executor parameters. At most
    /// `u64::MAX` milliseconds.
    pub timeout: Option<Duration>,
}

/// A handle to a running host. Cheap to clone; the host stops when every handle is dropped.
#[derive(Clone)]
pub struct ValidationHost {
    to_host: mpsc::UnboundedSender<ToHost>,
    slots: Arc<Semaphore>,
    capacity: usize,
    retry_delay: Option<Duration>,
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
    crate::cgroup::remove_stale();
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
        retry_delay: config.execute_retry_delay,
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
        cgroup: config.worker_cgroup,
        metrics: metrics.clone(),
        backoff: Backoff {
            first: config.spawn_retry_delay,
            max: config.spawn_retry_max_delay.max(config.spawn_retry_delay),
        },
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
        backing_deadline: config.backing_deadline,
        module_cache_bytes: config.execute_worker_module_cache,
        holder_cpu_budget: config.execute_holder_cpu_budget,
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
    ///
    /// Approvals and disputes whose verdict is PossiblyInvalid or Internal are executed
    /// again, as Polkadot's candidate validation does: after [`Config::execute_retry_delay`]
    /// (3 s), at most once for each of the two verdicts, and only while the time since the
    /// request plus the delay stays within the kind's time limit; the retry gets the time
    /// left as its limit. Backing is never retried (a backer must not back a candidate on a
    /// second try). [`Execution::retries`] tells how many retries ran.
    ///
    /// Dropping the returned future cancels the request: its job never starts if it has not,
    /// and its place in the queue is free at once.
    pub async fn execute(&self, args: ExecuteArgs) -> Result<Execution, HostError> {
        let _slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| HostError::QueueFull {
                capacity: self.capacity,
            })?;
        let timeout = args
            .timeout
            .unwrap_or_else(|| args.executor_params.exec_timeout(args.kind));
        if u64::try_from(timeout.as_millis()).is_err() {
            return Err(HostError::TimeoutTooLarge(timeout));
        }
        let len = args.validation_params.len();
        if len > MAX_VALIDATION_PARAMS_LEN {
            return Err(HostError::ParamsTooLarge { len });
        }
        let started = Instant::now();
        let mut execution = self.execute_once(&args, timeout).await?;
        let Some(delay) = self.retry_delay.filter(|_| args.kind != ExecKind::Backing) else {
            return Ok(execution);
        };
        let mut retries_left = RetriesLeft {
            possibly_invalid: 1,
            internal: 1,
        };
        while started.elapsed() + delay <= timeout && retries_left.take(&execution.verdict) {
            tracing::warn!(kind = ?args.kind, "executing again in {delay:?} after {}", execution.verdict);
            tokio::time::sleep(delay).await;
            self.metrics.execute_retries.inc();
            let left = timeout.saturating_sub(started.elapsed());
            let retry = self.execute_once(&args, left).await?;
            execution = Execution {
                retries: execution.retries + 1,
                prepare_time: execution.prepare_time + retry.prepare_time,
                ..retry
            };
        }
        Ok(execution)
    }

    /// One attempt at an execution, cancelled if the caller goes away.
    async fn execute_once(
        &self,
        args: &ExecuteArgs,
        timeout: Duration,
    ) -> Result<Execution, HostError> {
        static NEXT_REQUEST: AtomicU64 = AtomicU64::new(0);
        let request = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let job = ExecuteJob {
            request,
            id: ArtifactId::new(&args.code, &args.executor_params),
            code: args.code.clone(),
            path: PathBuf::new(),
            install: 0,
            params: args.executor_params.clone(),
            validation_params: args.validation_params.clone(),
            kind: args.kind,
            timeout,
            enqueued: Instant::now(),
            prepare_time: Duration::ZERO,
            artifact_replaced: false,
            reply,
        };
        self.send(ToHost::Execute(Box::new(job)))?;
        let cancel = CancelOnDrop {
            to_host: &self.to_host,
            request: Some(request),
        };
        let answer = answer.await;
        cancel.disarm();
        answer.map_err(|_| HostError::Stopped)?
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

/// Retries left per verdict, as Polkadot's candidate validation counts them.
struct RetriesLeft {
    possibly_invalid: u32,
    internal: u32,
}

impl RetriesLeft {
    /// Whether `verdict` may be retried, spending one retry of its kind. Code that cannot be
    /// prepared deterministically is not retried (Polkadot's `ValidationError::Preparation`).
    fn take(&mut self, verdict: &Verdict) -> bool {
        let left = match verdict {
            Verdict::Internal(Reason::Preparation(e)) if e.is_deterministic() => return false,
            Verdict::PossiblyInvalid(_) => &mut self.possibly_invalid,
            Verdict::Internal(_) => &mut self.internal,
            Verdict::Valid(_) | Verdict::Invalid(_) => return false,
        };
        let any = *left > 0;
        *left = left.saturating_sub(1);
        any
    }
}

/// Tells the host that an execution's caller went away, unless disarmed first.
struct CancelOnDrop<'a> {
    to_host: &'a mpsc::UnboundedSender<ToHost>,
    request: Option<u64>,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.request = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(request) = self.request {
            let _ = self.to_host.send(ToHost::Cancel(request));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvf_common::ipc::frame;
    use pvf_common::message::ExecuteRequest;

    #[test]
    fn the_largest_params_taken_fit_in_a_frame() {
        let request = ExecuteRequest {
            id: ArtifactId::new(b"code", &ExecutorParams::default()),
            params: ExecutorParams::default(),
            validation_params: vec![0; MAX_VALIDATION_PARAMS_LEN],
            timeout_ms: u64::MAX,
            module_cache_bytes: u64::MAX,
            holder_cpu_budget_ms: u64::MAX,
        };
        assert!(frame::encode(&request).is_ok());
    }

    #[test]
    fn each_retryable_verdict_is_retried_once() {
        let mut left = RetriesLeft {
            possibly_invalid: 1,
            internal: 1,
        };
        let maybe = Verdict::PossiblyInvalid(Reason::WorkerDied("died".into()));
        let internal = Verdict::Internal(Reason::Local("io".into()));
        assert!(left.take(&maybe));
        assert!(left.take(&internal));
        assert!(!left.take(&maybe) && !left.take(&internal));
        let invalid = Verdict::Invalid(Reason::Trap("x".into()));
        let bad_code = Verdict::Internal(Reason::Preparation(
            pvf_common::error::PrepareError::Prevalidation("x".into()),
        ));
        for final_verdict in [invalid, bad_code] {
            let mut fresh = RetriesLeft {
                possibly_invalid: 1,
                internal: 1,
            };
            assert!(!fresh.take(&final_verdict), "{final_verdict}");
        }
    }
}
