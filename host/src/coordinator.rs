//! The coordinator: the actor between the handles and the two queues. It knows every
//! artifact's state (prepared, being prepared with its waiters, failed), sends executions
//! whose artifact is ready to the execute queue, holds the others until their preparation
//! concludes, and turns a bad artifact into a transparent re-preparation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pvf_common::error::PrepareError;
use pvf_common::params::{ArtifactId, ExecutorParams, PrepKind};
use tokio::sync::{mpsc, oneshot};

use crate::artifacts::Artifacts;
use crate::config::Config;
use crate::execute::{self, ExecuteJob};
use crate::host::{ArtifactInfo, ArtifactStatus, Execution};
use crate::metrics::Metrics;
use crate::prepare::failures::Failures;
use crate::prepare::{self, PrepareJob, PreparedArtifact};
use crate::priority::Priority;
use crate::verdict::Verdict;

/// Messages from the handles.
pub enum ToHost {
    /// Prepare only.
    Precheck {
        /// The artifact.
        id: ArtifactId,
        /// The code.
        code: Arc<Vec<u8>>,
        /// Its parameters.
        params: ExecutorParams,
        /// The caller.
        reply: oneshot::Sender<Result<ArtifactInfo, PrepareError>>,
    },
    /// Validate a candidate.
    Execute(Box<ExecuteJob>),
    /// Prepare ahead of need.
    HeadsUp(Vec<(ArtifactId, Arc<Vec<u8>>, ExecutorParams)>),
    /// Report an artifact's state.
    Status {
        /// The artifact.
        id: ArtifactId,
        /// The caller.
        reply: oneshot::Sender<ArtifactStatus>,
    },
}

/// Who waits for a preparation.
struct Waiters {
    started: Instant,
    priority: Priority,
    prechecks: Vec<oneshot::Sender<Result<ArtifactInfo, PrepareError>>>,
    executions: Vec<ExecuteJob>,
}

/// The coordinator's inputs before it runs.
pub struct Coordinator {
    /// The host's configuration.
    pub config: Config,
    /// The opened cache.
    pub artifacts: Artifacts,
    /// The metrics.
    pub metrics: Metrics,
    /// To the prepare queue.
    pub to_prepare: mpsc::UnboundedSender<prepare::queue::ToQueue>,
    /// To the execute queue.
    pub to_execute: mpsc::UnboundedSender<execute::queue::ToQueue>,
}

struct State {
    inner: Coordinator,
    failures: Failures,
    preparing: HashMap<ArtifactId, Waiters>,
}

impl Coordinator {
    /// Runs until every handle is dropped.
    pub async fn run(
        self,
        mut from_handles: mpsc::UnboundedReceiver<ToHost>,
        mut from_prepare: mpsc::UnboundedReceiver<prepare::queue::Concluded>,
        mut from_execute: mpsc::UnboundedReceiver<execute::queue::FromQueue>,
    ) {
        let failures = Failures::new(
            self.config.prepare_retry_cooldown,
            self.config.prepare_max_attempts,
        );
        let mut maintenance = tokio::time::interval(self.config.maintenance_interval);
        let mut state = State {
            inner: self,
            failures,
            preparing: HashMap::new(),
        };
        loop {
            tokio::select! {
                message = from_handles.recv() => match message {
                    Some(message) => state.handle_message(message),
                    None => break,
                },
                Some(concluded) = from_prepare.recv() => state.handle_concluded(concluded),
                Some(message) = from_execute.recv() => state.handle_from_execute(message),
                _ = maintenance.tick() => state.handle_maintenance(),
            }
        }
        state.inner.artifacts.persist();
    }
}

impl State {
    fn handle_message(&mut self, message: ToHost) {
        match message {
            ToHost::Precheck {
                id,
                code,
                params,
                reply,
            } => self.handle_precheck(id, code, params, reply),
            ToHost::Execute(job) => self.handle_execute(job),
            ToHost::HeadsUp(items) => self.handle_heads_up(items),
            ToHost::Status { id, reply } => {
                let _ = reply.send(self.status(&id));
            }
        }
    }

    fn handle_precheck(
        &mut self,
        id: ArtifactId,
        code: Arc<Vec<u8>>,
        params: ExecutorParams,
        reply: oneshot::Sender<Result<ArtifactInfo, PrepareError>>,
    ) {
        if let Some(entry) = self.inner.artifacts.get(&id) {
            let info = ArtifactInfo {
                id,
                path: entry.path.clone(),
                size: entry.size,
                cached: true,
                prepare_time: Duration::ZERO,
                prepare_max_rss_kib: None,
            };
            self.inner.artifacts.touch(&id, SystemTime::now());
            let _ = reply.send(Ok(info));
            return;
        }
        if let Some(error) = self.failures.refusal(&id, Instant::now()) {
            let _ = reply.send(Err(error.clone()));
            return;
        }
        let timeout = params.prep_timeout(PrepKind::Precheck);
        let job = PrepareJob {
            id,
            code,
            params,
            priority: Priority::Normal,
            timeout,
        };
        self.request_preparation(job).prechecks.push(reply);
    }

    fn handle_execute(&mut self, mut job: Box<ExecuteJob>) {
        if let Some(entry) = self.inner.artifacts.get(&job.id) {
            job.path = entry.path.clone();
            self.inner.artifacts.touch(&job.id, SystemTime::now());
            self.inner.metrics.cache_hits.inc();
            self.send_to_execute(job);
            return;
        }
        if let Some(error) = self.failures.refusal(&job.id, Instant::now()) {
            let verdict = Verdict::from_prepare_error(error.clone());
            answer(*job, verdict);
            return;
        }
        self.inner.metrics.cache_misses.inc();
        let prepare = PrepareJob {
            id: job.id,
            code: job.code.clone(),
            params: job.params.clone(),
            priority: Priority::of_execution(job.kind),
            timeout: job.params.prep_timeout(PrepKind::Lenient),
        };
        self.request_preparation(prepare).executions.push(*job);
    }

