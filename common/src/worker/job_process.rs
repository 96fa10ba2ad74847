//! The job runner both workers share: fork a child for one job ([`super::child`]: its two
//! pipes and nothing else of its parent), confine it, run the job body there, and supervise
//! it from the parent: CPU-time limit, wall-clock backstop, and the mapping of its end to a
//! typed [`JobEnd`].
//!
//! The CPU-time limit is enforced from outside the child (the parent reads the child's CPU
//! clock), so a compromised job cannot block or ignore it.

use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use parity_scale_codec::{Decode, Encode};

pub use super::child::JobIsolation;
use super::child::{self, Child, Process, Usage, exit_now, fork_child, whole_frame};
use crate::ipc::frame::{self, HEADER_LEN, MAX_FRAME_LEN};
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

/// Limits for one job.
#[derive(Clone, Copy, Debug)]
pub struct JobLimits {
    /// CPU time (user + system, all threads) the job may use.
    pub cpu: Duration,
    /// Wall time after which a job that has not used its CPU time is stopped anyway.
    pub wall: Duration,
}

impl JobLimits {
    /// How much longer than the CPU limit the wall-clock backstop is.
    pub const WALL_CLOCK_FACTOR: u32 = 4;

    /// Limits with the backstop at [`Self::WALL_CLOCK_FACTOR`] times the CPU limit.
    pub fn from_cpu(cpu: Duration) -> Self {
        Self {
            cpu,
            wall: cpu * Self::WALL_CLOCK_FACTOR,
        }
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
        /// inherited from its parent). `None` when the answer was taken before the job
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
    /// Creating the job's pipes failed.
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
    /// A descriptor the child should keep sits where its pipes go (a bug).
    #[error("a kept descriptor is numbered like the child's pipes")]
    FdLayout,
    /// Supervising the job failed (pidfd, poll, read, wait).
    #[error("supervising the job: {0}")]
    Supervise(std::io::Error),
    /// A pre-forked job process ended before it was given its input.
    #[error("the pre-forked job process ended before it was used")]
    NotReady,
}

/// How to fork a job process.
#[derive(Clone, Copy, Debug)]
pub struct JobSpec<'a> {
    /// Plain fork, or into its own user and PID namespaces.
    pub isolation: JobIsolation,
    /// Run the body on a thread with a stack of this many bytes, started before the input
    /// arrives (so a job forked ahead of time has it ready), which ends the process itself
    /// when done (so nothing waits to join it). `None`: on the process's main thread.
    pub stack: Option<usize>,
    /// Descriptors the job keeps besides its pipes: read-only memory images it maps.
    pub keep_fds: &'a [RawFd],
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
{
    let spec = JobSpec {
        isolation,
        stack: None,
        keep_fds: &[],
    };
    prefork(&spec, confine, |()| body())?.run(&().encode(), limits, Forked::JustNow)
}

/// When a job process was forked, which decides what its death before it took its input
/// means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forked {
    /// Just before it is used: a death before it took its input is its death (a failed
    /// confinement, for example).
    JustNow,
    /// Ahead of time: it may have waited long enough to die of causes unrelated to its
    /// input, so such a death is [`RunnerError::NotReady`] and the caller forks another.
    AheadOfTime,
}

/// A job process forked and confined ahead of time, blocked on its input pipe. Forking a
/// process that holds a large module costs milliseconds; forking the next job while idle
/// keeps that off the path from request to verdict. Dropping it kills the child.
pub struct ReadyJob<O> {
    child: Child,
    result: PhantomData<fn() -> O>,
}

/// Forks a job process that confines itself, then waits for its input (one frame holding an
/// encoded `I`), runs `body` on it, and writes back the encoded result as one frame.
///
/// The caller must be single-threaded (see [`run_job`]).
pub fn prefork<I, O, E>(
    spec: &JobSpec<'_>,
    confine: impl FnOnce() -> Result<(), E>,
    body: impl FnOnce(I) -> O + Send,
) -> Result<ReadyJob<O>, RunnerError>
where
    I: Decode,
    O: Encode + Decode,
{
    let stack = spec.stack;
    let child = fork_child(spec.isolation, spec.keep_fds, move || {
        job_main(stack, confine, body)
    })?;
    Ok(ReadyJob {
        child,
        result: PhantomData,
    })
}

