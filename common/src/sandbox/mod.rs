//! Sandbox layers for the workers and their job processes.
//!
//! Two entry points, each a flat ordered list of steps:
//! - [`harden_worker`] runs once, right after the worker connects, while it is still
//!   single-threaded: clear the environment, close stray fds, enter namespaces and pivot
//!   into the worker dir, apply Landlock, set `no_new_privs`, install the worker's seccomp
//!   filter.
//! - [`confine_job`] runs in each job process before it touches untrusted bytes: give up
//!   the capabilities of the job's own user namespace, rlimits, then the job's seccomp
//!   filters, last. (A prepare job was forked into its own user and PID namespaces
//!   ([`WorkerContext::job_isolation`]), an execute job into its artifact holder's; either
//!   holds only its two pipes: [`crate::worker::child`].)
//! - [`confine_holder`] does the same for an execute worker's artifact holder, the process
//!   that deserializes one artifact and forks that artifact's jobs, with its own filter.
//!
//! Threat model (DESIGN.md): a compiler or runtime bug gives the guest arbitrary code
//! execution in the job process. It must not read or write outside the worker dir, reach the
//! network, signal or trace other processes, spawn programs, or exhaust the machine.

pub mod landlock;
pub mod namespaces;
pub mod rlimits;
pub mod seccomp;

use std::os::fd::RawFd;
use std::path::PathBuf;

use parity_scale_codec::{Decode, Encode};
use seccompiler::BpfProgram;

use crate::worker::WorkerArgs;
use crate::worker::job_process::JobIsolation;
use rlimits::JobRlimits;

/// Which worker is being sandboxed; the layers differ (prepare writes, execute only reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum WorkerKind {
    /// Compiles code into artifacts.
    #[codec(index = 0)]
    Prepare,
    /// Runs artifacts.
    #[codec(index = 1)]
    Execute,
}

/// Whether the host asks its workers for the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum SandboxMode {
    /// Apply every layer; a worker that cannot refuses to serve.
    #[codec(index = 0)]
    Enforce,
    /// Apply nothing (`--insecure`).
    #[codec(index = 1)]
    Disabled,
}

/// One sandbox layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Layer {
    /// User, mount, network, IPC, UTS and cgroup namespaces, and `pivot_root` into the
    /// worker dir; each job in its own user and PID namespace.
    #[codec(index = 0)]
    Namespaces,
    /// Landlock filesystem, network and signal rules.
    #[codec(index = 1)]
    Landlock,
    /// The seccomp allowlists.
    #[codec(index = 2)]
    Seccomp,
    /// `no_new_privs` and the job rlimits.
    #[codec(index = 3)]
    Limits,
}

impl Layer {
    /// Every layer, in the order they are applied.
    pub const ALL: [Layer; 4] = [
        Layer::Namespaces,
        Layer::Landlock,
        Layer::Limits,
        Layer::Seccomp,
    ];

    /// The name used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Namespaces => "namespaces",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
            Layer::Limits => "limits",
        }
    }

    /// Parses [`Layer::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// Which layers a worker is asked to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layers([bool; 4]);

impl Layers {
    /// Every layer.
    pub const ALL: Layers = Layers([true; 4]);
    /// No layer (`--insecure`).
    pub const NONE: Layers = Layers([false; 4]);

    /// Whether `layer` is asked for.
    pub fn has(self, layer: Layer) -> bool {
        self.0[layer as usize]
    }

    /// These layers without `layer`.
    pub fn without(mut self, layer: Layer) -> Self {
        self.0[layer as usize] = false;
        self
    }

    /// These layers and `layer`.
    pub fn with(mut self, layer: Layer) -> Self {
        self.0[layer as usize] = true;
        self
    }
}

/// Whether one layer is in force, and why or why not.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct LayerStatus {
    /// The layer.
    pub layer: Layer,
    /// The worker was asked to apply it.
    pub requested: bool,
    /// It is in force.
    pub active: bool,
    /// What was applied, or why it was not.
    pub detail: String,
}

/// Which layers a worker has in force, reported in its handshake.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SecurityStatus {
    /// One entry per layer.
    pub layers: Vec<LayerStatus>,
}

impl SecurityStatus {
    /// Whether every layer is in force.
    pub fn fully_sandboxed(&self) -> bool {
        self.layers.iter().all(|l| l.active)
    }

    /// Layers that were asked for but could not be applied.
    pub fn failures(&self) -> impl Iterator<Item = &LayerStatus> {
        self.layers.iter().filter(|l| l.requested && !l.active)
    }
}

/// What a job body may know about its worker.
#[derive(Clone)]
pub struct WorkerContext {
    /// The worker's directory as the worker sees it (`/` after `pivot_root`).
    pub dir: PathBuf,
    /// Which worker this is.
    pub kind: WorkerKind,
    /// The layers in force.
    pub layers: Layers,
    /// The rlimits each job gets (when the limits layer is on).
    pub rlimits: JobRlimits,
    /// The job's seccomp filters, compiled once per worker (when the seccomp layer is on).
    pub job_filters: Option<Vec<BpfProgram>>,
    /// An execute worker's artifact holders' seccomp filters, compiled once per worker (when
    /// the seccomp layer is on).
    pub holder_filters: Option<Vec<BpfProgram>>,
}

impl WorkerContext {
    /// How this worker's jobs are created: in their own PID namespace when the namespaces
    /// layer is on.
    pub fn job_isolation(&self) -> JobIsolation {
        if self.layers.has(Layer::Namespaces) {
            JobIsolation::OwnPidNamespace
        } else {
            JobIsolation::Fork
        }
    }
}

