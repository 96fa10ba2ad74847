//! The `pvf` command-line tool.

mod cli;

fn main() -> std::process::ExitCode {
    pvf_common::init_logging();
    cli::run().into()
}
