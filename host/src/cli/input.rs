//! Loading the files a command is given. Any failure here is a usage error (exit 2).

use std::path::Path;

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
