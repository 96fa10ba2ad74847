//! A child process that holds nothing of its parent but two pipes, and the frames on them.
//!
//! Every process a worker forks starts here: a job ([`super::job_process`]) or an execute
//! worker's artifact holder. [`fork_child`] creates the two pipes and forks, into new user
//! and PID namespaces when asked. In the child, before any of the caller's code runs, the
//! pipes move to [`INPUT_FD`] and [`OUTPUT_FD`] and every other descriptor is closed: the
//! host socket, stdin, stdout, stderr and anything else the parent held, except the few the
//! caller names (an artifact holder's sealed memory images). The parent gets a [`Child`]: the
//! process, killed and reaped when dropped, and its ends of the pipes.
//!
//! Both directions carry frames ([`crate::ipc::frame`]: a little-endian `u32` length, then at
//! most [`MAX_FRAME_LEN`] bytes, or a job's own answer cap: [`super::job_process::JobLimits`]). The child reads and writes them blocking, with
//! [`crate::ipc::frame::read`] and [`crate::ipc::frame::write`] on [`pipes`]. The parent
//! never blocks on a child: [`Child::send`] and [`Child::receive`] end at a deadline and tell
//! a late, dead or garbled child apart ([`ChildFault`]), so a child that stops playing by the
//! rules costs its parent at most the wait it was given.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid, fork, pipe2};

use super::JobDeath;
use super::job_process::{EXIT_CONFINE_FAILED, RunnerError};
use crate::ipc::frame::{self, HEADER_LEN, MAX_FRAME_LEN};

/// Where a child reads its input: its only readable descriptor besides kept memory images.
pub const INPUT_FD: RawFd = 3;
/// Where a child writes its output: its only writable descriptor.
pub const OUTPUT_FD: RawFd = 4;

/// How a child process is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobIsolation {
    /// A plain fork: the child shares its parent's namespaces (the namespaces layer is off).
    Fork,
    /// The child also gets its own user and PID namespaces: it is PID 1 of a namespace that
    /// holds only itself and its own children, so there is no other process for it to see
    /// or signal. This costs at most about 0.005 ms per fork over a plain one
    /// (`pvf-layer-cost`).
    OwnPidNamespace,
}

/// A forked child and the parent's ends of its pipes. Dropping it kills and reaps the child.
pub struct Child {
    process: Process,
    pidfd: OwnedFd,
    input: File,
    output: File,
}

