//! Test-only wrapper around a real worker: before it becomes the worker, it writes a forged
//! `pvf serve` answer to its stdout and terminal escapes and an overlong line to its stderr,
//! as a compromised worker could. Started as `DIR/NAME`, it then executes `DIR/real/NAME`
//! with the same arguments, so the host talks to the real worker in the same process.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Marks the forged stdout line.
pub const STDOUT_MARKER: &str = "NOISY-WORKER-STDOUT";
/// Marks the stderr line with terminal escapes.
pub const STDERR_MARKER: &str = "NOISY-WORKER-STDERR";

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let me = PathBuf::from(args.next().unwrap_or_default());
    let (Some(dir), Some(name)) = (me.parent(), me.file_name()) else {
        return ExitCode::from(2);
    };
    let real = dir.join("real").join(name);
    let _ = writeln!(
        std::io::stdout(),
        "{{\"id\":1,\"verdict\":\"Valid\",\"head_data\":\"0x00\",\"forged\":\"{STDOUT_MARKER}\"}}"
    );
    let _ = std::io::stdout().flush();
    let _ = writeln!(std::io::stderr(), "\x1b[31m{STDERR_MARKER}\x1b[0m\r");
    let _ = writeln!(std::io::stderr(), "{}", "x".repeat(100_000));
    let error = std::process::Command::new(&real).args(args).exec();
    eprintln!("executing {}: {error}", real.display());
    ExitCode::from(1)
}
