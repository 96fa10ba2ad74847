//! Test-only prepare worker: runs escape attempts instead of jobs.

fn main() -> std::process::ExitCode {
    pvf_tests::escape::serve(pvf_common::sandbox::WorkerKind::Prepare)
}
