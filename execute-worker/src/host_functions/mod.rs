//! The host functions a validation function may import, and stubs for the rest.
//!
//! Each family is a module with a `register` function; the ABI (how slices and results
//! cross the boundary) is in the `abi` module. The set is exactly the one Polkadot's PVF host
//! registers; the names and types are in `pvf_common::host_api::HOST_FUNCTIONS` (which `pvf
//! inspect` and the prepare worker read; a test keeps it and the linker equal). Semantics
//! follow Polkadot's host for each version, because a host function's result can decide a
//! verdict.
//!
//! | import (module `env`) | signature | behaviour |
//! |---|---|---|
//! | `ext_allocator_malloc_version_1` | `(i32) -> i32` | freeing-bump allocation ([`crate::allocator`]); failure traps |
//! | `ext_allocator_free_version_1` | `(i32)` | freeing-bump free; a bad or double free traps |
//! | `ext_panic_handler_abort_on_panic_version_1` | `(i64 msg)` | ends the call: Invalid with the message (at most 64 KiB of it) |
//! | `ext_logging_log_version_1` | `(i32 level, i64 target, i64 msg)` | to `tracing`, volume-bounded; level > 4 or non-UTF-8 target traps; non-UTF-8 message dropped |
//! | `ext_logging_max_level_version_1` | `() -> i32` | this process's `tracing` level (0 off … 5 trace) |
//! | `ext_hashing_blake2_128_version_1` | `(i64) -> i32` | BLAKE2b-128 into host-allocated memory |
//! | `ext_hashing_blake2_256_version_1` | `(i64) -> i32` | BLAKE2b-256 |
//! | `ext_hashing_twox_64_version_1` | `(i64) -> i32` | XXH64 seed 0, little-endian |
//! | `ext_hashing_twox_128_version_1` | `(i64) -> i32` | XXH64 seeds 0, 1 concatenated |
//! | `ext_hashing_twox_256_version_1` | `(i64) -> i32` | XXH64 seeds 0..=3 concatenated |
//! | `ext_hashing_keccak_256_version_1` | `(i64) -> i32` | Keccak-256 (pre-NIST padding) |
//! | `ext_hashing_keccak_512_version_1` | `(i64) -> i32` | Keccak-512 (pre-NIST padding) |
//! | `ext_hashing_sha2_256_version_1` | `(i64) -> i32` | SHA-256 |
//! | `ext_misc_print_num_version_1` | `(i64)` | debug log |
//! | `ext_misc_print_utf8_version_1` | `(i64)` | debug log if valid UTF-8 |
//! | `ext_misc_print_hex_version_1` | `(i64)` | debug log in hex |
//! | `ext_misc_runtime_version_version_1` | `(i64 wasm) -> i64` | SCALE `Option<Vec<u8>>`: the blob's embedded `runtime_version`/`runtime_apis` sections re-encoded; `None` on any failure |
//! | `ext_trie_{blake2,keccak}_256_root_version_1` | `(i64 pairs) -> i32` | root of SCALE `Vec<(Vec<u8>, Vec<u8>)>`, state version 0 |
//! | `ext_trie_{blake2,keccak}_256_root_version_2` | `(i64 pairs, i32 version) -> i32` | state version 0, or 1 (the low byte of the argument is 1 or 2, as Polkadot reads it); other versions trap |
//! | `ext_trie_{blake2,keccak}_256_ordered_root_version_1` | `(i64 items) -> i32` | root of SCALE `Vec<Vec<u8>>` keyed by compact index, state version 0 |
//! | `ext_trie_{blake2,keccak}_256_ordered_root_version_2` | `(i64 items, i32 version) -> i32` | as `root` version 2 |
//! | `ext_trie_{blake2,keccak}_256_verify_proof_version_1` | `(i32 root, i64 proof, i64 key, i64 value) -> i32` | compact proof (SCALE `Vec<Vec<u8>>`) of key → value, state version 0 |
//! | `ext_trie_{blake2,keccak}_256_verify_proof_version_2` | `(i32 root, i64 proof, i64 key, i64 value, i32 version) -> i32` | as version 1, state version 0 or 1 |
//! | `ext_crypto_ed25519_verify_version_1` | `(i32 sig, i64 msg, i32 pub) -> i32` | ZIP-215 rules (`ed25519-zebra`, as Polkadot) |
//! | `ext_crypto_sr25519_verify_version_1` | `(i32 sig, i64 msg, i32 pub) -> i32` | schnorrkel, also accepting pre-0.8 signatures |
//! | `ext_crypto_sr25519_verify_version_2` | `(i32 sig, i64 msg, i32 pub) -> i32` | schnorrkel, current signatures only |
//! | `ext_crypto_ecdsa_verify_version_1` | `(i32 sig, i64 msg, i32 pub) -> i32` | key recovered from BLAKE2b-256 of msg equals the 33-byte key; overflowing r/s reduced |
//! | `ext_crypto_ecdsa_verify_version_2` | `(i32 sig, i64 msg, i32 pub) -> i32` | as version 1, overflowing r/s rejected |
//! | `ext_crypto_ecdsa_verify_prehashed_version_1` | `(i32 sig, i32 hash, i32 pub) -> i32` | as version 2 on a given 32-byte hash |
//! | `ext_crypto_{sr25519,ecdsa}_batch_verify_version_1` | `(i32 sig, i64 msg, i32 pub) -> i32` | verifies now, as the latest version of the scheme's verify; inside a batch also records the result |
//! | `ext_crypto_ed25519_batch_verify_version_1` | `(i32 sig, i64 msg, i32 pub) -> i32` | traps, as every call does in Polkadot's host (a re-entrant borrow there) |
//! | `ext_crypto_start_batch_verify_version_1` | `()` | opens a batch; a second open traps |
//! | `ext_crypto_finish_batch_verify_version_1` | `() -> i32` | closes the batch: 1 if every recorded signature was valid; without an open batch traps |
//! | `ext_crypto_secp256k1_ecdsa_recover_version_1` | `(i32 sig, i32 msg) -> i64` | SCALE `Result<[u8; 64], _>`; overflowing r/s are reduced (accepted) |
//! | `ext_crypto_secp256k1_ecdsa_recover_version_2` | `(i32 sig, i32 msg) -> i64` | as v1, but overflowing r/s are rejected |
//! | `ext_crypto_secp256k1_ecdsa_recover_compressed_version_1` | `(i32 sig, i32 msg) -> i64` | as v1, 33-byte compressed key |
//! | `ext_crypto_secp256k1_ecdsa_recover_compressed_version_2` | `(i32 sig, i32 msg) -> i64` | as v2, 33-byte compressed key |
//! | `ext_crypto_{ed25519,sr25519,ecdsa}_{public_keys,generate,sign}_version_1`, `ext_crypto_ecdsa_sign_prehashed_version_1` | see `host_api` | a validation has no keystore: traps |
//! | any other function from `env` | its own | a stub: calling it ends the job as Internal, naming it |
//! | anything else (another module, a table, a global, a second memory) | — | the runtime cannot be constructed |
//!
//! A pointer or length outside memory, or an argument the version does not accept, traps
//! (Invalid), as in Polkadot's host.

