//! One preparation: the worker side (job directory, supervision, result) and the job body
//! (decompress, prevalidate, compile, write the artifact).

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

/// The job directory's name inside the worker dir; one job runs at a time.
const JOB_DIR: &str = "job";
/// The artifact's name inside the job directory.
const ARTIFACT_IN_JOB: &str = "artifact";

/// The prepare worker's job side.
pub struct Preparer;

impl Handler for Preparer {
    type Request = PrepareRequest;
    type Response = PrepareResponse;

    fn handle(&mut self, ctx: &WorkerContext, request: PrepareRequest) -> PrepareResponse {
        prepare(ctx, request)
    }
}

/// Prepares one request in a fresh job directory that is removed afterwards.
fn prepare(ctx: &WorkerContext, request: PrepareRequest) -> PrepareResponse {
    let job_dir = ctx.dir.join(JOB_DIR);
    // A previous job's directory can only remain if the worker died mid-job; never reuse it.
    let _ = std::fs::remove_dir_all(&job_dir);
    std::fs::create_dir(&job_dir)
        .map_err(|e| PrepareError::Internal(format!("creating the job dir: {e}")))?;
    let result = prepare_in(ctx, &job_dir, &request);
    if let Err(e) = std::fs::remove_dir_all(&job_dir) {
        tracing::warn!("removing the job dir: {e}");
    }
    result
}

fn prepare_in(ctx: &WorkerContext, job_dir: &Path, request: &PrepareRequest) -> PrepareResponse {
    let artifact_path = job_dir.join(ARTIFACT_IN_JOB);
    let limits = JobLimits::from_cpu(Duration::from_millis(request.timeout_ms));
    let end = run_job(
        limits,
        ctx.job_isolation(),
        || sandbox::confine_job(ctx),
        || compile_into(request, &artifact_path),
    )
    .map_err(|e| PrepareError::Internal(e.to_string()))?;
    let (code_len, cpu, max_rss_kib) = match end {
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
    // Move the artifact out of the job dir before it is removed; the host takes it from here.
    let file_name = format!("{}.tmp", request.id.file_name());
    let out = ctx.dir.join(&file_name);
    std::fs::rename(&artifact_path, &out)
        .map_err(|e| PrepareError::Internal(format!("moving the artifact: {e}")))?;
    let artifact_len = std::fs::metadata(&out)
        .map_err(|e| PrepareError::Internal(format!("reading the artifact: {e}")))?
        .len();
    Ok(Prepared {
        file_name,
        artifact_len,
        code_len,
        cpu_ms: cpu.as_millis() as u64,
        // Known: the job was followed until it ended.
        max_rss_kib: max_rss_kib.unwrap_or_default(),
    })
}

/// The job body: runs in the confined job process. Returns the decompressed code size (before
/// instrumentation).
fn compile_into(request: &PrepareRequest, out: &Path) -> Result<u64, PrepareError> {
    set_limit(request.params.prepare_memory_max);
    let pvf_prepare_worker::Compiled { payload, code_len } =
        pvf_prepare_worker::compile(&request.code, &request.params, request.kind)?;
    let fingerprint = engine::fingerprint().map_err(|e| PrepareError::Internal(e.to_string()))?;
    let header = Header::describe(fingerprint, request.id, &payload);
    artifact::write(out, &header, &payload)
        .map_err(|e| PrepareError::Internal(format!("writing the artifact: {e}")))?;
    Ok(code_len)
}
