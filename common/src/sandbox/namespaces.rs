//! Namespaces and `pivot_root`: once at worker start-up, the worker moves into its own user,
//! mount, network, IPC, UTS and cgroup namespaces, and its worker dir becomes its whole
//! filesystem (nodev, nosuid, noexec; read-only for execute).
//!
//! Consensus safety: none of this changes what a guest computes; it only removes what a
//! compromised job could reach.
//!
//! Identity: inside the namespace the worker runs as [`INSIDE_ID`] with no capabilities
//! once set up. When the host is root, that id maps to the unprivileged [`ROOT_DROP_ID`]
//! outside, so even a job that escaped every other layer would be `nobody` to the kernel.
//! Only a process with `CAP_SETUID` in the parent namespace may write such a map, so a
//! short-lived helper forked before `unshare` writes it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{
    ForkResult, Gid, Pid, Uid, fork, getegid, geteuid, pipe, setgroups, setresgid, setresuid,
};

/// The worker's uid and gid inside its user namespace.
pub const INSIDE_ID: u32 = 1000;
/// The outside uid and gid a root-started worker runs as: `nobody`.
pub const ROOT_DROP_ID: u32 = 65534;

/// Every namespace the worker creates, once, at start-up.
const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWUSER
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWNET)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWCGROUP);

/// A failed step, with the errno it failed with.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// Dropping supplementary groups (root only).
    #[error("setgroups([]): {0}")]
    DropGroups(nix::Error),
    /// Forking the id-map helper (root only).
    #[error("fork of the id-map helper: {0}")]
    MapperFork(nix::Error),
    /// Creating the namespaces.
    #[error(
        "unshare(user, mount, net, ipc, uts, cgroup): {0}; unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0)"
    )]
    Unshare(nix::Error),
    /// Writing the uid/gid maps.
    #[error("writing the uid/gid map: {0}")]
    IdMap(String),
    /// Making the mount tree private.
    #[error("mount(/, MS_REC|MS_PRIVATE): {0}")]
    MakePrivate(nix::Error),
    /// Bind-mounting the worker dir onto itself.
    #[error("bind mount of the worker dir: {0}")]
    Bind(nix::Error),
    /// Remounting the bind mount nodev, nosuid, noexec (and read-only).
    #[error("remount of the worker dir with nodev,nosuid,noexec: {0}")]
    Remount(nix::Error),
    /// Entering the worker dir.
    #[error("chdir to the worker dir: {0}")]
    Chdir(nix::Error),
    /// Swapping the root.
    #[error("pivot_root: {0}")]
    PivotRoot(nix::Error),
    /// Detaching the old root.
    #[error("umount2(old root, MNT_DETACH): {0}")]
    DetachOldRoot(nix::Error),
    /// Switching to the unprivileged inside ids.
    #[error("setresuid/setresgid({INSIDE_ID}): {0}")]
    SetIds(nix::Error),
    /// Dropping every capability.
    #[error("capset(none): {0}")]
    DropCaps(std::io::Error),
    /// A post-condition failed: the new root is not the worker dir.
    #[error("post-condition failed: {0}")]
    PostCondition(String),
}

/// Enters fresh namespaces and makes `dir` the root. Afterwards the worker dir is `/`.
pub fn apply(dir: &Path, read_only: bool) -> Result<(), NamespaceError> {
    let dir_identity = fs::metadata(dir)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| NamespaceError::PostCondition(format!("stat worker dir: {e}")))?;
    let as_root = geteuid().is_root();
    let mapper = if as_root {
        setgroups(&[]).map_err(NamespaceError::DropGroups)?;
        Some(IdMapper::fork()?)
    } else {
        None
    };
    let (outside_uid, outside_gid) = (geteuid().as_raw(), getegid().as_raw());
    unshare(NAMESPACES).map_err(NamespaceError::Unshare)?;
    match mapper {
        Some(mapper) => mapper.map()?,
        None => map_own_ids(outside_uid, outside_gid)?,
    }
    // Mounts below must not propagate back to the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(NamespaceError::MakePrivate)?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(NamespaceError::Bind)?;
    let mut flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, dir, None::<&str>, flags, None::<&str>).map_err(NamespaceError::Remount)?;
    nix::unistd::chdir(dir).map_err(NamespaceError::Chdir)?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
    // the worker dir as the only tree.
    nix::unistd::pivot_root(".", ".").map_err(NamespaceError::PivotRoot)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(NamespaceError::DetachOldRoot)?;
    nix::unistd::chdir("/").map_err(NamespaceError::Chdir)?;
    let inside_gid = Gid::from_raw(INSIDE_ID);
    let inside_uid = Uid::from_raw(INSIDE_ID);
    setresgid(inside_gid, inside_gid, inside_gid).map_err(NamespaceError::SetIds)?;
    setresuid(inside_uid, inside_uid, inside_uid).map_err(NamespaceError::SetIds)?;
    drop_capabilities().map_err(NamespaceError::DropCaps)?;
    check_post_conditions(dir_identity)
}

