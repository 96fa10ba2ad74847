//! Executor parameters: every limit that shapes preparation or execution.
//!
//! The defaults are Polkadot's, because validators running different hosts must agree on
//! every verdict. Parameters that change what preparation produces are hashed into the
//! artifact id ([`ExecutorParams::prep_hash`]); the time limits are not, so changing a
//! timeout reuses the artifact.

use std::time::Duration;

use parity_scale_codec::{Decode, Encode};

/// Wasm pages (64 KiB) a guest's memory may grow to: Polkadot's 2,048 extra heap pages on top
/// of its 32-page initial estimate.
pub const DEFAULT_MAX_MEMORY_PAGES: u32 = 2048 + 32;
/// Logical stack limit in Wasm values, enforced the same way on every machine.
pub const DEFAULT_STACK_LOGICAL_MAX: u32 = 65_536;
/// Native stack for Wasm, large enough that the logical limit always fires first.
pub const DEFAULT_STACK_NATIVE_MAX: u32 = 256 * 1024 * 1024;
/// Memory a preparation job may use before it is an (deterministic) error.
pub const DEFAULT_PREPARE_MEMORY_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Default largest validation code after decompression: what the relay chain's runtime
/// API `validation_code_bomb_limit` gives today (`max_code_size` 3 MiB × 10).
pub const DEFAULT_CODE_BOMB_LIMIT: u64 = 30 * 1024 * 1024;

/// The kinds of validation, in increasing priority. The timeout depends on the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum ExecKind {
    /// A backing validator checks a fresh candidate.
    #[codec(index = 0)]
    Backing,
    /// An approval checker re-checks an included candidate.
    #[codec(index = 1)]
    Approval,
    /// A dispute participant decides a contested candidate.
    #[codec(index = 2)]
    Dispute,
}

/// Why preparation runs, which sets its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum PrepKind {
    /// Pre-checking new code before it is enacted: strict timeout.
    #[codec(index = 0)]
    Precheck,
    /// Preparing code that is needed to execute a candidate: lenient timeout.
    #[codec(index = 1)]
    Lenient,
}

/// Every parameter the executor honours. Unknown values cannot be expressed: a field either
/// exists and is honoured or does not exist.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct ExecutorParams {
    /// Maximum Wasm memory pages (64 KiB each): the total bound on the instance's memory.
    /// Polkadot's `ExecutorParam::MaxMemoryPages(n)` means n + 32 here (its executor adds 32
    /// pages), as the default 2,048 + 32 shows; pass n alone and code that is valid on a
    /// Polkadot node can be Invalid here. Preparation-relevant.
    pub max_memory_pages: u32,
    /// Logical stack limit in Wasm values. Preparation-relevant.
    pub stack_logical_max: u32,
    /// Native stack bytes for Wasm execution. Preparation-relevant.
    pub stack_native_max: u32,
    /// Allow the bulk-memory proposal. Preparation-relevant.
    pub wasm_bulk_memory: bool,
    /// Memory a preparation job may use, in bytes. Preparation-relevant because it decides
    /// whether preparation succeeds.
    pub prepare_memory_max: u64,
    /// Largest size of the code after decompression, in bytes; larger code is Invalid. A
    /// node passes what the runtime API `validation_code_bomb_limit` returns.
    /// Preparation-relevant because it decides whether preparation succeeds.
    pub code_bomb_limit: u64,
    /// CPU time for a pre-check preparation, in milliseconds (default 60 s).
    pub precheck_timeout_ms: u64,
    /// CPU time for a preparation needed to execute, in milliseconds (default 360 s).
    pub lenient_prepare_timeout_ms: u64,
    /// CPU time for a backing execution, in milliseconds (default 2 s).
    pub backing_timeout_ms: u64,
    /// CPU time for an approval or dispute execution, in milliseconds (default 12 s).
    pub approval_timeout_ms: u64,
}

impl Default for ExecutorParams {
    fn default() -> Self {
        Self {
            max_memory_pages: DEFAULT_MAX_MEMORY_PAGES,
            stack_logical_max: DEFAULT_STACK_LOGICAL_MAX,
            stack_native_max: DEFAULT_STACK_NATIVE_MAX,
            wasm_bulk_memory: true,
            prepare_memory_max: DEFAULT_PREPARE_MEMORY_MAX,
            code_bomb_limit: DEFAULT_CODE_BOMB_LIMIT,
            precheck_timeout_ms: 60_000,
            lenient_prepare_timeout_ms: 360_000,
            backing_timeout_ms: 2_000,
            approval_timeout_ms: 12_000,
        }
    }
}

