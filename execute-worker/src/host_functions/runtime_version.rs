//! `ext_misc_runtime_version_version_1`: the runtime version embedded in a code blob.
//!
//! Like Polkadot's PVF host, this never runs the code: it reads the blob's `runtime_version`
//! and `runtime_apis` custom sections, decodes the version with the `Core` API version as a
//! hint (which decides the fields present), and re-encodes it. The blob may be compressed.
//! Any failure gives `None`. The blob is parsed with the same parser as the stack limiter
//! (and as Polkadot's host), so the same blobs are refused.

use parity_scale_codec::{Decode, Encode};
use pvf_common::compress::maybe_decompress;
use wasm_instrument::parity_wasm::{self, elements::Module};

/// Largest decompressed blob this function reads: Polkadot's `CODE_BLOB_BOMB_LIMIT`.
const BLOB_BOMB_LIMIT: usize = 50 * 1024 * 1024;

/// The `Core` runtime API's id: BLAKE2b-64 of "Core".
const CORE_API_ID: [u8; 8] = [0xdf, 0x6a, 0xcb, 0x68, 0x99, 0x07, 0x60, 0x9b];

/// One `runtime_apis` entry: the API id and its version.
type Api = ([u8; 8], u32);

/// The runtime version as the guest decodes it (all fields are encoded).
#[derive(Debug, PartialEq, Eq, Encode)]
struct RuntimeVersion {
    spec_name: String,
    impl_name: String,
    authoring_version: u32,
    spec_version: u32,
    impl_version: u32,
    apis: Vec<Api>,
    transaction_version: u32,
    system_version: u8,
}

/// The SCALE-encoded version embedded in `blob`, or why there is none.
pub fn embedded_version(blob: &[u8]) -> Result<Vec<u8>, String> {
    let code = maybe_decompress(blob, BLOB_BOMB_LIMIT).map_err(|e| e.to_string())?;
    let module = parity_wasm::deserialize_buffer::<Module>(&code).map_err(|e| e.to_string())?;
    let section = |name: &str| {
        module
            .custom_sections()
            .find(|s| s.name() == name)
            .map(|s| s.payload())
    };
    let mut version = section("runtime_version").ok_or("no runtime_version section")?;
    let apis = section("runtime_apis").map(decode_apis).transpose()?;
    let core = apis.as_deref().and_then(core_version);
    let mut decoded = decode_with_hint(&mut version, core).map_err(|e| e.to_string())?;
    if let Some(apis) = apis {
        decoded.apis = apis;
    }
    Ok(decoded.encode())
}

/// The `runtime_apis` section: 12-byte entries, an id and a little-endian version.
fn decode_apis(section: &[u8]) -> Result<Vec<Api>, String> {
    if !section.len().is_multiple_of(12) {
        return Err("runtime_apis section has a partial entry".into());
    }
    Ok(section
        .chunks_exact(12)
        .map(|entry| {
            let mut id = [0u8; 8];
            id.copy_from_slice(&entry[..8]);
            let mut version = [0u8; 4];
            version.copy_from_slice(&entry[8..]);
            (id, u32::from_le_bytes(version))
        })
        .collect())
}

fn core_version(apis: &[Api]) -> Option<u32> {
    apis.iter()
        .find(|(id, _)| *id == CORE_API_ID)
        .map(|(_, v)| *v)
}

/// Decodes a version whose trailing fields exist only from some `Core` version on:
/// `transaction_version` from 3, `system_version` from 4. Without a hint, the `Core` entry
/// of the version's own API list decides.
fn decode_with_hint(
    input: &mut &[u8],
    core: Option<u32>,
) -> Result<RuntimeVersion, parity_scale_codec::Error> {
    let spec_name = String::decode(input)?;
    let impl_name = String::decode(input)?;
    let authoring_version = u32::decode(input)?;
    let spec_version = u32::decode(input)?;
    let impl_version = u32::decode(input)?;
    let apis = Vec::<Api>::decode(input)?;
    let core = core.or_else(|| core_version(&apis)).unwrap_or(0);
    let transaction_version = if core >= 3 { u32::decode(input)? } else { 1 };
    let system_version = if core >= 4 { u8::decode(input)? } else { 0 };
    Ok(RuntimeVersion {
        spec_name,
        impl_name,
        authoring_version,
        spec_version,
        impl_version,
        apis,
        transaction_version,
        system_version,
    })
}

#[cfg(test)]
mod tests {
    use blake2::digest::consts::U8;
    use blake2::{Blake2b, Digest};

    use super::*;

    fn version(core: u32) -> RuntimeVersion {
        RuntimeVersion {
            spec_name: "adder".into(),
            impl_name: "pvf".into(),
            authoring_version: 1,
            spec_version: 7,
            impl_version: 2,
            apis: vec![(CORE_API_ID, core)],
            transaction_version: 5,
            system_version: 1,
        }
    }

    /// A module with the given custom sections.
    fn module(sections: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        for (name, payload) in sections {
            let mut body = vec![name.len() as u8];
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(payload);
            wasm.push(0);
            wasm.push(body.len() as u8);
            wasm.extend(body);
        }
        wasm
    }

    #[test]
    fn core_api_id_is_blake2_64_of_core() {
        let id: [u8; 8] = Blake2b::<U8>::digest(b"Core").into();
        assert_eq!(id, CORE_API_ID);
    }

    #[test]
    fn reads_the_sections_of_a_plain_or_compressed_blob() {
        let v = version(4);
        let section = RuntimeVersion {
            apis: vec![],
            ..version(4)
        }
        .encode();
        let mut apis = CORE_API_ID.to_vec();
        apis.extend(4u32.to_le_bytes());
        let wasm = module(&[("runtime_version", section), ("runtime_apis", apis)]);
        assert_eq!(embedded_version(&wasm), Ok(v.encode()));
        let compressed = pvf_common::compress::compress(&wasm).unwrap();
        assert_eq!(embedded_version(&compressed), Ok(v.encode()));
    }

    #[test]
    fn old_core_versions_lack_the_trailing_fields() {
        // Core 2: neither transaction_version nor system_version is in the section.
        let full = version(2);
        let mut section = full.encode();
        section.truncate(section.len() - 5);
        let decoded = decode_with_hint(&mut &section[..], None).unwrap();
        assert_eq!(decoded.transaction_version, 1);
        assert_eq!(decoded.system_version, 0);
    }

    #[test]
    fn missing_or_bad_sections_are_errors() {
        assert!(embedded_version(&module(&[])).is_err());
        assert!(embedded_version(b"not wasm").is_err());
        let bad_apis = module(&[
            ("runtime_version", version(4).encode()),
            ("runtime_apis", vec![0; 11]),
        ]);
        assert!(embedded_version(&bad_apis).is_err());
    }
}
