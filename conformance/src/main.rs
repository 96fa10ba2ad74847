//! Conformance harness: runs every case in `cases.toml` through pvf and through Polkadot's
//! real PVF host, both in secure mode, and prints whether a validator would vote the same.
//!
//! Each case is asked twice on each side: a pre-check (the vote on a code upgrade) and an
//! execution of the case's kind (the vote on a candidate). See `README.md`.

mod case;
mod host_call;
mod ours;
mod parity_doc;
mod theirs;
mod vote;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use case::Case;
use vote::{Outcome, Vote};

/// The Polkadot host crate version this harness pins (see `Cargo.toml`).
const POLKADOT_PVF_VERSION: &str = "36.0.0";

struct Args {
    pvf: PathBuf,
    cases: PathBuf,
    corpus: PathBuf,
    parity: PathBuf,
    only: Vec<String>,
    markdown: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut args = Args {
        pvf: std::env::var_os("PVF_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target/release/pvf")),
        cases: Path::new(env!("CARGO_MANIFEST_DIR")).join("cases.toml"),
        corpus: std::env::var_os("PVF_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("../shared/corpus")),
        parity: repo.join("docs/parity.md"),
        only: Vec::new(),
        markdown: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--pvf" => args.pvf = value("--pvf")?.into(),
            "--cases" => args.cases = value("--cases")?.into(),
            "--corpus" => args.corpus = value("--corpus")?.into(),
            "--parity" => args.parity = value("--parity")?.into(),
            "--markdown" => args.markdown = Some(value("--markdown")?.into()),
            "-h" | "--help" => {
                return Err(
                    "usage: pvf-conformance [--pvf BIN] [--cases FILE] [--corpus DIR] \
                            [--parity FILE] [--markdown FILE] [CASE...]"
                        .into(),
                );
            }
            name if !name.starts_with('-') => args.only.push(name.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

/// The comparison of one case.
struct Row {
    name: String,
    kind: &'static str,
    ours_pre: Outcome,
    theirs_pre: Outcome,
    ours: Outcome,
    theirs: Outcome,
    status: String,
    note: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs every case; true when no case differs without a documented, non-voting reason.
async fn run(args: Args) -> Result<bool, String> {
    let (mut cases, skipped) = case::load(&args.cases, &args.corpus)?;
    if !args.only.is_empty() {
        cases.retain(|c| args.only.contains(&c.spec.name));
    }
    let documented = parity_doc::row_names(&args.parity)?;

    let pvf = ours::Pvf::new(args.pvf.clone())?;
    let security = pvf.security()?;
    eprintln!(
        "pvf: {} ({})\n{security}",
        args.pvf.display(),
        pvf.version()
    );

    let worker_dir = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .ok_or("no directory for the harness binary")?
        .to_path_buf();
    // Two hosts: Polkadot's host remembers a failed preparation and answers executions of
    // that code with it, and a validator only runs candidates of code that passed
    // pre-checking; pvf runs every request in a process of its own. So executions go to a
    // host that has not pre-checked the code.
    let mut polkadot = theirs::Polkadot::start(&worker_dir).await?;
    let mut polkadot_exec = theirs::Polkadot::start(&worker_dir).await?;
    let status = polkadot.security_status().clone();
    eprintln!("Polkadot polkadot-node-core-pvf {POLKADOT_PVF_VERSION}: {status:?}");
    let all_layers = status.secure_validator_mode
        && status.can_enable_landlock
        && status.can_enable_seccomp
        && status.can_unshare_user_namespace_and_change_root
        && status.can_do_secure_clone
        && polkadot_exec.security_status() == &status;
    if !all_layers {
        return Err("Polkadot's host is missing a sandbox layer here; refusing to compare".into());
    }

    let mut rows = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        eprintln!(
            "[{}/{}] {}: {}",
            i + 1,
            cases.len(),
            case.spec.name,
            case.spec.purpose
        );
        let ours_pre = pvf.precheck(case);
        let theirs_pre = polkadot.precheck(case).await;
        let ours = pvf.validate(case);
        let theirs = polkadot_exec.validate(case).await;
        rows.push(compare(
            case,
            ours_pre,
            theirs_pre,
            ours,
            theirs,
            &documented,
        ));
    }

    let report = report(&args, &rows, &skipped, &security, &status, &pvf.version());
    print!("{report}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(rows.iter().all(|r| !r.status.starts_with("DIFFERS")))
}

fn compare(
    case: &Case,
    ours_pre: Outcome,
    theirs_pre: Outcome,
    ours: Outcome,
    theirs: Outcome,
    documented: &[String],
) -> Row {
    let pre_agree = ours_pre.vote == theirs_pre.vote;
    let exec_agree = ours.same_vote(&theirs);
    let mut notes = Vec::new();
    if pre_agree && ours_pre.class != theirs_pre.class {
        notes.push(format!(
            "pre-check class {} vs {}",
            ours_pre.class, theirs_pre.class
        ));
    }
    if exec_agree && ours.class != theirs.class {
        notes.push(format!("class {} vs {}", ours.class, theirs.class));
    }
    if ours.vote == Vote::Valid
        && theirs.vote == Vote::Valid
        && ours.commitments != theirs.commitments
    {
        notes.push(format!(
            "results differ: {:?} vs {:?}",
            ours.commitments, theirs.commitments
        ));
    }
    // A difference is acceptable only where we abstain: never a vote the other host
    // would not cast.
    let non_voting =
        (pre_agree || ours_pre.vote == Vote::Abstain) && (exec_agree || ours.vote == Vote::Abstain);
    let tag = case.spec.difference.as_deref();
    let tag_documented = tag.is_some_and(|t| parity_doc::names_a_row(documented, t));
    if let Some(t) = tag
        && !tag_documented
    {
        notes.push(format!("difference `{t}` is not a row of docs/parity.md"));
    }
    let status = if pre_agree && exec_agree {
        "agree".to_string()
    } else if tag_documented && non_voting {
        format!("documented difference ({})", tag.unwrap_or_default())
    } else {
        let mut what = Vec::new();
        if !pre_agree {
            what.push("pre-check");
        }
        if !exec_agree {
            what.push(case.spec.kind.as_str());
        }
        format!("DIFFERS ({})", what.join(", "))
    };
    Row {
        name: case.spec.name.clone(),
        kind: case.spec.kind.as_str(),
        ours_pre,
        theirs_pre,
        ours,
        theirs,
        status,
        note: notes.join("; "),
    }
}

fn cell(outcome: &Outcome) -> String {
    format!("{} → {}", outcome.label(), outcome.vote).replace('|', "\\|")
}

fn report(
    args: &Args,
    rows: &[Row],
    skipped: &[(String, String)],
    pvf_security: &str,
    status: &polkadot_node_core_pvf::SecurityStatus,
    pvf_version: &str,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let now = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = command_line("uname", &["-r"]);
    let commit = args
        .pvf
        .parent()
        .map(|dir| {
            command_line(
                "git",
                &["-C", &dir.to_string_lossy(), "rev-parse", "--short", "HEAD"],
            )
        })
        .unwrap_or_default();
    let _ = writeln!(out, "Run: {now}");
    let _ = writeln!(
        out,
        "pvf: {} ({pvf_version}, commit {commit}); Polkadot: polkadot-node-core-pvf {POLKADOT_PVF_VERSION} \
         with its prepare/execute worker crates 29.0.0 (wasmtime 36)",
        args.pvf.display()
    );
    let _ = writeln!(out, "Machine: {cpu}, {cores} cores, Linux {kernel}");
    // `pvf security` prints one line per layer per worker, then a verdict line.
    let mut layers: Vec<String> = Vec::new();
    for line in pvf_security.lines().filter(|l| l.starts_with("  ")) {
        let mut words = line.split_whitespace();
        if let (Some(layer), Some(state)) = (words.next(), words.next()) {
            let entry = format!("{layer} {state}");
            if !layers.contains(&entry) {
                layers.push(entry);
            }
        }
    }
    let verdict = pvf_security.lines().last().unwrap_or_default();
    let _ = writeln!(
        out,
        "pvf sandbox (prepare and execute workers): {}; {verdict}",
        layers.join(", ")
    );
    let _ = writeln!(out, "Polkadot sandbox: {status:?}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| case | kind | pre-check: pvf | pre-check: Polkadot | pvf | Polkadot | status |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.kind,
            cell(&r.ours_pre),
            cell(&r.theirs_pre),
            cell(&r.ours),
            cell(&r.theirs),
            r.status
        );
    }
    let agree = rows.iter().filter(|r| r.status == "agree").count();
    let documented = rows
        .iter()
        .filter(|r| r.status.starts_with("documented"))
        .count();
    let differ = rows
        .iter()
        .filter(|r| r.status.starts_with("DIFFERS"))
        .count();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} cases: {agree} agree, {documented} documented differences, {differ} differ.",
        rows.len()
    );
    for (name, why) in skipped {
        let _ = writeln!(out, "Skipped {name}: {why}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Details (raw answers; notes):");
    let _ = writeln!(out);
    for r in rows
        .iter()
        .filter(|r| r.status != "agree" || !r.note.is_empty())
    {
        let _ = writeln!(
            out,
            "- {} [{}]{}",
            r.name,
            r.status,
            if r.note.is_empty() {
                String::new()
            } else {
                format!(" {}", r.note)
            }
        );
        let _ = writeln!(out, "  - pre-check pvf: {}", short(&r.ours_pre.raw));
        let _ = writeln!(out, "  - pre-check Polkadot: {}", short(&r.theirs_pre.raw));
        let _ = writeln!(out, "  - pvf: {}", short(&r.ours.raw));
        let _ = writeln!(out, "  - Polkadot: {}", short(&r.theirs.raw));
    }
    out
}

/// The first 300 characters of a raw answer, on one line.
fn short(raw: &str) -> String {
    let one_line = raw.replace('\n', " ");
    if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else {
        one_line
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vote::Commitments;

    fn answer(class: &str, vote: Vote) -> Outcome {
        Outcome {
            class: class.into(),
            kind: String::new(),
            stage: None,
            raw: String::new(),
            vote,
            commitments: (vote == Vote::Valid).then(|| Commitments {
                head_data: "0x".into(),
                new_validation_code_len: None,
                upward_messages: 0,
                horizontal_messages: 0,
                processed_downward_messages: 0,
                hrmp_watermark: 0,
            }),
            attempts: 1,
        }
    }

    fn case(difference: Option<&str>) -> Case {
        let text = format!(
            "[[case]]\nname = \"c\"\npurpose = \"p\"\ncode_gen = \"empty\"\n{}",
            difference
                .map(|d| format!("difference = \"{d}\"\n"))
                .unwrap_or_default()
        );
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("cases.toml");
        std::fs::write(&manifest, text).unwrap();
        case::load(&manifest, dir.path()).unwrap().0.remove(0)
    }

    fn status(difference: Option<&str>, ours: Outcome, theirs: Outcome) -> String {
        let documented = vec!["unsupported host function".to_string()];
        let valid = || answer("Valid", Vote::Valid);
        compare(
            &case(difference),
            valid(),
            valid(),
            ours,
            theirs,
            &documented,
        )
        .status
    }

    #[test]
    fn a_documented_difference_must_be_pvf_abstaining() {
        let tag = Some("unsupported host function");
        let internal = || answer("Internal", Vote::Abstain);
        let invalid = || answer("Invalid", Vote::Invalid);
        let valid = || answer("Valid", Vote::Valid);
        assert_eq!(
            status(tag, internal(), invalid()),
            "documented difference (unsupported host function)"
        );
        // The negative controls: the same difference without a tag, with a tag that is no
        // row, or where pvf votes, is a difference.
        assert!(status(None, internal(), invalid()).starts_with("DIFFERS"));
        assert!(status(Some("no such row"), internal(), invalid()).starts_with("DIFFERS"));
        assert!(status(tag, valid(), invalid()).starts_with("DIFFERS"));
        assert_eq!(
            status(None, invalid(), answer("PossiblyInvalid", Vote::Invalid)),
            "agree"
        );
    }

    #[test]
    fn valid_answers_must_commit_to_the_same_result() {
        let mut other = answer("Valid", Vote::Valid);
        other.commitments.as_mut().unwrap().head_data = "0x01".into();
        assert!(status(None, answer("Valid", Vote::Valid), other).starts_with("DIFFERS"));
    }

    #[test]
    fn every_case_in_the_manifest_builds() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases.toml");
        let (cases, _skipped) = case::load(&manifest, Path::new("/nonexistent")).unwrap();
        assert!(cases.len() >= 50, "{} cases", cases.len());
    }
}
