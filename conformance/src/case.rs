//! The cases: read from `cases.toml`, and turned into the exact bytes both hosts receive.

use std::path::{Path, PathBuf};

use parity_scale_codec::Encode;
use serde::Deserialize;

/// The bound both hosts put on decompressing code (pvf's default; the value Polkadot's runtime
/// API `validation_code_bomb_limit` returns today), passed to Polkadot with every request.
pub const CODE_BOMB_LIMIT: usize = 30 * 1024 * 1024;
/// Polkadot's PoV bomb limit (`MAX_POV_SIZE × 4`); pvf uses the same.
pub const POV_BOMB_LIMIT: usize = 40 * 1024 * 1024;

/// Which validation a case runs as: it sets the time limit, the priority and the retries.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Backing,
    Approval,
    Dispute,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backing => "backing",
            Kind::Approval => "approval",
            Kind::Dispute => "dispute",
        }
    }
}

/// One case as written in `cases.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// Short unique name, shown in the table.
    pub name: String,
    /// One line: what the case checks.
    pub purpose: String,
    /// A `.wat`/`.wasm`/blob path relative to `conformance/`, or `corpus:FILE` for a file in
    /// the corpus directory.
    #[serde(default)]
    pub code: Option<String>,
    /// A generated code blob instead of a file (see [`generate_code`]).
    #[serde(default)]
    pub code_gen: Option<String>,
    /// A generated guest that calls host functions (see [`crate::host_call`]).
    #[serde(default)]
    pub calls: Vec<crate::host_call::Call>,
    /// Compress the code into a blob (magic + zstd) before handing it to both hosts.
    #[serde(default)]
    pub compress_code: bool,
    #[serde(default)]
    pub kind: Kind,
    /// Params: hex, or empty.
    #[serde(default)]
    pub parent_head: String,
    #[serde(default)]
    pub block_data: String,
    /// Generated block data instead of hex (see [`generate_block_data`]).
    #[serde(default)]
    pub block_gen: Option<String>,
    /// Compress the block data (as a collator compresses a PoV).
    #[serde(default)]
    pub compress_block: bool,
    #[serde(default)]
    pub relay_parent_number: u32,
    /// The first cell of the `docs/parity.md` row that documents an expected difference.
    #[serde(default)]
    pub difference: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CaseFile {
    case: Vec<CaseSpec>,
}

/// A case ready to run: the bytes both hosts get.
pub struct Case {
    pub spec: CaseSpec,
    pub code: Vec<u8>,
    pub parent_head: Vec<u8>,
    /// Exactly as the PoV carries it (possibly compressed).
    pub block_data: Vec<u8>,
}

impl Case {
    /// The SCALE `ValidationParams` that Polkadot's execute worker builds from the PVD and
    /// the PoV for a V1/V2 candidate, which is what `pvf validate --params` takes. The block
    /// data stays compressed: both hosts decompress it in the execute worker.
    pub fn encoded_params(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.parent_head.encode_to(&mut out);
        self.block_data.encode_to(&mut out);
        self.spec.relay_parent_number.encode_to(&mut out);
        [0u8; 32].encode_to(&mut out);
        out
    }
}

/// Reads `cases.toml` and builds every case; a case whose input is missing (the corpus on a
/// machine without it) is returned as skipped with the reason.
pub fn load(manifest: &Path, corpus: &Path) -> Result<(Vec<Case>, Vec<(String, String)>), String> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let file: CaseFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut names = std::collections::HashSet::new();
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
    for spec in file.case {
        if !names.insert(spec.name.clone()) {
            return Err(format!("case `{}` appears twice", spec.name));
        }
        match build(spec, base, corpus) {
            Ok(case) => cases.push(case),
            Err(Build::Skip(name, why)) => skipped.push((name, why)),
            Err(Build::Bad(e)) => return Err(e),
        }
    }
    Ok((cases, skipped))
}

enum Build {
    Skip(String, String),
    Bad(String),
}

