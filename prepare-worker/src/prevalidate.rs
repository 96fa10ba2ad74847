//! Prevalidation: the checks that make code acceptable before it is compiled. Every failure
//! here is deterministic: the same code fails the same way on every validator.

use pvf_common::engine::wasm_features;
use pvf_common::params::ExecutorParams;
use wasmparser::{ExternalKind, FuncType, Parser, Payload, TypeRef, ValType, Validator};

/// The entry point every validation function exports.
pub const ENTRY_POINT: &str = "validate_block";

/// Checks that `code` is valid Wasm using only allowed features, exports
/// `validate_block(i32, i32) -> i64`, and has a memory (exported, or imported from `env`).
pub fn prevalidate(code: &[u8], params: &ExecutorParams) -> Result<(), String> {
    let mut validator = Validator::new_with_features(wasm_features(params));
    let types = validator
        .validate_all(code)
        .map_err(|e| format!("invalid Wasm: {e}"))?;
    let mut entry_func = None;
    let mut has_memory = false;
    for payload in Parser::new(0).parse_all(code) {
        match payload.map_err(|e| format!("invalid Wasm: {e}"))? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| format!("invalid Wasm: {e}"))?;
                    match import.ty {
                        TypeRef::Func(_) => {}
                        TypeRef::Memory(_) if import.module == "env" => has_memory = true,
                        _ => {
                            return Err(format!(
                                "unsupported import {}.{}: only functions and env.memory",
                                import.module, import.name
                            ));
                        }
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| format!("invalid Wasm: {e}"))?;
                    match (export.kind, export.name) {
                        (ExternalKind::Func, ENTRY_POINT) => entry_func = Some(export.index),
                        (ExternalKind::Memory, "memory") => has_memory = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let index = entry_func.ok_or_else(|| format!("missing export `{ENTRY_POINT}`"))?;
    let expected = FuncType::new([ValType::I32, ValType::I32], [ValType::I64]);
    let types = types.as_ref();
    let actual = types[types.core_function_at(index)].unwrap_func();
    if actual != &expected {
        return Err(format!(
            "`{ENTRY_POINT}` has type {actual}, expected (i32, i32) -> i64"
        ));
    }
    if !has_memory {
        return Err("no memory: export `memory` or import `env.memory`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str) -> Result<(), String> {
        prevalidate(&wat::parse_str(wat).unwrap(), &ExecutorParams::default())
    }

    const ENTRY: &str =
        r#"(func (export "validate_block") (param i32 i32) (result i64) i64.const 0)"#;

    #[test]
    fn accepts_exported_or_imported_memory() {
        check(&format!(r#"(module (memory (export "memory") 1) {ENTRY})"#)).unwrap();
        check(&format!(
            r#"(module (import "env" "memory" (memory 1)) {ENTRY})"#
        ))
        .unwrap();
    }

    #[test]
    fn rejects_missing_entry_point_or_memory() {
        assert!(
            check(r#"(module (memory (export "memory") 1))"#)
                .unwrap_err()
                .contains("missing export")
        );
        assert!(
            check(&format!("(module {ENTRY})"))
                .unwrap_err()
                .contains("no memory")
        );
    }

    #[test]
    fn rejects_wrong_signature() {
        let err = check(
            r#"(module (memory (export "memory") 1)
                (func (export "validate_block") (param i32) (result i64) i64.const 0))"#,
        )
        .unwrap_err();
        assert!(err.contains("expected (i32, i32) -> i64"), "{err}");
    }

    #[test]
    fn rejects_disallowed_features_and_garbage() {
        let simd = format!(
            r#"(module (memory (export "memory") 1) {ENTRY} (func (result v128) v128.const i64x2 0 0))"#
        );
        assert!(check(&simd).unwrap_err().contains("invalid Wasm"));
        assert!(prevalidate(b"\0asm garbage", &ExecutorParams::default()).is_err());
    }

    #[test]
    fn rejects_table_imports() {
        let err = check(&format!(
            r#"(module (import "env" "t" (table 1 funcref)) (memory (export "memory") 1) {ENTRY})"#
        ))
        .unwrap_err();
        assert!(err.contains("unsupported import"), "{err}");
    }
}