mod abi;
mod allocator;
mod crypto;
mod hashing;
mod keystore;
mod logging;
mod misc;
mod panic;
mod runtime_version;
mod trie;

/// Helpers the families' tests share.
#[cfg(test)]
mod testing {
    /// A fixed-size value from hex.
    pub fn hex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }
}

use std::collections::HashSet;

use pvf_common::host_api::{self, ImportKind, Link, ValueType};
use wasmtime::{Engine, ExternType, Linker, Memory, Module, StoreLimits, ValType};

pub use allocator::with_allocator;
use logging::LogBudget;

use crate::allocator::{AllocError, FreeingBump};
use crate::runtime::RuntimeError;

/// Per-call state the host functions share.
pub struct HostState {
    /// Bounds memory growth to the executor parameters.
    pub limits: StoreLimits,
    /// The instance's memory, once instantiated.
    pub memory: Option<Memory>,
    /// The memory bound in pages.
    pub max_pages: u64,
    /// The guest heap allocator, once instantiated.
    pub allocator: Option<FreeingBump>,
    /// What the guest may still log in this call.
    log_budget: LogBudget,
    /// Between `start_batch_verify` and `finish_batch_verify`: whether every signature
    /// checked through a `*_batch_verify` function so far was valid.
    batch_valid: Option<bool>,
}

impl HostState {
    /// State for one call, before instantiation.
    pub fn new(limits: StoreLimits, max_pages: u64) -> Self {
        Self {
            limits,
            memory: None,
            max_pages,
            allocator: None,
            log_budget: LogBudget::default(),
            batch_valid: None,
        }
    }
}

