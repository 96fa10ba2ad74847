//! `pvf bench`: measure this machine's host against in-process wasmtime.

use std::path::PathBuf;

use pvf_host::ExitCode;
use pvf_host::bench::{self, Options};

/// Measure latency, throughput, preparation and restart through the real host, workers and
/// sandbox, each beside an in-process wasmtime baseline in the same run; print a table.
#[derive(clap::Args)]
pub struct Args {
    /// Also write the results as JSON (DESIGN.md's schema) to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Fewer rounds and requests: a smoke run, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Directory of real parachain runtimes (*.code) [default: ../shared/corpus, if present].
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
}

pub fn run(config: pvf_host::Config, args: Args) -> ExitCode {
    let corpus = args
        .corpus
        .or_else(|| Some(PathBuf::from("../shared/corpus")));
    let report = match bench::run(Options {
        config,
        corpus,
        quick: args.quick,
    }) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Inconclusive;
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = match serde_json::to_string_pretty(&report.to_json()) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("error: encoding the report: {e}");
                return ExitCode::Inconclusive;
            }
        };
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::Inconclusive;
        }
    }
    ExitCode::Ok
}
