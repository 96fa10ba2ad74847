//! Guests that call host functions, generated from a short description in `cases.toml`, so a
//! host function case is one entry: which functions, with which arguments, and which result
//! becomes the new head.
//!
//! Arguments: `fat:HEX` (a 64-bit pointer-and-length to those bytes), `ptr:HEX` (a 32-bit
//! pointer to them), `i32:N`, `i64:N`, `badptr` (a 32-bit pointer past memory), `badfat` (a
//! pointer-and-length running past memory). Results: `none`, `i32`, `i64` (the value is the
//! head), `ptr:N` (a pointer to N bytes, which are the head), `fat` (a pointer-and-length to
//! the head).

use std::fmt::Write;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub function: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "none")]
    pub result: String,
}

fn none() -> String {
    "none".into()
}

/// Where the static data starts; below it the guest keeps its scratch words.
const DATA_START: u32 = 1024;

/// Builds the module: every call in order, the last call's result as the head of an
/// otherwise empty `ValidationResult`.
pub fn module(calls: &[Call]) -> Result<Vec<u8>, String> {
    let mut imports = Vec::<(String, String)>::new();
    let mut data = Vec::<u8>::new();
    let mut body = String::new();
    for (i, call) in calls.iter().enumerate() {
        let mut params = Vec::new();
        let mut pushes = String::new();
        for arg in &call.args {
            let (ty, push) = argument(arg, &mut data)?;
            params.push(ty);
            pushes.push_str(&push);
        }
        let result_ty = match call.result.as_str() {
            "none" => None,
            "i32" => Some("i32"),
            r if r.starts_with("ptr:") => Some("i32"),
            "i64" | "fat" => Some("i64"),
            other => return Err(format!("unknown result `{other}`")),
        };
        let sig = format!(
            "(param {}) {}",
            params.join(" "),
            result_ty
                .map(|t| format!("(result {t})"))
                .unwrap_or_default()
        );
        match imports.iter().find(|(name, _)| *name == call.function) {
            Some((_, existing)) if *existing != sig => {
                return Err(format!("`{}` called with two signatures", call.function));
            }
            Some(_) => {}
            None => imports.push((call.function.clone(), sig)),
        }
        let index = imports
            .iter()
            .position(|(name, _)| *name == call.function)
            .unwrap_or(0);
        let last = i + 1 == calls.len();
        let _ = write!(body, "\n    {pushes}(call $f{index})");
        match (result_ty, last) {
            (None, _) => {}
            (Some(_), false) => body.push_str(" drop"),
            (Some(_), true) => body.push_str(&head_from_result(&call.result)?),
        }
    }
    if calls.last().is_none_or(|c| c.result == "none") {
        body.push_str(
            "\n    (global.set $head_ptr (i32.const 0)) (global.set $head_len (i32.const 0))",
        );
    }
    let heap_base = (DATA_START + data.len() as u32 + 64 + 7) & !7;
    let pages = heap_base / 65536 + 2;
    let mut text = String::from("(module\n");
    for (i, (name, sig)) in imports.iter().enumerate() {
        let _ = writeln!(text, "  (import \"env\" \"{name}\" (func $f{i} {sig}))");
    }
    let _ = writeln!(text, "  (memory (export \"memory\") {pages})");
    let _ = writeln!(
        text,
        "  (global (export \"__heap_base\") i32 (i32.const {heap_base}))"
    );
    let _ = writeln!(text, "  (global $head_ptr (mut i32) (i32.const 0))");
    let _ = writeln!(text, "  (global $head_len (mut i32) (i32.const 0))");
    if !data.is_empty() {
        let escaped: String = data.iter().map(|b| format!("\\{b:02x}")).collect();
        let _ = writeln!(text, "  (data (i32.const {DATA_START}) \"{escaped}\")");
    }
    text.push_str(RESULT_WRITER);
    let _ = write!(
        text,
        "  (func (export \"validate_block\") (param i32 i32) (result i64)\n    (local $r32 i32) (local $r64 i64){body}\n    (call $result))\n)"
    );
    wat::parse_str(&text).map_err(|e| format!("generated guest: {e}\n{text}"))
}

