//! Verdicts, and the one table that maps every failure to a verdict and an exit code.
//!
//! The classes follow Polkadot's PVF host and candidate validation (`docs/parity.md` gives
//! the source for each row), because validators running different hosts must agree. Each
//! row's `kind` and `stage` are what [`Reason::kind`] and [`Reason::stage`] return, and what
//! `pvf validate --json`, `batch` and `serve` print.
//!
//! | failure | stage | kind | verdict | `pvf` exit |
//! |---|---|---|---|---|
//! | `validate_block` returned a decodable result | execute | — | Valid | 0 |
//! | trap (incl. `unreachable`, out of bounds, stack limit, a host function refusing its arguments, the allocator failing) | execute | `trap` | Invalid | 1 |
//! | the guest reported a panic | execute | `panic` | Invalid | 1 |
//! | result outside memory, undecodable, or with more than 16,384 upward or horizontal messages | execute | `bad_result` | Invalid | 1 |
//! | params undecodable, or the PoV does not decompress within its bomb limit | execute | `bad_params` | Invalid | 1 |
//! | no `memory` export, no `i32` global `__heap_base`, no `validate_block` of type `(i32, i32) -> i64` | execute | `bad_interface` | Invalid | 1 |
//! | CPU-time limit exceeded | execute | `timeout` | Invalid | 1 |
//! | runtime construction or instantiation fails (import not provided or of the wrong type, start function traps, initial memory over the bound) | execute | `instantiation` | PossiblyInvalid | 3 |
//! | wall-clock backstop hit without the CPU limit, or the worker stopped answering | execute | `wall_clock` | PossiblyInvalid | 3 |
//! | job died of a signal other than SIGSYS (a cgroup's OOM kill included), or garbled its answer | execute | `job_died` | PossiblyInvalid | 3 |
//! | the artifact's holder did not answer by the job's backstop plus a margin (killed) | execute | `wall_clock` | PossiblyInvalid | 3 |
//! | the artifact's holder died while running the job (not of SIGSYS) | execute | `job_died` | PossiblyInvalid | 3 |
//! | the artifact's holder killed by seccomp (SIGSYS), also logged as a security event | execute | `seccomp` | Internal | 3 |
//! | the artifact's holder answered out of turn (another request's answer, a frame too many, a report only the worker may make, garbage): killed, and logged as a security event | execute | `holder_garbled` | Internal | 3 |
//! | the execute worker's connection broke mid-job | execute | `worker_died` | PossiblyInvalid | 3 |
//! | job killed by seccomp (SIGSYS), also logged as a security event | execute | `seccomp` | Internal | 3 |
//! | a stub (a host function outside Polkadot's set) was called | execute | `unsupported_host_function` | Internal | 3 |
//! | a result larger than this host carries | execute | `host_limit` | Internal | 3 |
//! | this machine failed: I/O, ENOSPC, fork, confinement, thread start; the artifact's holder could not load the artifact in time, build its memory image (memfd, memory) or confine itself | execute | `local` | Internal | 3 |
//! | the worker broke the protocol: an answer with another request's nonce, bytes before a request or after its answer, an oversized or undecodable frame; a security event, the worker is killed and replaced | prepare or execute | `local` | Internal | 3 |
//! | a prepare worker answered Ok but its artifact file is refused (not a regular file, a link, over the size cap, set-id or executable mode, bad header, another code's id, bad checksum); a security event, the worker is killed, nothing is installed | prepare | `local` | Internal (a failure of this machine: retried after the cooldown) | 3 |
//! | a worker fails to spawn (`EAGAIN`, dies at start, version mismatch) | — | — | none: retried with a backoff until one starts; the job waits | — |
//! | the re-prepared artifact is bad again for the same request | execute | `bad_artifact` | Internal | 3 |
//! | a bad artifact header or checksum (checked by the execute worker), wasmtime refused the verified bytes, or the holder died deserializing them | — | — | none: the file is deleted, the code re-prepared and re-run | — |
//! | **execution**: the code cannot be prepared, for any reason (pre-checking rules out bad code; a compiler difference must not vote) | prepare | as below | Internal | 3 |
//! | **pre-check**: invalid Wasm, a feature not allowed, code the rewriting or the stack limiter refuses, code bomb | prepare | `preparation` | Invalid | 1 |
//! | **pre-check**: runtime construction fails | prepare | `instantiation` | Internal | 3 |
//! | **pre-check**: valid code past this compiler's limits, out of memory, timed out, hit the backstop, died, seccomp, failed on this machine | prepare | `host_limit`, `out_of_memory`, `timeout`, `wall_clock`, `job_died`, `seccomp`, `local` | Internal | 3 |
//!
//! Polkadot's candidate validation turns PossiblyInvalid into an Invalid vote, after one
//! retry for approvals and disputes; Internal abstains.
//!
//! Not verdicts: a full execute queue, a stopped host, a backing job dropped past its
//! deadline, a time limit too large to enforce and params over 64 MiB are errors of the
//! request ([`crate::HostError`]); the caller did not get an answer about the candidate.
//! An approval or dispute whose verdict is PossiblyInvalid or Internal (except code that
//! cannot be prepared deterministically) is executed again first (see
//! [`crate::ValidationHost::execute`]); the table gives the verdict of one attempt.

