//! `pvf prepare CODE`: prepare only, and report the artifact.

use std::path::PathBuf;

use pvf_common::params::{ExecutorParams, PrepKind};
use pvf_host::{ExitCode, Verdict};

/// Prepare code into an artifact without executing it.
#[derive(clap::Args)]
pub struct Args {
    /// The code: .wasm, .wat, or a compressed blob.
    code: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: pvf_host::Config, args: Args) -> ExitCode {
    let code = match super::input::read_code(&args.code) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let host = match super::start_host(config).await {
        Ok(host) => host,
        Err(code) => return code,
    };
    let params = ExecutorParams::default();
    match host.prepare(&code, &params, PrepKind::Precheck).await {
        Ok(prepared) => {
            if args.json {
                let report = serde_json::json!({
                    "ok": true,
                    "artifact": prepared.path,
                    "artifact_bytes": prepared.artifact_len,
                    "cached": prepared.cached,
                    "prepare_ms": prepared.duration.as_secs_f64() * 1e3,
                });
                println!("{report}");
            } else {
                println!("prepared: {}", prepared.path.display());
                println!("artifact size: {} bytes", prepared.artifact_len);
                let how = if prepared.cached { " (cached)" } else { "" };
                println!(
                    "prepare time: {:.1} ms{how}",
                    prepared.duration.as_secs_f64() * 1e3
                );
            }
            ExitCode::Ok
        }
        Err(e) => {
            let verdict = Verdict::from_prepare_error(e);
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "verdict": verdict.to_string()})
                );
            } else {
                println!("preparation failed: {verdict}");
            }
            verdict.exit_code()
        }
    }
}