fn build(spec: CaseSpec, base: &Path, corpus: &Path) -> Result<Case, Build> {
    let bad = |e: String| Build::Bad(format!("case `{}`: {e}", spec.name));
    let mut code = match (&spec.code, &spec.code_gen) {
        (None, None) if !spec.calls.is_empty() => {
            crate::host_call::module(&spec.calls).map_err(bad)?
        }
        (Some(path), None) => {
            let path = match path.strip_prefix("corpus:") {
                Some(file) => {
                    let path = corpus.join(file);
                    if !path.exists() {
                        return Err(Build::Skip(
                            spec.name.clone(),
                            format!("{} not found (set PVF_CORPUS)", path.display()),
                        ));
                    }
                    path
                }
                None => base.join(path),
            };
            read_code(&path).map_err(bad)?
        }
        (None, Some(generator)) => generate_code(generator).map_err(bad)?,
        _ => {
            return Err(bad(
                "give exactly one of `code`, `code_gen` and `calls`".into()
            ));
        }
    };
    if spec.compress_code {
        code = compress(&code);
    }
    let parent_head =
        hex::decode(&spec.parent_head).map_err(|e| bad(format!("parent_head: {e}")))?;
    let mut block_data = match &spec.block_gen {
        Some(generator) => {
            if !spec.block_data.is_empty() {
                return Err(bad(
                    "give at most one of `block_data` and `block_gen`".into()
                ));
            }
            generate_block_data(generator).map_err(bad)?
        }
        None => hex::decode(&spec.block_data).map_err(|e| bad(format!("block_data: {e}")))?,
    };
    if spec.compress_block {
        block_data = compress(&block_data);
    }
    Ok(Case {
        spec,
        code,
        parent_head,
        block_data,
    })
}

/// `.wat` is compiled here, so both hosts get the same Wasm bytes; anything else is read as is.
fn read_code(path: &PathBuf) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if path.extension().is_some_and(|ext| ext == "wat") {
        wat::parse_bytes(&bytes)
            .map(|wasm| wasm.into_owned())
            .map_err(|e| format!("{}: {e}", path.display()))
    } else {
        Ok(bytes)
    }
}

/// The compressed-blob format both hosts accept (magic + zstd). The limit passed only guards
/// the compressor, so a bomb can be built.
fn compress(bytes: &[u8]) -> Vec<u8> {
    sp_maybe_compressed_blob::compress_weakly(bytes, usize::MAX)
        .expect("compression without a limit cannot refuse")
}

/// A module whose `validate_block` returns an all-empty result; `extra` goes in the module.
fn module_returning_empty_result(extra: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
  (memory (export "memory") 2)
  (global (export "__heap_base") i32 (i32.const 1024))
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\00\00\00\00")
  {extra}
  (func (export "validate_block") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 12) (i64.const 32)) (i64.const 16))))"#
    );
    wat::parse_str(text).expect("the generator's module is valid text")
}

/// Generated code, for inputs too big or too odd to keep as files.
pub fn generate_code(name: &str) -> Result<Vec<u8>, String> {
    match name {
        // Decompresses to more than the code bomb limit: a valid module padded by a custom
        // section.
        "code-bomb" => Ok(compress(&with_custom_section(
            module_returning_empty_result(""),
            CODE_BOMB_LIMIT + 1024,
        ))),
        // Decompresses to just under the limit: must prepare on both.
        "code-under-bomb-limit" => Ok(compress(&with_custom_section(
            module_returning_empty_result(""),
            CODE_BOMB_LIMIT - 64 * 1024,
        ))),
        // One function body of 7,700,000 bytes (over wasmparser's newer 7,654,321 limit).
        "huge-function" => Ok(huge_function(7_700_000)),
        // Blob magic followed by bytes that are not zstd.
        "bad-zstd" => {
            let mut blob = vec![0x52, 0xbc, 0x53, 0x76, 0x46, 0xdb, 0x8e, 0x05];
            blob.extend_from_slice(b"this is not a zstd frame");
            Ok(blob)
        }
        "empty" => Ok(Vec::new()),
        "not-wasm" => Ok(b"\0asx not wasm at all".to_vec()),
        _ => Err(format!("unknown code generator `{name}`")),
    }
}