/// The new root must be the worker dir, and `..` from it must stay in it.
fn check_post_conditions(dir_identity: (u64, u64)) -> Result<(), NamespaceError> {
    let identity = |path: &str| {
        fs::metadata(path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| NamespaceError::PostCondition(format!("stat {path}: {e}")))
    };
    if identity("/")? != dir_identity {
        return Err(NamespaceError::PostCondition(
            "/ is not the worker dir".into(),
        ));
    }
    if identity("/..")? != dir_identity {
        return Err(NamespaceError::PostCondition(
            "/.. leaves the worker dir".into(),
        ));
    }
    Ok(())
}

/// Maps the inside ids to our own outside ids: all an unprivileged process may map.
fn map_own_ids(uid: u32, gid: u32) -> Result<(), NamespaceError> {
    write_maps("self", uid, gid)
}

fn write_maps(pid: &str, uid: u32, gid: u32) -> Result<(), NamespaceError> {
    let write = |file: &str, content: String| {
        fs::write(format!("/proc/{pid}/{file}"), content)
            .map_err(|e| NamespaceError::IdMap(format!("{file}: {e}")))
    };
    // Deny setgroups so the inside root-less ids can never gain groups.
    write("setgroups", "deny".into())?;
    write("uid_map", format!("{INSIDE_ID} {uid} 1"))?;
    write("gid_map", format!("{INSIDE_ID} {gid} 1"))
}

/// A child forked before `unshare` that keeps root's `CAP_SETUID` in the parent namespace,
/// so it can map the worker's inside ids to `nobody`.
struct IdMapper {
    pid: Pid,
    go: std::os::fd::OwnedFd,
}

impl IdMapper {
    fn fork() -> Result<Self, NamespaceError> {
        let (read_end, write_end) = pipe().map_err(NamespaceError::MapperFork)?;
        let parent = std::process::id();
        // SAFETY: the worker is single-threaded at start-up; the child only reads a pipe,
        // writes three proc files and exits.
        match unsafe { fork() }.map_err(NamespaceError::MapperFork)? {
            ForkResult::Child => {
                drop(write_end);
                let mut byte = [0u8; 1];
                let code = match nix::unistd::read(&read_end, &mut byte) {
                    Ok(1) => match write_maps(&parent.to_string(), ROOT_DROP_ID, ROOT_DROP_ID) {
                        Ok(()) => 0,
                        Err(e) => {
                            eprintln!("id-map helper: {e}");
                            1
                        }
                    },
                    _ => 2,
                };
                // SAFETY: leave without running the worker's destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(read_end);
                Ok(Self {
                    pid: child,
                    go: write_end,
                })
            }
        }
    }

    /// Tells the helper the namespace exists and waits for it to write the maps.
    fn map(self) -> Result<(), NamespaceError> {
        nix::unistd::write(&self.go, &[1]).map_err(|e| NamespaceError::IdMap(e.to_string()))?;
        match waitpid(self.pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            other => Err(NamespaceError::IdMap(format!(
                "id-map helper ended with {other:?}"
            ))),
        }
    }
}

/// Clears every capability set, so the worker holds no privilege even inside its namespace.
fn drop_capabilities() -> std::io::Result<()> {
    clear_capability_sets()?;
    // Clear the ambient set too (it is already empty unless someone raised it).
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    Ok(())
}

/// Clears the effective, permitted and inheritable capability sets. A job forked into its
/// own user namespace starts with every capability there, and gives them up with this.
pub(super) fn clear_capability_sets() -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and data are valid for the duration of the call, in the layout
    // capset(2) expects for version 3 (two data elements).
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
