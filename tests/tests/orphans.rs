//! When the host dies, its workers and their jobs die with it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pvf_tests::{binaries, guest_path, processes_matching};

#[test]
fn killing_the_host_kills_its_workers_and_jobs() {
    let _cpu = pvf_tests::cpu_heavy().blocking_lock();
    let cache = tempfile::tempdir().unwrap();
    let marker = format!("{}/workers/", cache.path().display());
    let mut host = Command::new(&binaries().pvf)
        .arg("--cache-dir")
        .arg(cache.path())
        .args([
            "validate",
            guest_path("halt").to_str().unwrap(),
            "--timeout-ms",
            "20000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the execute worker and its job: two processes with the execute worker's dir.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let running = processes_matching(&format!("{marker}execute-"));
        if running.len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker and job never appeared: {running:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    host.kill().unwrap();
    host.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_matching(&marker);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orphans survived the host: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

/// The kernel's parent-death signal fires when the *thread* that forked a process ends. The
/// host forks every worker on a thread of its own, so a worker asked for from a short-lived
/// thread (here a blocking-pool thread that retires after 50 ms idle) outlives it. Negative
/// control: a process forked on such a thread directly, with the same signal, dies with it.
#[test]
fn a_worker_outlives_the_thread_that_asked_for_it() {
    use pvf_common::sandbox::Layers;
    use pvf_host::cgroup::CgroupLimits;
    use pvf_host::worker::{SpawnSpec, WorkerProcess};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(50))
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = SpawnSpec {
        program: binaries().execute_worker.clone(),
        dir: dir.path().join("worker"),
        timeout: Duration::from_secs(10),
        layers: Layers::ALL,
        cgroup: CgroupLimits::default(),
    };
    let handle = runtime.handle().clone();
    let (worker, mut control) = runtime.block_on(async move {
        tokio::task::spawn_blocking(move || {
            let worker = handle.block_on(WorkerProcess::spawn(&spec));
            let mut control = Command::new("sleep");
            control.arg("60");
            // SAFETY: prctl with integer arguments only, between fork and exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut control, || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                })
            };
            (worker, control.spawn().unwrap())
        })
        .await
        .unwrap()
    });
    let worker = worker.expect("the worker starts");
    let (worker_pid, control_pid) = (worker.pid().unwrap(), control.id());
    // Wait for the blocking thread to retire: the control dies then.
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(control_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let control_alive = alive(control_pid);
    // A worker tied to that thread would be dying by now too; give it time to.
    std::thread::sleep(Duration::from_millis(200));
    let worker_alive = alive(worker_pid);
    let _ = control.kill();
    let _ = control.wait();
    runtime.block_on(worker.shutdown());
    assert!(
        !control_alive,
        "negative control: the thread did not retire, so this test shows nothing"
    );
    assert!(
        worker_alive,
        "the worker died with the thread that asked for it"
    );
}
