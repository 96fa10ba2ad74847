//! The `validate_block` ABI's data types, SCALE-compatible with Polkadot's parachain
//! primitives, so real validation code can decode our params and we can decode its result.

use parity_scale_codec::{Compact, Decode, Encode, Error, Input};

use crate::params::DEFAULT_MAX_MEMORY_PAGES;

/// The most upward messages, and the most horizontal messages, a result may carry: decoding
/// refuses more, as Polkadot's bounded message lists do (`MAX_UPWARD_MESSAGE_NUM` and
/// `MAX_HORIZONTAL_MESSAGE_NUM` in polkadot-parachain-primitives 24).
pub const MAX_MESSAGES: u32 = 16 * 1024;

/// The largest encoded result this host carries from a job to its caller: the whole memory
/// under the default bound. Polkadot's host bounds a result only by the memory it is read
/// from, so under the default executor parameters every result it accepts fits.
pub const MAX_RESULT_LEN: usize = DEFAULT_MAX_MEMORY_PAGES as usize * 64 * 1024;

/// The input to `validate_block`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct ValidationParams {
    /// The parachain's head at the relay parent.
    pub parent_head: Vec<u8>,
    /// The proof of validity (PoV) block data; may be compressed.
    pub block_data: Vec<u8>,
    /// The relay chain block number the candidate is built on.
    pub relay_parent_number: u32,
    /// The relay chain storage root at that block.
    pub relay_parent_storage_root: [u8; 32],
}

/// The output of a successful `validate_block`. Decoding refuses more than
/// [`MAX_MESSAGES`] upward or horizontal messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode)]
pub struct ValidationResult {
    /// The new head of the parachain.
    pub head_data: Vec<u8>,
    /// A code upgrade, if the block schedules one.
    pub new_validation_code: Option<Vec<u8>>,
    /// Messages to the relay chain.
    pub upward_messages: Vec<Vec<u8>>,
    /// Messages to other parachains, with their recipients.
    pub horizontal_messages: Vec<(u32, Vec<u8>)>,
    /// How many downward messages were processed.
    pub processed_downward_messages: u32,
    /// The high-water mark of processed horizontal messages.
    pub hrmp_watermark: u32,
}

impl Decode for ValidationResult {
    fn decode<I: Input>(input: &mut I) -> Result<Self, Error> {
        Ok(Self {
            head_data: Decode::decode(input)?,
            new_validation_code: Decode::decode(input)?,
            upward_messages: decode_bounded(input, "upward messages")?,
            horizontal_messages: decode_bounded(input, "horizontal messages")?,
            processed_downward_messages: Decode::decode(input)?,
            hrmp_watermark: Decode::decode(input)?,
        })
    }
}

/// Decodes a list of at most [`MAX_MESSAGES`] items, refusing a longer one by its length
/// before any item is read.
fn decode_bounded<T: Decode, I: Input>(input: &mut I, what: &'static str) -> Result<Vec<T>, Error> {
    let len = Compact::<u32>::decode(input)?.0;
    if len > MAX_MESSAGES {
        return Err(Error::from("too many messages").chain(what));
    }
    let mut items = Vec::new();
    for _ in 0..len {
        items.push(T::decode(input)?);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_messages(upward: usize, horizontal: usize) -> ValidationResult {
        ValidationResult {
            upward_messages: vec![vec![1]; upward],
            horizontal_messages: vec![(7, vec![2]); horizontal],
            ..ValidationResult::default()
        }
    }

    #[test]
    fn message_lists_are_bounded_as_polkadots() {
        let max = MAX_MESSAGES as usize;
        for result in [
            with_messages(max, 0),
            with_messages(0, max),
            with_messages(max, max),
        ] {
            assert_eq!(
                ValidationResult::decode(&mut &result.encode()[..]),
                Ok(result)
            );
        }
        for result in [with_messages(max + 1, 0), with_messages(0, max + 1)] {
            assert!(ValidationResult::decode(&mut &result.encode()[..]).is_err());
        }
    }

    #[test]
    fn a_huge_announced_count_is_refused_before_reading_items() {
        let mut bytes = vec![0, 0];
        Compact(u32::MAX).encode_to(&mut bytes);
        assert!(ValidationResult::decode(&mut &bytes[..]).is_err());
    }

    #[test]
    fn the_encoding_is_the_derived_one() {
        let result = ValidationResult {
            head_data: vec![1, 2],
            new_validation_code: Some(vec![3]),
            upward_messages: vec![vec![4]],
            horizontal_messages: vec![(5, vec![6])],
            processed_downward_messages: 7,
            hrmp_watermark: 8,
        };
        let encoded = result.encode();
        assert_eq!(
            encoded,
            [
                8, 1, 2, 1, 4, 3, 4, 4, 4, 4, 5, 0, 0, 0, 4, 6, 7, 0, 0, 0, 8, 0, 0, 0
            ]
        );
        assert_eq!(ValidationResult::decode(&mut &encoded[..]), Ok(result));
    }
}
