//! The job-process runner both workers share: fork a child for one job, confine it, run the
//! job body there, and supervise it from the worker: result pipe, CPU-time limit, wall-clock
//! backstop, and the mapping of its end to a typed [`JobEnd`].
//!
//! The CPU-time limit is enforced from outside the child (the worker reads the child's CPU
//! clock), so a compromised job cannot block or ignore it.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid, fork, pipe2};
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::ipc::frame::MAX_FRAME_LEN;
use crate::worker::JobDeath;

/// Exit code of a job child whose confinement failed before it touched untrusted bytes.
pub const EXIT_CONFINE_FAILED: i32 = 90;
/// Exit code of a job child whose body panicked.
pub const EXIT_PANIC: i32 = 91;
/// Exit code of a job child that could not write its result.
pub const EXIT_WRITE_FAILED: i32 = 92;
/// Exit code of a job child whose input could not be read or decoded.
pub const EXIT_BAD_INPUT: i32 = 94;
/// Exit code of a job child that could not start the thread its body runs on.
pub const EXIT_THREAD_FAILED: i32 = 95;

/// How a job process is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobIsolation {
    /// A plain fork: the job shares the worker's namespaces (the namespaces layer is off).
    Fork,
    /// The job also gets its own user and PID namespaces: it is PID 1 of a namespace that
    /// holds only itself, so there is no other process for it to see or signal. This costs
    /// at most about 0.005 ms per job over a plain fork (`pvf-layer-cost`).
    OwnPidNamespace,
}

/// Limits for one job.
#[derive(Clone, Copy, Debug)]
pub struct JobLimits {
    /// CPU time (user + system, all threads) the job may use.
    pub cpu: Duration,
    /// Wall time after which a job that has not used its CPU time is stopped anyway.
    pub wall: Duration,
    /// The most bytes the job may answer with; a job that writes more is killed (default:
    /// [`MAX_FRAME_LEN`], as its answer usually travels on in a frame).
    pub output: usize,
}

impl JobLimits {
    /// How much longer than the CPU limit the wall-clock backstop is.
    pub const WALL_CLOCK_FACTOR: u32 = 4;

    /// Limits with the backstop at [`Self::WALL_CLOCK_FACTOR`] times the CPU limit.
    pub fn from_cpu(cpu: Duration) -> Self {
        Self {
            cpu,
            wall: cpu * Self::WALL_CLOCK_FACTOR,
            output: MAX_FRAME_LEN as usize,
        }
    }

    /// These limits with another cap on the job's answer.
    pub fn with_output_cap(self, output: usize) -> Self {
        Self { output, ..self }
    }
}

/// How a job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum JobEnd<T> {
    /// The body returned a value.
    Finished {
        /// What the body returned.
        value: T,
        /// CPU time the job used.
        cpu: Duration,
        /// The job's peak resident memory in KiB (`ru_maxrss`; it includes the pages the job
        /// inherited from its worker). `None` when the answer was taken before the job
        /// process had ended ([`ReadyJob::run_until_answer`]).
        max_rss_kib: Option<u64>,
    },
    /// The job used up its CPU time and was killed.
    TimedOut {
        /// CPU time when it was killed.
        cpu: Duration,
    },
    /// The job hit the wall-clock backstop and was killed.
    WallClockExceeded {
        /// Wall time when it was killed.
        wall: Duration,
    },
    /// The job process ended without a result.
    Died(JobDeath),
}

/// Why the runner itself failed (the job never ran or could not be supervised).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// Creating the result pipe failed.
    #[error("pipe2: {0}")]
    Pipe(nix::Error),
    /// Forking the job process failed.
    #[error("fork: {0}")]
    Fork(nix::Error),
    /// Forking the job process into its own user and PID namespaces failed (a limit on
    /// user namespaces, or a kernel that refuses nested ones or lacks a call it needs).
    #[error("forking the job into its own user and PID namespaces: {step}: {error}")]
    ForkIntoNamespaces {
        /// The call that failed.
        step: &'static str,
        /// How it failed.
        error: nix::Error,
    },
    /// Supervising the job failed (pidfd, poll, read, wait).
    #[error("supervising the job: {0}")]
    Supervise(std::io::Error),
    /// A pre-forked job process ended before it was given its input.
    #[error("the pre-forked job process ended before it was used")]
    NotReady,
}

