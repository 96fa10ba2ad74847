//! The cgroups layer: each worker, and every job it forks, in a cgroup of its own with a
//! memory bound and a process bound. Unlike the job's rlimits and allocator limit, these
//! hold against a compromised job: shared memory, memfds and every thread count, and the
//! job cannot leave its cgroup (it sees no cgroup filesystem).
//!
//! The host sets it up, not the worker: it creates the cgroup, spawns the worker, and moves
//! it in before it reads the worker's handshake, so before any request (and any job) exists.
//! Worker cgroups are children of the host's own cgroup, so every bound above the host still
//! applies to them:
//! - cgroup v2: the host's cgroup (or its parent, for a host in a leaf of a delegated
//!   subtree, e.g. systemd's `Delegate=` with `DelegateSubgroup=`) must give `memory` and
//!   `pids` to its children (`cgroup.subtree_control`) and be writable by the host;
//!   `memory.max` (and `memory.swap.max` 0 where swap is accounted) and `pids.max`;
//! - cgroup v1: the host's own cgroups in the `memory` and `pids` hierarchies, writable by
//!   the host (root, or delegated by `chown`); `memory.limit_in_bytes` (and
//!   `memory.memsw.limit_in_bytes` where present) and `pids.max`.
//!
//! A worker's cgroup is removed when the worker is dropped (its processes are killed
//! first), and [`remove_stale`] removes those a killed host left.
//!
//! Consensus safety: the bounds are far above what honest preparation or execution needs
//! ([`CgroupLimits::default`]); a job that hits one is killed, which is never an Invalid
//! verdict on its own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The bounds of one worker's cgroup, covering the worker and all its jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupLimits {
    /// Bytes of memory, page cache included (default: 4 GiB).
    pub memory: u64,
    /// Processes and threads (default: 32 + 4 per core).
    pub pids: u64,
}

impl Default for CgroupLimits {
    /// Memory: an execute job needs at most 2,080 Wasm pages (130 MiB), its 258 MiB stack,
    /// its params and result; a worker holds a running job, an exiting one and one forked
    /// ahead, plus its loaded modules. A prepare job stops itself at the executor
    /// parameters' preparation limit (2 GiB by default), and its worker holds the answer (at
    /// most the 512 MiB artifact cap). 4 GiB is above both. Processes: a worker, its jobs,
    /// and a compilation thread per core in each.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        Self {
            memory: 4 << 30,
            pids: 32 + 4 * cpus,
        }
    }
}

/// What to tell an operator whose machine lacks a usable cgroup.
const REMEDY: &str = "run the host as root on a machine with the cgroup v1 memory and pids hierarchies, or in a cgroup v2 subtree delegated to it whose cgroup.subtree_control lists memory and pids (e.g. systemd Delegate=memory pids with DelegateSubgroup=, or a container with its own cgroup namespace)";

/// Where worker cgroups go on this machine.
#[derive(Debug)]
enum Parent {
    /// A cgroup v2 dir that gives `memory` and `pids` to its children.
    V2(PathBuf),
    /// The host's cgroups in the v1 `memory` and `pids` hierarchies.
    V1 { memory: PathBuf, pids: PathBuf },
}

/// A worker's cgroup: one dir (v2) or one per hierarchy (v1). Dropping it kills whatever
/// is still in it and removes it.
#[derive(Debug)]
pub struct WorkerCgroup {
    dirs: Vec<PathBuf>,
}

