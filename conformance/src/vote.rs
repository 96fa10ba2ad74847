//! What each host answered, and the vote a validator would cast on it.

use std::fmt;

/// A validator's vote: on a candidate (valid / invalid) or, for a pre-check, on the code
/// (accept = `Valid`, reject = `Invalid`). `Abstain` is no vote: this machine could not judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    Valid,
    Invalid,
    Abstain,
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vote::Valid => "valid",
            Vote::Invalid => "invalid",
            Vote::Abstain => "abstain",
        })
    }
}

/// The parts of a `ValidationResult` a candidate commits to, so two Valid answers can be
/// compared: a different head or message count is a different commitments hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitments {
    pub head_data: String,
    pub new_validation_code_len: Option<usize>,
    pub upward_messages: usize,
    pub horizontal_messages: usize,
    pub processed_downward_messages: u32,
    pub hrmp_watermark: u32,
}

/// One host's answer to one question (a pre-check or an execution).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The verdict class the host reported (`Valid`, `Invalid`, `PossiblyInvalid`,
    /// `Internal`, and on Polkadot's side also `Preparation`).
    pub class: String,
    /// The machine-readable reason kind (the error variant), empty for Valid.
    pub kind: String,
    /// Where the verdict came from, when the host says: `prepare` or `execute`.
    pub stage: Option<String>,
    /// The host's own words, for the details below the table.
    pub raw: String,
    /// The vote, after the candidate-validation rules (retries included).
    pub vote: Vote,
    /// What the candidate commits to, when Valid.
    pub commitments: Option<Commitments>,
    /// How many times the request ran (retries are part of the rules).
    pub attempts: u32,
}

impl Outcome {
    /// `class/kind`, the short form in the table.
    pub fn label(&self) -> String {
        let mut label = self.class.clone();
        if !self.kind.is_empty() {
            label = format!("{label}/{}", self.kind);
        }
        if let Some(stage) = &self.stage {
            label = format!("{label}@{stage}");
        }
        if self.attempts > 1 {
            label = format!("{label} x{}", self.attempts);
        }
        label
    }

    /// Whether two answers lead to the same vote and, when valid, the same commitments.
    pub fn same_vote(&self, other: &Outcome) -> bool {
        self.vote == other.vote && self.commitments == other.commitments
    }
}

/// The retry budget of Polkadot's candidate validation for approval and dispute checks: each
/// kind of possibly-transient failure is retried once, as long as the time left allows.
/// Backing never retries. (pvf's host applies the same rules itself.)
#[derive(Default)]
pub struct RetryBudget {
    deaths: bool,
    job_errors: bool,
    internal: bool,
    runtime_construction: bool,
}

/// The failure kinds that candidate validation retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retryable {
    /// The worker or the job died.
    Death,
    /// An unexpected error in the job.
    JobError,
    /// An internal error of this machine.
    Internal,
    /// Instantiation failed or the artifact is corrupted: re-prepare (a pre-check) first.
    RuntimeConstruction,
}

impl RetryBudget {
    /// Spends the budget for `kind`; false when it is already spent.
    pub fn take(&mut self, kind: Retryable) -> bool {
        let spent = match kind {
            Retryable::Death => &mut self.deaths,
            Retryable::JobError => &mut self.job_errors,
            Retryable::Internal => &mut self.internal,
            Retryable::RuntimeConstruction => &mut self.runtime_construction,
        };
        !std::mem::replace(spent, true)
    }
}

/// The pause before retrying a possibly transient failure in approval and dispute checks
/// (Polkadot's `PVF_APPROVAL_EXECUTION_RETRY_DELAY`).
pub const RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_retried_once() {
        let mut budget = RetryBudget::default();
        assert!(budget.take(Retryable::Death));
        assert!(!budget.take(Retryable::Death));
        assert!(budget.take(Retryable::JobError));
        assert!(budget.take(Retryable::Internal));
        assert!(budget.take(Retryable::RuntimeConstruction));
        assert!(!budget.take(Retryable::RuntimeConstruction));
    }
}
