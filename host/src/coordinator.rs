//! The coordinator: the actor between the handles and the two queues. It knows every
//! artifact's state (prepared, being prepared with its waiters, failed), sends executions
//! whose artifact is ready to the execute queue, holds the others until their preparation
//! concludes, and turns a bad artifact into a transparent re-preparation.
//!
//! It does no disk I/O itself: deleting artifact files and storing the last-needed times
//! run on blocking threads ([`DiskDone`] reports back), so a slow disk delays them, never
//! scheduling. A preparation of an artifact whose file is still being deleted waits for the
//! deletion, so the new file can never be the one deleted.

use std::collections::{HashMap, HashSet, hash_map};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pvf_common::error::PrepareError;
use pvf_common::params::{ArtifactId, ExecutorParams, PrepKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::artifacts::{self, Artifacts, meta};
use crate::config::Config;
use crate::execute::{self, ExecuteJob};
use crate::host::{ArtifactInfo, ArtifactStatus, Execution};
use crate::metrics::Metrics;
use crate::prepare::failures::Failures;
use crate::prepare::{self, PrepareJob, PreparedArtifact};
use crate::priority::Priority;
use crate::verdict::{Reason, Verdict};
use crate::worker;

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
    /// The caller of this execution request went away: drop its job if it has not started.
    Cancel(u64),
}

/// Who waits for a preparation.
struct Waiters {
    started: Instant,
    priority: Priority,
    /// The preparation, held back while the artifact's old file is being deleted; `None`
    /// once it is with the prepare queue.
    held: Option<PrepareJob>,
    prechecks: Vec<oneshot::Sender<Result<ArtifactInfo, PrepareError>>>,
    executions: Vec<ExecuteJob>,
}

