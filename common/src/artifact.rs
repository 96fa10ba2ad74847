//! The artifact file: a fixed header, then wasmtime's serialized module (the payload).
//!
//! wasmtime neither detects a corrupted serialized module (it loads, then crashes) nor
//! checks every compiler setting, so the header carries what we check ourselves: the engine
//! fingerprint and the payload's length and blake3. Layout (integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `PVFARTF\0` |
//! | 4 | format version |
//! | 32 | engine fingerprint |
//! | 64 | artifact id (code hash, params hash) |
//! | 8 | payload length |
//! | 32 | blake3 of the payload |

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::params::ArtifactId;

/// Identifies our artifact files.
pub const MAGIC: [u8; 8] = *b"PVFARTF\0";
/// Bumped whenever the header or the payload's meaning changes.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 8 + 4 + 32 + 64 + 8 + 32;

/// Why an artifact file was refused. None of these is a verdict on the code: the file is
/// deleted and the code prepared again.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file is shorter than a header.
    #[error("file too short for an artifact header ({0} bytes)")]
    Truncated(u64),
    /// The file does not start with our magic.
    #[error("not a pvf artifact (bad magic)")]
    BadMagic,
    /// Written by another format version.
    #[error("artifact format version {0}, expected {FORMAT_VERSION}")]
    FormatVersion(u32),
    /// Compiled by an engine with other settings, another wasmtime, or for other CPU features.
    #[error("artifact was compiled by a different engine (fingerprint mismatch)")]
    ForeignFingerprint,
    /// The header names another artifact than the one expected.
    #[error("artifact header names a different artifact id")]
    WrongId,
    /// The payload is not as long as the header says.
    #[error("payload length {actual} differs from the header's {expected}")]
    Length {
        /// From the header.
        expected: u64,
        /// On disk.
        actual: u64,
    },
    /// The payload's bytes are not the ones that were written.
    #[error("payload checksum mismatch")]
    Checksum,
    /// The file could not be read or written.
    #[error("artifact I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The parsed header of an artifact file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The engine fingerprint the payload was compiled under.
    pub fingerprint: [u8; 32],
    /// Which artifact this is.
    pub id: ArtifactId,
    /// Length of the payload in bytes.
    pub payload_len: u64,
    /// blake3 of the payload.
    pub payload_hash: [u8; 32],
}

impl Header {
    /// The header describing `payload`.
    pub fn describe(fingerprint: [u8; 32], id: ArtifactId, payload: &[u8]) -> Self {
        Self {
            fingerprint,
            id,
            payload_len: payload.len() as u64,
            payload_hash: *blake3::hash(payload).as_bytes(),
        }
    }

