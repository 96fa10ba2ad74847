//! Time to the first verdict after a host starts, cold and warm, over the corpus runtimes.
//!
//! - cold: an empty cache; prepare every corpus runtime, then execute one;
//! - warm: a restart on that cache; execute the same one (nothing is prepared).
//!
//! Both runs happen here, side by side, several rounds each; the output is the median of
//! each and their ratio, plus a `restart` object in the `pvf bench --json` schema.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_common::validation::ValidationParams;
use pvf_host::{ExecuteArgs, Execution, ValidationHost};
use pvf_tests::{host_config, start_host_task, stop_host};

const ROUNDS: usize = 3;

async fn first_verdict(host: &ValidationHost, code: &Arc<Vec<u8>>) -> Execution {
    host.execute(ExecuteArgs {
        code: code.clone(),
        executor_params: ExecutorParams::default(),
        validation_params: Arc::new(ValidationParams::default().encode()),
        kind: ExecKind::Approval,
        timeout: None,
    })
    .await
    .expect("the host takes the request")
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let Some(corpus) = pvf_tests::corpus() else {
        return;
    };
    let codes: Vec<Arc<Vec<u8>>> = corpus
        .iter()
        .map(|path| Arc::new(std::fs::read(path).expect("corpus file")))
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let mut verdict = String::new();
    for round in 0..ROUNDS {
        let cache = tempfile::tempdir().expect("temp dir");
        runtime.block_on(async {
            let start = Instant::now();
            let (host, task) = start_host_task(host_config(cache.path())).await;
            let mut prepares = tokio::task::JoinSet::new();
            for code in &codes {
                let (host, code) = (host.clone(), code.clone());
                prepares.spawn(async move { host.precheck(code, ExecutorParams::default()).await });
            }
            while let Some(joined) = prepares.join_next().await {
                joined.expect("task").expect("corpus runtimes prepare");
            }
            let out = first_verdict(&host, &codes[0]).await;
            cold.push(start.elapsed());
            verdict = out.verdict.to_string();
            stop_host(host, task).await;

            let start = Instant::now();
            let (host, task) = start_host_task(host_config(cache.path())).await;
            let out = first_verdict(&host, &codes[0]).await;
            warm.push(start.elapsed());
            assert_eq!(
                host.metrics().preparations(),
                0,
                "a warm start prepares nothing"
            );
            stop_host(host, task).await;
            eprintln!(
                "round {round}: cold {:.0} ms, warm {:.0} ms ({})",
                cold[round].as_secs_f64() * 1e3,
                warm[round].as_secs_f64() * 1e3,
                out.verdict
            );
        });
    }
    let (cold, warm) = (median(cold), median(warm));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "runtimes: {}",
        corpus
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("first verdict (on {}): {verdict}", corpus[0].display());
    println!(
        "cold start to first verdict: {:.0} ms (median of {ROUNDS})",
        ms(cold)
    );
    println!(
        "warm start to first verdict: {:.0} ms (median of {ROUNDS})",
        ms(warm)
    );
    println!(
        "{}",
        serde_json_restart(
            ms(cold),
            ms(warm),
            ms(warm) / ms(cold).max(f64::MIN_POSITIVE)
        )
    );
}

fn serde_json_restart(cold_ms: f64, warm_ms: f64, ratio: f64) -> String {
    format!(
        "{{\"restart\": {{\"cold_ms\": {cold_ms:.1}, \"warm_ms\": {warm_ms:.1}, \"ratio\": {ratio:.1}}}}}"
    )
}
