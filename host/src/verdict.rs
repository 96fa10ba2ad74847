//! Verdicts, and the one table that maps every failure to a verdict and an exit code.
//!
//! | failure | verdict | `pvf` exit |
//! |---|---|---|
//! | `validate_block` returned a decodable result | Valid | 0 |
//! | trap (incl. `unreachable`, out-of-bounds, stack exhaustion), guest panic | Invalid | 1 |
//! | result pointer/length outside memory, or undecodable result | Invalid | 1 |
//! | params cannot be placed or decoded (e.g. a PoV bomb) | Invalid | 1 |
//! | CPU-time limit exceeded | Invalid | 1 |
//! | instantiation fails (start function traps, memory over the bound, missing export) | Invalid | 1 |
//! | prevalidation or compile failure, code bomb, preparation out of memory | Invalid | 1 |
//! | wall-clock backstop hit without the CPU limit (stopped or starved process) | PossiblyInvalid | 3 |
//! | worker or job died of a signal other than SIGSYS (a cgroup's OOM kill included), or stopped answering | PossiblyInvalid | 3 |
//! | the artifact's holder did not answer by the job's backstop plus a margin (killed) | PossiblyInvalid | 3 |
//! | the artifact's holder died while running the job (not of SIGSYS) | PossiblyInvalid | 3 |
//! | job or artifact holder killed by seccomp (SIGSYS) — also logged as a security event | Internal | 3 |
//! | the artifact's holder answered out of turn (another request's answer, a frame too many, a report only the worker may make, garbage) — killed, and logged as a security event | Internal | 3 |
//! | the artifact's holder could not load the artifact in time, could not build its memory image (memfd, memory), or could not confine itself | Internal | 3 |
//! | a stub (unsupported host function) was called | Internal | 3 |
//! | preparation timed out, died, or failed on this machine (non-deterministic) | Internal | 3 |
//! | I/O error, ENOSPC | Internal | 3 |
//! | a worker fails to spawn (`EAGAIN`, dies at start, version mismatch) | none: retried with a backoff until one starts; the job waits | — |
//! | the worker broke the protocol: an answer with another request's nonce, bytes before a request or after its answer, an oversized or undecodable frame — a security event; the worker is killed and replaced | Internal | 3 |
//! | a prepare worker answered Ok but its artifact file is refused (not a regular file, a link, over the size cap, set-id or executable mode, bad header, another code's id, bad checksum) — a security event; the worker is killed, nothing is installed | Internal (a failure of this machine: retried after the cooldown) | 3 |
//! | a bad artifact header or checksum (checked by the execute worker), wasmtime refused the verified bytes, or the holder died deserializing them | none: the file is deleted, the code re-prepared and re-run | — |
//! | the module does not link (a host function's signature) | Invalid | 1 |
//! | the re-prepared artifact is bad again for the same request | Internal | 3 |
//!
//! Not verdicts: a full execute queue, a stopped host, a backing job dropped past its
//! deadline, a time limit too large to enforce and params over the frame cap are errors of
//! the request ([`crate::HostError`]); the caller did not get an answer about the candidate.
//! An approval or dispute whose verdict is PossiblyInvalid or Internal is executed again
//! first (see [`crate::ValidationHost::execute`]); the table gives the verdict of one attempt.

use std::fmt;

use pvf_common::error::{ExecJobError, HolderFault, PrepareError};
use pvf_common::validation::ValidationResult;
use pvf_common::worker::JobDeath;

/// The answer to "is this candidate valid?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The candidate is valid; here is what `validate_block` returned.
    Valid(ValidationResult),
    /// The candidate is invalid; every honest validator reaches the same conclusion.
    Invalid(InvalidReason),
    /// Probably invalid, but a retry might tell otherwise (the process was stopped or died).
    PossiblyInvalid(String),
    /// This machine could not judge (a gap in this host, or a local failure).
    Internal(String),
}

