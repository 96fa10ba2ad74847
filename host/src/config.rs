//! Host configuration. Every knob has a default that suits a validator; the defaults are
//! Polkadot's where Polkadot has one.

use std::path::PathBuf;
use std::time::Duration;

use pvf_common::sandbox::SandboxMode;

use crate::cgroup::CgroupLimits;

/// Name of the prepare worker binary.
pub const PREPARE_WORKER: &str = "pvf-prepare-worker";
/// Name of the execute worker binary.
pub const EXECUTE_WORKER: &str = "pvf-execute-worker";

/// The cache's default size budget: Polkadot's 10 GiB.
pub const DEFAULT_CACHE_MAX_SIZE: u64 = 10 * 1024 * 1024 * 1024;

/// How the host runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where artifacts are kept (default: `$XDG_CACHE_HOME/pvf` or `~/.cache/pvf`, see
    /// [`default_cache_dir`]). The host locks it: one host per cache dir.
    pub cache_dir: PathBuf,
    /// The prepare worker binary (default: next to the current executable).
    pub prepare_worker: PathBuf,
    /// The execute worker binary (default: next to the current executable).
    pub execute_worker: PathBuf,
    /// Prepare workers kept for normal and background work (default: 1, as Polkadot).
    pub prepare_workers_soft_max: usize,
    /// Prepare workers at most; critical work may use the room above the soft limit
    /// (default: 2, as Polkadot).
    pub prepare_workers_hard_max: usize,
    /// Execute workers at most (default: 2, as Polkadot).
    pub execute_workers_max: usize,
    /// Bytes of artifacts each execute worker keeps loaded, summed as artifact file sizes
    /// (default: 1 GiB, some fifty of today's largest runtimes). Each loaded artifact lives
    /// in its own process of about its size; past the budget (or past 128 artifacts) the
    /// least recently used is unloaded, and loaded again (milliseconds) when it is next
    /// needed.
    pub execute_worker_module_cache: u64,
    /// CPU time an artifact holder may use itself before its worker retires it (default:
    /// 10 s). A holder spends well under a millisecond per request loading, forking and
    /// supervising its jobs (whose time is theirs), so an honest one is loaded afresh after
    /// tens of thousands of requests; one compromised through its artifact that spins while
    /// idle is killed within a second of passing it.
    pub execute_holder_cpu_budget: Duration,
    /// Executions accepted at a time, counting those queued, waiting for their artifact and
    /// running; beyond it `execute` fails with [`crate::HostError::QueueFull`] (default: 512).
    pub max_queued_executions: usize,
    /// How long a worker has to start and hand shake (default: 10 s; spawning takes ~2 ms,
    /// the rest is headroom for a loaded machine).
    pub spawn_timeout: Duration,
    /// Wait before retrying a failed worker spawn; it doubles on each failure in a row up to
    /// [`Config::spawn_retry_max_delay`] (default: 250 ms). A failed spawn (`EAGAIN`, a
    /// worker that dies at start) is this machine's trouble, so the queues retry forever and
    /// never fail the jobs waiting for the worker, as Polkadot does.
    pub spawn_retry_delay: Duration,
    /// The longest wait between spawn retries (default: 3 s, Polkadot's fixed retry delay).
    pub spawn_retry_max_delay: Duration,
    /// How long past a job's wall-clock backstop the host waits for a silent worker before
    /// it kills and replaces it (default: 5 s: loading a large artifact, a loaded machine).
    pub worker_grace: Duration,
    /// Whether workers sandbox themselves (default: enforce).
    pub sandbox: SandboxMode,
    /// The memory and process bounds of each worker's cgroup, covering its jobs (default:
    /// [`CgroupLimits::default`]: 4 GiB, 32 + 4 per core).
    pub worker_cgroup: CgroupLimits,
    /// How long a non-deterministic preparation failure is remembered before the code may be
    /// prepared again (default: 15 min, as Polkadot).
    pub prepare_retry_cooldown: Duration,
    /// Preparation attempts for one artifact before a non-deterministic failure is final
    /// (default: 5, as Polkadot).
    pub prepare_max_attempts: u32,
    /// Size budget of the cache in bytes; `None` never prunes (default: 10 GiB, as Polkadot).
    pub cache_max_size: Option<u64>,
    /// An artifact needed within this time is never pruned, even over the budget (default:
    /// 24 h, as Polkadot).
    pub cache_min_stale: Duration,
    /// How often the host persists last-needed times and prunes (default: 60 s). Both run on
    /// a blocking thread, so a slow disk delays them, not scheduling.
    pub maintenance_interval: Duration,
    /// How long a backing execution may wait in the execute queue for a worker; past it the
    /// job is dropped unrun and `execute` fails with [`crate::HostError::DeadlineExceeded`]
    /// (default: 12 s). Polkadot drops a backing job once its relay parent has left the
    /// allowed ancestry (a few 6 s blocks); this host has no view of the relay chain, so it
    /// measures the wait instead. `None` never drops. Approvals and disputes have no deadline.
    pub backing_deadline: Option<Duration>,
    /// Delay before an approval or dispute whose verdict is PossiblyInvalid or Internal is
    /// executed again; `None` turns retries off (default: 3 s, as Polkadot's candidate
    /// validation). See [`crate::ValidationHost::execute`] for which verdicts are retried.
    pub execute_retry_delay: Option<Duration>,
}

impl Config {
    /// Defaults, with artifacts in `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> Self {
        let dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .unwrap_or_default();
        Self {
            cache_dir,
            prepare_worker: dir.join(PREPARE_WORKER),
            execute_worker: dir.join(EXECUTE_WORKER),
            prepare_workers_soft_max: 1,
            prepare_workers_hard_max: 2,
            execute_workers_max: 2,
            execute_worker_module_cache: 1 << 30,
            execute_holder_cpu_budget: Duration::from_secs(10),
            max_queued_executions: 512,
            spawn_timeout: Duration::from_secs(10),
            spawn_retry_delay: Duration::from_millis(250),
            spawn_retry_max_delay: Duration::from_secs(3),
            worker_grace: Duration::from_secs(5),
            sandbox: SandboxMode::Enforce,
            worker_cgroup: CgroupLimits::default(),
            prepare_retry_cooldown: Duration::from_secs(15 * 60),
            prepare_max_attempts: 5,
            cache_max_size: Some(DEFAULT_CACHE_MAX_SIZE),
            cache_min_stale: Duration::from_secs(24 * 60 * 60),
            maintenance_interval: Duration::from_secs(60),
            backing_deadline: Some(Duration::from_secs(12)),
            execute_retry_delay: Some(Duration::from_secs(3)),
        }
    }
}

/// The user's cache dir for pvf: `$XDG_CACHE_HOME/pvf`, else `$HOME/.cache/pvf`, else
/// `./.pvf-cache`.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match base {
        Some(base) => base.join("pvf"),
        None => PathBuf::from(".pvf-cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_by_default_like_polkadots() {
        let config = Config::new(PathBuf::from("/cache"));
        assert_eq!(config.cache_max_size, Some(10 * 1024 * 1024 * 1024));
        assert_eq!(config.cache_min_stale, Duration::from_secs(24 * 60 * 60));
    }
}
