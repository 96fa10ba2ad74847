//! The seccomp allowlists: reviewed data in `policy/*.json` (seccompiler's format, one file
//! per worker kind, a comment on every rule naming who needs it), compiled at run time.
//!
//! Each file holds these filters. `worker` is installed once by the worker before its first
//! job; filters stack, so it also bounds every job and must allow what jobs need. `job` is
//! installed by each job process last, just before it touches untrusted bytes, and is
//! stricter: no fork, no exec, no sockets, no shared or executable memory, threads only. The
//! default action kills the process with SIGSYS, which the worker reports as a security
//! event. `job_fds`, installed with it, fails `read` on anything but the job's input pipe
//! and `write` on anything but its output pipe with EPERM rather than a kill: honest code
//! still tries to log to a stderr the job no longer has, and must not die of it. The execute
//! policy has a `holder` filter between the two, for the process that loads one artifact and
//! forks its jobs: it may map code and fork its jobs, but open nothing.
//!
//! glibc tries `clone3` first and seccomp cannot inspect its flags (they live in memory), so
//! `clone3` is answered with ENOSYS by a separate filter and glibc falls back to `clone`,
//! whose flags the `job` filter checks.
//!
//! Consensus safety: a syscall a valid job needs but the policy lacks kills the job with
//! SIGSYS, which is an Internal verdict, never Invalid.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

use crate::sandbox::WorkerKind;

#[cfg(target_arch = "x86_64")]
mod policy {
    pub const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
    pub const PREPARE: &str = include_str!("policy/prepare.x86_64.json");
    pub const EXECUTE: &str = include_str!("policy/execute.x86_64.json");
}

#[cfg(target_arch = "aarch64")]
mod policy {
    pub const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;
    pub const PREPARE: &str = include_str!("policy/prepare.aarch64.json");
    pub const EXECUTE: &str = include_str!("policy/execute.aarch64.json");
}

/// Which filters of a policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The worker's own filter, installed once.
    Worker,
    /// An execute worker's artifact holder's filter, installed once per holder.
    Holder,
    /// The job's filters, installed in each job process: `job_fds`, which fails reads and
    /// writes on any descriptor but its input and output pipes with EPERM, then its
    /// allowlist (last: it forbids installing another).
    Job,
}

impl Stage {
    /// The filters of this stage in a policy file.
    fn filters(self) -> &'static [&'static str] {
        match self {
            Stage::Worker => &["worker"],
            Stage::Holder => &["holder"],
            Stage::Job => &["job_fds", "job"],
        }
    }
}

/// Why a filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The policy file does not compile.
    #[error("seccomp policy: {0}")]
    Policy(#[from] seccompiler::Error),
    /// A built-in filter does not compile.
    #[error("seccomp filter: {0}")]
    Backend(#[from] seccompiler::BackendError),
    /// The policy file lacks a filter.
    #[error("seccomp policy has no `{0}` filter")]
    MissingFilter(&'static str),
    /// The kernel refused the filter.
    #[error("installing the seccomp filter: {0}")]
    Install(seccompiler::Error),
}

/// The policy file's text for a worker kind.
pub fn policy_text(kind: WorkerKind) -> &'static str {
    match kind {
        WorkerKind::Prepare => policy::PREPARE,
        WorkerKind::Execute => policy::EXECUTE,
    }
}

/// Compiles the filters for `kind` and `stage`: the clone3 filter, then the stage's own.
pub fn compile(kind: WorkerKind, stage: Stage) -> Result<Vec<BpfProgram>, SeccompError> {
    let mut compiled = seccompiler::compile_from_json(policy_text(kind).as_bytes(), policy::ARCH)?;
    let mut filters = vec![clone3_enosys(policy::ARCH)?];
    for name in stage.filters() {
        filters.push(
            compiled
                .remove(*name)
                .ok_or(SeccompError::MissingFilter(name))?,
        );
    }
    Ok(filters)
}

/// Installs compiled filters on the calling thread (and its future threads and children).
pub fn install(filters: &[BpfProgram]) -> Result<(), SeccompError> {
    for filter in filters {
        seccompiler::apply_filter(filter).map_err(SeccompError::Install)?;
    }
    Ok(())
}

/// A filter that answers `clone3` with ENOSYS and passes everything else to the next filter.
fn clone3_enosys(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    let rules = BTreeMap::from([(libc::SYS_clone3, vec![])]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    Ok(filter.try_into()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_compiles() {
        for kind in [WorkerKind::Prepare, WorkerKind::Execute] {
            for stage in [Stage::Worker, Stage::Job] {
                compile(kind, stage).unwrap();
            }
        }
        compile(WorkerKind::Execute, Stage::Holder).unwrap();
    }

    /// The fd filter names exactly the job's pipes.
    #[test]
    fn job_fds_allow_only_the_pipes() {
        use crate::worker::child::{INPUT_FD, OUTPUT_FD};
        for kind in [WorkerKind::Prepare, WorkerKind::Execute] {
            let policy: serde_json::Value = serde_json::from_str(policy_text(kind)).unwrap();
            for rule in policy["job_fds"]["filter"].as_array().unwrap() {
                let fd = match rule["syscall"].as_str().unwrap() {
                    "read" => INPUT_FD,
                    "write" => OUTPUT_FD,
                    other => panic!("{kind:?}: unexpected job_fds rule for {other}"),
                };
                let arg = &rule["args"][0];
                assert_eq!(
                    (arg["index"].as_u64(), arg["op"].as_str()),
                    (Some(0), Some("ne"))
                );
                assert_eq!(arg["val"].as_i64(), Some(fd.into()), "{kind:?}: {rule}");
            }
        }
    }

    /// Every rule in a policy file says who needs it.
    #[test]
    fn every_rule_has_a_comment() {
        for kind in [WorkerKind::Prepare, WorkerKind::Execute] {
            let text = policy_text(kind);
            let policy: serde_json::Value = serde_json::from_str(text).unwrap();
            for (name, filter) in policy.as_object().unwrap() {
                for rule in filter["filter"].as_array().unwrap() {
                    let comment = rule.get("comment").and_then(|c| c.as_str()).unwrap_or("");
                    assert!(
                        !comment.trim().is_empty(),
                        "{kind:?}/{name}: rule for {} has no comment",
                        rule["syscall"]
                    );
                }
            }
        }
    }

    /// Each stacked filter is stricter than the one below it (job within holder within
    /// worker): it allows no syscall the one below forbids (filters stack, so such a rule
    /// would be dead).
    #[test]
    fn job_filters_are_subsets_of_worker_filters() {
        for (kind, chain) in [
            (WorkerKind::Prepare, &["worker", "job"][..]),
            (WorkerKind::Execute, &["worker", "holder", "job"][..]),
        ] {
            let policy: serde_json::Value = serde_json::from_str(policy_text(kind)).unwrap();
            let names = |f: &str| -> std::collections::BTreeSet<String> {
                policy[f]["filter"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["syscall"].as_str().unwrap().to_string())
                    .collect()
            };
            for pair in chain.windows(2) {
                let extra: Vec<_> = names(pair[1])
                    .difference(&names(pair[0]))
                    .cloned()
                    .collect();
                assert!(
                    extra.is_empty(),
                    "{kind:?}: {} allows {extra:?} beyond {}",
                    pair[1],
                    pair[0]
                );
            }
        }
    }
}
