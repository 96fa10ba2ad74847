//! `pvf-test-validator`: a stand-in validator node for zombienet networks.
//!
//! ```text
//! zombienet ──starts──▶ pvf-test-validator ──links──▶ host ──spawns──▶ prepare/execute workers
//!     └──scrapes /metrics, reads the log──┘
//! ```
//!
//! It runs no chain. It takes the flags zombienet gives a Substrate node, answers
//! `build-spec`, serves the metrics zombienet checks, and validates a stream of candidates
//! through the pvf host, logging each verdict with a digest so that tests can compare nodes.
//! Its workers die with it (they set a parent-death signal), so a killed node leaves nothing.

mod candidates;
mod chain_spec;
mod cli;
mod endpoint;
mod metrics;
mod node;
mod pvf;
mod report;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let start_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cli = match Cli::try_parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if let Some(Command::BuildSpec { .. }) = cli.command {
        println!("{:#}", chain_spec::raw_chain_spec());
        return ExitCode::SUCCESS;
    }
    init_logging();
    // One thread: workers get a parent-death signal tied to the thread that spawned them, and
    // the main thread lives exactly as long as the node.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(node::run(cli, start_time)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Plain lines on stderr (zombienet writes them to the node's log file, which tests search).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}
