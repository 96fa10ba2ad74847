//! A PoV compression bomb. Its own test binary, so that the peak RSS of this process's
//! descendants (`RUSAGE_CHILDREN`) is this test's alone: the workers, and the execute job
//! that meets the bomb.

use parity_scale_codec::Encode;
use pvf_common::compress::{MAGIC, POV_BOMB_LIMIT};
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_common::validation::ValidationParams;
use pvf_host::{Reason, Verdict};
use pvf_tests::{adder_head, guest, host_config};

/// `size` zero bytes, compressed with the PoV magic (zstd streams zeros at ~30000:1).
fn compressed_zeros(size: u64) -> Vec<u8> {
    let mut blob = MAGIC.to_vec();
    let zeros = std::io::Read::take(std::io::repeat(0), size);
    blob.extend(zstd::stream::encode_all(zeros, 1).unwrap());
    blob
}

/// This process's own peak RSS in KiB (`VmHWM`).
fn own_peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The largest peak RSS among this process's reaped descendants, in KiB.
fn descendants_peak_rss_kib() -> u64 {
    // SAFETY: rusage is plain data; getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_maxrss as u64
}

/// Reaps every child left (the host kills its workers on drop), so their peaks are counted.
fn reap_children() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // SAFETY: waitpid with a null status pointer only reaps.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid < 0 {
            return; // ECHILD: none left
        }
        assert!(
            std::time::Instant::now() < deadline,
            "children never exited"
        );
        if pid == 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[tokio::test]
async fn a_pov_bomb_is_invalid_and_memory_stays_bounded() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = pvf_tests::start_host_task(host_config(cache.path())).await;
    let code = guest("adder");
    let params = ExecutorParams::default();

    // A compressed PoV within the limit is inflated before the guest sees it.
    let mut small = MAGIC.to_vec();
    small.extend(zstd::stream::encode_all(&7u64.to_le_bytes()[..], 3).unwrap());
    let vp = ValidationParams {
        parent_head: 5u64.to_le_bytes().to_vec(),
        block_data: small,
        ..ValidationParams::default()
    };
    let out = pvf_tests::execute(&host, &code, &params, &vp.encode(), ExecKind::Backing).await;
    assert!(
        matches!(&out.verdict, Verdict::Valid(r) if r.head_data == adder_head(5, 7)),
        "{}",
        out.verdict
    );

    // 1 GiB of zeros: 25 times the 40 MiB limit.
    let bomb = compressed_zeros(1 << 30);
    eprintln!("bomb: {} bytes compressed, 1 GiB inflated", bomb.len());
    let vp = ValidationParams {
        block_data: bomb,
        ..ValidationParams::default()
    };
    let host_before = own_peak_rss_kib();
    let out = pvf_tests::execute(&host, &code, &params, &vp.encode(), ExecKind::Backing).await;
    assert!(
        matches!(&out.verdict, Verdict::Invalid(Reason::BadParams(m)) if m.contains("bomb")),
        "{}",
        out.verdict
    );
    let host_after = own_peak_rss_kib();
    // Stop the host (it kills its workers), then reap them so their peaks are counted.
    pvf_tests::stop_host(host, task).await;
    reap_children();
    let jobs_peak = descendants_peak_rss_kib();
    eprintln!(
        "peak RSS: host {host_before} -> {host_after} KiB; largest worker or job {jobs_peak} KiB \
         (bomb limit {} KiB)",
        POV_BOMB_LIMIT / 1024
    );
    // The host never inflates the PoV.
    assert!(
        host_after - host_before < 16 * 1024,
        "host grew by {} KiB",
        host_after - host_before
    );
    // The job stops at the limit: far below the 1 GiB the bomb would inflate to.
    assert!(jobs_peak > 0, "no descendant was reaped");
    assert!(
        jobs_peak < 256 * 1024,
        "a worker or job peaked at {jobs_peak} KiB"
    );
}
