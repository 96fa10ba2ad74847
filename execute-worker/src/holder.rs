//! An artifact holder: the process that deserializes one artifact, once, and forks that
//! artifact's jobs.
//!
//! The worker forks a holder after it has read the artifact file and checked its header and
//! checksum; the holder inherits those verified bytes. It confines itself like a job (its own
//! user and PID namespaces, the job rlimits, no descriptor but its two pipes) under its own
//! seccomp filter, deserializes the module, builds the copy-on-write image of its initial
//! memory and links it (`Runtime::new`), reports [`Report::Loaded`], and then serves: for
//! each request it hands the params to a job it forked while idle, supervises that job (the
//! CPU-time limit and wall-clock backstop of the shared job runner), and answers with how the
//! job ended.
//!
//! Why this shape: wasmtime's deserialization is only safe for trusted bytes, and these come
//! from a prepare job, which a compiler bug could have compromised. Deserializing in the
//! worker would put native code chosen by one artifact in the process that holds the host
//! socket and serves every other artifact.
//!
//! What a holder, compromised through its artifact, can and cannot do:
//! - it decides its own code's verdicts, which whoever compiled that code decides anyway;
//! - it cannot reach another artifact's requests or verdicts: only its own requests reach
//!   it, it holds no host socket and no other artifact, its PID namespace holds only its own
//!   jobs, and its filter allows no file, socket, `ptrace` or signal beyond its own jobs;
//! - it cannot hold the worker up: the worker bounds every exchange with it by the job's
//!   wall-clock backstop plus [`ANSWER_MARGIN`] (and its load by [`LOAD_DEADLINE`]), and
//!   kills a holder that is late, dead or garbled (a frame out of turn, of another
//!   request, or a report only the worker may make);
//! - it can use the machine's CPU while idle, but only up to the host's holder CPU budget
//!   (`ExecuteRequest::holder_cpu_budget_ms`) of its own: the worker reads every holder's CPU
//!   clock once a second (after an answer or while idle) and retires (kills) one past it;
//!   the next request for its artifact loads it afresh;
//! - it can use memory up to its rlimits plus memfds (its filter allows them for the memory
//!   image; never shared-mapped, so each lives only while its descriptor is open: at most 64
//!   of at most 1 GiB), within its worker's cgroup.
//!
//! The CPU-time limit is enforced by the holder, which reads its job's CPU clock: the job is
//! its child. The worker could read it too (the job is in the worker's PID namespace tree),
//! but only by learning the job's pid through the holder, which makes it no more trustworthy
//! than the holder's own answer, and a compromised job cannot stop its holder's supervision
//! (its filter allows no `kill` or `ptrace`). The worker's own bound is the wall clock.

use std::fs::File;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use parity_scale_codec::{Decode, Encode};
use pvf_common::artifact::VerifiedArtifact;
use pvf_common::error::{ExecJobError, HolderFault};
use pvf_common::ipc::frame;
use pvf_common::message::ExecuteResponse;
use pvf_common::sandbox::{self, WorkerContext};
use pvf_common::validation::ValidationResult;
use pvf_common::worker::JobDeath;
use pvf_common::worker::child::{
    self, Child, ChildFault, INPUT_FD, OUTPUT_FD, exit_now, fork_child,
};
use pvf_common::worker::job_process::{
    EXIT_CONFINE_FAILED, ExitingJob, Forked, JobEnd, JobIsolation, JobLimits, JobSpec, ReadyJob,
    RunnerError, prefork,
};
use wasmtime::{Engine, Module};

use pvf_execute_worker::runtime::{Runtime, RuntimeError};

/// How long a holder has to load its artifact: deserializing and imaging a 20 MB artifact
/// takes tens of milliseconds; the rest is room for a loaded machine. It stays under the
/// host's default grace past a job's backstop (5 s), so a slow load is answered, not lost.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(4);
/// How long past a job's wall-clock backstop the worker waits for the holder's answer: the
/// holder itself stops the job at the backstop, so this only covers forking and messaging.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Descriptors a holder looks through for the memory images wasmtime made (it holds only
/// its two pipes before it loads, and its rlimit allows 64).
const FD_SCAN: RawFd = 1024;

/// The worker's handle on a loaded holder. Dropping it kills the holder and its jobs.
pub struct Holder {
    child: Child,
    next_seq: u64,
}