use std::fmt;

use pvf_common::error::{ExecJobError, HolderFault, PrepareError};
use pvf_common::message::ExecuteResponse;
use pvf_common::validation::ValidationResult;
use pvf_common::worker::JobDeath;
use pvf_common::worker::job_process::{EXIT_BAD_INPUT, EXIT_CONFINE_FAILED, EXIT_THREAD_FAILED};

/// The answer to "is this candidate valid?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The candidate is valid; here is what `validate_block` returned.
    Valid(ValidationResult),
    /// The candidate is invalid; every honest validator reaches the same conclusion.
    Invalid(Reason),
    /// Probably invalid, but a retry might tell otherwise (Polkadot retries approvals and
    /// disputes once, then votes invalid).
    PossiblyInvalid(Reason),
    /// This machine could not judge (a gap in this host, or a local failure): abstain.
    Internal(Reason),
}

/// Which stage of validation a verdict came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Preparing the code (decompress, prevalidate, compile).
    Prepare,
    /// Running `validate_block`.
    Execute,
}

impl Stage {
    /// The stage's name in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Execute => "execute",
        }
    }
}

/// Why a candidate is not valid. [`Reason::kind`] names the row of the table above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The guest trapped.
    Trap(String),
    /// The guest panicked.
    Panic(String),
    /// `validate_block` returned something unusable.
    BadResult(String),
    /// The params could not be given to the guest.
    BadParams(String),
    /// The instance lacks the memory, heap base or entry point the call needs.
    BadInterface(String),
    /// The job used up its CPU time.
    Timeout {
        /// CPU time used, in milliseconds.
        cpu_ms: u64,
    },
    /// The runtime could not be constructed or instantiated.
    Instantiation(String),
    /// The job or its worker ran past the wall-clock backstop.
    WallClock(String),
    /// The job process died without an answer.
    JobDied(JobDeath),
    /// The artifact's holder process failed the execute worker, which killed it.
    Holder(HolderFault),
    /// The execute worker's connection broke mid-job.
    WorkerDied(String),
    /// The guest called a host function this host does not provide.
    UnsupportedHostFunction(String),
    /// The guest's answer is past a limit of this host.
    HostLimit(String),
    /// This machine failed.
    Local(String),
    /// The artifact file was bad twice for the same request.
    BadArtifact(String),
    /// The code could not be prepared.
    Preparation(PrepareError),
}

impl Reason {
    /// The machine-readable kind, as `pvf validate --json` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Trap(_) => "trap",
            Self::Panic(_) => "panic",
            Self::BadResult(_) => "bad_result",
            Self::BadParams(_) => "bad_params",
            Self::BadInterface(_) => "bad_interface",
            Self::Timeout { .. } => "timeout",
            Self::Instantiation(_) => "instantiation",
            Self::WallClock(_) => "wall_clock",
            Self::JobDied(death) => death_kind(death),
            Self::Holder(fault) => holder_kind(fault),
            Self::WorkerDied(_) => "worker_died",
            Self::UnsupportedHostFunction(_) => "unsupported_host_function",
            Self::HostLimit(_) => "host_limit",
            Self::Local(_) => "local",
            Self::BadArtifact(_) => "bad_artifact",
            Self::Preparation(error) => preparation_kind(error),
        }
    }

    /// The stage the reason comes from.
    pub fn stage(&self) -> Stage {
        match self {
            Self::Preparation(_) => Stage::Prepare,
            _ => Stage::Execute,
        }
    }
}

fn death_kind(death: &JobDeath) -> &'static str {
    match death {
        JobDeath::Seccomp => "seccomp",
        JobDeath::Signal(_) | JobDeath::Exited(_) | JobDeath::Garbled(_) => "job_died",
    }
}

