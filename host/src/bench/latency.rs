//! Sequential latency, from the caller's side: one request at a time against warm workers,
//! each host request followed by the same call in-process, so noise hits both alike.
//!
//! Each is measured twice: back to back (as `ANCHORS.md` measures Polkadot's host), and with
//! [`SPACING`] between requests, as a validator's arrive. Back to back, a worker's work
//! after its answer (reaping the last job, forking the next) runs into the next request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::baseline::InProcess;
use super::guests::{self, Code};
use super::session::Session;
use super::stats::{median, quantile};
use super::{BenchError, Options};
use crate::verdict::Verdict;

/// The pause between requests in the spaced runs: far longer than a job's own wind-down.
pub const SPACING: Duration = Duration::from_millis(5);

/// Latencies of one code.
#[derive(Clone, Debug)]
pub struct Latency {
    /// The code's name.
    pub code: String,
    /// The pause between requests.
    pub gap: Duration,
    /// The artifact's size in bytes.
    pub artifact_bytes: u64,
    /// Through the host: median.
    pub p50: Duration,
    /// Through the host: 99th percentile.
    pub p99: Duration,
    /// What the host counted as execution (worker round trip), median: the rest of `p50`
    /// is the host's own queueing and messaging.
    pub execute_p50: Duration,
    /// In-process: median.
    pub baseline_p50: Duration,
    /// In-process: 99th percentile.
    pub baseline_p99: Duration,
    /// Requests measured.
    pub samples: usize,
}

/// Scenario 1: the adder guest, `gap` apart.
pub async fn tiny(
    options: &Options,
    session: &Session,
    gap: Duration,
) -> Result<Latency, BenchError> {
    let code = guests::adder()?;
    let rounds = if gap.is_zero() {
        options.pick(2000, 200)
    } else {
        options.pick(500, 50)
    };
    measure(session, &code, rounds, gap, |i| {
        let params = Arc::new(guests::adder_params(i, 1));
        (params, Expect::Valid(guests::adder_head(i, 1)))
    })
    .await
}

/// Scenario 2: each corpus runtime, on junk params that it rejects, `gap` apart.
pub async fn runtimes(
    options: &Options,
    session: &Session,
    corpus: &[Code],
    gap: Duration,
) -> Result<Vec<Latency>, BenchError> {
    let rounds = options.pick(200, 20);
    let params = Arc::new(guests::junk_params());
    let mut out = Vec::new();
    for code in corpus {
        let latency = measure(session, code, rounds, gap, |_| {
            (params.clone(), Expect::Invalid)
        })
        .await?;
        out.push(latency);
    }
    Ok(out)
}

/// What a run must answer for its timing to count.
enum Expect {
    /// Valid, with this head.
    Valid(Vec<u8>),
    /// Invalid (the host), an error (in-process).
    Invalid,
}

async fn measure(
    session: &Session,
    code: &Code,
    rounds: usize,
    gap: Duration,
    request: impl Fn(u64) -> (Arc<Vec<u8>>, Expect),
) -> Result<Latency, BenchError> {
    let artifact = session.precheck(code).await?;
    let baseline = InProcess::load(&code.bytes, &Default::default())?;
    // Warm up: every worker loads the artifact and forks its next job ahead of time.
    let warmup = 10 * super::session::cores();
    let (mut host, mut execute, mut local) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..(warmup + rounds) as u64 {
        let (params, expect) = request(i);
        let (execution, elapsed) = session.execute(code, params.clone()).await?;
        check_host(&code.name, &execution.verdict, &expect)?;
        let start = Instant::now();
        let outcome = baseline.validate(&params);
        let local_elapsed = start.elapsed();
        check_local(&code.name, &outcome, &expect)?;
        if i as usize >= warmup {
            host.push(elapsed);
            execute.push(execution.execute_time);
            local.push(local_elapsed);
        }
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    Ok(Latency {
        code: code.name.clone(),
        gap,
        artifact_bytes: artifact.size,
        p50: median(&host),
        p99: quantile(&host, 0.99),
        execute_p50: median(&execute),
        baseline_p50: median(&local),
        baseline_p99: quantile(&local, 0.99),
        samples: rounds,
    })
}

fn check_host(name: &str, verdict: &Verdict, expect: &Expect) -> Result<(), BenchError> {
    let ok = match (verdict, expect) {
        (Verdict::Valid(result), Expect::Valid(head)) => &result.head_data == head,
        (Verdict::Invalid(_), Expect::Invalid) => true,
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| BenchError::Unexpected {
        scenario: "latency",
        outcome: format!("{name} through the host: {verdict}"),
    })
}

fn check_local(
    name: &str,
    outcome: &Result<pvf_common::validation::ValidationResult, String>,
    expect: &Expect,
) -> Result<(), BenchError> {
    let ok = match (outcome, expect) {
        (Ok(result), Expect::Valid(head)) => &result.head_data == head,
        (Err(_), Expect::Invalid) => true,
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| BenchError::Unexpected {
        scenario: "latency",
        outcome: format!("{name} in-process: {outcome:?}"),
    })
}
