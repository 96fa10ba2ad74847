//! The codes the bench runs and their params: the test guests, embedded from the test suite
//! (the same files the integration tests use, not copies), and the corpus runtimes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parity_scale_codec::Encode;
use pvf_common::validation::ValidationParams;

use super::BenchError;

/// The adder guest: head = parent + add.
const ADDER_WAT: &str = include_str!("../../../tests/guests/adder.wat");
/// The CPU-bound guest: an LCG for `block_data` (u64) iterations.
const CPU_BURN_WAT: &str = include_str!("../../../tests/guests/cpu-burn.wat");

/// A code to validate, with a name for the report.
#[derive(Clone)]
pub struct Code {
    /// What the report calls it (the file stem for corpus runtimes).
    pub name: String,
    /// The bytes, as a validator receives them (possibly compressed).
    pub bytes: Arc<Vec<u8>>,
}

fn wat(name: &str, source: &str) -> Result<Code, BenchError> {
    let bytes = wat::parse_str(source)
        .map_err(|e| BenchError::Internal(format!("the embedded {name} guest: {e}")))?;
    Ok(Code {
        name: name.into(),
        bytes: Arc::new(bytes),
    })
}

/// The adder guest.
pub fn adder() -> Result<Code, BenchError> {
    wat("adder", ADDER_WAT)
}

/// The CPU-bound guest.
pub fn cpu_burn() -> Result<Code, BenchError> {
    wat("cpu-burn", CPU_BURN_WAT)
}

/// Params for the adder: `parent + add`.
pub fn adder_params(parent: u64, add: u64) -> Vec<u8> {
    ValidationParams {
        parent_head: parent.to_le_bytes().to_vec(),
        block_data: add.to_le_bytes().to_vec(),
        relay_parent_number: 0,
        relay_parent_storage_root: [0; 32],
    }
    .encode()
}

/// The head the adder returns for `parent + add`.
pub fn adder_head(parent: u64, add: u64) -> Vec<u8> {
    parent.wrapping_add(add).to_le_bytes().to_vec()
}

/// Params for the CPU-bound guest: `iterations` rounds of its loop.
pub fn cpu_burn_params(iterations: u64) -> Vec<u8> {
    ValidationParams {
        parent_head: Vec::new(),
        block_data: iterations.to_le_bytes().to_vec(),
        relay_parent_number: 0,
        relay_parent_storage_root: [0; 32],
    }
    .encode()
}

/// Params no runtime accepts: empty head and block. A real runtime traps on them quickly,
/// so a run measures the per-job cost of the artifact, not its block execution.
pub fn junk_params() -> Vec<u8> {
    ValidationParams::default().encode()
}

/// The `*.code` files in `dir`, sorted by name; none (with a note on stderr) when `dir` is
/// not given or absent.
pub fn corpus(dir: Option<&Path>) -> Result<Vec<Code>, BenchError> {
    let Some(dir) = dir else {
        eprintln!("note: no corpus dir; the runtime scenarios are skipped");
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!(
                "note: no corpus at {} ({e}); the runtime scenarios are skipped",
                dir.display()
            );
            return Ok(Vec::new());
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "code"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Code {
                name,
                bytes: Arc::new(std::fs::read(&path)?),
            })
        })
        .collect()
}
