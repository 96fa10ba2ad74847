//! Landlock: the filesystem rule that the worker dir (by then `/`) is the only reachable
//! tree, writable for prepare and read-only for execute; no TCP bind or connect; no
//! signals to, and no abstract Unix sockets of, processes outside the worker.
//!
//! Consensus safety: Landlock only denies access; a guest's computation never depends on it.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The newest ABI we ask for; older kernels get what they support, and the report says
/// which ABI was in force.
const TARGET_ABI: ABI = ABI::V6;

/// Why Landlock could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The kernel refused the ruleset.
    #[error("landlock: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    /// Opening the worker dir for the rule.
    #[error("landlock: opening the worker dir: {0}")]
    PathFd(#[from] landlock::PathFdError),
    /// The kernel does not enforce Landlock at all.
    #[error(
        "landlock is not enforced by this kernel (needs Linux 5.13+ with CONFIG_SECURITY_LANDLOCK and `landlock` in the lsm= boot list)"
    )]
    NotEnforced,
}

/// Applies Landlock to the calling thread and its future children; returns a description of
/// what is in force (ABI and whether every right was enforced).
pub fn apply(dir: &Path, writable: bool) -> Result<String, LandlockError> {
    let dir_access = if writable {
        AccessFs::from_all(TARGET_ABI)
    } else {
        AccessFs::from_read(TARGET_ABI)
    };
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .handle_access(AccessNet::from_all(TARGET_ABI))?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?
        .add_rule(PathBeneath::new(PathFd::new(dir)?, dir_access))?
        .restrict_self()?;
    let enforcement = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced",
        RulesetStatus::PartiallyEnforced => "partially enforced (older ABI)",
        RulesetStatus::NotEnforced => return Err(LandlockError::NotEnforced),
    };
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => format!("{effective_abi:?}"),
        other => format!("{other:?}"),
    };
    let rights = if writable { "read-write" } else { "read-only" };
    Ok(format!(
        "ABI {abi} (asked {TARGET_ABI:?}), {enforcement}, worker dir {rights}; no TCP; signals and abstract sockets scoped"
    ))
}
