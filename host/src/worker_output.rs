//! A worker's stdout and stderr: pipes the host reads into `tracing` (target `pvf::worker`),
//! never the host's own stdout and stderr. `pvf serve` answers on stdout, so a worker that
//! could write there could forge answers; and a worker's bytes are not trusted with the
//! host's terminal or log either:
//! - a line is cut at [`MAX_LINE`] bytes,
//! - bytes outside printable ASCII are escaped (no terminal escapes, no forged log lines),
//! - a token bucket bounds the volume ([`BURST`] bytes at once, then [`RATE`] bytes a
//!   second per pipe); lines over it are dropped, counted, and the count is logged.
//!
//! The pipe is always drained, so an honest worker that logs a lot never blocks on it.

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Longest line logged; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 2048;
/// Bytes a pipe may log at once before the rate applies.
pub const BURST: u64 = 64 * 1024;
/// Bytes a second a pipe may log in the long run.
pub const RATE: u64 = 4 * 1024;

/// Reads `pipe` until it closes (the worker and every process that shares the pipe ended),
/// logging what the worker wrote. `worker` names it in each line.
pub fn forward(pipe: Option<impl AsyncRead + Unpin + Send + 'static>, worker: &str, name: &str) {
    let Some(mut pipe) = pipe else { return };
    let source = format!("{worker} {name}");
    tokio::spawn(async move {
        let mut lines = Lines::default();
        let mut budget = Budget::new(Instant::now());
        let mut chunk = [0u8; 8192];
        loop {
            let n = match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            lines.push(&chunk[..n], |line, cut| {
                budget.offer(Instant::now(), line, cut, &source);
            });
        }
        lines.finish(|line, cut| budget.offer(Instant::now(), line, cut, &source));
        budget.report_dropped(&source);
    });
}

/// Splits bytes into lines of at most [`MAX_LINE`] bytes, remembering how much of each was
/// cut.
#[derive(Default)]
struct Lines {
    line: Vec<u8>,
    cut: usize,
}

impl Lines {
    fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8], usize)) {
        for &byte in bytes {
            if byte == b'\n' {
                emit(&self.line, self.cut);
                self.line.clear();
                self.cut = 0;
            } else if self.line.len() < MAX_LINE {
                self.line.push(byte);
            } else {
                self.cut += 1;
            }
        }
    }

    /// Emits a last line without its newline.
    fn finish(&mut self, mut emit: impl FnMut(&[u8], usize)) {
        if !self.line.is_empty() || self.cut > 0 {
            emit(&self.line, self.cut);
        }
    }
}

/// A token bucket over logged bytes.
struct Budget {
    tokens: u64,
    at: Instant,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl Budget {
    fn new(now: Instant) -> Self {
        Self {
            tokens: BURST,
            at: now,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// Logs the line if the budget allows it, else counts it as dropped.
    fn offer(&mut self, now: Instant, line: &[u8], cut: usize, source: &str) {
        let cost = (line.len() + 1) as u64;
        if !self.take(now, cost) {
            self.dropped_lines += 1;
            self.dropped_bytes += cost + cut as u64;
            return;
        }
        self.report_dropped(source);
        log(line, cut, source);
    }

    fn take(&mut self, now: Instant, cost: u64) -> bool {
        let elapsed = now.saturating_duration_since(self.at);
        let refill = (elapsed.as_secs_f64() * RATE as f64) as u64;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(BURST);
            self.at = now;
        }
        if self.tokens < cost {
            return false;
        }
        self.tokens -= cost;
        true
    }

    fn report_dropped(&mut self, source: &str) {
        if self.dropped_lines > 0 {
            tracing::warn!(
                target: "pvf::worker",
                "{source}: {} lines ({} bytes) of worker output dropped over the log budget of {RATE} bytes a second",
                self.dropped_lines,
                self.dropped_bytes
            );
            self.dropped_lines = 0;
            self.dropped_bytes = 0;
        }
    }
}

/// Logs one line at the level the worker's log line names (WARN when it names none: a
/// panic message, or a line written without `tracing`).
fn log(line: &[u8], cut: usize, source: &str) {
    let text = escape(line);
    let cut = if cut > 0 {
        format!(" [{cut} more bytes cut]")
    } else {
        String::new()
    };
    match level_of(line) {
        tracing::Level::ERROR => tracing::error!(target: "pvf::worker", "{source}: {text}{cut}"),
        tracing::Level::WARN => tracing::warn!(target: "pvf::worker", "{source}: {text}{cut}"),
        tracing::Level::INFO => tracing::info!(target: "pvf::worker", "{source}: {text}{cut}"),
        tracing::Level::DEBUG => tracing::debug!(target: "pvf::worker", "{source}: {text}{cut}"),
        tracing::Level::TRACE => tracing::trace!(target: "pvf::worker", "{source}: {text}{cut}"),
    }
}

/// The level a worker's `tracing` line starts with.
fn level_of(line: &[u8]) -> tracing::Level {
    let start = &line[..line.len().min(16)];
    let word = std::str::from_utf8(start)
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    match word {
        "ERROR" => tracing::Level::ERROR,
        "INFO" => tracing::Level::INFO,
        "DEBUG" => tracing::Level::DEBUG,
        "TRACE" => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    }
}

/// Printable ASCII as is; every other byte, and the backslash, escaped.
fn escape(line: &[u8]) -> String {
    let mut out = String::with_capacity(line.len());
    for &byte in line {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn split(input: &[u8]) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut lines = Lines::default();
        lines.push(input, |line, cut| out.push((line.to_vec(), cut)));
        lines.finish(|line, cut| out.push((line.to_vec(), cut)));
        out
    }

    #[test]
    fn lines_are_cut_at_the_maximum() {
        let mut input = vec![b'a'; MAX_LINE + 10];
        input.extend_from_slice(b"\nshort\ntail");
        let lines = split(&input);
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[0].0.len(), lines[0].1), (MAX_LINE, 10));
        assert_eq!(lines[1], (b"short".to_vec(), 0));
        assert_eq!(lines[2], (b"tail".to_vec(), 0));
    }

    #[test]
    fn terminal_escapes_and_control_bytes_are_escaped() {
        assert_eq!(
            escape(b"\x1b[2J\r{\"id\":1}\x00\xff\\"),
            "\\x1b[2J\\x0d{\"id\":1}\\x00\\xff\\\\"
        );
    }

    #[test]
    fn the_level_comes_from_the_line_and_defaults_to_warn() {
        assert_eq!(level_of(b" INFO pvf: started"), tracing::Level::INFO);
        assert_eq!(level_of(b"ERROR pvf: failed"), tracing::Level::ERROR);
        assert_eq!(level_of(b"thread 'main' panicked at"), tracing::Level::WARN);
        assert_eq!(level_of(b""), tracing::Level::WARN);
    }

    #[test]
    fn the_budget_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut budget = Budget::new(start);
        let line = (MAX_LINE + 1) as u64;
        let mut taken = 0;
        while budget.take(start, line) {
            taken += 1;
        }
        assert_eq!(taken, BURST / line);
        // What is left of the burst plus a millisecond's refill is less than a line; a
        // line's worth of refill is enough.
        assert!(!budget.take(start + Duration::from_millis(1), line));
        let refill = Duration::from_secs_f64(line as f64 / RATE as f64);
        assert!(budget.take(start + refill, line));
    }
}