/// Creates a cgroup for one worker with `limits`; returns it and a description of what
/// is in force, or why it could not be made (with the remedy).
pub fn create(limits: &CgroupLimits) -> Result<(WorkerCgroup, String), String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let parent = parent()?;
    let name = format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let failed = |what: &str, e: std::io::Error| format!("{what}: {e}; {REMEDY}");
    let mb = limits.memory >> 20;
    match parent {
        Parent::V2(dir) => {
            let cgroup = WorkerCgroup {
                dirs: vec![dir.join(&name)],
            };
            let at = &cgroup.dirs[0];
            std::fs::create_dir(at).map_err(|e| failed("creating the cgroup", e))?;
            write(at, "memory.max", limits.memory).map_err(|e| failed("memory.max", e))?;
            write_if_present(at, "memory.swap.max", 0).map_err(|e| failed("memory.swap.max", e))?;
            write(at, "pids.max", limits.pids).map_err(|e| failed("pids.max", e))?;
            let detail = format!(
                "cgroup v2 {}: memory.max {mb} MiB, pids.max {}",
                at.display(),
                limits.pids
            );
            Ok((cgroup, detail))
        }
        Parent::V1 { memory, pids } => {
            let cgroup = WorkerCgroup {
                dirs: vec![memory.join(&name), pids.join(&name)],
            };
            let (memory, pids) = (&cgroup.dirs[0], &cgroup.dirs[1]);
            for dir in [memory, pids] {
                std::fs::create_dir(dir).map_err(|e| failed("creating the cgroup", e))?;
            }
            write(memory, "memory.limit_in_bytes", limits.memory)
                .map_err(|e| failed("memory.limit_in_bytes", e))?;
            write_if_present(memory, "memory.memsw.limit_in_bytes", limits.memory)
                .map_err(|e| failed("memory.memsw.limit_in_bytes", e))?;
            write(pids, "pids.max", limits.pids).map_err(|e| failed("pids.max", e))?;
            let detail = format!(
                "cgroup v1 {}: memory.limit_in_bytes {mb} MiB (swap included), pids.max {}",
                memory.display(),
                limits.pids
            );
            Ok((cgroup, detail))
        }
    }
}

impl WorkerCgroup {
    /// Moves process `pid` (and with it every process it forks later) into the cgroup.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        for dir in &self.dirs {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }
}

impl Drop for WorkerCgroup {
    fn drop(&mut self) {
        // The worker was just sent SIGKILL; its jobs follow it. Removing the dirs has to
        // wait for them, which must not block the caller (often an async task).
        let dirs = std::mem::take(&mut self.dirs);
        let spawned = std::thread::Builder::new()
            .name("pvf-cgroup-rm".into())
            .spawn(move || remove(&dirs, Duration::from_secs(10)));
        if let Err(e) = spawned {
            tracing::warn!("removing a worker cgroup: no thread for it: {e}");
        }
    }
}

/// Names of worker cgroups: `pvf-<host pid>-<n>`.
const PREFIX: &str = "pvf-";

/// Removes worker cgroups left by hosts that are no longer running (killed before they
/// could remove them), killing anything still in them.
pub fn remove_stale() {
    let Ok(parent) = parent() else { return };
    let roots = match parent {
        Parent::V2(dir) => vec![dir],
        Parent::V1 { memory, pids } => vec![memory, pids],
    };
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let stale: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| host_of(&e.file_name().to_string_lossy()).is_some_and(|pid| !alive(pid)))
            .map(|e| e.path())
            .collect();
        if !stale.is_empty() {
            tracing::info!(count = stale.len(), dir = %root.display(), "removing stale worker cgroups");
            remove(&stale, Duration::from_secs(2));
        }
    }
}

