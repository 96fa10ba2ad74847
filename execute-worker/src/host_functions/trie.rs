//! `ext_trie_*`: roots of Substrate's trie ([`node`] has its format) and proofs against them.
//!
//! - `root`: the root of a trie of key-value pairs (for a repeated key, the last value).
//! - `ordered_root`: the same with the SCALE compact indices of the items as keys.
//! - `verify_proof`: whether a compact proof (as sp-trie generates: the nodes on the path,
//!   root first, the value itself omitted) shows that the trie with this root maps the key
//!   to the value. Verification is `trie-db`'s own, the code Polkadot's host runs, with this
//!   format's codec; it refuses a proof with a node too many as well as one too few.
//!
//! State version 0 stores every value inline; state version 1 stores a value of 33 bytes or
//! more as its hash. Version 1 of each function always uses state version 0; version 2 takes
//! the state version as a `u8` in an `i32` (only the low byte counts) and traps on any
//! other than 0 and 1.

mod node;

use parity_scale_codec::{Compact, Decode, Encode};
use wasmtime::{Caller, Linker};

use super::abi::{read_array, read_slice, write_new};
use super::{HostError, HostState};
pub use node::{Blake2Hasher, Hash32, KeccakHasher};
use node::{Layout, NodeStream, TrieHasher};

/// Which layout a root is computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateVersion {
    /// Values inline.
    V0,
    /// Values of 33 bytes or more by hash.
    V1,
}

/// The root of the trie mapping each key to its value under hasher `H`.
pub fn root<H: Hash32>(
    pairs: impl IntoIterator<Item = (impl AsRef<[u8]> + Ord, impl AsRef<[u8]>)>,
    version: StateVersion,
) -> [u8; 32] {
    let threshold = match version {
        StateVersion::V0 => None,
        StateVersion::V1 => Some(node::HASHED_VALUE_THRESHOLD),
    };
    trie_root::trie_root_no_extension::<TrieHasher<H>, NodeStream, _, _, _>(pairs, threshold)
}

/// The root of the trie whose keys are the items' compact indices.
pub fn ordered_root<H: Hash32>(items: &[Vec<u8>], version: StateVersion) -> [u8; 32] {
    let keyed = items
        .iter()
        .enumerate()
        .map(|(i, value)| (Compact(i as u32).encode(), value));
    root::<H>(keyed, version)
}

/// Whether `proof` shows that the trie with `root` maps `key` to `value`. A panic inside the
/// verifier (Polkadot's host would panic too, which is Invalid) is an error, so it traps.
pub fn verify_proof<H: Hash32>(
    root: &[u8; 32],
    proof: &[Vec<u8>],
    key: &[u8],
    value: &[u8],
    version: StateVersion,
) -> Result<bool, &'static str> {
    let items = [(key, Some(value))];
    std::panic::catch_unwind(|| match version {
        StateVersion::V0 => {
            trie_db::proof::verify_proof::<Layout<H, false>, _, _, _>(root, proof, &items).is_ok()
        }
        StateVersion::V1 => {
            trie_db::proof::verify_proof::<Layout<H, true>, _, _, _>(root, proof, &items).is_ok()
        }
    })
    .map_err(|_| "the proof verifier panicked")
}

/// Defines the trie functions.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define::<Blake2Hasher>(linker, "blake2_256")?;
    define::<KeccakHasher>(linker, "keccak_256")?;
    Ok(())
}

