//! The host under faults and load, through the real worker binaries: failed worker spawns,
//! a stalled disk, absurd requests, dropped callers, approval floods, backing deadlines and
//! retries of ambiguous verdicts. Each test fails on the host before the fix it pins.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_host::metrics::Flavor;
use pvf_host::{ArtifactStatus, Config, ExecuteArgs, HostError, ValidationHost, Verdict};
use pvf_tests::{
    adder_params, adder_variant, assert_adder_valid, binaries, cpu_heavy, guest, host_config,
    running_execute_jobs, start_host, start_host_task, stop_host, validation_params,
};

fn args(code: &[u8], params: ExecutorParams, vp: Vec<u8>, kind: ExecKind) -> ExecuteArgs {
    ExecuteArgs {
        code: Arc::new(code.to_vec()),
        executor_params: params,
        validation_params: Arc::new(vp),
        kind,
        timeout: None,
    }
}

fn adder(kind: ExecKind) -> ExecuteArgs {
    args(
        &guest("adder"),
        ExecutorParams::default(),
        adder_params(1, 2, 3),
        kind,
    )
}

fn halt(limit_ms: u64, kind: ExecKind) -> ExecuteArgs {
    let params = ExecutorParams {
        backing_timeout_ms: limit_ms,
        approval_timeout_ms: limit_ms,
        ..ExecutorParams::default()
    };
    args(&guest("halt"), params, adder_params(0, 0, 0), kind)
}