/// How a child failed an exchange with its parent. The parent drops a child that failed.
#[derive(Debug, thiserror::Error)]
pub enum ChildFault {
    /// The deadline passed before the exchange completed.
    #[error("no answer within {0:?}")]
    Late(Duration),
    /// The child ended (and has been reaped).
    #[error("it died: {0}")]
    Died(JobDeath),
    /// The child sent something other than one whole frame.
    #[error("{0}")]
    Garbled(String),
    /// Watching or talking to the child failed on the parent's side.
    #[error("talking to the child: {0}")]
    Io(#[from] std::io::Error),
}

/// Forks a child that runs `main` (and exits when it returns) with its pipes at [`INPUT_FD`] and [`OUTPUT_FD`], every
/// other descriptor but `keep` closed, and a parent-death signal armed.
///
/// The caller must be single-threaded: the child of a multi-threaded process may inherit
/// locks held by threads that do not exist in it.
pub fn fork_child(
    isolation: JobIsolation,
    keep: &[RawFd],
    main: impl FnOnce(),
) -> Result<Child, RunnerError> {
    if keep.iter().any(|fd| *fd == INPUT_FD || *fd == OUTPUT_FD) {
        return Err(RunnerError::FdLayout);
    }
    prime_process_state();
    let (input_read, input_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(RunnerError::Pipe)?;
    let (output_read, output_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(RunnerError::Pipe)?;
    let parent = nix::unistd::getpid();
    let forked = match isolation {
        // SAFETY: the caller is single-threaded (see above), so the child can run Rust code.
        JobIsolation::Fork => unsafe { fork() }.map_err(RunnerError::Fork),
        JobIsolation::OwnPidNamespace => fork_into_own_pid_namespace(),
    };
    match forked? {
        ForkResult::Child => {
            drop(input_write);
            drop(output_read);
            // Die with the parent, so a killed worker leaves no child behind; if it died
            // before the signal was armed, leave now. (Where the parent is invisible, a
            // parent that died early shows as end-of-file on the input pipe.)
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            if isolation == JobIsolation::Fork && nix::unistd::getppid() != parent {
                exit_now(EXIT_CONFINE_FAILED);
            }
            if settle_fds(input_read, output_write, keep).is_err() {
                exit_now(EXIT_CONFINE_FAILED);
            }
            main();
            exit_now(0)
        }
        ForkResult::Parent { child } => {
            let process = Process::new(child);
            let pidfd = pidfd_open(child).map_err(RunnerError::Supervise)?;
            let input = File::from(input_write);
            let output = File::from(output_read);
            set_nonblocking(&input).map_err(RunnerError::Supervise)?;
            set_nonblocking(&output).map_err(RunnerError::Supervise)?;
            Ok(Child {
                process,
                pidfd,
                input,
                output,
            })
        }
    }
}

/// The child's own ends of its pipes, for frames. Call once, in the child.
pub fn pipes() -> (File, File) {
    // SAFETY: `fork_child` put the pipes at these numbers and nothing else owns them; the
    // child calls this once.
    unsafe { (File::from_raw_fd(INPUT_FD), File::from_raw_fd(OUTPUT_FD)) }
}

/// Leaves the child process at once, running no destructors or atexit handlers that belong
/// to its parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

impl Child {
    /// The child's process id, as the parent sees it.
    pub fn pid(&self) -> Pid {
        self.process.pid
    }

    /// CPU time the child itself has used so far (not its children's).
    pub fn cpu_time(&self) -> Duration {
        self.process.cpu_time()
    }

    /// Whether the child has ended (it is not reaped).
    pub fn has_exited(&self) -> std::io::Result<bool> {
        Ok(poll_two(None, &self.pidfd, Duration::ZERO)?.1)
    }

    /// Sends one frame carrying `payload`, waiting at most until `deadline` for the child to
    /// take all of it.
    pub fn send(&mut self, payload: &[u8], deadline: Instant) -> Result<(), ChildFault> {
        match self.write_frame(payload, deadline) {
            Ok(()) => Ok(()),
            Err(fault @ (ChildFault::Late(_) | ChildFault::Io(_))) => Err(fault),
            // It closed its input or ended: that is a death, or soon will be.
            Err(_) => Err(self.death_by(deadline)),
        }
    }

    /// Waits until `deadline` for one whole frame and returns its payload. Bytes after the
    /// frame, a frame over [`MAX_FRAME_LEN`] and an output closed mid-frame are
    /// [`ChildFault::Garbled`].
    pub fn receive(&mut self, deadline: Instant) -> Result<Vec<u8>, ChildFault> {
        let started = Instant::now();
        let mut received = Vec::new();
        loop {
            let open = drain(&mut self.output, &mut received, MAX_FRAME_LEN)?;
            if let Some(payload) = whole_frame(&received, MAX_FRAME_LEN)? {
                if received.len() != HEADER_LEN + payload.len() {
                    return Err(ChildFault::Garbled("bytes after the frame".into()));
                }
                return Ok(payload.to_vec());
            }
            if !open {
                return match self.death_by(deadline) {
                    ChildFault::Late(_) => Err(ChildFault::Garbled(format!(
                        "closed its output after {} bytes of a frame",
                        received.len()
                    ))),
                    fault => Err(fault),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ChildFault::Late(started.elapsed()));
            }
            let (_, exited) = poll_two(Some(&self.output), &self.pidfd, left)?;
            if exited {
                // What it wrote before it ended still counts; anything short of a frame is
                // its death.
                drain(&mut self.output, &mut received, MAX_FRAME_LEN)?;
                return match whole_frame(&received, MAX_FRAME_LEN)? {
                    Some(payload) if received.len() == HEADER_LEN + payload.len() => {
                        Ok(payload.to_vec())
                    }
                    _ => Err(self.death_by(deadline)),
                };
            }
        }
    }

    /// Writes one frame, polling until the child has taken it; any failure is returned as is.
    pub(super) fn write_frame(
        &mut self,
        payload: &[u8],
        deadline: Instant,
    ) -> Result<(), ChildFault> {
        let started = Instant::now();
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= MAX_FRAME_LEN)
            .ok_or_else(|| {
                ChildFault::Io(std::io::Error::new(
                    ErrorKind::InvalidInput,
                    "frame over the limit",
                ))
            })?;
        let mut rest: &[u8] = &len.to_le_bytes();
        let mut body = payload;
        while !rest.is_empty() || !body.is_empty() {
            if rest.is_empty() {
                rest = std::mem::take(&mut body);
            }
            match self.input.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ChildFault::Late(started.elapsed()));
                    }
                    if poll_writable(&self.input, &self.pidfd, left)? {
                        return Err(ChildFault::Garbled("ended while reading its input".into()));
                    }
                }
                Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                    return Err(ChildFault::Garbled("closed its input".into()));
                }
                Err(e) => return Err(ChildFault::Io(e)),
            }
        }
        Ok(())
    }

    /// Waits until `deadline` for the child to end and reaps it: [`ChildFault::Died`] with
    /// how it ended, or [`ChildFault::Late`] if it is still running.
    fn death_by(&mut self, deadline: Instant) -> ChildFault {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(Instant::now());
        match poll_two(None, &self.pidfd, left) {
            Ok((_, true)) => match self.process.reap() {
                Ok((status, _)) => ChildFault::Died(death_of(status).unwrap_or_else(|| {
                    JobDeath::Garbled("exited cleanly without a whole frame".into())
                })),
                Err(e) => ChildFault::Io(e),
            },
            Ok((_, false)) => ChildFault::Late(started.elapsed()),
            Err(e) => ChildFault::Io(e),
        }
    }

    /// The parts the job runner supervises.
    pub(super) fn parts(&mut self) -> (&mut Process, &OwnedFd, &mut File) {
        (&mut self.process, &self.pidfd, &mut self.output)
    }

    /// Stops watching the process and hands it over (with nothing else of the child).
    pub(super) fn into_process(self) -> Process {
        self.process
    }
}