fn define<H: Hash32>(linker: &mut Linker<HostState>, hasher: &str) -> wasmtime::Result<()> {
    let name =
        |function: &str, version: u32| format!("ext_trie_{hasher}_{function}_version_{version}");
    linker.func_wrap(
        "env",
        &name("root", 1),
        |mut caller: Caller<'_, HostState>, input: u64| -> wasmtime::Result<u32> {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = decode_arg(&caller, input, "root_version_1")?;
            write_new(&mut caller, &root::<H>(pairs, StateVersion::V0))
        },
    )?;
    linker.func_wrap(
        "env",
        &name("root", 2),
        |mut caller: Caller<'_, HostState>, input: u64, version: u32| -> wasmtime::Result<u32> {
            const FUNCTION: &str = "root_version_2";
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = decode_arg(&caller, input, FUNCTION)?;
            let version = state_version(version, FUNCTION)?;
            write_new(&mut caller, &root::<H>(pairs, version))
        },
    )?;
    linker.func_wrap(
        "env",
        &name("ordered_root", 1),
        |mut caller: Caller<'_, HostState>, input: u64| -> wasmtime::Result<u32> {
            let items: Vec<Vec<u8>> = decode_arg(&caller, input, "ordered_root_version_1")?;
            write_new(&mut caller, &ordered_root::<H>(&items, StateVersion::V0))
        },
    )?;
    linker.func_wrap(
        "env",
        &name("ordered_root", 2),
        |mut caller: Caller<'_, HostState>, input: u64, version: u32| -> wasmtime::Result<u32> {
            const FUNCTION: &str = "ordered_root_version_2";
            let items: Vec<Vec<u8>> = decode_arg(&caller, input, FUNCTION)?;
            let version = state_version(version, FUNCTION)?;
            write_new(&mut caller, &ordered_root::<H>(&items, version))
        },
    )?;
    linker.func_wrap(
        "env",
        &name("verify_proof", 1),
        |caller: Caller<'_, HostState>, root: u32, proof: u64, key: u64, value: u64| {
            let args = ProofArgs::read(&caller, root, proof, key, value, "verify_proof_version_1")?;
            args.verify::<H>(StateVersion::V0)
        },
    )?;
    linker.func_wrap(
        "env",
        &name("verify_proof", 2),
        |caller: Caller<'_, HostState>,
         root: u32,
         proof: u64,
         key: u64,
         value: u64,
         version: u32| {
            const FUNCTION: &str = "verify_proof_version_2";
            let args = ProofArgs::read(&caller, root, proof, key, value, FUNCTION)?;
            args.verify::<H>(state_version(version, FUNCTION)?)
        },
    )?;
    Ok(())
}

/// A `verify_proof` call's arguments, read from guest memory.
struct ProofArgs {
    root: [u8; 32],
    proof: Vec<Vec<u8>>,
    key: Vec<u8>,
    value: Vec<u8>,
    function: &'static str,
}

impl ProofArgs {
    fn read(
        caller: &Caller<'_, HostState>,
        root: u32,
        proof: u64,
        key: u64,
        value: u64,
        function: &'static str,
    ) -> Result<Self, HostError> {
        Ok(Self {
            root: read_array(caller, root)?,
            proof: decode_arg(caller, proof, function)?,
            key: read_slice(caller, key)?,
            value: read_slice(caller, value)?,
            function,
        })
    }

    fn verify<H: Hash32>(&self, version: StateVersion) -> wasmtime::Result<u32> {
        let valid = verify_proof::<H>(&self.root, &self.proof, &self.key, &self.value, version)
            .map_err(|reason| HostError::BadArgument {
                function: self.function,
                reason: reason.into(),
            })?;
        Ok(valid.into())
    }
}

/// The state version argument: a `u8` passed in an `i32`, so only the low byte counts.
/// Polkadot's host reads 2 as version 1 (sp-storage's `StateVersion::try_from`).
fn state_version(arg: u32, function: &'static str) -> Result<StateVersion, HostError> {
    match arg as u8 {
        0 => Ok(StateVersion::V0),
        1 | 2 => Ok(StateVersion::V1),
        other => Err(HostError::BadArgument {
            function,
            reason: format!("state version {other}"),
        }),
    }
}

