//! `pvf serve`: a long-running host fed from stdin. Each line is a request (as `batch` reads
//! them, relative paths from the current dir, plus an optional `"id"` echoed back); each
//! result is printed as one JSON line when it is ready, so answers may come out of order.
//! Ends when stdin closes and every request is answered.

use std::path::Path;

use pvf_host::ExitCode;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Serve validation requests from stdin until it closes.
#[derive(clap::Args)]
pub struct Args {
    /// Serve Prometheus metrics on this port (127.0.0.1).
    #[arg(long, value_name = "PORT")]
    prometheus_port: Option<u16>,
    /// Execute workers [default: 2].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

pub async fn run(mut config: pvf_host::Config, args: Args) -> ExitCode {
    if let Some(workers) = args.workers {
        config.execute_workers_max = workers;
    }
    let host = match super::start_host_serving_metrics(config, args.prometheus_port).await {
        Ok(host) => host,
        Err(code) => return code,
    };
    let mut codes = super::input::CodeCache::default();
    let mut lines = stdin_lines();
    let mut tasks = JoinSet::new();
    let mut number = 0u64;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                number += 1;
                let line = match line {
                    Ok(line) => line,
                    Err(e) => {
                        println!("{}", serde_json::json!({"id": number, "error": e}));
                        continue;
                    }
                };
                let id = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or_else(|| serde_json::json!(number));
                match codes.parse_request(&line, Path::new(".")) {
                    Ok(Some(request)) => {
                        let host = host.clone();
                        tasks.spawn(async move { (id, host.execute(request).await) });
                    }
                    Ok(None) => {}
                    Err(e) => println!("{}", serde_json::json!({"id": id, "error": e})),
                }
            }
            Some(Ok((id, result))) = tasks.join_next() => print_result(id, result),
        }
    }
    while let Some(Ok((id, result))) = tasks.join_next().await {
        print_result(id, result);
    }
    ExitCode::Ok
}

/// Lines of stdin, read on a blocking thread (stdin has no async reader in std), each
/// bounded by [`super::input::MAX_LINE_LEN`].
fn stdin_lines() -> mpsc::Receiver<Result<String, String>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        let mut stdin = std::io::stdin().lock();
        while let Ok(Some(line)) = super::input::read_line(&mut stdin) {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn print_result(id: serde_json::Value, result: Result<pvf_host::Execution, pvf_host::HostError>) {
    let mut line = match result {
        Ok(execution) => super::validate::json(&execution),
        Err(e) => serde_json::json!({"error": e.to_string()}),
    };
    line["id"] = id;
    println!("{line}");
}
