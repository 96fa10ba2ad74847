//! Messages between the host and its workers. Each is one frame ([`crate::ipc::frame`]).
//!
//! Workers report facts (what the job did, how it ended); the host maps facts to verdicts,
//! in one table (`pvf_host::verdict`).

use parity_scale_codec::{Decode, Encode};

use crate::error::{ExecJobError, HolderFault, PrepareError};
use crate::params::{ArtifactId, ExecutorParams, PrepKind};
use crate::sandbox::SecurityStatus;
use crate::validation::ValidationResult;
use crate::worker::JobDeath;

/// The number the host puts on a request and the worker's answer must carry back. The host
/// chooses a fresh one per request: a frame that carries another number answers no request
/// the host made, so it is a protocol violation, never an answer.
pub type Nonce = u128;

/// Every frame after the handshake: a request from the host, or the worker's answer to it,
/// with the request's [`Nonce`].
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Envelope<T> {
    /// The request's nonce.
    pub nonce: Nonce,
    /// The request or answer.
    pub body: T,
}

/// The first frame a worker sends after connecting.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Handshake {
    /// The worker's version; the host refuses a worker that differs from itself.
    pub version: String,
    /// Which sandbox layers the worker has in force.
    pub security: SecurityStatus,
}

/// Asks a prepare worker to compile code into an artifact.
#[derive(Clone, Debug, Encode, Decode)]
pub struct PrepareRequest {
    /// The code, possibly compressed.
    pub code: Vec<u8>,
    /// The executor parameters to prepare under.
    pub params: ExecutorParams,
    /// The artifact's id, written into its header.
    pub id: ArtifactId,
    /// CPU-time limit in milliseconds.
    pub timeout_ms: u64,
    /// The name the host chose for the artifact file in the worker dir: a plain file name,
    /// fresh for each request. The worker creates it (never replaces it); the host opens it
    /// there itself, checks it and copies it into the cache.
    pub artifact_file: String,
    /// Why it is prepared: a pre-check also checks that the runtime links.
    pub kind: PrepKind,
}

/// A prepared artifact, waiting in the worker dir under the name the host chose. Its size
/// and contents are not part of the answer: the host reads them from the file.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Prepared {
    /// Size of the Wasm code after decompression.
    pub code_len: u64,
    /// CPU time the job used, in milliseconds.
    pub cpu_ms: u64,
    /// The job's peak resident memory in KiB.
    pub max_rss_kib: u64,
}

/// A prepare worker's answer.
pub type PrepareResponse = Result<Prepared, PrepareError>;

/// Asks an execute worker to run `validate_block`.
#[derive(Clone, Debug, Encode, Decode)]
pub struct ExecuteRequest {
    /// The artifact to run; its file is `id.file_name()` in the worker dir.
    pub id: ArtifactId,
    /// The parameters it was prepared under.
    pub params: ExecutorParams,
    /// SCALE-encoded `ValidationParams`.
    pub validation_params: Vec<u8>,
    /// CPU-time limit in milliseconds.
    pub timeout_ms: u64,
    /// Bytes of artifacts the worker may keep loaded (each in its own holder process); past
    /// it, the least recently used are unloaded first.
    pub module_cache_bytes: u64,
    /// CPU time, in milliseconds, an artifact holder may use itself (its jobs' time is theirs)
    /// before the worker retires it.
    pub holder_cpu_budget_ms: u64,
}

/// An execute worker's answer: how the job ended, and the artifacts it keeps loaded after
/// it (so the host can export them without another message).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ExecuteAnswer {
    /// How the job ended.
    pub outcome: ExecuteResponse,
    /// The worker's loaded artifacts.
    pub modules: LoadedModules,
}

/// What an execute worker keeps loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct LoadedModules {
    /// Artifacts loaded, each in its own holder process.
    pub count: u32,
    /// Their artifact files' sizes, summed: the bound [`ExecuteRequest::module_cache_bytes`]
    /// applies to.
    pub bytes: u64,
    /// Artifacts unloaded to make room while serving this request.
    pub evicted: u32,
}

/// How an execute job ended, as observed by the worker.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum ExecuteResponse {
    /// `validate_block` returned a decodable result.
    #[codec(index = 0)]
    Ok {
        /// The decoded result.
        result: ValidationResult,
        /// CPU time the job used, in milliseconds.
        cpu_ms: u64,
    },
    /// The job ran and reported why the candidate failed.
    #[codec(index = 1)]
    JobError(ExecJobError),
    /// The job used up its CPU time.
    #[codec(index = 2)]
    TimedOut {
        /// CPU time used when it was stopped, in milliseconds.
        cpu_ms: u64,
    },
    /// The job hit the wall-clock backstop without using its CPU time.
    #[codec(index = 3)]
    WallClockExceeded {
        /// Wall time when it was stopped, in milliseconds.
        wall_ms: u64,
    },
    /// The job process died without a result.
    #[codec(index = 4)]
    JobDied(JobDeath),
    /// The artifact file failed verification: never a verdict on the candidate.
    #[codec(index = 5)]
    BadArtifact(String),
    /// The worker could not run the job (I/O, fork, pipe).
    #[codec(index = 6)]
    WorkerError(String),
    /// The artifact's holder process failed the worker and was killed.
    #[codec(index = 7)]
    HolderFault(HolderFault),
}