/// One request to a holder.
#[derive(Encode, Decode)]
struct RunRequest {
    /// Echoed in the answer, so an answer out of turn is seen.
    seq: u64,
    /// The execute thread's stack size in bytes.
    stack: u64,
    max_pages: u32,
    cpu_ms: u64,
    validation_params: Vec<u8>,
}

/// What a job is given: only what it reads.
#[derive(Encode, Decode)]
struct JobInput {
    max_pages: u32,
    validation_params: Vec<u8>,
}

/// What a job reports.
type JobOutput = Result<ValidationResult, ExecJobError>;

/// What a holder says to the worker.
#[derive(Encode, Decode)]
enum Report {
    /// The artifact is loaded; requests may come.
    #[codec(index = 0)]
    Loaded,
    /// The artifact could not be loaded; the holder ends.
    #[codec(index = 1)]
    LoadFailed(LoadError),
    /// How the job for request `seq` ended.
    #[codec(index = 2)]
    Ran {
        /// The request's `seq`.
        seq: u64,
        /// How its job ended.
        response: ExecuteResponse,
    },
}

/// Why a holder could not load its artifact.
#[derive(Encode, Decode)]
enum LoadError {
    /// wasmtime refused the verified bytes: a broken artifact, prepared again.
    #[codec(index = 0)]
    Deserialize(String),
    /// The module does not link against the host functions: the module's own fault.
    #[codec(index = 1)]
    Link(String),
    /// Something of this machine: the memory image could not be built (a memfd, memory), or
    /// a descriptor is not a sealed image.
    #[codec(index = 2)]
    Internal(String),
}

impl Holder {
    /// Forks a holder for a verified artifact and waits for it to load. `Err` is the answer
    /// to the request that needed it.
    pub fn load(
        ctx: &WorkerContext,
        engine: &Engine,
        artifact: VerifiedArtifact,
        stack: usize,
    ) -> Result<Self, ExecuteResponse> {
        let child = fork_child(ctx.job_isolation(), &[], || {
            holder_main(ctx, engine, artifact, stack)
        })
        .map_err(|e| ExecuteResponse::WorkerError(format!("forking the artifact holder: {e}")))?;
        let mut holder = Self { child, next_seq: 0 };
        let report = holder
            .child
            .receive(Instant::now() + LOAD_DEADLINE)
            .map(|bytes| frame::decode::<Report>(&bytes));
        match report {
            Ok(Ok(Report::Loaded)) => Ok(holder),
            Ok(Ok(Report::LoadFailed(LoadError::Deserialize(e)))) => {
                Err(ExecuteResponse::BadArtifact(format!("deserialize: {e}")))
            }
            Ok(Ok(Report::LoadFailed(LoadError::Link(e)))) => {
                Err(ExecuteResponse::JobError(ExecJobError::Instantiation(e)))
            }
            Ok(Ok(Report::LoadFailed(LoadError::Internal(e)))) => Err(
                ExecuteResponse::WorkerError(format!("loading the artifact: {e}")),
            ),
            Ok(Ok(Report::Ran { .. })) => Err(garbled("an answer before any request")),
            Ok(Err(e)) => Err(garbled(&format!("undecodable report: {e}"))),
            Err(fault) => Err(load_fault(fault)),
        }
    }

    /// Whether the holder is still running (it may have been killed while idle).
    pub fn is_alive(&self) -> bool {
        matches!(self.child.has_exited(), Ok(false))
    }

    /// Whether the holder has used no more than `budget` of CPU time itself (its jobs'
    /// time is theirs).
    pub fn within_cpu_budget(&self, budget: Duration) -> bool {
        self.child.cpu_time() <= budget
    }

    /// Runs one job. `Err` means the holder failed and must be dropped; it carries the
    /// answer to this request.
    pub fn run(
        &mut self,
        stack: usize,
        max_pages: u32,
        validation_params: Vec<u8>,
        limits: JobLimits,
    ) -> Result<ExecuteResponse, ExecuteResponse> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let request = RunRequest {
            seq,
            stack: stack as u64,
            max_pages,
            cpu_ms: limits.cpu.as_millis() as u64,
            validation_params,
        };
        let deadline = Instant::now() + limits.wall + ANSWER_MARGIN;
        self.child
            .send(&request.encode(), deadline)
            .map_err(run_fault)?;
        let answer = self.child.receive(deadline).map_err(run_fault)?;
        match frame::decode::<Report>(&answer) {
            Ok(Report::Ran { seq: answered, .. }) if answered != seq => {
                Err(garbled("an answer to another request"))
            }
            Ok(Report::Ran { response, .. }) => match response {
                ExecuteResponse::BadArtifact(_) | ExecuteResponse::HolderFault(_) => {
                    Err(garbled("a report only the worker may make"))
                }
                response => Ok(response),
            },
            Ok(_) => Err(garbled("a load report after loading")),
            Err(e) => Err(garbled(&format!("undecodable answer: {e}"))),
        }
    }
}

