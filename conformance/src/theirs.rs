//! Polkadot's side: its real PVF host (`polkadot-node-core-pvf`) with its real workers, in
//! secure validator mode, and the rules of its candidate validation that turn the host's
//! answers into votes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use polkadot_node_core_pvf::{
    Config, InvalidCandidate, Metrics, PossiblyInvalidError, PrepareError, PrepareJobKind,
    Priority, PvfPrepData, SecurityStatus, ValidationError, ValidationHost,
};
use polkadot_node_core_pvf_common::execute::ValidationContext;
use polkadot_node_primitives::{BlockData, PoV};
use polkadot_node_subsystem::messages::PvfExecKind;
use polkadot_parachain_primitives::primitives::{HeadData, ValidationResult};
use polkadot_primitives::executor_params::{
    DEFAULT_APPROVAL_EXECUTION_TIMEOUT, DEFAULT_BACKING_EXECUTION_TIMEOUT,
    DEFAULT_LENIENT_PREPARATION_TIMEOUT, DEFAULT_PRECHECK_PREPARATION_TIMEOUT,
};
use polkadot_primitives::{
    CandidateDescriptorV2, CandidateReceiptV2, CoreIndex, ExecutorParams, Hash, Id,
    PersistedValidationData, ValidationCodeHash,
};

use crate::case::{CODE_BOMB_LIMIT, Case, Kind};
use crate::vote::{Commitments, Outcome, RETRY_DELAY, RetryBudget, Retryable, Vote};

/// The largest PoV a candidate may carry (`MAX_POV_SIZE`); only recorded in the PVD.
const MAX_POV_SIZE: u32 = 5 * 1024 * 1024;

pub struct Polkadot {
    host: ValidationHost,
    /// Holds the host's artifact cache for the run.
    _cache: tempfile::TempDir,
}

impl Polkadot {
    /// Starts the host in secure validator mode with the workers found in `worker_dir`. The
    /// host refuses to start if a sandbox layer is missing.
    pub async fn start(worker_dir: &Path) -> Result<Self, String> {
        let cache = tempfile::tempdir().map_err(|e| format!("cache dir: {e}"))?;
        let config = Config::new(
            cache.path().to_path_buf(),
            Some(env!("CARGO_PKG_VERSION").to_string()),
            true,
            worker_dir.join(polkadot_node_core_pvf::PREPARE_BINARY_NAME),
            worker_dir.join(polkadot_node_core_pvf::EXECUTE_BINARY_NAME),
            2,
            1,
            2,
        );
        let (host, run) = polkadot_node_core_pvf::start(config, Metrics::default())
            .await
            .map_err(|e| format!("Polkadot's host refused to start: {e}"))?;
        tokio::spawn(run);
        Ok(Self {
            host,
            _cache: cache,
        })
    }

    pub fn security_status(&self) -> &SecurityStatus {
        &self.host.security_status
    }

    /// Pre-checks the code as a validator votes on a code upgrade: accept on success, reject
    /// on a deterministic failure, no vote otherwise.
    pub async fn precheck(&mut self, case: &Case) -> Outcome {
        let pvf = prep_data(
            case,
            PrepareJobKind::Prechecking,
            DEFAULT_PRECHECK_PREPARATION_TIMEOUT,
        );
        let result = self.precheck_pvf(pvf).await;
        let (class, kind, vote) = match &result {
            Ok(()) => ("Valid", String::new(), Vote::Valid),
            Err(e) if e.is_deterministic() => ("Invalid", prepare_error_kind(e), Vote::Invalid),
            Err(e) => ("Internal", prepare_error_kind(e), Vote::Abstain),
        };
        Outcome {
            class: class.into(),
            kind,
            stage: Some("prepare".into()),
            raw: match result {
                Ok(()) => "Ok".into(),
                Err(e) => format!("{e:?}"),
            },
            vote,
            commitments: None,
            attempts: 1,
        }
    }

    async fn precheck_pvf(&mut self, pvf: PvfPrepData) -> Result<(), PrepareError> {
        let (tx, rx) = oneshot::channel();
        self.host
            .precheck_pvf(pvf, tx)
            .await
            .map_err(PrepareError::IoErr)?;
        rx.await.map_err(|e| PrepareError::IoErr(e.to_string()))?
    }

