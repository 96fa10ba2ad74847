//! `pvf` subcommands, one file each, sharing the global options and input loading.

mod input;
mod inspect;
mod prepare;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pvf_common::sandbox::SandboxMode;
use pvf_host::{Config, ExitCode};

const EXIT_CODES: &str = "\
Exit codes (the same for every command):
  0  ok, or Valid
  1  Invalid (for `prepare`: the code is invalid)
  2  bad usage, or an unreadable or unparsable input file (including a .wat syntax error)
  3  PossiblyInvalid or Internal: this machine could not judge, or cannot provide what was asked";

/// Validate untrusted WebAssembly (parachain validation functions) in sandboxed workers.
#[derive(Parser)]
#[command(name = "pvf", version, after_help = EXIT_CODES)]
struct Cli {
    /// Where prepared artifacts are kept [default: ~/.cache/pvf].
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Run workers without the sandbox. Never do this on a validator.
    #[arg(long, global = true)]
    insecure: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Validate(validate::Args),
    Prepare(prepare::Args),
    Inspect(inspect::Args),
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
        }
    };
    let mut config = Config::new(
        cli.cache_dir
            .unwrap_or_else(pvf_host::config::default_cache_dir),
    );
    if cli.insecure {
        tracing::warn!("--insecure: workers run WITHOUT the sandbox");
        config.sandbox = SandboxMode::Disabled;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Inconclusive;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Validate(args) => validate::run(config, args).await,
            Command::Prepare(args) => prepare::run(config, args).await,
            Command::Inspect(args) => inspect::run(args),
        }
    })
}

/// Reports a failure to start the host.
fn start_failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: cannot start the host: {e}");
    ExitCode::Inconclusive
}
