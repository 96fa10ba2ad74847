//! Loading the files a command is given. Any failure here is a usage error (exit 2).

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parity_scale_codec::Encode;
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_common::validation::ValidationParams;
use pvf_host::ExecuteArgs;
use pvf_host::host::MAX_VALIDATION_PARAMS_LEN;

/// The largest code file read: far past any real runtime (a relay chain allows a few MiB of
/// compressed code), so that a wrong path (a disk image, `/dev/zero`) is refused, not read
/// into memory.
pub const MAX_CODE_FILE_LEN: u64 = 256 * 1024 * 1024;

/// The longest request line of `batch` and `serve`: the largest params in hex, plus room for
/// the other fields.
pub const MAX_LINE_LEN: usize = 2 * MAX_VALIDATION_PARAMS_LEN + 64 * 1024;

/// Reads validation code: `.wat` text is compiled to Wasm; anything else (Wasm or a
/// compressed blob) is passed on as-is.
pub fn read_code(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = read_capped(path, MAX_CODE_FILE_LEN)?;
    if path.extension().is_some_and(|ext| ext == "wat") {
        return wat::parse_bytes(&bytes)
            .map(|wasm| wasm.into_owned())
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    Ok(bytes)
}

/// Reads a whole file of at most `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(cap + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > cap {
        return Err(format!("{} is larger than {cap} bytes", path.display()));
    }
    Ok(bytes)
}

/// Reads one line (without its newline) of at most [`MAX_LINE_LEN`] bytes; `Ok(None)` at the
/// end of the input. A longer line is skipped to its end and refused, so the next line still
/// reads.
pub fn read_line(input: &mut impl BufRead) -> std::io::Result<Option<Result<String, String>>> {
    let mut line = Vec::new();
    let read = input
        .by_ref()
        .take(MAX_LINE_LEN as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > MAX_LINE_LEN {
        input.skip_until(b'\n')?;
        return Ok(Some(Err(format!(
            "a request line longer than {MAX_LINE_LEN} bytes"
        ))));
    }
    Ok(Some(String::from_utf8(line).map_err(|_| {
        "a request line that is not UTF-8".to_string()
    })))
}

/// Decodes `--params-hex`, tolerating a `0x` prefix.
pub fn params_from_hex(hex_params: &str) -> Result<Vec<u8>, String> {
    let trimmed = hex_params.trim();
    hex::decode(trimmed.strip_prefix("0x").unwrap_or(trimmed))
        .map_err(|e| format!("--params-hex: {e}"))
}

/// Code files already read, so that many requests for one code share one copy.
#[derive(Default)]
pub struct CodeCache(HashMap<PathBuf, Arc<Vec<u8>>>);

impl CodeCache {
    /// Parses one request line: `{"code": PATH, "params_hex": HEX, "kind":
    /// "backing"|"approval"|"dispute", "timeout_ms": N}`, only `code` required, a relative
    /// path taken from `base`. Blank lines and lines starting with `#` are `None`.
    pub fn parse_request(
        &mut self,
        line: &str,
        base: &Path,
    ) -> Result<Option<ExecuteArgs>, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let path = value["code"].as_str().ok_or("missing \"code\"")?;
        let path = base.join(path);
        let code = match self.0.get(&path) {
            Some(code) => code.clone(),
            None => {
                let code = Arc::new(read_code(&path)?);
                self.0.insert(path, code.clone());
                code
            }
        };
        let validation_params = match value["params_hex"].as_str() {
            Some(hex) => params_from_hex(hex)?,
            None => ValidationParams::default().encode(),
        };
        let kind = match value["kind"].as_str().unwrap_or("backing") {
            "backing" => ExecKind::Backing,
            "approval" => ExecKind::Approval,
            "dispute" => ExecKind::Dispute,
            other => return Err(format!("unknown kind {other:?}")),
        };
        Ok(Some(ExecuteArgs {
            code,
            executor_params: ExecutorParams::default(),
            validation_params: Arc::new(validation_params),
            kind,
            timeout: value["timeout_ms"].as_u64().map(Duration::from_millis),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind_name(kind: ExecKind) -> &'static str {
        match kind {
            ExecKind::Backing => "backing",
            ExecKind::Approval => "approval",
            ExecKind::Dispute => "dispute",
        }
    }

    #[test]
    fn long_lines_are_refused_and_the_next_line_still_reads() {
        let mut input = Vec::new();
        input.extend(b"first\n");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_LEN + 10));
        input.extend(b"\nlast");
        let mut input = std::io::Cursor::new(input);
        let mut next = || read_line(&mut input).unwrap();
        assert_eq!(next(), Some(Ok("first".into())));
        assert!(matches!(next(), Some(Err(e)) if e.contains("longer than")));
        assert_eq!(next(), Some(Ok("last".into())));
        assert_eq!(next(), None);
    }

    #[test]
    fn code_files_past_the_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.wasm");
        std::fs::write(&path, [0u8; 11]).unwrap();
        assert_eq!(read_capped(&path, 11).unwrap().len(), 11);
        let e = read_capped(&path, 10).unwrap_err();
        assert!(e.contains("larger than 10 bytes"), "{e}");
    }

    proptest! {
        /// A request line is operator input, possibly generated by other software: any line
        /// gets a request or an error, never a panic.
        #[test]
        fn any_line_parses_or_is_refused(line in ".{0,200}", json in prop::collection::vec(any::<u8>(), 0..200)) {
            let dir = tempfile::tempdir().unwrap();
            let mut codes = CodeCache::default();
            let _ = codes.parse_request(&line, dir.path());
            let _ = codes.parse_request(&String::from_utf8_lossy(&json), dir.path());
        }

        /// What a line says is exactly what the request carries.
        #[test]
        fn a_well_formed_line_round_trips(
            code in prop::collection::vec(any::<u8>(), 1..64),
            params in prop::collection::vec(any::<u8>(), 0..64),
            kind in prop_oneof![Just(ExecKind::Backing), Just(ExecKind::Approval), Just(ExecKind::Dispute)],
            timeout_ms in prop::option::of(any::<u64>()),
            prefix in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("code.wasm"), &code).unwrap();
            let hex = format!("{}{}", if prefix { "0x" } else { "" }, hex::encode(&params));
            let mut line = serde_json::json!({"code": "code.wasm", "params_hex": hex, "kind": kind_name(kind)});
            if let Some(ms) = timeout_ms {
                line["timeout_ms"] = serde_json::json!(ms);
            }
            let parsed = CodeCache::default()
                .parse_request(&line.to_string(), dir.path())
                .unwrap()
                .unwrap();
            prop_assert_eq!(&*parsed.code, &code);
            prop_assert_eq!(&*parsed.validation_params, &params);
            prop_assert_eq!(parsed.kind, kind);
            prop_assert_eq!(parsed.timeout, timeout_ms.map(Duration::from_millis));
        }
    }
}
