//! The soak's faults: a thread of chaos that SIGKILLs and SIGSTOPs random workers and jobs,
//! fills the cache's disk, makes it read-only for a while, and corrupts artifact files.
//!
//! The disk faults need the cache on a filesystem of its own: as root, the soak moves into a
//! private mount namespace (so nothing outlives it) and mounts a small tmpfs there.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pvf_common::params::ARTIFACT_EXTENSION;

/// Size of the soak's tmpfs: room for the artifacts and worker dirs, small enough to fill.
const TMPFS_SIZE: &str = "size=64m";

/// The soak's cache dir, on a tmpfs of its own when this process may mount one.
pub struct Disk {
    /// The dir to use as the cache.
    pub dir: PathBuf,
    /// Why the disk faults cannot run here, if they cannot.
    pub no_tmpfs: Option<String>,
    _temp: tempfile::TempDir,
}

impl Disk {
    /// Creates the dir; as root, in a private mount namespace, on a fresh tmpfs. Call it
    /// while the process is single-threaded: a mount namespace is per thread.
    pub fn create() -> std::io::Result<Self> {
        let temp = tempfile::Builder::new().prefix("pvf-soak-").tempdir()?;
        let dir = temp.path().join("cache");
        std::fs::create_dir(&dir)?;
        let no_tmpfs = mount_tmpfs(&dir).err();
        Ok(Self {
            dir,
            no_tmpfs,
            _temp: temp,
        })
    }

    /// Whether the disk faults can be injected.
    pub fn has_tmpfs(&self) -> bool {
        self.no_tmpfs.is_none()
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.has_tmpfs() {
            let _ = umount2(&self.dir, MntFlags::MNT_DETACH);
        }
    }
}

fn mount_tmpfs(dir: &Path) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root: cannot mount a tmpfs for the disk-full and read-only faults".into());
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    // Mounts made here must not propagate back to the machine's namespace.
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
        .map_err(|e| format!("making mounts private: {e}"))?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(TMPFS_SIZE),
    )
    .map_err(|e| format!("mounting a tmpfs on {}: {e}", dir.display()))
}

/// Faults injected so far, by kind.
#[derive(Debug, Default)]
pub struct Faults {
    pub worker_kills: u64,
    pub job_kills: u64,
    pub stops: u64,
    pub disk_full: u64,
    pub read_only: u64,
    pub corruptions: u64,
}

impl Faults {
    pub fn total(&self) -> u64 {
        self.worker_kills
            + self.job_kills
            + self.stops
            + self.disk_full
            + self.read_only
            + self.corruptions
    }
}

/// A small xorshift generator: the soak needs variety, not statistical quality.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// Injects faults into the host using `disk` until `stop` is set; returns what it did.
pub fn run(disk: &Disk, stop: &Arc<AtomicBool>, seed: u64) -> Faults {
    let mut rng = Rng::seeded(seed);
    let mut faults = Faults::default();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(rng.millis(100, 500));
        let disk_faults = if disk.has_tmpfs() { 100 } else { 80 };
        match rng.below(disk_faults) {
            0..25 => kill_one(&workers(&disk.dir), &mut rng, &mut faults.worker_kills),
            25..45 => kill_one(&jobs(&disk.dir), &mut rng, &mut faults.job_kills),
            45..60 => stop_one(&disk.dir, &mut rng, &mut faults.stops),
            60..80 => corrupt_one(&disk.dir, &mut rng, &mut faults.corruptions),
            80..90 => fill(&disk.dir, &mut rng, &mut faults.disk_full),
            _ => read_only(&disk.dir, &mut rng, &mut faults.read_only),
        }
    }
    faults
}

fn kill_one(pids: &[i32], rng: &mut Rng, count: &mut u64) {
    if pids.is_empty() {
        return;
    }
    let pid = pids[rng.below(pids.len() as u64) as usize];
    if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
        *count += 1;
    }
}