/// A job process that has answered and may still be exiting (tearing down its copy of its
/// parent's memory takes a while for a large module). Dropping it kills and reaps it.
pub struct ExitingJob {
    _process: Process,
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
    /// Hands the job its input and supervises it to the end. A job forked
    /// [`Forked::AheadOfTime`] that already ended while it waited fails with
    /// [`RunnerError::NotReady`], so that death is never blamed on the input.
    pub fn run(
        self,
        input: &[u8],
        limits: JobLimits,
        forked: Forked,
    ) -> Result<JobEnd<O>, RunnerError> {
        Ok(self.start(input, limits, forked, Until::Exit)?.0)
    }

    /// Like [`ReadyJob::run`], but returns as soon as the job's answer is complete, with the
    /// process that may still be exiting: what happens to it after a complete answer cannot
    /// change the answer, so its teardown need not delay it.
    pub fn run_until_answer(
        self,
        input: &[u8],
        limits: JobLimits,
        forked: Forked,
    ) -> Result<(JobEnd<O>, Option<ExitingJob>), RunnerError> {
        self.start(input, limits, forked, Until::Answer)
    }

    fn start(
        mut self,
        input: &[u8],
        limits: JobLimits,
        forked: Forked,
        until: Until,
    ) -> Result<(JobEnd<O>, Option<ExitingJob>), RunnerError> {
        if forked == Forked::AheadOfTime
            && self.child.has_exited().map_err(RunnerError::Supervise)?
        {
            return Err(RunnerError::NotReady);
        }
        // A job that dies or stalls while reading is found out by the supervision below.
        let _ = self.child.write_frame(input, Instant::now() + limits.wall);
        supervise(self.child, limits, until)
    }
}

/// Confines the job, then serves its one request, on a thread with `stack` if asked.
fn job_main<I: Decode, O: Encode, E>(
    stack: Option<usize>,
    confine: impl FnOnce() -> Result<(), E>,
    body: impl FnOnce(I) -> O + Send,
) -> ! {
    // The job has no stderr to say why: the exit code does.
    if confine().is_err() {
        exit_now(EXIT_CONFINE_FAILED);
    }
    let Some(stack) = stack else { serve(body) };
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("job".into())
            .stack_size(stack)
            .spawn_scoped(scope, || serve(body));
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
fn serve<I: Decode, O: Encode>(body: impl FnOnce(I) -> O) -> ! {
    let (mut input, mut output) = child::pipes();
    let Ok(request) = frame::read::<I>(&mut input) else {
        exit_now(EXIT_BAD_INPUT)
    };
    let value = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(request))) {
        Ok(value) => value,
        Err(_) => exit_now(EXIT_PANIC),
    };
    match frame::write(&mut output, &value) {
        Ok(()) => exit_now(0),
        Err(_) => exit_now(EXIT_WRITE_FAILED),
    }
}

