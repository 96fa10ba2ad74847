//! The pvf validation host: the library a validator node links, and the `pvf` CLI.
//!
//! ```text
//! validator node ──links──▶ host ──spawns──▶ prepare-worker ──fork──▶ prepare job
//!                                 └─spawns──▶ execute-worker ──fork──▶ execute job
//! ```
//!
//! [`start`] opens the artifact cache and returns a [`ValidationHost`] handle and the future
//! that runs the host. Inside, three actors of the same shape (a module with its message
//! enums, a private state, a `run()` loop that only dispatches to `handle_*` functions):
//! the [`coordinator`] knows every artifact's state, the [`prepare::queue`] and the
//! [`execute::queue`] order work by [`Priority`] and own their workers. The answer to an
//! execution is a [`Verdict`]; [`verdict`] holds the table that maps every failure to one.

#![warn(missing_docs)]

pub mod artifacts;
pub mod bench;
pub mod cgroup;
pub mod config;
pub mod coordinator;
pub mod execute;
pub mod host;
pub mod metrics;
pub mod metrics_server;
pub mod prepare;
pub mod priority;
pub mod security;
mod spawn_thread;
pub mod verdict;
pub mod worker;
mod worker_output;

pub use config::Config;
pub use host::{
    ArtifactInfo, ArtifactStatus, ExecuteArgs, Execution, HostError, PrecheckError, StartError,
    ValidationHost, start,
};
pub use priority::Priority;
pub use verdict::{ExitCode, Reason, Stage, Verdict};