fn holder_kind(fault: &HolderFault) -> &'static str {
    match fault {
        HolderFault::Late { .. } => "wall_clock",
        HolderFault::Died(death) => death_kind(death),
        HolderFault::Garbled(_) => "holder_garbled",
    }
}

fn preparation_kind(error: &PrepareError) -> &'static str {
    match error {
        PrepareError::Decompress(_) | PrepareError::Prevalidation(_) | PrepareError::Compile(_) => {
            "preparation"
        }
        PrepareError::OutOfMemory => "out_of_memory",
        PrepareError::TimedOut { .. } => "timeout",
        PrepareError::WallClockExceeded { .. } => "wall_clock",
        PrepareError::JobDied(death) => death_kind(death),
        PrepareError::Internal(_) => "local",
        PrepareError::HostLimit(_) => "host_limit",
        PrepareError::RuntimeConstruction(_) => "instantiation",
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trap(m) => write!(f, "trap: {m}"),
            Self::Panic(m) => write!(f, "panic: {m}"),
            Self::BadResult(m) => write!(f, "bad result: {m}"),
            Self::BadParams(m) => write!(f, "bad params: {m}"),
            Self::BadInterface(m) => write!(f, "bad interface: {m}"),
            Self::Timeout { cpu_ms } => write!(f, "timeout: used {cpu_ms} ms of CPU time"),
            Self::Instantiation(m) => write!(f, "instantiation failed: {m}"),
            Self::WallClock(m) | Self::WorkerDied(m) | Self::Local(m) => write!(f, "{m}"),
            Self::JobDied(death) => write!(f, "job {death}"),
            Self::Holder(fault) => write!(f, "{fault}"),
            Self::UnsupportedHostFunction(name) => {
                write!(f, "call to unsupported host function `{name}`")
            }
            Self::HostLimit(m) => write!(f, "past a limit of this host: {m}"),
            Self::BadArtifact(m) => write!(f, "the artifact was bad twice: {m}"),
            Self::Preparation(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid(_) => write!(f, "Valid"),
            Self::Invalid(reason) => write!(f, "Invalid({reason})"),
            Self::PossiblyInvalid(reason) => write!(f, "PossiblyInvalid({reason})"),
            Self::Internal(reason) => write!(f, "Internal({reason})"),
        }
    }
}

