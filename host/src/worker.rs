//! Spawning a worker process and talking to it: private socket, cleared environment, spawn
//! timeout, version handshake, and frames with deadlines.

use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parity_scale_codec::{Decode, Encode};
use pvf_common::ipc::frame::{self, FrameError, HEADER_LEN};
use pvf_common::message::{Envelope, Handshake, Nonce};
use pvf_common::sandbox::{Layer, LayerStatus, Layers, SandboxMode, SecurityStatus, namespaces};
use pvf_common::worker::VERSION;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};

use crate::cgroup::{self, CgroupLimits, WorkerCgroup};
use crate::metrics::{Flavor, Metrics, SecurityEvent};
use crate::{spawn_thread, worker_output};

/// Why a worker could not be spawned or stopped answering.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Setting up or starting the process failed.
    #[error("spawning {program}: {source}")]
    Spawn {
        /// The worker binary.
        program: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The worker did not connect and hand shake in time.
    #[error("worker did not connect within {0:?}")]
    SpawnTimeout(Duration),
    /// The worker could not apply a sandbox layer the host requires.
    #[error("worker sandbox incomplete: {}", describe_failures(.0))]
    Sandbox(SecurityStatus),
    /// The worker runs another version than the host.
    #[error("worker version {worker} differs from host version {VERSION}")]
    VersionMismatch {
        /// The worker's version.
        worker: String,
    },
    /// The worker did not answer in time.
    #[error("worker did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke (the worker probably died).
    #[error("worker connection: {0}")]
    Frame(#[from] FrameError),
    /// The worker broke the protocol: only a compromised or broken worker does. It is
    /// killed, and the event is logged and counted as a security event.
    #[error("worker broke the protocol: {0}")]
    Protocol(#[from] ProtocolViolation),
}

/// How a worker broke the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolViolation {
    /// Bytes arrived while no request was outstanding: before a request was sent, or
    /// after its answer.
    #[error("unsolicited bytes {0}")]
    Unsolicited(&'static str),
    /// The answer carries another nonce than the request.
    #[error("the answer carries nonce {got:#x}, the request {sent:#x}")]
    WrongNonce {
        /// The request's nonce.
        sent: Nonce,
        /// The answer's.
        got: Nonce,
    },
    /// The frame is oversized or does not decode as the expected answer.
    #[error("bad frame: {0}")]
    BadFrame(FrameError),
}

/// The layers that failed, with their reasons.
fn describe_failures(status: &SecurityStatus) -> String {
    let failures: Vec<String> = status
        .failures()
        .map(|l| format!("{}: {}", l.layer.name(), l.detail))
        .collect();
    failures.join("; ")
}

/// The layers a sandbox mode asks for.
pub fn layers_for(mode: SandboxMode) -> Layers {
    match mode {
        SandboxMode::Enforce => Layers::ALL,
        SandboxMode::Disabled => Layers::NONE,
    }
}

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    /// The worker binary.
    pub program: PathBuf,
    /// The directory the worker gets; created by [`WorkerProcess::spawn`], removed on drop.
    pub dir: PathBuf,
    /// How long the worker has to connect and hand shake.
    pub timeout: Duration,
    /// The sandbox layers the worker must apply.
    pub layers: Layers,
    /// The bounds of its cgroup (when the layers include [`Layer::Cgroups`]).
    pub cgroup: CgroupLimits,
}

/// Spawns workers of one flavor, each in a fresh dir under the cache's `workers/` dir, and
/// counts them in the metrics.
#[derive(Clone)]
pub struct Spawner {
    /// The worker binary.
    pub program: PathBuf,
    /// `<cache>/workers`: on the cache's filesystem, so moving an artifact in is a rename.
    pub workers_dir: PathBuf,
    /// How long a worker has to connect and hand shake.
    pub timeout: Duration,
    /// Whether workers sandbox themselves.
    pub sandbox: SandboxMode,
    /// Which workers these are.
    pub flavor: Flavor,
    /// The bounds of each worker's cgroup.
    pub cgroup: CgroupLimits,
    /// Where spawns and retirements are counted.
    pub metrics: Metrics,
    /// Waits between failed spawns.
    pub backoff: Backoff,
}

/// Waits between retries: `first`, doubling after each failure in a row up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Spawner {
    /// Spawns one worker.
    pub async fn spawn(&self) -> Result<WorkerProcess, WorkerError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = match self.flavor {
            Flavor::Prepare => "prepare",
            Flavor::Execute => "execute",
        };
        let dir = self.workers_dir.join(format!(
            "{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let spec = SpawnSpec {
            program: self.program.clone(),
            dir,
            timeout: self.timeout,
            layers: layers_for(self.sandbox),
            cgroup: self.cgroup,
        };
        self.metrics.worker_spawning(self.flavor);
        let mut worker = WorkerProcess::spawn(&spec).await?;
        self.metrics.worker_spawned(self.flavor);
        worker.metrics = Some((self.metrics.clone(), self.flavor));
        tracing::debug!(flavor = name, pid = worker.pid(), "worker spawned");
        Ok(worker)
    }
}