/// Stops a worker or a job for a while, then lets it go on (if the host has not killed it).
fn stop_one(cache: &Path, rng: &mut Rng, count: &mut u64) {
    let mut pids = workers(cache);
    pids.extend(jobs(cache));
    if pids.is_empty() {
        return;
    }
    let pid = Pid::from_raw(pids[rng.below(pids.len() as u64) as usize]);
    if kill(pid, Signal::SIGSTOP).is_ok() {
        *count += 1;
        std::thread::sleep(rng.millis(200, 2_000));
        let _ = kill(pid, Signal::SIGCONT);
    }
}

/// Flips a byte in the payload of a random artifact file.
fn corrupt_one(cache: &Path, rng: &mut Rng, count: &mut u64) {
    let artifacts = artifact_files(cache);
    if artifacts.is_empty() {
        return;
    }
    let path = &artifacts[rng.below(artifacts.len() as u64) as usize];
    let mut flip = || -> std::io::Result<()> {
        let mut file = std::fs::File::options().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        let header = pvf_common::artifact::HEADER_LEN as u64;
        if len <= header {
            return Ok(());
        }
        file.seek(SeekFrom::Start(header + rng.below(len - header)))?;
        file.write_all(&[0xa5])
    };
    if flip().is_ok() {
        *count += 1;
    }
}

/// Fills the disk until ENOSPC and keeps it full for a while.
fn fill(cache: &Path, rng: &mut Rng, count: &mut u64) {
    let filler = cache.join("soak-filler");
    if let Ok(mut file) = std::fs::File::create(&filler) {
        let block = vec![0u8; 1 << 20];
        while file.write_all(&block).is_ok() {}
        *count += 1;
        std::thread::sleep(rng.millis(300, 2_000));
    }
    let _ = std::fs::remove_file(&filler);
}

/// Remounts the cache read-only for a while (skipped while a file is open for writing).
fn read_only(cache: &Path, rng: &mut Rng, count: &mut u64) {
    let remount = |flags: MsFlags| {
        mount(
            None::<&str>,
            cache,
            None::<&str>,
            MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        )
    };
    if remount(MsFlags::MS_RDONLY).is_ok() {
        *count += 1;
        std::thread::sleep(rng.millis(300, 2_000));
        let _ = remount(MsFlags::empty());
    }
}

/// The artifact files in the cache.
pub fn artifact_files(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ARTIFACT_EXTENSION))
        .collect()
}

/// Live workers of the host whose cache is `cache`.
pub fn workers(cache: &Path) -> Vec<i32> {
    let needle = format!("{}/workers/", cache.display());
    processes()
        .filter(|(_, ppid, cmdline)| {
            *ppid == std::process::id() as i32 && cmdline.contains(&needle)
        })
        .map(|(pid, ..)| pid)
        .collect()
}

/// Live jobs and artifact holders: the workers' children (a prepare worker's jobs, an
/// execute worker's holders) and the holders' children (execute jobs).
pub fn jobs(cache: &Path) -> Vec<i32> {
    let workers = workers(cache);
    let live: Vec<(i32, i32, String)> = processes().collect();
    let children = |parents: &[i32]| -> Vec<i32> {
        live.iter()
            .filter(|(_, ppid, _)| parents.contains(ppid))
            .map(|(pid, ..)| *pid)
            .collect()
    };
    let mut jobs = children(&workers);
    jobs.extend(children(&jobs));
    jobs
}

/// Every live (not zombie) process whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    processes()
        .filter(|(.., cmdline)| cmdline.contains(needle))
        .map(|(pid, ..)| pid)
        .collect()
}

/// (pid, parent pid, command line) of every live process.
fn processes() -> impl Iterator<Item = (i32, i32, String)> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten();
    entries.filter_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the parenthesised command: state, then the parent pid.
        let mut fields = stat.rsplit_once(") ")?.1.split(' ');
        if fields.next()? == "Z" {
            return None;
        }
        let ppid = fields.next()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        Some((pid, ppid, String::from_utf8_lossy(&cmdline).into_owned()))
    })
}
