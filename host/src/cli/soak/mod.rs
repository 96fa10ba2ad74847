//! `pvf soak --minutes N`: a chaos soak of the whole host. Client tasks send a steady mix of
//! valid, invalid, timing-out and preparing requests (some abandoned by their caller) while
//! a chaos thread SIGKILLs and SIGSTOPs workers and jobs, fills the cache's disk, makes it
//! read-only for a while and corrupts artifacts ([`chaos`]). At the end it checks and prints
//! the invariants: every request got exactly one answer; every Valid or Invalid verdict is
//! the one a fault-free run of the same request gives; no orphan process, no leaked fd, no
//! leftover worker dir; host RSS and cache size within their bounds. Exit 0 when they hold,
//! 1 when one does not, 3 when the disk faults cannot run and `PVF_REQUIRE_SANDBOX=1`.

mod chaos;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_common::validation::ValidationParams;
use pvf_host::{Config, ExecuteArgs, Execution, ExitCode, HostError, Reason, Verdict};
use tokio::task::JoinSet;

use chaos::{Disk, Faults, Rng};

const ADDER: &str = include_str!("../../../../tests/guests/adder.wat");
const CPU_BURN: &str = include_str!("../../../../tests/guests/cpu-burn.wat");
const TRAP: &str = include_str!("../../../../tests/guests/trap.wat");
const HALT: &str = include_str!("../../../../tests/guests/halt.wat");

/// Concurrent clients.
const CLIENTS: usize = 6;
/// Codes that need preparing: more artifacts than the cache budget holds.
const VARIANTS: u8 = 8;
/// The bound on the host process's resident memory.
const RSS_BOUND_KIB: u64 = 256 * 1024;
/// The cache's size budget during the soak: a few of the artifacts, so pruning runs all the
/// time and the pruned codes are prepared again.
const CACHE_BUDGET: u64 = 64 * 1024;
/// How far the cache may overshoot its budget between two prunings.
const CACHE_SLACK: u64 = 1024 * 1024;

/// Run the host under chaos and check its promises.
#[derive(clap::Args)]
pub struct Args {
    /// How long to inject faults (fractions allowed).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    minutes: f64,
}

/// One request of the pool the clients draw from.
struct Request {
    args: ExecuteArgs,
    /// What a fault-free host answers.
    reference: Verdict,
}

pub fn run(config: Config, args: Args) -> ExitCode {
    // Before any thread starts: the tmpfs lives in a mount namespace of this process.
    let disk = match Disk::create() {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!("error: creating the soak's cache dir: {e}");
            return ExitCode::Inconclusive;
        }
    };
    if let Some(why) = &disk.no_tmpfs {
        println!("SKIP disk faults (disk full, read-only): {why}");
        if std::env::var_os("PVF_REQUIRE_SANDBOX").is_some_and(|v| v == "1") {
            eprintln!("error: PVF_REQUIRE_SANDBOX=1 and the disk faults cannot run");
            return ExitCode::Inconclusive;
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Inconclusive;
        }
    };
    let length = Duration::from_secs_f64(args.minutes.max(0.0) * 60.0);
    runtime.block_on(soak(config, disk, length))
}

async fn soak(config: Config, disk: Disk, length: Duration) -> ExitCode {
    let pool = match reference_pool(&config).await {
        Ok(pool) => Arc::new(pool),
        Err(e) => {
            eprintln!("error: the fault-free reference run: {e}");
            return ExitCode::Inconclusive;
        }
    };
    let fds_before = open_fds();
    let config = soak_config(config, &disk.dir);
    let (host, host_run) = match pvf_host::start(config).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Inconclusive;
        }
    };
    let host_task = tokio::spawn(host_run);
    let stop = Arc::new(AtomicBool::new(false));
    let disk = Arc::new(disk);
    let chaos = {
        let (disk, stop) = (disk.clone(), stop.clone());
        std::thread::spawn(move || chaos::run(&disk, &stop, seed()))
    };
    let sampler = tokio::spawn(sample(disk.dir.clone(), stop.clone()));
    let tally = serve(&host, &pool, length).await;
    stop.store(true, Ordering::Relaxed);
    let faults = chaos.join().unwrap_or_default();
    // A last pruning with every fault gone, then stop the host.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let final_cache = cache_bytes(&disk.dir);
    drop(host);
    let _ = host_task.await;
    let peaks = sampler.await.unwrap_or_default();
    let ends = Ends::observe(&disk.dir, fds_before).await;
    report(&tally, &faults, &peaks, final_cache, &ends)
}