    fn handle_heads_up(&mut self, items: Vec<(ArtifactId, Arc<Vec<u8>>, ExecutorParams)>) {
        let now = Instant::now();
        for (id, code, params) in items {
            if self.inner.artifacts.get(&id).is_some() {
                self.inner.artifacts.touch(&id, SystemTime::now());
                continue;
            }
            if self.failures.refusal(&id, now).is_some() {
                continue;
            }
            let timeout = params.prep_timeout(PrepKind::Lenient);
            self.request_preparation(PrepareJob {
                id,
                code,
                params,
                priority: Priority::Background,
                timeout,
            });
        }
    }

    /// Queues `job`, or joins the preparation already queued for its artifact and raises its
    /// priority. Returns the artifact's waiters.
    fn request_preparation(&mut self, job: PrepareJob) -> &mut Waiters {
        let id = job.id;
        let priority = job.priority;
        let raise = match self.preparing.get(&id) {
            Some(waiters) => priority > waiters.priority,
            None => true,
        };
        if raise {
            let _ = self
                .inner
                .to_prepare
                .send(prepare::queue::ToQueue::Enqueue(job));
        }
        let waiters = self.preparing.entry(id).or_insert_with(|| Waiters {
            started: Instant::now(),
            priority,
            prechecks: Vec::new(),
            executions: Vec::new(),
        });
        waiters.priority = waiters.priority.max(priority);
        waiters
    }

    fn handle_concluded(&mut self, concluded: prepare::queue::Concluded) {
        let id = concluded.id;
        let Some(waiters) = self.preparing.remove(&id) else {
            tracing::warn!(artifact = %id, "a preparation nobody waited for concluded");
            return;
        };
        let waited = waiters.started.elapsed();
        match concluded.result {
            Ok(prepared) => self.prepared(id, prepared, waiters, waited),
            Err(error) => {
                self.failures.record(id, error.clone(), Instant::now());
                for reply in waiters.prechecks {
                    let _ = reply.send(Err(error.clone()));
                }
                for mut job in waiters.executions {
                    job.prepare_time += waited;
                    answer(job, Verdict::from_prepare_error(error.clone()));
                }
            }
        }
    }

    fn prepared(
        &mut self,
        id: ArtifactId,
        p: PreparedArtifact,
        waiters: Waiters,
        waited: Duration,
    ) {
        self.failures.forget(&id);
        let artifacts = &mut self.inner.artifacts;
        artifacts.insert(id, p.path.clone(), p.size, SystemTime::now());
        for reply in waiters.prechecks {
            let _ = reply.send(Ok(ArtifactInfo {
                id,
                path: p.path.clone(),
                size: p.size,
                cached: false,
                prepare_time: p.duration,
                prepare_max_rss_kib: Some(p.max_rss_kib),
            }));
        }
        for mut job in waiters.executions {
            job.path = p.path.clone();
            job.prepare_time += waited;
            self.send_to_execute(Box::new(job));
        }
    }

    /// A worker refused an artifact file: delete it and prepare the code again. A second bad
    /// file for the same request means something on this machine corrupts them: Internal.
    fn handle_from_execute(&mut self, message: execute::queue::FromQueue) {
        let execute::queue::FromQueue::BadArtifact { mut job, reason } = message;
        tracing::warn!(artifact = %job.id, "bad artifact deleted, preparing again: {reason}");
        self.inner.artifacts.remove(&job.id);
        if job.artifact_replaced {
            let verdict = Verdict::Internal(format!("the artifact was bad twice: {reason}"));
            answer(*job, verdict);
            return;
        }
        job.artifact_replaced = true;
        self.handle_execute(job);
    }

    fn handle_maintenance(&mut self) {
        let config = &self.inner.config;
        if let Some(budget) = config.cache_max_size {
            let (min_stale, now) = (config.cache_min_stale, SystemTime::now());
            let pruned = self.inner.artifacts.prune(budget, min_stale, now);
            if !pruned.is_empty() {
                let forget = execute::queue::ToQueue::Forget(pruned);
                let _ = self.inner.to_execute.send(forget);
            }
        }
        self.inner.artifacts.persist();
    }

    fn send_to_execute(&self, job: Box<ExecuteJob>) {
        let _ = self
            .inner
            .to_execute
            .send(execute::queue::ToQueue::Enqueue(job));
    }

    fn status(&self, id: &ArtifactId) -> ArtifactStatus {
        if let Some(entry) = self.inner.artifacts.get(id) {
            return ArtifactStatus::Prepared {
                path: entry.path.clone(),
                size: entry.size,
                last_needed: entry.last_needed,
            };
        }
        if self.preparing.contains_key(id) {
            return ArtifactStatus::Preparing;
        }
        match self.failures.get(id) {
            Some((error, attempts)) => ArtifactStatus::Failed {
                error: error.clone(),
                attempts,
            },
            None => ArtifactStatus::Unknown,
        }
    }
}

/// Answers an execution that never reached a worker.
fn answer(job: ExecuteJob, verdict: Verdict) {
    let execution = Execution {
        verdict,
        prepare_time: job.prepare_time,
        execute_time: Duration::ZERO,
    };
    let _ = job.reply.send(Ok(execution));
}
