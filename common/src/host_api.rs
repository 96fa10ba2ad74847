//! The host functions a validation function may import: exactly the set Polkadot's PVF host
//! registers (sp-io 49's `misc`, `crypto`, `hashing`, `allocator`, `logging` and `trie`
//! interfaces), each with its Wasm signature.
//!
//! The signature matters for a verdict: Polkadot's host links an import of one of these names
//! with a different type as a runtime construction error, while any other function imported
//! from `env` is linked as a stub. The rules for imports are [`check_import`]; both workers
//! use it (the prepare worker for a pre-check's construction check, the execute worker when
//! it links), and `pvf inspect` reads the table. The semantics of each function, with its
//! version, are in one table in the execute worker's `host_functions` module; a unit test
//! there keeps the linker and this table equal.

/// A Wasm value type of a host function's parameter or result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// `i32`: pointers, sizes, flags, booleans.
    I32,
    /// `i64`: packed pointer-and-length pairs, 64-bit numbers.
    I64,
    /// `f32` (no host function uses it; it appears only in guest signatures).
    F32,
    /// `f64` (as `f32`).
    F64,
}

use ValueType::{I32, I64};

/// A host function's name and Wasm signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFunction {
    /// The import name (module `env`).
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [ValueType],
    /// Result types (none or one).
    pub results: &'static [ValueType],
}

const fn f(
    name: &'static str,
    params: &'static [ValueType],
    results: &'static [ValueType],
) -> HostFunction {
    HostFunction {
        name,
        params,
        results,
    }
}

