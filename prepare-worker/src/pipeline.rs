//! The work of one preparation, without the job process around it: the bytes in, the
//! serialized module out.

use pvf_common::compress::maybe_decompress;
use pvf_common::engine;
use pvf_common::error::PrepareError;
use pvf_common::host_api::{ImportKind, check_import};
use pvf_common::params::{ExecutorParams, PrepKind};
use wasmparser::Validator;

use crate::prevalidate::prevalidate;
use crate::rewrite::{Import, RewriteError, rewrite};

/// A compiled module, ready to be written as an artifact's payload.
pub struct Compiled {
    /// wasmtime's serialized module.
    pub payload: Vec<u8>,
    /// The decompressed code's size, before rewriting (for the host's metrics).
    pub code_len: u64,
}

/// Decompresses `code` (bomb-limited), prevalidates it against `params`, rewrites it as
/// Polkadot's host does and compiles it with the shared engine config. A pre-check also
/// checks, as Polkadot's pre-check does, that the runtime links: every import is one the
/// host provides, with its type.
pub fn compile(
    code: &[u8],
    params: &ExecutorParams,
    kind: PrepKind,
) -> Result<Compiled, PrepareError> {
    let limit = usize::try_from(params.code_bomb_limit).unwrap_or(usize::MAX);
    let code =
        maybe_decompress(code, limit).map_err(|e| PrepareError::Decompress(e.to_string()))?;
    prevalidate(&code, params)?;
    let code_len = code.len() as u64;
    let rewritten = rewrite(&code, params.stack_logical_max).map_err(|e| match e {
        RewriteError::Parse(_) => PrepareError::Prevalidation(e.to_string()),
        _ => PrepareError::Compile(e.to_string()),
    })?;
    // Validate the rewritten module first: what is invalid is invalid on every host, while
    // a valid module that this compiler fails on is this compiler's limit, not the code's.
    Validator::new_with_features(engine::wasm_features(params))
        .validate_all(&rewritten.code)
        .map_err(|e| PrepareError::Compile(format!("the rewritten module is invalid: {e}")))?;
    let engine = engine::engine(params).map_err(|e| PrepareError::Internal(e.to_string()))?;
    let payload = engine
        .precompile_module(&rewritten.code)
        .map_err(|e| PrepareError::HostLimit(format!("the compiler failed: {e:#}")))?;
    if kind == PrepKind::Precheck {
        check_links(&rewritten.imports)?;
    }
    Ok(Compiled { payload, code_len })
}

/// The pre-check's runtime construction check: the first import the host would not link.
fn check_links(imports: &[Import]) -> Result<(), PrepareError> {
    for import in imports {
        let kind = match &import.func {
            Some((params, results)) => ImportKind::Func { params, results },
            None => ImportKind::Other,
        };
        check_import(&import.module, &import.name, kind)
            .map_err(PrepareError::RuntimeConstruction)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(wat: &str, kind: PrepKind) -> Result<Compiled, PrepareError> {
        compile(
            &wat::parse_str(wat).unwrap(),
            &ExecutorParams::default(),
            kind,
        )
    }

    #[test]
    fn only_a_precheck_checks_that_the_runtime_links() {
        for wat in [
            r#"(module (import "other" "f" (func)))"#,
            r#"(module (import "env" "ext_allocator_malloc_version_1" (func (param i64) (result i32))))"#,
            r#"(module (import "env" "t" (table 1 funcref)))"#,
        ] {
            let err = prepare(wat, PrepKind::Precheck).err();
            assert!(
                matches!(err, Some(PrepareError::RuntimeConstruction(_))),
                "{wat}: {err:?}"
            );
            prepare(wat, PrepKind::Lenient).unwrap();
        }
        // Two memories are invalid (as in Polkadot's host, where only the first import becomes
        // the module's memory and the compiler refuses the second) before linking is tried.
        let two = r#"(module (import "env" "m1" (memory 1)) (import "env" "m2" (memory 1)))"#;
        let err = prepare(two, PrepKind::Precheck).err();
        assert!(err.is_some_and(|e| e.is_deterministic()));
        // Stubs and provided functions of the right type link.
        prepare(
            r#"(module (import "env" "ext_storage_get_version_1" (func (param i64) (result i64)))
                (import "env" "ext_allocator_malloc_version_1" (func (param i32) (result i32)))
                (import "env" "memory" (memory 1)))"#,
            PrepKind::Precheck,
        )
        .unwrap();
    }
}
