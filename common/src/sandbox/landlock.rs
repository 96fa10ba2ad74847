//! Landlock: the filesystem rule that the worker dir (by then `/`) is the only reachable
//! tree, writable for prepare and read-only for execute; no TCP bind or connect; no
//! signals to, and no abstract Unix sockets of, processes outside the worker. Each prepare
//! job adds a domain of its own in which nothing is writable.
//!
//! Every rule we claim needs Landlock ABI [`REQUIRED_ABI`] (Linux 6.12). On an older
//! kernel the layer fails, naming the rules the kernel lacks: a ruleset the kernel only
//! partly enforces never counts as the layer.
//!
//! Consensus safety: Landlock only denies access; a guest's computation never depends on it.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The ABI whose rules we claim: filesystem (V1–V3, V5), TCP (V4), scoping (V6).
pub const REQUIRED_ABI: ABI = ABI::V6;

/// What each ABI up to [`REQUIRED_ABI`] adds, by the version that added it.
const RULES_BY_ABI: [(i32, &str); 6] = [
    (1, "filesystem access rules"),
    (2, "renaming and linking across dirs (refer)"),
    (3, "truncating files"),
    (4, "TCP bind and connect"),
    (5, "ioctl on devices"),
    (6, "signal and abstract Unix socket scoping"),
];

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
        "landlock is not enforced by this kernel (needs Linux 6.12+ with CONFIG_SECURITY_LANDLOCK and `landlock` in the lsm= boot list)"
    )]
    NotEnforced,
    /// The kernel's ABI lacks rules we claim.
    #[error(
        "this kernel's Landlock ABI is {abi}; ABI 6 (Linux 6.12) is required, and these rules are missing: {missing}"
    )]
    AbiTooOld {
        /// The kernel's ABI version.
        abi: i32,
        /// The rules it lacks.
        missing: String,
    },
}

/// Applies Landlock to the calling thread and its future children; returns a description of
/// what is in force.
pub fn apply(dir: &Path, writable: bool) -> Result<String, LandlockError> {
    let abi = require_abi()?;
    let dir_access = if writable {
        AccessFs::from_all(REQUIRED_ABI)
    } else {
        AccessFs::from_read(REQUIRED_ABI)
    };
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(REQUIRED_ABI))?
        .handle_access(AccessNet::from_all(REQUIRED_ABI))?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?
        .add_rule(PathBeneath::new(PathFd::new(dir)?, dir_access))?
        .restrict_self()?;
    enforced(status.ruleset)?;
    let rights = if writable { "read-write" } else { "read-only" };
    Ok(format!(
        "kernel ABI {abi} (rules of ABI {}), fully enforced, worker dir {rights}; no TCP; signals and abstract sockets scoped",
        REQUIRED_ABI as i32
    ))
}

/// Adds a domain in which nothing is writable and only `dir` is readable: what a prepare
/// job runs under, so that it can leave nothing behind.
pub fn forbid_writes(dir: &Path) -> Result<(), LandlockError> {
    require_abi()?;
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(REQUIRED_ABI))?
        .create()?
        .add_rule(PathBeneath::new(
            PathFd::new(dir)?,
            AccessFs::from_read(REQUIRED_ABI),
        ))?
        .restrict_self()?;
    enforced(status.ruleset)
}

fn enforced(status: RulesetStatus) -> Result<(), LandlockError> {
    match status {
        RulesetStatus::FullyEnforced => Ok(()),
        // HardRequirement refuses a partial ruleset before this point; never count one.
        RulesetStatus::PartiallyEnforced | RulesetStatus::NotEnforced => {
            Err(LandlockError::NotEnforced)
        }
    }
}

/// The kernel's Landlock ABI, if it has every rule we claim.
fn require_abi() -> Result<i32, LandlockError> {
    let abi = kernel_abi();
    if abi <= 0 {
        return Err(LandlockError::NotEnforced);
    }
    missing_rules(abi).map_or(Ok(abi), |missing| {
        Err(LandlockError::AbiTooOld { abi, missing })
    })
}

/// The rules an ABI lacks, or `None` if it has every one we claim.
fn missing_rules(abi: i32) -> Option<String> {
    let missing: Vec<String> = RULES_BY_ABI
        .iter()
        .filter(|(version, _)| *version > abi)
        .map(|(version, rules)| format!("{rules} (ABI {version})"))
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The ABI version the kernel reports (0 or less: none).
fn kernel_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and size 0, this flag only asks for the ABI version.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(version).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_abi_names_exactly_the_rules_it_lacks() {
        assert_eq!(missing_rules(6), None);
        assert_eq!(missing_rules(7), None);
        assert_eq!(
            missing_rules(5).as_deref(),
            Some("signal and abstract Unix socket scoping (ABI 6)")
        );
        assert_eq!(
            missing_rules(3).as_deref(),
            Some(
                "TCP bind and connect (ABI 4), ioctl on devices (ABI 5), signal and abstract Unix socket scoping (ABI 6)"
            )
        );
    }
}
