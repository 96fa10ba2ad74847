//! Substrate's trie node format (the Polkadot Host specification's trie chapter, as sp-trie
//! implements it): a base-16 Patricia-Merkle trie without extension nodes, whose branches
//! carry their partial key.
//!
//! A node is a header (a kind prefix in the top 2 to 4 bits, the partial key's nibble count
//! in the rest, continued in following bytes when it does not fit), the partial key's
//! nibbles two to a byte (an odd count puts a lone nibble first, in the low half), and then:
//! for a branch, a little-endian bitmap of its children; the value, SCALE bytes or, for a
//! hashed-value node, the value's 32-byte hash; for a branch, each child as SCALE bytes, a
//! child of 32 bytes being a hash and anything shorter the child node itself.
//!
//! The same format is written two ways: [`NodeStream`] for the `trie-root` crate, which
//! computes roots, and [`NodeCodec`] for the `trie-db` crate, which verifies proofs.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::Range;

use parity_scale_codec::{Compact, Decode, Encode};
use trie_db::node::{NibbleSlicePlan, NodeHandlePlan, NodePlan, Value, ValuePlan};
use trie_db::{ChildReference, TrieLayout};
use trie_root::TrieStream;

use crate::host_functions::hashing::{blake2_256, keccak_256};

/// A 32-byte trie hasher.
pub trait Hash32: Send + Sync + 'static {
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

/// Adapts a [`Hash32`] to the hasher trait `trie-root` and `trie-db` share.
#[derive(Debug)]
pub struct TrieHasher<H>(PhantomData<H>);

impl<H: Hash32> trie_db::Hasher for TrieHasher<H> {
    type Out = [u8; 32];
    type StdHasher = std::collections::hash_map::DefaultHasher;
    const LENGTH: usize = 32;

    fn hash(x: &[u8]) -> [u8; 32] {
        H::hash(x)
    }
}

/// From this value length on, state version 1 stores a value's hash instead of the value.
pub const HASHED_VALUE_THRESHOLD: u32 = 33;

/// The trie layout of a state version: `HASHED` is false for version 0 (values inline),
/// true for version 1 (values of [`HASHED_VALUE_THRESHOLD`] bytes or more by hash).
#[derive(Debug)]
pub struct Layout<H, const HASHED: bool>(PhantomData<H>);

impl<H: Hash32, const HASHED: bool> TrieLayout for Layout<H, HASHED> {
    const USE_EXTENSION: bool = false;
    const ALLOW_EMPTY: bool = true;
    const MAX_INLINE_VALUE: Option<u32> = if HASHED {
        Some(HASHED_VALUE_THRESHOLD)
    } else {
        None
    };
    type Hash = TrieHasher<H>;
    type Codec = NodeCodec<H>;
}

/// Node kinds, each with its header prefix and the number of prefix bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A leaf with its value inline.
    Leaf,
    /// A branch without a value.
    BranchNoValue,
    /// A branch with its value inline.
    BranchWithValue,
    /// A leaf with its value's hash.
    HashedValueLeaf,
    /// A branch with its value's hash.
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

    fn of(value: Option<&Value<'_>>, branch: bool) -> Self {
        match (value, branch) {
            (None, _) => Self::BranchNoValue,
            (Some(Value::Inline(_)), false) => Self::Leaf,
            (Some(Value::Inline(_)), true) => Self::BranchWithValue,
            (Some(Value::Node(_)), false) => Self::HashedValueLeaf,
            (Some(Value::Node(_)), true) => Self::HashedValueBranch,
        }
    }
}

/// The empty trie: one zero byte.
const EMPTY_NODE: u8 = 0;

/// Writes a node header: the kind's prefix with the nibble count in the remaining bits;
/// when it does not fit, the largest value there, then bytes of 255 while at least 256
/// remain, then the rest minus one.
pub fn encode_header(out: &mut Vec<u8>, nibble_count: usize, kind: NodeKind) {
    let (prefix, prefix_bits) = kind.prefix();
    let max = 255usize >> prefix_bits;
    if nibble_count < max {
        out.push(prefix + nibble_count as u8);
        return;
    }
    out.push(prefix + max as u8);
    let mut rest = nibble_count - (max - 1);
    while rest >= 256 {
        out.push(255);
        rest -= 255;
    }
    out.push((rest - 1) as u8);
}