impl Verdict {
    /// The verdict's class: `Valid`, `Invalid`, `PossiblyInvalid` or `Internal`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Valid(_) => "Valid",
            Self::Invalid(_) => "Invalid",
            Self::PossiblyInvalid(_) => "PossiblyInvalid",
            Self::Internal(_) => "Internal",
        }
    }

    /// Why the candidate is not valid (`None` when it is).
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Self::Valid(_) => None,
            Self::Invalid(r) | Self::PossiblyInvalid(r) | Self::Internal(r) => Some(r),
        }
    }

    /// The stage the verdict was decided in.
    pub fn stage(&self) -> Stage {
        self.reason().map_or(Stage::Execute, Reason::stage)
    }

    /// The verdict for how an execute job ended, as its worker reported it.
    pub fn from_execute_response(response: ExecuteResponse) -> Self {
        match response {
            ExecuteResponse::Ok { result, .. } => Self::Valid(result),
            ExecuteResponse::JobError(e) => Self::from_job_error(e),
            ExecuteResponse::TimedOut { cpu_ms } => Self::Invalid(Reason::Timeout { cpu_ms }),
            ExecuteResponse::WallClockExceeded { wall_ms } => {
                Self::PossiblyInvalid(Reason::WallClock(format!(
                    "wall-clock backstop hit after {wall_ms} ms without using the CPU limit"
                )))
            }
            ExecuteResponse::JobDied(death) => Self::from_job_death(death),
            ExecuteResponse::BadArtifact(reason) => Self::Internal(Reason::BadArtifact(reason)),
            ExecuteResponse::WorkerError(reason) => Self::Internal(Reason::Local(reason)),
            ExecuteResponse::HolderFault(fault) => Self::from_holder_fault(fault),
        }
    }

    /// The verdict for a job that reported an error from inside.
    pub fn from_job_error(error: ExecJobError) -> Self {
        match error {
            ExecJobError::Trap(m) => Self::Invalid(Reason::Trap(m)),
            ExecJobError::Panic(m) => Self::Invalid(Reason::Panic(m)),
            ExecJobError::BadResult(m) => Self::Invalid(Reason::BadResult(m)),
            ExecJobError::BadParams(m) => Self::Invalid(Reason::BadParams(m)),
            ExecJobError::BadInterface(m) => Self::Invalid(Reason::BadInterface(m)),
            ExecJobError::Instantiation(m) => Self::PossiblyInvalid(Reason::Instantiation(m)),
            ExecJobError::UnsupportedHostFunction(name) => {
                Self::Internal(Reason::UnsupportedHostFunction(name))
            }
            ExecJobError::HostLimit(m) => Self::Internal(Reason::HostLimit(m)),
            ExecJobError::Internal(m) => Self::Internal(Reason::Local(m)),
        }
    }

    /// The verdict for a job process that died without a result. The exit codes the job
    /// runner uses for failures before the job touched its input (confinement, thread start,
    /// reading the input) are this machine's; a compromised job could fake them, but it
    /// gains nothing a seccomp kill (also Internal) would not give it.
    pub fn from_job_death(death: JobDeath) -> Self {
        match death {
            JobDeath::Seccomp => {
                tracing::error!(target: "pvf::security", "execute job killed by seccomp");
                Self::Internal(Reason::JobDied(death))
            }
            JobDeath::Exited(EXIT_CONFINE_FAILED | EXIT_THREAD_FAILED | EXIT_BAD_INPUT) => {
                Self::Internal(Reason::Local(format!(
                    "job {death} before it ran the guest"
                )))
            }
            JobDeath::Signal(_) | JobDeath::Exited(_) | JobDeath::Garbled(_) => {
                Self::PossiblyInvalid(Reason::JobDied(death))
            }
        }
    }

    /// The verdict when the artifact's holder process failed the execute worker (which
    /// killed it). Only that artifact's requests reach a holder.
    pub fn from_holder_fault(fault: HolderFault) -> Self {
        match fault {
            // The holder's job had to end by this time; like the backstop itself.
            HolderFault::Late { .. } => Self::PossiblyInvalid(Reason::Holder(fault)),
            HolderFault::Died(JobDeath::Seccomp) => {
                tracing::error!(target: "pvf::security", "artifact holder killed by seccomp");
                Self::Internal(Reason::Holder(fault))
            }
            HolderFault::Died(_) => Self::PossiblyInvalid(Reason::Holder(fault)),
            // Honest holders never do this: a bug, or a holder compromised by its artifact.
            HolderFault::Garbled(_) => {
                tracing::error!(target: "pvf::security", "{fault}");
                Self::Internal(Reason::Holder(fault))
            }
        }
    }

    /// The verdict when the code a candidate needs could not be prepared: never a vote.
    /// Pre-checking is where code is judged; Polkadot's candidate validation abstains here,
    /// so that a difference between compilers never votes against a candidate.
    pub fn from_prepare_error(error: PrepareError) -> Self {
        log_seccomp(&error);
        Self::Internal(Reason::Preparation(error))
    }

    /// The verdict of a pre-check: Invalid when the failure is deterministic (the code is
    /// bad), Internal otherwise.
    pub fn from_precheck_error(error: PrepareError) -> Self {
        log_seccomp(&error);
        if error.is_deterministic() {
            Self::Invalid(Reason::Preparation(error))
        } else {
            Self::Internal(Reason::Preparation(error))
        }
    }

    /// The CLI exit code for this verdict.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Valid(_) => ExitCode::Ok,
            Self::Invalid(_) => ExitCode::Invalid,
            Self::PossiblyInvalid(_) | Self::Internal(_) => ExitCode::Inconclusive,
        }
    }
}

fn log_seccomp(error: &PrepareError) {
    if let PrepareError::JobDied(JobDeath::Seccomp) = error {
        tracing::error!(target: "pvf::security", "prepare job killed by seccomp");
    }
}

/// Exit codes of every `pvf` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Valid, or the command succeeded.
    Ok = 0,
    /// Invalid (for `prepare`: the code is invalid; for `cache verify`: a bad file).
    Invalid = 1,
    /// Bad usage, or an unreadable or unparsable input file.
    Usage = 2,
    /// PossiblyInvalid, Internal, or this machine cannot provide what was asked.
    Inconclusive = 3,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

#[cfg(test)]
mod tests {
    use pvf_common::worker::job_process::EXIT_PANIC;

    use super::*;

    #[test]
    fn seccomp_kills_never_vote_invalid() {
        let verdict = Verdict::from_job_death(JobDeath::Seccomp);
        assert!(matches!(verdict, Verdict::Internal(_)));
        assert_eq!(verdict.reason().map(Reason::kind), Some("seccomp"));
        let precheck = Verdict::from_precheck_error(PrepareError::JobDied(JobDeath::Seccomp));
        assert!(matches!(precheck, Verdict::Internal(_)));
    }

