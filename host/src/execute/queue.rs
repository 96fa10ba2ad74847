//! The execute queue: an actor that orders executions by kind (dispute > approval >
//! backing, then first come first served) and owns the execute workers, keyed by the
//! preparation-relevant executor parameters.
//!
//! A job goes to an idle worker of its key, preferably one that already has its artifact.
//! Without one, a worker is spawned within `max_workers`; at the limit, an idle worker of
//! another key is retired to make room. A worker that dies or stops answering is dropped
//! (killed) and replaced by the next spawn.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use pvf_common::params::ArtifactId;
use tokio::sync::mpsc;
use tokio::task::{self, JoinError, JoinSet};

use super::ExecuteJob;
use super::pool::{self, ExecWorker, Outcome};
use crate::host::Execution;
use crate::metrics::Metrics;
use crate::worker::{Spawner, WorkerError, WorkerProcess};

/// Messages to the queue.
#[derive(Debug)]
pub enum ToQueue {
    /// Run this job once a worker is free; its artifact is prepared.
    Enqueue(Box<ExecuteJob>),
    /// These artifacts left the cache (pruned): drop the workers' links to them, so their
    /// disk space is freed (a busy worker's, when its job ends).
    Forget(Vec<ArtifactId>),
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
}

enum PoolEvent {
    Spawned {
        key: [u8; 32],
        result: Result<WorkerProcess, WorkerError>,
    },
    Done {
        worker: Option<ExecWorker>,
        job: Box<ExecuteJob>,
        outcome: Outcome,
        elapsed: Duration,
    },
}

struct State {
    config: QueueConfig,
    metrics: Metrics,
    out: mpsc::UnboundedSender<FromQueue>,
    waiting: Vec<ExecuteJob>,
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
        waiting: Vec::new(),
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
        // Stable: equal kinds stay in arrival order.
        let at = self
            .waiting
            .partition_point(|queued| queued.kind >= job.kind);
        self.waiting.insert(at, *job);
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

    fn handle_pool_event(&mut self, event: Result<(task::Id, PoolEvent), JoinError>) {
        match event {
            Ok((task, PoolEvent::Spawned { key, result })) => {
                self.spawning.remove(&task);
                match result {
                    Ok(process) => self.idle.push(ExecWorker {
                        process,
                        key,
                        linked: HashSet::new(),
                    }),
                    Err(e) => self.fail_spawn(key, e),
                }
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

    /// No worker could start for `key`: its waiting jobs would wait on the same failure.
    fn fail_spawn(&mut self, key: [u8; 32], error: WorkerError) {
        tracing::error!("cannot spawn an execute worker: {error}");
        if self.spawning.values().any(|k| *k == key) || self.idle.iter().any(|w| w.key == key) {
            return;
        }
        let (failed, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|job| job.params.prep_hash() == key);
        self.waiting = kept;
        for job in failed {
            let verdict = crate::Verdict::Internal(format!("spawning an execute worker: {error}"));
            self.finish(Box::new(job), Outcome::Verdict(verdict), Duration::ZERO);
        }
    }

    fn finish(&mut self, job: Box<ExecuteJob>, outcome: Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Verdict(verdict) => {
                self.metrics.execute_finished(elapsed);
                let execution = Execution {
                    verdict,
                    prepare_time: job.prepare_time,
                    execute_time: elapsed,
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

    /// Starts waiting jobs on idle workers of their key, most urgent first, and spawns (or
    /// makes room for) workers for the jobs left.
    fn schedule(&mut self) {
        let mut unserved: HashMap<[u8; 32], usize> = HashMap::new();
        let mut at = 0;
        while at < self.waiting.len() {
            let key = self.waiting[at].params.prep_hash();
            let id = self.waiting[at].id;
            let fits = |w: &ExecWorker| w.key == key;
            let chosen = self
                .idle
                .iter()
                .position(|w| fits(w) && w.linked.contains(&id))
                .or_else(|| self.idle.iter().position(fits));
            match chosen {
                Some(index) => {
                    let worker = self.idle.swap_remove(index);
                    let job = self.waiting.remove(at);
                    self.start(worker, job);
                }
                None => {
                    let count = unserved.entry(key).or_default();
                    *count += 1;
                    let spawning = self.spawning.values().filter(|k| **k == key).count();
                    if *count > spawning {
                        self.make_room_and_spawn(key);
                    }
                    at += 1;
                }
            }
        }
        self.metrics
            .execute_queue_depth
            .set(self.waiting.len() as i64);
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
                result: spawner.spawn().await,
            }
        });
        self.spawning.insert(handle.id(), key);
    }

    fn start(&mut self, worker: ExecWorker, job: ExecuteJob) {
        self.metrics.execute_assigned(job.enqueued.elapsed());
        let grace = self.config.grace;
        let handle = self.tasks.spawn(async move {
            let (worker, outcome, elapsed) = pool::run(worker, &job, grace).await;
            PoolEvent::Done {
                worker,
                job: Box::new(job),
                outcome,
                elapsed,
            }
        });
        self.running.insert(handle.id());
    }
}