/// Reads a header: the node kind (`None` for the empty node) and nibble count.
fn decode_header(data: &[u8], pos: &mut usize) -> Result<Option<(NodeKind, usize)>, CodecError> {
    let first = *data.get(*pos).ok_or(CodecError::OutOfData)?;
    *pos += 1;
    if first == EMPTY_NODE {
        return Ok(None);
    }
    let kind = match first >> 6 {
        0b01 => NodeKind::Leaf,
        0b10 => NodeKind::BranchNoValue,
        0b11 => NodeKind::BranchWithValue,
        _ if first >> 5 == 0b001 => NodeKind::HashedValueLeaf,
        _ if first >> 4 == 0b0001 => NodeKind::HashedValueBranch,
        _ => return Err(CodecError::Header(first)),
    };
    let max = 255usize >> kind.prefix().1;
    let mut count = usize::from(first) & max;
    if count < max {
        return Ok(Some((kind, count)));
    }
    count -= 1;
    loop {
        let next = usize::from(*data.get(*pos).ok_or(CodecError::OutOfData)?);
        *pos += 1;
        if next < 255 {
            return Ok(Some((kind, count + next + 1)));
        }
        count += 255;
    }
}

/// Substrate's node encoding, driven by the `trie-root` crate's walk (which gives partial
/// keys as one nibble per byte).
pub struct NodeStream(Vec<u8>);

impl NodeStream {
    fn partial(&mut self, nibbles: &[u8], kind: NodeKind) {
        encode_header(&mut self.0, nibbles.len(), kind);
        if nibbles.len() % 2 == 1 {
            self.0.push(nibbles[0]);
        }
        for pair in nibbles[nibbles.len() % 2..].chunks_exact(2) {
            self.0.push(pair[0] << 4 | pair[1]);
        }
    }

    fn value(&mut self, value: &trie_root::Value<'_>) {
        match value {
            trie_root::Value::Inline(bytes) => bytes.encode_to(&mut self.0),
            trie_root::Value::Node(hash) => self.0.extend_from_slice(hash),
        }
    }
}

/// The same node's value as `trie-db` names it.
fn as_value<'a>(value: &'a trie_root::Value<'_>) -> Value<'a> {
    match value {
        trie_root::Value::Inline(bytes) => Value::Inline(bytes),
        trie_root::Value::Node(hash) => Value::Node(hash),
    }
}

impl TrieStream for NodeStream {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn append_empty_data(&mut self) {
        self.0.push(EMPTY_NODE);
    }

    fn append_leaf(&mut self, key: &[u8], value: trie_root::Value<'_>) {
        self.partial(key, NodeKind::of(Some(&as_value(&value)), false));
        self.value(&value);
    }

