//! The prepare worker: a process the host spawns to turn validation code into artifacts.
//!
//! ```text
//! host ──socket──▶ prepare-worker ──fork──▶ prepare job (decompress, prevalidate,
//!                                                      instrument the stack, compile)
//! ```
//!
//! Each request runs in a fresh job process inside a fresh job directory; the artifact is
//! written there, moved into the worker dir, and the job directory is removed, whatever the
//! outcome. The host then moves the artifact into its cache.

mod alloc;
mod job;

use std::process::ExitCode;

use pvf_common::sandbox::WorkerKind;

#[global_allocator]
static ALLOCATOR: alloc::LimitedAllocator = alloc::LimitedAllocator::new();

fn main() -> ExitCode {
    pvf_common::worker::serve(WorkerKind::Prepare, job::Preparer)
}
