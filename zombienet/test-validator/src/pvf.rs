//! The node's one point of contact with the pvf host: start it, prepare code, validate a
//! candidate. Everything host-specific lives here, so a change to the host's API changes only
//! this module. The host records the PVF metrics itself; the node serves its registry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvf_common::error::PrepareError;
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_host::{
    ArtifactStatus, Config, ExecuteArgs, PrecheckError, Reason, StartError, ValidationHost, Verdict,
};

use crate::metrics::Metrics;

/// The pvf host as this node uses it: default executor parameters, backing validation.
pub struct Pvf {
    host: ValidationHost,
    params: ExecutorParams,
}

/// How a preparation went.
pub struct Preparation {
    /// Whether the artifact was already in the cache (from an earlier run of this node).
    pub cached: bool,
    /// Wall time spent.
    pub elapsed: Duration,
}

impl Pvf {
    /// Starts the host with its artifact cache in `cache_dir` and the workers found next to
    /// this executable, and serves its metrics through `metrics`.
    pub async fn start(cache_dir: PathBuf, metrics: &Metrics) -> Result<Self, StartError> {
        let (host, future) = pvf_host::start(Config::new(cache_dir)).await?;
        tokio::spawn(future);
        metrics.attach_host(host.metrics().registry().clone());
        Ok(Self {
            host,
            params: ExecutorParams::default(),
        })
    }

    /// Prepares `code` unless its artifact is cached.
    pub async fn prepare(&self, code: &[u8]) -> Result<Preparation, PrepareError> {
        let code = Arc::new(code.to_vec());
        let cached = matches!(
            self.host.artifact_status(&code, &self.params).await,
            Ok(ArtifactStatus::Prepared { .. })
        );
        let start = Instant::now();
        match self.host.precheck(code, self.params.clone()).await {
            Ok(_) => Ok(Preparation {
                cached,
                elapsed: start.elapsed(),
            }),
            Err(PrecheckError::Prepare(e)) => Err(e),
            Err(PrecheckError::Host(e)) => Err(PrepareError::Internal(e.to_string())),
        }
    }

    /// Validates one candidate as a backing validator would (2 s CPU-time limit).
    pub async fn validate(&self, code: &[u8], validation_params: &[u8]) -> Verdict {
        let args = ExecuteArgs {
            code: Arc::new(code.to_vec()),
            executor_params: self.params.clone(),
            validation_params: Arc::new(validation_params.to_vec()),
            kind: ExecKind::Backing,
            timeout: None,
        };
        match self.host.execute(args).await {
            Ok(execution) => execution.verdict,
            Err(e) => Verdict::Internal(Reason::Local(e.to_string())),
        }
    }
}
