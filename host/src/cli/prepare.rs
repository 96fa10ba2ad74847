//! `pvf prepare CODE`: pre-check only, and report the artifact.

use std::path::PathBuf;
use std::sync::Arc;

use pvf_common::params::ExecutorParams;
use pvf_host::{ExitCode, PrecheckError, Reason, Verdict};

/// Prepare code into an artifact without executing it (a pre-check).
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
    match host.precheck(Arc::new(code), params).await {
        Ok(prepared) => {
            let ms = prepared.prepare_time.as_secs_f64() * 1e3;
            if args.json {
                let report = serde_json::json!({
                    "ok": true,
                    "artifact": prepared.path,
                    "artifact_bytes": prepared.size,
                    "cached": prepared.cached,
                    "prepare_ms": ms,
                    "prepare_max_rss_kib": prepared.prepare_max_rss_kib,
                });
                println!("{report}");
            } else {
                println!("prepared: {}", prepared.path.display());
                println!("artifact size: {} bytes", prepared.size);
                let how = if prepared.cached { " (cached)" } else { "" };
                println!("prepare time: {ms:.1} ms{how}");
                if let Some(kib) = prepared.prepare_max_rss_kib {
                    println!("prepare peak memory: {:.1} MiB", kib as f64 / 1024.0);
                }
            }
            ExitCode::Ok
        }
        Err(e) => {
            let verdict = match e {
                PrecheckError::Prepare(e) => Verdict::from_precheck_error(e),
                PrecheckError::Host(e) => Verdict::Internal(Reason::Local(e.to_string())),
            };
            if args.json {
                let mut report = super::validate::verdict_json(&verdict);
                report["ok"] = serde_json::json!(false);
                println!("{report}");
            } else {
                println!("preparation failed: {verdict}");
            }
            verdict.exit_code()
        }
    }
}