    #[test]
    fn a_failed_holder_never_votes_invalid() {
        for (fault, possibly_invalid) in [
            (HolderFault::Late { waited_ms: 9 }, true),
            (HolderFault::Died(JobDeath::Signal(libc::SIGKILL)), true),
            (HolderFault::Died(JobDeath::Seccomp), false),
            (HolderFault::Garbled("seq 3 for 4".into()), false),
        ] {
            let verdict = Verdict::from_holder_fault(fault);
            match verdict {
                Verdict::PossiblyInvalid(_) => assert!(possibly_invalid, "{verdict}"),
                Verdict::Internal(_) => assert!(!possibly_invalid, "{verdict}"),
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn other_deaths_are_possibly_invalid() {
        for death in [
            JobDeath::Signal(libc::SIGKILL),
            JobDeath::Exited(3),
            JobDeath::Exited(EXIT_PANIC),
        ] {
            let verdict = Verdict::from_job_death(death);
            assert!(matches!(verdict, Verdict::PossiblyInvalid(_)), "{verdict}");
            assert_eq!(verdict.reason().map(Reason::kind), Some("job_died"));
        }
    }

    #[test]
    fn deaths_before_the_guest_ran_are_this_machines() {
        for code in [EXIT_CONFINE_FAILED, EXIT_THREAD_FAILED, EXIT_BAD_INPUT] {
            let verdict = Verdict::from_job_death(JobDeath::Exited(code));
            assert!(matches!(verdict, Verdict::Internal(_)), "{verdict}");
            assert_eq!(verdict.reason().map(Reason::kind), Some("local"));
        }
    }

    #[test]
    fn stubs_are_internal_and_traps_invalid() {
        let stub = ExecJobError::UnsupportedHostFunction("env:x".into());
        let verdict = Verdict::from_job_error(stub);
        assert_eq!(verdict.exit_code(), ExitCode::Inconclusive);
        assert_eq!(
            verdict.reason().map(Reason::kind),
            Some("unsupported_host_function")
        );
        let trap = ExecJobError::Trap("unreachable".into());
        assert_eq!(Verdict::from_job_error(trap).exit_code(), ExitCode::Invalid);
    }

    #[test]
    fn runtime_construction_is_possibly_invalid_and_a_missing_export_invalid() {
        let construction = Verdict::from_job_error(ExecJobError::Instantiation("x".into()));
        assert!(matches!(construction, Verdict::PossiblyInvalid(_)));
        assert_eq!(
            construction.reason().map(Reason::kind),
            Some("instantiation")
        );
        let interface = Verdict::from_job_error(ExecJobError::BadInterface("x".into()));
        assert!(matches!(interface, Verdict::Invalid(_)));
        assert_eq!(interface.stage(), Stage::Execute);
    }

    #[test]
    fn preparation_failures_vote_only_in_a_precheck() {
        let bomb = PrepareError::Decompress("bomb".into());
        let execution = Verdict::from_prepare_error(bomb.clone());
        assert!(matches!(execution, Verdict::Internal(_)), "{execution}");
        assert_eq!(execution.stage(), Stage::Prepare);
        assert_eq!(execution.reason().map(Reason::kind), Some("preparation"));
        assert!(matches!(
            Verdict::from_precheck_error(bomb),
            Verdict::Invalid(_)
        ));
        for error in [
            PrepareError::TimedOut { cpu_ms: 1 },
            PrepareError::HostLimit("x".into()),
            PrepareError::RuntimeConstruction("x".into()),
        ] {
            assert!(matches!(
                Verdict::from_precheck_error(error),
                Verdict::Internal(_)
            ));
        }
    }

    #[test]
    fn kinds_are_distinct_per_reason() {
        let reasons = [
            Reason::Trap(String::new()),
            Reason::Panic(String::new()),
            Reason::BadResult(String::new()),
            Reason::BadParams(String::new()),
            Reason::BadInterface(String::new()),
            Reason::Timeout { cpu_ms: 0 },
            Reason::Instantiation(String::new()),
            Reason::WallClock(String::new()),
            Reason::JobDied(JobDeath::Signal(9)),
            Reason::WorkerDied(String::new()),
            Reason::UnsupportedHostFunction(String::new()),
            Reason::HostLimit(String::new()),
            Reason::Local(String::new()),
            Reason::BadArtifact(String::new()),
            Reason::Preparation(PrepareError::OutOfMemory),
        ];
        let kinds: std::collections::HashSet<_> = reasons.iter().map(Reason::kind).collect();
        assert_eq!(kinds.len(), reasons.len());
    }
}