/// The type of an argument and the instruction that pushes it; its bytes go into `data`.
fn argument(arg: &str, data: &mut Vec<u8>) -> Result<(&'static str, String), String> {
    let mut place = |hex_bytes: &str| -> Result<(u32, u32), String> {
        let bytes = hex::decode(hex_bytes).map_err(|e| format!("`{arg}`: {e}"))?;
        while data.len() % 8 != 0 {
            data.push(0);
        }
        let ptr = DATA_START + data.len() as u32;
        data.extend_from_slice(&bytes);
        Ok((ptr, bytes.len() as u32))
    };
    Ok(match arg.split_once(':') {
        Some(("fat", hex)) => {
            let (ptr, len) = place(hex)?;
            (
                "i64",
                format!("(i64.const {}) ", (u64::from(len) << 32) | u64::from(ptr)),
            )
        }
        Some(("ptr", hex)) => ("i32", format!("(i32.const {}) ", place(hex)?.0)),
        Some(("i32", n)) => ("i32", format!("(i32.const {n}) ")),
        Some(("i64", n)) => ("i64", format!("(i64.const {n}) ")),
        None if arg == "badptr" => ("i32", "(i32.const -16) ".into()),
        // 1 MiB from 64 KiB below the top of the first page: past the end of memory.
        None if arg == "badfat" => ("i64", format!("(i64.const {}) ", (1u64 << 52) | 0xf000)),
        _ => return Err(format!("unknown argument `{arg}`")),
    })
}

/// Instructions that take the last call's result off the stack and record the head: a
/// value is stored little-endian in the scratch words at 0.
fn head_from_result(result: &str) -> Result<String, String> {
    Ok(match result {
        "i32" => " (local.set $r32) (i32.store (i32.const 0) (local.get $r32)) \
                   (global.set $head_ptr (i32.const 0)) (global.set $head_len (i32.const 4))"
            .into(),
        "i64" => " (local.set $r64) (i64.store (i32.const 0) (local.get $r64)) \
                   (global.set $head_ptr (i32.const 0)) (global.set $head_len (i32.const 8))"
            .into(),
        "fat" => " (local.set $r64) \
                   (global.set $head_ptr (i32.wrap_i64 (local.get $r64))) \
                   (global.set $head_len (i32.wrap_i64 (i64.shr_u (local.get $r64) (i64.const 32))))"
            .into(),
        r => match r.strip_prefix("ptr:").map(str::parse::<u32>) {
            Some(Ok(n)) => {
                format!(" (global.set $head_ptr) (global.set $head_len (i32.const {n}))")
            }
            _ => return Err(format!("unknown result `{r}`")),
        },
    })
}

/// `$result`: writes `ValidationResult { head_data: memory[head_ptr..][..head_len], rest
/// empty }` at address 16 and returns it. The copy runs forward from a higher or disjoint
/// address, so a head anywhere in memory survives being copied down.
const RESULT_WRITER: &str = r#"
  (func $result (result i64)
    (local $out i32) (local $i i32) (local $p i32)
    ;; The result is built at the end of the first page's scratch area, below the data.
    (local.set $out (i32.const 16))
    (local.set $p (local.get $out))
    ;; SCALE compact length: one byte below 64, two below 16384, else four.
    (if (i32.lt_u (global.get $head_len) (i32.const 64))
      (then (i32.store8 (local.get $p) (i32.shl (global.get $head_len) (i32.const 2)))
            (local.set $p (i32.add (local.get $p) (i32.const 1))))
      (else (if (i32.lt_u (global.get $head_len) (i32.const 16384))
        (then (i32.store16 (local.get $p)
                (i32.or (i32.shl (global.get $head_len) (i32.const 2)) (i32.const 1)))
              (local.set $p (i32.add (local.get $p) (i32.const 2))))
        (else (i32.store (local.get $p)
                (i32.or (i32.shl (global.get $head_len) (i32.const 2)) (i32.const 2)))
              (local.set $p (i32.add (local.get $p) (i32.const 4)))))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (global.get $head_len)))
        (i32.store8 (i32.add (local.get $p) (local.get $i))
          (i32.load8_u (i32.add (global.get $head_ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (local.set $p (i32.add (local.get $p) (global.get $head_len)))
    ;; None, no upward or horizontal messages, 0 processed, watermark 0.
    (i32.store8 (local.get $p) (i32.const 0))
    (i32.store8 offset=1 (local.get $p) (i32.const 0))
    (i32.store8 offset=2 (local.get $p) (i32.const 0))
    (i32.store offset=3 (local.get $p) (i32.const 0))
    (i32.store offset=7 (local.get $p) (i32.const 0))
    (i64.or
      (i64.shl (i64.extend_i32_u (i32.sub (i32.add (local.get $p) (i32.const 11)) (local.get $out)))
               (i64.const 32))
      (i64.extend_i32_u (local.get $out))))
"#;
