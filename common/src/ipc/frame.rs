//! One message per frame: a little-endian `u32` length, then that many bytes of SCALE.
//!
//! The length is checked against [`MAX_FRAME_LEN`] before anything is allocated, so a peer
//! cannot make the reader allocate more than the limit by lying about a length.

use std::io::{ErrorKind, Read, Write};

use parity_scale_codec::{Decode, DecodeAll, Encode};

/// Width of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

/// The largest payload a frame may carry: a `validate_block` result of
/// [`MAX_RESULT_LEN`](crate::validation::MAX_RESULT_LEN) (as large as Polkadot's host accepts
/// under the default memory bound) with 1 MiB for its envelope, which is also more than a
/// maximum-size PoV needs. Artifacts travel as files, not frames.
pub const MAX_FRAME_LEN: u32 = crate::validation::MAX_RESULT_LEN as u32 + 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced a payload larger than the hard maximum.
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The announced or attempted length.
        len: u64,
        /// The most this frame may carry ([`MAX_FRAME_LEN`] unless said otherwise).
        max: u32,
    },
    /// The stream ended cleanly before a new frame started.
    #[error("connection closed")]
    Closed,
    /// The stream ended inside a frame.
    #[error("truncated frame: expected {expected} bytes, got {got}")]
    Truncated {
        /// Bytes the frame needed.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// The payload is not a valid encoding of the expected message.
    #[error("undecodable frame payload: {0}")]
    Decode(#[from] parity_scale_codec::Error),
    /// The underlying stream failed.
    #[error("frame I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses a length prefix, rejecting lengths over the maximum.
pub fn payload_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    payload_len_within(header, MAX_FRAME_LEN)
}

/// Parses a length prefix, rejecting lengths over `max` (a prepare job's answer carries an
/// artifact, which may be larger than [`MAX_FRAME_LEN`]).
pub fn payload_len_within(header: [u8; HEADER_LEN], max: u32) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header);
    if len > max {
        return Err(FrameError::TooLarge {
            len: len.into(),
            max,
        });
    }
    Ok(len as usize)
}

/// Encodes `msg` as a complete frame (prefix and payload).
pub fn encode<T: Encode>(msg: &T) -> Result<Vec<u8>, FrameError> {
    encode_within(msg, MAX_FRAME_LEN)
}

/// Encodes `msg` as a complete frame whose payload may hold up to `max` bytes.
pub fn encode_within<T: Encode>(msg: &T, max: u32) -> Result<Vec<u8>, FrameError> {
    let size = msg.size_hint();
    let mut buf = Vec::with_capacity(HEADER_LEN + size);
    buf.extend_from_slice(&[0; HEADER_LEN]);
    msg.encode_to(&mut buf);
    let len = buf.len() - HEADER_LEN;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or(FrameError::TooLarge {
            len: len as u64,
            max,
        })?;
    buf[..HEADER_LEN].copy_from_slice(&len32.to_le_bytes());
    Ok(buf)
}

/// Decodes a payload; trailing bytes are an error, so every frame has exactly one meaning.
pub fn decode<T: Decode>(payload: &[u8]) -> Result<T, FrameError> {
    Ok(T::decode_all(&mut &payload[..])?)
}

/// Writes one frame.
pub fn write<T: Encode>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    write_within(w, msg, MAX_FRAME_LEN)
}

/// Writes one frame whose payload may hold up to `max` bytes.
pub fn write_within<T: Encode>(w: &mut impl Write, msg: &T, max: u32) -> Result<(), FrameError> {
    w.write_all(&encode_within(msg, max)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame.
pub fn read<T: Decode>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    match read_full(r, &mut header)? {
        0 => return Err(FrameError::Closed),
        n if n < HEADER_LEN => {
            return Err(FrameError::Truncated {
                expected: HEADER_LEN,
                got: n,
            });
        }
        _ => {}
    }
    let len = payload_len(header)?;
    let mut payload = vec![0u8; len];
    let got = read_full(r, &mut payload)?;
    if got < len {
        return Err(FrameError::Truncated { expected: len, got });
    }
    decode(&payload)
}

/// Fills `buf` as far as the stream allows and returns how many bytes arrived.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, std::io::Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Encode, Decode)]
    struct Msg {
        a: u32,
        b: Vec<u8>,
    }

    fn sample() -> Msg {
        Msg {
            a: 7,
            b: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&sample()).unwrap();
        let back: Msg = read(&mut &bytes[..]).unwrap();
        assert_eq!(back, sample());
    }

    /// A reader that panics if asked for more than the header: proves the length is rejected
    /// before any payload allocation or read.
    struct HeaderOnly(Vec<u8>);
    impl Read for HeaderOnly {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            assert!(
                !self.0.is_empty(),
                "reader asked for payload of a rejected frame"
            );
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn oversized_length_is_rejected_before_reading_payload() {
        let header = (MAX_FRAME_LEN + 1).to_le_bytes().to_vec();
        let err = read::<Msg>(&mut HeaderOnly(header)).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len, .. } if len == u64::from(MAX_FRAME_LEN) + 1)
        );
        let err = read::<Msg>(&mut HeaderOnly(u32::MAX.to_le_bytes().to_vec())).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
    }

    #[test]
    fn empty_stream_is_closed() {
        assert!(matches!(read::<Msg>(&mut &[][..]), Err(FrameError::Closed)));
    }

    #[test]
    fn truncated_header_and_payload_are_typed() {
        let err = read::<Msg>(&mut &[1u8, 0][..]).unwrap_err();
        assert!(matches!(
            err,
            FrameError::Truncated {
                expected: 4,
                got: 2
            }
        ));
        let bytes = encode(&sample()).unwrap();
        let cut = &bytes[..bytes.len() - 1];
        let err = read::<Msg>(&mut &cut[..]).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }));
    }

    #[test]
    fn garbage_payload_is_a_decode_error() {
        // Announces 2 bytes of payload; a compact length of 63 then nothing is undecodable.
        let garbage = [2u8, 0, 0, 0, 0xff, 0xfc];
        let err = read::<Msg>(&mut &garbage[..]).unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)));
    }

    #[test]
    fn trailing_bytes_are_a_decode_error() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        let len = (bytes.len() - HEADER_LEN) as u32;
        bytes[..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(
            read::<Msg>(&mut &bytes[..]),
            Err(FrameError::Decode(_))
        ));
    }
}
