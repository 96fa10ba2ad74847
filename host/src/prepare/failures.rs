//! The memory of failed preparations: deterministic failures are final, the others may be
//! retried after a cooldown, a bounded number of times. Without it a code that crashes the
//! compiler would be prepared again on every request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pvf_common::error::PrepareError;
use pvf_common::params::ArtifactId;

/// Failed preparations and when they failed.
pub struct Failures {
    cooldown: Duration,
    max_attempts: u32,
    failed: HashMap<ArtifactId, Failure>,
}

struct Failure {
    error: PrepareError,
    at: Instant,
    attempts: u32,
}

impl Failures {
    /// Retries after `cooldown`, at most `max_attempts` preparations in all.
    pub fn new(cooldown: Duration, max_attempts: u32) -> Self {
        Self {
            cooldown,
            max_attempts,
            failed: HashMap::new(),
        }
    }

    /// The error to answer with instead of preparing `id` at `now`, if any.
    pub fn refusal(&self, id: &ArtifactId, now: Instant) -> Option<&PrepareError> {
        let failure = self.failed.get(id)?;
        let final_ = failure.error.is_deterministic() || failure.attempts >= self.max_attempts;
        let cooling = now.saturating_duration_since(failure.at) < self.cooldown;
        (final_ || cooling).then_some(&failure.error)
    }

    /// Records a failed preparation of `id` at `now`.
    pub fn record(&mut self, id: ArtifactId, error: PrepareError, now: Instant) {
        let attempts = self.failed.get(&id).map_or(0, |f| f.attempts) + 1;
        tracing::debug!(artifact = %id, attempts, "preparation failed: {error}");
        self.failed.insert(
            id,
            Failure {
                error,
                at: now,
                attempts,
            },
        );
    }

    /// Forgets `id` after it prepared.
    pub fn forget(&mut self, id: &ArtifactId) {
        self.failed.remove(id);
    }

    /// The last error and number of failed attempts for `id`.
    pub fn get(&self, id: &ArtifactId) -> Option<(&PrepareError, u32)> {
        self.failed.get(id).map(|f| (&f.error, f.attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvf_common::params::ExecutorParams;

    fn id() -> ArtifactId {
        ArtifactId::new(b"code", &ExecutorParams::default())
    }

    #[test]
    fn deterministic_failures_are_final() {
        let mut failures = Failures::new(Duration::from_secs(1), 5);
        let t0 = Instant::now();
        failures.record(id(), PrepareError::Compile("x".into()), t0);
        assert!(
            failures
                .refusal(&id(), t0 + Duration::from_secs(3600))
                .is_some()
        );
    }

    #[test]
    fn others_retry_after_the_cooldown_a_bounded_number_of_times() {
        let cooldown = Duration::from_secs(10);
        let mut failures = Failures::new(cooldown, 2);
        let t0 = Instant::now();
        failures.record(id(), PrepareError::TimedOut { cpu_ms: 1 }, t0);
        assert!(failures.refusal(&id(), t0 + cooldown / 2).is_some());
        assert!(failures.refusal(&id(), t0 + cooldown).is_none());
        failures.record(id(), PrepareError::TimedOut { cpu_ms: 1 }, t0 + cooldown);
        assert!(
            failures.refusal(&id(), t0 + cooldown * 10).is_some(),
            "2 attempts used"
        );
        failures.forget(&id());
        assert!(failures.refusal(&id(), t0).is_none());
    }
}
