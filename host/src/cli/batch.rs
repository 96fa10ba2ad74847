//! `pvf batch FILE`: validates many requests in parallel through the host's queues, printing
//! one JSON line per result (in input order) and a progress line on stderr.
//!
//! The file holds one JSON object per line: `{"code": PATH, "params_hex": HEX, "kind":
//! "backing"|"approval"|"dispute", "timeout_ms": N}`; only `code` is required, and a
//! relative path is taken from the file's dir. Blank lines and lines starting with `#` are
//! skipped.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_common::validation::ValidationParams;
use pvf_host::{ExecuteArgs, ExitCode, Verdict};
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
    config.max_queued_executions = config.max_queued_executions.max(requests.len());
    let host = match super::start_host(config) {
        Ok(host) => host,
        Err(code) => return code,
    };
    if let Some(port) = args.prometheus_port {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match pvf_host::metrics_server::bind(addr, host.metrics().clone()).await {
            Ok((bound, serve)) => {
                eprintln!("metrics on http://{bound}/metrics");
                tokio::spawn(serve);
            }
            Err(e) => {
                eprintln!("error: cannot serve metrics on {addr}: {e}");
                return ExitCode::Inconclusive;
            }
        }
    }
    let total = requests.len();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (index, request) in requests.into_iter().enumerate() {
        let host = host.clone();
        tasks.spawn(async move { (index, host.execute(request).await) });
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
                serde_json::json!({"verdict": "Internal", "reason": e.to_string()})
            }
        };
        results[index] = Some(line);
        tally.progress(total, started.elapsed());
    }
    eprintln!();
    for (index, line) in results.into_iter().enumerate() {
        let mut line = line.unwrap_or_else(|| serde_json::json!({"verdict": "Internal"}));
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
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut codes: HashMap<PathBuf, Arc<Vec<u8>>> = HashMap::new();
    let mut requests = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("{}:{}: {e}", file.display(), number + 1);
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let code_path = value["code"]
            .as_str()
            .ok_or_else(|| at("missing \"code\"".into()))?;
        let code_path = base.join(code_path);
        let code = match codes.get(&code_path) {
            Some(code) => code.clone(),
            None => {
                let code = Arc::new(super::input::read_code(&code_path).map_err(at)?);
                codes.insert(code_path, code.clone());
                code
            }
        };
        let validation_params = match value["params_hex"].as_str() {
            Some(hex) => super::input::params_from_hex(hex).map_err(at)?,
            None => ValidationParams::default().encode(),
        };
        let kind = match value["kind"].as_str().unwrap_or("backing") {
            "backing" => ExecKind::Backing,
            "approval" => ExecKind::Approval,
            "dispute" => ExecKind::Dispute,
            other => return Err(at(format!("unknown kind {other:?}"))),
        };
        let timeout = value["timeout_ms"].as_u64().map(Duration::from_millis);
        requests.push(ExecuteArgs {
            code,
            executor_params: ExecutorParams::default(),
            validation_params: Arc::new(validation_params),
            kind,
            timeout,
        });
    }
    Ok(requests)
}
