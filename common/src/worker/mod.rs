//! The worker side of the IPC: parse the command line the host gives, connect, harden, hand
//! shake, then answer one request at a time. Both worker binaries are this loop plus a job
//! body.

pub mod child;
pub mod job_process;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use parity_scale_codec::{Decode, Encode};

use crate::ipc::frame::{self, FrameError};
use crate::message::Handshake;
use crate::sandbox::{self, Layer, Layers, WorkerKind};

pub use crate::sandbox::WorkerContext;

/// This build's version; host and workers must agree on it exactly.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How a job process ended without a result.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, thiserror::Error)]
pub enum JobDeath {
    /// Killed by a signal other than SIGSYS.
    #[codec(index = 0)]
    #[error("killed by signal {0}")]
    Signal(i32),
    /// Killed by seccomp (SIGSYS): a gap in the allowlist or an attack, never the guest's
    /// verdict.
    #[codec(index = 1)]
    #[error("killed by seccomp (SIGSYS)")]
    Seccomp,
    /// Exited with a non-zero code.
    #[codec(index = 2)]
    #[error("exited with code {0}")]
    Exited(i32),
    /// Exited cleanly but its result could not be read.
    #[codec(index = 3)]
    #[error("{0}")]
    Garbled(String),
}

/// What the host tells a worker on its command line.
#[derive(Clone, Debug)]
pub struct WorkerArgs {
    /// The host's listening socket.
    pub socket_path: PathBuf,
    /// The only directory the worker may use.
    pub worker_dir: PathBuf,
    /// The host's version.
    pub node_version: String,
    /// Which sandbox layers to apply.
    pub layers: Layers,
}

/// Why the worker's command line was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}\nusage: --socket-path PATH --worker-dir DIR --node-version V [--insecure] [--disable-layer namespaces|landlock|limits|seccomp]..."
)]
pub struct UsageError(String);

impl WorkerArgs {
    /// Parses `--socket-path`, `--worker-dir`, `--node-version`, `--insecure` (no layers)
    /// and `--disable-layer NAME` (every layer but those named).
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, UsageError> {
        let (mut socket_path, mut worker_dir, mut node_version) = (None, None, None);
        let mut layers = Layers::ALL;
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| UsageError(format!("{arg} needs a value")))
            };
            match arg.as_str() {
                "--socket-path" => socket_path = Some(PathBuf::from(value()?)),
                "--worker-dir" => worker_dir = Some(PathBuf::from(value()?)),
                "--node-version" => node_version = Some(value()?),
                "--insecure" => layers = Layers::NONE,
                "--disable-layer" => {
                    let name = value()?;
                    let layer = Layer::from_name(&name)
                        .ok_or_else(|| UsageError(format!("unknown layer {name}")))?;
                    layers = layers.without(layer);
                }
                other => return Err(UsageError(format!("unknown argument {other}"))),
            }
        }
        Ok(Self {
            socket_path: socket_path.ok_or_else(|| UsageError("missing --socket-path".into()))?,
            worker_dir: worker_dir.ok_or_else(|| UsageError("missing --worker-dir".into()))?,
            node_version: node_version
                .ok_or_else(|| UsageError("missing --node-version".into()))?,
            layers,
        })
    }
}

/// Runs a worker: connect, harden, handshake, then answer requests until the host hangs up.
pub fn serve<H: Handler>(kind: WorkerKind, mut handler: H) -> ExitCode {
    crate::init_logging();
    let args = match WorkerArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.node_version != VERSION {
        tracing::error!(host = %args.node_version, worker = VERSION, "version mismatch");
        return ExitCode::from(3);
    }
    let host = nix::unistd::getppid();
    die_with(host);
    let mut stream = match UnixStream::connect(&args.socket_path) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::error!(path = %args.socket_path.display(), "cannot connect to host: {e}");
            return ExitCode::from(1);
        }
    };
    let (security, ctx) = sandbox::harden_worker(kind, &args, stream.as_raw_fd());
    // Changing credentials (the namespace setup does) clears the parent-death signal.
    die_with(host);
    let failures: Vec<String> = security
        .failures()
        .map(|l| format!("{}: {}", l.layer.name(), l.detail))
        .collect();
    let handshake = Handshake {
        version: VERSION.to_string(),
        security,
    };
    if let Err(e) = frame::write(&mut stream, &handshake) {
        tracing::error!("handshake failed: {e}");
        return ExitCode::from(1);
    }
    if !failures.is_empty() {
        // The host reads the reasons from the handshake; a half-sandboxed worker never
        // serves.
        tracing::error!(
            "sandbox incomplete, refusing to serve: {}",
            failures.join("; ")
        );
        return ExitCode::from(1);
    }
    loop {
        let request = match frame::read::<H::Request>(&mut stream) {
            Ok(request) => request,
            Err(FrameError::Closed) => return ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("protocol error, exiting: {e}");
                return ExitCode::from(1);
            }
        };
        let response = handler.handle(&ctx, request);
        if let Err(e) = frame::write(&mut stream, &response) {
            tracing::error!("cannot answer the host, exiting: {e}");
            return ExitCode::from(1);
        }
        handler.idle(&ctx);
    }
}

/// A worker's job side: what it does with each request.
pub trait Handler {
    /// The request frame.
    type Request: Decode;
    /// The answer frame.
    type Response: Encode;

    /// Answers one request.
    fn handle(&mut self, ctx: &WorkerContext, request: Self::Request) -> Self::Response;

    /// Runs after each answer has been sent, while the host has nothing for the worker:
    /// the place to get ready for the next request off the request's path.
    fn idle(&mut self, _ctx: &WorkerContext) {}
}

/// Asks the kernel to kill this process when `host` dies, and exits now if it already has.
fn die_with(host: nix::unistd::Pid) {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if nix::unistd::getppid() != host {
        std::process::exit(1);
    }
}
