//! The straight path through the real worker binaries: verdicts for each test guest, the
//! corpus runtimes, the CLI's exit codes, and recovery from a killed worker.

use std::time::{Duration, Instant};

use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_host::{PrecheckError, Reason, Stage, ValidationHost, Verdict};
use pvf_tests::{
    adder_head, adder_params, execute, guest, guest_path, host_config, pvf_cli, start_host,
};

async fn host(cache: &tempfile::TempDir) -> ValidationHost {
    start_host(host_config(cache.path())).await
}

fn params_with_timeout(ms: u64) -> ExecutorParams {
    ExecutorParams {
        backing_timeout_ms: ms,
        ..ExecutorParams::default()
    }
}

#[tokio::test]
async fn adder_is_valid_with_the_head_its_params_imply() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let code = guest("adder");
    for (parent, add, relay) in [(1, 2, 7), (u64::MAX, 1, 0), (40, 2, 99)] {
        let out = execute(
            &host,
            &code,
            &ExecutorParams::default(),
            &adder_params(parent, add, relay),
            ExecKind::Backing,
        )
        .await;
        let Verdict::Valid(result) = out.verdict else {
            panic!("adder: {}", out.verdict);
        };
        assert_eq!(result.head_data, adder_head(parent, add));
        assert_eq!(result.hrmp_watermark, relay);
    }
}

#[tokio::test]
async fn halt_times_out_between_the_limit_and_the_backstop() {
    let _cpu = pvf_tests::cpu_heavy().lock().await;
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let code = guest("halt");
    let params = params_with_timeout(500);
    host.precheck(std::sync::Arc::new(code.clone()), params.clone())
        .await
        .unwrap();
    let start = Instant::now();
    let out = execute(
        &host,
        &code,
        &params,
        &adder_params(0, 0, 0),
        ExecKind::Backing,
    )
    .await;
    let elapsed = start.elapsed();
    assert!(
        matches!(out.verdict, Verdict::Invalid(Reason::Timeout { cpu_ms }) if cpu_ms >= 500),
        "{}",
        out.verdict
    );
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(2_000),
        "backstop is 4x the limit: {elapsed:?}"
    );
}

#[tokio::test]
async fn trap_and_bad_results_are_invalid_with_their_cause() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let default_params = pvf_common::validation::ValidationParams::default();
    let empty = parity_scale_codec::Encode::encode(&default_params);
    let p = ExecutorParams::default();

    let out = execute(&host, &guest("trap"), &p, &empty, ExecKind::Backing).await;
    assert!(
        matches!(&out.verdict, Verdict::Invalid(Reason::Trap(m)) if m.contains("unreachable")),
        "{}",
        out.verdict
    );
    let out = execute(&host, &guest("bad-result"), &p, &empty, ExecKind::Backing).await;
    assert!(
        matches!(&out.verdict, Verdict::Invalid(Reason::BadResult(m)) if m.contains("outside memory")),
        "{}",
        out.verdict
    );
    let out = execute(
        &host,
        &guest("bad-result"),
        &p,
        &adder_params(1, 1, 1),
        ExecKind::Backing,
    )
    .await;
    assert!(
        matches!(&out.verdict, Verdict::Invalid(Reason::BadResult(m)) if m.contains("undecodable")),
        "{}",
        out.verdict
    );
}

#[tokio::test]
async fn alloc_heavy_is_valid_and_deterministic() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let code = guest("alloc-heavy");
    let mut heads = Vec::new();
    for _ in 0..3 {
        let out = execute(
            &host,
            &code,
            &ExecutorParams::default(),
            &adder_params(0, 0, 0),
            ExecKind::Backing,
        )
        .await;
        let Verdict::Valid(result) = out.verdict else {
            panic!("alloc-heavy: {}", out.verdict);
        };
        heads.push(result.head_data);
    }
    assert!(heads.windows(2).all(|w| w[0] == w[1]), "{heads:?}");
}

#[tokio::test]
async fn a_stub_call_is_internal_and_names_the_function() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let out = execute(
        &host,
        &guest("stub-call"),
        &ExecutorParams::default(),
        &adder_params(0, 0, 0),
        ExecKind::Backing,
    )
    .await;
    assert!(
        matches!(&out.verdict, Verdict::Internal(Reason::UnsupportedHostFunction(m)) if m.contains("ext_storage_get_version_1")),
        "{}",
        out.verdict
    );
}

/// Whether `verdict` is what a preparation failure gives during execution: Internal from the
/// prepare stage (Polkadot's candidate validation abstains; pre-checking judges code).
fn failed_preparation(verdict: &Verdict, detail: &str) -> bool {
    matches!(verdict, Verdict::Internal(r @ Reason::Preparation(e))
        if r.stage() == Stage::Prepare && r.kind() == "preparation" && e.to_string().contains(detail))
}

