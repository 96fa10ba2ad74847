//! `pvf bench`: every scenario through the real host API, workers and sandbox, side by side
//! with the in-process floor ([`baseline`]), interleaved in one run so that a loaded machine
//! slows both alike. An operator runs it on the machine that will validate; the numbers are
//! only comparable within one run.
//!
//! One file per concern: [`stats`] (quantiles), [`baseline`] (in-process runs), [`guests`]
//! (the bench's guests and their params), [`session`] (a host on a scratch cache),
//! [`latency`], [`throughput`], [`prepare`], [`restart`] (the scenarios), [`report`] (the
//! table and the JSON schema of DESIGN.md).

pub mod baseline;
pub mod guests;
pub mod latency;
pub mod prepare;
pub mod report;
pub mod restart;
pub mod session;
pub mod stats;
pub mod throughput;

use std::path::PathBuf;

use pvf_common::engine::HOST_STACK_MARGIN;
use pvf_common::error::PrepareError;
use pvf_common::params::ExecutorParams;

use crate::config::Config;
use crate::host::{HostError, PrecheckError, StartError};
use report::Report;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The host configuration to start from (worker binaries, sandbox mode); each scenario
    /// gets its own scratch cache dir and sets the worker counts it needs.
    pub config: Config,
    /// Where the real parachain runtimes (`*.code`) are; `None` or a missing dir skips the
    /// scenarios that need them.
    pub corpus: Option<PathBuf>,
    /// Fewer rounds and requests: a smoke run, not a measurement.
    pub quick: bool,
}

impl Options {
    /// `full` in a normal run, `quick` with `--quick`.
    fn pick(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

/// Why the bench could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A host did not start (e.g. the sandbox does not work here).
    #[error(transparent)]
    Start(#[from] StartError),
    /// A host did not take a request.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The host could not prepare a bench guest or corpus runtime.
    #[error("preparing {code}: {error}")]
    Precheck {
        /// Which code.
        code: String,
        /// Why.
        error: PrecheckError,
    },
    /// The in-process pipeline could not compile a code.
    #[error("in-process compile: {0}")]
    Compile(PrepareError),
    /// The in-process baseline failed otherwise.
    #[error("in-process baseline: {0}")]
    Baseline(String),
    /// The bench's own machinery failed (a task or thread died, an embedded guest is bad).
    #[error("bench: {0}")]
    Internal(String),
    /// A run gave a different answer than the scenario expects, so its timing means nothing.
    #[error("{scenario}: unexpected outcome: {outcome}")]
    Unexpected {
        /// Which scenario.
        scenario: &'static str,
        /// What came back.
        outcome: String,
    },
    /// Scratch directories, the corpus, or the async runtime.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs every scenario and returns the report. Runs on a thread of its own, whose stack
/// holds the deepest Wasm stack the executor parameters allow, because the baselines call
/// guests on the calling thread, as the execute job does on its execute thread.
pub fn run(options: Options) -> Result<Report, BenchError> {
    let stack = ExecutorParams::default().stack_native_max as usize + HOST_STACK_MARGIN;
    std::thread::Builder::new()
        .name("bench".into())
        .stack_size(stack)
        .spawn(move || {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(run_scenarios(&options))
        })?
        .join()
        .map_err(|_| BenchError::Internal("the bench thread panicked".into()))?
}

async fn run_scenarios(options: &Options) -> Result<Report, BenchError> {
    let corpus = guests::corpus(options.corpus.as_deref())?;
    let mut report = Report::new(options, &corpus);
    tracing::info!("bench: prepare");
    report.prepare = prepare::run(options, &corpus).await?;
    tracing::info!("bench: latency");
    let session = session::Session::start(options).await?;
    let (back_to_back, spaced) = (std::time::Duration::ZERO, latency::SPACING);
    report.tiny_latency = Some(latency::tiny(options, &session, back_to_back).await?);
    report.runtime_latency = latency::runtimes(options, &session, &corpus, back_to_back).await?;
    report.tiny_latency_spaced = Some(latency::tiny(options, &session, spaced).await?);
    report.runtime_latency_spaced = latency::runtimes(options, &session, &corpus, spaced).await?;
    tracing::info!("bench: throughput");
    report.tiny_throughput = Some(throughput::tiny(options, &session).await?);
    report.cpu_throughput = Some(throughput::cpu(options, &session).await?);
    session.stop().await;
    tracing::info!("bench: restart");
    report.restart = Some(restart::run(options, &corpus).await?);
    report.finish();
    Ok(report)
}
