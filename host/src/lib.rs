//! The pvf validation host: the library a validator node links, and the `pvf` CLI.
//!
//! ```text
//! validator node ──links──▶ host ──spawns──▶ prepare-worker ──fork──▶ prepare job
//!                                 └─spawns──▶ execute-worker ──fork──▶ execute job
//! ```
//!
//! The host prepares each validation function once in a prepare worker, keeps the
//! artifact in its cache directory, and runs it on candidates in an execute worker. The
//! answer is a [`Verdict`]; [`verdict`] holds the table that maps every failure to one.

#![warn(missing_docs)]

pub mod config;
pub mod host;
pub mod security;
pub mod verdict;
pub mod worker;

pub use config::Config;
pub use host::{Execution, Host, Prepared};
pub use verdict::{ExitCode, InvalidReason, Verdict};
