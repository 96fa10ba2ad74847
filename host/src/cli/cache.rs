//! `pvf cache ls|verify|prune`: inspect and maintain the artifact cache.
//!
//! `ls` and `verify` only read, so they work beside a running host; `prune` takes the
//! cache's lock like a host does, and is refused while one runs.

use std::path::Path;
use std::time::{Duration, SystemTime};

use pvf_common::artifact;
use pvf_common::engine;
use pvf_common::params::ArtifactId;
use pvf_host::artifacts::scan::{self, Class};
use pvf_host::artifacts::{Artifacts, meta};
use pvf_host::metrics::Metrics;
use pvf_host::{Config, ExitCode};

/// Inspect and maintain the artifact cache.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List artifacts: id, size, last needed, whether the header and fingerprint check out.
    Ls,
    /// Verify every artifact's full checksum; exits 1 if any is bad.
    Verify,
    /// Remove least recently needed artifacts until the cache fits in --max-size bytes.
    Prune {
        /// The size budget in bytes (suffixes K, M, G allowed).
        #[arg(long, value_parser = parse_size)]
        max_size: u64,
        /// Keep anything needed within this many seconds [default: 86400].
        #[arg(long, value_name = "SECS")]
        min_stale_secs: Option<u64>,
    },
}

pub fn run(config: Config, args: Args) -> ExitCode {
    let dir = &config.cache_dir;
    let fingerprint = match engine::fingerprint() {
        Ok(fingerprint) => fingerprint,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Inconclusive;
        }
    };
    let entries = match scan::inspect(dir, &fingerprint) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", dir.display());
            return ExitCode::Usage;
        }
    };
    match args.command {
        Command::Ls => {
            ls(dir, entries);
            ExitCode::Ok
        }
        Command::Verify => verify(entries, &fingerprint),
        Command::Prune {
            max_size,
            min_stale_secs,
        } => {
            let min_stale = min_stale_secs.map_or(config.cache_min_stale, Duration::from_secs);
            prune(dir, max_size, min_stale)
        }
    }
}

fn ls(dir: &Path, entries: Vec<scan::Entry>) {
    let times = meta::load(dir);
    println!(
        "{:<35} {:>12} {:>12}  status",
        "artifact", "bytes", "needed (s ago)"
    );
    let now = SystemTime::now();
    for entry in entries {
        let name = file_name(&entry.path);
        let Some(id) = ArtifactId::from_file_name(&name) else {
            continue;
        };
        let size = std::fs::metadata(&entry.path).map_or(0, |m| m.len());
        let status = match &entry.class {
            Class::Artifact { .. } => "ok".to_string(),
            Class::ForeignFingerprint => "foreign fingerprint".to_string(),
            Class::BadHeader(e) => format!("bad: {e}"),
            Class::Unreadable(e) => format!("unreadable: {e}"),
            other => format!("{other:?}"),
        };
        let needed = match &entry.class {
            Class::Artifact { modified, .. } => {
                let when = times.get(&id).copied().unwrap_or(*modified);
                now.duration_since(when)
                    .map_or("-".to_string(), |d| d.as_secs().to_string())
            }
            _ => "-".to_string(),
        };
        println!("{:<35} {size:>12} {needed:>12}  {status}", id.to_string());
    }
}

fn verify(entries: Vec<scan::Entry>, fingerprint: &[u8; 32]) -> ExitCode {
    let mut bad = 0;
    for entry in entries {
        let name = file_name(&entry.path);
        let Some(id) = ArtifactId::from_file_name(&name) else {
            continue;
        };
        match artifact::load_verified(&entry.path, fingerprint, &id) {
            Ok(_) => println!("ok   {name}"),
            Err(e) => {
                bad += 1;
                println!("BAD  {name}: {e}");
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} bad artifact(s)");
        ExitCode::Invalid
    } else {
        ExitCode::Ok
    }
}

fn prune(dir: &Path, max_size: u64, min_stale: Duration) -> ExitCode {
    let metrics = match Metrics::new() {
        Ok(metrics) => metrics,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Inconclusive;
        }
    };
    let mut artifacts = match Artifacts::open(dir, &metrics) {
        Ok(artifacts) => artifacts,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Inconclusive;
        }
    };
    let removed = artifacts.prune(max_size, min_stale, SystemTime::now());
    let paths: Vec<_> = removed.iter().map(|(_, path)| path.clone()).collect();
    pvf_host::artifacts::delete_files(&paths);
    for (id, _) in &removed {
        println!("pruned {}", id.file_name());
    }
    let left: u64 = artifacts.iter().map(|(_, e)| e.size).sum();
    println!("{} pruned, {left} bytes left", removed.len());
    ExitCode::Ok
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, factor) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 1 << 10),
        Some('M' | 'm') => (&text[..text.len() - 1], 1 << 20),
        Some('G' | 'g') => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("not a size: {text}"))
}
