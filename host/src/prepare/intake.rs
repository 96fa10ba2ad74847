//! Taking an artifact from a prepare worker's dir into the cache. The worker is not trusted:
//! it may be compromised, and it can plant anything in its dir. So the host chose the
//! file's name (the worker sends no path and no size), and here it:
//! 1. opens that name beneath the worker dir without following any link (`openat2` with
//!    `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`),
//!    non-blocking (a FIFO cannot stall it);
//! 2. requires a regular file with one link, no set-id, sticky or executable bit, and at most
//!    [`MAX_ARTIFACT_LEN`] bytes, the size taken from the opened file;
//! 3. checks the header against this engine and *this request's* artifact id, and the
//!    length;
//! 4. copies the checked bytes into a file of its own (mode 0444, the host's owner), hashing
//!    them as they go, and installs it by rename only if the checksum matches; fsyncs the
//!    file and the dir.
//!
//! The cache never holds a file the worker made, only bytes the host checked.

use std::ffi::CString;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pvf_common::artifact::{ArtifactError, HEADER_LEN, Header, MAX_ARTIFACT_LEN};
use pvf_common::params::ArtifactId;

/// Why an artifact file was not installed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The file could not be opened beneath the worker dir without following links (a
    /// symlink gives ELOOP), or is missing.
    #[error("opening {name:?} beneath the worker dir without following links: {source}")]
    Open {
        /// The name the host chose.
        name: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Not a regular file (a FIFO, a device, a dir, a socket).
    #[error("not a regular file (file type {0:o})")]
    NotRegular(u32),
    /// The file has other names: a hard link to a file elsewhere, or one that is.
    #[error("the file has {0} links, not one")]
    Links(u64),
    /// Set-id, sticky or executable bits.
    #[error("the file has mode {0:o}: set-id, sticky or executable bits")]
    Mode(u32),
    /// The header, length or checksum is wrong, it names another artifact, or it is over
    /// the size cap.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// Reading the worker's file failed.
    #[error("reading the worker's file: {0}")]
    Read(std::io::Error),
    /// Writing the host's copy failed (ENOSPC, I/O): this machine's failure, not the
    /// worker's.
    #[error("writing the artifact into the cache: {0}")]
    Install(std::io::Error),
}

impl IntakeError {
    /// Whether the worker is to blame: everything but the host's own writing. An honest
    /// worker always leaves exactly one good file under the name it was given.
    pub fn is_the_workers(&self) -> bool {
        !matches!(self, Self::Install(_))
    }
}

/// Checks the artifact file `name` in `worker_dir` for `id` and copies it into `dest_dir`
/// as `id.file_name()`. Returns the installed file's path and size.
pub fn install(
    worker_dir: &Path,
    name: &str,
    id: &ArtifactId,
    fingerprint: &[u8; 32],
    dest_dir: &Path,
) -> Result<(PathBuf, u64), IntakeError> {
    let open_err = |source| IntakeError::Open {
        name: name.to_string(),
        source,
    };
    let mut source = open_beneath(worker_dir, name).map_err(open_err)?;
    let len = checked_len(&source)?;
    let mut header_bytes = [0u8; HEADER_LEN];
    source
        .read_exact(&mut header_bytes)
        .map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => ArtifactError::Truncated(len).into(),
            _ => IntakeError::Read(e),
        })?;
    let header = Header::parse(&header_bytes)?;
    header.check(fingerprint, id, len)?;
    let path = dest_dir.join(id.file_name());
    let temp = dest_dir.join(format!("{}.tmp", id.file_name()));
    let copied = copy_checked(&mut source, &header, &temp);
    let installed = copied.and_then(|()| {
        std::fs::rename(&temp, &path).map_err(IntakeError::Install)?;
        File::open(dest_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(IntakeError::Install)
    });
    if installed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    installed.map(|()| (path, len))
}

/// The file's size, if it is a regular file with one link, a harmless mode and a size
/// under the cap.
fn checked_len(file: &File) -> Result<u64, IntakeError> {
    let meta = file.metadata().map_err(IntakeError::Read)?;
    let mode = meta.mode();
    if mode & libc::S_IFMT != libc::S_IFREG {
        return Err(IntakeError::NotRegular(mode & libc::S_IFMT));
    }
    if meta.nlink() != 1 {
        return Err(IntakeError::Links(meta.nlink()));
    }
    if mode & (libc::S_ISUID | libc::S_ISGID | libc::S_ISVTX | 0o111) != 0 {
        return Err(IntakeError::Mode(mode & 0o7777));
    }
    if meta.len() > MAX_ARTIFACT_LEN {
        return Err(ArtifactError::TooLarge(meta.len()).into());
    }
    Ok(meta.len())
}

