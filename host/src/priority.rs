//! The one priority scale both queues use.

use pvf_common::params::ExecKind;

/// How urgent a piece of work is, lowest first.
///
/// The prepare queue orders by it directly. The execute queue orders by [`ExecKind`]
/// (dispute > approval > backing), and an execution that needs its code prepared first
/// asks for the preparation at [`Priority::of_execution`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Ahead of need (`heads_up`): only when nothing else waits.
    Background,
    /// Someone is waiting (pre-checking, backing).
    Normal,
    /// Finality waits on it (approval, dispute); may use the prepare workers between the
    /// soft and the hard limit.
    Critical,
}

impl Priority {
    /// The priority of preparing code for an execution of `kind`: backing is normal work,
    /// approvals and disputes hold up finality and are critical.
    pub fn of_execution(kind: ExecKind) -> Self {
        match kind {
            ExecKind::Backing => Self::Normal,
            ExecKind::Approval | ExecKind::Dispute => Self::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_background_normal_critical() {
        assert!(Priority::Background < Priority::Normal);
        assert!(Priority::Normal < Priority::Critical);
        assert!(ExecKind::Backing < ExecKind::Approval && ExecKind::Approval < ExecKind::Dispute);
        assert_eq!(
            Priority::of_execution(ExecKind::Dispute),
            Priority::Critical
        );
    }
}