/// Decodes a SCALE argument (bytes after it are ignored, as Polkadot's host ignores them);
/// undecodable input traps.
fn decode_arg<T: Decode>(
    caller: &Caller<'_, HostState>,
    input: u64,
    function: &'static str,
) -> Result<T, HostError> {
    let bytes = read_slice(caller, input)?;
    T::decode(&mut &bytes[..]).map_err(|e| HostError::BadArgument {
        function,
        reason: format!("undecodable argument: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_functions::hashing::keccak_256;

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

    // The vectors below were printed by sp-io 49 (with sp-trie 47 and trie-db 0.32), run
    // natively in a scratch project outside this repository: the functions Polkadot's host
    // runs for each version (`LayoutV0::trie_root`, `trie::*_root(.., version)`,
    // `verify_trie_proof`, `trie::*_verify_proof(.., version)`).

    /// The pairs of the "several" root vector: a repeated key (the last value wins), an
    /// empty key, values below and above the 33-byte threshold.
    fn several() -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (b"doe".to_vec(), b"reindeer".to_vec()),
            (b"dog".to_vec(), b"puppy".to_vec()),
            (b"dogglesworth".to_vec(), vec![7u8; 40]),
            (b"".to_vec(), vec![1u8; 33]),
            (b"dog".to_vec(), b"last wins".to_vec()),
            (b"do".to_vec(), vec![2u8; 32]),
        ]
    }

    #[test]
    fn roots_of_key_value_pairs_match_sp_io() {
        let cases = [
            (
                vec![(b"a".to_vec(), b"b".to_vec())],
                "74cf25701ab239580f1d899e1d37a67df2121b4d532b7c7581215f5118370918",
                "74cf25701ab239580f1d899e1d37a67df2121b4d532b7c7581215f5118370918",
                "a93dea5018d8bf751073c17c9a56884f8a3b4d71ff6dcb2ced53a9e1927065c5",
                "a93dea5018d8bf751073c17c9a56884f8a3b4d71ff6dcb2ced53a9e1927065c5",
            ),
            (
                several(),
                "05ffa681519a119ca53a250ba403dacc5cf7661764bd6028d8518a79f765940c",
                "236c7f585961f5697075b3c11501e58f92bc006445d469ad25bbbe4f23e323ef",
                "c98916d1a9e3b7915ffb84f503409571b39eba2487ab82dad39705a7e2a2094f",
                "70de1718c518393fe9218bc0e4de70497f34a6dd7cdd5446fefcec0b70bc4403",
            ),
            // A key of 40,000 bytes: 80,000 nibbles, past 16 bits, with no cap.
            (
                vec![
                    (vec![0xab; 40_000], b"v".to_vec()),
                    (b"x".to_vec(), b"y".to_vec()),
                ],
                "88940830ee30e2f3ea2e75593e51f35d9c9d3c3d729875687e94b643e6605ed9",
                "88940830ee30e2f3ea2e75593e51f35d9c9d3c3d729875687e94b643e6605ed9",
                "44118ff5d5e4917ba9bf8c690ce71e2899b162292a855bfb3d70c9fea68294fa",
                "44118ff5d5e4917ba9bf8c690ce71e2899b162292a855bfb3d70c9fea68294fa",
            ),
        ];
        for (pairs, blake_v0, blake_v1, keccak_v0, keccak_v1) in cases {
            let blake = |v| hex::encode(root::<Blake2Hasher>(pairs.clone(), v));
            let keccak = |v| hex::encode(root::<KeccakHasher>(pairs.clone(), v));
            assert_eq!(blake(StateVersion::V0), blake_v0);
            assert_eq!(blake(StateVersion::V1), blake_v1);
            assert_eq!(keccak(StateVersion::V0), keccak_v0);
            assert_eq!(keccak(StateVersion::V1), keccak_v1);
        }
        let empty = root::<KeccakHasher>(Vec::<(Vec<u8>, Vec<u8>)>::new(), StateVersion::V0);
        assert_eq!(
            hex::encode(empty),
            "bc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a"
        );
    }

    fn nodes(hex_nodes: &[&str]) -> Vec<Vec<u8>> {
        hex_nodes.iter().map(|n| hex::decode(n).unwrap()).collect()
    }

    /// A trie of doe, dog, dogglesworth (a 40-byte value), do and horse, built by sp-trie with
    /// layout V0 (root [`DOG_ROOT_V0`]) and V1 (root [`DOG_ROOT_V1`]).
    const DOG_ROOT_V0: &str = "72dbad5d04b691b75871f6951e695ad4d91a399831ec91ddcdd1072d370863dc";
    const DOG_ROOT_V1: &str = "d8e0f65b4168f9325101e331d956b66ae5ec5be84c9e122996150279163624a5";
    /// sp-trie's compact proof of `dog` in the V0 trie.
    const DOG_PROOF: &[&str] = &[
        "810610010038486f727365207374616c6c696f6e",
        "c26f4000107665726200",
        "80a0002840207265696e6465657200",
        "804000803184febb7b208ffe8557d88d169bc0a293c97f0059ff77b68551fe8c349bfce0",
    ];
    /// sp-trie's compact proof of `dogglesworth` (the same in both layouts).
    const DOGGLESWORTH_PROOF: &[&str] = &[
        "810610010038486f727365207374616c6c696f6e",
        "c26f4000107665726200",
        "80a0002840207265696e6465657200",
        "c0400014707570707900",
        "51076c6573776f72746800",
    ];

    fn verify<H: Hash32>(
        root: &str,
        proof: &[Vec<u8>],
        key: &[u8],
        value: &[u8],
        v: StateVersion,
    ) -> bool {
        verify_proof::<H>(&hex32(root), proof, key, value, v).unwrap()
    }

    #[test]
    fn proofs_verify_as_in_sp_io() {
        use StateVersion::{V0, V1};
        let dog = nodes(DOG_PROOF);
        // The key with its value: true in both layouts (no value on the path is long enough
        // to be hashed), and never with the wrong hasher.
        assert!(verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &dog,
            b"dog",
            b"puppy",
            V0
        ));
        assert!(verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &dog,
            b"dog",
            b"puppy",
            V1
        ));
        assert!(!verify::<KeccakHasher>(
            DOG_ROOT_V0,
            &dog,
            b"dog",
            b"puppy",
            V0
        ));
        // Another value; a node too many; a node too few; no nodes.
        assert!(!verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &dog,
            b"dog",
            b"puppx",
            V0
        ));
        let mut extra = dog.clone();
        extra.push(vec![0]);
        assert!(!verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &extra,
            b"dog",
            b"puppy",
            V0
        ));
        assert!(!verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &dog[..3],
            b"dog",
            b"puppy",
            V0
        ));
        assert!(!verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &[],
            b"dog",
            b"puppy",
            V0
        ));
        // A 40-byte value: inline under V0, hashed under V1, so each proof holds only under
        // its own layout's root.
        let long = nodes(DOGGLESWORTH_PROOF);
        let value = [7u8; 40];
        assert!(verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &long,
            b"dogglesworth",
            &value,
            V0
        ));
        assert!(!verify::<Blake2Hasher>(
            DOG_ROOT_V0,
            &long,
            b"dogglesworth",
            &value,
            V1
        ));
        assert!(verify::<Blake2Hasher>(
            DOG_ROOT_V1,
            &long,
            b"dogglesworth",
            &value,
            V1
        ));
        assert!(!verify::<Blake2Hasher>(
            DOG_ROOT_V1,
            &long,
            b"dogglesworth",
            &value,
            V0
        ));
        // An absence proof does not prove a value.
        let cat = nodes(&[
            "81061001803abd85cb0bc8a5275a3e00d7506a9344b25bdccfeb403a84f4034a690182e4c938486f727365207374616c6c696f6e",
        ]);
        assert!(!verify::<Blake2Hasher>(DOG_ROOT_V0, &cat, b"cat", &[0], V0));
        // Keccak: the same trie's proof of `horse`.
        let horse = nodes(&[
            "8106100180dec8263e8993e02c015c1abff7b59815da6bca49e6a02b9dca555124c6f2568818486f72736500",
        ]);
        let keccak_root = "2ce090670de14f7d5f1172f94f47e1c4e8933975473efc254831e9054d1ec36a";
        assert!(verify::<KeccakHasher>(
            keccak_root,
            &horse,
            b"horse",
            b"stallion",
            V0
        ));
        assert!(verify::<KeccakHasher>(
            keccak_root,
            &horse,
            b"horse",
            b"stallion",
            V1
        ));
        assert!(!verify::<Blake2Hasher>(
            keccak_root,
            &horse,
            b"horse",
            b"stallion",
            V0
        ));
    }
}
