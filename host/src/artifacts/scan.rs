//! Classifying what is in a cache dir, by reading headers only, and the start-up clean-up
//! that acts on it.
//!
//! Ours: files named `<id>.pvfa` (artifacts), `<id>.pvfa.tmp` and the metadata's temp file
//! (temporaries), the lock, the metadata file, and `workers/` with its `prepare-*` and
//! `execute-*` dirs. Everything else belongs to someone else and is left alone, in case the
//! operator pointed the cache at a shared dir.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pvf_common::artifact::{self, ArtifactError};
use pvf_common::params::{ARTIFACT_EXTENSION, ArtifactId};

use super::meta;

/// Name of the dir holding worker dirs.
pub const WORKERS_DIR: &str = "workers";

/// What a file in the cache dir is.
#[derive(Debug)]
pub enum Class {
    /// One of our artifacts, with a header that checks out (the payload is not read).
    Artifact {
        /// Its id.
        id: ArtifactId,
        /// Its real size.
        size: u64,
        /// When it was written.
        modified: SystemTime,
    },
    /// Named as our artifact, but its header is bad, names another id, or disagrees with
    /// the file's length.
    BadHeader(ArtifactError),
    /// Named as our artifact, but reading it failed (`EACCES`, `EIO`): nothing says it is
    /// corrupt, so it is kept on disk, but not used.
    Unreadable(ArtifactError),
    /// Our artifact, compiled by another engine or for other CPU features.
    ForeignFingerprint,
    /// A temporary file of ours, left by an interrupted write.
    Temp,
    /// A worker dir left by a previous host.
    StaleWorkerDir,
    /// Our lock or metadata file.
    Own,
    /// Not ours.
    Foreign,
}

impl Class {
    /// Whether a start-up scan deletes it, and the metric label saying why.
    pub fn removal_reason(&self) -> Option<&'static str> {
        match self {
            Self::BadHeader(_) => Some("bad_header"),
            Self::ForeignFingerprint => Some("foreign_fingerprint"),
            Self::Temp => Some("temp"),
            Self::StaleWorkerDir => Some("stale_worker_dir"),
            Self::Artifact { .. } | Self::Unreadable(_) | Self::Own | Self::Foreign => None,
        }
    }
}

/// A classified entry.
#[derive(Debug)]
pub struct Entry {
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub class: Class,
}

/// Classifies everything in `cache_dir` and in its workers dir, reading only headers.
pub fn inspect(cache_dir: &Path, fingerprint: &[u8; 32]) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(cache_dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == WORKERS_DIR && entry.file_type()?.is_dir() {
            entries.extend(worker_dirs(&path)?);
            continue;
        }
        let class = classify(&path, &name, fingerprint);
        entries.push(Entry { path, class });
    }
    Ok(entries)
}

fn worker_dirs(workers: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(workers)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("prepare-") || name.starts_with("execute-");
        entries.push(Entry {
            path: entry.path(),
            class: if ours {
                Class::StaleWorkerDir
            } else {
                Class::Foreign
            },
        });
    }
    Ok(entries)
}

fn classify(path: &Path, name: &str, fingerprint: &[u8; 32]) -> Class {
    if name == super::lock::LOCK_FILE || name == meta::META_FILE {
        return Class::Own;
    }
    if name == meta::META_TEMP || name.ends_with(&format!(".{ARTIFACT_EXTENSION}.tmp")) {
        return Class::Temp;
    }
    if !name.ends_with(&format!(".{ARTIFACT_EXTENSION}")) || !path.is_file() {
        return Class::Foreign;
    }
    let (header, size) = match artifact::read_header(path) {
        Ok(found) => found,
        Err(e @ ArtifactError::Io(_)) => return Class::Unreadable(e),
        Err(e) => return Class::BadHeader(e),
    };
    if &header.fingerprint != fingerprint {
        return Class::ForeignFingerprint;
    }
    let Some(id) = ArtifactId::from_file_name(name) else {
        return Class::BadHeader(ArtifactError::WrongId);
    };
    if let Err(e) = header.check(fingerprint, &id, size) {
        return Class::BadHeader(e);
    }
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Class::Artifact { id, size, modified }
}

/// Deletes what a start-up scan deletes; returns the kept entries and the removal reasons.
pub fn clean(entries: Vec<Entry>) -> (Vec<Entry>, Vec<&'static str>) {
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for entry in entries {
        let Some(reason) = entry.class.removal_reason() else {
            kept.push(entry);
            continue;
        };
        let result = match entry.class {
            Class::StaleWorkerDir => std::fs::remove_dir_all(&entry.path),
            _ => std::fs::remove_file(&entry.path),
        };
        match result {
            Ok(()) => {
                tracing::info!(path = %entry.path.display(), reason, "cache scan removed");
                removed.push(reason);
            }
            Err(e) => tracing::warn!(path = %entry.path.display(), "cache scan: removing: {e}"),
        }
    }
    (kept, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvf_common::artifact::Header;
    use pvf_common::params::ExecutorParams;

    #[test]
    fn every_kind_of_file_is_classified() {
        let dir = tempfile::tempdir().unwrap();
        let fp = [7; 32];
        let id = ArtifactId::new(b"code", &ExecutorParams::default());
        let write = |name: &str, fp: [u8; 32], payload: &[u8]| {
            let header = Header::describe(fp, id, payload);
            artifact::write(&dir.path().join(name), &header, payload).unwrap();
        };
        write(&id.file_name(), fp, b"payload");
        let other = ArtifactId::new(b"other", &ExecutorParams::default());
        write(&other.file_name(), [8; 32], b"payload");
        let third = ArtifactId::new(b"third", &ExecutorParams::default());
        write(&third.file_name(), fp, b"payload"); // header names `id`, file `third`
        std::fs::write(dir.path().join("x.pvfa.tmp"), b"").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        std::fs::create_dir_all(dir.path().join("workers/prepare-1-0")).unwrap();
        let entries = inspect(dir.path(), &fp).unwrap();
        let class_of = |name: &str| {
            &entries
                .iter()
                .find(|e| e.path.file_name().unwrap() == name)
                .unwrap()
                .class
        };
        assert!(
            matches!(class_of(&id.file_name()), Class::Artifact { size, .. } if *size == 148 + 7)
        );
        assert!(matches!(
            class_of(&other.file_name()),
            Class::ForeignFingerprint
        ));
        assert!(matches!(class_of(&third.file_name()), Class::BadHeader(_)));
        assert!(matches!(class_of("x.pvfa.tmp"), Class::Temp));
        assert!(matches!(class_of("notes.txt"), Class::Foreign));
        assert!(matches!(class_of("prepare-1-0"), Class::StaleWorkerDir));
        let (kept, removed) = clean(entries);
        assert_eq!(kept.len(), 2);
        assert_eq!(removed.len(), 4);
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn a_file_that_cannot_be_read_is_kept_not_deleted_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let id = ArtifactId::new(b"code", &ExecutorParams::default());
        let path = dir.path().join(id.file_name());
        // Opening succeeds, reading fails with EIO (page 0 is never mapped): a stand-in for
        // a failing disk that works as root too, where EACCES cannot be provoked.
        std::os::unix::fs::symlink("/proc/self/mem", &path).unwrap();
        let entries = inspect(dir.path(), &[7; 32]).unwrap();
        assert!(
            matches!(&entries[0].class, Class::Unreadable(ArtifactError::Io(_))),
            "{:?}",
            entries[0].class
        );
        let (kept, removed) = clean(entries);
        assert_eq!((kept.len(), removed.len()), (1, 0));
        assert!(path.symlink_metadata().is_ok(), "the file is still there");
    }
}