/// The subset of [`ExecutorParams`] that changes what preparation produces.
#[derive(Encode)]
struct PrepRelevant {
    max_memory_pages: u32,
    stack_logical_max: u32,
    stack_native_max: u32,
    wasm_bulk_memory: bool,
    prepare_memory_max: u64,
    code_bomb_limit: u64,
}

impl ExecutorParams {
    /// Hash of the preparation-relevant parameters, part of the artifact id.
    pub fn prep_hash(&self) -> [u8; 32] {
        let relevant = PrepRelevant {
            max_memory_pages: self.max_memory_pages,
            stack_logical_max: self.stack_logical_max,
            stack_native_max: self.stack_native_max,
            wasm_bulk_memory: self.wasm_bulk_memory,
            prepare_memory_max: self.prepare_memory_max,
            code_bomb_limit: self.code_bomb_limit,
        };
        *blake3::hash(&relevant.encode()).as_bytes()
    }

    /// CPU-time limit for executing a candidate of this kind.
    pub fn exec_timeout(&self, kind: ExecKind) -> Duration {
        Duration::from_millis(match kind {
            ExecKind::Backing => self.backing_timeout_ms,
            ExecKind::Approval | ExecKind::Dispute => self.approval_timeout_ms,
        })
    }

    /// CPU-time limit for preparing code for this purpose.
    pub fn prep_timeout(&self, kind: PrepKind) -> Duration {
        Duration::from_millis(match kind {
            PrepKind::Precheck => self.precheck_timeout_ms,
            PrepKind::Lenient => self.lenient_prepare_timeout_ms,
        })
    }
}

/// Identifies an artifact: the code's hash and the preparation-relevant parameters' hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct ArtifactId {
    /// blake3 of the code as received (compressed or not).
    pub code_hash: [u8; 32],
    /// [`ExecutorParams::prep_hash`].
    pub params_hash: [u8; 32],
}

/// Extension of artifact files in the cache; files without it are never ours.
pub const ARTIFACT_EXTENSION: &str = "pvfa";

impl ArtifactId {
    /// The id of `code` prepared under `params`.
    pub fn new(code: &[u8], params: &ExecutorParams) -> Self {
        Self {
            code_hash: *blake3::hash(code).as_bytes(),
            params_hash: params.prep_hash(),
        }
    }

    /// The artifact's file name in the cache: both hashes in hex, then our extension.
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}.{ARTIFACT_EXTENSION}",
            hex32(&self.code_hash),
            hex32(&self.params_hash)
        )
    }

    /// Parses a name made by [`ArtifactId::file_name`].
    pub fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(ARTIFACT_EXTENSION)?.strip_suffix('.')?;
        let (code, params) = stem.split_once('_')?;
        Some(Self {
            code_hash: unhex32(code)?,
            params_hash: unhex32(params)?,
        })
    }
}

impl std::fmt::Display for ArtifactId {
    /// Short form for logs: the first 8 bytes of each hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            &hex32(&self.code_hash)[..16],
            &hex32(&self.params_hash)[..16]
        )
    }
}

fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_round_trips() {
        let id = ArtifactId::new(b"code", &ExecutorParams::default());
        assert_eq!(ArtifactId::from_file_name(&id.file_name()), Some(id));
        assert_eq!(ArtifactId::from_file_name("foo.pvfa"), None);
        assert_eq!(ArtifactId::from_file_name("notes.txt"), None);
    }

    #[test]
    fn only_preparation_parameters_change_the_id() {
        let base = ExecutorParams::default();
        let id = ArtifactId::new(b"code", &base);
        let slower = ExecutorParams {
            backing_timeout_ms: 5_000,
            ..base.clone()
        };
        assert_eq!(ArtifactId::new(b"code", &slower), id);
        let bigger = ExecutorParams {
            max_memory_pages: 4096,
            ..base.clone()
        };
        assert_ne!(ArtifactId::new(b"code", &bigger), id);
        let smaller_code = ExecutorParams {
            code_bomb_limit: 1 << 20,
            ..base
        };
        assert_ne!(ArtifactId::new(b"code", &smaller_code), id);
    }
}
