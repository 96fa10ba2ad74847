//! `ext_panic_handler_abort_on_panic_version_1`: the guest reports its own panic.
//!
//! Polkadot's PVF host does not provide this function, so there a call traps as a missing
//! import, which is also Invalid. We provide it so the verdict carries the guest's message.

use wasmtime::{Caller, Linker};

use super::abi::read_slice;
use super::{HostError, HostState};

/// Defines the panic handler.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "ext_panic_handler_abort_on_panic_version_1",
        abort_on_panic,
    )?;
    Ok(())
}

fn abort_on_panic(caller: Caller<'_, HostState>, message: u64) -> wasmtime::Result<()> {
    let bytes = read_slice(&caller, message)?;
    Err(wasmtime::Error::new(HostError::Panic(
        String::from_utf8_lossy(&bytes).into_owned(),
    )))
}
