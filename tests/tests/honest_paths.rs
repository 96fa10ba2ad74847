//! Honest work is never killed by the sandbox: every path a valid job takes that once met
//! the seccomp filter (or might) is Valid in secure mode, through the real workers. Each
//! was found by tracing the jobs' syscalls (README, "Security"); a SIGSYS here would be an
//! Internal verdict for a valid candidate.

use std::sync::Arc;

use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_host::{ExecuteArgs, ValidationHost, Verdict};
use pvf_tests::{adder_params, guest, host_config, start_host, validation_params};

async fn host(cache: &tempfile::TempDir) -> ValidationHost {
    start_host(host_config(cache.path())).await
}

async fn run(host: &ValidationHost, code: Vec<u8>, params: Vec<u8>) -> Verdict {
    host.execute(ExecuteArgs {
        code: Arc::new(code),
        executor_params: ExecutorParams::default(),
        validation_params: Arc::new(params),
        kind: ExecKind::Approval,
        timeout: None,
    })
    .await
    .expect("the host takes the request")
    .verdict
}

/// Decoding and re-encoding 16,384 upward messages frees a few hundred KiB on the execute
/// thread, so glibc trims the thread's heap and, the first time, reads
/// `/proc/sys/vm/overcommit_memory`. That read used to meet the job's filter (no `openat`)
/// and turn this valid candidate into Internal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_thousand_upward_messages_are_valid_in_secure_mode() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    // Twice: the second job is forked from a holder that already served one.
    for _ in 0..2 {
        let verdict = run(&host, guest("upward-messages"), adder_params(0, 0, 0)).await;
        let Verdict::Valid(result) = verdict else {
            panic!("{verdict}");
        };
        assert_eq!(result.upward_messages.len(), 16_384);
        assert!(result.upward_messages.iter().all(Vec::is_empty));
    }
}

/// A 20 MiB result crosses every pipe, from the job through its holder and the worker to
/// the host, with large allocations and frees on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_mib_result_is_valid_in_secure_mode() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let verdict = run(&host, guest("big-result"), adder_params(0, 0, 0)).await;
    let Verdict::Valid(result) = verdict else {
        panic!("{verdict}");
    };
    assert_eq!(result.head_data.len(), 20 << 20);
    assert!(result.head_data.iter().all(|b| *b == 0));
}

/// 16 MiB of block data: large params through the pipes and into the guest's memory (the
/// allocator grows it to fit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_of_params_are_valid_in_secure_mode() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let params = validation_params(&[3; 8], &vec![5u8; 16 << 20]);
    let verdict = run(&host, guest("params-placement"), params).await;
    assert!(matches!(verdict, Verdict::Valid(_)), "{verdict}");
}

/// Thousands of guest allocations and frees, and a 1 MiB block that grows memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_guest_allocation_is_valid_in_secure_mode() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let verdict = run(&host, guest("alloc-heavy"), adder_params(0, 0, 0)).await;
    assert!(matches!(verdict, Verdict::Valid(_)), "{verdict}");
}

/// The corpus runtimes on junk params end in the runtime's own panic, through its logging
/// host function: Invalid, never killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_runtimes_on_junk_params_are_invalid_not_killed() {
    let Some(corpus) = pvf_tests::corpus() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    for path in corpus {
        let code = std::fs::read(&path).unwrap();
        for params in [
            validation_params(&[1; 32], &[7; 400]),
            validation_params(&[], &[]),
        ] {
            let verdict = run(&host, code.clone(), params).await;
            assert!(
                matches!(verdict, Verdict::Invalid(_)),
                "{}: {verdict}",
                path.display()
            );
        }
    }
}
