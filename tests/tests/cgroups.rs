//! Worker cgroups are removed when their worker goes, and the ones a killed host left are
//! removed (with what is still in them) when the next host starts. Needs a machine where
//! this process may make cgroups (root on cgroup v1, or a delegated v2 subtree); elsewhere
//! it skips with the reason, or fails under `PVF_REQUIRE_SANDBOX=1`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pvf_common::sandbox::{Layer, Layers};
use pvf_host::cgroup::CgroupLimits;
use pvf_host::worker::{SpawnSpec, WorkerError, WorkerProcess};
use pvf_tests::binaries;

/// The worker cgroup dirs a process is in (its `memory` and `pids` ones on v1).
fn worker_cgroups(pid: u32) -> Vec<PathBuf> {
    let member = pvf_host::cgroup::membership(&pid.to_string()).unwrap();
    [member.v2, member.memory, member.pids]
        .into_iter()
        .flatten()
        .filter(|dir| dir.to_string_lossy().contains("/pvf-"))
        .collect()
}

fn gone_within(dirs: &[PathBuf], patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while dirs.iter().any(|d| d.exists()) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[tokio::test]
async fn worker_cgroups_go_with_their_worker_and_stale_ones_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SpawnSpec {
        program: binaries().execute_worker.clone(),
        dir: dir.path().join("worker"),
        timeout: Duration::from_secs(20),
        layers: Layers::NONE.with(Layer::Cgroups),
        cgroup: CgroupLimits::default(),
    };
    let worker = match WorkerProcess::spawn(&spec).await {
        Ok(worker) => worker,
        Err(WorkerError::Sandbox(status))
            if std::env::var("PVF_REQUIRE_SANDBOX").as_deref() != Ok("1") =>
        {
            eprintln!("SKIP: no cgroups here: {status:?}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let cgroups = worker_cgroups(worker.pid().unwrap());
    assert!(!cgroups.is_empty(), "the worker is in no worker cgroup");
    drop(worker);
    assert!(
        gone_within(&cgroups, Duration::from_secs(10)),
        "{cgroups:?} outlived their worker"
    );

    // A cgroup a killed host left, with a process still in it.
    let dead_host = {
        let mut gone = Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        pid
    };
    let stale: Vec<PathBuf> = cgroups
        .iter()
        .map(|d| d.parent().unwrap().join(format!("pvf-{dead_host}-0")))
        .collect();
    let mut left = Command::new("sleep").arg("600").spawn().unwrap();
    for dir in &stale {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), left.id().to_string()).unwrap();
    }
    pvf_host::cgroup::remove_stale();
    assert!(gone_within(&stale, Duration::from_secs(1)), "{stale:?}");
    let status = left.wait().unwrap();
    assert!(!status.success(), "what was left in it was killed");
}
