//! The work of one preparation, without the job process around it: the bytes in, the
//! serialized module out.

use pvf_common::compress::maybe_decompress;
use pvf_common::engine;
use pvf_common::error::PrepareError;
use pvf_common::params::ExecutorParams;

use crate::instrument::limit_stack;
use crate::prevalidate::prevalidate;

/// A compiled module, ready to be written as an artifact's payload.
pub struct Compiled {
    /// wasmtime's serialized module.
    pub payload: Vec<u8>,
    /// The decompressed code's size, before instrumentation (for the host's metrics).
    pub code_len: u64,
}

/// Decompresses `code` (bomb-limited), prevalidates it against `params`, adds the
/// deterministic stack limiter and compiles it with the shared engine config.
pub fn compile(code: &[u8], params: &ExecutorParams) -> Result<Compiled, PrepareError> {
    let limit = usize::try_from(params.code_bomb_limit).unwrap_or(usize::MAX);
    let code =
        maybe_decompress(code, limit).map_err(|e| PrepareError::Decompress(e.to_string()))?;
    prevalidate(&code, params).map_err(PrepareError::Prevalidation)?;
    let code_len = code.len() as u64;
    let code = limit_stack(&code, params.stack_logical_max)
        .map_err(|e| PrepareError::Prevalidation(e.to_string()))?;
    let engine = engine::engine(params).map_err(|e| PrepareError::Internal(e.to_string()))?;
    let payload = engine
        .precompile_module(&code)
        .map_err(|e| PrepareError::Compile(format!("{e:#}")))?;
    Ok(Compiled { payload, code_len })
}
