//! The persistent artifact cache through the real binaries: warm restarts prepare nothing,
//! every kind of corruption is caught and repaired without a wrong verdict, foreign files
//! survive, a SIGKILLed host leaves nothing loadable, one host per cache, and exact pruning.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use pvf_common::artifact::{self, HEADER_LEN};
use pvf_common::engine;
use pvf_common::params::{ArtifactId, ExecKind, ExecutorParams};
use pvf_host::artifacts::meta;
use pvf_host::{ArtifactStatus, ValidationHost, Verdict};
use pvf_tests::{
    adder_params, adder_variant, assert_adder_valid, binaries, execute, guest, host_config,
    pvf_cli, start_host_task, stop_host,
};

fn artifact_path(cache: &Path, code: &[u8]) -> PathBuf {
    cache.join(ArtifactId::new(code, &ExecutorParams::default()).file_name())
}

/// Every artifact file in the cache passes the full check.
fn assert_all_artifacts_verify(cache: &Path) {
    let fingerprint = engine::fingerprint().unwrap();
    for entry in std::fs::read_dir(cache).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(id) = ArtifactId::from_file_name(&name) {
            artifact::load_verified(&path, &fingerprint, &id)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_restart_executes_everything_without_preparing() {
    let cache = tempfile::tempdir().unwrap();
    let codes = [guest("adder"), guest("trap"), guest("alloc-heavy")];
    let verdicts = |host: ValidationHost| {
        let codes = codes.clone();
        async move {
            let mut out = Vec::new();
            for code in &codes {
                let p = ExecutorParams::default();
                let vp = adder_params(1, 2, 3);
                out.push(
                    execute(&host, code, &p, &vp, ExecKind::Backing)
                        .await
                        .verdict,
                );
            }
            out
        }
    };
    let (host, task) = start_host_task(host_config(cache.path())).await;
    let cold = verdicts(host.clone()).await;
    assert_eq!(host.metrics().preparations(), 3);
    stop_host(host, task).await;

    let (host, task) = start_host_task(host_config(cache.path())).await;
    assert_eq!(host.metrics().scan_kept.get(), 3);
    let warm = verdicts(host.clone()).await;
    assert_eq!(warm, cold);
    assert!(matches!(warm[0], Verdict::Valid(_)) && matches!(warm[1], Verdict::Invalid(_)));
    assert_eq!(
        host.metrics().preparations(),
        0,
        "nothing prepared after the restart"
    );
    assert_eq!(host.metrics().cache_hits.get(), 3);
    stop_host(host, task).await;
}

#[derive(Clone, Copy, Debug)]
enum Corruption {
    FlippedPayloadByte,
    Truncated,
    ZeroLength,
    OtherFingerprint,
    LongerPayloadClaimed,
    RandomBytes,
}

impl Corruption {
    fn apply(self, path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        match self {
            Self::FlippedPayloadByte => {
                let at = HEADER_LEN + (bytes.len() - HEADER_LEN) / 2;
                bytes[at] ^= 0x40;
            }
            Self::Truncated => bytes.truncate(bytes.len() - 100),
            Self::ZeroLength => bytes.clear(),
            // The fingerprint follows the 8-byte magic and the 4-byte version.
            Self::OtherFingerprint => bytes[12] ^= 1,
            // The payload length sits 40 bytes before the header's end.
            Self::LongerPayloadClaimed => {
                bytes[HEADER_LEN - 40] = bytes[HEADER_LEN - 40].wrapping_add(1)
            }
            Self::RandomBytes => {
                bytes = (0..bytes.len()).map(|i| (i * 7919 % 251) as u8).collect();
            }
        }
        std::fs::write(path, bytes).unwrap();
    }

    /// Whether the header-only start-up scan catches it (else the worker's checksum does).
    fn caught_by_scan(self) -> bool {
        !matches!(self, Self::FlippedPayloadByte)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corruption_is_detected_deleted_and_re_prepared_with_the_right_verdict() {
    let code = guest("adder");
    for corruption in [
        Corruption::FlippedPayloadByte,
        Corruption::Truncated,
        Corruption::ZeroLength,
        Corruption::OtherFingerprint,
        Corruption::LongerPayloadClaimed,
        Corruption::RandomBytes,
    ] {
        let cache = tempfile::tempdir().unwrap();
        let (host, task) = start_host_task(host_config(cache.path())).await;
        assert_adder_valid(&host, &code, 3, 4).await;
        stop_host(host, task).await;

        let path = artifact_path(cache.path(), &code);
        corruption.apply(&path);
        let junk = cache.path().join("junk.pvfa");
        std::fs::write(&junk, b"not an artifact at all").unwrap();

        let (host, task) = start_host_task(host_config(cache.path())).await;
        let metrics = host.metrics().clone();
        assert!(
            !junk.exists(),
            "{corruption:?}: a random file with our extension is deleted"
        );
        assert_eq!(
            path.exists(),
            !corruption.caught_by_scan(),
            "{corruption:?}"
        );
        assert_adder_valid(&host, &code, 3, 4).await;
        assert_eq!(metrics.preparations(), 1, "{corruption:?}: prepared again");
        let by_worker = if corruption.caught_by_scan() { 0 } else { 1 };
        assert_eq!(metrics.bad_artifacts.get(), by_worker, "{corruption:?}");
        assert_adder_valid(&host, &code, 3, 4).await;
        assert_eq!(
            metrics.preparations(),
            1,
            "{corruption:?}: the new artifact is used"
        );
        stop_host(host, task).await;
        assert_all_artifacts_verify(cache.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_files_survive_start_up_and_pruning() {
    let cache = tempfile::tempdir().unwrap();
    let foreign = [
        cache.path().join("notes.txt"),
        cache.path().join("artifact.bin"),
        cache.path().join("workers/operator-file"),
    ];
    std::fs::create_dir_all(cache.path().join("workers")).unwrap();
    for path in &foreign {
        std::fs::write(path, b"not pvf's").unwrap();
    }
    let mut config = host_config(cache.path());
    config.cache_max_size = Some(0);
    config.cache_min_stale = Duration::ZERO;
    config.maintenance_interval = Duration::from_millis(50);
    let (host, task) = start_host_task(config).await;
    let code = guest("adder");
    assert_adder_valid(&host, &code, 3, 4).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while artifact_path(cache.path(), &code).exists() {
        assert!(Instant::now() < deadline, "the artifact was never pruned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The idle execute worker's link to it goes too, so the disk space is really freed.
    let name = ArtifactId::new(&code, &ExecutorParams::default()).file_name();
    let linked = || {
        std::fs::read_dir(cache.path().join("workers"))
            .unwrap()
            .any(|dir| dir.unwrap().path().join(&name).exists())
    };
    while linked() {
        assert!(Instant::now() < deadline, "the worker kept its link");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        host.artifact_status(&code, &ExecutorParams::default())
            .await
            .unwrap(),
        ArtifactStatus::Unknown
    );
    // With no stale time, the artifact may be pruned between its preparation and its
    // execution too; the execution then prepares it again.
    assert!(host.metrics().pruned.get() >= 1);
    stop_host(host, task).await;
    let (code_exit, _) = pvf_cli(
        Some(cache.path()),
        &["cache", "prune", "--max-size", "0", "--min-stale-secs", "0"],
    );
    assert_eq!(code_exit, 0);
    for path in &foreign {
        assert!(path.exists(), "{} survived", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_preparation_leaves_nothing_loadable() {
    let Some(corpus) = pvf_tests::corpus() else {
        return;
    };
    // The largest runtime: its preparation spans most of the kill times below.
    let code = corpus.last().expect("a corpus runtime").clone();
    let cache = tempfile::tempdir().unwrap();
    // Leftovers of a write interrupted at each step: a partial artifact in a worker dir, and
    // a partial copy into the cache.
    let worker = cache.path().join("workers/prepare-1-0");
    std::fs::create_dir_all(&worker).unwrap();
    std::fs::write(worker.join("artifact-0"), b"PVFARTF\0partial").unwrap();
    let tmp = cache.path().join(format!(
        "{}.tmp",
        ArtifactId::new(b"x", &ExecutorParams::default()).file_name()
    ));
    std::fs::write(&tmp, b"PVFARTF\0partial").unwrap();
    let mut interrupted = 0;
    for kill_after_ms in [50, 300, 800, 1500, 3000] {
        let mut child = Command::new(&binaries().pvf)
            .arg("--cache-dir")
            .arg(cache.path())
            .args(["prepare", code.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL; its workers die with it (parent-death signal)
        child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Worker dirs of the killed run (not the planted leftovers).
        let stale = std::fs::read_dir(cache.path().join("workers"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "prepare-1-0")
            .count();
        if !finished && stale > 0 {
            interrupted += 1;
        }

        let (host, task) = start_host_task(host_config(cache.path())).await;
        let kept = host.metrics().scan_kept.get();
        stop_host(host, task).await;
        // Whatever a later start indexes is a whole, verified artifact; nothing else is left.
        assert!(kept <= 1, "{kill_after_ms} ms");
        assert_all_artifacts_verify(cache.path());
        assert!(!tmp.exists());
        let workers: Vec<_> = std::fs::read_dir(cache.path().join("workers"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(workers.is_empty(), "stale worker dirs left: {workers:?}");
    }
    assert!(
        interrupted >= 2,
        "kills landed mid-preparation: {interrupted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_on_the_same_cache_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = start_host_task(host_config(cache.path())).await;
    let error = pvf_host::start(host_config(cache.path()))
        .await
        .err()
        .expect("the second host is refused");
    assert!(
        error.to_string().contains("in use by another pvf host"),
        "{error}"
    );
    let (exit, _) = pvf_cli(Some(cache.path()), &["cache", "prune", "--max-size", "0"]);
    assert_eq!(exit, 3, "the CLI's prune is refused too");
    stop_host(host, task).await;
    let (host, task) = start_host_task(host_config(cache.path())).await;
    stop_host(host, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_removes_exactly_the_least_recently_needed_over_budget() {
    let cache = tempfile::tempdir().unwrap();
    let codes: Vec<Vec<u8>> = (1..=4).map(adder_variant).collect();
    let (host, task) = start_host_task(host_config(cache.path())).await;
    for code in &codes {
        assert_adder_valid(&host, code, 3, 4).await;
    }
    stop_host(host, task).await;
    let ids: Vec<ArtifactId> = codes
        .iter()
        .map(|c| ArtifactId::new(c, &ExecutorParams::default()))
        .collect();
    let size = |i: usize| {
        std::fs::metadata(cache.path().join(ids[i].file_name()))
            .unwrap()
            .len()
    };
    let exists = |i: usize| cache.path().join(ids[i].file_name()).exists();
    let now = SystemTime::now();
    let ago = |s| now - Duration::from_secs(s);
    meta::store(
        cache.path(),
        &[
            (ids[0], ago(4000)),
            (ids[1], ago(3000)),
            (ids[2], ago(2000)),
            (ids[3], ago(10)),
        ],
    )
    .unwrap();

    // Over budget by less than the two oldest: exactly those two go.
    let budget = size(2) + size(3) + size(1) - 1;
    let budget = budget.to_string();
    let (exit, out) = pvf_cli(
        Some(cache.path()),
        &[
            "cache",
            "prune",
            "--max-size",
            &budget,
            "--min-stale-secs",
            "60",
        ],
    );
    assert_eq!(exit, 0, "{out}");
    assert_eq!(
        (0..4).map(exists).collect::<Vec<_>>(),
        [false, false, true, true],
        "{out}"
    );

    // A restart that needs the oldest survivor makes it the freshest; the persisted time
    // protects it, while the other goes even though it was needed more recently before.
    let (host, task) = start_host_task(host_config(cache.path())).await;
    assert_adder_valid(&host, &codes[2], 3, 4).await;
    stop_host(host, task).await;
    meta::store(cache.path(), &{
        let mut times: Vec<_> = meta::load(cache.path()).into_iter().collect();
        times.retain(|(id, _)| *id == ids[2]);
        times.push((ids[3], ago(100)));
        times
    })
    .unwrap();
    let (exit, out) = pvf_cli(
        Some(cache.path()),
        &[
            "cache",
            "prune",
            "--max-size",
            "0",
            "--min-stale-secs",
            "60",
        ],
    );
    assert_eq!(exit, 0, "{out}");
    assert_eq!(
        (0..4).map(exists).collect::<Vec<_>>(),
        [false, false, true, false],
        "{out}"
    );

    // `ls` and `verify` see the survivor.
    let (exit, out) = pvf_cli(Some(cache.path()), &["cache", "ls"]);
    assert_eq!(exit, 0);
    assert!(
        out.contains(&ids[2].to_string()) && out.contains(" ok"),
        "{out}"
    );
    let (exit, _) = pvf_cli(Some(cache.path()), &["cache", "verify"]);
    assert_eq!(exit, 0);
    Corruption::FlippedPayloadByte.apply(&cache.path().join(ids[2].file_name()));
    let (exit, out) = pvf_cli(Some(cache.path()), &["cache", "verify"]);
    assert_eq!(exit, 1, "{out}");
    assert!(out.contains("checksum"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_deleted_while_the_host_runs_is_prepared_again() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = start_host_task(host_config(cache.path())).await;
    let code = adder_variant(7);
    assert_adder_valid(&host, &code, 3, 4).await;
    std::fs::remove_file(artifact_path(cache.path(), &code)).unwrap();
    assert_adder_valid(&host, &code, 3, 4).await;
    assert_eq!(host.metrics().preparations(), 2);
    assert_eq!(host.metrics().bad_artifacts.get(), 1);
    assert!(artifact_path(cache.path(), &code).exists());
    stop_host(host, task).await;
}
