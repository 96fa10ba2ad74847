//! The prepare worker: a process the host spawns to turn validation code into artifacts.
//!
//! ```text
//! host ──socket──▶ prepare-worker ──fork──▶ prepare job (decompress, prevalidate,
//!                                                      instrument the stack, compile)
//! ```
//!
//! Each request runs in a fresh job process that can write nowhere and returns the compiled
//! module through its result pipe; the worker writes the artifact file under the name the
//! host chose, and the host checks it and copies it into its cache.

mod alloc;
mod job;

use std::process::ExitCode;

use pvf_common::sandbox::WorkerKind;

#[global_allocator]
static ALLOCATOR: alloc::LimitedAllocator = alloc::LimitedAllocator::new();

fn main() -> ExitCode {
    pvf_common::worker::serve(WorkerKind::Prepare, job::Preparer)
}
