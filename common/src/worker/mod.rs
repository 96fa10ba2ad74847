//! The worker side of the IPC: parse the command line the host gives, connect, harden, hand
//! shake, then answer one request at a time. Both worker binaries are this loop plus a job
//! body.

pub mod child;
pub mod job_process;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use parity_scale_codec::{Decode, Encode};

use crate::ipc::frame::{self, FrameError};
use crate::message::{Envelope, Handshake, Nonce};
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

/// How often a worker with nothing to do runs [`Handler::idle`].
pub const IDLE_TICK: Duration = Duration::from_secs(1);

/// Runs a worker: connect, harden, handshake, then answer requests until the host hangs up.
pub fn serve<H: Handler>(kind: WorkerKind, mut handler: H) -> ExitCode {
    let mut session = match Session::open(kind) {
        Ok(session) => session,
        Err(code) => return code,
    };
    loop {
        while !session.request_waiting(IDLE_TICK) {
            handler.idle(&session.ctx);
        }
        let Envelope { nonce, body } = match session.next_request::<H::Request>() {
            Ok(Some(request)) => request,
            Ok(None) => return ExitCode::SUCCESS,
            Err(code) => return code,
        };
        let response = handler.handle(&session.ctx, body);
        if let Err(e) = session.answer(nonce, &response) {
            tracing::error!("cannot answer the host, exiting: {e}");
            return ExitCode::from(1);
        }
        handler.idle(&session.ctx);
    }
}

/// A worker connected to its host, sandboxed and past the handshake.
pub struct Session {
    stream: UnixStream,
    /// What the worker's jobs may know about it.
    pub ctx: WorkerContext,
}

impl Session {
    /// Parses the command line, connects to the host, hardens this process and hands
    /// shake. Fails with the exit code the worker should end with.
    pub fn open(kind: WorkerKind) -> Result<Self, ExitCode> {
        crate::init_worker_logging();
        let args = match WorkerArgs::parse(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(e) => {
                eprintln!("{e}");
                return Err(ExitCode::from(2));
            }
        };
        if args.node_version != VERSION {
            tracing::error!(host = %args.node_version, worker = VERSION, "version mismatch");
            return Err(ExitCode::from(3));
        }
        let host = nix::unistd::getppid();
        die_with(host);
        let mut stream = match UnixStream::connect(&args.socket_path) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::error!(path = %args.socket_path.display(), "cannot connect to host: {e}");
                return Err(ExitCode::from(1));
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
            return Err(ExitCode::from(1));
        }
        if !failures.is_empty() {
            // The host reads the reasons from the handshake; a half-sandboxed worker never
            // serves.
            tracing::error!(
                "sandbox incomplete, refusing to serve: {}",
                failures.join("; ")
            );
            return Err(ExitCode::from(1));
        }
        Ok(Self { stream, ctx })
    }

    /// Waits up to `timeout` for the host to send something (or hang up).
    pub fn request_waiting(&self, timeout: Duration) -> bool {
        let mut fd = libc::pollfd {
            fd: self.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut fd, 1, millis) };
        // An error (EINTR) reads as nothing yet; a hang-up or error on the socket as ready,
        // for the read that follows to report it.
        ready > 0
    }

    /// Waits for the next request; `None` when the host hung up.
    pub fn next_request<R: Decode>(&mut self) -> Result<Option<Envelope<R>>, ExitCode> {
        match frame::read::<Envelope<R>>(&mut self.stream) {
            Ok(request) => Ok(Some(request)),
            Err(FrameError::Closed) => Ok(None),
            Err(e) => {
                tracing::error!("protocol error, exiting: {e}");
                Err(ExitCode::from(1))
            }
        }
    }

    /// Answers the request that carried `nonce`.
    pub fn answer<T: Encode>(&mut self, nonce: Nonce, body: &T) -> Result<(), FrameError> {
        frame::write(&mut self.stream, &Envelope { nonce, body })
    }

    /// The connection to the host, for test-only workers that misbehave on purpose.
    pub fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
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

    /// Runs after each answer has been sent and then every [`IDLE_TICK`] while the host has
    /// nothing for the worker: housekeeping off the requests' path.
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
