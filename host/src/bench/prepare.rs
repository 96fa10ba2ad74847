//! Preparation: each code prepared by a fresh host on a fresh cache (spawn, sandboxed job,
//! artifact written and moved into the cache), against the prepare worker's pipeline called
//! in-process (decompress, prevalidate, instrument, compile). Host and in-process runs
//! alternate.

use std::time::{Duration, Instant};

use pvf_common::params::{ExecutorParams, PrepKind};

use super::guests::{self, Code};
use super::session::Session;
use super::stats::median;
use super::{BenchError, Options};

/// Preparation times of one code.
#[derive(Clone, Debug)]
pub struct Prepare {
    /// The code's name.
    pub code: String,
    /// Through the host, from `precheck` to its answer; median.
    pub host: Duration,
    /// What the host counted as preparation (queue, worker, job); median.
    pub host_prepare: Duration,
    /// In-process; median.
    pub baseline: Duration,
    /// The artifact's size in bytes.
    pub artifact_bytes: u64,
    /// Rounds measured.
    pub rounds: usize,
}

impl Prepare {
    /// Host over in-process.
    pub fn ratio(&self) -> f64 {
        self.host.as_secs_f64() / self.baseline.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Scenario 5: the adder guest and each corpus runtime.
pub async fn run(options: &Options, corpus: &[Code]) -> Result<Vec<Prepare>, BenchError> {
    let rounds = options.pick(2, 1);
    let mut codes = vec![guests::adder()?];
    codes.extend(corpus.iter().cloned());
    let mut out = Vec::new();
    for code in &codes {
        let (mut host, mut host_prepare, mut local) = (Vec::new(), Vec::new(), Vec::new());
        let mut artifact_bytes = 0;
        for _ in 0..rounds {
            let session = Session::start(options).await?;
            let start = Instant::now();
            let info = session.precheck(code).await?;
            host.push(start.elapsed());
            host_prepare.push(info.prepare_time);
            artifact_bytes = info.size;
            session.stop().await;

            let start = Instant::now();
            pvf_prepare_worker::compile(
                &code.bytes,
                &ExecutorParams::default(),
                PrepKind::Precheck,
            )
            .map_err(BenchError::Compile)?;
            local.push(start.elapsed());
        }
        tracing::info!(code = %code.name, "prepare measured");
        out.push(Prepare {
            code: code.name.clone(),
            host: median(&host),
            host_prepare: median(&host_prepare),
            baseline: median(&local),
            artifact_bytes,
            rounds,
        });
    }
    Ok(out)
}