/// A host function ended the call. Traps and these are told apart when the call returns.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The guest called an import this host does not implement.
    #[error("call to unsupported host function `{0}`")]
    Unsupported(String),
    /// The guest panicked and said why.
    #[error("guest panicked: {0}")]
    Panic(String),
    /// The allocator refused.
    #[error("allocator: {0}")]
    Allocator(#[from] AllocError),
    /// A pointer or length from the guest is outside its memory.
    #[error("host function argument out of bounds")]
    OutOfBounds,
    /// An argument the host function's version does not accept.
    #[error("{function}: {reason}")]
    BadArgument {
        /// The host function.
        function: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A host function ran before the instance had its memory and allocator.
    #[error("host function called before instantiation finished")]
    NotReady,
    /// A keystore function was called; a validation has none.
    #[error("{0}: a validation has no keystore")]
    NoKeystore(&'static str),
}

/// A linker with every host function and a stub for every other function `module` imports
/// from `env`. Any other import is refused, as Polkadot's host refuses it.
pub fn linker(engine: &Engine, module: &Module) -> Result<Linker<HostState>, RuntimeError> {
    let local = |e: wasmtime::Error| RuntimeError::Local(format!("defining host functions: {e:#}"));
    let mut linker = Linker::new(engine);
    register_supported(&mut linker).map_err(local)?;
    let mut stubbed = HashSet::new();
    for import in module.imports() {
        let ty = import.ty();
        let types = match &ty {
            ExternType::Func(f) => Some((value_types(f.params()), value_types(f.results()))),
            _ => None,
        };
        let kind = match &types {
            Some((Some(params), Some(results))) => ImportKind::Func { params, results },
            _ => ImportKind::Other,
        };
        let link = host_api::check_import(import.module(), import.name(), kind)
            .map_err(RuntimeError::Construction)?;
        // A module may import the same function more than once; link it once.
        let (Link::Stub, ExternType::Func(ty)) = (link, ty) else {
            continue;
        };
        if !stubbed.insert(import.name()) {
            continue;
        }
        if let ImportKind::Func { params, results } = kind
            && panic::handles(import.name(), params, results)
        {
            panic::define(&mut linker).map_err(local)?;
            continue;
        }
        let name = format!("{}:{}", import.module(), import.name());
        linker
            .func_new(import.module(), import.name(), ty, move |_, _, _| {
                Err(wasmtime::Error::new(HostError::Unsupported(name.clone())))
            })
            .map_err(local)?;
    }
    Ok(linker)
}

/// The host API's names for wasmtime's value types (`None` for types no host function has).
fn value_types(types: impl Iterator<Item = ValType>) -> Option<Vec<ValueType>> {
    types
        .map(|t| match t {
            ValType::I32 => Some(ValueType::I32),
            ValType::I64 => Some(ValueType::I64),
            ValType::F32 => Some(ValueType::F32),
            ValType::F64 => Some(ValueType::F64),
            _ => None,
        })
        .collect()
}

/// Defines every family's host functions.
fn register_supported(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    allocator::register(linker)?;
    logging::register(linker)?;
    hashing::register(linker)?;
    misc::register(linker)?;
    trie::register(linker)?;
    crypto::register(linker)?;
    keystore::register(linker)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use wasmtime::{Instance, Store, StoreLimitsBuilder};

    use super::*;

    #[test]
    fn the_linker_defines_exactly_the_host_api_table_with_its_types() {
        let engine = Engine::default();
        let mut linker = Linker::new(&engine);
        register_supported(&mut linker).unwrap();
        let mut store = Store::new(
            &engine,
            HostState::new(StoreLimitsBuilder::new().build(), 1),
        );
        let items: Vec<_> = linker
            .iter(&mut store)
            .map(|(module, name, item)| (module.to_owned(), name.to_owned(), item))
            .collect();
        let mut defined: Vec<(String, Vec<ValueType>, Vec<ValueType>)> = items
            .into_iter()
            .map(|(module, name, item)| {
                assert_eq!(module, "env");
                let ty = item.into_func().unwrap().ty(&store);
                let params = value_types(ty.params()).unwrap();
                let results = value_types(ty.results()).unwrap();
                (name, params, results)
            })
            .collect();
        defined.sort_by(|a, b| a.0.cmp(&b.0));
        let mut listed: Vec<_> = host_api::HOST_FUNCTIONS
            .iter()
            .map(|f| (f.name.to_string(), f.params.to_vec(), f.results.to_vec()))
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(defined, listed);
    }

    #[test]
    fn the_panic_handler_links_only_with_its_own_type_and_other_names_as_stubs() {
        let engine = Engine::default();
        let link = |wat: &str| {
            let module = Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
            linker(&engine, &module).and_then(|linker| {
                linker
                    .instantiate_pre(&module)
                    .map(drop)
                    .map_err(|e| RuntimeError::Construction(e.to_string()))
            })
        };
        link(r#"(module (import "env" "ext_panic_handler_abort_on_panic_version_1" (func (param i64))))"#).unwrap();
        link(r#"(module (import "env" "ext_panic_handler_abort_on_panic_version_1" (func (param i32))))"#).unwrap();
        link(r#"(module (import "env" "ext_storage_get_version_1" (func (param i64) (result i64)))
                        (import "env" "ext_storage_get_version_1" (func (param i64) (result i64))))"#)
            .unwrap();
        assert!(matches!(
            link(
                r#"(module (import "env" "ext_hashing_keccak_512_version_1" (func (param i32) (result i32))))"#
            ),
            Err(RuntimeError::Construction(_))
        ));
    }

    #[test]
    fn keystore_functions_link_with_their_types_and_trap() {
        let engine = Engine::default();
        let wat = r#"(module
            (import "env" "ext_crypto_sr25519_generate_version_1" (func $g (param i32 i64) (result i32)))
            (memory (export "memory") 1)
            (func (export "generate") (result i32) (call $g (i32.const 0) (i64.const 0))))"#;
        let module = Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let linker = linker(&engine, &module).unwrap();
        let mut store = Store::new(
            &engine,
            HostState::new(StoreLimitsBuilder::new().build(), 1),
        );
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let generate = instance
            .get_typed_func::<(), i32>(&mut store, "generate")
            .unwrap();
        let err = generate.call(&mut store, ()).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<HostError>(),
                Some(HostError::NoKeystore(_))
            ),
            "{err:?}"
        );
    }

    /// Every supported function imported with the signature the table documents, and a few
    /// exported wrappers that call through the ABI.
    const ALL_IMPORTS: &str = r#"(module
        (import "env" "ext_allocator_malloc_version_1" (func (param i32) (result i32)))
        (import "env" "ext_allocator_free_version_1" (func (param i32)))
        (import "env" "ext_panic_handler_abort_on_panic_version_1" (func (param i64)))
        (import "env" "ext_logging_log_version_1" (func (param i32 i64 i64)))
        (import "env" "ext_logging_max_level_version_1" (func (result i32)))
        (import "env" "ext_hashing_blake2_128_version_1" (func (param i64) (result i32)))
        (import "env" "ext_hashing_blake2_256_version_1" (func (param i64) (result i32)))
        (import "env" "ext_hashing_twox_64_version_1" (func (param i64) (result i32)))
        (import "env" "ext_hashing_twox_128_version_1" (func (param i64) (result i32)))
        (import "env" "ext_hashing_twox_256_version_1" (func (param i64) (result i32)))
        (import "env" "ext_hashing_keccak_256_version_1" (func (param i64) (result i32)))
        (import "env" "ext_hashing_sha2_256_version_1" (func $sha2 (param i64) (result i32)))
        (import "env" "ext_misc_print_num_version_1" (func (param i64)))
        (import "env" "ext_misc_print_utf8_version_1" (func (param i64)))
        (import "env" "ext_misc_print_hex_version_1" (func (param i64)))
        (import "env" "ext_misc_runtime_version_version_1" (func $version (param i64) (result i64)))
        (import "env" "ext_trie_blake2_256_ordered_root_version_1" (func (param i64) (result i32)))
        (import "env" "ext_trie_blake2_256_ordered_root_version_2" (func $trie (param i64 i32) (result i32)))
        (import "env" "ext_trie_keccak_256_ordered_root_version_1" (func (param i64) (result i32)))
        (import "env" "ext_trie_keccak_256_ordered_root_version_2" (func (param i64 i32) (result i32)))
        (import "env" "ext_crypto_ed25519_verify_version_1" (func $ed25519 (param i32 i64 i32) (result i32)))
        (import "env" "ext_crypto_sr25519_verify_version_1" (func (param i32 i64 i32) (result i32)))
        (import "env" "ext_crypto_sr25519_verify_version_2" (func (param i32 i64 i32) (result i32)))
        (import "env" "ext_crypto_ed25519_batch_verify_version_1" (func $ed_batch (param i32 i64 i32) (result i32)))
        (import "env" "ext_crypto_sr25519_batch_verify_version_1" (func $sr_batch (param i32 i64 i32) (result i32)))
        (import "env" "ext_crypto_start_batch_verify_version_1" (func $start (param)))
        (import "env" "ext_crypto_finish_batch_verify_version_1" (func $finish (result i32)))
        (import "env" "ext_crypto_secp256k1_ecdsa_recover_version_1" (func $recover (param i32 i32) (result i64)))
        (import "env" "ext_crypto_secp256k1_ecdsa_recover_version_2" (func $recover2 (param i32 i32) (result i64)))
        (import "env" "ext_crypto_secp256k1_ecdsa_recover_compressed_version_1" (func (param i32 i32) (result i64)))
        (import "env" "ext_crypto_secp256k1_ecdsa_recover_compressed_version_2" (func (param i32 i32) (result i64)))
        (memory (export "memory") 2)
        (func (export "sha2") (param i64) (result i32) (call $sha2 (local.get 0)))
        (func (export "trie") (param i64 i32) (result i32) (call $trie (local.get 0) (local.get 1)))
        (func (export "ed25519") (param i32 i64 i32) (result i32)
            (call $ed25519 (local.get 0) (local.get 1) (local.get 2)))
        (func (export "recover2") (param i32 i32) (result i64)
            (call $recover2 (local.get 0) (local.get 1)))
        (func (export "version") (param i64) (result i64) (call $version (local.get 0)))
        (func (export "start") (call $start))
        (func (export "finish") (result i32) (call $finish))
        (func (export "ed_batch") (param i32 i64 i32) (result i32)
            (call $ed_batch (local.get 0) (local.get 1) (local.get 2)))
        (func (export "sr_batch") (param i32 i64 i32) (result i32)
            (call $sr_batch (local.get 0) (local.get 1) (local.get 2))))"#;

    /// An instance of [`ALL_IMPORTS`] with its heap starting at 64 KiB.
    /// RFC 8032 section 7.1 TEST 1: the signature at 0 and the key at 64 (its message is
    /// empty).
    fn write_rfc8032_test1(store: &mut Store<HostState>, memory: Memory) {
        let sig: [u8; 64] = testing::hex(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
        let key: [u8; 32] =
            testing::hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        memory.write(&mut *store, 0, &sig).unwrap();
        memory.write(&mut *store, 64, &key).unwrap();
    }

    fn instance() -> (Store<HostState>, Instance, Memory) {
        let engine = Engine::default();
        let module = Module::new(&engine, wat::parse_str(ALL_IMPORTS).unwrap()).unwrap();
        let linker = linker(&engine, &module).unwrap();
        let limits = StoreLimitsBuilder::new().memory_size(16 << 16).build();
        let mut store = Store::new(&engine, HostState::new(limits, 16));
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        store.data_mut().memory = Some(memory);
        store.data_mut().allocator = Some(FreeingBump::new(65_536));
        (store, instance, memory)
    }

    fn read(store: &Store<HostState>, memory: Memory, ptr: u32, len: usize) -> Vec<u8> {
        memory.data(store)[ptr as usize..ptr as usize + len].to_vec()
    }

    #[test]
    fn every_documented_signature_links_and_results_come_back_through_the_abi() {
        let (mut store, instance, memory) = instance();
        memory.write(&mut store, 100, b"abc").unwrap();
        let sha2 = instance
            .get_typed_func::<i64, i32>(&mut store, "sha2")
            .unwrap();
        let ptr = sha2.call(&mut store, 3 << 32 | 100).unwrap();
        // FIPS 180-2 B.1, written into the guest's heap (first block: heap base + 8).
        assert_eq!(ptr, 65_536 + 8);
        assert_eq!(
            hex::encode(read(&store, memory, ptr as u32, 32)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Out of bounds input traps instead of reading anything.
        assert!(sha2.call(&mut store, (3 << 32) | ((2 << 16) - 2)).is_err());
    }

    #[test]
    fn fixed_size_arguments_and_scale_results_cross_the_abi() {
        let (mut store, instance, memory) = instance();
        // RFC 8032 TEST 1; the message is empty.
        write_rfc8032_test1(&mut store, memory);
        let ed25519 = instance
            .get_typed_func::<(i32, i64, i32), i32>(&mut store, "ed25519")
            .unwrap();
        assert_eq!(ed25519.call(&mut store, (0, 0, 64)).unwrap(), 1);
        assert_eq!(ed25519.call(&mut store, (0, 1 << 32 | 200, 64)).unwrap(), 0);
        // Recovery v2 with r = n: SCALE Err(BadRS) = [1, 0], returned packed.
        let mut bad =
            hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
                .unwrap();
        bad.extend([0; 32]);
        bad.push(27);
        memory.write(&mut store, 300, &bad).unwrap();
        let recover2 = instance
            .get_typed_func::<(i32, i32), i64>(&mut store, "recover2")
            .unwrap();
        let packed = recover2.call(&mut store, (300, 400)).unwrap() as u64;
        let (ptr, len) = abi::unpack(packed);
        assert_eq!(read(&store, memory, ptr, len as usize), [1, 0]);
    }

    #[test]
    fn trie_state_versions_and_runtime_version_results() {
        let (mut store, instance, memory) = instance();
        // SCALE Vec<Vec<u8>> with no items: the empty root.
        memory.write(&mut store, 0, &[0]).unwrap();
        let trie = instance
            .get_typed_func::<(i64, i32), i32>(&mut store, "trie")
            .unwrap();
        for version in [0, 1, 2, 256] {
            let ptr = trie.call(&mut store, (1 << 32, version)).unwrap();
            assert_eq!(
                hex::encode(read(&store, memory, ptr as u32, 32)),
                "03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314",
                "state version {version}"
            );
        }
        let trap = trie.call(&mut store, (1 << 32, 3)).unwrap_err();
        assert!(format!("{trap:?}").contains("state version 3"), "{trap:?}");
        // Not Wasm: runtime_version answers SCALE None (one zero byte).
        let version = instance
            .get_typed_func::<i64, i64>(&mut store, "version")
            .unwrap();
        let (ptr, len) = abi::unpack(version.call(&mut store, 1 << 32).unwrap() as u64);
        assert_eq!(read(&store, memory, ptr, len as usize), [0]);
    }

    #[test]
    fn a_batch_records_failures_and_must_be_opened_once_and_closed_once() {
        let (mut store, instance, memory) = instance();
        // An sr25519 signature of the empty message at 0, its key at 64; the message is
        // empty (valid) or 1 byte.
        let pair = schnorrkel::MiniSecretKey::from_bytes(&[7; 32])
            .unwrap()
            .expand_to_keypair(schnorrkel::ExpansionMode::Ed25519);
        let sig = pair.sign_simple(crypto::SR25519_CONTEXT, b"").to_bytes();
        memory.write(&mut store, 0, &sig).unwrap();
        memory
            .write(&mut store, 64, &pair.public.to_bytes())
            .unwrap();
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "start")
            .unwrap();
        let finish = instance
            .get_typed_func::<(), i32>(&mut store, "finish")
            .unwrap();
        let verify = instance
            .get_typed_func::<(i32, i64, i32), i32>(&mut store, "sr_batch")
            .unwrap();
        // Outside a batch it simply verifies.
        assert_eq!(verify.call(&mut store, (0, 0, 64)).unwrap(), 1);
        assert_eq!(verify.call(&mut store, (0, 1 << 32, 64)).unwrap(), 0);
        assert!(finish.call(&mut store, ()).is_err(), "finish without start");

        start.call(&mut store, ()).unwrap();
        assert_eq!(verify.call(&mut store, (0, 0, 64)).unwrap(), 1);
        assert_eq!(finish.call(&mut store, ()).unwrap(), 1);
        start.call(&mut store, ()).unwrap();
        assert_eq!(verify.call(&mut store, (0, 1 << 32, 64)).unwrap(), 0);
        assert_eq!(verify.call(&mut store, (0, 0, 64)).unwrap(), 1);
        assert_eq!(
            finish.call(&mut store, ()).unwrap(),
            0,
            "one failure fails the batch"
        );

        let (mut store, instance, _) = self::instance();
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "start")
            .unwrap();
        start.call(&mut store, ()).unwrap();
        assert!(start.call(&mut store, ()).is_err(), "a second start");
    }

    #[test]
    fn ed25519_batch_verify_traps_like_polkadots_host() {
        let (mut store, instance, memory) = instance();
        write_rfc8032_test1(&mut store, memory);
        let verify = instance
            .get_typed_func::<(i32, i64, i32), i32>(&mut store, "ed_batch")
            .unwrap();
        assert!(
            verify.call(&mut store, (0, 0, 64)).is_err(),
            "outside a batch"
        );
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "start")
            .unwrap();
        start.call(&mut store, ()).unwrap();
        assert!(
            verify.call(&mut store, (0, 0, 64)).is_err(),
            "inside a batch"
        );
    }
}