/// A worker wrapper that exits at once, before connecting, while its count file holds a
/// number above zero (counting it down), and runs the real worker otherwise.
fn failing_wrapper(dir: &Path, name: &str, real: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join(name);
    let count = dir.join(format!("{name}.fail"));
    // Builtins only: the host clears the worker's environment, PATH included.
    let text = format!(
        "#!/bin/sh\nif [ -s '{c}' ]; then read n < '{c}'; if [ \"$n\" -gt 0 ]; then \
         echo $((n - 1)) > '{c}'; exit 1; fi; fi\nexec '{real}' \"$@\"\n",
        c = count.display(),
        real = real.display()
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_worker_spawns_are_retried_and_never_fail_the_jobs() {
    let cache = tempfile::tempdir().unwrap();
    let bins = binaries();
    let (prepare, prepare_fails) =
        failing_wrapper(cache.path(), "prepare-wrapper", &bins.prepare_worker);
    let (execute, execute_fails) =
        failing_wrapper(cache.path(), "execute-wrapper", &bins.execute_worker);
    let mut config = host_config(cache.path());
    config.prepare_worker = prepare;
    config.execute_worker = execute;
    // A worker that exits before connecting is noticed at the spawn timeout.
    config.spawn_timeout = Duration::from_secs(2);
    config.spawn_retry_delay = Duration::from_millis(50);
    // The start-up self-test spawns through the wrappers too: arm them after it.
    let host = start_host(config).await;
    std::fs::write(&prepare_fails, "2").unwrap();
    std::fs::write(&execute_fails, "2").unwrap();

    let code = guest("adder");
    let (a, b) = tokio::join!(
        host.execute(adder(ExecKind::Approval)),
        host.execute(adder(ExecKind::Backing))
    );
    for out in [a, b] {
        let out = out.unwrap();
        assert!(matches!(out.verdict, Verdict::Valid(_)), "{}", out.verdict);
    }
    let metrics = host.metrics();
    assert_eq!(metrics.worker_spawn_failures(Flavor::Prepare), 2);
    assert_eq!(metrics.worker_spawn_failures(Flavor::Execute), 2);
    assert_eq!(metrics.preparations(), 1);
    let status = host
        .artifact_status(&code, &ExecutorParams::default())
        .await
        .unwrap();
    assert!(
        matches!(status, ArtifactStatus::Prepared { .. }),
        "the failure memory is clean: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_does_not_stall_scheduling() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = host_config(cache.path());
    config.maintenance_interval = Duration::from_millis(50);
    let (host, task) = start_host_task(config).await;
    assert_adder_valid(&host, &guest("adder"), 1, 2).await;
    // Storing the last-needed times opens this for writing, which blocks until a reader
    // comes: a disk that stopped answering.
    let fifo = cache.path().join(pvf_host::artifacts::meta::META_TEMP);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_adder_valid(&host, &guest("adder"), 2, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The store is stuck now; a new code must still be prepared and executed.
    tokio::time::timeout(
        Duration::from_secs(60),
        assert_adder_valid(&host, &adder_variant(1), 3, 4),
    )
    .await
    .expect("scheduling went on while the disk was stuck");
    // Unstick the store (it then fails: a FIFO cannot be synced), and stop the host.
    let reader = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::remove_file(&fifo).unwrap();
    drop(reader);
    stop_host(host, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_timeout_is_refused_and_the_host_goes_on() {
    let cache = tempfile::tempdir().unwrap();
    let host = start_host(host_config(cache.path())).await;
    let mut request = adder(ExecKind::Backing);
    request.timeout = Some(Duration::MAX);
    let refused = host.execute(request).await;
    assert!(
        matches!(refused, Err(HostError::TimeoutTooLarge(_))),
        "{refused:?}"
    );
    let mut largest = adder(ExecKind::Backing);
    largest.timeout = Some(Duration::from_millis(u64::MAX));
    let out = host.execute(largest).await.unwrap();
    assert!(matches!(out.verdict, Verdict::Valid(_)), "{}", out.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_over_the_frame_cap_are_refused_without_killing_a_worker() {
    let cache = tempfile::tempdir().unwrap();
    let host = start_host(host_config(cache.path())).await;
    assert_adder_valid(&host, &guest("adder"), 1, 2).await;
    let huge = validation_params(&[], &vec![7; 65 * 1024 * 1024]);
    let request = args(
        &guest("adder"),
        ExecutorParams::default(),
        huge,
        ExecKind::Backing,
    );
    let refused = host.execute(request).await;
    assert!(
        matches!(refused, Err(HostError::ParamsTooLarge { .. })),
        "{refused:?}"
    );
    assert_adder_valid(&host, &guest("adder"), 2, 3).await;
    let text = host.metrics().encode();
    assert!(
        !text.contains("polkadot_pvf_worker_retired{flavor=\"execute\"}"),
        "no worker was killed: {text}"
    );
}

/// Keeps the host's one execute worker busy with a halt job until it times out.
fn occupy(host: &ValidationHost, limit_ms: u64) -> tokio::task::JoinHandle<Verdict> {
    let host = host.clone();
    tokio::spawn(async move {
        host.execute(halt(limit_ms, ExecKind::Approval))
            .await
            .unwrap()
            .verdict
    })
}

/// Waits until an execute job runs under the host at `cache`.
async fn wait_for_running_job(cache: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while running_execute_jobs(cache).is_empty() {
        assert!(Instant::now() < deadline, "no job started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn one_worker(cache: &tempfile::TempDir, tune: impl FnOnce(&mut Config)) -> Config {
    let mut config = host_config(cache.path());
    config.execute_workers_max = 1;
    tune(&mut config);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_frees_its_slot_and_its_job_never_runs() {
    let _cpu = cpu_heavy().lock().await;
    let cache = tempfile::tempdir().unwrap();
    let host = start_host(one_worker(&cache, |c| c.max_queued_executions = 2)).await;
    host.precheck(Arc::new(guest("adder")), ExecutorParams::default())
        .await
        .unwrap();
    let busy = occupy(&host, 1_000);
    wait_for_running_job(cache.path()).await;
    // Queued behind the halt job, then abandoned.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        host.execute(adder(ExecKind::Backing)),
    )
    .await;
    assert!(abandoned.is_err(), "still queued when dropped");
    // Its slot is free at once: the halt job holds one of two.
    let next = host.clone();
    let next = tokio::spawn(async move { next.execute(adder(ExecKind::Backing)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    busy.await.unwrap();
    let out = next.await.unwrap().expect("taken, not QueueFull");
    assert!(matches!(out.verdict, Verdict::Valid(_)), "{}", out.verdict);
    let text = host.metrics().encode();
    assert!(text.contains("pvf_execute_cancelled 1\n"), "{text}");
    assert!(
        text.contains("polkadot_pvf_execute_finished 2\n"),
        "the halt job and the last one ran, the abandoned one never: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backing_is_not_starved_under_approval_load() {
    let _cpu = cpu_heavy().lock().await;
    let cache = tempfile::tempdir().unwrap();
    let host = start_host(one_worker(&cache, |_| {})).await;
    host.precheck(Arc::new(guest("adder")), ExecutorParams::default())
        .await
        .unwrap();
    let busy = occupy(&host, 500);
    wait_for_running_job(cache.path()).await;
    let (done, mut order) = tokio::sync::mpsc::unbounded_channel();
    let submit = |kind: ExecKind| {
        let (host, done) = (host.clone(), done.clone());
        tokio::spawn(async move {
            let out = host.execute(adder(kind)).await.unwrap();
            assert!(matches!(out.verdict, Verdict::Valid(_)), "{}", out.verdict);
            done.send(kind).unwrap();
        })
    };
    let mut jobs: Vec<_> = (0..12).map(|_| submit(ExecKind::Approval)).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    jobs.push(submit(ExecKind::Backing));
    busy.await.unwrap();
    for job in jobs {
        job.await.unwrap();
    }
    drop(done);
    let mut kinds = Vec::new();
    while let Some(kind) = order.recv().await {
        kinds.push(kind);
    }
    let at = kinds.iter().position(|k| *k == ExecKind::Backing).unwrap();
    assert!(at <= 2, "backing ran {}th of 13: {kinds:?}", at + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backing_job_past_its_deadline_is_dropped_with_a_typed_error() {
    let _cpu = cpu_heavy().lock().await;
    let cache = tempfile::tempdir().unwrap();
    let config = one_worker(&cache, |c| {
        c.backing_deadline = Some(Duration::from_millis(200));
    });
    let host = start_host(config).await;
    host.precheck(Arc::new(guest("adder")), ExecutorParams::default())
        .await
        .unwrap();
    let busy = occupy(&host, 800);
    wait_for_running_job(cache.path()).await;
    let (backing, approval) = tokio::join!(
        host.execute(adder(ExecKind::Backing)),
        host.execute(adder(ExecKind::Approval)),
    );
    busy.await.unwrap();
    assert!(
        matches!(backing, Err(HostError::DeadlineExceeded { waited }) if waited >= Duration::from_millis(200)),
        "{backing:?}"
    );
    let approval = approval.unwrap();
    assert!(
        matches!(approval.verdict, Verdict::Valid(_)),
        "approvals have no deadline"
    );
    assert!(
        host.metrics()
            .encode()
            .contains("pvf_execute_deadline_exceeded 1\n")
    );
}

/// Runs a long cpu-burn execution of `kind` and SIGKILLs its job once it runs; returns the
/// outcome.
async fn killed_once(host: &ValidationHost, cache: &Path, kind: ExecKind) -> pvf_host::Execution {
    let request = args(
        &guest("cpu-burn"),
        ExecutorParams::default(),
        validation_params(&[], &400_000_000u64.to_le_bytes()),
        kind,
    );
    let running = {
        let host = host.clone();
        tokio::spawn(async move { host.execute(request).await.unwrap() })
    };
    wait_for_running_job(cache).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (_, job) in running_execute_jobs(cache) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(job),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    running.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_killed_once_is_retried_and_gets_its_verdict() {
    let _cpu = cpu_heavy().lock().await;
    let cache = tempfile::tempdir().unwrap();
    let config = one_worker(&cache, |c| {
        c.execute_retry_delay = Some(Duration::from_millis(100));
    });
    let host = start_host(config).await;
    let out = killed_once(&host, cache.path(), ExecKind::Approval).await;
    assert!(matches!(out.verdict, Verdict::Valid(_)), "{}", out.verdict);
    assert_eq!(out.retries, 1);
    // Backing is never retried.
    let out = killed_once(&host, cache.path(), ExecKind::Backing).await;
    assert!(
        matches!(&out.verdict, Verdict::PossiblyInvalid(r) if r.to_string().contains("signal 9")),
        "{}",
        out.verdict
    );
    assert_eq!(out.retries, 0);
    assert_eq!(host.metrics().execute_retries.get(), 1, "one retry in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retries_off_a_killed_approval_is_possibly_invalid() {
    let _cpu = cpu_heavy().lock().await;
    let cache = tempfile::tempdir().unwrap();
    let host = start_host(one_worker(&cache, |c| c.execute_retry_delay = None)).await;
    let out = killed_once(&host, cache.path(), ExecKind::Dispute).await;
    assert!(
        matches!(&out.verdict, Verdict::PossiblyInvalid(r) if r.to_string().contains("signal 9")),
        "{}",
        out.verdict
    );
    assert_eq!(out.retries, 0);
}
