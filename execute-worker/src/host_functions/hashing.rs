//! `ext_hashing_*`: a slice in, a fixed-size digest written into host-allocated memory out.

use blake2::digest::consts::{U16, U32};
use blake2::{Blake2b, Digest};
use twox_hash::XxHash64;
use wasmtime::{Caller, Linker};

use super::HostState;
use super::abi::{read_slice, write_new};

/// BLAKE2b with a 16-byte digest (not a truncated 64-byte one: the length is a parameter).
pub fn blake2_128(data: &[u8]) -> [u8; 16] {
    Blake2b::<U16>::digest(data).into()
}

/// BLAKE2b with a 32-byte digest.
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// Keccak-256 as Ethereum uses it (the original padding, not SHA3-256).
pub fn keccak_256(data: &[u8]) -> [u8; 32] {
    sha3::Keccak256::digest(data).into()
}

/// Keccak-512 (the original padding, not SHA3-512).
pub fn keccak_512(data: &[u8]) -> [u8; 64] {
    sha3::Keccak512::digest(data).into()
}

/// SHA-256.
pub fn sha2_256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// `N / 8` XXH64 digests with seeds 0, 1, …, each little-endian, concatenated.
pub fn twox<const N: usize>(data: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (seed, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&XxHash64::oneshot(seed as u64, data).to_le_bytes());
    }
    out
}

/// Defines the hashing functions.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define(linker, "ext_hashing_blake2_128_version_1", blake2_128)?;
    define(linker, "ext_hashing_blake2_256_version_1", blake2_256)?;
    define(linker, "ext_hashing_twox_64_version_1", twox::<8>)?;
    define(linker, "ext_hashing_twox_128_version_1", twox::<16>)?;
    define(linker, "ext_hashing_twox_256_version_1", twox::<32>)?;
    define(linker, "ext_hashing_keccak_256_version_1", keccak_256)?;
    define(linker, "ext_hashing_keccak_512_version_1", keccak_512)?;
    define(linker, "ext_hashing_sha2_256_version_1", sha2_256)?;
    Ok(())
}

/// Defines `name` as `(i64 data) -> i32 digest_ptr` over `hash`.
fn define<const N: usize>(
    linker: &mut Linker<HostState>,
    name: &str,
    hash: fn(&[u8]) -> [u8; N],
) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        name,
        move |mut caller: Caller<'_, HostState>, data: u64| -> wasmtime::Result<u32> {
            let digest = hash(&read_slice(&caller, data)?);
            write_new(&mut caller, &digest)
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_functions::testing::hex;

    #[test]
    fn blake2_matches_the_reference_implementation() {
        // BLAKE2 reference (RFC 7693 algorithm, digest length as a parameter), as printed by
        // the reference tool `b2sum -l 256` / `-l 128` for "" and "abc".
        assert_eq!(
            blake2_256(b""),
            hex("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
        );
        assert_eq!(
            blake2_256(b"abc"),
            hex("bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319")
        );
        assert_eq!(blake2_128(b""), hex("cae66941d9efbd404e4d88758ea67670"));
        assert_eq!(blake2_128(b"abc"), hex("cf4ab791c62b8d2b2109c90275287816"));
    }

    #[test]
    fn sha2_matches_nist() {
        // FIPS 180-2, Appendix B.1 ("abc") and the empty message.
        assert_eq!(
            sha2_256(b"abc"),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            sha2_256(b""),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn keccak_matches_the_keccak_team_and_ethereum() {
        // Keccak-256 (original padding) of "": the value Ethereum publishes as the empty hash.
        assert_eq!(
            keccak_256(b""),
            hex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        );
        assert_eq!(
            keccak_256(b"abc"),
            hex("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
        );
    }

    #[test]
    fn keccak_512_matches_the_keccak_teams_values() {
        // Keccak-512 (original padding) of "" and "abc", as the Keccak team publishes them;
        // sp-io 49's `keccak_512` gives the same.
        assert_eq!(
            keccak_512(b"").to_vec(),
            hex::decode("0eab42de4c3ceb9235fc91acffe746b29c29a8c366b7c60e4e67c466f36a4304c00fa9caf9d87976ba469bcbe06713b435f091ef2769fb160cdab33d3670680e").unwrap()
        );
        assert_eq!(
            keccak_512(b"abc").to_vec(),
            hex::decode("18587dc2ea106b9a1563e32b3312421ca164c7f1f07bc922a9c83d77cea3a1e5d0c69910739025372dc14ac9642629379540c17e2a65b19d77aa511a9d00bb96").unwrap()
        );
    }

    #[test]
    fn twox_matches_xxhash_and_substrate_storage_prefixes() {
        // xxHash reference: XXH64("", seed 0) = 0xEF46DB3751D8E999, stored little-endian.
        assert_eq!(twox::<8>(b""), 0xEF46_DB37_51D8_E999u64.to_le_bytes());
        // Substrate's published storage prefixes: twox_128("System"), twox_128("Balances").
        assert_eq!(
            twox::<16>(b"System"),
            hex("26aa394eea5630e07c48ae0c9558cef7")
        );
        assert_eq!(
            twox::<16>(b"Balances"),
            hex("c2261276cc9d1f8598ea4b6a74b15c2f")
        );
        // twox_256 extends twox_128 with seeds 2 and 3.
        let wide = twox::<32>(b"System");
        assert_eq!(wide[..16], twox::<16>(b"System"));
        assert_eq!(wide[16..24], XxHash64::oneshot(2, b"System").to_le_bytes());
    }
}