impl Spawner {
    /// Spawns one worker, retrying after a backoff until one starts. A failed spawn
    /// (`EAGAIN`, a worker that dies at start, a loaded machine past the spawn timeout) is
    /// this machine's trouble: failing the jobs that wait for the worker would turn it into
    /// verdicts and spend their preparation attempts.
    pub async fn spawn_retrying(&self) -> WorkerProcess {
        let mut delay = self.backoff.first;
        loop {
            match self.spawn().await {
                Ok(worker) => return worker,
                Err(e) => {
                    self.metrics.worker_spawn_failed(self.flavor);
                    tracing::warn!(flavor = ?self.flavor, "spawning a worker failed, retrying in {delay:?}: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.backoff.max);
                }
            }
        }
    }
}

/// A running worker and its connection. Dropping it kills the worker and removes its dir.
pub struct WorkerProcess {
    child: Child,
    stream: UnixStream,
    dir: PathBuf,
    program: PathBuf,
    /// Where security events are counted, and where it is counted as retired when dropped.
    metrics: Option<(Metrics, Flavor)>,
    /// Its cgroup, removed after it when dropped.
    _cgroup: Option<WorkerCgroup>,
    /// The sandbox layers the worker reported.
    pub security: SecurityStatus,
}

impl WorkerProcess {
    /// Starts a worker and waits for its handshake. On failure its dir is removed again.
    pub async fn spawn(spec: &SpawnSpec) -> Result<Self, WorkerError> {
        let result = Self::start(spec).await;
        if result.is_err() {
            remove_dir(&spec.dir);
        }
        result
    }