/// The host pid in a worker cgroup's name.
fn host_of(name: &str) -> Option<i32> {
    let (pid, n) = name.strip_prefix(PREFIX)?.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Kills what is in each cgroup until it is empty, then removes it; gives up after
/// `patience`.
fn remove(dirs: &[PathBuf], patience: Duration) {
    let deadline = Instant::now() + patience;
    for dir in dirs {
        loop {
            for pid in members(dir) {
                // SAFETY: SIGKILL to a process in a cgroup this host made for a worker.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            match std::fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(dir = %dir.display(), "removing a worker cgroup: {e}");
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

fn members(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

fn write(dir: &Path, file: &str, value: u64) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value.to_string())
}

fn write_if_present(dir: &Path, file: &str, value: u64) -> std::io::Result<()> {
    if dir.join(file).exists() {
        write(dir, file, value)?;
    }
    Ok(())
}

/// Where this host's worker cgroups go, found once per process.
fn parent() -> Result<Parent, String> {
    static PARENT: OnceLock<Result<Parent, String>> = OnceLock::new();
    match PARENT.get_or_init(find_parent) {
        Ok(Parent::V2(dir)) => Ok(Parent::V2(dir.clone())),
        Ok(Parent::V1 { memory, pids }) => Ok(Parent::V1 {
            memory: memory.clone(),
            pids: pids.clone(),
        }),
        Err(e) => Err(e.clone()),
    }
}

/// The cgroups a process is in, as dirs of the hierarchies mounted here.
#[derive(Debug, Default)]
pub struct Membership {
    /// Its cgroup v2 dir.
    pub v2: Option<PathBuf>,
    /// Its dir in the cgroup v1 `memory` hierarchy.
    pub memory: Option<PathBuf>,
    /// Its dir in the cgroup v1 `pids` hierarchy.
    pub pids: Option<PathBuf>,
}

/// The cgroups of `process` (`self` or a pid): its `/proc/PROCESS/cgroup` lines, each joined
/// to where its hierarchy is mounted (this process's mount table).
pub fn membership(process: &str) -> std::io::Result<Membership> {
    let own = std::fs::read_to_string(format!("/proc/{process}/cgroup"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut found = Membership::default();
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        let under = |mount: PathBuf| match path {
            "" => mount,
            path => mount.join(path),
        };
        if controllers.is_empty() {
            found.v2 = mount_point(&mounts, |fs, _| fs == "cgroup2").map(under);
        }
        for (controller, slot) in [("memory", &mut found.memory), ("pids", &mut found.pids)] {
            if controllers.split(',').any(|c| c == controller) {
                *slot = mount_point(&mounts, |fs, options| {
                    fs == "cgroup" && options.split(',').any(|o| o == controller)
                })
                .map(under);
            }
        }
    }
    Ok(found)
}

/// Finds a usable parent: cgroup v2 first, then v1.
fn find_parent() -> Result<Parent, String> {
    let own =
        membership("self").map_err(|e| format!("reading this process's cgroups: {e}; {REMEDY}"))?;
    let v2 = match own.v2.as_deref().map(v2_parent) {
        Some(Ok(dir)) => return Ok(Parent::V2(dir)),
        Some(Err(why)) => why,
        None => "not mounted, or this process is in no v2 cgroup".to_string(),
    };
    let v1 = match (v1_dir(own.memory, "memory"), v1_dir(own.pids, "pids")) {
        (Ok(memory), Ok(pids)) => return Ok(Parent::V1 { memory, pids }),
        (Err(why), _) | (_, Err(why)) => why,
    };
    Err(format!("no usable cgroup: v2: {v2}; v1: {v1}; {REMEDY}"))
}

/// The host's v2 cgroup `own`, or its parent, if it gives memory and pids to its children
/// and the host may write it.
fn v2_parent(own: &Path) -> Result<PathBuf, String> {
    for dir in [Some(own), own.parent()].into_iter().flatten() {
        let controllers =
            std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |c: &str| controllers.split_whitespace().any(|w| w == c);
        if has("memory") && has("pids") && writable(dir) {
            return Ok(dir.to_path_buf());
        }
    }
    Err(format!(
        "neither {} nor its parent gives memory and pids to its children and is writable by this host",
        own.display()
    ))
}

/// The host's cgroup in the v1 hierarchy of `controller`, if the host may write it.
fn v1_dir(dir: Option<PathBuf>, controller: &str) -> Result<PathBuf, String> {
    let dir = dir.ok_or_else(|| format!("no {controller} hierarchy, or no cgroup in it"))?;
    if !writable(&dir) {
        return Err(format!("{} is not writable by this host", dir.display()));
    }
    Ok(dir)
}

/// The mount point of the first mount whose file system type and super options match.
fn mount_point(mounts: &str, matches: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let (fields, after) = line.split_once(" - ")?;
        let mount = fields.split(' ').nth(4)?;
        let mut after = after.split(' ');
        let (fs, _source, options) = (after.next()?, after.next()?, after.next()?);
        matches(fs, options).then(|| PathBuf::from(mount))
    })
}

fn writable(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    #[test]
    fn mount_points_are_found_by_type_and_controller() {
        let v2 = mount_point(MOUNTS, |fs, _| fs == "cgroup2");
        assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let pids = mount_point(MOUNTS, |fs, o| {
            fs == "cgroup" && o.split(',').any(|c| c == "pids")
        });
        assert_eq!(pids, Some(PathBuf::from("/sys/fs/cgroup/pids")));
    }

    #[test]
    fn only_names_of_worker_cgroups_give_a_host() {
        assert_eq!(host_of("pvf-123-4"), Some(123));
        assert_eq!(host_of("pvf-escape-unprivileged-5"), None);
        assert_eq!(host_of("pvf-123"), None);
        assert_eq!(host_of("other-1-2"), None);
    }
}