    fn begin_branch(
        &mut self,
        maybe_key: Option<&[u8]>,
        maybe_value: Option<trie_root::Value<'_>>,
        has_children: impl Iterator<Item = bool>,
    ) {
        let kind = NodeKind::of(maybe_value.as_ref().map(as_value).as_ref(), true);
        // Without extension nodes every branch carries its partial key.
        self.partial(maybe_key.unwrap_or_default(), kind);
        let bitmap = has_children
            .enumerate()
            .fold(0u16, |map, (i, child)| map | (u16::from(child) << i));
        self.0.extend_from_slice(&bitmap.to_le_bytes());
        if let Some(value) = &maybe_value {
            self.value(value);
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

/// Why a proof node could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The node ends early.
    #[error("node ends early")]
    OutOfData,
    /// A header byte no node kind starts with.
    #[error("unknown node header {0:#04x}")]
    Header(u8),
    /// The padding nibble of an odd partial key is not zero.
    #[error("non-zero padding nibble")]
    Padding,
    /// A branch without children.
    #[error("a branch without children")]
    NoChildren,
    /// A malformed SCALE length.
    #[error("bad length: {0}")]
    Length(#[from] parity_scale_codec::Error),
}

/// Substrate's node encoding as `trie-db`'s codec, with the hasher `H`.
#[derive(Debug)]
pub struct NodeCodec<H>(PhantomData<H>);

/// Takes the next `len` bytes of a node.
fn take(data: &[u8], pos: &mut usize, len: usize) -> Result<Range<usize>, CodecError> {
    let end = pos.checked_add(len).filter(|end| *end <= data.len());
    let end = end.ok_or(CodecError::OutOfData)?;
    let range = *pos..end;
    *pos = end;
    Ok(range)
}

/// Reads a SCALE compact length, then takes that many bytes.
fn take_counted(data: &[u8], pos: &mut usize) -> Result<Range<usize>, CodecError> {
    let mut input = data.get(*pos..).ok_or(CodecError::OutOfData)?;
    let len = Compact::<u32>::decode(&mut input)?.0 as usize;
    *pos = data.len() - input.len();
    take(data, pos, len)
}

impl<H: Hash32> trie_db::NodeCodec for NodeCodec<H> {
    const ESCAPE_HEADER: Option<u8> = Some(0b01);
    type Error = CodecError;
    type HashOut = [u8; 32];

    fn hashed_null_node() -> [u8; 32] {
        H::hash(&[EMPTY_NODE])
    }

    fn decode_plan(data: &[u8]) -> Result<NodePlan, CodecError> {
        let mut pos = 0;
        let Some((kind, nibbles)) = decode_header(data, &mut pos)? else {
            return Ok(NodePlan::Empty);
        };
        // sp-trie asks for at least one byte after the header, even for an empty key, and
        // for a zero padding nibble.
        let next = *data.get(pos).ok_or(CodecError::OutOfData)?;
        if nibbles % 2 == 1 && next & 0xf0 != 0 {
            return Err(CodecError::Padding);
        }
        let partial = NibbleSlicePlan::new(take(data, &mut pos, nibbles.div_ceil(2))?, nibbles % 2);
        let hashed = matches!(
            kind,
            NodeKind::HashedValueLeaf | NodeKind::HashedValueBranch
        );
        let value = |pos: &mut usize| -> Result<ValuePlan, CodecError> {
            Ok(if hashed {
                ValuePlan::Node(take(data, pos, 32)?)
            } else {
                ValuePlan::Inline(take_counted(data, pos)?)
            })
        };
        if matches!(kind, NodeKind::Leaf | NodeKind::HashedValueLeaf) {
            let value = value(&mut pos)?;
            return Ok(NodePlan::Leaf { partial, value });
        }
        let bitmap = take(data, &mut pos, 2)?;
        let bitmap = u16::from_le_bytes([data[bitmap.start], data[bitmap.start + 1]]);
        if bitmap == 0 {
            return Err(CodecError::NoChildren);
        }
        let value = match kind {
            NodeKind::BranchNoValue => None,
            _ => Some(value(&mut pos)?),
        };
        let mut children: [Option<NodeHandlePlan>; 16] = Default::default();
        for (i, child) in children.iter_mut().enumerate() {
            if bitmap & (1 << i) != 0 {
                let range = take_counted(data, &mut pos)?;
                *child = Some(if range.len() == 32 {
                    NodeHandlePlan::Hash(range)
                } else {
                    NodeHandlePlan::Inline(range)
                });
            }
        }
        Ok(NodePlan::NibbledBranch {
            partial,
            value,
            children,
        })
    }

    fn is_empty_node(data: &[u8]) -> bool {
        data == [EMPTY_NODE]
    }

    fn empty_node() -> &'static [u8] {
        &[EMPTY_NODE]
    }

    fn leaf_node(partial: impl Iterator<Item = u8>, nibbles: usize, value: Value<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(&mut out, nibbles, NodeKind::of(Some(&value), false));
        out.extend(partial);
        encode_value(&mut out, &value);
        out
    }

    fn extension_node(
        _partial: impl Iterator<Item = u8>,
        _nibbles: usize,
        _child: ChildReference<[u8; 32]>,
    ) -> Vec<u8> {
        // Never called: this layout has no extension nodes, and decoding never yields one.
        Vec::new()
    }

    fn branch_node(
        _children: impl Iterator<Item = impl Borrow<Option<ChildReference<[u8; 32]>>>>,
        _value: Option<Value<'_>>,
    ) -> Vec<u8> {
        // Never called: branches here always carry a partial key (`branch_node_nibbled`).
        Vec::new()
    }

    fn branch_node_nibbled(
        partial: impl Iterator<Item = u8>,
        nibbles: usize,
        children: impl Iterator<Item = impl Borrow<Option<ChildReference<[u8; 32]>>>>,
        value: Option<Value<'_>>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(&mut out, nibbles, NodeKind::of(value.as_ref(), true));
        out.extend(partial);
        let bitmap_at = out.len();
        out.extend([0, 0]);
        if let Some(value) = &value {
            encode_value(&mut out, value);
        }
        let mut bitmap = 0u16;
        for (i, child) in children.enumerate() {
            match child.borrow() {
                Some(ChildReference::Hash(hash)) => hash.as_slice().encode_to(&mut out),
                Some(ChildReference::Inline(data, len)) => data[..*len].encode_to(&mut out),
                None => continue,
            }
            bitmap |= 1 << i;
        }
        out[bitmap_at..bitmap_at + 2].copy_from_slice(&bitmap.to_le_bytes());
        out
    }
}

fn encode_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Inline(bytes) => bytes.encode_to(out),
        Value::Node(hash) => out.extend_from_slice(hash),
    }
}

