//! Sandbox layers for the workers and their job processes.
//!
//! Two entry points: [`harden_worker`] runs once while the worker is single-threaded, and
//! [`confine_job`] runs in each job child before it touches untrusted bytes.

use std::path::PathBuf;

use parity_scale_codec::{Decode, Encode};

use crate::worker::{WorkerArgs, WorkerContext};

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

/// Whether the sandbox is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum SandboxMode {
    /// Apply every layer; fail if one cannot be applied.
    #[codec(index = 0)]
    Enforce,
    /// Apply nothing (`--insecure`).
    #[codec(index = 1)]
    Disabled,
}

/// One sandbox layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Layer {
    /// User, mount, network, IPC, UTS and cgroup namespaces.
    #[codec(index = 0)]
    Namespaces,
    /// The worker dir becomes the root; the old root is detached.
    #[codec(index = 1)]
    PivotRoot,
    /// Landlock filesystem, network and signal rules.
    #[codec(index = 2)]
    Landlock,
    /// The seccomp allowlist.
    #[codec(index = 3)]
    Seccomp,
    /// `no_new_privs` and rlimits.
    #[codec(index = 4)]
    Limits,
}

/// Whether one layer is in force, and why or why not.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct LayerStatus {
    /// The layer.
    pub layer: Layer,
    /// Whether it is in force.
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
}

/// Why a sandbox step failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A layer is required but this build cannot apply it yet.
    #[error("the {0:?} layer is not available in this build")]
    Unavailable(Layer),
}

/// Hardens the worker process once, before its first job.
pub fn harden_worker(
    kind: WorkerKind,
    args: &WorkerArgs,
) -> Result<(SecurityStatus, WorkerContext), SandboxError> {
    let layers = [
        Layer::Namespaces,
        Layer::PivotRoot,
        Layer::Landlock,
        Layer::Seccomp,
        Layer::Limits,
    ];
    let status = SecurityStatus {
        layers: layers
            .into_iter()
            .map(|layer| LayerStatus {
                layer,
                active: false,
                detail: "not implemented yet".into(),
            })
            .collect(),
    };
    let ctx = WorkerContext {
        dir: PathBuf::from(&args.worker_dir),
        sandbox: args.sandbox,
        kind,
    };
    Ok((status, ctx))
}

/// Confines a job process before it touches untrusted bytes.
pub fn confine_job(_ctx: &WorkerContext) -> Result<(), SandboxError> {
    Ok(())
}
