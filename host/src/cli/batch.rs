//! `pvf batch FILE`: validates many requests in parallel through the host's queues, printing
//! one JSON line per result (in input order) and a progress line on stderr.
//!
//! The file holds one request per line, as [`super::input::CodeCache::parse_request`]
//! reads them; a relative code path is taken from the file's dir.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvf_host::{ExecuteArgs, ExitCode, Reason, Verdict};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Validate many requests from a file in parallel.
#[derive(clap::Args)]
pub struct Args {
    /// The requests, one JSON object per line.
    file: PathBuf,
    /// Execute workers [default: 2].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Serve Prometheus metrics on this port (127.0.0.1) while the batch runs.
    #[arg(long, value_name = "PORT")]
    prometheus_port: Option<u16>,
}

pub async fn run(mut config: pvf_host::Config, args: Args) -> ExitCode {
    let requests = match load(&args.file) {
        Ok(requests) => requests,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    if let Some(workers) = args.workers {
        config.execute_workers_max = workers;
    }
    // The file is fed to the host as fast as it takes requests: none is late.
    config.backing_deadline = None;
    // At most a full queue at once: the queue is sized for a validator's load, and scans its
    // waiting jobs on every scheduling decision.
    let feed = Arc::new(Semaphore::new(config.max_queued_executions));
    let host = match super::start_host_serving_metrics(config, args.prometheus_port).await {
        Ok(host) => host,
        Err(code) => return code,
    };
    let total = requests.len();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (index, request) in requests.into_iter().enumerate() {
        let host = host.clone();
        let feed = feed.clone();
        tasks.spawn(async move {
            let _queued = feed.acquire_owned().await;
            (index, host.execute(request).await)
        });
    }
    let mut results = vec![None; total];
    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, result)) = joined else {
            continue;
        };
        let line = match result {
            Ok(execution) => {
                tally.count(&execution.verdict);
                super::validate::json(&execution)
            }
            Err(e) => {
                tally.other += 1;
                super::validate::verdict_json(&Verdict::Internal(Reason::Local(e.to_string())))
            }
        };
        results[index] = Some(line);
        tally.progress(total, started.elapsed());
    }
    eprintln!();
    for (index, line) in results.into_iter().enumerate() {
        let mut line = line.unwrap_or_else(|| {
            let lost = Reason::Local("the request's task ended without an answer".into());
            super::validate::verdict_json(&Verdict::Internal(lost))
        });
        line["index"] = serde_json::json!(index);
        println!("{line}");
    }
    tally.exit_code()
}

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    other: usize,
}

impl Tally {
    fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Valid(_) => self.valid += 1,
            Verdict::Invalid(_) => self.invalid += 1,
            Verdict::PossiblyInvalid(_) | Verdict::Internal(_) => self.other += 1,
        }
    }

    fn progress(&self, total: usize, elapsed: Duration) {
        let done = self.valid + self.invalid + self.other;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{done}/{total}] valid {} invalid {} inconclusive {} ({:.1} s)",
            self.valid,
            self.invalid,
            self.other,
            elapsed.as_secs_f64()
        );
        let _ = err.flush();
    }

    /// Inconclusive beats Invalid beats Valid.
    fn exit_code(&self) -> ExitCode {
        if self.other > 0 {
            ExitCode::Inconclusive
        } else if self.invalid > 0 {
            ExitCode::Invalid
        } else {
            ExitCode::Ok
        }
    }
}

/// Reads and parses the batch file, loading each distinct code file once.
fn load(file: &Path) -> Result<Vec<ExecuteArgs>, String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", file.display());
    let mut input = std::io::BufReader::new(std::fs::File::open(file).map_err(cannot)?);
    let base = file.parent().unwrap_or(Path::new("."));
    let mut codes = super::input::CodeCache::default();
    let mut requests = Vec::new();
    let mut number = 0;
    while let Some(line) = super::input::read_line(&mut input).map_err(cannot)? {
        number += 1;
        let at = |e: String| format!("{}:{number}: {e}", file.display());
        if let Some(request) = codes.parse_request(&line.map_err(at)?, base).map_err(at)? {
            requests.push(request);
        }
    }
    Ok(requests)
}
