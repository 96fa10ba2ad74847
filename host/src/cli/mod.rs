//! `pvf` subcommands, one file each, sharing the global options and input loading.

mod batch;
mod bench;
mod cache;
mod input;
mod inspect;
mod prepare;
mod security;
mod serve;
mod soak;
mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pvf_common::params::ExecKind;
use pvf_common::sandbox::SandboxMode;
use pvf_host::{Config, ExitCode, ValidationHost};

const EXIT_CODES: &str = "\
Exit codes (the same for every command):
  0  ok, or Valid
  1  Invalid (for `prepare`: the code is invalid; for `cache verify`: a bad file was found)
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
    Batch(batch::Args),
    Bench(bench::Args),
    Serve(serve::Args),
    Soak(soak::Args),
    Cache(cache::Args),
    Inspect(inspect::Args),
    Security(security::Args),
}

/// The kind of validation, as the CLI spells it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    Backing,
    Approval,
    Dispute,
}

impl From<Kind> for ExecKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Backing => ExecKind::Backing,
            Kind::Approval => ExecKind::Approval,
            Kind::Dispute => ExecKind::Dispute,
        }
    }
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
    let command = match cli.command {
        Command::Cache(args) => return cache::run(config, args),
        Command::Inspect(args) => return inspect::run(args),
        Command::Bench(args) => return bench::run(config, args),
        Command::Soak(args) => return soak::run(config, args),
        other => other,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Inconclusive;
        }
    };
    runtime.block_on(async {
        match command {
            Command::Validate(args) => validate::run(config, args).await,
            Command::Prepare(args) => prepare::run(config, args).await,
            Command::Batch(args) => batch::run(config, args).await,
            Command::Serve(args) => serve::run(config, args).await,
            Command::Security(args) => security::run(config, args).await,
            Command::Cache(_) | Command::Inspect(_) | Command::Bench(_) | Command::Soak(_) => {
                ExitCode::Usage
            }
        }
    })
}

/// Starts the host and spawns its future on the current runtime. In secure mode the host
/// first proves the sandbox works here, and refuses to start if it does not.
async fn start_host(config: Config) -> Result<ValidationHost, ExitCode> {
    match pvf_host::start(config).await {
        Ok((host, future)) => {
            tokio::spawn(future);
            Ok(host)
        }
        Err(e) => {
            eprintln!("error: cannot start the host: {e}");
            if matches!(e, pvf_host::StartError::Insecure(_)) {
                eprintln!(
                    "run `pvf security` for details; --insecure runs without the sandbox (never on a validator)"
                );
            }
            Err(ExitCode::Inconclusive)
        }
    }
}

/// Starts the host, and serves its metrics on 127.0.0.1:`port` when a port is given: the
/// long-running commands' start.
async fn start_host_serving_metrics(
    config: Config,
    port: Option<u16>,
) -> Result<ValidationHost, ExitCode> {
    let host = start_host(config).await?;
    if let Some(port) = port {
        serve_metrics(&host, port).await?;
    }
    Ok(host)
}

/// Serves the host's metrics on 127.0.0.1:`port` for as long as the command runs.
async fn serve_metrics(host: &ValidationHost, port: u16) -> Result<(), ExitCode> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match pvf_host::metrics_server::bind(addr, host.metrics().clone()).await {
        Ok((bound, serve)) => {
            eprintln!("metrics on http://{bound}/metrics");
            tokio::spawn(serve);
            Ok(())
        }
        Err(e) => {
            eprintln!("error: cannot serve metrics on {addr}: {e}");
            Err(ExitCode::Inconclusive)
        }
    }
}
