//! The prepare queue: an actor that orders preparations by priority, joins requests for the
//! same artifact, and owns the prepare workers within a soft and a hard limit.
//!
//! Normal and background work runs on at most `soft_max` workers; critical work may spawn
//! workers up to `hard_max`. Workers above the soft limit are retired once idle. A worker
//! that fails to spawn is retried after a backoff until one starts: the jobs wait, they
//! never fail on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use pvf_common::error::PrepareError;
use pvf_common::params::ArtifactId;
use tokio::sync::mpsc;
use tokio::task::{self, JoinError, JoinSet};

use super::{PrepareJob, PreparedArtifact, pool};
use crate::metrics::Metrics;
use crate::priority::Priority;
use crate::worker::{Spawner, WorkerProcess};

/// Messages to the queue.
#[derive(Debug)]
pub enum ToQueue {
    /// Prepare this (a new request: nothing for its artifact is queued or running).
    Enqueue(PrepareJob),
    /// Raise the priority of the artifact's waiting job. Does nothing when the job already
    /// started or concluded: a raise can cross the conclusion on its way here, and must not
    /// start a preparation nobody waits for.
    Raise {
        /// The artifact.
        id: ArtifactId,
        /// The new priority.
        priority: Priority,
    },
}

/// The queue's answer: one per artifact prepared (or failed).
#[derive(Debug)]
pub struct Concluded {
    /// The artifact.
    pub id: ArtifactId,
    /// The product, or why there is none.
    pub result: Result<PreparedArtifact, PrepareError>,
}

/// What the queue needs to run.
pub struct QueueConfig {
    /// Spawns prepare workers.
    pub spawner: Spawner,
    /// Where finished artifacts go.
    pub cache_dir: PathBuf,
    /// Workers for normal and background work.
    pub soft_max: usize,
    /// Workers at most, critical work included.
    pub hard_max: usize,
    /// Extra wait beyond a job's backstop before a silent worker is killed.
    pub grace: Duration,
}

enum PoolEvent {
    Spawned(WorkerProcess),
    Done {
        worker: Option<WorkerProcess>,
        id: ArtifactId,
        result: Result<PreparedArtifact, PrepareError>,
    },
}

struct Waiting {
    job: PrepareJob,
    seq: u64,
}

struct State {
    config: QueueConfig,
    metrics: Metrics,
    out: mpsc::UnboundedSender<Concluded>,
    waiting: HashMap<ArtifactId, Waiting>,
    running: HashMap<task::Id, ArtifactId>,
    idle: Vec<WorkerProcess>,
    spawning: usize,
    tasks: JoinSet<PoolEvent>,
    next_seq: u64,
}

/// Runs the queue until its input closes.
pub async fn run(
    config: QueueConfig,
    metrics: Metrics,
    mut input: mpsc::UnboundedReceiver<ToQueue>,
    out: mpsc::UnboundedSender<Concluded>,
) {
    let mut state = State::new(config, metrics, out);
    loop {
        tokio::select! {
            message = input.recv() => match message {
                Some(ToQueue::Enqueue(job)) => state.handle_enqueue(job),
                Some(ToQueue::Raise { id, priority }) => state.handle_raise(&id, priority),
                None => break,
            },
            Some(event) = state.tasks.join_next_with_id() => state.handle_pool_event(event),
        }
    }
}

impl State {
    fn new(config: QueueConfig, metrics: Metrics, out: mpsc::UnboundedSender<Concluded>) -> Self {
        Self {
            config,
            metrics,
            out,
            waiting: HashMap::new(),
            running: HashMap::new(),
            idle: Vec::new(),
            spawning: 0,
            tasks: JoinSet::new(),
            next_seq: 0,
        }
    }

    fn handle_enqueue(&mut self, job: PrepareJob) {
        if self.running.values().any(|id| *id == job.id) {
            return;
        }
        if let Some(waiting) = self.waiting.get_mut(&job.id) {
            waiting.job.priority = waiting.job.priority.max(job.priority);
        } else {
            self.metrics.prepare_enqueued();
            let seq = self.next_seq;
            self.next_seq += 1;
            self.waiting.insert(job.id, Waiting { job, seq });
        }
        self.schedule();
    }

    fn handle_raise(&mut self, id: &ArtifactId, priority: Priority) {
        let Some(waiting) = self.waiting.get_mut(id) else {
            return;
        };
        waiting.job.priority = waiting.job.priority.max(priority);
        self.schedule();
    }

    fn handle_pool_event(&mut self, event: Result<(task::Id, PoolEvent), JoinError>) {
        match event {
            Ok((_, PoolEvent::Spawned(worker))) => {
                self.spawning -= 1;
                self.idle.push(worker);
            }
            Ok((task, PoolEvent::Done { worker, id, result })) => {
                self.running.remove(&task);
                self.idle.extend(worker);
                self.conclude(id, result);
            }
            Err(e) => {
                // A task panicked: a bug, but its job must still get an answer.
                tracing::error!("prepare task failed: {e}");
                if let Some(id) = self.running.remove(&e.id()) {
                    let error = PrepareError::Internal(format!("prepare task failed: {e}"));
                    self.conclude(id, Err(error));
                } else {
                    self.spawning = self.spawning.saturating_sub(1);
                }
            }
        }
        self.retire_extra_workers();
        self.schedule();
    }

