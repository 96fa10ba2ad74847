//! `pvf validate CODE`: prepare (if needed) and execute, end to end through the workers.

use std::path::PathBuf;

use parity_scale_codec::Encode;
use std::sync::Arc;
use std::time::Duration;

use pvf_common::params::ExecutorParams;
use pvf_common::validation::ValidationParams;
use pvf_host::host::MAX_VALIDATION_PARAMS_LEN;
use pvf_host::{ExecuteArgs, Execution, ExitCode, Verdict};

use super::Kind;

/// Validate a candidate: prepare the code, run `validate_block` on the params, print the
/// verdict.
#[derive(clap::Args)]
pub struct Args {
    /// The code: .wasm, .wat, or a compressed blob.
    code: PathBuf,
    /// A file holding SCALE-encoded ValidationParams.
    #[arg(long, value_name = "FILE", conflicts_with = "params_hex")]
    params: Option<PathBuf>,
    /// SCALE-encoded ValidationParams in hex [default: all-empty params].
    #[arg(long, value_name = "HEX")]
    params_hex: Option<String>,
    /// Which validation this is; sets the time limit (backing 2 s, approval/dispute 12 s).
    #[arg(long, value_enum, default_value = "backing")]
    kind: Kind,
    /// Override the CPU-time limit, in milliseconds.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: pvf_host::Config, args: Args) -> ExitCode {
    let inputs = super::input::read_code(&args.code).and_then(|code| {
        let params = match (&args.params, &args.params_hex) {
            (Some(path), _) => super::input::read_capped(path, MAX_VALIDATION_PARAMS_LEN as u64)?,
            (None, Some(hex)) => super::input::params_from_hex(hex)?,
            (None, None) => ValidationParams::default().encode(),
        };
        Ok((code, params))
    });
    let (code, validation_params) = match inputs {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let host = match super::start_host(config).await {
        Ok(host) => host,
        Err(code) => return code,
    };
    let request = ExecuteArgs {
        code: Arc::new(code),
        executor_params: ExecutorParams::default(),
        validation_params: Arc::new(validation_params),
        kind: args.kind.into(),
        timeout: args.timeout_ms.map(Duration::from_millis),
    };
    let execution = match host.execute(request).await {
        Ok(execution) => execution,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Inconclusive;
        }
    };
    if args.json {
        println!("{}", json(&execution));
    } else {
        print_human(&execution);
    }
    execution.verdict.exit_code()
}

fn print_human(execution: &Execution) {
    println!("verdict: {}", execution.verdict);
    if let Verdict::Valid(result) = &execution.verdict {
        println!("head data: 0x{}", hex::encode(&result.head_data));
        println!(
            "messages: {} upward, {} horizontal; {} downward processed; hrmp watermark {}",
            result.upward_messages.len(),
            result.horizontal_messages.len(),
            result.processed_downward_messages,
            result.hrmp_watermark
        );
        if let Some(code) = &result.new_validation_code {
            println!("new validation code: {} bytes", code.len());
        }
    }
    println!(
        "prepare: {:.1} ms, execute: {:.1} ms",
        execution.prepare_time.as_secs_f64() * 1e3,
        execution.execute_time.as_secs_f64() * 1e3
    );
}

/// The outcome as one JSON object: the verdict's fields ([`verdict_json`]), the times, and
/// for a valid candidate a summary of its result.
pub fn json(execution: &Execution) -> serde_json::Value {
    let mut out = verdict_json(&execution.verdict);
    out["prepare_ms"] = serde_json::json!(execution.prepare_time.as_secs_f64() * 1e3);
    out["execute_ms"] = serde_json::json!(execution.execute_time.as_secs_f64() * 1e3);
    if let Verdict::Valid(r) = &execution.verdict {
        out["result"] = serde_json::json!({
            "head_data": format!("0x{}", hex::encode(&r.head_data)),
            "new_validation_code_len": r.new_validation_code.as_ref().map(Vec::len),
            "upward_messages": r.upward_messages.len(),
            "horizontal_messages": r.horizontal_messages.len(),
            "processed_downward_messages": r.processed_downward_messages,
            "hrmp_watermark": r.hrmp_watermark,
        });
    }
    out
}

/// A verdict as JSON: `verdict` (its class), `stage` (`prepare` or `execute`), `kind` (the
/// machine-readable reason, `null` when valid) and `reason` (the message). The kinds are
/// the rows of the table in `pvf_host::verdict`.
pub fn verdict_json(verdict: &Verdict) -> serde_json::Value {
    let reason = verdict.reason();
    serde_json::json!({
        "verdict": verdict.class(),
        "stage": verdict.stage().as_str(),
        "kind": reason.map(|r| r.kind()),
        "reason": reason.map(|r| r.to_string()),
    })
}
