//! Blobs that may be zstd-compressed behind an 8-byte magic, as validation code and PoVs are
//! published. Decompression is bounded: output past the limit is a "bomb", never an OOM.

use std::io::Read;

/// The magic that marks a compressed blob.
pub const MAGIC: [u8; 8] = [0x52, 0xbc, 0x53, 0x76, 0x46, 0xdb, 0x8e, 0x05];

/// Largest decompressed PoV (`block_data`): Polkadot's `MAX_POV_SIZE` (10 MiB) times 4.
pub const POV_BOMB_LIMIT: usize = 10 * 1024 * 1024 * 4;

/// Why a blob could not be decompressed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    /// The blob inflates past the limit.
    #[error("decompressed size exceeds the bomb limit of {limit} bytes")]
    Bomb {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The compressed stream is corrupt.
    #[error("invalid compressed blob: {0}")]
    Invalid(String),
}

/// Whether `blob` starts with the compression magic.
pub fn is_compressed(blob: &[u8]) -> bool {
    blob.starts_with(&MAGIC)
}

/// Returns `blob` decompressed if it carries the magic, or as-is if it does not.
pub fn maybe_decompress(
    blob: &[u8],
    limit: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, DecompressError> {
    let Some(compressed) = blob.strip_prefix(&MAGIC[..]) else {
        return Ok(std::borrow::Cow::Borrowed(blob));
    };
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| DecompressError::Invalid(e.to_string()))?;
    // Read at most one byte past the limit: enough to tell "fits" from "too big".
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Invalid(e.to_string()))?;
    if out.len() > limit {
        return Err(DecompressError::Bomb { limit });
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Compresses `data` with the magic prefix (for tests and tools).
pub fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = MAGIC.to_vec();
    out.extend(zstd::bulk::compress(data, 3)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncompressed_passes_through() {
        assert_eq!(&*maybe_decompress(b"\0asm", 10).unwrap(), b"\0asm");
    }

    #[test]
    fn round_trip_within_limit() {
        let data = vec![7u8; 1000];
        assert_eq!(
            &*maybe_decompress(&compress(&data).unwrap(), 1000).unwrap(),
            &data[..]
        );
    }

    #[test]
    fn bomb_is_rejected() {
        let blob = compress(&vec![0u8; 1 << 20]).unwrap();
        assert!(blob.len() < 1000, "a good bomb is small");
        assert_eq!(
            maybe_decompress(&blob, 1 << 19),
            Err(DecompressError::Bomb { limit: 1 << 19 })
        );
    }

    #[test]
    fn garbage_after_magic_is_invalid() {
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(b"not zstd at all");
        assert!(matches!(
            maybe_decompress(&blob, 100),
            Err(DecompressError::Invalid(_))
        ));
    }
}
