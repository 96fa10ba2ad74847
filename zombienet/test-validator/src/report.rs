//! The log line for each verdict, with a digest of what validators must agree on.

use parity_scale_codec::Encode;
use pvf_host::Verdict;

use crate::candidates::Candidate;

/// A digest of the consensus-relevant part of a verdict: its kind and, when valid, the whole
/// `ValidationResult`. Reasons are left out: they are for operators, may carry timings, and
/// validators vote only valid or invalid.
pub fn digest(verdict: &Verdict) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(kind(verdict).as_bytes());
    if let Verdict::Valid(result) = verdict {
        hasher.update(&result.encode());
    }
    hasher.finalize()
}

/// The verdict's kind, as logged.
pub fn kind(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Valid(_) => "Valid",
        Verdict::Invalid(_) => "Invalid",
        Verdict::PossiblyInvalid(_) => "PossiblyInvalid",
        Verdict::Internal(_) => "Internal",
    }
}

/// Logs one line: `verdict candidate=<id> verdict=<kind> digest=<hex> ...`. The network tests
/// compare these lines across nodes.
pub fn log_verdict(candidate: &Candidate<'_>, verdict: &Verdict) {
    let digest = digest(verdict).to_hex();
    match verdict {
        Verdict::Valid(_) => tracing::info!(
            candidate = %candidate.id,
            verdict = %kind(verdict),
            digest = %digest,
            "verdict"
        ),
        Verdict::Invalid(_) | Verdict::PossiblyInvalid(_) | Verdict::Internal(_) => {
            tracing::info!(
                candidate = %candidate.id,
                verdict = %kind(verdict),
                digest = %digest,
                reason = ?verdict.to_string(),
                "verdict"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use pvf_common::validation::ValidationResult;
    use pvf_host::InvalidReason;

    use super::*;

    #[test]
    fn digest_covers_kind_and_result_but_not_reasons() {
        let valid = |head: u8| {
            Verdict::Valid(ValidationResult {
                head_data: vec![head],
                ..ValidationResult::default()
            })
        };
        let trap = |m: &str| Verdict::Invalid(InvalidReason::Trap(m.into()));
        assert_eq!(digest(&valid(1)), digest(&valid(1)));
        assert_ne!(digest(&valid(1)), digest(&valid(2)));
        assert_eq!(digest(&trap("a")), digest(&trap("b")));
        assert_ne!(digest(&trap("a")), digest(&Verdict::Internal("a".into())));
        assert_ne!(
            digest(&Verdict::PossiblyInvalid("a".into())),
            digest(&Verdict::Internal("a".into()))
        );
    }
}