/// Appends a custom section so the module reaches `total` bytes.
fn with_custom_section(mut module: Vec<u8>, total: usize) -> Vec<u8> {
    let name = b"pad";
    let overhead = module.len() + 1 + 5 + 1 + name.len();
    let payload = total.saturating_sub(overhead);
    let size = 1 + name.len() + payload;
    module.push(0); // custom section id
    module.extend_from_slice(&leb128_padded(size as u32));
    module.push(name.len() as u8);
    module.extend_from_slice(name);
    module.resize(module.len() + payload, 0);
    module
}

/// Unsigned LEB128 in exactly five bytes, so sizes can be written before the content.
fn leb128_padded(mut value: u32) -> [u8; 5] {
    let mut out = [0u8; 5];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (value & 0x7f) as u8;
        value >>= 7;
        if i < 4 {
            *byte |= 0x80;
        }
    }
    out
}

/// A module whose `validate_block` body is `body_len` bytes: nops, then the all-empty result.
fn huge_function(body_len: usize) -> Vec<u8> {
    // The small module's text and a body the text format would make slow: build the code
    // section by hand instead.
    let tail: &[u8] = &[
        0x42, 0x90, 0x80, 0x80, 0x80, 0xc0, 0x01, // i64.const (12 << 32) | 16
        0x0b, // end
    ];
    let mut body = vec![0x00]; // no locals
    body.resize(body_len - tail.len(), 0x01); // nop
    body.extend_from_slice(tail);
    let mut code_section = vec![0x01]; // one function
    code_section.extend_from_slice(&leb128_padded(body.len() as u32));
    code_section.extend_from_slice(&body);

    let mut m = b"\0asm\x01\0\0\0".to_vec();
    let mut section = |id: u8, content: &[u8]| {
        m.push(id);
        m.extend_from_slice(&leb128_padded(content.len() as u32));
        m.extend_from_slice(content);
    };
    section(1, &[0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7e]); // type (i32 i32) -> i64
    section(3, &[0x01, 0x00]); // function 0 has type 0
    section(5, &[0x01, 0x00, 0x02]); // memory, min 2
    section(6, &[0x01, 0x7f, 0x00, 0x41, 0x80, 0x08, 0x0b]); // global i32 const 1024
    let mut exports = vec![0x03];
    for (name, kind, index) in [
        ("memory", 0x02u8, 0u8),
        ("__heap_base", 0x03, 0),
        ("validate_block", 0x00, 0),
    ] {
        exports.push(name.len() as u8);
        exports.extend_from_slice(name.as_bytes());
        exports.extend_from_slice(&[kind, index]);
    }
    section(7, &exports);
    section(10, &code_section);
    section(
        11,
        &[
            0x01, 0x00, 0x41, 0x10, 0x0b, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    m
}

/// Generated block data: `pov-bomb`, `pov-at-limit`, `pov-bad-zstd`, `junk`, `large`, or
/// `zeros:N`.
pub fn generate_block_data(name: &str) -> Result<Vec<u8>, String> {
    match name {
        // Compressed below, decompresses past the 40 MiB PoV bomb limit.
        "pov-bomb" => Ok(compress(&vec![0u8; POV_BOMB_LIMIT + 1])),
        // Exactly at the limit: must decompress on both.
        "pov-at-limit" => Ok(compress(&vec![0u8; POV_BOMB_LIMIT])),
        // Blob magic then garbage: decompression fails.
        "pov-bad-zstd" => {
            let mut blob = vec![0x52, 0xbc, 0x53, 0x76, 0x46, 0xdb, 0x8e, 0x05];
            blob.extend_from_slice(&[0xff; 64]);
            Ok(blob)
        }
        // Bytes that are no block a runtime knows (a fixed pseudo-random sequence).
        "junk" => {
            let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
            Ok((0..4096)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect())
        }
        // 4 MiB of block data (under the 5 MiB PoV size limit the node checks first).
        "large" => Ok(vec![0x5a; 4 * 1024 * 1024]),
        other => match other.strip_prefix("zeros:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(vec![0; n]),
            _ => Err(format!("unknown block data generator `{name}`")),
        },
    }
}