/// The host's settings for the soak: the given sandbox mode, short limits so faults are
/// noticed and recovered from within the run, and a small cache budget so pruning runs.
fn soak_config(mut config: Config, cache: &Path) -> Config {
    config.cache_dir = cache.to_path_buf();
    config.spawn_timeout = Duration::from_secs(5);
    config.worker_grace = Duration::from_millis(500);
    config.prepare_retry_cooldown = Duration::from_millis(500);
    config.prepare_max_attempts = u32::MAX;
    config.cache_max_size = Some(CACHE_BUDGET);
    config.cache_min_stale = Duration::ZERO;
    config.maintenance_interval = Duration::from_millis(250);
    config.execute_retry_delay = Some(Duration::from_millis(200));
    config
}

/// The requests, each with the verdict a fault-free host gives it.
async fn reference_pool(config: &Config) -> Result<Vec<Request>, String> {
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = config.clone();
    config.cache_dir = scratch.path().to_path_buf();
    let (host, run) = pvf_host::start(config).await.map_err(|e| e.to_string())?;
    let task = tokio::spawn(run);
    let mut pool = Vec::new();
    for args in requests()? {
        // A loaded machine can starve a job into an ambiguous verdict: ask again.
        let mut reference = None;
        for _ in 0..3 {
            let out = host
                .execute(args.clone())
                .await
                .map_err(|e| e.to_string())?;
            // Code that cannot be prepared is deterministically Internal: a clear answer too.
            let unpreparable = matches!(&out.verdict,
                Verdict::Internal(Reason::Preparation(e)) if e.is_deterministic());
            if unpreparable || matches!(out.verdict, Verdict::Valid(_) | Verdict::Invalid(_)) {
                reference = Some(out.verdict);
                break;
            }
        }
        let reference = reference.ok_or("no clear fault-free verdict for a request")?;
        pool.push(Request { args, reference });
    }
    drop(host);
    let _ = task.await;
    Ok(pool)
}

/// Valid (several codes to prepare), CPU-bound, trapping, timing-out and unpreparable
/// requests.
fn requests() -> Result<Vec<ExecuteArgs>, String> {
    let wat = |source: &str| wat::parse_str(source).map_err(|e| e.to_string());
    let (adder, burn, trap, halt) = (wat(ADDER)?, wat(CPU_BURN)?, wat(TRAP)?, wat(HALT)?);
    let kinds = [ExecKind::Backing, ExecKind::Approval, ExecKind::Dispute];
    let params = |parent: u64, block: &[u8]| {
        ValidationParams {
            parent_head: if parent == 0 {
                Vec::new()
            } else {
                parent.to_le_bytes().to_vec()
            },
            block_data: block.to_vec(),
            relay_parent_number: parent as u32,
            relay_parent_storage_root: [0; 32],
        }
        .encode()
    };
    let request = |code: &[u8], vp: Vec<u8>, kind: ExecKind, limit_ms: u64| ExecuteArgs {
        code: Arc::new(code.to_vec()),
        executor_params: ExecutorParams {
            backing_timeout_ms: limit_ms,
            approval_timeout_ms: limit_ms,
            ..ExecutorParams::default()
        },
        validation_params: Arc::new(vp),
        kind,
        timeout: None,
    };
    let mut all = Vec::new();
    for variant in 0..VARIANTS {
        // A trailing custom section: the same guest, another artifact.
        let mut code = adder.clone();
        code.extend_from_slice(&[0, 3, 1, b'n', variant]);
        for n in 0..3u64 {
            let vp = params(n + 1, &(n * 7).to_le_bytes());
            all.push(request(
                &code,
                vp,
                kinds[(variant as usize + n as usize) % 3],
                2_000,
            ));
        }
    }
    for kind in kinds {
        all.push(request(
            &burn,
            params(0, &200_000u64.to_le_bytes()),
            kind,
            2_000,
        ));
        all.push(request(&trap, params(1, &[]), kind, 2_000));
        all.push(request(&halt, params(1, &[]), kind, 150));
    }
    all.push(request(
        b"\0asm\x01\0\0\0garbage",
        params(1, &[]),
        ExecKind::Approval,
        2_000,
    ));
    Ok(all)
}

