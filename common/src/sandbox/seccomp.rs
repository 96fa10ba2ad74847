//! The seccomp allowlists: reviewed data in `policy/*.json` (seccompiler's format, one file
//! per worker kind, a comment on every rule naming who needs it), compiled at run time.
//!
//! Each file holds two filters. `worker` is installed once by the worker before its first
//! job; filters stack, so it also bounds every job and must allow what jobs need. `job` is
//! installed by each job process last, just before it touches untrusted bytes, and is
//! stricter: no fork, no exec, no sockets, threads only. The default action kills the
//! process with SIGSYS, which the worker reports as a security event.
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

/// Which filter of a policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The worker's own filter, installed once.
    Worker,
    /// The job's filter, installed in each job process.
    Job,
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

/// Compiles the filters for `kind` and `stage`: the allowlist and the clone3 filter.
pub fn compile(kind: WorkerKind, stage: Stage) -> Result<Vec<BpfProgram>, SeccompError> {
    let name = match stage {
        Stage::Worker => "worker",
        Stage::Job => "job",
    };
    let mut filters = seccompiler::compile_from_json(policy_text(kind).as_bytes(), policy::ARCH)?;
    let allowlist = filters
        .remove(name)
        .ok_or(SeccompError::MissingFilter(name))?;
    Ok(vec![clone3_enosys(policy::ARCH)?, allowlist])
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

    /// The job filter is stricter than the worker filter: it allows nothing the worker
    /// filter forbids (filters stack, so a job-only rule would be dead).
    #[test]
    fn job_filters_are_subsets_of_worker_filters() {
        for kind in [WorkerKind::Prepare, WorkerKind::Execute] {
            let policy: serde_json::Value = serde_json::from_str(policy_text(kind)).unwrap();
            let names = |f: &str| -> std::collections::BTreeSet<String> {
                policy[f]["filter"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["syscall"].as_str().unwrap().to_string())
                    .collect()
            };
            let extra: Vec<_> = names("job").difference(&names("worker")).cloned().collect();
            assert!(
                extra.is_empty(),
                "{kind:?}: job allows {extra:?} beyond the worker"
            );
        }
    }
}
