//! Prevalidation: the checks that make code acceptable before it is rewritten and compiled.
//!
//! Polkadot's host checks no more than that the code is valid Wasm of the features its
//! executor parameters allow: a module without `validate_block`, `__heap_base` or a memory
//! prepares there, and fails when executed. So this checks no more either: a pre-check here
//! must never reject code that Polkadot's pre-checkers accept.

use pvf_common::engine::wasm_features;
use pvf_common::error::PrepareError;
use pvf_common::params::ExecutorParams;
use wasmparser::{Parser, Payload, Validator};

/// The largest function body our wasmparser (0.254) and wasmtime's (0.263) accept. The
/// validator of Polkadot's wasmtime (36, wasmparser 0.236) has no such limit, so a larger
/// body is not invalid, only past what this host can compile.
pub const MAX_FUNCTION_BODY: usize = 7_654_321;

/// Checks that `code` is valid Wasm using only the features `params` allow. Deterministic
/// failures are `Prevalidation`; a function body past [`MAX_FUNCTION_BODY`] is `HostLimit`
/// (this host cannot judge it).
pub fn prevalidate(code: &[u8], params: &ExecutorParams) -> Result<(), PrepareError> {
    check_function_bodies(code)?;
    Validator::new_with_features(wasm_features(params))
        .validate_all(code)
        .map(drop)
        .map_err(|e| PrepareError::Prevalidation(format!("invalid Wasm: {e}")))
}

/// Finds a function body over [`MAX_FUNCTION_BODY`] before the validator refuses it as
/// invalid. Code that does not parse this far is left to the validator.
fn check_function_bodies(code: &[u8]) -> Result<(), PrepareError> {
    for payload in Parser::new(0).parse_all(code) {
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            if payload.is_err() {
                return Ok(());
            }
            continue;
        };
        let len = body.range().len();
        if len > MAX_FUNCTION_BODY {
            return Err(PrepareError::HostLimit(format!(
                "a function body of {len} bytes; this host compiles at most {MAX_FUNCTION_BODY}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str) -> Result<(), PrepareError> {
        prevalidate(&wat::parse_str(wat).unwrap(), &ExecutorParams::default())
    }

    #[test]
    fn accepts_what_polkadot_prepares_without_an_entry_point_or_memory() {
        // Each fails only when executed, in Polkadot's host as here.
        check("(module)").unwrap();
        check(r#"(module (func (export "validate_block") (param i32) (result i64) i64.const 0))"#)
            .unwrap();
        check(r#"(module (import "env" "t" (table 1 funcref)) (import "x" "y" (func)))"#).unwrap();
        check(r#"(module (import "any" "where" (memory 1 2)))"#).unwrap();
    }

    #[test]
    fn rejects_disallowed_features_and_garbage() {
        let simd = "(module (func (result v128) v128.const i64x2 0 0))";
        assert!(
            matches!(check(simd), Err(PrepareError::Prevalidation(m)) if m.contains("invalid Wasm"))
        );
        let sign_ext = "(module (func (param i32) (result i32) (i32.extend8_s (local.get 0))))";
        assert!(matches!(
            check(sign_ext),
            Err(PrepareError::Prevalidation(_))
        ));
        assert!(prevalidate(b"\0asm garbage", &ExecutorParams::default()).is_err());
    }

    /// A module with one function whose body is `len` bytes of `nop`s (plus its header).
    fn module_with_body(len: usize) -> Vec<u8> {
        let mut body = vec![0u8]; // no locals
        body.resize(len - 1, 0x01); // nop
        body.push(0x0b); // end
        let leb = |mut n: usize| {
            let mut out = Vec::new();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                out.push(if n == 0 { byte } else { byte | 0x80 });
                if n == 0 {
                    return out;
                }
            }
        };
        let mut code = leb(1);
        code.extend(leb(body.len()));
        code.extend(&body);
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend([1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        module.extend([3, 2, 1, 0]); // function section: one function of type 0
        module.push(10); // code section
        module.extend(leb(code.len()));
        module.extend(code);
        module
    }

    #[test]
    fn a_function_body_past_wasmparsers_limit_is_this_hosts_limit_not_invalid() {
        let params = ExecutorParams::default();
        prevalidate(&module_with_body(MAX_FUNCTION_BODY), &params).unwrap();
        let err = prevalidate(&module_with_body(MAX_FUNCTION_BODY + 1), &params).unwrap_err();
        assert!(matches!(err, PrepareError::HostLimit(_)), "{err}");
        assert!(!err.is_deterministic());
    }
}
