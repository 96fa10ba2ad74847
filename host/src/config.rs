//! Host configuration. Every knob has a default that suits a validator.

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
    /// Where artifacts are kept (default: `$XDG_CACHE_HOME/pvf` or `~/.cache/pvf`).
    pub cache_dir: PathBuf,
    /// The prepare worker binary (default: next to the current executable).
    pub prepare_worker: PathBuf,
    /// The execute worker binary (default: next to the current executable).
    pub execute_worker: PathBuf,
    /// How long a worker has to start and hand shake (default: 10 s; spawning takes ~2 ms,
    /// the rest is headroom for a loaded machine).
    pub spawn_timeout: Duration,
    /// Whether workers sandbox themselves (default: enforce).
    pub sandbox: SandboxMode,
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
            spawn_timeout: Duration::from_secs(10),
            sandbox: SandboxMode::Enforce,
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