/// The payload of the frame at the start of `bytes`, once all of it has arrived; a frame
/// announcing more than `max` bytes is [`ChildFault::Garbled`].
pub(super) fn whole_frame(bytes: &[u8], max: u32) -> Result<Option<&[u8]>, ChildFault> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let header: [u8; HEADER_LEN] = header.try_into().unwrap_or_default();
    let len = frame::payload_len_within(header, max)
        .map_err(|e| ChildFault::Garbled(format!("frame header: {e}")))?;
    Ok(bytes.get(HEADER_LEN..HEADER_LEN + len))
}

/// How a process ended with this wait status, `None` for a clean exit.
pub(super) fn death_of(status: libc::c_int) -> Option<JobDeath> {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        return Some(if signal == libc::SIGSYS {
            JobDeath::Seccomp
        } else {
            JobDeath::Signal(signal)
        });
    }
    match libc::WEXITSTATUS(status) {
        0 => None,
        code => Some(JobDeath::Exited(code)),
    }
}

/// Moves the pipes to [`INPUT_FD`] and [`OUTPUT_FD`] and closes every other descriptor but
/// `keep`. Runs in the freshly forked child, so it allocates nothing.
fn settle_fds(input: OwnedFd, output: OwnedFd, keep: &[RawFd]) -> std::io::Result<()> {
    // First above both targets, so that placing one pipe never closes the other.
    let lift = |fd: OwnedFd| -> std::io::Result<RawFd> {
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own; `fd` is closed on return.
        let lifted = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, OUTPUT_FD + 1) };
        if lifted < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(lifted)
    };
    let input = lift(input)?;
    let output = lift(output)?;
    for (from, to) in [(input, INPUT_FD), (output, OUTPUT_FD)] {
        // SAFETY: dup2 onto a fixed number; whatever the parent had there is not ours to
        // keep (it is closed below anyway).
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let kept = || keep.iter().copied().chain([INPUT_FD, OUTPUT_FD]);
    let mut from: u32 = 0;
    loop {
        let next = kept().map(|fd| fd as u32).filter(|fd| *fd >= from).min();
        let last = next.map_or(u32::MAX, |fd| fd.saturating_sub(1));
        if next != Some(from) {
            // SAFETY: close_range only closes descriptors, none of which are kept.
            if unsafe { libc::close_range(from, last, 0) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        match next {
            Some(fd) => from = fd + 1,
            None => return Ok(()),
        }
    }
}

/// `fork`, into new user and PID namespaces. The user namespace is what lets a worker
/// without capabilities create the PID namespace. As glibc's own fork does, it asks the
/// kernel to store the child's thread id where glibc keeps it, so glibc's locks and thread
/// bookkeeping see the right id in the child.
fn fork_into_own_pid_namespace() -> Result<ForkResult, RunnerError> {
    let failed = |step| RunnerError::ForkIntoNamespaces {
        step,
        error: nix::Error::last(),
    };
    let mut tid_slot: *mut libc::pid_t = std::ptr::null_mut();
    // SAFETY: PR_GET_TID_ADDRESS writes one pointer into `tid_slot`.
    if unsafe { libc::prctl(libc::PR_GET_TID_ADDRESS, &mut tid_slot) } != 0 {
        return Err(failed(
            "prctl(PR_GET_TID_ADDRESS), which needs a kernel built with CONFIG_CHECKPOINT_RESTORE",
        ));
    }
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_CHILD_SETTID
        | libc::CLONE_CHILD_CLEARTID
        | libc::SIGCHLD;
    // The raw clone's argument order differs between architectures.
    #[cfg(target_arch = "x86_64")]
    // SAFETY: no new stack, so like fork the child continues on a copy of this one; the
    // caller is single-threaded (see `fork_child`). `tid_slot` is this thread's glibc tid
    // field.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, tid_slot, 0usize) };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, tid_slot) };
    match r {
        -1 => Err(failed("clone(CLONE_NEWUSER | CLONE_NEWPID)")),
        0 => Ok(ForkResult::Child),
        child => Ok(ForkResult::Parent {
            child: Pid::from_raw(child as libc::pid_t),
        }),
    }
}

/// Work a forked child must find already done, done once in the parent before its first
/// fork: the children's seccomp filters forbid what it needs.
fn prime_process_state() {
    static PRIMED: Once = Once::new();
    PRIMED.call_once(|| {
        online_cpus();
        trim_a_thread_heap();
    });
}

/// The CPUs this process may run on, read once: std reads cgroup files for it, which a
/// confined child may not open.
pub(super) fn online_cpus() -> u32 {
    static CPUS: OnceLock<u32> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
}

/// glibc reads `/proc/sys/vm/overcommit_memory` the first time it gives back memory from a
/// thread's heap, and keeps the answer for the life of the process and its forks. A job
/// that frees a lot on its execute thread (a large result) would make that read under a
/// filter that forbids `openat`, and die by seccomp. Making one thread heap give memory back
/// here, in the parent, settles it for every child.
fn trim_a_thread_heap() {
    // Blocks under glibc's mmap threshold (128 KiB) come from the thread's own heap; freeing
    // them back to front leaves a free top far over the trim threshold, which glibc trims.
    const BLOCK: usize = 64 * 1024;
    const BLOCKS: usize = 16;
    let trimmed = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| {
            // SAFETY: malloc with a valid size; a null result is never written to. (Kept
            // opaque, so the compiler cannot drop the malloc and free pairs.)
            let blocks: [*mut libc::c_void; BLOCKS] =
                std::array::from_fn(|_| std::hint::black_box(unsafe { libc::malloc(BLOCK) }));
            for block in blocks.iter().rev() {
                // SAFETY: each pointer came from malloc above (or is null) and is freed once.
                unsafe { libc::free(*block) };
            }
        })
        .map(|thread| thread.join());
    if !matches!(trimmed, Ok(Ok(()))) {
        tracing::warn!("could not settle glibc's heap-trim probe before forking children");
    }
}

/// A child process: killed and reaped when dropped, unless it was reaped already.
pub(super) struct Process {
    pid: Pid,
    reaped: bool,
}

/// What a reaped process used.
pub(super) struct Usage {
    /// CPU time, user and system, all threads.
    pub cpu: Duration,
    /// Peak resident memory in KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
}

impl Process {
    fn new(pid: Pid) -> Self {
        Self { pid, reaped: false }
    }

    /// Kills it and waits for it.
    pub(super) fn kill_and_reap(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.reap();
        }
    }

    /// Waits for it to end; returns its wait status and what it used.
    pub(super) fn reap(&mut self) -> std::io::Result<(libc::c_int, Usage)> {
        let mut status = 0;
        // SAFETY: rusage is plain data, zero is a valid value for it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: valid pointers to locals; pid is our own child, not yet reaped.
            let r = unsafe { libc::wait4(self.pid.as_raw(), &mut status, 0, &mut usage) };
            if r >= 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != ErrorKind::Interrupted {
                return Err(err);
            }
        }
        self.reaped = true;
        let used = Usage {
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            // Linux reports ru_maxrss in KiB.
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        };
        Ok((status, used))
    }

    /// CPU time it has used so far (live or zombie); zero if it cannot be read.
    pub(super) fn cpu_time(&self) -> Duration {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: valid out-pointer.
        if unsafe { libc::clock_getcpuclockid(self.pid.as_raw(), &mut clock) } != 0 {
            return Duration::ZERO;
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out-pointer.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return Duration::ZERO;
        }
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

fn pidfd_open(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn set_nonblocking(file: &File) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
    fcntl(file, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Reads what is available, up to one byte past a frame of `max` bytes; returns whether the
/// pipe is still open.
pub(super) fn drain(pipe: &mut File, output: &mut Vec<u8>, max: u32) -> std::io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                output.extend_from_slice(&chunk[..n]);
                if output.len() > HEADER_LEN + max as usize {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Polls a pipe for input (if given) and the pidfd; returns which are ready.
pub(super) fn poll_two(
    pipe: Option<&File>,
    pidfd: &OwnedFd,
    timeout: Duration,
) -> std::io::Result<(bool, bool)> {
    let ready = poll(
        pipe.map_or(-1, |p| p.as_raw_fd()),
        libc::POLLIN,
        pidfd,
        timeout,
    )?;
    Ok((ready.0, ready.1))
}

/// Waits until the pipe takes more input or the child ends; returns whether it ended.
fn poll_writable(pipe: &File, pidfd: &OwnedFd, timeout: Duration) -> std::io::Result<bool> {
    Ok(poll(pipe.as_raw_fd(), libc::POLLOUT, pidfd, timeout)?.1)
}

/// One `poll` on a pipe (`-1`: none) for `events` and on the pidfd; returns which are ready.
fn poll(
    pipe: RawFd,
    events: libc::c_short,
    pidfd: &OwnedFd,
    timeout: Duration,
) -> std::io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pipe,
            events,
            revents: 0,
        },
    ];
    // Round up, so a wait of less than a millisecond is not a busy loop.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: fds is a valid array of two pollfd; a negative fd is ignored by poll.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if r < 0 {
        let err = std::io::Error::last_os_error();
        return if err.kind() == ErrorKind::Interrupted {
            Ok((false, false))
        } else {
            Err(err)
        };
    }
    Ok((fds[1].revents != 0, fds[0].revents != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    // These tests fork the multi-threaded test process; the children only use pipes and
    // plain syscalls, which is safe after fork.

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn open_fds() -> Vec<RawFd> {
        // SAFETY: F_GETFD only reads a descriptor's flags.
        (0..1024)
            .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
            .collect()
    }

    #[test]
    fn a_child_holds_only_its_pipes_and_what_it_keeps() {
        let (kept, _kept_write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (stray, _stray_write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        // Away from the pipes' numbers, which the harness's own descriptors may take.
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own.
        let kept_fd = unsafe { libc::fcntl(kept.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
        assert!(kept_fd >= 100);
        // SAFETY: the new descriptor is ours alone.
        let _kept = unsafe { OwnedFd::from_raw_fd(kept_fd) };
        // Negative control: the parent holds stdio and both extra pipes.
        let parent = open_fds();
        for fd in [0, 1, 2, kept_fd, stray.as_raw_fd()] {
            assert!(parent.contains(&fd), "{fd} in {parent:?}");
        }
        let mut child = fork_child(JobIsolation::Fork, &[kept_fd], || {
            let (_input, mut output) = pipes();
            let fds: Vec<u32> = open_fds().into_iter().map(|fd| fd as u32).collect();
            let _ = frame::write(&mut output, &fds);
        })
        .unwrap();
        let fds: Vec<u32> = frame::decode(&child.receive(soon()).unwrap()).unwrap();
        let mut expected = vec![INPUT_FD as u32, OUTPUT_FD as u32, kept_fd as u32];
        expected.sort();
        assert_eq!(fds, expected);
    }

    #[test]
    fn a_childs_own_cpu_time_is_read_live() {
        let spin = || {
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        };
        let spinning = fork_child(JobIsolation::Fork, &[], spin).unwrap();
        let idle = fork_child(JobIsolation::Fork, &[], || {
            std::thread::sleep(Duration::from_secs(30))
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while spinning.cpu_time() < Duration::from_millis(200) {
            assert!(
                Instant::now() < deadline,
                "the spinning child's CPU time never grew"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Negative control: a child that sleeps has used next to nothing.
        assert!(idle.cpu_time() < Duration::from_millis(100));
    }

    #[test]
    fn frames_go_both_ways() {
        let mut child = fork_child(JobIsolation::Fork, &[], || {
            let (mut input, mut output) = pipes();
            while let Ok(n) = frame::read::<u32>(&mut input) {
                let _ = frame::write(&mut output, &(n * 2));
            }
        })
        .unwrap();
        for n in [1u32, 21] {
            child
                .send(&parity_scale_codec::Encode::encode(&n), soon())
                .unwrap();
            let back: u32 = frame::decode(&child.receive(soon()).unwrap()).unwrap();
            assert_eq!(back, n * 2);
        }
        // A frame much larger than the pipe's buffer goes through too.
        let big = vec![7u8; 4 << 20];
        let mut echo = fork_child(JobIsolation::Fork, &[], || {
            let (mut input, mut output) = pipes();
            let bytes: Vec<u8> = frame::read(&mut input).unwrap_or_default();
            let _ = frame::write(&mut output, &bytes);
        })
        .unwrap();
        echo.send(&parity_scale_codec::Encode::encode(&big), soon())
            .unwrap();
        let back: Vec<u8> = frame::decode(&echo.receive(soon()).unwrap()).unwrap();
        assert_eq!(back, big);
    }

    #[test]
    fn late_dead_and_garbled_children_are_told_apart() {
        let silent = || std::thread::sleep(Duration::from_secs(30));
        let mut child = fork_child(JobIsolation::Fork, &[], silent).unwrap();
        let started = Instant::now();
        let fault = child
            .receive(Instant::now() + Duration::from_millis(100))
            .unwrap_err();
        assert!(matches!(fault, ChildFault::Late(_)), "{fault:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // It does not read its input either: a large send is late, not stuck.
        let fault = child
            .send(
                &vec![0u8; 1 << 20],
                Instant::now() + Duration::from_millis(100),
            )
            .unwrap_err();
        assert!(matches!(fault, ChildFault::Late(_)), "{fault:?}");

        let mut child = fork_child(JobIsolation::Fork, &[], || {
            // SAFETY: raising a signal in the forked child.
            unsafe { libc::raise(libc::SIGABRT) };
        })
        .unwrap();
        let fault = child.receive(soon()).unwrap_err();
        assert!(
            matches!(fault, ChildFault::Died(JobDeath::Signal(libc::SIGABRT))),
            "{fault:?}"
        );

        let write_raw = |bytes: &'static [u8]| {
            move || {
                let (_, mut output) = pipes();
                let _ = output.write_all(bytes);
                std::thread::sleep(Duration::from_secs(30));
            }
        };
        let two_frames: &[u8] = &[1, 0, 0, 0, 7, 1, 0, 0, 0, 8];
        let oversized: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        for bytes in [two_frames, oversized] {
            let mut child = fork_child(JobIsolation::Fork, &[], write_raw(bytes)).unwrap();
            // Give the child time to write both frames before looking.
            std::thread::sleep(Duration::from_millis(200));
            let fault = child.receive(soon()).unwrap_err();
            assert!(
                matches!(fault, ChildFault::Garbled(_)),
                "{bytes:?}: {fault:?}"
            );
        }
        // Half a frame, then a clean exit.
        let mut child = fork_child(JobIsolation::Fork, &[], || {
            let (_, mut output) = pipes();
            let _ = output.write_all(&[9, 0, 0, 0, 1]);
        })
        .unwrap();
        let fault = child.receive(soon()).unwrap_err();
        assert!(
            matches!(
                fault,
                ChildFault::Died(JobDeath::Garbled(_)) | ChildFault::Garbled(_)
            ),
            "{fault:?}"
        );
    }
}
