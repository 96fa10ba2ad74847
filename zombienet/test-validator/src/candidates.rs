//! The stream of candidates a node validates: every round, each code with params derived
//! from the round number. Every node derives the same stream, so every node must reach the
//! same verdict, with the same result, for the same candidate id.

use std::path::{Path, PathBuf};

use parity_scale_codec::Encode;
use pvf_common::validation::ValidationParams;

/// The test guests bundled into the binary, so a node needs no files beside its workers.
/// `halt` is left out on purpose: it burns its whole 2 s time limit on every round, and a
/// network test checks that executions stay under 2 s.
const GUESTS: &[(&str, &str)] = &[
    ("adder", include_str!("../../../tests/guests/adder.wat")),
    (
        "alloc-heavy",
        include_str!("../../../tests/guests/alloc-heavy.wat"),
    ),
    ("trap", include_str!("../../../tests/guests/trap.wat")),
    (
        "bad-result",
        include_str!("../../../tests/guests/bad-result.wat"),
    ),
    (
        "stub-call",
        include_str!("../../../tests/guests/stub-call.wat"),
    ),
];

/// Validation code with a name for the logs.
pub struct Code {
    /// The guest's name, or the corpus file's stem.
    pub name: String,
    /// Wasm, or a compressed blob.
    pub bytes: Vec<u8>,
}

/// One candidate: which code, and the encoded `ValidationParams`.
pub struct Candidate<'a> {
    /// `<code>#<round>`: the same on every node.
    pub id: String,
    /// The code to run.
    pub code: &'a Code,
    /// SCALE-encoded `ValidationParams`.
    pub params: Vec<u8>,
}

/// Why the codes could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A bundled guest does not compile (a build problem, not an input problem).
    #[error("bundled guest {name}: {source}")]
    Guest {
        /// The guest.
        name: &'static str,
        /// The WAT error.
        source: wat::Error,
    },
    /// The corpus directory or one of its files could not be read.
    #[error("corpus {path}: {source}")]
    Corpus {
        /// The directory or file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The bundled test guests, compiled to Wasm.
pub fn guests() -> Result<Vec<Code>, LoadError> {
    GUESTS
        .iter()
        .map(|&(name, wat)| {
            let bytes = wat::parse_str(wat).map_err(|source| LoadError::Guest { name, source })?;
            Ok(Code {
                name: name.to_string(),
                bytes,
            })
        })
        .collect()
}

/// The `*.code` files in `dir`, sorted by name so every node orders them alike.
pub fn corpus(dir: &Path) -> Result<Vec<Code>, LoadError> {
    let corpus_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LoadError::Corpus { path, source }
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(corpus_err(dir))? {
        let path = entry.map_err(corpus_err(dir))?.path();
        if path.extension().is_some_and(|ext| ext == "code") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(corpus_err(&path))?;
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            Ok(Code { name, bytes })
        })
        .collect()
}

/// Round `round` of the stream: one candidate per code.
pub fn round(codes: &[Code], round: u32) -> impl Iterator<Item = Candidate<'_>> {
    // The adder guest reads both heads as u64s, so its result changes every round.
    let params = ValidationParams {
        parent_head: u64::from(round).to_le_bytes().to_vec(),
        block_data: (u64::from(round) + 1).to_le_bytes().to_vec(),
        relay_parent_number: round,
        relay_parent_storage_root: [0; 32],
    }
    .encode();
    codes.iter().map(move |code| Candidate {
        id: format!("{}#{round}", code.name),
        code,
        params: params.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_compile_and_rounds_name_candidates_alike() {
        let codes = guests().expect("bundled guests compile");
        assert_eq!(codes.len(), GUESTS.len());
        let ids: Vec<String> = round(&codes, 3).map(|c| c.id).collect();
        assert_eq!(ids[0], "adder#3");
        assert_eq!(ids.len(), codes.len());
        let first: Vec<Vec<u8>> = round(&codes, 3).map(|c| c.params).collect();
        let again: Vec<Vec<u8>> = round(&codes, 3).map(|c| c.params).collect();
        let next: Vec<Vec<u8>> = round(&codes, 4).map(|c| c.params).collect();
        assert_eq!(first, again);
        assert_ne!(first, next);
    }

    #[test]
    fn missing_corpus_is_an_error() {
        let err = corpus(Path::new("/nonexistent/corpus"))
            .err()
            .expect("error");
        assert!(matches!(err, LoadError::Corpus { .. }));
    }
}
