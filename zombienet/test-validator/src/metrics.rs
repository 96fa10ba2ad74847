//! The node's Prometheus metrics: the process start time zombienet polls to see that a node
//! is up, and the PVF metrics with Polkadot's names, help and buckets, so that the checks
//! Polkadot's own PVF network tests make apply unchanged.
//!
//! Until the host registers its own PVF metrics, the node registers them here and observes them
//! from the timings the host returns (see [`crate::pvf`]).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Polkadot's buckets for `polkadot_pvf_preparation_time`, in seconds.
const PREPARATION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0, 360.0, 480.0,
];
/// Polkadot's buckets for `polkadot_pvf_execution_time`, in seconds.
const EXECUTION_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0,
];

/// The metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// What the endpoint serves.
    pub registry: Registry,
    /// Wall time of each preparation that ran (a cache hit is not a preparation).
    pub preparation_time: Histogram,
    /// Wall time of each execution.
    pub execution_time: Histogram,
    /// Preparations that ran, whatever their outcome.
    pub prepare_concluded: IntCounter,
    /// Executions that finished, whatever their verdict.
    pub execute_finished: IntCounter,
    /// Candidates this node reached a verdict on.
    pub verdicts: IntCounter,
}

impl Metrics {
    /// Registers every metric. `start_time` is the process start, in seconds since the epoch.
    pub fn new(start_time: u64) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let start = IntGauge::new(
            "substrate_process_start_time_seconds",
            "Number of seconds between the UNIX epoch and the moment the process started",
        )?;
        start.set(i64::try_from(start_time).unwrap_or(i64::MAX));
        registry.register(Box::new(start))?;
        let preparation_time = Histogram::with_opts(
            HistogramOpts::new(
                "polkadot_pvf_preparation_time",
                "Time spent in preparing PVF artifacts in seconds",
            )
            .buckets(PREPARATION_BUCKETS.to_vec()),
        )?;
        let execution_time = Histogram::with_opts(
            HistogramOpts::new(
                "polkadot_pvf_execution_time",
                "Time spent in executing PVFs",
            )
            .buckets(EXECUTION_BUCKETS.to_vec()),
        )?;
        let prepare_concluded = IntCounter::new(
            "polkadot_pvf_prepare_concluded",
            "The total number of jobs concluded in the preparation pipeline",
        )?;
        let execute_finished = IntCounter::new(
            "polkadot_pvf_execute_finished",
            "The total number of jobs done in the execution pipeline",
        )?;
        let verdicts = IntCounter::new(
            "pvf_test_validator_verdicts",
            "The total number of candidates this node reached a verdict on",
        )?;
        registry.register(Box::new(preparation_time.clone()))?;
        registry.register(Box::new(execution_time.clone()))?;
        registry.register(Box::new(prepare_concluded.clone()))?;
        registry.register(Box::new(execute_finished.clone()))?;
        registry.register(Box::new(verdicts.clone()))?;
        Ok(Self {
            registry,
            preparation_time,
            execution_time,
            prepare_concluded,
            execute_finished,
            verdicts,
        })
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zombienet's histogram checks name buckets the way Polkadot's exposition prints them.
    #[test]
    fn exposition_uses_polkadot_names_and_bucket_labels() {
        let metrics = Metrics::new(1_700_000_000).expect("registers");
        metrics.preparation_time.observe(0.7);
        metrics.execution_time.observe(0.02);
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains("substrate_process_start_time_seconds 1700000000\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_preparation_time_bucket{le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_preparation_time_bucket{le=\"0.5\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_execution_time_bucket{le=\"0.025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_execution_time_bucket{le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_prepare_concluded 0\n"),
            "{text}"
        );
    }
}