/// Hardens the worker process once, before its first job. Every requested layer is
/// attempted and reported; the caller refuses to serve if one failed.
pub fn harden_worker(
    kind: WorkerKind,
    args: &WorkerArgs,
    socket: RawFd,
) -> (SecurityStatus, WorkerContext) {
    let requested = args.layers;
    // Nothing from the host's environment or stray fds reaches the jobs.
    clear_environment();
    close_fds_except(socket);
    let mut ctx = WorkerContext {
        dir: args.worker_dir.clone(),
        kind,
        layers: Layers::NONE,
        rlimits: JobRlimits::default(),
        job_filters: None,
        holder_filters: None,
    };
    let mut report = Vec::new();
    for layer in Layer::ALL {
        let outcome = if requested.has(layer) {
            apply_worker_layer(layer, &mut ctx)
        } else {
            Err("disabled (--insecure)".to_string())
        };
        if outcome.is_ok() {
            ctx.layers.0[layer as usize] = true;
        }
        let (active, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(reason) => (false, reason),
        };
        report.push(LayerStatus {
            layer,
            requested: requested.has(layer),
            active,
            detail,
        });
    }
    (SecurityStatus { layers: report }, ctx)
}

/// Applies one layer to the worker; returns what is in force.
fn apply_worker_layer(layer: Layer, ctx: &mut WorkerContext) -> Result<String, String> {
    match layer {
        Layer::Namespaces => {
            namespaces::apply(&ctx.dir, ctx.kind == WorkerKind::Execute)
                .map_err(|e| e.to_string())?;
            ctx.dir = PathBuf::from("/");
            Ok(format!(
                "user, mount, net, ipc, uts, cgroup; root = worker dir (nodev, nosuid, noexec{}); uid {} without capabilities; each job in its own user and PID namespace",
                if ctx.kind == WorkerKind::Execute {
                    ", read-only"
                } else {
                    ""
                },
                namespaces::INSIDE_ID
            ))
        }
        Layer::Landlock => {
            landlock::apply(&ctx.dir, ctx.kind == WorkerKind::Prepare).map_err(|e| e.to_string())
        }
        Layer::Limits => {
            set_no_new_privs().map_err(|e| format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"))?;
            let r = ctx.rlimits;
            Ok(format!(
                "no_new_privs; jobs: no core dumps, {} open files, {} MiB files, {} processes, {} GiB data",
                r.open_files,
                r.file_size >> 20,
                r.processes,
                r.data >> 30
            ))
        }
        Layer::Seccomp => {
            // seccomp without CAP_SYS_ADMIN requires no_new_privs.
            set_no_new_privs().map_err(|e| format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"))?;
            let worker =
                seccomp::compile(ctx.kind, seccomp::Stage::Worker).map_err(|e| e.to_string())?;
            let job = seccomp::compile(ctx.kind, seccomp::Stage::Job).map_err(|e| e.to_string())?;
            let holder = (ctx.kind == WorkerKind::Execute)
                .then(|| seccomp::compile(ctx.kind, seccomp::Stage::Holder))
                .transpose()
                .map_err(|e| e.to_string())?;
            seccomp::install(&worker).map_err(|e| e.to_string())?;
            ctx.job_filters = Some(job);
            ctx.holder_filters = holder;
            Ok("worker allowlist installed; jobs add a stricter one (default: kill)".into())
        }
    }
}

/// Why a job could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// An rlimit could not be set.
    #[error(transparent)]
    Rlimit(#[from] rlimits::RlimitError),
    /// The job's seccomp filter could not be installed.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// The job could not give up the capabilities of its own user namespace.
    #[error("capset(none) in the job: {0}")]
    DropCaps(std::io::Error),
}

/// Confines a job process before it touches untrusted bytes. (The job runner already left it
/// nothing of its parent but its two pipes and any sealed memory images it maps.)
pub fn confine_job(ctx: &WorkerContext) -> Result<(), ConfineError> {
    confine(ctx, ctx.job_filters.as_deref())
}

/// Confines an execute worker's artifact holder before it deserializes its artifact: like a
/// job, but under the holder's seccomp filter, which lets it load code and fork its jobs
/// while it still cannot open a file or a socket.
pub fn confine_holder(ctx: &WorkerContext) -> Result<(), ConfineError> {
    confine(ctx, ctx.holder_filters.as_deref())
}

/// Gives up the capabilities of the process's own user namespace, sets the rlimits, and
/// installs `filters` last: after them, even setting limits may be forbidden.
fn confine(ctx: &WorkerContext, filters: Option<&[BpfProgram]>) -> Result<(), ConfineError> {
    if ctx.job_isolation() == JobIsolation::OwnPidNamespace {
        namespaces::clear_capability_sets().map_err(ConfineError::DropCaps)?;
    }
    if ctx.layers.has(Layer::Limits) {
        rlimits::apply(&ctx.rlimits)?;
    }
    if let Some(filters) = filters {
        seccomp::install(filters)?;
    }
    Ok(())
}

fn set_no_new_privs() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn clear_environment() {
    for (key, _) in std::env::vars_os() {
        // SAFETY: the worker is single-threaded here, so nothing reads the environment
        // concurrently.
        unsafe { std::env::remove_var(key) };
    }
}

/// Closes every fd but stdin/stdout/stderr and the host socket.
fn close_fds_except(socket: RawFd) {
    let socket = socket as u32;
    // SAFETY: close_range only closes descriptors; the ranges exclude 0-2 and the socket.
    unsafe {
        if socket > 3 {
            libc::close_range(3, socket - 1, 0);
        }
        libc::close_range(socket + 1, u32::MAX, 0);
    }
}
