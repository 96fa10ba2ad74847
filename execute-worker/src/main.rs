//! The execute worker: a process the host spawns to run prepared artifacts.
//!
//! ```text
//! host ──socket──▶ execute-worker ──fork──▶ execute job (instantiate, validate_block)
//! ```
//!
//! The worker loads each artifact once into memory it owns, verifies its checksum, and
//! keeps the deserialized module for its lifetime; each job is a child forked from the
//! worker (ahead of time, while the worker is idle), so it starts with the module already
//! in memory.

mod job;

use std::process::ExitCode;

use pvf_common::sandbox::WorkerKind;

fn main() -> ExitCode {
    pvf_common::worker::serve(WorkerKind::Execute, job::Worker::default())
}