/// Every host function Polkadot's PVF host registers, all implemented here.
pub const HOST_FUNCTIONS: &[HostFunction] = &[
    f("ext_allocator_malloc_version_1", &[I32], &[I32]),
    f("ext_allocator_free_version_1", &[I32], &[]),
    f("ext_logging_log_version_1", &[I32, I64, I64], &[]),
    f("ext_logging_max_level_version_1", &[], &[I32]),
    f("ext_hashing_blake2_128_version_1", &[I64], &[I32]),
    f("ext_hashing_blake2_256_version_1", &[I64], &[I32]),
    f("ext_hashing_twox_64_version_1", &[I64], &[I32]),
    f("ext_hashing_twox_128_version_1", &[I64], &[I32]),
    f("ext_hashing_twox_256_version_1", &[I64], &[I32]),
    f("ext_hashing_keccak_256_version_1", &[I64], &[I32]),
    f("ext_hashing_keccak_512_version_1", &[I64], &[I32]),
    f("ext_hashing_sha2_256_version_1", &[I64], &[I32]),
    f("ext_misc_print_num_version_1", &[I64], &[]),
    f("ext_misc_print_utf8_version_1", &[I64], &[]),
    f("ext_misc_print_hex_version_1", &[I64], &[]),
    f("ext_misc_runtime_version_version_1", &[I64], &[I64]),
    f("ext_trie_blake2_256_root_version_1", &[I64], &[I32]),
    f("ext_trie_blake2_256_root_version_2", &[I64, I32], &[I32]),
    f("ext_trie_keccak_256_root_version_1", &[I64], &[I32]),
    f("ext_trie_keccak_256_root_version_2", &[I64, I32], &[I32]),
    f("ext_trie_blake2_256_ordered_root_version_1", &[I64], &[I32]),
    f(
        "ext_trie_blake2_256_ordered_root_version_2",
        &[I64, I32],
        &[I32],
    ),
    f("ext_trie_keccak_256_ordered_root_version_1", &[I64], &[I32]),
    f(
        "ext_trie_keccak_256_ordered_root_version_2",
        &[I64, I32],
        &[I32],
    ),
    f(
        "ext_trie_blake2_256_verify_proof_version_1",
        &[I32, I64, I64, I64],
        &[I32],
    ),
    f(
        "ext_trie_blake2_256_verify_proof_version_2",
        &[I32, I64, I64, I64, I32],
        &[I32],
    ),
    f(
        "ext_trie_keccak_256_verify_proof_version_1",
        &[I32, I64, I64, I64],
        &[I32],
    ),
    f(
        "ext_trie_keccak_256_verify_proof_version_2",
        &[I32, I64, I64, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_ed25519_verify_version_1",
        &[I32, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_sr25519_verify_version_1",
        &[I32, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_sr25519_verify_version_2",
        &[I32, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_ecdsa_verify_version_1",
        &[I32, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_ecdsa_verify_version_2",
        &[I32, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_ecdsa_verify_prehashed_version_1",
        &[I32, I32, I32],
        &[I32],
    ),
    f(
        "ext_crypto_ed25519_batch_verify_version_1",
        &[I32, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_sr25519_batch_verify_version_1",
        &[I32, I64, I32],
        &[I32],
    ),
    f(
        "ext_crypto_ecdsa_batch_verify_version_1",
        &[I32, I64, I32],
        &[I32],
    ),
    f("ext_crypto_start_batch_verify_version_1", &[], &[]),
    f("ext_crypto_finish_batch_verify_version_1", &[], &[I32]),
    f(
        "ext_crypto_secp256k1_ecdsa_recover_version_1",
        &[I32, I32],
        &[I64],
    ),
    f(
        "ext_crypto_secp256k1_ecdsa_recover_version_2",
        &[I32, I32],
        &[I64],
    ),
    f(
        "ext_crypto_secp256k1_ecdsa_recover_compressed_version_1",
        &[I32, I32],
        &[I64],
    ),
    f(
        "ext_crypto_secp256k1_ecdsa_recover_compressed_version_2",
        &[I32, I32],
        &[I64],
    ),
    // The keystore functions: registered, but a validation has no keystore, so every call
    // fails (in Polkadot's host, a panic).
    f("ext_crypto_ed25519_public_keys_version_1", &[I32], &[I64]),
    f("ext_crypto_ed25519_generate_version_1", &[I32, I64], &[I32]),
    f(
        "ext_crypto_ed25519_sign_version_1",
        &[I32, I32, I64],
        &[I64],
    ),
    f("ext_crypto_sr25519_public_keys_version_1", &[I32], &[I64]),
    f("ext_crypto_sr25519_generate_version_1", &[I32, I64], &[I32]),
    f(
        "ext_crypto_sr25519_sign_version_1",
        &[I32, I32, I64],
        &[I64],
    ),
    f("ext_crypto_ecdsa_public_keys_version_1", &[I32], &[I64]),
    f("ext_crypto_ecdsa_generate_version_1", &[I32, I64], &[I32]),
    f("ext_crypto_ecdsa_sign_version_1", &[I32, I32, I64], &[I64]),
    f(
        "ext_crypto_ecdsa_sign_prehashed_version_1",
        &[I32, I32, I32],
        &[I64],
    ),
];

/// The host function `name` imported from `module`, if the host provides it.
pub fn lookup(module: &str, name: &str) -> Option<&'static HostFunction> {
    if module != "env" {
        return None;
    }
    HOST_FUNCTIONS.iter().find(|f| f.name == name)
}

/// What a module imports, as far as linking cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind<'a> {
    /// A function of this type.
    Func {
        /// Parameter types.
        params: &'a [ValueType],
        /// Result types.
        results: &'a [ValueType],
    },
    /// A memory, table or global.
    Other,
}

/// How the host links an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// With the host function of that name.
    Host(&'static HostFunction),
    /// With a stub that fails the call (a function the host does not provide).
    Stub,
}

/// How the host links the import `module.name`, or why it cannot: as in Polkadot's host, it
/// provides only functions from module `env` (a memory import is turned into the module's
/// own memory at preparation, so none is left here), and a provided function only with its
/// own type.
pub fn check_import(module: &str, name: &str, kind: ImportKind<'_>) -> Result<Link, String> {
    if module != "env" {
        return Err(format!(
            "the host provides no imports from module `{module}` ({module}:{name})"
        ));
    }
    let ImportKind::Func { params, results } = kind else {
        return Err(format!(
            "the host provides only functions, not `{module}:{name}`"
        ));
    };
    match lookup(module, name) {
        None => Ok(Link::Stub),
        Some(f) if f.params == params && f.results == results => Ok(Link::Host(f)),
        Some(f) => Err(format!(
            "`{module}:{name}` is imported as {params:?} -> {results:?}, but the host provides {:?} -> {:?}",
            f.params, f.results
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = HOST_FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), HOST_FUNCTIONS.len());
    }

    #[test]
    fn imports_link_as_polkadots_host_links_them() {
        let func = |params, results| ImportKind::Func { params, results };
        assert_eq!(
            check_import("env", "ext_allocator_free_version_1", func(&[I32], &[])),
            Ok(Link::Host(
                lookup("env", "ext_allocator_free_version_1").unwrap()
            ))
        );
        assert_eq!(
            check_import("env", "ext_storage_get_version_1", func(&[I64], &[I64])),
            Ok(Link::Stub)
        );
        for refused in [
            check_import("env", "ext_allocator_free_version_1", func(&[I64], &[])),
            check_import("other", "ext_allocator_free_version_1", func(&[I32], &[])),
            check_import("env", "memory", ImportKind::Other),
            check_import("env", "table", ImportKind::Other),
        ] {
            assert!(refused.is_err(), "{refused:?}");
        }
    }
}