/// Answers the clients got.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    valid: u64,
    invalid: u64,
    possibly_invalid: u64,
    internal: u64,
    request_errors: u64,
    abandoned: u64,
    disagreements: Vec<String>,
    unanswered: u64,
}

impl Tally {
    fn answered(&self) -> u64 {
        self.valid + self.invalid + self.possibly_invalid + self.internal + self.request_errors
    }

    fn count(&mut self, request: &Request, answer: Result<Execution, HostError>) {
        let execution = match answer {
            Ok(execution) => execution,
            Err(_) => {
                self.request_errors += 1;
                return;
            }
        };
        match &execution.verdict {
            Verdict::Valid(_) => self.valid += 1,
            Verdict::Invalid(_) => self.invalid += 1,
            Verdict::PossiblyInvalid(_) => self.possibly_invalid += 1,
            Verdict::Internal(_) => self.internal += 1,
        }
        if !agrees(&request.reference, &execution.verdict) {
            let seen = format!(
                "{} where a fault-free run says {}",
                execution.verdict, request.reference
            );
            self.disagreements.push(seen);
        }
    }
}

/// Whether `got` could come from the fault-free host: any ambiguous verdict could (a fault
/// is a fault), a Valid or Invalid one only if it is the reference's (CPU time aside).
fn agrees(reference: &Verdict, got: &Verdict) -> bool {
    match (reference, got) {
        (_, Verdict::PossiblyInvalid(_) | Verdict::Internal(_)) => true,
        (Verdict::Valid(a), Verdict::Valid(b)) => a == b,
        (Verdict::Invalid(Reason::Timeout { .. }), Verdict::Invalid(Reason::Timeout { .. })) => {
            true
        }
        (Verdict::Invalid(a), Verdict::Invalid(b)) => a == b,
        _ => false,
    }
}

