//! Property tests of every decoder in `pvf-common` that reads bytes from a peer we do not
//! trust: IPC frames and the messages in both directions, the artifact header, compressed
//! blobs, and `ValidationParams`/`ValidationResult`. For each: no panic on any input, no
//! allocation beyond the caps (measured by a counting allocator), and exact round trips (a
//! decoded value encodes back to the very bytes it came from, so every frame has one meaning).
//!
//! The message properties are generic over the message type and its values come from
//! encoding samples and mutating the bytes, so new fields are covered without new code here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use parity_scale_codec::{Decode, Encode};
use proptest::prelude::*;
use pvf_common::artifact::{self, HEADER_LEN, Header};
use pvf_common::compress;
use pvf_common::error::{ExecJobError, HolderFault, PrepareError};
use pvf_common::ipc::frame::{self, FrameError, MAX_FRAME_LEN};
use pvf_common::message::{
    Envelope, ExecuteAnswer, ExecuteRequest, ExecuteResponse, Handshake, LoadedModules,
    PrepareRequest, PrepareResponse, Prepared,
};
use pvf_common::params::{ArtifactId, ExecutorParams, PrepKind};
use pvf_common::sandbox::{Layer, LayerStatus, SecurityStatus};
use pvf_common::validation::{ValidationParams, ValidationResult};
use pvf_common::worker::JobDeath;

/// Counts the largest single allocation made while a thread measures.
struct Measuring;

