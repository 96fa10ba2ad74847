//! Prometheus metrics. The `polkadot_pvf_*` ones keep Polkadot's names, help strings and
//! buckets, so dashboards built for Polkadot's PVF host read ours unchanged; the `pvf_*`
//! ones are our own (queue depths, the persistent cache).

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::prepare::PreparedArtifact;

/// Worker flavor label values, as Polkadot spells them.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    /// Prepare workers.
    Prepare,
    /// Execute workers.
    Execute,
}

impl Flavor {
    fn label(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Execute => "execute",
        }
    }
}

/// Every metric the host exports. Cheap to clone: each metric is a shared handle.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    worker_spawning: IntCounterVec,
    worker_spawned: IntCounterVec,
    worker_retired: IntCounterVec,
    prepare_enqueued: IntCounter,
    prepare_concluded: IntCounter,
    execute_enqueued: IntCounter,
    execute_finished: IntCounter,
    preparation_time: Histogram,
    preparation_max_rss: Histogram,
    execution_time: Histogram,
    execution_queued_time: Histogram,
    /// Preparations waiting for a worker.
    pub prepare_queue_depth: IntGauge,
    /// Executions waiting for a worker.
    pub execute_queue_depth: IntGauge,
    /// Executions whose artifact was already prepared.
    pub cache_hits: IntCounter,
    /// Executions that had to wait for a preparation.
    pub cache_misses: IntCounter,
    /// Artifacts in the cache.
    pub cache_artifacts: IntGauge,
    /// Bytes of artifacts in the cache (real file sizes).
    pub cache_bytes: IntGauge,
    /// Valid artifacts indexed by the start-up scan.
    pub scan_kept: IntCounter,
    /// Files the start-up scan removed, by reason.
    pub scan_removed: IntCounterVec,
    /// Artifacts an execute worker refused (bad header or checksum); each was re-prepared.
    pub bad_artifacts: IntCounter,
    /// Artifacts removed by pruning.
    pub pruned: IntCounter,
    /// Worker spawns that failed and were retried, by flavor.
    pub worker_spawn_failures: IntCounterVec,
    /// Approvals and disputes executed again after a PossiblyInvalid or Internal verdict.
    pub execute_retries: IntCounter,
    /// Executions dropped unrun because their caller went away.
    pub execute_cancelled: IntCounter,
    /// Backing executions dropped unrun past their deadline.
    pub execute_deadline_exceeded: IntCounter,
    /// Cache files the start-up scan could not read (kept, not indexed).
    pub scan_unreadable: IntCounter,
    /// Bytes of artifacts the execute workers keep loaded, each in its holder process.
    pub execute_loaded_bytes: IntGauge,
    /// Artifacts the execute workers keep loaded.
    pub execute_loaded_artifacts: IntGauge,
    /// Artifacts execute workers unloaded to stay within their byte budget.
    pub execute_evictions: IntCounter,
}