    /// Serializes the header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields: [&[u8]; 7] = [
            &MAGIC,
            &FORMAT_VERSION.to_le_bytes(),
            &self.fingerprint,
            &self.id.code_hash,
            &self.id.params_hash,
            &self.payload_len.to_le_bytes(),
            &self.payload_hash,
        ];
        let mut at = 0;
        for field in fields {
            out[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        out
    }

    /// Parses a header, checking magic and format version.
    pub fn parse(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let bytes: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(ArtifactError::Truncated(bytes.len() as u64))?;
        let mut cursor = &bytes[..];
        let mut take = |n: usize| {
            let (head, rest) = cursor.split_at(n);
            cursor = rest;
            head
        };
        if take(8) != MAGIC {
            return Err(ArtifactError::BadMagic);
        }
        let version = u32::from_le_bytes(array(take(4)));
        if version != FORMAT_VERSION {
            return Err(ArtifactError::FormatVersion(version));
        }
        Ok(Self {
            fingerprint: array(take(32)),
            id: ArtifactId {
                code_hash: array(take(32)),
                params_hash: array(take(32)),
            },
            payload_len: u64::from_le_bytes(array(take(8))),
            payload_hash: array(take(32)),
        })
    }

    /// Checks everything that can be checked without reading the payload.
    pub fn check(
        &self,
        fingerprint: &[u8; 32],
        id: &ArtifactId,
        file_len: u64,
    ) -> Result<(), ArtifactError> {
        if &self.fingerprint != fingerprint {
            return Err(ArtifactError::ForeignFingerprint);
        }
        if &self.id != id {
            return Err(ArtifactError::WrongId);
        }
        let actual = file_len.saturating_sub(HEADER_LEN as u64);
        if actual != self.payload_len {
            return Err(ArtifactError::Length {
                expected: self.payload_len,
                actual,
            });
        }
        Ok(())
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// Writes header and payload to a new file at `path` and fsyncs it.
pub fn write(path: &Path, header: &Header, payload: &[u8]) -> Result<(), ArtifactError> {
    let mut file = File::options().write(true).create_new(true).open(path)?;
    file.write_all(&header.to_bytes())?;
    file.write_all(payload)?;
    file.sync_all()?;
    Ok(())
}

/// Reads only the header of the file at `path`, and the file's length: cheap enough for a
/// start-up scan of the whole cache.
pub fn read_header(path: &Path) -> Result<(Header, u64), ArtifactError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut buf = Vec::with_capacity(HEADER_LEN);
    (&mut file).take(HEADER_LEN as u64).read_to_end(&mut buf)?;
    Ok((Header::parse(&buf)?, len))
}

/// An artifact read into memory we own, with its header and checksum verified.
pub struct VerifiedArtifact {
    bytes: Vec<u8>,
}

impl VerifiedArtifact {
    /// The serialized module.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The artifact file's size in bytes: header and payload.
    pub fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Reads the whole file once and verifies header, length and payload checksum on the bytes
/// that will be deserialized, so nothing can change between check and use.
pub fn load_verified(
    path: &Path,
    fingerprint: &[u8; 32],
    id: &ArtifactId,
) -> Result<VerifiedArtifact, ArtifactError> {
    let bytes = std::fs::read(path)?;
    verify(bytes, fingerprint, id)
}

/// Verifies artifact bytes already in memory.
pub fn verify(
    bytes: Vec<u8>,
    fingerprint: &[u8; 32],
    id: &ArtifactId,
) -> Result<VerifiedArtifact, ArtifactError> {
    let header = Header::parse(&bytes)?;
    header.check(fingerprint, id, bytes.len() as u64)?;
    if blake3::hash(&bytes[HEADER_LEN..]).as_bytes() != &header.payload_hash {
        return Err(ArtifactError::Checksum);
    }
    Ok(VerifiedArtifact { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ExecutorParams;

    fn sample() -> (ArtifactId, Vec<u8>) {
        let id = ArtifactId::new(b"code", &ExecutorParams::default());
        let header = Header::describe([9; 32], id, b"payload");
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(b"payload");
        (id, bytes)
    }

    #[test]
    fn good_artifact_verifies() {
        let (id, bytes) = sample();
        assert_eq!(verify(bytes, &[9; 32], &id).unwrap().payload(), b"payload");
    }

    #[test]
    fn every_corruption_is_detected() {
        let (id, good) = sample();
        let check = |bytes: Vec<u8>| verify(bytes, &[9; 32], &id).err().unwrap();

        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(check(flipped), ArtifactError::Checksum));

        let truncated = good[..good.len() - 1].to_vec();
        assert!(matches!(check(truncated), ArtifactError::Length { .. }));

        assert!(matches!(check(Vec::new()), ArtifactError::Truncated(0)));

        let mut magic = good.clone();
        magic[0] ^= 1;
        assert!(matches!(check(magic), ArtifactError::BadMagic));

        let mut longer = good.clone();
        longer[HEADER_LEN - 40] = 0xff; // payload_len's low byte
        assert!(matches!(check(longer), ArtifactError::Length { .. }));

        assert!(matches!(
            verify(good.clone(), &[8; 32], &id).err().unwrap(),
            ArtifactError::ForeignFingerprint
        ));
        let other = ArtifactId::new(b"other", &ExecutorParams::default());
        assert!(matches!(
            verify(good, &[9; 32], &other).err().unwrap(),
            ArtifactError::WrongId
        ));
    }
}
