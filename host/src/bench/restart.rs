//! Restart: time from starting a host to its first verdict, on an empty cache (every code
//! prepared first, as a node that lost its cache must) and again on the cache that run left.
//! Both starts include the secure-mode self-test, which every start pays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::guests::{self, Code};
use super::session::Session;
use super::stats::median;
use super::{BenchError, Options};
use crate::verdict::Verdict;

/// Cold and warm start to the first verdict.
#[derive(Clone, Debug)]
pub struct Restart {
    /// The code whose verdict is awaited.
    pub code: String,
    /// Codes in the cache (prepared by the cold start).
    pub codes: usize,
    /// Empty cache; median.
    pub cold: Duration,
    /// Warm cache; median.
    pub warm: Duration,
    /// Rounds measured.
    pub rounds: usize,
}

impl Restart {
    /// Warm over cold (the target is a small number).
    pub fn ratio(&self) -> f64 {
        self.warm.as_secs_f64() / self.cold.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Scenario 6: the corpus runtimes (or, without a corpus, the adder guest).
pub async fn run(options: &Options, corpus: &[Code]) -> Result<Restart, BenchError> {
    let codes = if corpus.is_empty() {
        vec![guests::adder()?]
    } else {
        corpus.to_vec()
    };
    let first = &codes[0];
    let params = Arc::new(if corpus.is_empty() {
        guests::adder_params(1, 2)
    } else {
        guests::junk_params()
    });
    let rounds = options.pick(2, 1);
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        let session = Session::start(options).await?;
        let mut prepares = tokio::task::JoinSet::new();
        for code in &codes {
            let (host, code) = (session.host.clone(), code.clone());
            prepares.spawn(async move {
                host.precheck(code.bytes.clone(), Default::default())
                    .await
                    .map_err(|error| BenchError::Precheck {
                        code: code.name.clone(),
                        error,
                    })
            });
        }
        while let Some(joined) = prepares.join_next().await {
            joined.map_err(|e| BenchError::Internal(format!("a precheck task failed: {e}")))??;
        }
        let (execution, _) = session.execute(first, params.clone()).await?;
        cold.push(start.elapsed());
        check(first, &execution.verdict)?;
        let dir = session.stop_keeping_cache().await;

        let start = Instant::now();
        let session = Session::start_in(options, dir).await?;
        let (execution, _) = session.execute(first, params.clone()).await?;
        warm.push(start.elapsed());
        check(first, &execution.verdict)?;
        if session.host.metrics().preparations() != 0 {
            return Err(BenchError::Unexpected {
                scenario: "restart",
                outcome: "the warm start prepared again".into(),
            });
        }
        session.stop().await;
    }
    Ok(Restart {
        code: first.name.clone(),
        codes: codes.len(),
        cold: median(&cold),
        warm: median(&warm),
        rounds,
    })
}

/// A verdict about the candidate (Valid or Invalid), not "could not tell".
fn check(code: &Code, verdict: &Verdict) -> Result<(), BenchError> {
    match verdict {
        Verdict::Valid(_) | Verdict::Invalid(_) => Ok(()),
        other => Err(BenchError::Unexpected {
            scenario: "restart",
            outcome: format!("{}: {other}", code.name),
        }),
    }
}