/// Runs `body` in a forked child after `confine` has succeeded there, and supervises it.
///
/// The caller must be single-threaded: the child of a multi-threaded process may inherit
/// locks held by threads that do not exist in it.
pub fn run_job<T, E>(
    limits: JobLimits,
    isolation: JobIsolation,
    confine: impl FnOnce() -> Result<(), E>,
    body: impl FnOnce() -> T + Send,
) -> Result<JobEnd<T>, RunnerError>
where
    T: Encode + Decode,
    E: std::fmt::Display,
{
    prefork(isolation, None, confine, |()| body())?.run(&().encode(), limits)
}

/// A job process forked and confined ahead of time, blocked on its input pipe. Forking a
/// worker that holds a large module costs milliseconds; a worker that forks its next job
/// while idle keeps that off the path from request to verdict. Dropping it kills the child.
pub struct ReadyJob<O> {
    process: KillOnDrop,
    input: File,
    output: OwnedFd,
    result: PhantomData<fn() -> O>,
}

/// Forks a job process that confines itself, then waits for its input (an encoded `I`),
/// runs `body` on it, and writes back the encoded result.
///
/// With `stack`, all of that runs on a thread with a stack of that many bytes, started
/// before the input arrives (so a job forked ahead of time has it ready), which ends the
/// process itself when done (so nothing waits to join it).
///
/// The caller must be single-threaded (see [`run_job`]).
pub fn prefork<I, O, E>(
    isolation: JobIsolation,
    stack: Option<usize>,
    confine: impl FnOnce() -> Result<(), E>,
    body: impl FnOnce(I) -> O + Send,
) -> Result<ReadyJob<O>, RunnerError>
where
    I: Decode,
    O: Encode + Decode,
    E: std::fmt::Display,
{
    let (input_read, input_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(RunnerError::Pipe)?;
    let (output_read, output_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(RunnerError::Pipe)?;
    let worker = nix::unistd::getpid();
    let forked = match isolation {
        // SAFETY: the worker is single-threaded (see above), so the child can run Rust code.
        JobIsolation::Fork => unsafe { fork() }.map_err(RunnerError::Fork),
        JobIsolation::OwnPidNamespace => fork_into_own_pid_namespace(),
    };
    match forked? {
        ForkResult::Child => {
            drop(input_write);
            drop(output_read);
            // Outside its namespace the worker has no pid here: getppid() gives 0.
            let worker = (isolation == JobIsolation::Fork).then_some(worker);
            child_main(worker, stack, input_read, output_write, confine, body)
        }
        ForkResult::Parent { child } => Ok(ReadyJob {
            process: KillOnDrop(child),
            input: File::from(input_write),
            output: output_read,
            result: PhantomData,
        }),
    }
}

/// A job process that has answered and may still be exiting (tearing down its copy of the
/// worker's memory takes a while for a large module). Dropping it kills and reaps it.
pub struct ExitingJob {
    _process: KillOnDrop,
}

/// Until when [`supervise`] follows a job.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The process has ended and been reaped (its peak memory is known).
    Exit,
    /// Its answer is complete; the process may still be exiting.
    Answer,
}

impl<O: Decode> ReadyJob<O> {
    /// Hands the job its input and supervises it to the end. Fails with
    /// [`RunnerError::NotReady`] if the process already ended while it waited, so a death
    /// before the input arrived is never blamed on that input.
    pub fn run(self, input: &[u8], limits: JobLimits) -> Result<JobEnd<O>, RunnerError> {
        Ok(self.start(input, limits, Until::Exit)?.0)
    }

    /// Like [`ReadyJob::run`], but returns as soon as the job's answer is complete, with the
    /// process that may still be exiting: what happens to it after a complete answer cannot
    /// change the answer, so its teardown need not delay it.
    pub fn run_until_answer(
        self,
        input: &[u8],
        limits: JobLimits,
    ) -> Result<(JobEnd<O>, Option<ExitingJob>), RunnerError> {
        self.start(input, limits, Until::Answer)
    }

    fn start(
        self,
        input: &[u8],
        limits: JobLimits,
        until: Until,
    ) -> Result<(JobEnd<O>, Option<ExitingJob>), RunnerError> {
        let Self {
            process,
            input: mut input_pipe,
            output,
            ..
        } = self;
        let pidfd = pidfd_open(process.0).map_err(RunnerError::Supervise)?;
        let (_, exited) = poll_two(None, &pidfd, Duration::ZERO).map_err(RunnerError::Supervise)?;
        if exited {
            return Err(RunnerError::NotReady);
        }
        // A job that dies while reading leaves EPIPE here; supervision reports its death.
        let _ = input_pipe.write_all(input);
        drop(input_pipe);
        supervise(process, pidfd, output, limits, until)
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
    // worker is single-threaded (see `prefork`). `tid_slot` is this thread's glibc tid field.
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

/// `worker` is the parent's pid where the job can see it (`None` in its own PID namespace).
fn child_main<I: Decode, O: Encode, E: std::fmt::Display>(
    worker: Option<Pid>,
    stack: Option<usize>,
    input: OwnedFd,
    output: OwnedFd,
    confine: impl FnOnce() -> Result<(), E>,
    body: impl FnOnce(I) -> O + Send,
) -> ! {
    // Die with the worker, so a killed worker leaves no job behind; if it died before the
    // signal was armed, leave now. (Where the parent is invisible, a worker that died early
    // shows as end-of-file on the input pipe below, and the job leaves then.)
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if worker.is_some_and(|worker| nix::unistd::getppid() != worker) {
        exit_now(EXIT_CONFINE_FAILED);
    }
    if let Err(e) = confine() {
        tracing::error!("job confinement failed: {e}");
        exit_now(EXIT_CONFINE_FAILED);
    }
    let Some(stack) = stack else {
        serve(input, output, body)
    };
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("job".into())
            .stack_size(stack)
            .spawn_scoped(scope, || serve(input, output, body));
        match thread {
            // `serve` never returns: a join that returns means the thread panicked.
            Ok(thread) => {
                let _ = thread.join();
                exit_now(EXIT_PANIC)
            }
            Err(_) => exit_now(EXIT_THREAD_FAILED),
        }
    })
}

/// Reads the job's input, runs `body` on it, writes the result and ends the process.
fn serve<I: Decode, O: Encode>(input: OwnedFd, output: OwnedFd, body: impl FnOnce(I) -> O) -> ! {
    let mut bytes = Vec::new();
    let read = File::from(input)
        .take(u64::from(MAX_FRAME_LEN) + 1)
        .read_to_end(&mut bytes);
    let request = match read.ok().and_then(|_| I::decode_all(&mut &bytes[..]).ok()) {
        Some(request) => request,
        None => exit_now(EXIT_BAD_INPUT),
    };
    drop(bytes);
    let value = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(request))) {
        Ok(value) => value,
        Err(_) => exit_now(EXIT_PANIC),
    };
    let encoded = value.encode();
    let Ok(len) = u32::try_from(encoded.len()) else {
        exit_now(EXIT_WRITE_FAILED)
    };
    let mut answer = Vec::with_capacity(4 + encoded.len());
    answer.extend_from_slice(&len.to_le_bytes());
    answer.extend_from_slice(&encoded);
    let mut pipe = File::from(output);
    match pipe.write_all(&answer) {
        Ok(()) => exit_now(0),
        Err(_) => exit_now(EXIT_WRITE_FAILED),
    }
}