/// Disk work finished on a blocking thread.
enum DiskDone {
    /// These artifacts' files are deleted.
    Deleted(Vec<ArtifactId>),
    /// The last-needed times were stored, or not.
    Stored(std::io::Result<()>),
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
    /// Artifacts whose file is being deleted.
    deleting: HashSet<ArtifactId>,
    /// Whether the last-needed times are being stored.
    storing: bool,
    disk: JoinSet<DiskDone>,
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
            deleting: HashSet::new(),
            storing: false,
            disk: JoinSet::new(),
        };
        loop {
            tokio::select! {
                message = from_handles.recv() => match message {
                    Some(message) => state.handle_message(message),
                    None => break,
                },
                Some(concluded) = from_prepare.recv() => state.handle_concluded(concluded),
                Some(message) = from_execute.recv() => state.handle_from_execute(message),
                Some(Ok(done)) = state.disk.join_next() => state.handle_disk_done(done),
                _ = maintenance.tick() => state.handle_maintenance(),
            }
        }
        while state.disk.join_next().await.is_some() {}
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
            ToHost::Cancel(request) => self.handle_cancel(request),
        }
    }

    /// Drops the request's job if it waits for its artifact here; otherwise it is in (or on
    /// its way to) the execute queue, which drops it if it has not started.
    fn handle_cancel(&mut self, request: u64) {
        for waiters in self.preparing.values_mut() {
            let before = waiters.executions.len();
            waiters.executions.retain(|job| job.request != request);
            if waiters.executions.len() < before {
                self.inner.metrics.execute_cancelled.inc();
                return;
            }
        }
        let cancel = execute::queue::ToQueue::Cancel(request);
        let _ = self.inner.to_execute.send(cancel);
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
            kind: PrepKind::Precheck,
        };
        self.request_preparation(job).prechecks.push(reply);
    }

    fn handle_execute(&mut self, mut job: Box<ExecuteJob>) {
        if let Some(entry) = self.inner.artifacts.get(&job.id) {
            job.path = entry.path.clone();
            job.install = entry.install;
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
            kind: PrepKind::Lenient,
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
                kind: PrepKind::Lenient,
            });
        }
    }

    /// Queues `job` (held while the artifact's old file is being deleted), or joins the
    /// preparation already requested for its artifact and raises its priority. Returns the
    /// artifact's waiters.
    fn request_preparation(&mut self, job: PrepareJob) -> &mut Waiters {
        let (id, priority) = (job.id, job.priority);
        let to_prepare = &self.inner.to_prepare;
        match self.preparing.entry(id) {
            hash_map::Entry::Vacant(slot) => {
                let held = if self.deleting.contains(&id) {
                    Some(job)
                } else {
                    let _ = to_prepare.send(prepare::queue::ToQueue::Enqueue(job));
                    None
                };
                slot.insert(Waiters {
                    started: Instant::now(),
                    priority,
                    held,
                    prechecks: Vec::new(),
                    executions: Vec::new(),
                })
            }
            hash_map::Entry::Occupied(slot) => {
                let waiters = slot.into_mut();
                if priority > waiters.priority {
                    waiters.priority = priority;
                    match &mut waiters.held {
                        Some(held) => held.priority = priority,
                        // A raise, not a new request: if the preparation concluded meanwhile,
                        // the queue ignores it rather than preparing again for nobody.
                        None => {
                            let _ =
                                to_prepare.send(prepare::queue::ToQueue::Raise { id, priority });
                        }
                    }
                }
                waiters
            }
        }
    }

    fn send_to_prepare(&self, message: prepare::queue::ToQueue) {
        let _ = self.inner.to_prepare.send(message);
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
        let install = artifacts.insert(id, p.path.clone(), p.size, SystemTime::now());
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
            // Its caller has gone (the cancel may still be on its way): run nothing for it.
            if job.reply.is_closed() {
                self.inner.metrics.execute_cancelled.inc();
                continue;
            }
            job.path = p.path.clone();
            job.install = install;
            job.prepare_time += waited;
            self.send_to_execute(Box::new(job));
        }
    }

    /// A worker refused an artifact file: delete it and prepare the code again. Only the file
    /// the job ran is deleted: a late report about a file already replaced leaves the new one
    /// alone, and the job runs again on it. A second bad file for the same request means
    /// something on this machine corrupts them: Internal.
    fn handle_from_execute(&mut self, message: execute::queue::FromQueue) {
        let execute::queue::FromQueue::BadArtifact { mut job, reason } = message;
        if let Some(path) = self.inner.artifacts.remove(&job.id, job.install) {
            tracing::warn!(artifact = %job.id, "bad artifact deleted, preparing again: {reason}");
            self.delete(vec![(job.id, path)]);
        }
        if job.artifact_replaced {
            let verdict = Verdict::Internal(Reason::BadArtifact(reason));
            answer(*job, verdict);
            return;
        }
        job.artifact_replaced = true;
        self.handle_execute(job);
    }

    /// Deletes forgotten artifacts' files on a blocking thread.
    fn delete(&mut self, files: Vec<(ArtifactId, PathBuf)>) {
        let (ids, paths): (Vec<_>, Vec<_>) = files.into_iter().unzip();
        self.deleting.extend(ids.iter().copied());
        self.disk.spawn_blocking(move || {
            artifacts::delete_files(&paths);
            DiskDone::Deleted(ids)
        });
    }

    fn handle_disk_done(&mut self, done: DiskDone) {
        match done {
            DiskDone::Deleted(ids) => {
                for id in ids {
                    self.deleting.remove(&id);
                    let held = self.preparing.get_mut(&id).and_then(|w| w.held.take());
                    if let Some(job) = held {
                        self.send_to_prepare(prepare::queue::ToQueue::Enqueue(job));
                    }
                }
            }
            DiskDone::Stored(result) => {
                self.storing = false;
                if let Err(e) = result {
                    tracing::warn!("writing the cache metadata: {e}");
                    self.inner.artifacts.store_failed();
                }
            }
        }
    }

    fn handle_maintenance(&mut self) {
        let config = &self.inner.config;
        if let Some(budget) = config.cache_max_size {
            let (min_stale, now) = (config.cache_min_stale, SystemTime::now());
            let pruned = self.inner.artifacts.prune(budget, min_stale, now);
            if !pruned.is_empty() {
                let ids = pruned.iter().map(|(id, _)| *id).collect();
                let _ = self
                    .inner
                    .to_execute
                    .send(execute::queue::ToQueue::Forget(ids));
                self.delete(pruned);
            }
        }
        if !self.storing
            && let Some(times) = self.inner.artifacts.take_times_to_store()
        {
            self.storing = true;
            let dir = self.inner.artifacts.dir().to_path_buf();
            self.disk
                .spawn_blocking(move || DiskDone::Stored(meta::store(&dir, &times)));
        }
        // Worker dirs that a read-only or failing disk kept from being removed.
        tokio::task::spawn_blocking(worker::remove_leftover_dirs);
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
        retries: 0,
    };
    let _ = job.reply.send(Ok(execution));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::queue::{FromQueue, ToQueue as ToExecute};
    use crate::prepare::queue::{Concluded, ToQueue as ToPrepare};
    use pvf_common::params::ExecKind;

    struct Harness {
        handles: mpsc::UnboundedSender<ToHost>,
        concluded: mpsc::UnboundedSender<Concluded>,
        reports: mpsc::UnboundedSender<FromQueue>,
        to_prepare: mpsc::UnboundedReceiver<ToPrepare>,
        to_execute: mpsc::UnboundedReceiver<ToExecute>,
    }

    /// A coordinator whose queues are this test.
    fn start(cache: &std::path::Path) -> Harness {
        let metrics = Metrics::new().unwrap();
        let (handles, from_handles) = mpsc::unbounded_channel();
        let (concluded, from_prepare) = mpsc::unbounded_channel();
        let (reports, from_execute) = mpsc::unbounded_channel();
        let (prepare_tx, to_prepare) = mpsc::unbounded_channel();
        let (execute_tx, to_execute) = mpsc::unbounded_channel();
        let coordinator = Coordinator {
            config: Config::new(cache.to_path_buf()),
            artifacts: Artifacts::open(cache, &metrics).unwrap(),
            metrics,
            to_prepare: prepare_tx,
            to_execute: execute_tx,
        };
        tokio::spawn(coordinator.run(from_handles, from_prepare, from_execute));
        Harness {
            handles,
            concluded,
            reports,
            to_prepare,
            to_execute,
        }
    }

    fn job(
        request: u64,
    ) -> (
        Box<ExecuteJob>,
        oneshot::Receiver<Result<Execution, crate::HostError>>,
    ) {
        let (reply, answer) = oneshot::channel();
        let code = Arc::new(b"code".to_vec());
        let params = ExecutorParams::default();
        let job = ExecuteJob {
            request,
            id: ArtifactId::new(&code, &params),
            code,
            path: PathBuf::new(),
            install: 0,
            params,
            validation_params: Arc::new(Vec::new()),
            kind: ExecKind::Approval,
            timeout: Duration::from_secs(1),
            enqueued: Instant::now(),
            prepare_time: Duration::ZERO,
            artifact_replaced: false,
            reply,
        };
        (Box::new(job), answer)
    }

    /// The preparation "worker" writes `content` as the artifact and reports it.
    fn conclude(h: &Harness, cache: &std::path::Path, id: ArtifactId, content: &[u8]) {
        let path = cache.join(id.file_name());
        std::fs::write(&path, content).unwrap();
        let prepared = PreparedArtifact {
            path,
            size: content.len() as u64,
            duration: Duration::ZERO,
            max_rss_kib: 0,
        };
        h.concluded
            .send(Concluded {
                id,
                result: Ok(prepared),
            })
            .unwrap();
    }

    async fn next_enqueued(rx: &mut mpsc::UnboundedReceiver<ToExecute>) -> Box<ExecuteJob> {
        match rx.recv().await {
            Some(ToExecute::Enqueue(job)) => job,
            other => panic!("expected an execution, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_late_bad_artifact_report_leaves_the_re_prepared_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        let mut h = start(cache);
        let (a, _answer_a) = job(1);
        let id = a.id;
        h.handles.send(ToHost::Execute(a)).unwrap();
        assert!(matches!(
            h.to_prepare.recv().await,
            Some(ToPrepare::Enqueue(_))
        ));
        conclude(&h, cache, id, b"first file");
        let a = next_enqueued(&mut h.to_execute).await;
        // B runs the same file on another worker.
        let (b, _answer_b) = job(2);
        h.handles.send(ToHost::Execute(b)).unwrap();
        let b = next_enqueued(&mut h.to_execute).await;
        assert_eq!(a.install, b.install);

        // A's worker finds the file bad: it is deleted and prepared again.
        let reason = "checksum".to_string();
        h.reports
            .send(FromQueue::BadArtifact {
                job: a,
                reason: reason.clone(),
            })
            .unwrap();
        assert!(matches!(
            h.to_prepare.recv().await,
            Some(ToPrepare::Enqueue(_))
        ));
        conclude(&h, cache, id, b"second file");
        let a = next_enqueued(&mut h.to_execute).await;
        assert_ne!(a.install, b.install);

        // B's report about the first file arrives late: the second file stays, B re-runs on it.
        h.reports
            .send(FromQueue::BadArtifact { job: b, reason })
            .unwrap();
        let b = next_enqueued(&mut h.to_execute).await;
        assert_eq!(b.install, a.install);
        assert_eq!(
            std::fs::read(cache.join(id.file_name())).unwrap(),
            b"second file"
        );
        assert!(h.to_prepare.try_recv().is_err(), "nothing prepared again");
    }

    #[tokio::test]
    async fn a_dropped_caller_waiting_for_its_artifact_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        let mut h = start(cache);
        let (a, answer) = job(7);
        let id = a.id;
        h.handles.send(ToHost::Execute(a)).unwrap();
        assert!(matches!(
            h.to_prepare.recv().await,
            Some(ToPrepare::Enqueue(_))
        ));
        drop(answer);
        h.handles.send(ToHost::Cancel(7)).unwrap();
        conclude(&h, cache, id, b"file");
        let (b, _answer) = job(8);
        h.handles.send(ToHost::Execute(b)).unwrap();
        // The cancel may reach the coordinator after the artifact: then it goes on to the
        // execute queue, which has nothing to drop.
        let next = loop {
            match h.to_execute.recv().await {
                Some(ToExecute::Cancel(7)) => continue,
                Some(ToExecute::Enqueue(job)) => break job,
                other => panic!("expected an execution, got {other:?}"),
            }
        };
        assert_eq!(next.request, 8, "7 never ran");
    }
}