/// Clients send requests from the pool for `length`; one in ten is abandoned by its caller
/// after a short while. Waits for every request still in flight.
async fn serve(
    host: &pvf_host::ValidationHost,
    pool: &Arc<Vec<Request>>,
    length: Duration,
) -> Tally {
    let deadline = Instant::now() + length;
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let (host, pool) = (host.clone(), pool.clone());
        clients.spawn(async move {
            let mut rng = Rng::seeded(seed() ^ client as u64);
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let request = &pool[rng.below(pool.len() as u64) as usize];
                tally.sent += 1;
                let execute = host.execute(request.args.clone());
                if rng.below(10) == 0 {
                    match tokio::time::timeout(rng.millis(1, 50), execute).await {
                        Ok(answer) => tally.count(request, answer),
                        Err(_) => tally.abandoned += 1,
                    }
                    continue;
                }
                // Far past any limit and retry: an answer that does not come is a bug.
                match tokio::time::timeout(Duration::from_secs(120), execute).await {
                    Ok(answer) => tally.count(request, answer),
                    Err(_) => tally.unanswered += 1,
                }
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(Ok(tally)) = clients.join_next().await {
        total.sent += tally.sent;
        total.valid += tally.valid;
        total.invalid += tally.invalid;
        total.possibly_invalid += tally.possibly_invalid;
        total.internal += tally.internal;
        total.request_errors += tally.request_errors;
        total.abandoned += tally.abandoned;
        total.unanswered += tally.unanswered;
        total.disagreements.extend(tally.disagreements);
    }
    total
}

/// The highest host RSS and cache size seen while the soak ran.
#[derive(Debug, Default)]
struct Peaks {
    rss_kib: u64,
    cache_bytes: u64,
}

async fn sample(cache: std::path::PathBuf, stop: Arc<AtomicBool>) -> Peaks {
    let mut peaks = Peaks::default();
    while !stop.load(Ordering::Relaxed) {
        peaks.rss_kib = peaks.rss_kib.max(rss_kib());
        peaks.cache_bytes = peaks.cache_bytes.max(cache_bytes(&cache));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peaks
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cache_bytes(cache: &Path) -> u64 {
    chaos::artifact_files(cache)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// What the host left behind once stopped.
struct Ends {
    orphans: Vec<i32>,
    fds_before: usize,
    fds_after: usize,
    worker_dirs: usize,
}

impl Ends {
    /// Waits (a few seconds at most) for killed processes to go, then looks.
    async fn observe(cache: &Path, fds_before: usize) -> Self {
        let needle = format!("{}/workers/", cache.display());
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut orphans = chaos::processes_mentioning(&needle);
        while !orphans.is_empty() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(100)).await;
            orphans = chaos::processes_mentioning(&needle);
        }
        // The host logs what each worker wrote until the worker's pipes close, so a dead
        // worker's pipe fds go a moment after it does.
        while open_fds() > fds_before && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let worker_dirs = std::fs::read_dir(cache.join("workers")).map_or(0, |d| d.count());
        Self {
            orphans,
            fds_before,
            fds_after: open_fds(),
            worker_dirs,
        }
    }
}

fn report(
    tally: &Tally,
    faults: &Faults,
    peaks: &Peaks,
    final_cache: u64,
    ends: &Ends,
) -> ExitCode {
    println!(
        "requests: {} sent, {} answered (Valid {}, Invalid {}, PossiblyInvalid {}, Internal {}, \
         request errors {}), {} abandoned by their caller",
        tally.sent,
        tally.answered(),
        tally.valid,
        tally.invalid,
        tally.possibly_invalid,
        tally.internal,
        tally.request_errors,
        tally.abandoned
    );
    println!(
        "faults: {} (worker kills {}, job kills {}, stops {}, disk full {}, read-only {}, \
         corrupted artifacts {})",
        faults.total(),
        faults.worker_kills,
        faults.job_kills,
        faults.stops,
        faults.disk_full,
        faults.read_only,
        faults.corruptions
    );
    let checks = [
        (
            "every request got exactly one answer",
            tally.unanswered == 0 && tally.answered() + tally.abandoned == tally.sent,
            format!("{} unanswered", tally.unanswered),
        ),
        (
            "Valid/Invalid verdicts agree with a fault-free run",
            tally.disagreements.is_empty(),
            tally
                .disagreements
                .first()
                .cloned()
                .unwrap_or_else(|| "0 differ".into()),
        ),
        (
            "no orphan process",
            ends.orphans.is_empty(),
            format!("{:?}", ends.orphans),
        ),
        (
            "no leaked fd",
            ends.fds_after <= ends.fds_before,
            format!("{} before, {} after", ends.fds_before, ends.fds_after),
        ),
        (
            "no leftover worker dir",
            ends.worker_dirs == 0,
            format!("{} left", ends.worker_dirs),
        ),
        (
            "host RSS within its bound",
            peaks.rss_kib <= RSS_BOUND_KIB,
            format!(
                "peak {} MiB, bound {} MiB",
                peaks.rss_kib / 1024,
                RSS_BOUND_KIB / 1024
            ),
        ),
        (
            "cache within its budget",
            final_cache <= CACHE_BUDGET && peaks.cache_bytes <= CACHE_BUDGET + CACHE_SLACK,
            format!(
                "peak {} KiB, final {} KiB, budget {} KiB",
                peaks.cache_bytes / 1024,
                final_cache / 1024,
                CACHE_BUDGET / 1024
            ),
        ),
    ];
    let mut failed = 0;
    for (what, ok, figures) in &checks {
        println!("{} {what}: {figures}", if *ok { "ok  " } else { "FAIL" });
        failed += usize::from(!ok);
    }
    println!("{} passed, {failed} failed", checks.len() - failed);
    if failed == 0 {
        ExitCode::Ok
    } else {
        ExitCode::Invalid
    }
}

/// A seed from the clock: each soak draws another sequence of requests and faults.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}