/// Leaves the job process at once, running no destructors or atexit handlers that belong
/// to the worker.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

fn supervise<T: Decode>(
    guard: KillOnDrop,
    pidfd: OwnedFd,
    read_end: OwnedFd,
    limits: JobLimits,
    until: Until,
) -> Result<(JobEnd<T>, Option<ExitingJob>), RunnerError> {
    let child = guard.0;
    set_nonblocking(&read_end).map_err(RunnerError::Supervise)?;
    let mut pipe = File::from(read_end);
    let mut output = Vec::new();
    let mut pipe_open = true;
    let start = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    loop {
        let cpu = child_cpu_time(child);
        if cpu >= limits.cpu {
            return Ok((guard.kill_and_reap(JobEnd::TimedOut { cpu }), None));
        }
        let wall = start.elapsed();
        if wall >= limits.wall {
            return Ok((
                guard.kill_and_reap(JobEnd::WallClockExceeded { wall }),
                None,
            ));
        }
        // A job can burn CPU on every core at once, so wake early enough to catch that.
        let wait = ((limits.cpu - cpu) / cpus)
            .min(limits.wall - wall)
            .max(Duration::from_millis(1));
        let (pipe_ready, exited) =
            poll_two(pipe_open.then_some(&pipe), &pidfd, wait).map_err(RunnerError::Supervise)?;
        if pipe_ready {
            pipe_open =
                drain(&mut pipe, &mut output, limits.output).map_err(RunnerError::Supervise)?;
        }
        if output.len() > limits.output {
            return Ok((guard.kill_and_reap(over_cap(limits)), None));
        }
        if until == Until::Answer && !exited && answer(&output).is_some() {
            // Its CPU time as it answered; what it spends exiting is not the job's work.
            let cpu = child_cpu_time(child);
            let end = enforce_cpu_limit(decode_answer(&output, cpu, None), limits.cpu);
            return Ok((end, Some(ExitingJob { _process: guard })));
        }
        if exited {
            if pipe_open {
                drain(&mut pipe, &mut output, limits.output).map_err(RunnerError::Supervise)?;
            }
            if output.len() > limits.output {
                return Ok((guard.kill_and_reap(over_cap(limits)), None));
            }
            let (status, usage) = guard.reap().map_err(RunnerError::Supervise)?;
            let end = enforce_cpu_limit(conclude(status, usage, &output), limits.cpu);
            return Ok((end, None));
        }
    }
}

