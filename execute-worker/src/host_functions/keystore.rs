//! `ext_crypto_*_{public_keys,generate,sign,sign_prehashed}`: the keystore functions.
//!
//! Polkadot's host registers them, but a validation has no keystore, so each call panics
//! there, which is Invalid. Here each call traps with the same verdict. They are linked with
//! their own types, so an import of one of them with another type fails to link, as there.

use pvf_common::host_api::{self, ValueType};
use wasmtime::{FuncType, Linker, ValType};

use super::{HostError, HostState};

/// The keystore functions, all of version 1.
const KEYSTORE: &[&str] = &[
    "ext_crypto_ed25519_public_keys_version_1",
    "ext_crypto_ed25519_generate_version_1",
    "ext_crypto_ed25519_sign_version_1",
    "ext_crypto_sr25519_public_keys_version_1",
    "ext_crypto_sr25519_generate_version_1",
    "ext_crypto_sr25519_sign_version_1",
    "ext_crypto_ecdsa_public_keys_version_1",
    "ext_crypto_ecdsa_generate_version_1",
    "ext_crypto_ecdsa_sign_version_1",
    "ext_crypto_ecdsa_sign_prehashed_version_1",
];

/// The wasmtime type of a host function's value.
pub fn val_type(ty: ValueType) -> ValType {
    match ty {
        ValueType::I32 => ValType::I32,
        ValueType::I64 => ValType::I64,
        ValueType::F32 => ValType::F32,
        ValueType::F64 => ValType::F64,
    }
}

/// Defines the keystore functions.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    for &name in KEYSTORE {
        let f = host_api::lookup("env", name)
            .ok_or_else(|| wasmtime::Error::msg(format!("{name} is not in the host API table")))?;
        let ty = FuncType::new(
            linker.engine(),
            f.params.iter().copied().map(val_type),
            f.results.iter().copied().map(val_type),
        );
        linker.func_new("env", name, ty, move |_, _, _| {
            Err(wasmtime::Error::new(HostError::NoKeystore(name)))
        })?;
    }
    Ok(())
}