    /// Validates the candidate as candidate validation does for `kind`: backing runs once,
    /// approval and dispute retry possibly-transient failures once each.
    pub async fn validate(&mut self, case: &Case) -> Outcome {
        let exec_kind = match case.spec.kind {
            Kind::Backing => PvfExecKind::Backing(Hash::zero()),
            Kind::Approval => PvfExecKind::Approval,
            Kind::Dispute => PvfExecKind::Dispute,
        };
        let exec_timeout = match case.spec.kind {
            Kind::Backing => DEFAULT_BACKING_EXECUTION_TIMEOUT,
            Kind::Approval | Kind::Dispute => DEFAULT_APPROVAL_EXECUTION_TIMEOUT,
        };
        let pvf = prep_data(
            case,
            PrepareJobKind::Compilation,
            DEFAULT_LENIENT_PREPARATION_TIMEOUT,
        );
        let context = validation_context(case, exec_timeout);

        let started = Instant::now();
        let mut attempts = 1;
        let mut result = self.execute(pvf.clone(), context.clone(), exec_kind).await;
        if case.spec.kind != Kind::Backing {
            let mut budget = RetryBudget::default();
            while let Err(error) = &result {
                let Some(retryable) = retryable(error) else {
                    break;
                };
                if started.elapsed() + RETRY_DELAY > exec_timeout || !budget.take(retryable) {
                    break;
                }
                if retryable == Retryable::RuntimeConstruction {
                    // Re-prepare first; a failure ends the validation with that error.
                    if let Err(e) = self.precheck_pvf(pvf.clone()).await {
                        result = Err(e.into());
                        break;
                    }
                } else {
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                let mut retry = context.clone();
                retry.exec_timeout = exec_timeout.saturating_sub(started.elapsed());
                attempts += 1;
                result = self.execute(pvf.clone(), retry, exec_kind).await;
            }
        }
        outcome(result, attempts)
    }

    async fn execute(
        &mut self,
        pvf: PvfPrepData,
        context: ValidationContext,
        exec_kind: PvfExecKind,
    ) -> Result<ValidationResult, ValidationError> {
        let (tx, rx) = oneshot::channel();
        let priority = Priority::from(exec_kind);
        if let Err(e) = self
            .host
            .execute_pvf(pvf, context, priority, exec_kind, tx)
            .await
        {
            return Err(
                polkadot_node_core_pvf::InternalValidationError::HostCommunication(e).into(),
            );
        }
        rx.await.unwrap_or_else(|_| {
            Err(
                polkadot_node_core_pvf::InternalValidationError::HostCommunication(
                    "validation was cancelled".into(),
                )
                .into(),
            )
        })
    }
}

fn prep_data(case: &Case, kind: PrepareJobKind, timeout: Duration) -> PvfPrepData {
    PvfPrepData::from_code(
        case.code.clone(),
        ExecutorParams::default(),
        timeout,
        kind,
        CODE_BOMB_LIMIT as u32,
    )
}

/// The candidate around the params: a V2 descriptor, so the execute worker passes the plain
/// `ValidationParams` (no V3 extension), the same bytes `pvf validate` gets.
fn validation_context(case: &Case, exec_timeout: Duration) -> ValidationContext {
    let descriptor = CandidateDescriptorV2::new(
        Id::from(1000),
        Hash::zero(),
        CoreIndex(0),
        0,
        Hash::zero(),
        Hash::zero(),
        Hash::zero(),
        Hash::zero(),
        ValidationCodeHash::from(Hash::zero()),
    );
    ValidationContext {
        candidate_receipt: CandidateReceiptV2 {
            descriptor,
            commitments_hash: Hash::zero(),
        },
        pvd: Arc::new(PersistedValidationData {
            parent_head: HeadData(case.parent_head.clone()),
            relay_parent_number: case.spec.relay_parent_number,
            relay_parent_storage_root: Hash::zero(),
            max_pov_size: MAX_POV_SIZE,
        }),
        pov: Arc::new(PoV {
            block_data: BlockData(case.block_data.clone()),
        }),
        executor_params: ExecutorParams::default(),
        exec_timeout,
        v3_seen: false,
    }
}

/// Which retry budget an execution failure draws on, if any.
fn retryable(error: &ValidationError) -> Option<Retryable> {
    match error {
        ValidationError::PossiblyInvalid(
            PossiblyInvalidError::AmbiguousWorkerDeath | PossiblyInvalidError::AmbiguousJobDeath(_),
        ) => Some(Retryable::Death),
        ValidationError::PossiblyInvalid(PossiblyInvalidError::JobError(_)) => {
            Some(Retryable::JobError)
        }
        ValidationError::Internal(_) => Some(Retryable::Internal),
        ValidationError::PossiblyInvalid(
            PossiblyInvalidError::RuntimeConstruction(_) | PossiblyInvalidError::CorruptedArtifact,
        ) => Some(Retryable::RuntimeConstruction),
        ValidationError::Invalid(_)
        | ValidationError::Preparation(_)
        | ValidationError::ExecutionDeadline => None,
    }
}

/// Candidate validation's vote on the host's final answer: every `Invalid` and every
/// `PossiblyInvalid` left after the retries is a vote against; `Internal`, a deterministic
/// preparation failure (pre-checking should have ruled the code out) and a missed deadline
/// are no vote. A valid result is a vote for (the harness's candidate commits to whatever the
/// PVF returned).
fn outcome(result: Result<ValidationResult, ValidationError>, attempts: u32) -> Outcome {
    let (class, kind, vote) = match &result {
        Ok(_) => ("Valid", String::new(), Vote::Valid),
        Err(ValidationError::Invalid(e)) => ("Invalid", invalid_kind(e).to_string(), Vote::Invalid),
        Err(ValidationError::PossiblyInvalid(e)) => (
            "PossiblyInvalid",
            possibly_invalid_kind(e).to_string(),
            Vote::Invalid,
        ),
        Err(ValidationError::Internal(e)) => {
            ("Internal", variant_name(&format!("{e:?}")), Vote::Abstain)
        }
        Err(ValidationError::Preparation(e)) => {
            ("Preparation", prepare_error_kind(e), Vote::Abstain)
        }
        Err(ValidationError::ExecutionDeadline) => {
            ("ExecutionDeadline", String::new(), Vote::Abstain)
        }
    };
    let stage = match &result {
        Err(ValidationError::Preparation(_)) => "prepare",
        _ => "execute",
    };
    let commitments = result.as_ref().ok().map(|r| Commitments {
        head_data: format!("0x{}", hex::encode(&r.head_data.0)),
        new_validation_code_len: r.new_validation_code.as_ref().map(|c| c.0.len()),
        upward_messages: r.upward_messages.len(),
        horizontal_messages: r.horizontal_messages.len(),
        processed_downward_messages: r.processed_downward_messages,
        hrmp_watermark: r.hrmp_watermark,
    });
    Outcome {
        class: class.into(),
        kind,
        stage: Some(stage.into()),
        raw: match &result {
            Ok(_) => "Ok".into(),
            Err(e) => format!("{e:?}"),
        },
        vote,
        commitments,
        attempts,
    }
}

fn invalid_kind(e: &InvalidCandidate) -> &'static str {
    match e {
        InvalidCandidate::WorkerReportedInvalid(_) => "WorkerReportedInvalid",
        InvalidCandidate::HardTimeout => "HardTimeout",
        InvalidCandidate::PoVDecompressionFailure => "PoVDecompressionFailure",
    }
}

fn possibly_invalid_kind(e: &PossiblyInvalidError) -> &'static str {
    match e {
        PossiblyInvalidError::AmbiguousWorkerDeath => "AmbiguousWorkerDeath",
        PossiblyInvalidError::AmbiguousJobDeath(_) => "AmbiguousJobDeath",
        PossiblyInvalidError::JobError(_) => "JobError",
        PossiblyInvalidError::RuntimeConstruction(_) => "RuntimeConstruction",
        PossiblyInvalidError::CorruptedArtifact => "CorruptedArtifact",
    }
}

fn prepare_error_kind(e: &PrepareError) -> String {
    variant_name(&format!("{e:?}"))
}

/// The variant name at the start of a `Debug` rendering (`Prevalidation("…")` → `Prevalidation`).
fn variant_name(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}
