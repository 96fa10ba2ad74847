//! The execute queue: an actor that shares the workers fairly between the kinds of validation
//! ([`super::share`]; first come first served within a kind) and owns the execute workers,
//! keyed by the preparation-relevant executor parameters.
//!
//! A job goes to an idle worker of its key, preferably one that already has its artifact.
//! Without one, a worker is spawned within `max_workers` (retried until it starts); at the
//! limit, an idle worker of another key is retired to make room. A worker that dies or stops
//! answering is dropped (killed) and replaced by the next spawn. A job whose caller went away
//! is dropped before it starts, and a backing job that waited past its deadline is dropped
//! with [`HostError::DeadlineExceeded`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use pvf_common::params::{ArtifactId, ExecKind};
use tokio::sync::mpsc;
use tokio::task::{self, JoinError, JoinSet};

use super::ExecuteJob;
use super::pool::{self, ExecWorker, Outcome};
use super::share::FairShare;
use crate::host::{Execution, HostError};
use crate::metrics::Metrics;
use crate::worker::{Spawner, WorkerProcess};

/// Messages to the queue.
#[derive(Debug)]
pub enum ToQueue {
    /// Run this job once a worker is free; its artifact is prepared.
    Enqueue(Box<ExecuteJob>),
    /// These artifacts left the cache (pruned): drop the workers' links to them, so their
    /// disk space is freed (a busy worker's, when its job ends).
    Forget(Vec<ArtifactId>),
    /// The caller of this request went away: drop its job if it has not started.
    Cancel(u64),
}

/// What the queue hands back to the host instead of answering the caller.
#[derive(Debug)]
pub enum FromQueue {
    /// The worker refused the artifact file: delete it, prepare again, re-run.
    BadArtifact {
        /// The job, still unanswered.
        job: Box<ExecuteJob>,
        /// What the worker found.
        reason: String,
    },
}

/// What the queue needs to run.
pub struct QueueConfig {
    /// Spawns execute workers.
    pub spawner: Spawner,
    /// Workers at most.
    pub max_workers: usize,
    /// Extra wait beyond a job's backstop before a silent worker is killed.
    pub grace: Duration,
    /// How long a backing job may wait for a worker; `None` for ever.
    pub backing_deadline: Option<Duration>,
    /// Bytes of artifacts each worker keeps loaded.
    pub module_cache_bytes: u64,
    /// CPU time an artifact holder may use itself before its worker retires it.
    pub holder_cpu_budget: Duration,
}

#[expect(
    clippy::large_enum_variant,
    reason = "one event per job or spawn: moving a few hundred bytes costs nothing next to either"
)]
enum PoolEvent {
    Spawned {
        key: [u8; 32],
        process: WorkerProcess,
    },
    Done {
        worker: Option<ExecWorker>,
        job: Box<ExecuteJob>,
        outcome: Outcome,
        elapsed: Duration,
    },
}

/// Jobs waiting for a worker, one line per kind, oldest first.
#[derive(Default)]
struct Waiting {
    lines: [VecDeque<ExecuteJob>; 3],
}

impl Waiting {
    fn line(&self, kind: ExecKind) -> &VecDeque<ExecuteJob> {
        &self.lines[kind as usize]
    }

    fn line_mut(&mut self, kind: ExecKind) -> &mut VecDeque<ExecuteJob> {
        &mut self.lines[kind as usize]
    }

    fn len(&self) -> usize {
        self.lines.iter().map(VecDeque::len).sum()
    }

    /// Removes and returns the jobs `drop` selects.
    fn extract(&mut self, mut drop: impl FnMut(&ExecuteJob) -> bool) -> Vec<ExecuteJob> {
        let mut dropped = Vec::new();
        for line in &mut self.lines {
            let (out, kept): (VecDeque<_>, VecDeque<_>) =
                std::mem::take(line).into_iter().partition(&mut drop);
            *line = kept;
            dropped.extend(out);
        }
        dropped
    }
}