/// Writes the header and the payload read from `source` into a new file at `temp`, mode
/// 0444, hashing the payload as it goes; fails unless the hash is the header's.
fn copy_checked(source: &mut File, header: &Header, temp: &Path) -> Result<(), IntakeError> {
    let install = IntakeError::Install;
    let _ = std::fs::remove_file(temp);
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(temp)
        .map_err(install)?;
    // The mode is the host's choice, whatever its umask.
    out.set_permissions(std::fs::Permissions::from_mode(0o444))
        .map_err(install)?;
    out.write_all(&header.to_bytes()).map_err(install)?;
    let mut hasher = blake3::Hasher::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = header.payload_len;
    while left > 0 {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match source.read(&mut chunk[..want]) {
            Ok(0) => {
                return Err(ArtifactError::Length {
                    expected: header.payload_len,
                    actual: header.payload_len - left,
                }
                .into());
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(IntakeError::Read(e)),
        };
        hasher.update(&chunk[..n]);
        out.write_all(&chunk[..n]).map_err(install)?;
        left -= n as u64;
    }
    if hasher.finalize().as_bytes() != &header.payload_hash {
        return Err(ArtifactError::Checksum.into());
    }
    out.sync_all().map_err(install)
}

/// Opens `name` for reading beneath `dir`, following no symlink (not even in `dir`'s own
/// path), no magic link, and no mount crossing; non-blocking, so a FIFO opens at once.
fn open_beneath(dir: &Path, name: &str) -> std::io::Result<File> {
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    let name = CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: open_how is plain data; zero is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH
        | libc::RESOLVE_NO_SYMLINKS
        | libc::RESOLVE_NO_MAGICLINKS
        | libc::RESOLVE_NO_XDEV;
    // SAFETY: a valid dir fd, a NUL-terminated name, and an open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvf_common::params::ExecutorParams;

    const FINGERPRINT: [u8; 32] = [5; 32];

    fn id(code: &[u8]) -> ArtifactId {
        ArtifactId::new(code, &ExecutorParams::default())
    }

    /// A good artifact for `id(b"code")` at `path`.
    fn good(path: &Path) {
        let header = Header::describe(FINGERPRINT, id(b"code"), b"payload");
        pvf_common::artifact::write(path, &header, b"payload").unwrap();
    }

    fn intake(worker: &Path, dest: &Path) -> Result<(PathBuf, u64), IntakeError> {
        install(worker, "artifact", &id(b"code"), &FINGERPRINT, dest)
    }

    #[test]
    fn a_good_file_is_copied_in_with_mode_0444_and_the_hosts_owner() {
        let (worker, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        good(&worker.path().join("artifact"));
        let (path, len) = intake(worker.path(), dest.path()).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o444);
        // SAFETY: a plain getter.
        assert_eq!(meta.uid(), unsafe { libc::geteuid() });
        assert_eq!(len, meta.len());
        assert_eq!(meta.nlink(), 1, "a copy, not a link to the worker's file");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(worker.path().join("artifact")).unwrap()
        );
        let temps: Vec<_> = std::fs::read_dir(dest.path()).unwrap().collect();
        assert_eq!(temps.len(), 1, "no temporary file left");
    }

    #[test]
    fn every_bad_file_is_refused_and_nothing_is_installed() {
        type Plant = fn(&Path, &Path);
        let plants: [(&str, Plant); 8] = [
            ("symlink", |dir, outside| {
                good(&outside.join("real"));
                std::os::unix::fs::symlink(outside.join("real"), dir.join("artifact")).unwrap();
            }),
            ("hard link", |dir, outside| {
                good(&outside.join("real"));
                std::fs::hard_link(outside.join("real"), dir.join("artifact")).unwrap();
            }),
            ("fifo", |dir, _| {
                nix::unistd::mkfifo(&dir.join("artifact"), nix::sys::stat::Mode::S_IRWXU).unwrap();
            }),
            ("oversize", |dir, _| {
                good(&dir.join("artifact"));
                let file = File::options().write(true).open(dir.join("artifact"));
                file.unwrap().set_len(MAX_ARTIFACT_LEN + 1).unwrap();
            }),
            ("another code's id", |dir, _| {
                let header = Header::describe(FINGERPRINT, id(b"other"), b"payload");
                pvf_common::artifact::write(&dir.join("artifact"), &header, b"payload").unwrap();
            }),
            ("set-uid", |dir, _| {
                good(&dir.join("artifact"));
                let mode = std::fs::Permissions::from_mode(0o4400);
                std::fs::set_permissions(dir.join("artifact"), mode).unwrap();
            }),
            ("bad checksum", |dir, _| {
                let header = Header::describe(FINGERPRINT, id(b"code"), b"payload");
                pvf_common::artifact::write(&dir.join("artifact"), &header, b"PAYLOAD").unwrap();
            }),
            ("missing", |_, _| {}),
        ];
        for (what, plant) in plants {
            let worker = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            let dest = tempfile::tempdir().unwrap();
            plant(worker.path(), outside.path());
            let refused = intake(worker.path(), dest.path()).unwrap_err();
            assert!(refused.is_the_workers(), "{what}: {refused}");
            let left: Vec<_> = std::fs::read_dir(dest.path()).unwrap().collect();
            assert!(left.is_empty(), "{what}: something was installed: {left:?}");
        }
    }
}