fn garbled(why: &str) -> ExecuteResponse {
    ExecuteResponse::HolderFault(HolderFault::Garbled(why.into()))
}

/// The answer to a request whose holder failed while it loaded.
fn load_fault(fault: ChildFault) -> ExecuteResponse {
    match fault {
        // A gap in the holder's filter, or an artifact that attacked it: a security event.
        ChildFault::Died(JobDeath::Seccomp) => {
            ExecuteResponse::HolderFault(HolderFault::Died(JobDeath::Seccomp))
        }
        ChildFault::Died(JobDeath::Exited(EXIT_CONFINE_FAILED)) => {
            ExecuteResponse::WorkerError("the artifact holder could not confine itself".into())
        }
        // The verified bytes crash the deserializer: prepare the code again. (A holder killed
        // from outside while it loaded costs the same, one more preparation.)
        ChildFault::Died(death) => {
            ExecuteResponse::BadArtifact(format!("the artifact holder died loading it: {death}"))
        }
        ChildFault::Late(waited) => ExecuteResponse::WorkerError(format!(
            "the artifact holder did not load the artifact within {waited:?}"
        )),
        ChildFault::Garbled(why) => garbled(&why),
        ChildFault::Io(e) => {
            ExecuteResponse::WorkerError(format!("talking to the artifact holder: {e}"))
        }
    }
}

/// The answer to a request whose holder failed while it ran the job.
fn run_fault(fault: ChildFault) -> ExecuteResponse {
    let fault = match fault {
        ChildFault::Late(waited) => HolderFault::Late {
            waited_ms: waited.as_millis() as u64,
        },
        ChildFault::Died(death) => HolderFault::Died(death),
        ChildFault::Garbled(why) => HolderFault::Garbled(why),
        ChildFault::Io(e) => {
            return ExecuteResponse::WorkerError(format!("talking to the artifact holder: {e}"));
        }
    };
    ExecuteResponse::HolderFault(fault)
}

/// The holder process: confine, load, report, serve until the worker closes the pipe.
fn holder_main(ctx: &WorkerContext, engine: &Engine, artifact: VerifiedArtifact, stack: usize) {
    let (input, mut output) = child::pipes();
    // No stderr to say why: the worker reads the exit code.
    if sandbox::confine_holder(ctx).is_err() {
        exit_now(EXIT_CONFINE_FAILED);
    }
    match load(engine, artifact) {
        Ok((runtime, images)) => {
            if frame::write(&mut output, &Report::Loaded).is_ok() {
                let server = Server {
                    ctx,
                    runtime: &runtime,
                    images: &images,
                    stack,
                    ready: None,
                };
                server.serve(input, output);
            }
        }
        Err(e) => {
            let _ = frame::write(&mut output, &Report::LoadFailed(e));
        }
    }
}

/// Deserializes the artifact, builds its memory image and links it; returns the runtime and
/// the descriptors of the sealed memory images its jobs map.
fn load(engine: &Engine, artifact: VerifiedArtifact) -> Result<(Runtime, Vec<RawFd>), LoadError> {
    // SAFETY: the worker checked these bytes' header (our format, this engine's fingerprint,
    // this artifact's id) and checksum before it forked this holder. They may still come from
    // a compromised prepare job, which is why they are deserialized here, in a confined
    // process that holds this artifact alone (see the module docs), and never in the worker.
    let module = unsafe { Module::deserialize(engine, artifact.payload()) }
        .map_err(|e| LoadError::Deserialize(format!("{e:#}")))?;
    drop(artifact);
    let runtime = Runtime::new(engine, module).map_err(|e| match e {
        RuntimeError::Construction(e) => LoadError::Link(e),
        RuntimeError::Local(e) => LoadError::Internal(e),
    })?;
    Ok((runtime, sealed_images()?))
}

