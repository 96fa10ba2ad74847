//! `ext_panic_handler_abort_on_panic_version_1`: the guest reports its own panic.
//!
//! Polkadot's PVF host does not provide this function, so there it is a stub and a call
//! traps, which is also Invalid. Here a module that imports it with its usual type
//! `(i64 msg)` gets a function that ends the call with the guest's message, so the verdict
//! says why; with any other type it gets a stub like any other unknown import.

use pvf_common::host_api::ValueType;
use wasmtime::{Caller, Linker};

use super::abi::read_slice;
use super::{HostError, HostState};

/// The import name.
pub const NAME: &str = "ext_panic_handler_abort_on_panic_version_1";

/// The most of a panic message a verdict carries; the rest is cut.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Whether an import `env.name` of this type is the panic handler.
pub fn handles(name: &str, params: &[ValueType], results: &[ValueType]) -> bool {
    name == NAME && params == [ValueType::I64] && results.is_empty()
}

/// Defines the panic handler.
pub fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", NAME, abort_on_panic)?;
    Ok(())
}

fn abort_on_panic(caller: Caller<'_, HostState>, message: u64) -> wasmtime::Result<()> {
    let bytes = read_slice(&caller, message)?;
    let mut message = String::from_utf8_lossy(&bytes).into_owned();
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    Err(wasmtime::Error::new(HostError::Panic(message)))
}