thread_local! {
    /// The largest allocation this thread made while measuring, if it is measuring.
    static LARGEST: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note(size: usize) {
    LARGEST.with(|largest| {
        if let Some(seen) = largest.get() {
            largest.set(Some(seen.max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; `note` only touches a
// thread-local `Cell` (const-initialised, no destructor) and allocates nothing.
unsafe impl GlobalAlloc for Measuring {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract for `alloc` is the same as `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract for `realloc` is the same as `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Measuring = Measuring;

/// Runs `f` and returns its result and the largest single allocation it made on this
/// thread (tests run side by side on other threads).
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|largest| largest.set(Some(0)));
    let result = f();
    let largest = LARGEST.with(|largest| largest.take()).unwrap_or(0);
    (result, largest)
}

/// What decoding `len` bytes may allocate at most in one block: the input's size twice over
/// (a vector's growth), or the codec's small preallocation, whichever is larger.
fn decode_cap(len: usize) -> usize {
    2 * len + 64 * 1024
}

/// Any payload: decoding never panics or allocates past the cap, and a payload that
/// decodes encodes back to itself.
fn decodes_safely<T: Decode + Encode>(payload: &[u8]) -> Result<(), TestCaseError> {
    let (decoded, largest) = largest_allocation(|| frame::decode::<T>(payload));
    prop_assert!(
        largest <= decode_cap(payload.len()),
        "{largest} bytes allocated for {} bytes of input",
        payload.len()
    );
    if let Ok(value) = decoded {
        prop_assert_eq!(
            value.encode(),
            payload,
            "a second encoding of the same value"
        );
    }
    Ok(())
}

/// A value: it crosses a frame exactly, and every mutation of its payload decodes safely.
fn round_trips<T: Decode + Encode>(value: &T, mutation: &Mutation) -> Result<(), TestCaseError> {
    let bytes = frame::encode(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = frame::read(&mut &bytes[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back.encode(), value.encode());
    decodes_safely::<T>(&mutation.apply(value.encode()))
}

/// A change to a valid payload: the bytes a broken or hostile peer might send instead.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

impl Mutation {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match self {
            Self::Flip { at: i, bits } => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] ^= bits | 1;
                }
            }
            Self::Truncate { at: i } => bytes.truncate(at(*i, bytes.len())),
            Self::Insert { at: i, bytes: new } => {
                let i = at(*i, bytes.len());
                bytes.splice(i..i, new.iter().copied());
            }
        }
        bytes
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn artifact_id() -> impl Strategy<Value = ArtifactId> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(code_hash, params_hash)| ArtifactId {
        code_hash,
        params_hash,
    })
}

fn executor_params() -> impl Strategy<Value = ExecutorParams> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        any::<u64>(),
        any::<[u64; 4]>(),
    )
        .prop_map(|(pages, stack, bulk, memory, timeouts)| ExecutorParams {
            max_memory_pages: pages,
            stack_logical_max: stack,
            wasm_bulk_memory: bulk,
            prepare_memory_max: memory,
            precheck_timeout_ms: timeouts[0],
            lenient_prepare_timeout_ms: timeouts[1],
            backing_timeout_ms: timeouts[2],
            approval_timeout_ms: timeouts[3],
            ..ExecutorParams::default()
        })
}

fn validation_params() -> impl Strategy<Value = ValidationParams> {
    (bytes(64), bytes(256), any::<u32>(), any::<[u8; 32]>()).prop_map(
        |(parent_head, block_data, relay_parent_number, relay_parent_storage_root)| {
            ValidationParams {
                parent_head,
                block_data,
                relay_parent_number,
                relay_parent_storage_root,
            }
        },
    )
}

fn validation_result() -> impl Strategy<Value = ValidationResult> {
    (
        bytes(64),
        prop::option::of(bytes(64)),
        prop::collection::vec(bytes(16), 0..4),
        prop::collection::vec((any::<u32>(), bytes(16)), 0..4),
        any::<(u32, u32)>(),
    )
        .prop_map(
            |(head_data, code, up, horizontal, (processed, watermark))| ValidationResult {
                head_data,
                new_validation_code: code,
                upward_messages: up,
                horizontal_messages: horizontal,
                processed_downward_messages: processed,
                hrmp_watermark: watermark,
            },
        )
}

fn text() -> impl Strategy<Value = String> {
    bytes(32).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn job_death() -> impl Strategy<Value = JobDeath> {
    prop_oneof![
        any::<i32>().prop_map(JobDeath::Signal),
        Just(JobDeath::Seccomp),
        any::<i32>().prop_map(JobDeath::Exited),
        text().prop_map(JobDeath::Garbled),
    ]
}

fn execute_response() -> impl Strategy<Value = ExecuteResponse> {
    prop_oneof![
        (validation_result(), any::<u64>())
            .prop_map(|(result, cpu_ms)| ExecuteResponse::Ok { result, cpu_ms }),
        text().prop_map(|m| ExecuteResponse::JobError(ExecJobError::Trap(m))),
        text().prop_map(|m| ExecuteResponse::JobError(ExecJobError::Internal(m))),
        any::<u64>().prop_map(|cpu_ms| ExecuteResponse::TimedOut { cpu_ms }),
        any::<u64>().prop_map(|wall_ms| ExecuteResponse::WallClockExceeded { wall_ms }),
        job_death().prop_map(ExecuteResponse::JobDied),
        text().prop_map(ExecuteResponse::BadArtifact),
        text().prop_map(ExecuteResponse::WorkerError),
        any::<u64>()
            .prop_map(|waited_ms| ExecuteResponse::HolderFault(HolderFault::Late { waited_ms })),
        job_death().prop_map(|d| ExecuteResponse::HolderFault(HolderFault::Died(d))),
        text().prop_map(|m| ExecuteResponse::HolderFault(HolderFault::Garbled(m))),
    ]
}

fn execute_answer() -> impl Strategy<Value = ExecuteAnswer> {
    (execute_response(), any::<(u32, u64, u32)>()).prop_map(|(outcome, (count, bytes, evicted))| {
        ExecuteAnswer {
            outcome,
            modules: LoadedModules {
                count,
                bytes,
                evicted,
            },
        }
    })
}

fn prepare_response() -> impl Strategy<Value = PrepareResponse> {
    prop_oneof![
        any::<[u64; 3]>().prop_map(|n| Ok(Prepared {
            code_len: n[0],
            cpu_ms: n[1],
            max_rss_kib: n[2],
        })),
        text().prop_map(|m| Err(PrepareError::Compile(m))),
        job_death().prop_map(|d| Err(PrepareError::JobDied(d))),
        any::<u64>().prop_map(|cpu_ms| Err(PrepareError::TimedOut { cpu_ms })),
    ]
}

fn handshake() -> impl Strategy<Value = Handshake> {
    let layer = (0..Layer::ALL.len(), any::<(bool, bool)>(), text()).prop_map(
        |(i, (requested, active), detail)| LayerStatus {
            layer: Layer::ALL[i],
            requested,
            active,
            detail,
        },
    );
    (text(), prop::collection::vec(layer, 0..5)).prop_map(|(version, layers)| Handshake {
        version,
        security: SecurityStatus { layers },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn host_to_worker_messages_round_trip_and_survive_mutation(
        code in bytes(512),
        params in executor_params(),
        id in artifact_id(),
        validation in validation_params(),
        timeout_ms in any::<u64>(),
        artifact_file in text(),
        nonce in any::<u128>(),
        module_cache_bytes in any::<u64>(),
        holder_cpu_budget_ms in any::<u64>(),
        mutation in mutation(),
    ) {
        let kind = if timeout_ms % 2 == 0 { PrepKind::Precheck } else { PrepKind::Lenient };
        let prepare = PrepareRequest { code, params: params.clone(), id, timeout_ms, artifact_file, kind };
        round_trips(&Envelope { nonce, body: prepare }, &mutation)?;
        let execute = ExecuteRequest {
            id,
            params,
            validation_params: validation.encode(),
            timeout_ms,
            module_cache_bytes,
            holder_cpu_budget_ms,
        };
        round_trips(&Envelope { nonce, body: execute }, &mutation)?;
    }

    #[test]
    fn worker_to_host_messages_round_trip_and_survive_mutation(
        handshake in handshake(),
        prepared in prepare_response(),
        executed in execute_answer(),
        nonce in any::<u128>(),
        mutation in mutation(),
    ) {
        round_trips(&handshake, &mutation)?;
        round_trips(&Envelope { nonce, body: prepared }, &mutation)?;
        round_trips(&Envelope { nonce, body: executed }, &mutation)?;
    }

    #[test]
    fn any_payload_decodes_safely_as_any_message(payload in bytes(2048)) {
        decodes_safely::<Handshake>(&payload)?;
        decodes_safely::<Envelope<PrepareRequest>>(&payload)?;
        decodes_safely::<Envelope<PrepareResponse>>(&payload)?;
        decodes_safely::<Envelope<ExecuteRequest>>(&payload)?;
        decodes_safely::<Envelope<ExecuteAnswer>>(&payload)?;
    }

    #[test]
    fn the_validate_block_abi_round_trips_and_survives_mutation(
        params in validation_params(),
        result in validation_result(),
        mutation in mutation(),
        junk in bytes(1024),
    ) {
        round_trips(&params, &mutation)?;
        round_trips(&result, &mutation)?;
        decodes_safely::<ValidationParams>(&junk)?;
        decodes_safely::<ValidationResult>(&junk)?;
    }

    /// A stream of frames from a peer: whatever its length prefix claims, the reader never
    /// allocates past the frame cap, and never panics.
    #[test]
    fn the_frame_reader_never_allocates_past_the_cap(
        claimed in prop_oneof![0..4096u32, any::<u32>(), Just(MAX_FRAME_LEN), Just(MAX_FRAME_LEN + 1)],
        rest in bytes(256),
    ) {
        let mut stream = claimed.to_le_bytes().to_vec();
        stream.extend_from_slice(&rest);
        let (read, largest) =
            largest_allocation(|| frame::read::<ExecuteResponse>(&mut &stream[..]));
        prop_assert!(largest <= MAX_FRAME_LEN as usize, "{largest}");
        if claimed > MAX_FRAME_LEN {
            prop_assert!(matches!(read, Err(FrameError::TooLarge { .. })), "{:?}", read);
        }
    }

    #[test]
    fn the_artifact_header_round_trips_and_any_file_is_checked_safely(
        fingerprint in any::<[u8; 32]>(),
        id in artifact_id(),
        payload in bytes(256),
        mutation in mutation(),
    ) {
        let header = Header::describe(fingerprint, id, &payload);
        prop_assert_eq!(Header::parse(&header.to_bytes()).ok(), Some(header.clone()));
        let mut file = header.to_bytes().to_vec();
        file.extend_from_slice(&payload);
        prop_assert!(artifact::verify(file.clone(), &fingerprint, &id).is_ok());
        let changed = mutation.apply(file.clone());
        let len = changed.len();
        let (verified, largest) =
            largest_allocation(|| artifact::verify(changed.clone(), &fingerprint, &id).is_ok());
        prop_assert!(largest <= decode_cap(len), "{largest}");
        // Only a change that leaves the file as it was can verify.
        prop_assert_eq!(verified, changed == file);
        let _ = Header::parse(&changed[..len.min(HEADER_LEN)]);
    }

    #[test]
    fn compressed_blobs_round_trip_and_never_inflate_past_the_limit(
        data in bytes(4096),
        limit in 0usize..8192,
        mutation in mutation(),
    ) {
        let blob = compress::compress(&data).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match compress::maybe_decompress(&blob, limit) {
            Ok(out) => prop_assert_eq!(&*out, &data[..]),
            Err(e) => prop_assert!(data.len() > limit, "{e}"),
        }
        let changed = mutation.apply(blob);
        // zstd's own buffers come from its C allocator; the Rust side stays within the limit.
        let (out, largest) =
            largest_allocation(|| compress::maybe_decompress(&changed, limit).map(|o| o.len()));
        if let Ok(len) = out {
            prop_assert!(len <= limit.max(changed.len()));
        }
        // Plus the zstd reader's input buffer, a fixed 128 KiB + 3 (one compressed block).
        let zstd_buffer = 128 * 1024 + 3;
        prop_assert!(
            largest <= decode_cap(limit.max(changed.len())) + zstd_buffer,
            "{largest}"
        );
    }
}
