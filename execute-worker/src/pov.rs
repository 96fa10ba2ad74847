//! The PoV (`block_data`) may arrive compressed. It is inflated here, inside the confined
//! execute job, never in the host or the worker: a compression bomb then costs at most the
//! job's bounded memory, and its failure is the job's verdict.

use std::borrow::Cow;

use parity_scale_codec::{DecodeAll, Encode};
use pvf_common::compress::{POV_BOMB_LIMIT, is_compressed, maybe_decompress};
use pvf_common::error::ExecJobError;
use pvf_common::validation::ValidationParams;

/// The params `validate_block` receives: `params` as given, or re-encoded with the PoV
/// decompressed when it carries the compression magic. Undecodable params, a corrupt
/// compressed PoV or one over [`POV_BOMB_LIMIT`] are `BadParams` (Invalid), as Polkadot
/// treats a PoV decompression failure.
pub fn decompressed_params(params: &[u8]) -> Result<Cow<'_, [u8]>, ExecJobError> {
    let decoded = ValidationParams::decode_all(&mut &params[..])
        .map_err(|e| ExecJobError::BadParams(format!("undecodable validation params: {e}")))?;
    if !is_compressed(&decoded.block_data) {
        return Ok(Cow::Borrowed(params));
    }
    let block_data = maybe_decompress(&decoded.block_data, POV_BOMB_LIMIT)
        .map_err(|e| ExecJobError::BadParams(format!("PoV decompression failed: {e}")))?
        .into_owned();
    Ok(Cow::Owned(
        ValidationParams {
            block_data,
            ..decoded
        }
        .encode(),
    ))
}

#[cfg(test)]
mod tests {
    use parity_scale_codec::Decode;
    use pvf_common::compress::compress;

    use super::*;

    fn params(block_data: Vec<u8>) -> ValidationParams {
        ValidationParams {
            parent_head: vec![1, 2, 3],
            block_data,
            relay_parent_number: 9,
            relay_parent_storage_root: [4; 32],
        }
    }

    #[test]
    fn plain_params_pass_through_unchanged() {
        let encoded = params(b"block".to_vec()).encode();
        assert!(matches!(
            decompressed_params(&encoded),
            Ok(Cow::Borrowed(p)) if p == &encoded[..]
        ));
    }

    #[test]
    fn a_compressed_pov_is_inflated() {
        let raw = vec![5u8; 100_000];
        let encoded = params(compress(&raw).unwrap()).encode();
        let out = decompressed_params(&encoded).unwrap();
        assert_eq!(
            ValidationParams::decode(&mut &out[..]).unwrap(),
            params(raw)
        );
    }

    #[test]
    fn a_pov_past_the_bomb_limit_is_bad_params() {
        let bomb = compress(&vec![0u8; POV_BOMB_LIMIT + 1]).unwrap();
        let err = decompressed_params(&params(bomb).encode()).unwrap_err();
        assert!(
            matches!(&err, ExecJobError::BadParams(m) if m.contains("bomb")),
            "{err}"
        );
        // Exactly the limit is fine.
        let full = compress(&vec![0u8; POV_BOMB_LIMIT]).unwrap();
        assert!(decompressed_params(&params(full).encode()).is_ok());
    }

    #[test]
    fn garbage_is_bad_params() {
        assert!(matches!(
            decompressed_params(&[1, 2, 3]),
            Err(ExecJobError::BadParams(_))
        ));
        let mut corrupt = pvf_common::compress::MAGIC.to_vec();
        corrupt.extend_from_slice(b"not zstd");
        assert!(matches!(
            decompressed_params(&params(corrupt).encode()),
            Err(ExecJobError::BadParams(_))
        ));
    }
}
