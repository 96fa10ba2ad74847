//! The host takes a prepared artifact from the worker's dir only as a file it checked and
//! copied itself. A prepare worker (`pvf-rogue-prepare`, the common worker runner with a
//! loop of its own) answers Ok after planting a symlink, a hard link to a file outside, a
//! FIFO, an oversize file, a good file for another code, or a set-uid file: each is refused,
//! nothing is installed, the answer is Internal (a failure of this machine, never Valid or
//! Invalid), it is a security event and the worker is not reused. The control: the honest
//! path installs the artifact as a file of the host's, mode 0444.
//!
//! The rogue runs without the sandbox, so it can reach outside its dir: the host's checks
//! must hold whatever the worker can do.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pvf_common::error::PrepareError;
use pvf_common::params::{ArtifactId, ExecKind, ExecutorParams, PrepKind};
use pvf_common::sandbox::{Layers, SandboxMode};
use pvf_host::cgroup::CgroupLimits;
use pvf_host::prepare::{PrepareJob, PreparedArtifact, pool};
use pvf_host::worker::{SpawnSpec, WorkerProcess};
use pvf_host::{Priority, Verdict};
use pvf_tests::{adder_params, binaries, execute, guest, host_config, start_host};

/// The rogue prepare worker under the name that selects `mode`.
fn rogue(links: &tempfile::TempDir, mode: &str) -> PathBuf {
    let link = links.path().join(format!("pvf-rogue-prepare-{mode}"));
    std::os::unix::fs::symlink(&binaries().rogue_prepare, &link).unwrap();
    link
}

struct Outcome {
    result: Result<PreparedArtifact, PrepareError>,
    worker_kept: bool,
    cache: Vec<String>,
    _cache_dir: tempfile::TempDir,
}

/// Prepares the adder on a rogue worker in `mode` through the prepare pool.
async fn prepare(mode: &str) -> Outcome {
    let (links, workers, cache) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let spec = SpawnSpec {
        program: rogue(&links, mode),
        dir: workers.path().join("prepare-rogue"),
        timeout: Duration::from_secs(20),
        layers: Layers::NONE,
        cgroup: CgroupLimits::default(),
    };
    let worker = WorkerProcess::spawn(&spec).await.unwrap();
    let (code, params) = (guest("adder"), ExecutorParams::default());
    let job = PrepareJob {
        id: ArtifactId::new(&code, &params),
        code: Arc::new(code),
        params,
        priority: Priority::Normal,
        timeout: Duration::from_secs(20),
        kind: PrepKind::Precheck,
    };
    let (worker, result) = pool::run(worker, &job, cache.path(), Duration::from_secs(5)).await;
    let names = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    Outcome {
        result,
        worker_kept: worker.is_some(),
        cache: names,
        _cache_dir: cache,
    }
}

async fn assert_refused(mode: &str, why: &str) {
    let outcome = prepare(mode).await;
    let error = outcome.result.expect_err(mode);
    assert!(
        matches!(&error, PrepareError::Internal(m) if m.contains("refused") && m.contains(why)),
        "{mode}: {error}"
    );
    assert!(
        matches!(Verdict::from_prepare_error(error), Verdict::Internal(_)),
        "{mode}"
    );
    assert!(!outcome.worker_kept, "{mode}: the worker was kept");
    assert!(
        outcome.cache.is_empty(),
        "{mode}: installed {:?}",
        outcome.cache
    );
}

#[tokio::test]
async fn a_symlink_is_refused() {
    assert_refused("symlink", "Too many levels of symbolic links").await;
}

#[tokio::test]
async fn a_hard_link_to_a_file_outside_is_refused() {
    assert_refused("hardlink", "2 links").await;
}

#[tokio::test]
async fn a_fifo_is_refused_without_blocking() {
    assert_refused("fifo", "not a regular file").await;
}

#[tokio::test]
async fn an_oversize_file_is_refused() {
    assert_refused("oversize", "over the cap").await;
}

#[tokio::test]
async fn a_good_artifact_of_another_code_is_refused() {
    assert_refused("otherid", "different artifact id").await;
}

#[tokio::test]
async fn a_set_uid_file_is_refused() {
    assert_refused("setuid", "mode 4400").await;
}

/// The negative control: the same worker, honest, gets its artifact installed as a file of
/// the host's, mode 0444, its size taken from the file.
#[tokio::test]
async fn the_honest_artifact_is_installed_0444_by_the_host() {
    let outcome = prepare("honest").await;
    let artifact = outcome.result.unwrap();
    let meta = std::fs::metadata(&artifact.path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o444);
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    assert_eq!(meta.nlink(), 1);
    assert_eq!(artifact.size, meta.len());
    assert!(outcome.worker_kept);
    assert_eq!(outcome.cache.len(), 1, "{:?}", outcome.cache);
}

/// Through the host, a refused artifact is an Internal verdict on the candidate.
#[tokio::test]
async fn through_the_host_a_refused_artifact_is_internal() {
    let links = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut config = host_config(cache.path());
    config.prepare_worker = rogue(&links, "symlink");
    config.sandbox = SandboxMode::Disabled;
    let host = start_host(config).await;
    let out = execute(
        &host,
        &guest("adder"),
        &ExecutorParams::default(),
        &adder_params(1, 2, 0),
        ExecKind::Backing,
    )
    .await;
    assert!(
        matches!(&out.verdict, Verdict::Internal(r) if r.to_string().contains("refused")),
        "{}",
        out.verdict
    );
    let security = pvf_tests::metric(host.metrics(), "pvf_security_events", "artifact");
    assert_eq!(security, 1.0);
}
