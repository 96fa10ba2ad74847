//! Which artifacts to prune: least recently needed first, only while the cache is over its
//! size budget, and never one needed within the minimum stale time.

use std::time::{Duration, SystemTime};

use pvf_common::params::ArtifactId;

/// What pruning needs to know about an artifact.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// The artifact.
    pub id: ArtifactId,
    /// Its real file size.
    pub size: u64,
    /// When it was last needed.
    pub last_needed: SystemTime,
}

/// The artifacts to remove so that the rest fit in `budget` bytes, oldest need first,
/// skipping any needed after `now - min_stale`. May leave the cache over budget when
/// everything left is fresh.
pub fn select(
    mut candidates: Vec<Candidate>,
    budget: u64,
    min_stale: Duration,
    now: SystemTime,
) -> Vec<ArtifactId> {
    let mut total: u64 = candidates.iter().map(|c| c.size).sum();
    candidates.sort_by_key(|c| (c.last_needed, c.id));
    let mut chosen = Vec::new();
    for candidate in candidates {
        if total <= budget {
            break;
        }
        let age = now
            .duration_since(candidate.last_needed)
            .unwrap_or_default();
        if age < min_stale {
            // Sorted by need: everything after this one is fresher.
            break;
        }
        total -= candidate.size;
        chosen.push(candidate.id);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvf_common::params::ExecutorParams;

    fn candidate(n: u8, size: u64, age_s: u64, now: SystemTime) -> Candidate {
        Candidate {
            id: ArtifactId::new(&[n], &ExecutorParams::default()),
            size,
            last_needed: now - Duration::from_secs(age_s),
        }
    }

    #[test]
    fn removes_exactly_the_oldest_over_budget_and_keeps_fresh_ones() {
        let now = SystemTime::now();
        let c = |n, size, age| candidate(n, size, age, now);
        let all = vec![
            c(1, 100, 500),
            c(2, 100, 400),
            c(3, 100, 300),
            c(4, 100, 10),
        ];
        let ids = |ns: &[u8]| -> Vec<ArtifactId> { ns.iter().map(|n| c(*n, 0, 0).id).collect() };
        let min_stale = Duration::from_secs(60);
        assert_eq!(select(all.clone(), 400, min_stale, now), ids(&[]));
        assert_eq!(select(all.clone(), 250, min_stale, now), ids(&[1, 2]));
        assert_eq!(select(all.clone(), 200, min_stale, now), ids(&[1, 2]));
        // Even at budget 0, the artifact needed 10 s ago stays.
        assert_eq!(select(all, 0, min_stale, now), ids(&[1, 2, 3]));
    }
}
