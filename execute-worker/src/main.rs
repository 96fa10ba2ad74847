//! The execute worker: a process the host spawns to run prepared artifacts.
//!
//! ```text
//! host ──socket──▶ execute-worker ──fork──▶ artifact holder ──fork──▶ execute job
//!                  (reads, verifies)        (one per artifact:        (instantiate,
//!                                            deserializes it once)     validate_block)
//! ```
//!
//! The worker reads each artifact file and checks its header and checksum, work that never
//! deserializes an untrusted byte. It then forks a holder for that artifact, which
//! deserializes it once, in a sandbox of its own, and forks that artifact's jobs (ahead of
//! time, while it is idle), so each job starts with the module in memory. Only one
//! artifact's requests reach a holder, and it holds neither the host socket nor any other
//! artifact: native code that runs in it (through a crafted artifact) or in its jobs (through
//! a guest that escapes the runtime) can decide no verdict but its own code's
//! ([`holder`]). Holders are kept within a byte budget, least recently used first out
//! ([`modules`]).

mod holder;
mod modules;
mod worker;

use std::process::ExitCode;

use pvf_common::sandbox::WorkerKind;

fn main() -> ExitCode {
    pvf_common::worker::serve(WorkerKind::Execute, worker::Worker::default())
}
