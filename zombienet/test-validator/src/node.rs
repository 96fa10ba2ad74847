//! The node's life: serve metrics, prepare every code ahead of its candidates (as a validator
//! does when new code is announced), then validate the candidate stream round after round.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pvf_host::host::StartError;

use crate::candidates::{self, Code, LoadError};
use crate::cli::Cli;
use crate::endpoint;
use crate::metrics::Metrics;
use crate::pvf::Pvf;
use crate::report;

/// Why the node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The metrics port could not be bound.
    #[error("binding the metrics endpoint on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// What failed.
        source: std::io::Error,
    },
    /// The codes could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The host did not start.
    #[error("starting the pvf host: {0}")]
    Start(#[from] StartError),
}

/// Runs the node until it is killed, or for `--rounds`.
pub async fn run(cli: Cli, start_time: u64) -> Result<(), NodeError> {
    let metrics = Metrics::new(start_time)?;
    let bind_err = |source| NodeError::Bind {
        port: cli.prometheus_port,
        source,
    };
    let listener = endpoint::bind(cli.prometheus_port)
        .await
        .map_err(bind_err)?;
    let metrics_addr = listener.local_addr().map_err(bind_err)?;
    tokio::spawn(endpoint::serve(listener, metrics.clone()));

    let mut codes = candidates::guests()?;
    if let Some(dir) = &cli.corpus {
        codes.extend(candidates::corpus(dir)?);
    }
    let cache_dir = cache_dir(cli.base_path.as_deref());
    tracing::info!(
        metrics = %metrics_addr,
        cache = %cache_dir.display(),
        codes = codes.len(),
        "starting"
    );
    let pvf = Pvf::start(cache_dir, &metrics).await?;

    prepare_ahead(&pvf, &codes).await;
    let interval = Duration::from_millis(cli.round_interval_ms);
    for round in 0..cli.rounds.unwrap_or(u32::MAX) {
        for candidate in candidates::round(&codes, round) {
            let verdict = pvf.validate(&candidate.code.bytes, &candidate.params).await;
            metrics.verdicts.inc();
            report::log_verdict(&candidate, &verdict);
        }
        tokio::time::sleep(interval).await;
    }
    Ok(())
}

/// Prepares every code before the first candidate. A failure is logged, not fatal: the
/// candidates of that code then get the preparation error as their verdict.
async fn prepare_ahead(pvf: &Pvf, codes: &[Code]) {
    for code in codes {
        match pvf.prepare(&code.bytes).await {
            Ok(preparation) => tracing::info!(
                code = %code.name,
                cached = preparation.cached,
                ms = preparation.elapsed.as_millis() as u64,
                "prepared"
            ),
            Err(e) => tracing::warn!(code = %code.name, "preparation failed: {e}"),
        }
    }
}

/// The artifact cache: inside the node's base path, so that it survives a restart of the
/// node as a validator's does; else the pvf default.
fn cache_dir(base_path: Option<&Path>) -> PathBuf {
    base_path.map_or_else(pvf_host::config::default_cache_dir, |base| {
        base.join("pvf-artifacts")
    })
}
