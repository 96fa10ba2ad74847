//! `ext_trie_*_ordered_root_*`: the root of the base-16 Patricia-Merkle trie (Substrate's
//! node codec, no extension nodes) whose keys are the SCALE compact indices of the items.
//!
//! State version 0 stores every value inline; state version 1 stores a value of 33 bytes or
//! more as its hash. Version 1 of each function always uses state version 0.

use parity_scale_codec::{Compact, Decode, Encode};
use trie_root::{TrieStream, Value};
use wasmtime::{Caller, Linker};

use super::abi::{read_slice, write_new};
use super::hashing::{blake2_256, keccak_256};
use super::{HostError, HostState};

/// From this value length on, state version 1 stores a value's hash instead of the value.
const HASHED_VALUE_THRESHOLD: u32 = 33;

/// A trie hasher: 32-byte output.
pub trait Hash32 {
    /// The digest of `data`.
    fn hash(data: &[u8]) -> [u8; 32];
}

/// BLAKE2b-256 as a trie hasher.
#[derive(Debug)]
pub struct Blake2Hasher;
/// Keccak-256 as a trie hasher.
#[derive(Debug)]
pub struct KeccakHasher;

impl Hash32 for Blake2Hasher {
    fn hash(data: &[u8]) -> [u8; 32] {
        blake2_256(data)
    }
}

impl Hash32 for KeccakHasher {
    fn hash(data: &[u8]) -> [u8; 32] {
        keccak_256(data)
    }
}

/// Adapts a [`Hash32`] to the `trie-root` crate's hasher trait.
#[derive(Debug)]
struct TrieHasher<H>(std::marker::PhantomData<H>);

impl<H: Hash32 + Send + Sync> trie_root::Hasher for TrieHasher<H> {
    type Out = [u8; 32];
    type StdHasher = std::collections::hash_map::DefaultHasher;
    const LENGTH: usize = 32;

    fn hash(x: &[u8]) -> [u8; 32] {
        H::hash(x)
    }
}

/// Which layout a root is computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateVersion {
    /// Values inline.
    V0,
    /// Values of [`HASHED_VALUE_THRESHOLD`] bytes or more by hash.
    V1,
}

/// The ordered trie root of `items` under hasher `H`.
pub fn ordered_root<H: Hash32 + Send + Sync>(items: &[Vec<u8>], version: StateVersion) -> [u8; 32] {
    let threshold = match version {
        StateVersion::V0 => None,
        StateVersion::V1 => Some(HASHED_VALUE_THRESHOLD),
    };
    let keyed = items
        .iter()
        .enumerate()
        .map(|(i, value)| (Compact(i as u32).encode(), value));
    trie_root::trie_root_no_extension::<TrieHasher<H>, NodeStream, _, _, _>(keyed, threshold)
}

/// Node kinds, each with its header prefix and the number of prefix bits.
#[derive(Clone, Copy)]
enum NodeKind {
    Leaf,
    BranchNoValue,
    BranchWithValue,
    HashedValueLeaf,
    HashedValueBranch,
}

impl NodeKind {
    fn prefix(self) -> (u8, u32) {
        match self {
            Self::Leaf => (0b01 << 6, 2),
            Self::BranchNoValue => (0b10 << 6, 2),
            Self::BranchWithValue => (0b11 << 6, 2),
            Self::HashedValueLeaf => (0b001 << 5, 3),
            Self::HashedValueBranch => (0b0001 << 4, 4),
        }
    }
}

/// A node header: the kind's prefix with the partial key's nibble count in the remaining
/// bits, continued in following bytes (255 each, then the rest) when it does not fit; then
/// the nibbles, two per byte, a lone leading nibble in its own byte.
fn encode_partial(out: &mut Vec<u8>, nibbles: &[u8], kind: NodeKind) {
    let (prefix, prefix_bits) = kind.prefix();
    let size = nibbles.len().min(u16::MAX as usize);
    let max = 255usize >> prefix_bits;
    if size < max {
        out.push(prefix + size as u8);
    } else {
        out.push(prefix + max as u8);
        let mut rest = size - (max - 1);
        // `rest` counts from 1 here: a final byte b stands for b + 1 more.
        while rest >= 256 {
            out.push(255);
            rest -= 255;
        }
        out.push((rest - 1) as u8);
    }
    if nibbles.len() % 2 == 1 {
        out.push(nibbles[0]);
    }
    for pair in nibbles[nibbles.len() % 2..].chunks_exact(2) {
        out.push(pair[0] << 4 | pair[1]);
    }
}