/// Why a candidate is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// The guest trapped.
    Trap(String),
    /// The guest panicked.
    Panic(String),
    /// `validate_block` returned something unusable.
    BadResult(String),
    /// The params could not be given to the guest.
    BadParams(String),
    /// The module could not be instantiated.
    Instantiation(String),
    /// The job used up its CPU time.
    Timeout {
        /// CPU time used, in milliseconds.
        cpu_ms: u64,
    },
    /// The code could not be prepared (deterministically).
    Preparation(PrepareError),
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trap(m) => write!(f, "trap: {m}"),
            Self::Panic(m) => write!(f, "panic: {m}"),
            Self::BadResult(m) => write!(f, "bad result: {m}"),
            Self::BadParams(m) => write!(f, "bad params: {m}"),
            Self::Instantiation(m) => write!(f, "instantiation failed: {m}"),
            Self::Timeout { cpu_ms } => write!(f, "timeout: used {cpu_ms} ms of CPU time"),
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
    /// The verdict for a job that reported an error from inside.
    pub fn from_job_error(error: ExecJobError) -> Self {
        match error {
            ExecJobError::Trap(m) => Self::Invalid(InvalidReason::Trap(m)),
            ExecJobError::Panic(m) => Self::Invalid(InvalidReason::Panic(m)),
            ExecJobError::BadResult(m) => Self::Invalid(InvalidReason::BadResult(m)),
            ExecJobError::BadParams(m) => Self::Invalid(InvalidReason::BadParams(m)),
            ExecJobError::Instantiation(m) => Self::Invalid(InvalidReason::Instantiation(m)),
            e @ ExecJobError::UnsupportedHostFunction(_) => Self::Internal(e.to_string()),
            e @ ExecJobError::Internal(_) => Self::Internal(e.to_string()),
        }
    }

    /// The verdict for a job process that died without a result.
    pub fn from_job_death(death: JobDeath) -> Self {
        match death {
            JobDeath::Seccomp => {
                tracing::error!(target: "pvf::security", "execute job killed by seccomp");
                Self::Internal(format!("job {death}"))
            }
            JobDeath::Signal(_) | JobDeath::Exited(_) | JobDeath::Garbled(_) => {
                Self::PossiblyInvalid(format!("job {death}"))
            }
        }
    }

    /// The verdict when the artifact's holder process failed the execute worker (which
    /// killed it). Only that artifact's requests reach a holder.
    pub fn from_holder_fault(fault: HolderFault) -> Self {
        match fault {
            // The holder's job had to end by this time; like the backstop itself.
            HolderFault::Late { .. } => Self::PossiblyInvalid(fault.to_string()),
            HolderFault::Died(JobDeath::Seccomp) => {
                tracing::error!(target: "pvf::security", "artifact holder killed by seccomp");
                Self::Internal(fault.to_string())
            }
            HolderFault::Died(_) => Self::PossiblyInvalid(fault.to_string()),
            // Honest holders never do this: a bug, or a holder compromised by its artifact.
            HolderFault::Garbled(_) => {
                tracing::error!(target: "pvf::security", "{fault}");
                Self::Internal(fault.to_string())
            }
        }
    }

    /// The verdict when the code could not be prepared.
    pub fn from_prepare_error(error: PrepareError) -> Self {
        if let PrepareError::JobDied(JobDeath::Seccomp) = error {
            tracing::error!(target: "pvf::security", "prepare job killed by seccomp");
        }
        if error.is_deterministic() {
            Self::Invalid(InvalidReason::Preparation(error))
        } else {
            Self::Internal(error.to_string())
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
    use super::*;

    #[test]
    fn seccomp_kills_never_vote_invalid() {
        assert!(matches!(
            Verdict::from_job_death(JobDeath::Seccomp),
            Verdict::Internal(_)
        ));
        assert!(matches!(
            Verdict::from_prepare_error(PrepareError::JobDied(JobDeath::Seccomp)),
            Verdict::Internal(_)
        ));
    }

    #[test]
    fn other_deaths_are_possibly_invalid() {
        for death in [JobDeath::Signal(libc::SIGKILL), JobDeath::Exited(3)] {
            assert!(matches!(
                Verdict::from_job_death(death),
                Verdict::PossiblyInvalid(_)
            ));
        }
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
    fn stubs_are_internal_and_traps_invalid() {
        let stub = ExecJobError::UnsupportedHostFunction("env:x".into());
        assert_eq!(
            Verdict::from_job_error(stub).exit_code(),
            ExitCode::Inconclusive
        );
        let trap = ExecJobError::Trap("unreachable".into());
        assert_eq!(Verdict::from_job_error(trap).exit_code(), ExitCode::Invalid);
    }

    #[test]
    fn only_deterministic_preparation_failures_are_invalid() {
        let bomb = PrepareError::Decompress("bomb".into());
        assert!(matches!(
            Verdict::from_prepare_error(bomb),
            Verdict::Invalid(_)
        ));
        let timeout = PrepareError::TimedOut { cpu_ms: 1 };
        assert!(matches!(
            Verdict::from_prepare_error(timeout),
            Verdict::Internal(_)
        ));
    }
}