    fn conclude(&mut self, id: ArtifactId, result: Result<PreparedArtifact, PrepareError>) {
        self.metrics.prepare_concluded(result.as_ref().ok());
        let _ = self.out.send(Concluded { id, result });
    }

    fn total_workers(&self) -> usize {
        self.idle.len() + self.running.len() + self.spawning
    }

    fn retire_extra_workers(&mut self) {
        while self.waiting.is_empty()
            && !self.idle.is_empty()
            && self.total_workers() > self.config.soft_max
        {
            self.idle.pop();
        }
    }

    /// Starts the most urgent jobs on idle workers, and spawns workers for the rest within
    /// the limits.
    fn schedule(&mut self) {
        let mut order: Vec<(Priority, u64, ArtifactId)> = self
            .waiting
            .values()
            .map(|w| (w.job.priority, w.seq, w.job.id))
            .collect();
        // Highest priority first, then first come first served.
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut unserved = 0;
        for (priority, _, id) in order {
            if let Some(worker) = self.idle.pop() {
                self.start(worker, id);
                continue;
            }
            unserved += 1;
            let limit = match priority {
                Priority::Critical => self.config.hard_max,
                Priority::Normal | Priority::Background => self.config.soft_max,
            };
            if unserved > self.spawning && self.total_workers() < limit {
                self.spawn();
            }
        }
        self.update_depth();
    }

    fn start(&mut self, worker: WorkerProcess, id: ArtifactId) {
        let Some(Waiting { job, .. }) = self.waiting.remove(&id) else {
            self.idle.push(worker);
            return;
        };
        tracing::debug!(artifact = %id, priority = ?job.priority, "preparation started");
        let cache_dir = self.config.cache_dir.clone();
        let grace = self.config.grace;
        let handle = self.tasks.spawn(async move {
            let (worker, result) = pool::run(worker, &job, &cache_dir, grace).await;
            PoolEvent::Done {
                worker,
                id: job.id,
                result,
            }
        });
        self.running.insert(handle.id(), id);
    }

    fn spawn(&mut self) {
        self.spawning += 1;
        let spawner = self.config.spawner.clone();
        self.tasks
            .spawn(async move { PoolEvent::Spawned(spawner.spawn_retrying().await) });
    }

    fn update_depth(&self) {
        self.metrics
            .prepare_queue_depth
            .set(self.waiting.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Flavor;
    use crate::worker::Backoff;
    use pvf_common::params::ExecutorParams;
    use pvf_common::sandbox::SandboxMode;
    use std::sync::Arc;

    fn state() -> State {
        let metrics = Metrics::new().unwrap();
        let spawner = Spawner {
            program: PathBuf::from("/nonexistent/pvf-prepare-worker"),
            workers_dir: std::env::temp_dir(),
            timeout: Duration::from_secs(1),
            sandbox: SandboxMode::Disabled,
            flavor: Flavor::Prepare,
            cgroup: crate::cgroup::CgroupLimits::default(),
            metrics: metrics.clone(),
            backoff: Backoff {
                first: Duration::from_secs(60),
                max: Duration::from_secs(60),
            },
        };
        let config = QueueConfig {
            spawner,
            cache_dir: std::env::temp_dir(),
            soft_max: 1,
            hard_max: 2,
            grace: Duration::ZERO,
        };
        State::new(config, metrics, mpsc::unbounded_channel().0)
    }

    fn job(priority: Priority) -> PrepareJob {
        let code = Arc::new(b"code".to_vec());
        let params = ExecutorParams::default();
        PrepareJob {
            id: ArtifactId::new(&code, &params),
            code,
            params,
            priority,
            timeout: Duration::from_secs(1),
            kind: pvf_common::params::PrepKind::Lenient,
        }
    }

    #[tokio::test]
    async fn a_raise_after_the_preparation_concluded_starts_nothing() {
        let mut state = state();
        let id = job(Priority::Normal).id;
        // The preparation concluded and left the queue; the raise crossed the conclusion.
        state.handle_raise(&id, Priority::Critical);
        assert!(state.waiting.is_empty());
        assert_eq!(
            state.spawning, 0,
            "no worker for a preparation nobody waits for"
        );
    }

    #[tokio::test]
    async fn a_raise_lifts_a_waiting_preparation() {
        let mut state = state();
        let normal = job(Priority::Normal);
        let id = normal.id;
        state.handle_enqueue(normal);
        state.handle_raise(&id, Priority::Critical);
        assert_eq!(state.waiting[&id].job.priority, Priority::Critical);
        assert_eq!(state.metrics.prepare_queue_depth.get(), 1);
    }
}