fn encode_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Inline(bytes) => bytes.encode_to(out),
        Value::Node(hash) => out.extend_from_slice(hash),
    }
}

/// Substrate's node encoding, driven by the `trie-root` crate's walk.
struct NodeStream(Vec<u8>);

impl TrieStream for NodeStream {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn append_empty_data(&mut self) {
        self.0.push(0);
    }

    fn append_leaf(&mut self, key: &[u8], value: Value<'_>) {
        let kind = match value {
            Value::Inline(_) => NodeKind::Leaf,
            Value::Node(_) => NodeKind::HashedValueLeaf,
        };
        encode_partial(&mut self.0, key, kind);
        encode_value(&mut self.0, &value);
    }

    fn begin_branch(
        &mut self,
        maybe_key: Option<&[u8]>,
        maybe_value: Option<Value<'_>>,
        has_children: impl Iterator<Item = bool>,
    ) {
        let kind = match &maybe_value {
            None => NodeKind::BranchNoValue,
            Some(Value::Inline(_)) => NodeKind::BranchWithValue,
            Some(Value::Node(_)) => NodeKind::HashedValueBranch,
        };
        // Without extension nodes every branch carries its partial key.
        encode_partial(&mut self.0, maybe_key.unwrap_or_default(), kind);
        let bitmap = has_children
            .enumerate()
            .fold(0u16, |map, (i, child)| map | (u16::from(child) << i));
        self.0.extend_from_slice(&bitmap.to_le_bytes());
        if let Some(value) = &maybe_value {
            encode_value(&mut self.0, value);
        }
    }

    fn append_extension(&mut self, _key: &[u8]) {
        // Never called: the walk is `trie_root_no_extension`.
    }

    fn append_substream<H: trie_root::Hasher>(&mut self, other: Self) {
        let data = other.out();
        // A child of fewer than 32 bytes is inlined; a larger one is referenced by hash.
        if data.len() < 32 {
            data.encode_to(&mut self.0);
        } else {
            H::hash(&data).as_ref().encode_to(&mut self.0);
        }
    }

    fn out(self) -> Vec<u8> {
        self.0
    }
}

/// Defines the trie functions.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define::<Blake2Hasher>(linker, "blake2_256")?;
    define::<KeccakHasher>(linker, "keccak_256")?;
    Ok(())
}

fn define<H: Hash32 + Send + Sync + 'static>(
    linker: &mut Linker<HostState>,
    hasher: &str,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        &format!("ext_trie_{hasher}_ordered_root_version_1"),
        |mut caller: Caller<'_, HostState>, input: u64| -> wasmtime::Result<u32> {
            let items = decode_items(&caller, input, "ordered_root_version_1")?;
            write_new(&mut caller, &ordered_root::<H>(&items, StateVersion::V0))
        },
    )?;
    linker.func_wrap(
        "env",
        &format!("ext_trie_{hasher}_ordered_root_version_2"),
        |mut caller: Caller<'_, HostState>, input: u64, version: u32| -> wasmtime::Result<u32> {
            const FUNCTION: &str = "ordered_root_version_2";
            let items = decode_items(&caller, input, FUNCTION)?;
            // The state version is passed as a u8 in an i32: only the low byte counts.
            let version = match version as u8 {
                0 => StateVersion::V0,
                1 => StateVersion::V1,
                other => {
                    return Err(HostError::BadArgument {
                        function: FUNCTION,
                        reason: format!("state version {other}"),
                    }
                    .into());
                }
            };
            write_new(&mut caller, &ordered_root::<H>(&items, version))
        },
    )?;
    Ok(())
}

