//! `pvf security`: which sandbox layers this machine supports, and a self-test inside them.

use pvf_host::ExitCode;
use pvf_host::security::self_test;

/// Show the sandbox layers each worker applies on this machine, and run a prepare and an
/// execute inside them. Exits 3 if a layer is missing or the self-test fails.
#[derive(clap::Args)]
pub struct Args {}

pub async fn run(config: pvf_host::Config, _args: Args) -> ExitCode {
    pvf_host::cgroup::remove_stale();
    let report = self_test(&config).await;
    for worker in &report.workers {
        println!("{:?} worker", worker.kind);
        match &worker.status {
            Some(status) => {
                for layer in &status.layers {
                    let yes = if layer.active { "yes" } else { "NO " };
                    println!("  {:<11} {yes}  {}", layer.layer.name(), layer.detail);
                }
            }
            None => println!("  (no report: the worker did not start)"),
        }
        match &worker.self_test {
            Ok(done) => println!("  self-test   ok   {done}"),
            Err(why) => println!("  self-test   FAIL {why}"),
        }
    }
    if report.secure() {
        println!("secure: every layer is active and the self-test passed");
        ExitCode::Ok
    } else {
        println!(
            "NOT secure: see the layers marked NO above (or run with --insecure, never on a validator)"
        );
        ExitCode::Inconclusive
    }
}