#[tokio::test]
async fn invalid_code_is_internal_when_executed_and_invalid_when_prechecked() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let garbage = b"\0asm\x01\0\0\0garbage";
    let out = execute(
        &host,
        garbage,
        &ExecutorParams::default(),
        &[],
        ExecKind::Backing,
    )
    .await;
    assert!(
        failed_preparation(&out.verdict, "invalid Wasm"),
        "{}",
        out.verdict
    );
    let precheck = host
        .precheck(
            std::sync::Arc::new(garbage.to_vec()),
            ExecutorParams::default(),
        )
        .await;
    assert!(
        matches!(&precheck, Err(PrecheckError::Prepare(e)) if e.is_deterministic()),
        "{precheck:?}"
    );
    // A code bomb: zeros past the default limit compress to almost nothing.
    let past = ExecutorParams::default().code_bomb_limit as usize + 1;
    let bomb = pvf_common::compress::compress(&vec![0u8; past]).unwrap();
    let out = execute(
        &host,
        &bomb,
        &ExecutorParams::default(),
        &[],
        ExecKind::Backing,
    )
    .await;
    assert!(failed_preparation(&out.verdict, "bomb"), "{}", out.verdict);
}

#[tokio::test]
async fn the_code_bomb_limit_is_the_one_the_request_carries() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let adder = guest("adder");
    let compressed = pvf_common::compress::compress(&adder).unwrap();
    let with_limit = |limit: usize| ExecutorParams {
        code_bomb_limit: limit as u64,
        ..ExecutorParams::default()
    };
    let exactly = execute(
        &host,
        &compressed,
        &with_limit(adder.len()),
        &adder_params(1, 2, 3),
        ExecKind::Backing,
    )
    .await;
    assert!(
        matches!(exactly.verdict, Verdict::Valid(_)),
        "{}",
        exactly.verdict
    );
    let one_less = execute(
        &host,
        &compressed,
        &with_limit(adder.len() - 1),
        &adder_params(1, 2, 3),
        ExecKind::Backing,
    )
    .await;
    assert!(
        failed_preparation(&one_less.verdict, "bomb"),
        "{}",
        one_less.verdict
    );
}

#[tokio::test]
async fn killing_the_execute_worker_mid_job_gives_an_error_and_the_next_request_succeeds() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let halt = guest("halt");
    let params = params_with_timeout(10_000);
    let running = {
        let host = host.clone();
        let halt = halt.clone();
        let params = params.clone();
        tokio::spawn(async move {
            execute(
                &host,
                &halt,
                &params,
                &adder_params(0, 0, 0),
                ExecKind::Backing,
            )
            .await
        })
    };
    // Wait for the worker to appear, then kill it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        // Match on this test's own cache dir: other tests run workers concurrently.
        let ours = format!("{}/workers/execute-", cache.path().display());
        if let Some(pid) = pvf_tests::child_processes(&ours).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "execute worker never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let start = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("no hang")
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "verdict came promptly"
    );
    assert!(
        matches!(out.verdict, Verdict::PossiblyInvalid(_)),
        "{}",
        out.verdict
    );

    let out = execute(
        &host,
        &guest("adder"),
        &ExecutorParams::default(),
        &adder_params(2, 3, 0),
        ExecKind::Backing,
    )
    .await;
    assert!(
        matches!(&out.verdict, Verdict::Valid(r) if r.head_data == adder_head(2, 3)),
        "{}",
        out.verdict
    );
}

#[test]
fn cli_exit_codes_follow_the_verdict_table() {
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path();
    let adder = guest_path("adder");
    let params = hex::encode(adder_params(20, 22, 5));
    let (code, out) = pvf_cli(
        Some(c),
        &["validate", adder.to_str().unwrap(), "--params-hex", &params],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("0x{}", hex::encode(adder_head(20, 22)))),
        "{out}"
    );

    let (code, _) = pvf_cli(Some(c), &["validate", guest_path("trap").to_str().unwrap()]);
    assert_eq!(code, 1);
    let (code, out) = pvf_cli(
        Some(c),
        &[
            "validate",
            guest_path("stub-call").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("\"Internal\""), "{out}");

    let (code, _) = pvf_cli(Some(c), &["validate", "/nonexistent.wasm"]);
    assert_eq!(code, 2);
    let bad_wat = c.join("bad.wat");
    std::fs::write(&bad_wat, "(module (func").unwrap();
    let (code, _) = pvf_cli(Some(c), &["validate", bad_wat.to_str().unwrap()]);
    assert_eq!(code, 2);
    let (code, _) = pvf_cli(
        Some(c),
        &["validate", adder.to_str().unwrap(), "--params-hex", "zz"],
    );
    assert_eq!(code, 2);
    let (code, _) = pvf_cli(Some(c), &["no-such-command"]);
    assert_eq!(code, 2);
}

#[test]
fn corpus_runtimes_prepare_through_the_real_workers() {
    let Some(corpus) = pvf_tests::corpus() else {
        return;
    };
    let _cpu = pvf_tests::cpu_heavy().blocking_lock();
    assert!(!corpus.is_empty(), "the corpus holds runtimes");
    let cache = tempfile::tempdir().unwrap();
    for code in corpus {
        let (exit, out) = pvf_cli(Some(cache.path()), &["prepare", code.to_str().unwrap()]);
        assert_eq!(exit, 0, "{}: {out}", code.display());
        assert!(out.contains("artifact size"), "{out}");
        // Compiling a runtime takes far more memory than the worker it was forked from.
        let peak_mib: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("prepare peak memory: "))
            .and_then(|v| v.strip_suffix(" MiB"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no peak memory in {out}"));
        assert!(peak_mib > 32.0, "{peak_mib} MiB");
    }
}