    async fn start(spec: &SpawnSpec) -> Result<Self, WorkerError> {
        let spawn_err = |source| WorkerError::Spawn {
            program: spec.program.clone(),
            source,
        };
        let socket_dir = PrivateDir::create().map_err(spawn_err)?;
        let socket_path = socket_dir.0.join("socket");
        let listener = UnixListener::bind(&socket_path).map_err(spawn_err)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&spec.dir)
            .map_err(spawn_err)?;
        if spec.layers.has(Layer::Namespaces) && nix::unistd::geteuid().is_root() {
            // A root-started worker becomes `nobody` outside its namespace; its dir must be
            // its own.
            let nobody = Some(namespaces::ROOT_DROP_ID);
            std::os::unix::fs::chown(&spec.dir, nobody, nobody).map_err(spawn_err)?;
        }
        let mut command = Command::new(&spec.program);
        command
            .arg("--socket-path")
            .arg(&socket_path)
            .arg("--worker-dir")
            .arg(&spec.dir)
            .arg("--node-version")
            .arg(VERSION)
            .env_clear()
            .stdin(Stdio::null())
            // The worker's output is not trusted with the host's own stdout and stderr.
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a signal to the host's group never reaches it, and
            // one sent to its group never reaches the host.
            .process_group(0)
            .kill_on_drop(true);
        if let Ok(filter) = std::env::var("RUST_LOG") {
            command.env("RUST_LOG", filter);
        }
        if spec.layers == Layers::NONE {
            command.arg("--insecure");
        } else {
            for layer in Layer::WORKER.into_iter().filter(|l| !spec.layers.has(*l)) {
                command.arg("--disable-layer").arg(layer.name());
            }
        }
        let cgroup = spec
            .layers
            .has(Layer::Cgroups)
            .then(|| cgroup::create(&spec.cgroup));
        let mut child = spawn_thread::spawn(command).await.map_err(spawn_err)?;
        // Before its handshake is read, so before any request, so before any job exists.
        let (cgroup, cgroup_status) = enter_cgroup(cgroup, child.id());
        let name = spec.dir.file_name().unwrap_or_default().to_string_lossy();
        worker_output::forward(child.stdout.take(), &name, "stdout");
        worker_output::forward(child.stderr.take(), &name, "stderr");
        let connect = async {
            let (mut stream, _) = listener.accept().await.map_err(FrameError::Io)?;
            let handshake: Handshake = read(&mut stream).await?;
            Ok::<_, WorkerError>((stream, handshake))
        };
        let (stream, handshake) = tokio::time::timeout(spec.timeout, connect)
            .await
            .map_err(|_| WorkerError::SpawnTimeout(spec.timeout))??;
        drop(socket_dir);
        if handshake.version != VERSION {
            return Err(WorkerError::VersionMismatch {
                worker: handshake.version,
            });
        }
        let mut security = handshake.security;
        security.layers.push(cgroup_status);
        if security.failures().next().is_some() {
            return Err(WorkerError::Sandbox(security));
        }
        Ok(Self {
            child,
            stream,
            dir: spec.dir.clone(),
            program: spec.program.clone(),
            metrics: None,
            _cgroup: cgroup,
            security,
        })
    }

    /// The worker's directory as the host sees it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The worker's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the worker to end (it hung up, or was killed) and returns how it ended.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    /// Sends one request under a fresh nonce and waits up to `timeout` for the answer with
    /// that nonce. Bytes waiting on the connection before the request or after the answer,
    /// and an answer with another nonce, are protocol violations: logged and counted as a
    /// security event; the caller must drop the worker.
    pub async fn call<Req: Encode, Resp: Decode>(
        &mut self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, WorkerError> {
        let result = self.exchange(request, timeout).await;
        if let Err(WorkerError::Protocol(violation)) = &result {
            self.security_event(SecurityEvent::Protocol, violation);
        }
        result
    }

    async fn exchange<Req: Encode, Resp: Decode>(
        &mut self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, WorkerError> {
        self.expect_nothing_unread("before a request")?;
        let nonce = fresh_nonce();
        let bytes = frame::encode(&Envelope {
            nonce,
            body: request,
        })?;
        let exchange = async {
            self.stream
                .write_all(&bytes)
                .await
                .map_err(FrameError::Io)?;
            read(&mut self.stream).await
        };
        let answer: Envelope<Resp> = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| WorkerError::Timeout(timeout))??;
        if answer.nonce != nonce {
            return Err(ProtocolViolation::WrongNonce {
                sent: nonce,
                got: answer.nonce,
            }
            .into());
        }
        self.expect_nothing_unread("after the answer")?;
        Ok(answer.body)
    }

    /// Fails if the worker sent bytes nobody asked for. Asks the socket itself (not tokio's
    /// cached readiness), without waiting. End-of-file is the worker's death, not a
    /// violation: it is reported as a closed connection.
    fn expect_nothing_unread(&self, when: &'static str) -> Result<(), WorkerError> {
        use nix::sys::socket::{MsgFlags, recv};
        let mut byte = [0u8; 1];
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        match recv(self.stream.as_raw_fd(), &mut byte, flags) {
            Ok(0) => Err(FrameError::Closed.into()),
            Ok(_) => Err(ProtocolViolation::Unsolicited(when).into()),
            Err(nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => Err(FrameError::Io(e.into()).into()),
        }
    }

    /// Logs and counts a security event about this worker.
    pub fn security_event(&self, kind: SecurityEvent, detail: &dyn std::fmt::Display) {
        let detail = format!("worker {}: {detail}", self.program.display());
        match &self.metrics {
            Some((metrics, _)) => metrics.security_event(kind, &detail),
            None => tracing::error!(target: "pvf::security", "{detail}"),
        }
    }
}

impl WorkerProcess {
    /// Kills the worker and waits for it to exit before its dir is removed, so that nothing
    /// it was still writing can keep the dir alive.
    pub async fn shutdown(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some((metrics, flavor)) = &self.metrics {
            metrics.worker_retired(*flavor);
        }
        remove_dir(&self.dir);
    }
}

/// Worker dirs that could not be removed (a read-only or failing disk), to try again.
static LEFTOVER_DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes a worker's dir, or remembers it for [`remove_leftover_dirs`].
fn remove_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "removing worker dir, will try again: {e}");
            if let Ok(mut leftovers) = LEFTOVER_DIRS.lock() {
                leftovers.push(dir.to_path_buf());
            }
        }
    }
}

