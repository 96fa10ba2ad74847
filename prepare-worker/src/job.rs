//! One preparation: the worker side (supervision, writing the artifact file) and the job body
//! (decompress, prevalidate, compile).
//!
//! The job writes no file: it can write nowhere (its own Landlock domain and seccomp filter).
//! It returns the compiled module through its result pipe, capped at
//! [`artifact::MAX_ARTIFACT_LEN`], and the worker writes header and payload to the file the
//! host named. So what one job can put on disk is bounded by that cap, and nothing a job
//! does survives into the next.

use std::path::Path;
use std::time::Duration;

use pvf_common::artifact::{self, Header};
use pvf_common::engine;
use pvf_common::error::PrepareError;
use pvf_common::message::{PrepareRequest, PrepareResponse, Prepared};
use pvf_common::sandbox;
use pvf_common::worker::job_process::{JobEnd, JobLimits, run_job};
use pvf_common::worker::{Handler, JobDeath, WorkerContext};

use crate::alloc::{EXIT_OUT_OF_MEMORY, set_limit};

/// The prepare worker's job side.
pub struct Preparer;

impl Handler for Preparer {
    type Request = PrepareRequest;
    type Response = PrepareResponse;

    fn handle(&mut self, ctx: &WorkerContext, request: PrepareRequest) -> PrepareResponse {
        prepare(ctx, &request)
    }
}

/// What a prepare job returns: the decompressed code size (before instrumentation) and the
/// serialized module.
type JobOutput = Result<(u64, Vec<u8>), PrepareError>;

/// Runs one preparation in a job process and writes its artifact where the host asked.
fn prepare(ctx: &WorkerContext, request: &PrepareRequest) -> PrepareResponse {
    let out = artifact_path(ctx, &request.artifact_file)?;
    // The header is added to the answer's payload: the file stays within the cap.
    let cap = artifact::MAX_ARTIFACT_LEN - artifact::HEADER_LEN as u64;
    let limits =
        JobLimits::from_cpu(Duration::from_millis(request.timeout_ms)).with_output_cap(cap as u32);
    let end = run_job(
        limits,
        ctx.job_isolation(),
        || sandbox::confine_job(ctx),
        || compile(request),
    )
    .map_err(|e| PrepareError::Internal(e.to_string()))?;
    let ((code_len, payload), cpu, max_rss_kib) = match end {
        JobEnd::Finished {
            value,
            cpu,
            max_rss_kib,
        } => (value?, cpu, max_rss_kib),
        JobEnd::TimedOut { cpu } => {
            return Err(PrepareError::TimedOut {
                cpu_ms: cpu.as_millis() as u64,
            });
        }
        JobEnd::WallClockExceeded { wall } => {
            return Err(PrepareError::WallClockExceeded {
                wall_ms: wall.as_millis() as u64,
            });
        }
        JobEnd::Died(JobDeath::Exited(EXIT_OUT_OF_MEMORY)) => {
            return Err(PrepareError::OutOfMemory);
        }
        JobEnd::Died(death) => return Err(PrepareError::JobDied(death)),
    };
    let fingerprint = engine::fingerprint().map_err(|e| PrepareError::Internal(e.to_string()))?;
    let header = Header::describe(fingerprint, request.id, &payload);
    artifact::write(&out, &header, &payload)
        .map_err(|e| PrepareError::Internal(format!("writing the artifact: {e}")))?;
    Ok(Prepared {
        code_len,
        cpu_ms: cpu.as_millis() as u64,
        // Known: the job was followed until it ended.
        max_rss_kib: max_rss_kib.unwrap_or_default(),
    })
}

/// Where the artifact goes: the host's name, which must be a plain file name in the worker
/// dir.
fn artifact_path(ctx: &WorkerContext, name: &str) -> Result<std::path::PathBuf, PrepareError> {
    let plain = Path::new(name)
        .file_name()
        .is_some_and(|file| file == name && name != "." && name != "..");
    if !plain {
        return Err(PrepareError::Internal(format!(
            "the host asked for the artifact at {name:?}, which is not a plain file name"
        )));
    }
    Ok(ctx.dir.join(name))
}

/// The job body: runs in the confined job process.
fn compile(request: &PrepareRequest) -> JobOutput {
    set_limit(request.params.prepare_memory_max);
    let pvf_prepare_worker::Compiled { payload, code_len } =
        pvf_prepare_worker::compile(&request.code, &request.params, request.kind)?;
    Ok((code_len, payload))
}
