//! The execute side: a bounded priority queue of executions ([`queue`], the actor that owns
//! the workers, keyed by executor parameters) and the worker-side steps of one execution
//! ([`pool`]).

pub mod pool;
pub mod queue;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvf_common::params::{ArtifactId, ExecKind, ExecutorParams};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::host::{Execution, HostError};

/// One execution, from the caller's request until its answer.
#[derive(Debug)]
pub struct ExecuteJob {
    /// The artifact to run.
    pub id: ArtifactId,
    /// The code, kept to prepare it again if its artifact turns out bad.
    pub code: Arc<Vec<u8>>,
    /// The artifact's file in the cache, once prepared.
    pub path: PathBuf,
    /// The executor parameters.
    pub params: ExecutorParams,
    /// SCALE-encoded `ValidationParams`.
    pub validation_params: Arc<Vec<u8>>,
    /// The kind of validation: the queue's priority.
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
    /// The request's place in the bounded queue, given back when the job is dropped.
    pub permit: OwnedSemaphorePermit,
}
