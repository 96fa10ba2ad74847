//! Our side: the `pvf` CLI (release build, real workers, secure mode), one process per
//! request, sharing one artifact cache for the run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::case::{Case, Kind};
use crate::vote::{Commitments, Outcome, Vote};

pub struct Pvf {
    bin: PathBuf,
    cache: tempfile::TempDir,
    /// Holds the code and params files handed to the CLI.
    scratch: tempfile::TempDir,
}

impl Pvf {
    pub fn new(bin: PathBuf) -> Result<Self, String> {
        let temp = || tempfile::tempdir().map_err(|e| format!("temp dir: {e}"));
        Ok(Self {
            bin,
            cache: temp()?,
            scratch: temp()?,
        })
    }

    /// `pvf security`: what the sandbox can do here, and whether secure mode can start.
    pub fn security(&self) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .arg("security")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "`pvf security` failed ({}):\n{text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The version line of the binary, for the report.
    pub fn version(&self) -> String {
        Command::new(&self.bin)
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn write_code(&self, case: &Case) -> Result<PathBuf, String> {
        // Never `.wat`: the bytes are already Wasm or a blob, exactly what Polkadot gets.
        let path = self.scratch.path().join(format!("{}.code", case.spec.name));
        std::fs::write(&path, &case.code).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// `pvf prepare CODE --json`: the pre-check.
    pub fn precheck(&self, case: &Case) -> Outcome {
        let code = match self.write_code(case) {
            Ok(path) => path,
            Err(e) => return harness_error(e),
        };
        let mut cmd = self.command();
        cmd.arg("prepare").arg(&code).arg("--json");
        let (json, raw) = match run_json(cmd) {
            Ok(out) => out,
            Err(e) => return harness_error(e),
        };
        if json["ok"].as_bool() == Some(true) {
            return Outcome {
                class: "Valid".into(),
                kind: String::new(),
                stage: Some("prepare".into()),
                raw,
                vote: Vote::Valid,
                commitments: None,
                attempts: 1,
            };
        }
        let verdict = json["verdict"].as_str().unwrap_or_default();
        let (class, reason) = split_verdict(verdict);
        let vote = match class.as_str() {
            "Invalid" => Vote::Invalid,
            _ => Vote::Abstain,
        };
        Outcome {
            kind: kind_of(&json, &reason),
            class,
            stage: json["stage"]
                .as_str()
                .map(str::to_string)
                .or(Some("prepare".into())),
            raw,
            vote,
            commitments: None,
            attempts: 1,
        }
    }

    /// `pvf validate CODE --params FILE --kind K --json`. The host applies candidate
    /// validation's retries itself (approvals and disputes, `Config::execute_retry_delay`),
    /// so the harness asks once.
    pub fn validate(&self, case: &Case) -> Outcome {
        let code = match self.write_code(case) {
            Ok(path) => path,
            Err(e) => return harness_error(e),
        };
        let params = self
            .scratch
            .path()
            .join(format!("{}.params", case.spec.name));
        if let Err(e) = std::fs::write(&params, case.encoded_params()) {
            return harness_error(format!("{}: {e}", params.display()));
        }
        self.validate_once(&code, &params, case.spec.kind)
    }

    fn validate_once(&self, code: &Path, params: &Path, kind: Kind) -> Outcome {
        let mut cmd = self.command();
        cmd.arg("validate")
            .arg(code)
            .arg("--params")
            .arg(params)
            .arg("--kind")
            .arg(kind.as_str())
            .arg("--json");
        let (json, raw) = match run_json(cmd) {
            Ok(out) => out,
            Err(e) => return harness_error(e),
        };
        let class = json["verdict"].as_str().unwrap_or("?").to_string();
        let reason = json["reason"].as_str().unwrap_or_default().to_string();
        let vote = match class.as_str() {
            "Valid" => Vote::Valid,
            // After the host's retries, a possibly invalid candidate is voted against, as in
            // Polkadot's candidate validation.
            "Invalid" | "PossiblyInvalid" => Vote::Invalid,
            _ => Vote::Abstain,
        };
        let result = &json["result"];
        let commitments = (class == "Valid").then(|| Commitments {
            head_data: result["head_data"].as_str().unwrap_or_default().to_string(),
            new_validation_code_len: result["new_validation_code_len"]
                .as_u64()
                .map(|n| n as usize),
            upward_messages: result["upward_messages"].as_u64().unwrap_or(0) as usize,
            horizontal_messages: result["horizontal_messages"].as_u64().unwrap_or(0) as usize,
            processed_downward_messages: result["processed_downward_messages"].as_u64().unwrap_or(0)
                as u32,
            hrmp_watermark: result["hrmp_watermark"].as_u64().unwrap_or(0) as u32,
        });
        Outcome {
            kind: kind_of(&json, &reason),
            class,
            stage: json["stage"].as_str().map(str::to_string),
            raw,
            vote,
            commitments,
            attempts: 1,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--cache-dir")
            .arg(self.cache.path())
            .env("RUST_LOG", "off");
        cmd
    }
}

/// Runs the CLI and parses the one JSON line it prints; anything else is a harness error.
fn run_json(mut cmd: Command) -> Result<(Value, String), String> {
    let out = cmd.output().map_err(|e| format!("cannot run pvf: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| {
            format!(
                "pvf exited with {} and printed no JSON: {}{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
    let json =
        serde_json::from_str(line).map_err(|e| format!("pvf printed bad JSON ({e}): {line}"))?;
    Ok((json, line.to_string()))
}

/// `Invalid(trap: …)` → (`Invalid`, `trap: …`).
fn split_verdict(verdict: &str) -> (String, String) {
    match verdict.split_once('(') {
        Some((class, rest)) => (
            class.to_string(),
            rest.strip_suffix(')').unwrap_or(rest).to_string(),
        ),
        None => (verdict.to_string(), String::new()),
    }
}

/// The machine-readable reason kind: the CLI's `kind` when it prints one, else the reason's
/// leading words (`trap: unreachable` → `trap`).
fn kind_of(json: &Value, reason: &str) -> String {
    if let Some(kind) = json["kind"].as_str() {
        return kind.to_string();
    }
    let head = reason.split([':', '`']).next().unwrap_or_default().trim();
    head.chars().take(48).collect()
}

fn harness_error(e: String) -> Outcome {
    Outcome {
        class: "HarnessError".into(),
        kind: String::new(),
        stage: None,
        raw: e,
        vote: Vote::Abstain,
        commitments: None,
        attempts: 1,
    }
}
