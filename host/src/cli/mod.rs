//! `pvf` subcommands, one file each, sharing the global options and input loading.

mod input;
mod inspect;
mod prepare;
mod security;
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
    Security(security::Args),
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
    // In insecure mode every log line of the run carries the mark.
    let span = if cli.insecure {
        config.sandbox = SandboxMode::Disabled;
        tracing::warn_span!("INSECURE")
    } else {
        tracing::Span::none()
    };
    let _entered = span.enter();
    if cli.insecure {
        tracing::warn!("--insecure: workers run WITHOUT the sandbox; never do this on a validator");
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
            Command::Security(args) => security::run(config, args).await,
            Command::Inspect(args) => inspect::run(args),
        }
    })
}

/// Starts the host. In secure mode it first proves the sandbox works here (a real prepare
/// and execute inside every layer) and refuses to start if it does not.
async fn start_host(config: Config) -> Result<pvf_host::Host, ExitCode> {
    if config.sandbox == SandboxMode::Enforce {
        let report = pvf_host::security::self_test(&config).await;
        if !report.secure() {
            eprintln!("error: refusing to start: the sandbox does not work on this machine");
            for worker in &report.workers {
                if let Some(status) = &worker.status {
                    for layer in status.failures() {
                        eprintln!(
                            "  {:?} worker, {}: {}",
                            worker.kind,
                            layer.layer.name(),
                            layer.detail
                        );
                    }
                }
                if let Err(why) = &worker.self_test {
                    eprintln!("  {:?} worker self-test: {why}", worker.kind);
                }
            }
            eprintln!(
                "run `pvf security` for details; --insecure runs without the sandbox (never on a validator)"
            );
            return Err(ExitCode::Inconclusive);
        }
    }
    pvf_host::Host::start(config).map_err(|e| {
        eprintln!("error: cannot start the host: {e}");
        ExitCode::Inconclusive
    })
}
