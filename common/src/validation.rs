//! The `validate_block` ABI's data types, SCALE-compatible with Polkadot's parachain
//! primitives, so real validation code can decode our params and we can decode its result.

use parity_scale_codec::{Decode, Encode};

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

/// The output of a successful `validate_block`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
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