/// The end of a job that wrote more than its answer may hold.
fn over_cap<T>(limits: JobLimits) -> JobEnd<T> {
    let cap = limits.output;
    JobEnd::Died(JobDeath::Garbled(format!(
        "result larger than its cap of {cap} bytes"
    )))
}

/// The answer in a job's output (a little-endian `u32` length, then that many bytes), once
/// all of it has arrived.
fn answer(output: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(output.get(..4)?.try_into().ok()?);
    output.get(4..4 + len as usize)
}

/// Decodes a job's complete output: exactly one answer and nothing after it.
fn decode_answer<T: Decode>(output: &[u8], cpu: Duration, max_rss_kib: Option<u64>) -> JobEnd<T> {
    let garbled = |why: String| JobEnd::Died(JobDeath::Garbled(why));
    let Some(payload) = answer(output) else {
        return garbled(format!("incomplete job result ({} bytes)", output.len()));
    };
    if output.len() != 4 + payload.len() {
        return garbled("bytes after the job result".into());
    }
    match T::decode_all(&mut &payload[..]) {
        Ok(value) => JobEnd::Finished {
            value,
            cpu,
            max_rss_kib,
        },
        Err(e) => garbled(format!("undecodable job result: {e}")),
    }
}

/// Turns the child's wait status and output into a [`JobEnd`].
fn conclude<T: Decode>(status: libc::c_int, usage: Usage, output: &[u8]) -> JobEnd<T> {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        return JobEnd::Died(if signal == libc::SIGSYS {
            JobDeath::Seccomp
        } else {
            JobDeath::Signal(signal)
        });
    }
    let code = libc::WEXITSTATUS(status);
    if code != 0 {
        return JobEnd::Died(JobDeath::Exited(code));
    }
    decode_answer(output, usage.cpu, Some(usage.max_rss_kib))
}

/// A job that finished past its CPU limit timed out all the same: whether the supervisor
/// woke before the job exited must not change the verdict.
fn enforce_cpu_limit<T>(end: JobEnd<T>, limit: Duration) -> JobEnd<T> {
    match end {
        JobEnd::Finished { cpu, .. } if cpu >= limit => JobEnd::TimedOut { cpu },
        end => end,
    }
}

/// Reads what is available, stopping once past `cap`; returns whether the pipe is still open.
fn drain(pipe: &mut File, output: &mut Vec<u8>, cap: usize) -> std::io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                output.extend_from_slice(&chunk[..n]);
                if output.len() > cap {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Kills and reaps the child unless it was reaped normally.
struct KillOnDrop(Pid);

impl KillOnDrop {
    fn kill_and_reap<T>(self, end: JobEnd<T>) -> JobEnd<T> {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = self.reap();
        end
    }

    /// Waits for the child; returns its status and what it used.
    fn reap(self) -> std::io::Result<(libc::c_int, Usage)> {
        let pid = self.0;
        std::mem::forget(self);
        let mut status = 0;
        // SAFETY: rusage is plain data, zero is a valid value for it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: valid pointers to locals; pid is our own child.
            let r = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut usage) };
            if r >= 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != ErrorKind::Interrupted {
                return Err(err);
            }
        }
        let used = Usage {
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            // Linux reports ru_maxrss in KiB.
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        };
        Ok((status, used))
    }
}