struct State {
    config: QueueConfig,
    metrics: Metrics,
    out: mpsc::UnboundedSender<FromQueue>,
    waiting: Waiting,
    share: FairShare,
    idle: Vec<ExecWorker>,
    spawning: HashMap<task::Id, [u8; 32]>,
    running: HashSet<task::Id>,
    tasks: JoinSet<PoolEvent>,
    /// Pruned artifacts whose links busy workers may still hold.
    forgotten: HashSet<ArtifactId>,
}

/// Runs the queue until its input closes.
pub async fn run(
    config: QueueConfig,
    metrics: Metrics,
    mut input: mpsc::UnboundedReceiver<ToQueue>,
    out: mpsc::UnboundedSender<FromQueue>,
) {
    let mut state = State {
        config,
        metrics,
        out,
        waiting: Waiting::default(),
        share: FairShare::default(),
        idle: Vec::new(),
        spawning: HashMap::new(),
        running: HashSet::new(),
        tasks: JoinSet::new(),
        forgotten: HashSet::new(),
    };
    loop {
        tokio::select! {
            message = input.recv() => match message {
                Some(ToQueue::Enqueue(job)) => state.handle_enqueue(job),
                Some(ToQueue::Forget(ids)) => state.handle_forget(&ids),
                Some(ToQueue::Cancel(request)) => state.handle_cancel(request),
                None => break,
            },
            Some(event) = state.tasks.join_next_with_id() => state.handle_pool_event(event),
        }
    }
}

impl State {
    fn handle_enqueue(&mut self, mut job: Box<ExecuteJob>) {
        self.metrics.execute_enqueued();
        job.enqueued = Instant::now();
        // Prepared again since it was pruned.
        self.forgotten.remove(&job.id);
        self.waiting.line_mut(job.kind).push_back(*job);
        self.schedule();
    }

    fn handle_forget(&mut self, ids: &[ArtifactId]) {
        for worker in &mut self.idle {
            for id in ids {
                pool::unlink(worker, id);
            }
        }
        self.forgotten.extend(ids);
    }

    fn handle_cancel(&mut self, request: u64) {
        let cancelled = self.waiting.extract(|job| job.request == request);
        self.metrics
            .execute_cancelled
            .inc_by(cancelled.len() as u64);
        self.update_depth();
    }

    fn handle_pool_event(&mut self, event: Result<(task::Id, PoolEvent), JoinError>) {
        match event {
            Ok((task, PoolEvent::Spawned { key, process })) => {
                self.spawning.remove(&task);
                self.idle.push(ExecWorker {
                    process,
                    key,
                    linked: HashSet::new(),
                    loaded: pool::LoadedGauge::new(&self.metrics),
                });
            }
            Ok((
                task,
                PoolEvent::Done {
                    worker,
                    job,
                    outcome,
                    elapsed,
                },
            )) => {
                self.running.remove(&task);
                if let Some(mut worker) = worker {
                    for id in &self.forgotten {
                        pool::unlink(&mut worker, id);
                    }
                    self.idle.push(worker);
                }
                self.finish(job, outcome, elapsed);
            }
            Err(e) => {
                // A task panicked: a bug. A running job's caller sees its reply dropped.
                tracing::error!("execute task failed: {e}");
                self.running.remove(&e.id());
                self.spawning.remove(&e.id());
            }
        }
        self.schedule();
    }

