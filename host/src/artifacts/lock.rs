//! One host per cache dir: an `flock` on `<cache>/.lock`. The lock lives as long as the open
//! file, and the file is opened `O_CLOEXEC`, so workers never inherit it and it dies with
//! the host, even on SIGKILL.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Name of the lock file inside the cache dir.
pub const LOCK_FILE: &str = ".lock";

/// Why the cache could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "cache dir {0} is in use by another pvf host; stop it, or give this one its own --cache-dir"
    )]
    Busy(PathBuf),
    /// The lock file could not be opened or locked.
    #[error("locking {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Holds the cache dir's lock until dropped.
pub struct CacheLock {
    _lock: Flock<File>,
}

impl CacheLock {
    /// Takes the lock without waiting.
    pub fn acquire(cache_dir: &Path) -> Result<Self, LockError> {
        let path = cache_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // std opens with O_CLOEXEC. Read-only (created if missing): a lock needs no write
        // access, and a file held open for writing would keep the cache's filesystem from
        // being remounted read-only.
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_CREAT)
            .open(&path)
            .map_err(io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err((_, Errno::EWOULDBLOCK)) => Err(LockError::Busy(cache_dir.to_path_buf())),
            Err((_, errno)) => Err(io(std::io::Error::from(errno))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = CacheLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            CacheLock::acquire(dir.path()),
            Err(LockError::Busy(_))
        ));
        drop(first);
        CacheLock::acquire(dir.path()).unwrap();
    }
}
