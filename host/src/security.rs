//! What the sandbox does on this machine: each worker kind's layers, and a self-test that
//! prepares and executes a tiny guest inside the full sandbox. Secure mode runs this before
//! it accepts work, and `pvf security` prints it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parity_scale_codec::Encode;
use pvf_common::engine;
use pvf_common::message::{
    ExecuteAnswer, ExecuteRequest, ExecuteResponse, PrepareRequest, PrepareResponse,
};
use pvf_common::params::{ArtifactId, ExecutorParams, PrepKind};
use pvf_common::sandbox::{SecurityStatus, WorkerKind};
use pvf_common::validation::ValidationParams;

use crate::config::Config;
use crate::prepare::{intake, pool};
use crate::worker::{SpawnSpec, WorkerError, WorkerProcess, layers_for};

/// A guest that returns a fixed, valid result: enough to prove that preparation and
/// execution both work inside the sandbox.
const SELF_TEST_GUEST: &str = r#"(module
  (memory (export "memory") 1)
  (global (export "__heap_base") i32 (i32.const 1024))
  ;; ValidationResult { head_data: [42], None, [], [], 0, 0 }: 13 bytes at 16
  (data (i32.const 16) "\04\2a\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "validate_block") (param i32 i32) (result i64)
    (i64.const 0xd_0000_0010)))"#;

/// What one worker kind reported, and how its self-test went.
#[derive(Debug)]
pub struct WorkerReport {
    /// Which worker.
    pub kind: WorkerKind,
    /// Its layers, as it reported them (`None` if it did not start).
    pub status: Option<SecurityStatus>,
    /// `Ok` with a description, or why the worker or its self-test failed.
    pub self_test: Result<String, String>,
}

/// The sandbox on this machine.
#[derive(Debug)]
pub struct SecurityReport {
    /// The prepare worker, then the execute worker.
    pub workers: Vec<WorkerReport>,
}

impl SecurityReport {
    /// Each missing layer and failed self-test, as `worker layer: reason`.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for worker in &self.workers {
            if let Some(status) = &worker.status {
                for layer in status.failures() {
                    failures.push(format!(
                        "{:?} {}: {}",
                        worker.kind,
                        layer.layer.name(),
                        layer.detail
                    ));
                }
            }
            if let Err(why) = &worker.self_test {
                failures.push(format!("{:?} self-test: {why}", worker.kind));
            }
        }
        failures
    }

    /// Whether every layer is active in both workers and both self-tests passed.
    pub fn secure(&self) -> bool {
        self.workers.iter().all(|w| {
            w.self_test.is_ok()
                && w.status
                    .as_ref()
                    .is_some_and(SecurityStatus::fully_sandboxed)
        })
    }
}

/// Spawns each worker with the sandbox `config` asks for and runs a real prepare and
/// execute in them.
pub async fn self_test(config: &Config) -> SecurityReport {
    let dir = config.cache_dir.join("workers");
    let spec = |kind: WorkerKind, program: &Path| SpawnSpec {
        program: program.to_path_buf(),
        // Named like the pool's worker dirs, so a start-up scan removes one a killed host left.
        dir: dir.join(format!("{kind:?}-self-test-{}", std::process::id()).to_lowercase()),
        timeout: config.spawn_timeout,
        layers: layers_for(config.sandbox),
        cgroup: config.worker_cgroup,
    };
    let params = ExecutorParams::default();
    let code = match wat::parse_str(SELF_TEST_GUEST) {
        Ok(code) => code,
        Err(e) => {
            let failed = |kind| WorkerReport {
                kind,
                status: None,
                self_test: Err(format!("self-test guest: {e}")),
            };
            return SecurityReport {
                workers: vec![failed(WorkerKind::Prepare), failed(WorkerKind::Execute)],
            };
        }
    };
    let id = ArtifactId::new(&code, &params);
    let mut prepare = start(
        WorkerKind::Prepare,
        &spec(WorkerKind::Prepare, &config.prepare_worker),
    )
    .await;
    let mut execute = start(
        WorkerKind::Execute,
        &spec(WorkerKind::Execute, &config.execute_worker),
    )
    .await;
    let artifact = match &mut prepare.1 {
        Some(worker) => prepare_one(worker, &code, &params, id).await,
        None => Err("the prepare worker did not start".to_string()),
    };
    if prepare.1.is_some() {
        prepare.0.self_test = artifact
            .as_ref()
            .map(|(_, size)| format!("prepared a {size}-byte artifact"))
            .map_err(Clone::clone);
    }
    if let Some(exec) = &mut execute.1 {
        execute.0.self_test = match &artifact {
            Ok((path, _)) => execute_one(exec, path, id, &params).await,
            Err(_) => Err("nothing to execute: preparation failed".into()),
        };
    }
    for worker in [prepare.1, execute.1].into_iter().flatten() {
        worker.shutdown().await;
    }
    SecurityReport {
        workers: vec![prepare.0, execute.0],
    }
}

/// Spawns a worker; the report holds its status or why it failed.
async fn start(kind: WorkerKind, spec: &SpawnSpec) -> (WorkerReport, Option<WorkerProcess>) {
    match WorkerProcess::spawn(spec).await {
        Ok(worker) => (
            WorkerReport {
                kind,
                status: Some(worker.security.clone()),
                self_test: Ok(String::new()),
            },
            Some(worker),
        ),
        Err(WorkerError::Sandbox(status)) => (
            WorkerReport {
                kind,
                status: Some(status),
                self_test: Err("the worker could not apply every layer".into()),
            },
            None,
        ),
        Err(e) => (
            WorkerReport {
                kind,
                status: None,
                self_test: Err(e.to_string()),
            },
            None,
        ),
    }
}

/// Prepares `code` and takes the artifact in as the host does ([`intake`]), into the
/// prepare worker's own dir; returns its path and size.
async fn prepare_one(
    worker: &mut WorkerProcess,
    code: &[u8],
    params: &ExecutorParams,
    id: ArtifactId,
) -> Result<(PathBuf, u64), String> {
    let request = PrepareRequest {
        code: code.to_vec(),
        params: params.clone(),
        id,
        timeout_ms: 10_000,
        artifact_file: pool::fresh_artifact_name(),
        kind: PrepKind::Precheck,
    };
    let response: PrepareResponse = worker
        .call(&request, Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    response.map_err(|e| e.to_string())?;
    let fingerprint = engine::fingerprint().map_err(|e| e.to_string())?;
    let dir = worker.dir();
    intake::install(dir, &request.artifact_file, &id, &fingerprint, dir)
        .map_err(|e| format!("taking the artifact in: {e}"))
}

async fn execute_one(
    exec: &mut WorkerProcess,
    artifact: &Path,
    id: ArtifactId,
    params: &ExecutorParams,
) -> Result<String, String> {
    let to = exec.dir().join(id.file_name());
    std::fs::hard_link(artifact, &to).map_err(|e| format!("linking the artifact: {e}"))?;
    let request = ExecuteRequest {
        id,
        params: params.clone(),
        validation_params: ValidationParams::default().encode(),
        timeout_ms: 10_000,
        module_cache_bytes: 1 << 30,
        holder_cpu_budget_ms: 10_000,
    };
    let answer = exec.call::<_, ExecuteAnswer>(&request, Duration::from_secs(60));
    match answer.await.map(|answer| answer.outcome) {
        Ok(ExecuteResponse::Ok { result, .. }) if result.head_data == [42] => {
            Ok("executed validate_block: Valid".into())
        }
        Ok(other) => Err(format!("unexpected execution result: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}