    fn finish(&mut self, job: Box<ExecuteJob>, outcome: Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Verdict(verdict) => {
                self.metrics.execute_finished(elapsed);
                let execution = Execution {
                    verdict,
                    prepare_time: job.prepare_time,
                    execute_time: elapsed,
                    retries: 0,
                };
                let _ = job.reply.send(Ok(execution));
            }
            Outcome::BadArtifact(reason) => {
                self.metrics.bad_artifacts.inc();
                let _ = self.out.send(FromQueue::BadArtifact { job, reason });
            }
        }
    }

    fn total_workers(&self) -> usize {
        self.idle.len() + self.running.len() + self.spawning.len()
    }

    /// Drops the jobs nobody waits for and the backing jobs past their deadline, starts
    /// waiting jobs on idle workers of their key in fair-share order, and spawns (or makes
    /// room for) workers for the jobs left.
    fn schedule(&mut self) {
        self.drop_stale();
        while let Some((kind, at, worker)) = self.next_start() {
            let Some(job) = self.waiting.line_mut(kind).remove(at) else {
                break;
            };
            let worker = self.idle.swap_remove(worker);
            self.share.record(kind);
            self.start(worker, job);
        }
        self.spawn_for_waiting();
        self.update_depth();
    }

    /// Answers the backing jobs that waited past their deadline, and drops the jobs whose
    /// caller went away (a cancellation that crossed the job on its way here).
    fn drop_stale(&mut self) {
        let deadline = self.config.backing_deadline;
        let now = Instant::now();
        let expired = |job: &ExecuteJob| {
            job.kind == ExecKind::Backing
                && deadline.is_some_and(|d| now.saturating_duration_since(job.enqueued) > d)
        };
        let stale = self
            .waiting
            .extract(|job| job.reply.is_closed() || expired(job));
        for job in stale {
            if job.reply.is_closed() {
                self.metrics.execute_cancelled.inc();
                continue;
            }
            let waited = now.saturating_duration_since(job.enqueued);
            tracing::warn!(artifact = %job.id, ?waited, "backing job dropped past its deadline");
            self.metrics.execute_deadline_exceeded.inc();
            let _ = job.reply.send(Err(HostError::DeadlineExceeded { waited }));
        }
    }

    /// The next job to start and its worker: the first job, in fair-share order of the
    /// kinds, with an idle worker of its key (one that has its artifact if possible).
    fn next_start(&self) -> Option<(ExecKind, usize, usize)> {
        if self.idle.is_empty() {
            return None;
        }
        let order = self.share.order(|kind| !self.waiting.line(kind).is_empty());
        order.into_iter().find_map(|kind| {
            self.waiting
                .line(kind)
                .iter()
                .enumerate()
                .find_map(|(at, job)| Some((kind, at, self.idle_worker_for(job)?)))
        })
    }

    fn idle_worker_for(&self, job: &ExecuteJob) -> Option<usize> {
        let key = job.params.prep_hash();
        let fits = |w: &ExecWorker| w.key == key;
        self.idle
            .iter()
            .position(|w| fits(w) && w.linked.contains(&job.id))
            .or_else(|| self.idle.iter().position(fits))
    }

    /// Spawns a worker for each waiting job beyond those already being spawned for its key.
    fn spawn_for_waiting(&mut self) {
        let mut unserved: HashMap<[u8; 32], usize> = HashMap::new();
        let keys: Vec<[u8; 32]> = self
            .share
            .order(|kind| !self.waiting.line(kind).is_empty())
            .into_iter()
            .flat_map(|kind| self.waiting.line(kind).iter().map(|j| j.params.prep_hash()))
            .collect();
        for key in keys {
            let count = unserved.entry(key).or_default();
            *count += 1;
            let spawning = self.spawning.values().filter(|k| **k == key).count();
            if *count > spawning {
                self.make_room_and_spawn(key);
            }
        }
    }

    fn make_room_and_spawn(&mut self, key: [u8; 32]) {
        if self.total_workers() >= self.config.max_workers {
            // Retire an idle worker of another key; none idle means wait for one to finish.
            match self.idle.iter().position(|w| w.key != key) {
                Some(index) => drop(self.idle.swap_remove(index)),
                None => return,
            }
        }
        let spawner = self.config.spawner.clone();
        let handle = self.tasks.spawn(async move {
            PoolEvent::Spawned {
                key,
                process: spawner.spawn_retrying().await,
            }
        });
        self.spawning.insert(handle.id(), key);
    }

    fn start(&mut self, worker: ExecWorker, job: ExecuteJob) {
        self.metrics.execute_assigned(job.enqueued.elapsed());
        let limits = pool::RunLimits {
            grace: self.config.grace,
            module_cache_bytes: self.config.module_cache_bytes,
            holder_cpu_budget: self.config.holder_cpu_budget,
        };
        let handle = self.tasks.spawn(async move {
            let (worker, outcome, elapsed) = pool::run(worker, &job, limits).await;
            PoolEvent::Done {
                worker,
                job: Box::new(job),
                outcome,
                elapsed,
            }
        });
        self.running.insert(handle.id());
    }

    fn update_depth(&self) {
        self.metrics
            .execute_queue_depth
            .set(self.waiting.len() as i64);
    }
}
