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
