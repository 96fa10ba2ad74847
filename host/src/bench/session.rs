//! A host on a scratch cache dir, started through the public API and stopped so that its
//! cache lock is released before the dir is removed.

use std::sync::Arc;
use std::time::Instant;

use pvf_common::params::{ExecKind, ExecutorParams};
use tokio::task::JoinHandle;

use super::guests::Code;
use super::{BenchError, Options};
use crate::config::Config;
use crate::host::{ArtifactInfo, ExecuteArgs, Execution, ValidationHost};

/// A running host and the scratch dir it owns.
pub struct Session {
    /// The handle.
    pub host: ValidationHost,
    task: JoinHandle<()>,
    /// Removed on drop, after the host has stopped.
    dir: tempfile::TempDir,
}

/// Execute workers: one per core, so throughput scenarios can use the whole machine.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Session {
    /// Starts a host on a fresh scratch cache.
    pub async fn start(options: &Options) -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new().prefix("pvf-bench-").tempdir()?;
        Self::start_in(options, dir).await
    }

    /// Starts a host on `dir` (fresh or, for a restart, left by an earlier session).
    pub async fn start_in(options: &Options, dir: tempfile::TempDir) -> Result<Self, BenchError> {
        let config = Config {
            cache_dir: dir.path().to_path_buf(),
            execute_workers_max: cores(),
            ..options.config.clone()
        };
        let (host, future) = crate::host::start(config).await?;
        Ok(Self {
            host,
            task: tokio::spawn(future),
            dir,
        })
    }

    /// Stops the host (it ends when its last handle is dropped) and keeps the cache dir.
    pub async fn stop_keeping_cache(self) -> tempfile::TempDir {
        drop(self.host);
        if let Err(e) = self.task.await {
            tracing::warn!("the bench host task ended badly: {e}");
        }
        self.dir
    }

    /// Stops the host and removes its cache dir.
    pub async fn stop(self) {
        drop(self.stop_keeping_cache().await);
    }

    /// Prepares `code` with the default executor parameters.
    pub async fn precheck(&self, code: &Code) -> Result<ArtifactInfo, BenchError> {
        self.host
            .precheck(code.bytes.clone(), ExecutorParams::default())
            .await
            .map_err(|error| BenchError::Precheck {
                code: code.name.clone(),
                error,
            })
    }

    /// One backing validation, timed from the caller's side.
    pub async fn execute(
        &self,
        code: &Code,
        validation_params: Arc<Vec<u8>>,
    ) -> Result<(Execution, std::time::Duration), BenchError> {
        let start = Instant::now();
        let execution = execute(&self.host, code, validation_params).await?;
        Ok((execution, start.elapsed()))
    }
}

/// One backing validation on `host`.
pub async fn execute(
    host: &ValidationHost,
    code: &Code,
    validation_params: Arc<Vec<u8>>,
) -> Result<Execution, BenchError> {
    Ok(host
        .execute(ExecuteArgs {
            code: code.bytes.clone(),
            executor_params: ExecutorParams::default(),
            validation_params,
            kind: ExecKind::Backing,
            timeout: None,
        })
        .await?)
}