/// The descriptors the holder holds besides its pipes, each of which must be a memory image
/// wasmtime made and sealed (no write, no resize): the only descriptors its jobs keep.
fn sealed_images() -> Result<Vec<RawFd>, LoadError> {
    const SEALED: libc::c_int = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK;
    let mut images = Vec::new();
    for fd in (0..FD_SCAN).filter(|fd| *fd != INPUT_FD && *fd != OUTPUT_FD) {
        // SAFETY: F_GETFD only reads a descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            continue;
        }
        // SAFETY: F_GET_SEALS only reads a descriptor's seals (EINVAL if it has none).
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        if seals < 0 || seals & SEALED != SEALED {
            return Err(LoadError::Internal(format!(
                "descriptor {fd} is not a sealed memory image"
            )));
        }
        images.push(fd);
    }
    Ok(images)
}

/// A loaded holder's request loop.
struct Server<'a> {
    ctx: &'a WorkerContext,
    runtime: &'a Runtime,
    images: &'a [RawFd],
    /// The execute thread's stack size the last request asked for: the host keys workers by
    /// preparation parameters, so the next request almost always asks the same.
    stack: usize,
    /// The next job, forked while idle with its execute thread started, and its stack size.
    ready: Option<(usize, ReadyJob<JobOutput>)>,
}

impl Server<'_> {
    fn serve(mut self, mut input: File, mut output: File) {
        loop {
            if self.ready.is_none() {
                // A failure here is met again, and answered, on the request's path.
                self.ready = self.fork(self.stack).ok().map(|job| (self.stack, job));
            }
            // The worker closed the pipe (it unloads this artifact) or died.
            let Ok(request) = frame::read::<RunRequest>(&mut input) else {
                return;
            };
            let seq = request.seq;
            let (response, exiting) = self.run(request);
            if frame::write(&mut output, &Report::Ran { seq, response }).is_err() {
                return;
            }
            // The answer is out: let the last job finish exiting before the next fork.
            drop(exiting);
        }
    }

    fn run(&mut self, request: RunRequest) -> (ExecuteResponse, Option<ExitingJob>) {
        let stack = usize::try_from(request.stack).unwrap_or(usize::MAX);
        self.stack = stack;
        let limits = JobLimits::from_cpu(Duration::from_millis(request.cpu_ms));
        let input = JobInput {
            max_pages: request.max_pages,
            validation_params: request.validation_params,
        }
        .encode();
        let end = match self.ready.take() {
            Some((ready_stack, job)) if ready_stack == stack => {
                job.run_until_answer(&input, limits, Forked::AheadOfTime)
            }
            _ => Err(RunnerError::NotReady),
        };
        let end = match end {
            Err(RunnerError::NotReady) => self
                .fork(stack)
                .and_then(|job| job.run_until_answer(&input, limits, Forked::JustNow)),
            other => other,
        };
        match end {
            Ok((end, exiting)) => (response(end), exiting),
            Err(e) => (ExecuteResponse::WorkerError(e.to_string()), None),
        }
    }

    /// Forks a confined job that keeps the memory images and waits for its input on an
    /// execute thread with a `stack`-byte stack.
    ///
    /// The job shares the holder's namespaces. The holder's user namespace has no id map
    /// (the worker, which has no `/proc`, cannot write one), and a process whose ids are
    /// unmapped cannot create a user namespace, nor without one a PID namespace. That costs
    /// nothing across artifacts: the holder's PID namespace holds only itself and its jobs,
    /// all of them this artifact's, and the job's filter allows no `kill` or `ptrace`.
    fn fork(&self, stack: usize) -> Result<ReadyJob<JobOutput>, RunnerError> {
        let spec = JobSpec {
            isolation: JobIsolation::Fork,
            stack: Some(stack),
            keep_fds: self.images,
        };
        let runtime = self.runtime;
        prefork(
            &spec,
            || sandbox::confine_job(self.ctx),
            |input: JobInput| runtime.validate(&input.validation_params, input.max_pages),
        )
    }
}

/// How a job ended, as the holder reports it.
fn response(end: JobEnd<JobOutput>) -> ExecuteResponse {
    match end {
        JobEnd::Finished {
            value: Ok(result),
            cpu,
            ..
        } => ExecuteResponse::Ok {
            result,
            cpu_ms: cpu.as_millis() as u64,
        },
        JobEnd::Finished { value: Err(e), .. } => ExecuteResponse::JobError(e),
        JobEnd::TimedOut { cpu } => ExecuteResponse::TimedOut {
            cpu_ms: cpu.as_millis() as u64,
        },
        JobEnd::WallClockExceeded { wall } => ExecuteResponse::WallClockExceeded {
            wall_ms: wall.as_millis() as u64,
        },
        JobEnd::Died(death) => ExecuteResponse::JobDied(death),
    }
}
