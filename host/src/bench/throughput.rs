//! Throughput: a burst of requests submitted at once, as many execute workers as cores,
//! against the same work on as many threads in-process. Host and in-process bursts
//! alternate, round by round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pvf_common::engine::HOST_STACK_MARGIN;
use pvf_common::params::ExecutorParams;

use super::baseline::InProcess;
use super::guests::{self, Code};
use super::session::{self, Session, cores};
use super::stats::{median_f64, ms};
use super::{BenchError, Options};
use crate::verdict::Verdict;

/// Jobs per second through the host and in-process.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Through the host, median over rounds.
    pub jobs_per_s: f64,
    /// In-process on `workers` threads, median over rounds.
    pub baseline_jobs_per_s: f64,
    /// Execute workers (and baseline threads).
    pub workers: usize,
    /// Requests per burst.
    pub jobs: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Wall time of one calibrated in-process job (the CPU scenario only).
    pub job_ms: Option<f64>,
}

impl Throughput {
    /// Host over in-process.
    pub fn ratio(&self) -> f64 {
        self.jobs_per_s / self.baseline_jobs_per_s.max(f64::MIN_POSITIVE)
    }

    /// What the host adds to each job, per worker: the difference of the two per-job times.
    pub fn overhead_ms(&self) -> f64 {
        let per_job = |rate: f64| self.workers as f64 * 1e3 / rate.max(f64::MIN_POSITIVE);
        per_job(self.jobs_per_s) - per_job(self.baseline_jobs_per_s)
    }
}

/// Scenario 3: many adder requests at once.
pub async fn tiny(options: &Options, session: &Session) -> Result<Throughput, BenchError> {
    let code = guests::adder()?;
    let jobs = options.pick(400, 100);
    let requests: Vec<(Arc<Vec<u8>>, Vec<u8>)> = (0..jobs as u64)
        .map(|i| {
            (
                Arc::new(guests::adder_params(i, 7)),
                guests::adder_head(i, 7),
            )
        })
        .collect();
    bursts(options, session, &code, &requests, None).await
}

/// Scenario 4: many CPU-bound requests at once, each calibrated to about 50 ms in-process.
pub async fn cpu(options: &Options, session: &Session) -> Result<Throughput, BenchError> {
    let code = guests::cpu_burn()?;
    let baseline = InProcess::load(&code.bytes, &ExecutorParams::default())?;
    let (iterations, job) = calibrate(&baseline, Duration::from_millis(50))?;
    let params = Arc::new(guests::cpu_burn_params(iterations));
    let head = baseline
        .validate(&params)
        .map_err(|outcome| BenchError::Unexpected {
            scenario: "cpu_throughput",
            outcome,
        })?
        .head_data;
    let jobs = cores() * options.pick(8, 2);
    let requests = vec![(params, head); jobs];
    bursts(options, session, &code, &requests, Some(ms(job))).await
}

/// Finds the iteration count that takes about `target` in-process.
fn calibrate(baseline: &InProcess, target: Duration) -> Result<(u64, Duration), BenchError> {
    let mut iterations: u64 = 1_000_000;
    let mut took = Duration::ZERO;
    for _ in 0..3 {
        let start = Instant::now();
        baseline
            .validate(&guests::cpu_burn_params(iterations))
            .map_err(|outcome| BenchError::Unexpected {
                scenario: "cpu_throughput calibration",
                outcome,
            })?;
        took = start.elapsed().max(Duration::from_micros(1));
        iterations = ((iterations as f64) * target.as_secs_f64() / took.as_secs_f64()) as u64;
    }
    Ok((iterations.max(1), took))
}

/// Alternating bursts: every request through the host at once, then the same requests on
/// `cores()` threads in-process. Each request carries the head it must produce.
async fn bursts(
    options: &Options,
    session: &Session,
    code: &Code,
    requests: &[(Arc<Vec<u8>>, Vec<u8>)],
    job_ms: Option<f64>,
) -> Result<Throughput, BenchError> {
    session.precheck(code).await?;
    let baseline = InProcess::load(&code.bytes, &ExecutorParams::default())?;
    let rounds = options.pick(3, 1);
    let (mut host, mut local) = (Vec::new(), Vec::new());
    // One unmeasured burst first: every worker loads the artifact.
    for round in 0..=rounds {
        let rate = host_burst(session, code, requests).await?;
        let local_rate = local_burst(&baseline, requests)?;
        if round > 0 {
            host.push(rate);
            local.push(local_rate);
        }
    }
    Ok(Throughput {
        jobs_per_s: median_f64(&host),
        baseline_jobs_per_s: median_f64(&local),
        workers: cores(),
        jobs: requests.len(),
        rounds,
        job_ms,
    })
}

async fn host_burst(
    session: &Session,
    code: &Code,
    requests: &[(Arc<Vec<u8>>, Vec<u8>)],
) -> Result<f64, BenchError> {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (params, head) in requests {
        let (host, code, params, head) = (
            session.host.clone(),
            code.clone(),
            params.clone(),
            head.clone(),
        );
        set.spawn(async move {
            let execution = session::execute(&host, &code, params).await?;
            match &execution.verdict {
                Verdict::Valid(result) if result.head_data == head => Ok(()),
                other => Err(BenchError::Unexpected {
                    scenario: "throughput",
                    outcome: format!("{} through the host: {other}", code.name),
                }),
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| BenchError::Internal(format!("a request task failed: {e}")))??;
    }
    Ok(requests.len() as f64 / start.elapsed().as_secs_f64())
}

/// The same requests on `cores()` threads, each with a stack as large as the execute
/// thread's, taking the next request from a shared counter.
fn local_burst(
    baseline: &InProcess,
    requests: &[(Arc<Vec<u8>>, Vec<u8>)],
) -> Result<f64, BenchError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stack = ExecutorParams::default().stack_native_max as usize + HOST_STACK_MARGIN;
    let start = Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores())
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(stack)
                    .spawn_scoped(scope, || {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((params, head)) = requests.get(i) else {
                                return Ok(());
                            };
                            match baseline.validate(params) {
                                Ok(result) if &result.head_data == head => {}
                                other => {
                                    return Err(BenchError::Unexpected {
                                        scenario: "throughput",
                                        outcome: format!("in-process: {other:?}"),
                                    });
                                }
                            }
                        }
                    })
            })
            .collect::<Result<_, _>>()?;
        for thread in threads {
            thread
                .join()
                .map_err(|_| BenchError::Baseline("a baseline thread panicked".into()))??;
        }
        Ok::<_, BenchError>(())
    })?;
    Ok(requests.len() as f64 / start.elapsed().as_secs_f64())
}
