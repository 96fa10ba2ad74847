//! The names of the host functions the execute worker implements, so that tools that never
//! run code (`pvf inspect`) can tell a module's supported imports from its stubbed ones.
//!
//! The semantics of each, with its version, are documented in one table in the execute
//! worker's `host_functions` module; a unit test there keeps the linker and this list equal.

/// Every implemented host function, imported from module `env`.
pub const SUPPORTED: &[&str] = &[
    "ext_allocator_malloc_version_1",
    "ext_allocator_free_version_1",
    "ext_panic_handler_abort_on_panic_version_1",
    "ext_logging_log_version_1",
    "ext_logging_max_level_version_1",
    "ext_hashing_blake2_128_version_1",
    "ext_hashing_blake2_256_version_1",
    "ext_hashing_twox_64_version_1",
    "ext_hashing_twox_128_version_1",
    "ext_hashing_twox_256_version_1",
    "ext_hashing_keccak_256_version_1",
    "ext_hashing_sha2_256_version_1",
    "ext_misc_print_num_version_1",
    "ext_misc_print_utf8_version_1",
    "ext_misc_print_hex_version_1",
    "ext_misc_runtime_version_version_1",
    "ext_trie_blake2_256_ordered_root_version_1",
    "ext_trie_blake2_256_ordered_root_version_2",
    "ext_trie_keccak_256_ordered_root_version_1",
    "ext_trie_keccak_256_ordered_root_version_2",
    "ext_crypto_ed25519_verify_version_1",
    "ext_crypto_sr25519_verify_version_1",
    "ext_crypto_sr25519_verify_version_2",
    "ext_crypto_ed25519_batch_verify_version_1",
    "ext_crypto_sr25519_batch_verify_version_1",
    "ext_crypto_start_batch_verify_version_1",
    "ext_crypto_finish_batch_verify_version_1",
    "ext_crypto_secp256k1_ecdsa_recover_version_1",
    "ext_crypto_secp256k1_ecdsa_recover_version_2",
    "ext_crypto_secp256k1_ecdsa_recover_compressed_version_1",
    "ext_crypto_secp256k1_ecdsa_recover_compressed_version_2",
];

/// Whether an import `module.name` is implemented (anything else is linked as a stub).
pub fn is_supported(module: &str, name: &str) -> bool {
    module == "env" && SUPPORTED.contains(&name)
}
