//! The node's one point of contact with the pvf host: start it, prepare code, validate a
//! candidate. Everything host-specific lives here, so a change to the host's API changes only
//! this module.
//!
//! Until the host has metrics of its own, this module observes the PVF metrics from what the
//! host returns: a preparation is a `prepare` that was not a cache hit, timed here; an
//! execution is timed by the host.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pvf_common::error::PrepareError;
use pvf_common::params::{ExecKind, ExecutorParams, PrepKind};
use pvf_host::host::StartError;
use pvf_host::{Config, Host, Verdict};

use crate::metrics::Metrics;

/// The pvf host as this node uses it: default executor parameters, backing validation.
pub struct Pvf {
    host: Host,
    params: ExecutorParams,
    metrics: Metrics,
}

/// How a preparation went.
pub struct Preparation {
    /// Whether the artifact was already in the cache (from an earlier run of this node).
    pub cached: bool,
    /// Wall time spent.
    pub elapsed: Duration,
}

impl Pvf {
    /// Starts the host with its artifact cache in `cache_dir` and the workers found next to
    /// this executable.
    pub fn start(cache_dir: PathBuf, metrics: Metrics) -> Result<Self, StartError> {
        Ok(Self {
            host: Host::start(Config::new(cache_dir))?,
            params: ExecutorParams::default(),
            metrics,
        })
    }

    /// Prepares `code` unless its artifact is cached.
    pub async fn prepare(&self, code: &[u8]) -> Result<Preparation, PrepareError> {
        let start = Instant::now();
        let result = self
            .host
            .prepare(code, &self.params, PrepKind::Lenient)
            .await;
        let elapsed = start.elapsed();
        let cached = matches!(&result, Ok(prepared) if prepared.cached);
        if !cached {
            self.record_preparation(elapsed);
        }
        result.map(|_| Preparation { cached, elapsed })
    }

    /// Validates one candidate as a backing validator would (2 s CPU-time limit).
    pub async fn validate(&self, code: &[u8], validation_params: &[u8]) -> Verdict {
        if let Err(e) = self.prepare(code).await {
            return Verdict::from_prepare_error(e);
        }
        let execution = self
            .host
            .execute(code, &self.params, validation_params, ExecKind::Backing)
            .await;
        // The host re-prepares, inside `execute`, an artifact that turned out bad.
        if !execution.prepare_time.is_zero() {
            self.record_preparation(execution.prepare_time);
        }
        self.metrics
            .execution_time
            .observe(execution.execute_time.as_secs_f64());
        self.metrics.execute_finished.inc();
        execution.verdict
    }

    fn record_preparation(&self, elapsed: Duration) {
        self.metrics.prepare_concluded.inc();
        self.metrics.preparation_time.observe(elapsed.as_secs_f64());
    }
}
