//! The prepare side: a priority queue of preparations ([`queue`], the actor that owns the
//! workers), the worker-side steps of one preparation ([`pool`]), taking its artifact file
//! into the cache ([`intake`]), and the memory of failed preparations ([`failures`]).

pub mod failures;
pub mod intake;
pub mod pool;
pub mod queue;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pvf_common::params::{ArtifactId, ExecutorParams, PrepKind};

use crate::priority::Priority;

/// One preparation to do.
#[derive(Clone, Debug)]
pub struct PrepareJob {
    /// The artifact it produces.
    pub id: ArtifactId,
    /// The code, possibly compressed.
    pub code: Arc<Vec<u8>>,
    /// The executor parameters to prepare under.
    pub params: ExecutorParams,
    /// How urgent it is; a joining request may raise it.
    pub priority: Priority,
    /// CPU-time limit of the job.
    pub timeout: Duration,
    /// Why it is prepared (a pre-check also checks that the runtime links).
    pub kind: PrepKind,
}

/// A preparation's product, already moved into the cache.
#[derive(Clone, Debug)]
pub struct PreparedArtifact {
    /// Its file in the cache.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub size: u64,
    /// Wall time from handing the job to a worker to its answer.
    pub duration: Duration,
    /// The preparation job's peak resident memory in KiB.
    pub max_rss_kib: u64,
}
