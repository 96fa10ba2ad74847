//! Resource limits for a job process: no core dumps, few open files, a file-size cap, few
//! processes, and bounded writable memory. Set with `setrlimit` in the job child, before it
//! touches untrusted bytes.
//!
//! Memory is not an rlimit here: `RLIMIT_AS` breaks wasmtime's virtual reservations, so
//! memory is bounded by the executor parameters (execute) and the job's allocator (prepare).
//! Consensus safety: a limit that a valid guest could hit would change verdicts; these are
//! far above what preparing or running any valid code needs.

use nix::sys::resource::{Resource, setrlimit};
use parity_scale_codec::{Decode, Encode};

/// The limits a job runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct JobRlimits {
    /// Open file descriptors.
    pub open_files: u64,
    /// Largest file the job may write, in bytes.
    pub file_size: u64,
    /// Processes and threads of the job's user (inside the worker's user namespace).
    pub processes: u64,
    /// Writable private memory (heap, stacks, touched Wasm memory), in bytes. Unlike
    /// `RLIMIT_AS` it ignores wasmtime's inaccessible reservations, so it bounds what a
    /// compromised job can really take.
    pub data: u64,
}

impl Default for JobRlimits {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        Self {
            open_files: 64,
            // Artifacts of the largest real runtimes are ~20 MB.
            file_size: 1 << 30,
            // The worker, the job, and compilation threads (one per core).
            processes: 16 + 2 * cpus,
            // Far above any valid job: 4 GiB of Wasm memory (the most a 32-bit guest can
            // address), its 256 MiB stack, and the compiler's 2 GiB preparation limit.
            data: 8 << 30,
        }
    }
}

/// Why a limit could not be set.
#[derive(Debug, thiserror::Error)]
#[error("setrlimit({resource:?}): {source}")]
pub struct RlimitError {
    resource: Resource,
    source: nix::Error,
}

/// Applies `limits` to the calling process.
pub fn apply(limits: &JobRlimits) -> Result<(), RlimitError> {
    let set = |resource, value| {
        setrlimit(resource, value, value).map_err(|source| RlimitError { resource, source })
    };
    set(Resource::RLIMIT_CORE, 0)?;
    set(Resource::RLIMIT_NOFILE, limits.open_files)?;
    set(Resource::RLIMIT_FSIZE, limits.file_size)?;
    set(Resource::RLIMIT_NPROC, limits.processes)?;
    set(Resource::RLIMIT_DATA, limits.data)
}
