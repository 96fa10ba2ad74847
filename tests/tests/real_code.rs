//! Real validation code and deterministic limits (issue 6): the corpus runtimes, the logical
//! stack limit, the memory bound, host functions called from a guest.

use std::time::{Duration, Instant};

use std::sync::Arc;

use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_host::{Reason, ValidationHost, Verdict};
use pvf_tests::{guest, host_config, start_host, validation_params};

async fn host(cache: &tempfile::TempDir) -> ValidationHost {
    start_host(host_config(cache.path())).await
}

async fn run(host: &ValidationHost, code: &[u8], params: &ExecutorParams, vp: &[u8]) -> Verdict {
    pvf_tests::execute(host, code, params, vp, ExecKind::Backing)
        .await
        .verdict
}

#[tokio::test]
async fn corpus_runtimes_instantiate_and_give_the_same_verdict_on_fresh_workers() {
    let Some(corpus) = pvf_tests::corpus() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let params = ExecutorParams::default();
    // Not a block: the runtime must reject it, the same way every time.
    let not_a_block = validation_params(b"head", b"not a block");
    for path in corpus {
        let code = std::fs::read(&path).unwrap();
        let mut verdicts = Vec::new();
        for _ in 0..3 {
            // A fresh host each time: fresh workers, the artifact from the shared cache.
            let (host, task) = pvf_tests::start_host_task(host_config(cache.path())).await;
            verdicts.push(run(&host, &code, &params, &not_a_block).await.to_string());
            pvf_tests::stop_host(host, task).await;
        }
        eprintln!("{}: {}", path.display(), verdicts[0]);
        assert!(
            verdicts.iter().all(|v| v == &verdicts[0]),
            "{}: {verdicts:?}",
            path.display()
        );
        assert!(
            !verdicts[0].contains("instantiation") && !verdicts[0].contains("possibly"),
            "{}: {}",
            path.display(),
            verdicts[0]
        );
    }
}

/// Params for the recursion guest: recurse `depth` calls deep.
fn depth(depth: u32) -> Vec<u8> {
    validation_params(&[], &depth.to_le_bytes())
}

/// Whether recursing `n` deep is valid; panics on any verdict but Valid or the limit's trap.
async fn recursion_fits(
    host: &ValidationHost,
    code: &[u8],
    params: &ExecutorParams,
    n: u32,
) -> bool {
    match run(host, code, params, &depth(n)).await {
        Verdict::Valid(_) => true,
        // The instrumented limit traps with `unreachable`; a native overflow would not.
        Verdict::Invalid(Reason::Trap(m)) if m.contains("unreachable") => false,
        other => panic!("depth {n}: {other}"),
    }
}

/// The deepest valid recursion, by bisection.
async fn deepest(host: &ValidationHost, code: &[u8], params: &ExecutorParams) -> u32 {
    let (mut fits, mut fails) = (0u32, 200_000u32);
    assert!(!recursion_fits(host, code, params, fails).await);
    while fails - fits > 1 {
        let mid = fits + (fails - fits) / 2;
        if recursion_fits(host, code, params, mid).await {
            fits = mid;
        } else {
            fails = mid;
        }
    }
    fits
}

#[tokio::test]
async fn recursion_stops_at_the_same_logical_depth_on_every_run() {
    let cache = tempfile::tempdir().unwrap();
    let code = guest("recursion");
    let params = ExecutorParams::default();
    // Fresh hosts one after another: fresh workers, the artifact from the shared cache.
    let fresh = || pvf_tests::start_host_task(host_config(cache.path()));
    let (host, task) = fresh().await;
    let limit = deepest(&host, &code, &params).await;
    pvf_tests::stop_host(host, task).await;
    eprintln!("deepest recursion under a logical limit of 65536: {limit}");
    for _ in 0..3 {
        let (host, task) = fresh().await;
        assert!(recursion_fits(&host, &code, &params, limit).await);
        assert!(!recursion_fits(&host, &code, &params, limit + 1).await);
        pvf_tests::stop_host(host, task).await;
    }
    // The limit is an executor parameter: a smaller one stops sooner, proportionally.
    let small = ExecutorParams {
        stack_logical_max: 1024,
        ..ExecutorParams::default()
    };
    let (host, task) = fresh().await;
    let small_limit = deepest(&host, &code, &small).await;
    pvf_tests::stop_host(host, task).await;
    eprintln!("deepest recursion under a logical limit of 1024: {small_limit}");
    assert!(small_limit < limit / 32, "{small_limit} vs {limit}");
    assert!(small_limit > 0);
}

