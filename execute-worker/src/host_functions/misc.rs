//! `ext_misc_*`: debug printing (volume-bounded with the logs) and the runtime version.

use wasmtime::{Caller, Linker};

use super::HostState;
use super::abi::{read_slice, write_new_packed};
use super::logging::{Level, emit};
use super::runtime_version::embedded_version;

/// Defines the misc functions.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "ext_misc_print_num_version_1", print_num)?;
    linker.func_wrap("env", "ext_misc_print_utf8_version_1", print_utf8)?;
    linker.func_wrap("env", "ext_misc_print_hex_version_1", print_hex)?;
    linker.func_wrap("env", "ext_misc_runtime_version_version_1", runtime_version)?;
    Ok(())
}

/// Prints at debug level if the budget allows.
fn print(caller: &mut Caller<'_, HostState>, text: &str) {
    if caller.data_mut().log_budget.take(text.len()) {
        emit(Level::Debug, "runtime", text);
    }
}

fn print_num(mut caller: Caller<'_, HostState>, value: u64) {
    print(&mut caller, &value.to_string());
}

fn print_utf8(mut caller: Caller<'_, HostState>, data: u64) -> wasmtime::Result<()> {
    let bytes = read_slice(&caller, data)?;
    if let Ok(text) = std::str::from_utf8(&bytes) {
        print(&mut caller, text);
    }
    Ok(())
}

fn print_hex(mut caller: Caller<'_, HostState>, data: u64) -> wasmtime::Result<()> {
    let bytes = read_slice(&caller, data)?;
    print(&mut caller, &hex::encode(bytes));
    Ok(())
}

/// Returns SCALE `Option<Vec<u8>>`: the encoded version, or `None` if there is none.
fn runtime_version(mut caller: Caller<'_, HostState>, wasm: u64) -> wasmtime::Result<u64> {
    let blob = read_slice(&caller, wasm)?;
    let version = embedded_version(&blob)
        .inspect_err(|e| tracing::debug!("runtime_version: {e}"))
        .ok();
    write_new_packed(&mut caller, &parity_scale_codec::Encode::encode(&version))
}