/// Why the metrics could not be registered (a name clash: a bug).
#[derive(Debug, thiserror::Error)]
#[error("registering metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates the metrics in a fresh registry.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let flavor =
            |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["flavor"]);
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        };
        let metrics = Self {
            worker_spawning: flavor(
                "polkadot_pvf_worker_spawning",
                "The total number of workers began to spawn",
            )?,
            worker_spawned: flavor(
                "polkadot_pvf_worker_spawned",
                "The total number of workers spawned successfully",
            )?,
            worker_retired: flavor(
                "polkadot_pvf_worker_retired",
                "The total number of workers retired, either killed by the host or died on duty",
            )?,
            prepare_enqueued: IntCounter::new(
                "polkadot_pvf_prepare_enqueued",
                "The total number of jobs enqueued into the preparation pipeline",
            )?,
            prepare_concluded: IntCounter::new(
                "polkadot_pvf_prepare_concluded",
                "The total number of jobs concluded in the preparation pipeline",
            )?,
            execute_enqueued: IntCounter::new(
                "polkadot_pvf_execute_enqueued",
                "The total number of jobs enqueued into the execution pipeline",
            )?,
            execute_finished: IntCounter::new(
                "polkadot_pvf_execute_finished",
                "The total number of jobs done in the execution pipeline",
            )?,
            preparation_time: histogram(
                "polkadot_pvf_preparation_time",
                "Time spent in preparing PVF artifacts in seconds",
                &[
                    0.1, 0.5, 1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0, 360.0, 480.0,
                ],
            )?,
            // 8 MiB to 4 GiB: a runtime's compilation needs hundreds of MiB.
            preparation_max_rss: histogram(
                "polkadot_pvf_preparation_max_rss",
                "ru_maxrss (maximum resident set size) observed for preparation (in kilobytes)",
                &prometheus::exponential_buckets(8192.0, 2.0, 10)?,
            )?,
            execution_time: histogram(
                "polkadot_pvf_execution_time",
                "Time spent in executing PVFs",
                &[
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0,
                    12.0,
                ],
            )?,
            execution_queued_time: histogram(
                "polkadot_pvf_execution_queued_time",
                "Time spent in queue waiting for PVFs execution job to be assigned",
                &[
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 12.0, 24.0,
                    48.0,
                ],
            )?,
            prepare_queue_depth: IntGauge::new(
                "pvf_prepare_queue_depth",
                "Preparations waiting for a prepare worker",
            )?,
            execute_queue_depth: IntGauge::new(
                "pvf_execute_queue_depth",
                "Executions waiting for an execute worker",
            )?,
            cache_hits: IntCounter::new(
                "pvf_cache_hits",
                "Executions whose artifact was already prepared",
            )?,
            cache_misses: IntCounter::new(
                "pvf_cache_misses",
                "Executions that waited for their artifact to be prepared",
            )?,
            cache_artifacts: IntGauge::new("pvf_cache_artifacts", "Artifacts in the cache")?,
            cache_bytes: IntGauge::new(
                "pvf_cache_bytes",
                "Bytes of artifacts in the cache, as real file sizes",
            )?,
            scan_kept: IntCounter::new(
                "pvf_cache_scan_kept",
                "Valid artifacts the start-up scan indexed",
            )?,
            scan_removed: IntCounterVec::new(
                Opts::new(
                    "pvf_cache_scan_removed",
                    "Files the start-up scan removed, by reason",
                ),
                &["reason"],
            )?,
            bad_artifacts: IntCounter::new(
                "pvf_cache_bad_artifacts",
                "Artifacts refused by an execute worker (bad header or checksum) and re-prepared",
            )?,
            pruned: IntCounter::new("pvf_cache_pruned", "Artifacts removed by pruning")?,
            worker_spawn_failures: flavor(
                "pvf_worker_spawn_failures",
                "Worker spawns that failed and were retried after a backoff",
            )?,
            execute_retries: IntCounter::new(
                "pvf_execute_retries",
                "Approvals and disputes executed again after a PossiblyInvalid or Internal verdict",
            )?,
            execute_cancelled: IntCounter::new(
                "pvf_execute_cancelled",
                "Executions dropped unrun because their caller went away",
            )?,
            execute_deadline_exceeded: IntCounter::new(
                "pvf_execute_deadline_exceeded",
                "Backing executions dropped unrun after waiting past their deadline",
            )?,
            scan_unreadable: IntCounter::new(
                "pvf_cache_scan_unreadable",
                "Cache files the start-up scan could not read; kept on disk, not indexed",
            )?,
            execute_loaded_bytes: IntGauge::new(
                "pvf_execute_worker_loaded_bytes",
                "Bytes of artifacts the execute workers keep loaded (artifact file sizes)",
            )?,
            execute_loaded_artifacts: IntGauge::new(
                "pvf_execute_worker_loaded_artifacts",
                "Artifacts the execute workers keep loaded, each in its own holder process",
            )?,
            execute_evictions: IntCounter::new(
                "pvf_execute_worker_evictions",
                "Artifacts execute workers unloaded, least recently used first, to stay within their byte budget",
            )?,
            registry,
        };
        metrics.register_all()?;
        Ok(metrics)
    }

    fn register_all(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.worker_spawning.clone()))?;
        r.register(Box::new(self.worker_spawned.clone()))?;
        r.register(Box::new(self.worker_retired.clone()))?;
        r.register(Box::new(self.prepare_enqueued.clone()))?;
        r.register(Box::new(self.prepare_concluded.clone()))?;
        r.register(Box::new(self.execute_enqueued.clone()))?;
        r.register(Box::new(self.execute_finished.clone()))?;
        r.register(Box::new(self.preparation_time.clone()))?;
        r.register(Box::new(self.preparation_max_rss.clone()))?;
        r.register(Box::new(self.execution_time.clone()))?;
        r.register(Box::new(self.execution_queued_time.clone()))?;
        r.register(Box::new(self.prepare_queue_depth.clone()))?;
        r.register(Box::new(self.execute_queue_depth.clone()))?;
        r.register(Box::new(self.cache_hits.clone()))?;
        r.register(Box::new(self.cache_misses.clone()))?;
        r.register(Box::new(self.cache_artifacts.clone()))?;
        r.register(Box::new(self.cache_bytes.clone()))?;
        r.register(Box::new(self.scan_kept.clone()))?;
        r.register(Box::new(self.scan_removed.clone()))?;
        r.register(Box::new(self.bad_artifacts.clone()))?;
        r.register(Box::new(self.pruned.clone()))?;
        r.register(Box::new(self.worker_spawn_failures.clone()))?;
        r.register(Box::new(self.execute_retries.clone()))?;
        r.register(Box::new(self.execute_cancelled.clone()))?;
        r.register(Box::new(self.execute_deadline_exceeded.clone()))?;
        r.register(Box::new(self.scan_unreadable.clone()))?;
        r.register(Box::new(self.execute_loaded_bytes.clone()))?;
        r.register(Box::new(self.execute_loaded_artifacts.clone()))?;
        r.register(Box::new(self.execute_evictions.clone()))?;
        Ok(())
    }

    /// The registry holding every metric above, for a node to expose or merge.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding metrics failed: {e}\n"))
    }

    /// A worker began to spawn.
    pub fn worker_spawning(&self, flavor: Flavor) {
        self.worker_spawning
            .with_label_values(&[flavor.label()])
            .inc();
    }

    /// A worker spawned and shook hands.
    pub fn worker_spawned(&self, flavor: Flavor) {
        self.worker_spawned
            .with_label_values(&[flavor.label()])
            .inc();
    }

    /// A worker spawn failed; it will be retried.
    pub fn worker_spawn_failed(&self, flavor: Flavor) {
        self.worker_spawn_failures
            .with_label_values(&[flavor.label()])
            .inc();
    }

    /// Failed spawns of `flavor` workers so far.
    pub fn worker_spawn_failures(&self, flavor: Flavor) -> u64 {
        self.worker_spawn_failures
            .with_label_values(&[flavor.label()])
            .get()
    }

    /// A worker was killed by the host or died.
    pub fn worker_retired(&self, flavor: Flavor) {
        self.worker_retired
            .with_label_values(&[flavor.label()])
            .inc();
    }

    /// A preparation entered the queue.
    pub fn prepare_enqueued(&self) {
        self.prepare_enqueued.inc();
    }

    /// A preparation concluded, successfully (with what it took) or not (`None`).
    pub fn prepare_concluded(&self, prepared: Option<&PreparedArtifact>) {
        self.prepare_concluded.inc();
        if let Some(prepared) = prepared {
            self.preparation_time
                .observe(prepared.duration.as_secs_f64());
            self.preparation_max_rss
                .observe(prepared.max_rss_kib as f64);
        }
    }

    /// Preparations concluded so far (tests assert a warm restart prepares nothing).
    pub fn preparations(&self) -> u64 {
        self.prepare_concluded.get()
    }

    /// An execution entered the queue.
    pub fn execute_enqueued(&self) {
        self.execute_enqueued.inc();
    }

    /// An execution was assigned a worker after waiting `queued`.
    pub fn execute_assigned(&self, queued: Duration) {
        self.execution_queued_time.observe(queued.as_secs_f64());
    }

    /// An execution finished after `time` on a worker.
    pub fn execute_finished(&self, time: Duration) {
        self.execute_finished.inc();
        self.execution_time.observe(time.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_uses_polkadot_names_and_integer_bucket_labels() {
        let metrics = Metrics::new().unwrap();
        metrics.execute_finished(Duration::from_millis(300));
        metrics.worker_spawning(Flavor::Execute);
        let text = metrics.encode();
        assert!(
            text.contains("# HELP polkadot_pvf_execution_time Time spent in executing PVFs\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_execution_time_bucket{le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_execution_time_bucket{le=\"0.25\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_worker_spawning{flavor=\"execute\"} 1\n"),
            "{text}"
        );
    }
}
