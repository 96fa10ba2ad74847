//! Loading the files a command is given. Any failure here is a usage error (exit 2).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parity_scale_codec::Encode;
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_common::validation::ValidationParams;
use pvf_host::ExecuteArgs;

/// Reads validation code: `.wat` text is compiled to Wasm; anything else (Wasm or a
/// compressed blob) is passed on as-is.
pub fn read_code(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if path.extension().is_some_and(|ext| ext == "wat") {
        return wat::parse_bytes(&bytes)
            .map(|wasm| wasm.into_owned())
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    Ok(bytes)
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