#[cfg(test)]
mod tests {
    use trie_db::NodeCodec as _;

    use super::*;

    type Codec = NodeCodec<Blake2Hasher>;

    #[test]
    fn long_partial_keys_continue_the_header() {
        let header = |nibbles| {
            let mut out = Vec::new();
            encode_header(&mut out, nibbles, NodeKind::Leaf);
            out
        };
        // 62 nibbles fit in the first byte under a 2-bit prefix.
        assert_eq!(header(62), [0x40 | 62]);
        // 63: the largest value (the escape), then 63 - 62 - 1 = 0.
        assert_eq!(header(63), [0x7f, 0x00]);
        // 318 = 62 + 256: the escape, 255, then 256 - 255 - 1 = 0.
        assert_eq!(header(318), [0x7f, 0xff, 0x00]);
        // No cap: a key of 40,000 bytes has 80,000 nibbles.
        let long = header(80_000);
        let mut pos = 0;
        let mut node = long.clone();
        node.push(0);
        assert_eq!(
            decode_header(&node, &mut pos).unwrap(),
            Some((NodeKind::Leaf, 80_000))
        );
        assert_eq!(pos, long.len());
    }

    #[test]
    fn decoding_is_as_strict_as_sp_tries() {
        // A leaf of one nibble with a non-zero padding nibble.
        assert!(matches!(
            Codec::decode_plan(&[0x41, 0x10, 0x00]),
            Err(CodecError::Padding)
        ));
        // A branch without children.
        assert!(matches!(
            Codec::decode_plan(&[0x80, 0x00, 0x00]),
            Err(CodecError::NoChildren)
        ));
        // Header bits no kind uses (0b0000_1xxx).
        assert!(matches!(
            Codec::decode_plan(&[0x08]),
            Err(CodecError::Header(0x08))
        ));
        // A header with nothing after it, even with an empty key.
        assert!(matches!(
            Codec::decode_plan(&[0x40]),
            Err(CodecError::OutOfData)
        ));
        // Bytes after a complete node are ignored.
        assert!(matches!(
            Codec::decode_plan(&[0x40, 0x00, 0xff]),
            Ok(NodePlan::Leaf { .. })
        ));
        assert!(matches!(
            Codec::decode_plan(&[0x00, 0x01]),
            Ok(NodePlan::Empty)
        ));
    }

    #[test]
    fn the_codec_writes_what_it_reads() {
        // A branch with partial key nibble 0, children 0 and 4 inline (leaf "a" and "b").
        let node = hex::decode("810011000c4004610c400462").unwrap();
        let plan = Codec::decode_plan(&node).unwrap();
        let NodePlan::NibbledBranch { children, .. } = &plan else {
            panic!("{plan:?}");
        };
        assert_eq!(children.iter().flatten().count(), 2);
        let built = plan.build(&node);
        let trie_db::node::Node::NibbledBranch(partial, handles, value) = built else {
            panic!("not a branch");
        };
        let children = handles.iter().map(|h| {
            h.map(|h| match h {
                trie_db::node::NodeHandle::Inline(d) => {
                    let mut buf = [0u8; 32];
                    buf[..d.len()].copy_from_slice(d);
                    ChildReference::Inline(buf, d.len())
                }
                trie_db::node::NodeHandle::Hash(d) => ChildReference::Hash(d.try_into().unwrap()),
            })
        });
        let encoded =
            Codec::branch_node_nibbled(partial.right_iter(), partial.len(), children, value);
        assert_eq!(encoded, node);
    }
}
