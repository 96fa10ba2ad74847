//! Shared pieces of the pvf host and its workers.
//!
//! ```text
//! validator node ──links──▶ host ──spawns──▶ prepare-worker / execute-worker ──fork──▶ job
//! ```
//!
//! This crate is what both sides of every arrow agree on: the frames and messages of the
//! IPC ([`ipc`], [`message`]), the wire errors ([`error`]), the executor parameters
//! ([`params`]), the one wasmtime configuration ([`engine`]), the artifact file format
//! ([`artifact`]), compressed blobs ([`compress`]), the `validate_block` data types
//! ([`validation`]), the worker loop and job runner ([`worker`]), and the sandbox
//! ([`sandbox`]).

#![warn(missing_docs)]

pub mod artifact;
pub mod compress;
pub mod engine;
pub mod error;
pub mod host_api;
pub mod ipc;
pub mod message;
pub mod params;
pub mod sandbox;
pub mod validation;
pub mod worker;

/// Logs to stderr, filtered by `RUST_LOG` (default: `info`).
///
/// A failed write is dropped silently: a job has no stderr (it holds only its two pipes),
/// and tracing's default, reporting the failure with `eprintln!`, would panic there.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}