fn supervise<T: Decode>(
    mut child: Child,
    limits: JobLimits,
    until: Until,
) -> Result<(JobEnd<T>, Option<ExitingJob>), RunnerError> {
    let mut output = Vec::new();
    let mut pipe_open = true;
    let start = Instant::now();
    let cpus = child::online_cpus();
    loop {
        let (process, pidfd, pipe) = child.parts();
        let cpu = process.cpu_time();
        if cpu >= limits.cpu {
            return Ok(stop(process, JobEnd::TimedOut { cpu }));
        }
        let wall = start.elapsed();
        if wall >= limits.wall {
            return Ok(stop(process, JobEnd::WallClockExceeded { wall }));
        }
        // A job can burn CPU on every core at once, so wake early enough to catch that.
        let wait = ((limits.cpu - cpu) / cpus)
            .min(limits.wall - wall)
            .max(Duration::from_millis(1));
        let (pipe_ready, exited) = child::poll_two(pipe_open.then_some(&*pipe), pidfd, wait)
            .map_err(RunnerError::Supervise)?;
        if pipe_ready {
            pipe_open = child::drain(pipe, &mut output).map_err(RunnerError::Supervise)?;
        }
        if output.len() > HEADER_LEN + MAX_FRAME_LEN as usize {
            let death = JobDeath::Garbled("result larger than the frame limit".into());
            return Ok(stop(process, JobEnd::Died(death)));
        }
        let answered = match whole_frame(&output) {
            Ok(answer) => answer.is_some(),
            Err(e) => {
                let death = JobDeath::Garbled(e.to_string());
                return Ok(stop(process, JobEnd::Died(death)));
            }
        };
        if until == Until::Answer && !exited && answered {
            // Its CPU time as it answered; what it spends exiting is not the job's work.
            let cpu = process.cpu_time();
            let end = enforce_cpu_limit(decode_answer(&output, cpu, None), limits.cpu);
            let exiting = ExitingJob {
                _process: child.into_process(),
            };
            return Ok((end, Some(exiting)));
        }
        if exited {
            if pipe_open {
                child::drain(pipe, &mut output).map_err(RunnerError::Supervise)?;
            }
            let (status, usage) = process.reap().map_err(RunnerError::Supervise)?;
            let end = enforce_cpu_limit(conclude(status, usage, &output), limits.cpu);
            return Ok((end, None));
        }
    }
}

/// Kills and reaps the job; it ended as `end`.
fn stop<T>(process: &mut Process, end: JobEnd<T>) -> (JobEnd<T>, Option<ExitingJob>) {
    process.kill_and_reap();
    (end, None)
}

/// Decodes a job's complete output: exactly one answer frame and nothing after it.
fn decode_answer<T: Decode>(output: &[u8], cpu: Duration, max_rss_kib: Option<u64>) -> JobEnd<T> {
    let garbled = |why: String| JobEnd::Died(JobDeath::Garbled(why));
    let payload = match whole_frame(output) {
        Ok(Some(payload)) => payload,
        Ok(None) => return garbled(format!("incomplete job result ({} bytes)", output.len())),
        Err(e) => return garbled(e.to_string()),
    };
    if output.len() != HEADER_LEN + payload.len() {
        return garbled("bytes after the job result".into());
    }
    match frame::decode::<T>(payload) {
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
    match child::death_of(status) {
        Some(death) => JobEnd::Died(death),
        None => decode_answer(output, usage.cpu, Some(usage.max_rss_kib)),
    }
}

/// A job that finished past its CPU limit timed out all the same: whether the supervisor
/// woke before the job exited must not change the verdict.
fn enforce_cpu_limit<T>(end: JobEnd<T>, limit: Duration) -> JobEnd<T> {
    match end {
        JobEnd::Finished { cpu, .. } if cpu >= limit => JobEnd::TimedOut { cpu },
        end => end,
    }
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

    fn spec(stack: Option<usize>) -> JobSpec<'static> {
        JobSpec {
            isolation: JobIsolation::Fork,
            stack,
            keep_fds: &[],
        }
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
        let job = prefork(&spec(Some(64 << 20)), no_confine, |n: u32| depth(n)).unwrap();
        let end = job
            .run(&(32u32 * 1024).encode(), limits(5_000), Forked::JustNow)
            .unwrap();
        assert!(
            matches!(end, JobEnd::Finished { value: 32_768, .. }),
            "{end:?}"
        );
        let job = prefork(&spec(Some(1 << 20)), no_confine, |()| -> u32 {
            panic!("in the job thread")
        })
        .unwrap();
        let end = job
            .run(&().encode(), limits(5_000), Forked::JustNow)
            .unwrap();
        assert_eq!(end, JobEnd::Died(JobDeath::Exited(EXIT_PANIC)));
    }

    #[test]
    fn run_until_answer_gives_the_answer_and_the_process_to_reap() {
        let job = prefork(&spec(None), no_confine, |()| 5u32).unwrap();
        let (end, exiting) = job
            .run_until_answer(&().encode(), limits(5_000), Forked::AheadOfTime)
            .unwrap();
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