/// What a reaped job used.
struct Usage {
    cpu: Duration,
    max_rss_kib: u64,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        // SAFETY: reaping our own child; null status pointer is allowed.
        unsafe { libc::waitpid(self.0.as_raw(), std::ptr::null_mut(), 0) };
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// CPU time the (live or zombie) child has used; zero if it cannot be read.
fn child_cpu_time(child: Pid) -> Duration {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: valid out-pointer.
    if unsafe { libc::clock_getcpuclockid(child.as_raw(), &mut clock) } != 0 {
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

fn pidfd_open(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Polls the result pipe (if still open) and the pidfd; returns which are ready.
fn poll_two(
    pipe: Option<&File>,
    pidfd: &OwnedFd,
    timeout: Duration,
) -> std::io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: pidfd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pipe.map_or(-1, |p| p.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
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

    fn limits(ms: u64) -> JobLimits {
        JobLimits::from_cpu(Duration::from_millis(ms))
    }

    fn no_confine() -> Result<(), String> {
        Ok(())
    }

    // These tests fork the test process; the test harness is multi-threaded, but the child
    // only computes and writes to a pipe, which is safe after fork.

    #[test]
    fn returns_the_body_value() {
        let end = run_job(limits(5_000), JobIsolation::Fork, no_confine, || 41u32 + 1).unwrap();
        assert!(matches!(end, JobEnd::Finished { value: 42, .. }));
    }

    #[test]
    fn reports_the_peak_memory_of_the_job() {
        const TOUCHED: usize = 64 * 1024 * 1024;
        let end = run_job(limits(5_000), JobIsolation::Fork, no_confine, || {
            let buffer = std::hint::black_box(vec![1u8; TOUCHED]);
            buffer.len() as u32
        })
        .unwrap();
        let JobEnd::Finished {
            max_rss_kib: Some(max_rss_kib),
            ..
        } = end
        else {
            panic!("{end:?}");
        };
        assert!(max_rss_kib >= (TOUCHED / 1024) as u64, "{max_rss_kib} KiB");
    }

    #[test]
    fn a_job_in_its_own_pid_namespace_sees_no_other_process() {
        // The raw clone skips glibc's fork handlers, so it needs a single-threaded caller, as
        // a worker is; the test harness is not. A plain fork (which runs them) gives one.
        let end = run_job(limits(5_000), JobIsolation::Fork, no_confine, || {
            let worker = std::process::id() as libc::pid_t;
            let look = |isolation| {
                let end = run_job(limits(5_000), isolation, no_confine, || {
                    // SAFETY: signal 0 only checks whether the process can be signalled.
                    let signal_worker = unsafe { libc::kill(worker, 0) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    // SAFETY: plain getters.
                    let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
                    // glibc's thread id is right too: a thread can be created and joined.
                    let joined = std::thread::spawn(|| 7u32).join().ok();
                    (pid == 1, ppid == worker, signal_worker, errno, joined)
                });
                match end {
                    Ok(JobEnd::Finished { value, .. }) => Ok(value),
                    other => Err(format!("{isolation:?}: {other:?}")),
                }
            };
            Ok::<_, String>((
                look(JobIsolation::Fork)?,
                look(JobIsolation::OwnPidNamespace)?,
            ))
        })
        .unwrap();
        let JobEnd::Finished { value, .. } = end else {
            panic!("{end:?}");
        };
        let (forked, own) = value.unwrap_or_else(|e| panic!("an inner job: {e}"));
        // Negative control: a plain fork sees and can signal its worker.
        let (is_init, sees_worker, signal_worker, _, joined) = forked;
        assert_eq!(
            (is_init, sees_worker, signal_worker, joined),
            (false, true, 0, Some(7))
        );
        assert_eq!(own, (true, false, -1, Some(libc::ESRCH), Some(7)));
    }

    #[test]
    fn with_a_stack_the_body_runs_on_a_thread_that_has_it() {
        // 32 MiB of stack frames: more than a main thread gets by default (8 MiB).
        fn depth(n: u32) -> u32 {
            let frame = std::hint::black_box([0u8; 1024]);
            if n == 0 {
                frame[0] as u32
            } else {
                depth(n - 1) + std::hint::black_box(1)
            }
        }
        let job = prefork(JobIsolation::Fork, Some(64 << 20), no_confine, |n: u32| {
            depth(n)
        })
        .unwrap();
        let end = job.run(&(32u32 * 1024).encode(), limits(5_000)).unwrap();
        assert!(
            matches!(end, JobEnd::Finished { value: 32_768, .. }),
            "{end:?}"
        );
        let job = prefork(JobIsolation::Fork, Some(1 << 20), no_confine, |()| -> u32 {
            panic!("in the job thread")
        })
        .unwrap();
        let end = job.run(&().encode(), limits(5_000)).unwrap();
        assert_eq!(end, JobEnd::Died(JobDeath::Exited(EXIT_PANIC)));
    }

    #[test]
    fn run_until_answer_gives_the_answer_and_the_process_to_reap() {
        let job = prefork(JobIsolation::Fork, None, no_confine, |()| 5u32).unwrap();
        let (end, exiting) = job.run_until_answer(&().encode(), limits(5_000)).unwrap();
        // Whether the process had already exited when the answer was seen is a race; either
        // way the answer is the same.
        assert!(matches!(end, JobEnd::Finished { value: 5, .. }), "{end:?}");
        drop(exiting);
    }

    #[test]
    fn only_one_whole_answer_decodes() {
        let cpu = Duration::ZERO;
        let framed = |bytes: &[u8]| {
            let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(bytes);
            out
        };
        let whole = framed(&7u32.encode());
        assert!(matches!(
            decode_answer::<u32>(&whole, cpu, None),
            JobEnd::Finished { value: 7, .. }
        ));
        for bad in [
            &whole[..6],
            &[whole.clone(), vec![0]].concat()[..],
            &framed(&[1, 2])[..],
            &[][..],
        ] {
            assert!(
                matches!(
                    decode_answer::<u32>(bad, cpu, None),
                    JobEnd::Died(JobDeath::Garbled(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_answer_over_the_output_cap_kills_the_job() {
        let cap = 1 << 20;
        let answer = |len: usize| {
            run_job(
                limits(5_000).with_output_cap(cap),
                JobIsolation::Fork,
                no_confine,
                move || vec![7u8; len],
            )
            .unwrap()
        };
        assert!(matches!(answer(cap / 2), JobEnd::Finished { .. }));
        assert!(matches!(
            answer(2 * cap),
            JobEnd::Died(JobDeath::Garbled(why)) if why.contains("cap")
        ));
    }

    #[test]
    fn cpu_limit_kills_a_spinning_job() {
        let start = Instant::now();
        let end = run_job(limits(200), JobIsolation::Fork, no_confine, || -> u32 {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        })
        .unwrap();
        assert!(matches!(end, JobEnd::TimedOut { cpu } if cpu >= Duration::from_millis(200)));
        assert!(start.elapsed() < Duration::from_millis(800));
    }

    #[test]
    fn a_job_that_finished_past_its_cpu_limit_timed_out() {
        let limit = Duration::from_millis(10);
        let finished = |ms| JobEnd::Finished {
            value: 0u32,
            cpu: Duration::from_millis(ms),
            max_rss_kib: None,
        };
        assert_eq!(
            enforce_cpu_limit(finished(10), limit),
            JobEnd::TimedOut {
                cpu: Duration::from_millis(10)
            }
        );
        assert_eq!(enforce_cpu_limit(finished(9), limit), finished(9));
        assert_eq!(
            enforce_cpu_limit(JobEnd::<u32>::Died(JobDeath::Seccomp), limit),
            JobEnd::Died(JobDeath::Seccomp)
        );
    }

    #[test]
    fn wall_clock_catches_a_sleeping_job() {
        let end = run_job(limits(50), JobIsolation::Fork, no_confine, || {
            std::thread::sleep(Duration::from_secs(10));
            0u32
        })
        .unwrap();
        assert!(matches!(end, JobEnd::WallClockExceeded { .. }));
    }

    #[test]
    fn signals_and_exits_are_typed() {
        let end = run_job(limits(5_000), JobIsolation::Fork, no_confine, || {
            // SAFETY: raising a signal in the forked child.
            unsafe { libc::raise(libc::SIGSYS) };
            0u32
        })
        .unwrap();
        assert_eq!(end, JobEnd::Died(JobDeath::Seccomp));
        let end = run_job(limits(5_000), JobIsolation::Fork, no_confine, || {
            // SAFETY: raising a signal in the forked child.
            unsafe { libc::raise(libc::SIGABRT) };
            0u32
        })
        .unwrap();
        assert_eq!(end, JobEnd::Died(JobDeath::Signal(libc::SIGABRT)));
        let end = run_job(limits(5_000), JobIsolation::Fork, || Err("no"), || 0u32).unwrap();
        assert_eq!(end, JobEnd::Died(JobDeath::Exited(EXIT_CONFINE_FAILED)));
    }
}
