//! The execute queue's fair share between the kinds of validation.
//!
//! Strict priority would let a steady stream of approvals starve backing. Polkadot's execute
//! queue shares instead, and so do we, with its numbers: over a window of 12 scheduled jobs,
//! disputes may take 70% of the jobs, approvals 80% of what is left to them and backing, and
//! backing the rest. A kind that has used its share yields to a lower kind with work waiting;
//! when no lower kind waits, it goes on. With all three kinds waiting, a window runs 8
//! disputes, 3 approvals and 1 backing job; under approval load alone, 11 approvals and 1
//! backing job, which runs second.

use pvf_common::params::ExecKind;

/// Scheduled jobs after which the counts start again (Polkadot's window).
pub const WINDOW: usize = 12;

/// Each kind's share, in percent, of the jobs scheduled for it and the kinds below it;
/// highest priority first.
const SHARES: [(ExecKind, usize); 3] = [
    (ExecKind::Dispute, 70),
    (ExecKind::Approval, 80),
    (ExecKind::Backing, 100),
];

/// Jobs scheduled per kind in the current window.
#[derive(Debug, Default)]
pub struct FairShare {
    scheduled: [usize; 3],
}

impl FairShare {
    /// The kinds in the order to serve them now, among those with work waiting: first the
    /// highest that has not used its share, then the rest by priority.
    pub fn order(&self, waiting: impl Fn(ExecKind) -> bool) -> Vec<ExecKind> {
        let mut kinds: Vec<ExecKind> = SHARES
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| waiting(*k))
            .collect();
        if let Some(at) = kinds.iter().position(|k| !self.used_share(*k)) {
            let first = kinds.remove(at);
            kinds.insert(0, first);
        }
        kinds
    }

    /// Counts a job of `kind` as scheduled.
    pub fn record(&mut self, kind: ExecKind) {
        self.scheduled[index(kind)] += 1;
        if self.scheduled.iter().sum::<usize>() >= WINDOW {
            self.scheduled = [0; 3];
        }
    }

    /// Whether `kind` has had its share of the jobs scheduled for it and the kinds below.
    fn used_share(&self, kind: ExecKind) -> bool {
        let (_, share) = SHARES[SHARES.len() - 1 - index(kind)];
        let at_or_below: usize = SHARES
            .iter()
            .filter(|(k, _)| *k <= kind)
            .map(|(k, _)| self.scheduled[index(*k)])
            .sum();
        at_or_below > 0 && self.scheduled[index(kind)] * 100 / at_or_below >= share
    }
}

fn index(kind: ExecKind) -> usize {
    match kind {
        ExecKind::Backing => 0,
        ExecKind::Approval => 1,
        ExecKind::Dispute => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecKind::{Approval, Backing, Dispute};

    /// Schedules a window with unlimited work of the `waiting` kinds.
    fn one_window(waiting: &[ExecKind]) -> Vec<ExecKind> {
        let mut share = FairShare::default();
        (0..WINDOW)
            .map(|_| {
                let kind = share.order(|k| waiting.contains(&k))[0];
                share.record(kind);
                kind
            })
            .collect()
    }

    fn count(kinds: &[ExecKind], kind: ExecKind) -> usize {
        kinds.iter().filter(|k| **k == kind).count()
    }

    #[test]
    fn every_kind_gets_its_share_of_a_window() {
        let all = one_window(&[Dispute, Approval, Backing]);
        assert_eq!(
            (
                count(&all, Dispute),
                count(&all, Approval),
                count(&all, Backing)
            ),
            (8, 3, 1)
        );
        let no_disputes = one_window(&[Approval, Backing]);
        assert_eq!(count(&no_disputes, Approval), 11);
        assert_eq!(count(&no_disputes, Backing), 1);
    }

    #[test]
    fn backing_is_not_postponed_behind_approvals() {
        let mut share = FairShare::default();
        let mut backing_left = 1;
        let mut order = Vec::new();
        for _ in 0..4 {
            let kind = share.order(|k| k == Approval || (k == Backing && backing_left > 0))[0];
            if kind == Backing {
                backing_left -= 1;
            }
            share.record(kind);
            order.push(kind);
        }
        assert_eq!(order, [Approval, Backing, Approval, Approval]);
    }

    #[test]
    fn a_kind_alone_takes_everything() {
        assert_eq!(count(&one_window(&[Backing]), Backing), WINDOW);
        assert_eq!(count(&one_window(&[Dispute]), Dispute), WINDOW);
    }
}
