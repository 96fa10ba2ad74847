//! The persistent artifact cache: one file per artifact in the cache dir, owned by one host
//! at a time ([`lock`]), indexed at start by a header-only scan ([`scan`]), with last-needed
//! times that survive restarts ([`meta`]) and size-bounded pruning ([`prune`]).
//!
//! Only headers are read here. Payload checksums are verified by the execute worker on the
//! bytes it deserializes; a mismatch comes back as a bad artifact, and the host deletes the
//! file and prepares it again.
//!
//! [`Artifacts`] is the index, and does no I/O after the start-up scan: removing an entry
//! hands back the file to delete, and the last-needed times come out as a snapshot to store,
//! so the coordinator can do both on a blocking thread ([`delete_files`], [`meta::store`])
//! and a slow disk never stalls scheduling.

pub mod lock;
pub mod meta;
pub mod prune;
pub mod scan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pvf_common::engine::{self, EngineError};
use pvf_common::params::ArtifactId;

use crate::metrics::Metrics;
use lock::{CacheLock, LockError};

/// Why the cache could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache dir could not be created or read.
    #[error("cache dir {path}: {source}")]
    Dir {
        /// The dir.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Another host owns it, or the lock failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The engine fingerprint could not be computed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A prepared artifact in the cache.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its file.
    pub path: PathBuf,
    /// The file's real size.
    pub size: u64,
    /// When an execution or pre-check last needed it.
    pub last_needed: SystemTime,
    /// Which install of the artifact this file is, unique for the host's life. A report
    /// about a file names its install, so a late report about a deleted file never deletes
    /// the one prepared to replace it.
    pub install: u64,
}

/// The cache, locked for this host.
pub struct Artifacts {
    dir: PathBuf,
    entries: HashMap<ArtifactId, Entry>,
    metrics: Metrics,
    dirty: bool,
    next_install: u64,
    _lock: CacheLock,
}

impl Artifacts {
    /// Locks `cache_dir`, cleans it and indexes our valid artifacts.
    pub fn open(cache_dir: &Path, metrics: &Metrics) -> Result<Self, CacheError> {
        let dir_err = |source| CacheError::Dir {
            path: cache_dir.to_path_buf(),
            source,
        };
        private_dirs(cache_dir).map_err(dir_err)?;
        let lock = CacheLock::acquire(cache_dir)?;
        let fingerprint = engine::fingerprint()?;
        let found = scan::inspect(cache_dir, &fingerprint).map_err(dir_err)?;
        let (kept, removed) = scan::clean(found);
        for reason in &removed {
            metrics.scan_removed.with_label_values(&[reason]).inc();
        }
        let times = meta::load(cache_dir);
        let mut entries = HashMap::new();
        for entry in kept {
            match entry.class {
                scan::Class::Artifact { id, size, modified } => {
                    let last_needed = times.get(&id).copied().unwrap_or(modified);
                    let path = entry.path;
                    let install = entries.len() as u64;
                    let found = Entry {
                        path,
                        size,
                        last_needed,
                        install,
                    };
                    entries.insert(id, found);
                }
                scan::Class::Unreadable(e) => {
                    tracing::warn!(path = %entry.path.display(), "cache scan: unreadable, kept but not used: {e}");
                    metrics.scan_unreadable.inc();
                }
                _ => {}
            }
        }
        metrics.scan_kept.inc_by(entries.len() as u64);
        tracing::info!(
            dir = %cache_dir.display(),
            kept = entries.len(),
            removed = removed.len(),
            "artifact cache scanned"
        );
        let artifacts = Self {
            dir: cache_dir.to_path_buf(),
            next_install: entries.len() as u64,
            entries,
            metrics: metrics.clone(),
            dirty: true,
            _lock: lock,
        };
        artifacts.update_gauges();
        Ok(artifacts)
    }

    /// The cache dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact, if prepared.
    pub fn get(&self, id: &ArtifactId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Every artifact.
    pub fn iter(&self) -> impl Iterator<Item = (&ArtifactId, &Entry)> {
        self.entries.iter()
    }

    /// Records that `id` was needed at `now`.
    pub fn touch(&mut self, id: &ArtifactId, now: SystemTime) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.last_needed = now;
            self.dirty = true;
        }
    }

    /// Indexes a freshly installed artifact; returns the entry's install number.
    pub fn insert(&mut self, id: ArtifactId, path: PathBuf, size: u64, now: SystemTime) -> u64 {
        let install = self.next_install;
        self.next_install += 1;
        let entry = Entry {
            path,
            size,
            last_needed: now,
            install,
        };
        self.entries.insert(id, entry);
        self.dirty = true;
        self.update_gauges();
        install
    }

    /// Forgets `id` if its entry is the install `install`; returns the file to delete.
    /// Another install (a newer file) is left alone.
    pub fn remove(&mut self, id: &ArtifactId, install: u64) -> Option<PathBuf> {
        if self.entries.get(id)?.install != install {
            return None;
        }
        let entry = self.entries.remove(id)?;
        self.dirty = true;
        self.update_gauges();
        Some(entry.path)
    }

    /// Forgets least-recently-needed artifacts until the rest fit in `budget` bytes, never
    /// one needed within `min_stale`. Returns what was forgotten, with the files to delete.
    pub fn prune(
        &mut self,
        budget: u64,
        min_stale: Duration,
        now: SystemTime,
    ) -> Vec<(ArtifactId, PathBuf)> {
        let candidates = self
            .entries
            .iter()
            .map(|(id, e)| prune::Candidate {
                id: *id,
                size: e.size,
                last_needed: e.last_needed,
            })
            .collect();
        let chosen = prune::select(candidates, budget, min_stale, now);
        let mut pruned = Vec::new();
        for id in chosen {
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            if let Some(path) = self.remove(&id, entry.install) {
                tracing::info!(artifact = %id, "pruned");
                self.metrics.pruned.inc();
                pruned.push((id, path));
            }
        }
        pruned
    }

    /// The last-needed times to store, if they changed since the last snapshot.
    pub fn take_times_to_store(&mut self) -> Option<Vec<(ArtifactId, SystemTime)>> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(
            self.entries
                .iter()
                .map(|(id, e)| (*id, e.last_needed))
                .collect(),
        )
    }

    /// Storing the last snapshot failed: take another next time.
    pub fn store_failed(&mut self) {
        self.dirty = true;
    }

    /// Writes the last-needed times if they changed, on this thread (at shutdown).
    pub fn persist(&mut self) {
        if let Some(times) = self.take_times_to_store()
            && let Err(e) = meta::store(&self.dir, &times)
        {
            tracing::warn!("writing the cache metadata: {e}");
            self.store_failed();
        }
    }

    fn update_gauges(&self) {
        let bytes: u64 = self.entries.values().map(|e| e.size).sum();
        self.metrics.cache_bytes.set(bytes as i64);
        self.metrics.cache_artifacts.set(self.entries.len() as i64);
    }
}

impl Drop for Artifacts {
    fn drop(&mut self) {
        self.persist();
    }
}

/// Deletes artifact files the index has forgotten (blocking I/O: call it off the async
/// threads). A file already gone is fine.
pub fn delete_files(paths: &[PathBuf]) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), "removing an artifact: {e}");
        }
    }
}

/// Creates the cache dir and its workers dir if missing, and makes both 0700: only the host
/// may list, read or write them (artifacts are readable by workers through the links the
/// host makes in their own dirs).
fn private_dirs(cache_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let workers = cache_dir.join(scan::WORKERS_DIR);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&workers)?;
    for dir in [cache_dir, &workers] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