#[tokio::test]
async fn memory_stops_at_the_page_limit_and_touching_past_it_is_invalid() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let code = guest("grow-past-limit");
    for pages in [64u32, ExecutorParams::default().max_memory_pages] {
        let params = ExecutorParams {
            max_memory_pages: pages,
            ..ExecutorParams::default()
        };
        let Verdict::Valid(result) =
            run(&host, &code, &params, &validation_params(&[], &[0])).await
        else {
            panic!("grow-past-limit with {pages} pages");
        };
        assert_eq!(result.head_data, pages.to_le_bytes());
        let verdict = run(&host, &code, &params, &validation_params(&[], &[1])).await;
        assert!(
            matches!(&verdict, Verdict::Invalid(Reason::Trap(m)) if m.contains("out of bounds")),
            "{verdict}"
        );
    }
    let verdict = run(
        &host,
        &guest("alloc-past-limit"),
        &ExecutorParams::default(),
        &validation_params(&[], &[]),
    )
    .await;
    assert!(
        matches!(&verdict, Verdict::Invalid(Reason::Trap(m)) if m.contains("allocator")),
        "{verdict}"
    );
}

#[tokio::test]
async fn a_memory_grow_loop_is_invalid_within_its_time_limit() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let code = guest("memory-grow-loop");
    let params = ExecutorParams {
        backing_timeout_ms: 1_000,
        ..ExecutorParams::default()
    };
    host.precheck(Arc::new(code.clone()), params.clone())
        .await
        .unwrap();
    let start = Instant::now();
    let verdict = run(&host, &code, &params, &validation_params(&[], &[])).await;
    let elapsed = start.elapsed();
    assert!(
        matches!(verdict, Verdict::Invalid(Reason::Timeout { cpu_ms }) if cpu_ms >= 1_000),
        "{verdict}"
    );
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
}

#[tokio::test]
async fn host_functions_serve_a_guest_and_bad_arguments_trap() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let code = guest("log-and-hash");
    let params = ExecutorParams::default();
    // Level 2 (info); the new head is blake2_256("abc") (`b2sum -l 256`).
    let verdict = run(
        &host,
        &code,
        &params,
        &validation_params(b"abc", &2u32.to_le_bytes()),
    )
    .await;
    let Verdict::Valid(result) = verdict else {
        panic!("log-and-hash: {verdict}");
    };
    assert_eq!(
        hex::encode(result.head_data),
        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
    );
    // Level 9 does not exist: the call traps, as in Polkadot's host.
    let verdict = run(
        &host,
        &code,
        &params,
        &validation_params(b"abc", &9u32.to_le_bytes()),
    )
    .await;
    assert!(
        matches!(&verdict, Verdict::Invalid(Reason::Trap(m)) if m.contains("log level 9")),
        "{verdict}"
    );
}

#[tokio::test]
async fn a_reported_panic_is_invalid_with_its_message() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let verdict = run(
        &host,
        &guest("panic"),
        &ExecutorParams::default(),
        &validation_params(&[], &[]),
    )
    .await;
    assert!(
        matches!(&verdict, Verdict::Invalid(Reason::Panic(m)) if m == "attempt to divide by zero"),
        "{verdict}"
    );
}

#[tokio::test]
async fn nan_results_are_canonical() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let code = guest("nan");
    let canonical = 0x7fc0_0000u32.to_le_bytes();
    // 0 / 0 (x86 would give the negative default NaN 0xffc00000), and a signalling NaN with
    // a payload plus 1 (x86 would keep the payload).
    for (a, b) in [
        (0f32.to_bits(), 0f32.to_bits()),
        (0x7fa0_0001, 1f32.to_bits()),
    ] {
        let mut block = a.to_le_bytes().to_vec();
        block.extend(b.to_le_bytes());
        let verdict = run(
            &host,
            &code,
            &ExecutorParams::default(),
            &validation_params(&[], &block),
        )
        .await;
        let Verdict::Valid(result) = verdict else {
            panic!("nan: {verdict}");
        };
        assert_eq!(result.head_data[..4], canonical, "a / b for {a:#x}, {b:#x}");
        if a != 0 {
            assert_eq!(result.head_data[4..], canonical, "a + b for {a:#x}, {b:#x}");
        }
    }
}

#[tokio::test]
async fn params_are_the_allocators_first_allocation() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let verdict = run(
        &host,
        &guest("params-placement"),
        &ExecutorParams::default(),
        &validation_params(b"head", b"block"),
    )
    .await;
    assert!(matches!(verdict, Verdict::Valid(_)), "{verdict}");
}
