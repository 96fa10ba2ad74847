//! The execute side: a queue of executions shared fairly between the kinds of validation
//! ([`queue`], the actor that owns the workers, keyed by executor parameters; [`share`], the
//! fair share) and the worker-side steps of one execution ([`pool`]).

pub mod pool;
pub mod queue;
pub mod share;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvf_common::params::{ArtifactId, ExecKind, ExecutorParams};
use tokio::sync::oneshot;

use crate::host::{Execution, HostError};

/// One execution, from the caller's request until its answer.
#[derive(Debug)]
pub struct ExecuteJob {
    /// The request it serves, unique in this process: a caller that goes away cancels it
    /// by this number.
    pub request: u64,
    /// The artifact to run.
    pub id: ArtifactId,
    /// The code, kept to prepare it again if its artifact turns out bad.
    pub code: Arc<Vec<u8>>,
    /// The artifact's file in the cache, once prepared.
    pub path: PathBuf,
    /// Which install of the artifact `path` is ([`crate::artifacts::Entry::install`]), so
    /// that a report about this file never deletes a newer one.
    pub install: u64,
    /// The executor parameters.
    pub params: ExecutorParams,
    /// SCALE-encoded `ValidationParams`.
    pub validation_params: Arc<Vec<u8>>,
    /// The kind of validation: its share of the queue, and whether it has a deadline.
    pub kind: ExecKind,
    /// CPU-time limit of the job.
    pub timeout: Duration,
    /// When it entered the execute queue (the queued-time metric starts here, as
    /// Polkadot's does).
    pub enqueued: Instant,
    /// Time spent waiting for the artifact to be prepared.
    pub prepare_time: Duration,
    /// Whether the artifact was already found bad once for this request.
    pub artifact_replaced: bool,
    /// The caller.
    pub reply: oneshot::Sender<Result<Execution, HostError>>,
}