/// Tries again to remove the worker dirs that could not be removed (blocking I/O: call it
/// off the async threads).
pub fn remove_leftover_dirs() {
    let dirs = match LEFTOVER_DIRS.lock() {
        Ok(mut leftovers) => std::mem::take(&mut *leftovers),
        Err(_) => return,
    };
    for dir in dirs {
        remove_dir(&dir);
    }
}

/// Moves the worker `pid` into its cgroup (if one was asked for); returns the cgroup and the
/// layer's status.
fn enter_cgroup(
    cgroup: Option<Result<(WorkerCgroup, String), String>>,
    pid: Option<u32>,
) -> (Option<WorkerCgroup>, LayerStatus) {
    let requested = cgroup.is_some();
    let status = |active, detail| LayerStatus {
        layer: Layer::Cgroups,
        requested,
        active,
        detail,
    };
    let entered = match &cgroup {
        None => Err("disabled (--insecure)".to_string()),
        Some(Err(why)) => Err(why.clone()),
        Some(Ok((made, detail))) => pid
            .ok_or_else(|| "the worker exited at once".to_string())
            .and_then(|pid| {
                made.add(pid)
                    .map_err(|e| format!("moving the worker in: {e}"))
            })
            .map(|()| detail.clone()),
    };
    let made = cgroup.and_then(Result::ok).map(|(made, _)| made);
    match entered {
        Ok(detail) => (made, status(true, detail)),
        Err(why) => (made, status(false, why)),
    }
}

/// Reads one frame, checking its length before allocating. A frame over the limit or one
/// that does not decode is a protocol violation; a connection that ends is not.
async fn read<T: Decode>(stream: &mut UnixStream) -> Result<T, WorkerError> {
    let mut header = [0u8; HEADER_LEN];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed.into());
        }
        Err(e) => return Err(FrameError::Io(e).into()),
    }
    let len = frame::payload_len(header).map_err(ProtocolViolation::BadFrame)?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated {
                expected: len,
                got: 0,
            }
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(frame::decode(&payload).map_err(ProtocolViolation::BadFrame)?)
}

/// A nonce no worker can predict and no other request shares: a counter (unique) beside
/// 64 random bits (unpredictable), so a worker cannot queue an answer for a request it has
/// not seen yet.
fn fresh_nonce() -> Nonce {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 8];
    // SAFETY: getrandom writes at most `random.len()` bytes into the buffer.
    let filled = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    if filled != random.len() as isize {
        // Unpredictability is lost, uniqueness is not: say so and carry on.
        tracing::warn!(
            "getrandom for a request nonce: {}",
            std::io::Error::last_os_error()
        );
    }
    (u128::from(count) << 64) | u128::from(u64::from_le_bytes(random))
}

/// A fresh mode-0700 directory in the system temp dir for a socket: Unix socket paths are
/// limited to 108 bytes, so sockets cannot live under a long cache path.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "pvf-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
