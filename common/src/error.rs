//! Errors that cross the wire. They are facts about a job; the host turns them into verdicts.
//! Each enum pins its SCALE indices so that old and new workers never misread each other.

use parity_scale_codec::{Decode, Encode};

use crate::worker::JobDeath;

/// Why preparation failed.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, thiserror::Error)]
pub enum PrepareError {
    /// The code inflates past the code-bomb limit or is not a valid compressed blob.
    #[codec(index = 0)]
    #[error("code decompression failed: {0}")]
    Decompress(String),
    /// Not valid Wasm, a disallowed feature, or a missing export.
    #[codec(index = 1)]
    #[error("prevalidation failed: {0}")]
    Prevalidation(String),
    /// The rewritten code is invalid (e.g. it exports `memory` twice) or the stack limiter
    /// refused it, as Polkadot's host refuses it.
    #[codec(index = 2)]
    #[error("compilation failed: {0}")]
    Compile(String),
    /// The job needed more memory than the preparation limit. Not deterministic: how much a
    /// compiler needs is its own, and Polkadot's host has no limit by default.
    #[codec(index = 3)]
    #[error("preparation exceeded its memory limit")]
    OutOfMemory,
    /// The job used up its CPU time.
    #[codec(index = 4)]
    #[error("preparation timed out after {cpu_ms} ms of CPU time")]
    TimedOut {
        /// CPU time used.
        cpu_ms: u64,
    },
    /// The job hit the wall-clock backstop.
    #[codec(index = 5)]
    #[error("preparation hit the wall-clock backstop after {wall_ms} ms")]
    WallClockExceeded {
        /// Wall time used.
        wall_ms: u64,
    },
    /// The job process died without a result.
    #[codec(index = 6)]
    #[error("preparation job died: {0}")]
    JobDied(JobDeath),
    /// The worker failed for reasons of this machine (I/O, ENOSPC, fork).
    #[codec(index = 7)]
    #[error("preparation failed on this machine: {0}")]
    Internal(String),
    /// The code is past a limit of this host's compiler that Polkadot's host does not have (a
    /// function body over wasmparser's size limit, or valid code the compiler fails on):
    /// this host cannot judge it.
    #[codec(index = 8)]
    #[error("preparation is past a limit of this host: {0}")]
    HostLimit(String),
    /// A pre-check built the runtime and could not (an import the host does not provide or
    /// with the wrong type). Not deterministic in Polkadot's host either, so a pre-check
    /// neither accepts nor rejects such code; executing it fails at runtime construction.
    #[codec(index = 9)]
    #[error("runtime construction failed: {0}")]
    RuntimeConstruction(String),
}

impl PrepareError {
    /// Whether the same code and parameters always fail this way. Deterministic failures are
    /// remembered for good; the others may be retried.
    pub fn is_deterministic(&self) -> bool {
        match self {
            Self::Decompress(_) | Self::Prevalidation(_) | Self::Compile(_) => true,
            Self::OutOfMemory
            | Self::TimedOut { .. }
            | Self::WallClockExceeded { .. }
            | Self::JobDied(_)
            | Self::Internal(_)
            | Self::HostLimit(_)
            | Self::RuntimeConstruction(_) => false,
        }
    }
}

/// Why an execute job reported failure from inside.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, thiserror::Error)]
pub enum ExecJobError {
    /// The guest trapped (including `unreachable`, out-of-bounds access, stack exhaustion, a
    /// host function refusing its arguments, the allocator failing).
    #[codec(index = 0)]
    #[error("trap: {0}")]
    Trap(String),
    /// The guest panicked and reported it through the panic handler.
    #[codec(index = 1)]
    #[error("panic: {0}")]
    Panic(String),
    /// `validate_block` returned a pointer or length outside memory, or undecodable bytes.
    #[codec(index = 2)]
    #[error("bad result: {0}")]
    BadResult(String),
    /// The runtime could not be constructed or instantiated: an import the host does not
    /// provide or with the wrong type, a start function that traps, initial memory over the
    /// bound. Polkadot's host calls this a runtime construction error and treats it as
    /// possibly transient.
    #[codec(index = 3)]
    #[error("instantiation failed: {0}")]
    Instantiation(String),
    /// The params could not be decoded or decompressed (e.g. a PoV bomb).
    #[codec(index = 4)]
    #[error("bad params: {0}")]
    BadParams(String),
    /// The guest called a host function this host does not implement.
    #[codec(index = 5)]
    #[error("call to unsupported host function `{0}`")]
    UnsupportedHostFunction(String),
    /// The job failed for reasons of this machine, not the guest.
    #[codec(index = 6)]
    #[error("internal error: {0}")]
    Internal(String),
    /// The instance lacks what the call needs: a `memory` export, an `i32` global
    /// `__heap_base`, or `validate_block` with the signature `(i32, i32) -> i64`.
    #[codec(index = 7)]
    #[error("bad interface: {0}")]
    BadInterface(String),
    /// The guest's answer is past a limit of this host that Polkadot's host does not have
    /// (a result larger than this host carries): this host cannot judge it.
    #[codec(index = 8)]
    #[error("past a limit of this host: {0}")]
    HostLimit(String),
}

/// How an execute worker's artifact holder (the process that loaded one artifact and forks
/// its jobs) failed the worker. The worker kills the holder and loads the artifact afresh
/// for the next request. Only that artifact's requests ever reach a holder, so whatever it
/// does decides at most its own code's verdicts.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, thiserror::Error)]
pub enum HolderFault {
    /// No answer by the job's wall-clock backstop plus a margin (a stopped, starved or
    /// compromised holder).
    #[codec(index = 0)]
    #[error("the artifact holder did not answer within {waited_ms} ms")]
    Late {
        /// How long the worker waited, in milliseconds.
        waited_ms: u64,
    },
    /// The holder process died.
    #[codec(index = 1)]
    #[error("the artifact holder died: {0}")]
    Died(JobDeath),
    /// The holder answered something other than one well-formed answer to this request (a
    /// bug, or a holder compromised through its artifact).
    #[codec(index = 2)]
    #[error("the artifact holder answered out of turn: {0}")]
    Garbled(String),
}
