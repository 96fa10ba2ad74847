//! The node's Prometheus metrics: the process start time zombienet polls to see that a node
//! is up, the node's verdict count, and the host's own PVF metrics (Polkadot's names, help and
//! buckets), so that the checks Polkadot's own PVF network tests make apply unchanged.

use std::sync::{Arc, OnceLock};

use prometheus::{IntCounter, IntGauge, Registry};

/// The metrics the endpoint serves.
#[derive(Clone)]
pub struct Metrics {
    /// The node's own metrics.
    registry: Registry,
    /// The host's metrics, once the host has started (the endpoint starts before it).
    host: Arc<OnceLock<Registry>>,
    /// Candidates this node reached a verdict on.
    pub verdicts: IntCounter,
}

impl Metrics {
    /// Registers the node's metrics. `start_time` is the process start, in seconds since the
    /// epoch.
    pub fn new(start_time: u64) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let start = IntGauge::new(
            "substrate_process_start_time_seconds",
            "Number of seconds between the UNIX epoch and the moment the process started",
        )?;
        start.set(i64::try_from(start_time).unwrap_or(i64::MAX));
        registry.register(Box::new(start))?;
        let verdicts = IntCounter::new(
            "pvf_test_validator_verdicts",
            "The total number of candidates this node reached a verdict on",
        )?;
        registry.register(Box::new(verdicts.clone()))?;
        Ok(Self {
            registry,
            host: Arc::new(OnceLock::new()),
            verdicts,
        })
    }

    /// Adds the host's registry to what the endpoint serves.
    pub fn attach_host(&self, host: Registry) {
        let _ = self.host.set(host);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        if let Some(host) = self.host.get() {
            families.extend(host.gather());
        }
        families.sort_by(|a, b| a.name().cmp(b.name()));
        prometheus::TextEncoder::new().encode_to_string(&families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node's metrics and the host's are served together, with Polkadot's bucket labels.
    #[test]
    fn exposition_has_the_node_and_host_metrics() {
        let metrics = Metrics::new(1_700_000_000).expect("registers");
        let host = pvf_host::metrics::Metrics::new().expect("host metrics");
        metrics.attach_host(host.registry().clone());
        metrics.verdicts.inc();
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains("substrate_process_start_time_seconds 1700000000\n"),
            "{text}"
        );
        assert!(text.contains("pvf_test_validator_verdicts 1\n"), "{text}");
        assert!(
            text.contains("polkadot_pvf_preparation_time_bucket{le=\"1\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("polkadot_pvf_prepare_concluded 0\n"),
            "{text}"
        );
    }
}
