//! `ext_logging_*` and the volume bound shared with the `ext_misc_print_*` functions.
//!
//! Guest logs go to `tracing` under the target `runtime`, with the guest's own target as a
//! field. A guest can log in a loop, so each call may log at most [`LOG_BUDGET_BYTES`];
//! past that, messages are dropped (after one warning). Arguments are still read and
//! checked, so the bound never changes whether a call traps.

use wasmtime::{Caller, Linker};

use super::abi::read_slice;
use super::{HostError, HostState};

/// Bytes of guest log text one `validate_block` call may emit.
pub const LOG_BUDGET_BYTES: usize = 64 * 1024;

/// How much the guest may still log in this call.
#[derive(Debug)]
pub struct LogBudget {
    left: usize,
    exhausted: bool,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self {
            left: LOG_BUDGET_BYTES,
            exhausted: false,
        }
    }
}

impl LogBudget {
    /// Takes `bytes` from the budget; `false` (warning once) if they do not fit.
    pub fn take(&mut self, bytes: usize) -> bool {
        if bytes <= self.left {
            self.left -= bytes;
            return true;
        }
        if !self.exhausted {
            self.exhausted = true;
            tracing::warn!(
                target: "runtime",
                "guest log volume limit ({LOG_BUDGET_BYTES} bytes) reached; dropping further messages"
            );
        }
        false
    }
}

/// The guest's log levels, as the runtime interface numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// 0
    Error,
    /// 1
    Warn,
    /// 2
    Info,
    /// 3
    Debug,
    /// 4
    Trace,
}

impl Level {
    /// The level an `i32` argument names: its low byte, as the runtime interface passes it.
    pub fn from_arg(arg: u32) -> Option<Self> {
        Some(match arg as u8 {
            0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            3 => Self::Debug,
            4 => Self::Trace,
            _ => return None,
        })
    }
}

/// Defines the logging functions.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "ext_logging_log_version_1", log)?;
    linker.func_wrap("env", "ext_logging_max_level_version_1", max_level)?;
    Ok(())
}

fn log(
    mut caller: Caller<'_, HostState>,
    level: u32,
    target: u64,
    message: u64,
) -> wasmtime::Result<()> {
    const FUNCTION: &str = "ext_logging_log_version_1";
    let level = Level::from_arg(level).ok_or_else(|| HostError::BadArgument {
        function: FUNCTION,
        reason: format!("log level {level}"),
    })?;
    let target =
        String::from_utf8(read_slice(&caller, target)?).map_err(|_| HostError::BadArgument {
            function: FUNCTION,
            reason: "target is not UTF-8".into(),
        })?;
    let message = read_slice(&caller, message)?;
    // A message that is not UTF-8 is dropped without an error, as in Polkadot's host.
    if let Ok(text) = std::str::from_utf8(&message)
        && caller.data_mut().log_budget.take(target.len() + text.len())
    {
        emit(level, &target, text);
    }
    Ok(())
}

/// Logs one guest message at its level.
pub fn emit(level: Level, guest_target: &str, text: &str) {
    match level {
        Level::Error => tracing::error!(target: "runtime", guest_target, "{text}"),
        Level::Warn => tracing::warn!(target: "runtime", guest_target, "{text}"),
        Level::Info => tracing::info!(target: "runtime", guest_target, "{text}"),
        Level::Debug => tracing::debug!(target: "runtime", guest_target, "{text}"),
        Level::Trace => tracing::trace!(target: "runtime", guest_target, "{text}"),
    }
}

/// The most verbose level this process logs, numbered as the runtime interface's
/// `LogLevelFilter`. It depends on the node's log settings, as in Polkadot's host; a guest
/// uses it only to skip formatting.
fn max_level() -> u32 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 1,
        LevelFilter::WARN => 2,
        LevelFilter::INFO => 3,
        LevelFilter::DEBUG => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_runtime_interface_numbering() {
        // sp-core `RuntimeInterfaceLogLevel`: Error = 0 … Trace = 4; the argument is cast to u8.
        assert_eq!(Level::from_arg(0), Some(Level::Error));
        assert_eq!(Level::from_arg(4), Some(Level::Trace));
        assert_eq!(Level::from_arg(5), None);
        assert_eq!(Level::from_arg(256 + 2), Some(Level::Info));
    }

    #[test]
    fn the_budget_drops_what_does_not_fit() {
        let mut budget = LogBudget::default();
        assert!(budget.take(LOG_BUDGET_BYTES - 10));
        assert!(!budget.take(11));
        assert!(budget.take(10));
        assert!(!budget.take(1));
    }
}
