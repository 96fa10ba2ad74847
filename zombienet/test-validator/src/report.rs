//! The log line for each verdict, with a digest of what validators must agree on.

use parity_scale_codec::Encode;
use pvf_host::Verdict;

use crate::candidates::Candidate;

/// A digest of the consensus-relevant part of a verdict: its kind and, when valid, the whole
/// `ValidationResult`. Reasons are left out: they are for operators, may carry timings, and
/// validators vote only valid or invalid.
pub fn digest(verdict: &Verdict) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(verdict.class().as_bytes());
    if let Verdict::Valid(result) = verdict {
        hasher.update(&result.encode());
    }
    hasher.finalize()
}

/// Logs one line: `verdict candidate=<id> verdict=<kind> digest=<hex> ...`. The network tests
/// compare these lines across nodes.
pub fn log_verdict(candidate: &Candidate<'_>, verdict: &Verdict) {
    let digest = digest(verdict).to_hex();
    match verdict {
        Verdict::Valid(_) => tracing::info!(
            candidate = %candidate.id,
            verdict = %verdict.class(),
            digest = %digest,
            "verdict"
        ),
        Verdict::Invalid(_) | Verdict::PossiblyInvalid(_) | Verdict::Internal(_) => {
            tracing::info!(
                candidate = %candidate.id,
                verdict = %verdict.class(),
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
    use pvf_host::Reason;

    use super::*;

    #[test]
    fn digest_covers_kind_and_result_but_not_reasons() {
        let valid = |head: u8| {
            Verdict::Valid(ValidationResult {
                head_data: vec![head],
                ..ValidationResult::default()
            })
        };
        let trap = |m: &str| Verdict::Invalid(Reason::Trap(m.into()));
        assert_eq!(digest(&valid(1)), digest(&valid(1)));
        assert_ne!(digest(&valid(1)), digest(&valid(2)));
        assert_eq!(digest(&trap("a")), digest(&trap("b")));
        assert_ne!(
            digest(&trap("a")),
            digest(&Verdict::Internal(Reason::Local("a".into())))
        );
        assert_ne!(
            digest(&Verdict::PossiblyInvalid(Reason::Local("a".into()))),
            digest(&Verdict::Internal(Reason::Local("a".into())))
        );
    }
}
