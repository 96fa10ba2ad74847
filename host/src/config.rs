//! Host configuration. Every knob has a default that suits a validator; the defaults are
//! Polkadot's where Polkadot has one.

use std::path::PathBuf;
use std::time::Duration;

use pvf_common::sandbox::SandboxMode;

/// Name of the prepare worker binary.
pub const PREPARE_WORKER: &str = "pvf-prepare-worker";
/// Name of the execute worker binary.
pub const EXECUTE_WORKER: &str = "pvf-execute-worker";

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
    /// Executions accepted at a time, counting those queued, waiting for their artifact and
    /// running; beyond it `execute` fails with [`crate::HostError::QueueFull`] (default: 512).
    pub max_queued_executions: usize,
    /// How long a worker has to start and hand shake (default: 10 s; spawning takes ~2 ms,
    /// the rest is headroom for a loaded machine).
    pub spawn_timeout: Duration,
    /// How long past a job's wall-clock backstop the host waits for a silent worker before
    /// it kills and replaces it (default: 5 s: loading a large artifact, a loaded machine).
    pub worker_grace: Duration,
    /// Whether workers sandbox themselves (default: enforce).
    pub sandbox: SandboxMode,
    /// How long a non-deterministic preparation failure is remembered before the code may be
    /// prepared again (default: 15 min, as Polkadot).
    pub prepare_retry_cooldown: Duration,
    /// Preparation attempts for one artifact before a non-deterministic failure is final
    /// (default: 5, as Polkadot).
    pub prepare_max_attempts: u32,
    /// Size budget of the cache in bytes; `None` never prunes (default: `None`).
    pub cache_max_size: Option<u64>,
    /// An artifact needed within this time is never pruned (default: 24 h).
    pub cache_min_stale: Duration,
    /// How often the host persists last-needed times and prunes (default: 60 s).
    pub maintenance_interval: Duration,
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
            max_queued_executions: 512,
            spawn_timeout: Duration::from_secs(10),
            worker_grace: Duration::from_secs(5),
            sandbox: SandboxMode::Enforce,
            prepare_retry_cooldown: Duration::from_secs(15 * 60),
            prepare_max_attempts: 5,
            cache_max_size: None,
            cache_min_stale: Duration::from_secs(24 * 60 * 60),
            maintenance_interval: Duration::from_secs(60),
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