/// Decodes the SCALE `Vec<Vec<u8>>` argument; undecodable input traps.
fn decode_items(
    caller: &Caller<'_, HostState>,
    input: u64,
    function: &'static str,
) -> Result<Vec<Vec<u8>>, HostError> {
    let bytes = read_slice(caller, input)?;
    Vec::<Vec<u8>>::decode(&mut &bytes[..]).map_err(|e| HostError::BadArgument {
        function,
        reason: format!("undecodable items: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn the_empty_root_is_substrates_published_constant() {
        // The empty trie root every Substrate chain publishes: blake2_256 of the empty node [0].
        let empty = hex32("03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314");
        assert_eq!(ordered_root::<Blake2Hasher>(&[], StateVersion::V0), empty);
        assert_eq!(ordered_root::<Blake2Hasher>(&[], StateVersion::V1), empty);
        assert_eq!(
            ordered_root::<KeccakHasher>(&[], StateVersion::V0),
            keccak_256(&[0])
        );
    }

    // The next vectors follow the node encoding of the Polkadot Host specification (trie
    // chapter): header byte, partial key nibbles, bitmap, SCALE value, inline children under
    // 32 bytes. Each root below is the BLAKE2b-256 (`b2sum -l 256`) of the node written out.

    #[test]
    fn one_item_is_a_single_leaf() {
        // Key compact(0) = 0x00: nibbles [0, 0]. Node: leaf 0x40 | 2, key byte 00, value
        // "a" as SCALE bytes (04 61).
        assert_eq!(
            ordered_root::<Blake2Hasher>(&[b"a".to_vec()], StateVersion::V0),
            hex32("64b68fecec55b1b76a6ee644ca88155f50588bf61450c2ede01b96ba45c24a9e")
        );
    }

    #[test]
    fn two_items_are_a_branch_with_inline_leaves() {
        // Keys 00 and 04 share nibble 0. Branch 0x80 | 1, nibble 00, bitmap for children 0
        // and 4 (11 00), then each child leaf (40 04 61, 40 04 62) inline with its length (0c).
        let items = [b"a".to_vec(), b"b".to_vec()];
        assert_eq!(
            ordered_root::<Blake2Hasher>(&items, StateVersion::V0),
            hex32("dd1a365bd089909c83bbeb1dee5573f809330c9ea74fa5f526c6713cf18c54c8")
        );
    }

    #[test]
    fn state_version_1_hashes_values_of_33_bytes_or_more() {
        let items = [vec![1u8; 33]];
        // V0: leaf 42 00, then the value with its compact length 0x84.
        assert_eq!(
            ordered_root::<Blake2Hasher>(&items, StateVersion::V0),
            hex32("f573a6c94ab558b99a2e5158a82b950626cfb3cb5c906ca907efe087fc19ade4")
        );
        // V1: hashed-value leaf 0x20 | 2, 00, then blake2_256 of the value.
        assert_eq!(
            ordered_root::<Blake2Hasher>(&items, StateVersion::V1),
            hex32("32c5c0f481d5866281d65f3b61dfe36bbedfb216d540e84914a2335acab8aa43")
        );
        // Below the threshold both versions agree.
        let short = [vec![1u8; 32]];
        assert_eq!(
            ordered_root::<Blake2Hasher>(&short, StateVersion::V0),
            ordered_root::<Blake2Hasher>(&short, StateVersion::V1)
        );
    }

    #[test]
    fn long_partial_keys_continue_the_header() {
        // 63 nibbles under a 2-bit prefix: 0x40 | 63 (the escape), then 63 - 62 - 1 = 0.
        let mut out = Vec::new();
        encode_partial(&mut out, &[1; 63], NodeKind::Leaf);
        assert_eq!(&out[..2], &[0x7f, 0x00]);
        assert_eq!(out.len(), 2 + 32);
        // 62 nibbles fit in the first byte.
        let mut out = Vec::new();
        encode_partial(&mut out, &[1; 62], NodeKind::Leaf);
        assert_eq!(out[0], 0x40 | 62);
        assert_eq!(out.len(), 1 + 31);
        // 318 = 62 + 256 nibbles: the escape, 255, then 256 - 255 - 1 = 0.
        let mut out = Vec::new();
        encode_partial(&mut out, &[1; 318], NodeKind::Leaf);
        assert_eq!(&out[..3], &[0x7f, 0xff, 0x00]);
    }
}
