//! Measures what each sandbox layer costs per job and per worker spawn, through the real
//! worker loop and job runner (the test-only execute worker running an empty job).
//!
//! `cargo run --release -p pvf-tests --bin pvf-layer-cost [-- ROUNDS]`
//!
//! Configurations are interleaved round-robin in one run, so machine noise hits them alike.
//! First it isolates what forking each job into its own user and PID namespaces (part of
//! the namespaces layer) adds to a bare fork.

use std::time::{Duration, Instant};

use pvf_common::sandbox::rlimits::JobRlimits;
use pvf_common::sandbox::{Layer, Layers};
use pvf_host::worker::{SpawnSpec, WorkerProcess};
use pvf_tests::escape::{AttemptOutcome, AttemptRequest};

fn configs() -> Vec<(&'static str, Layers)> {
    let mut configs = vec![("none", Layers::NONE)];
    for layer in Layer::ALL {
        configs.push((layer.name(), Layers::NONE.with(layer)));
    }
    configs.push(("all", Layers::ALL));
    configs
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    // Before any thread exists: the measurement forks and enters a user namespace.
    pid_namespace_cost(rounds);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(layers_cost(rounds));
}

/// What a PID namespace per job adds: a bare fork, and a fork into new user and PID
/// namespaces (the child is its init; both are torn down when it exits), interleaved.
/// Measured in a forked process inside a user namespace, as a worker is.
fn pid_namespace_cost(rounds: usize) {
    // SAFETY: single-threaded here; the child only makes syscalls and prints.
    match unsafe { libc::fork() } {
        0 => {}
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        child => {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            assert_eq!(status, 0, "the PID namespace measurement failed");
            return;
        }
    }
    // SAFETY: getters without side effects.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // SAFETY: plain syscall in a single-threaded process.
    let entered = unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0
        // A nested user namespace needs the creator's ids mapped, as a worker's are.
        && std::fs::write("/proc/self/setgroups", "deny").is_ok()
        && std::fs::write("/proc/self/uid_map", format!("1000 {uid} 1")).is_ok()
        && std::fs::write("/proc/self/gid_map", format!("1000 {gid} 1")).is_ok();
    if !entered {
        println!(
            "pid namespace: unmeasured (no user namespace: {})",
            std::io::Error::last_os_error()
        );
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let mut plain = Vec::new();
    let mut new_pid_ns = Vec::new();
    for round in 0..rounds + 20 {
        for (flags, samples) in [
            (0, &mut plain),
            (libc::CLONE_NEWPID | libc::CLONE_NEWUSER, &mut new_pid_ns),
        ] {
            let start = Instant::now();
            // SAFETY: a fork-like clone (no new stack); the child exits at once.
            let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD, 0, 0, 0, 0) };
            match pid {
                // SAFETY: in the clone child: leave without touching anything.
                0 => unsafe { libc::_exit(0) },
                -1 => {
                    println!("pid namespace: clone: {}", std::io::Error::last_os_error());
                    // SAFETY: as above.
                    unsafe { libc::_exit(1) };
                }
                pid => {
                    // SAFETY: waiting for our own child.
                    unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
                }
            }
            if round >= 20 {
                samples.push(start.elapsed());
            }
        }
    }
    let plain = percentile(&mut plain, 0.5);
    let new_pid_ns = percentile(&mut new_pid_ns, 0.5);
    println!(
        "per-job fork p50 {:.3} ms; into new user and PID namespaces p50 {:.3} ms ({:+.3} ms)\n",
        plain.as_secs_f64() * 1e3,
        new_pid_ns.as_secs_f64() * 1e3,
        (new_pid_ns.as_secs_f64() - plain.as_secs_f64()) * 1e3
    );
    // SAFETY: as above.
    unsafe { libc::_exit(0) };
}

async fn layers_cost(rounds: usize) {
    let program = std::env::current_exe()
        .expect("own path")
        .with_file_name("pvf-escape-execute");
    let dirs = tempfile::tempdir().expect("temp dir");
    let request = AttemptRequest {
        name: "job_can_return".into(),
        host_pid: std::process::id(),
        worker_pid: 0,
        outside_dir: String::new(),
        host_socket: String::new(),
        tcp_port: 0,
        udp_port: 0,
        rlimits: JobRlimits::default(),
    };
    let configs = configs();
    let mut spawn_times = vec![Vec::new(); configs.len()];
    let mut job_times = vec![Vec::new(); configs.len()];
    let mut workers = Vec::new();
    for (i, (name, layers)) in configs.iter().enumerate() {
        for round in 0..20 {
            let spec = SpawnSpec {
                program: program.clone(),
                dir: dirs.path().join(format!("{name}-{round}")),
                timeout: Duration::from_secs(10),
                layers: *layers,
            };
            let start = Instant::now();
            let worker = WorkerProcess::spawn(&spec).await.expect("spawn");
            spawn_times[i].push(start.elapsed());
            if round == 19 {
                workers.push(worker);
            }
        }
    }
    for round in 0..rounds + 20 {
        for (i, worker) in workers.iter_mut().enumerate() {
            let start = Instant::now();
            let outcome: AttemptOutcome = worker
                .call(&request, Duration::from_secs(10))
                .await
                .expect("job round trip");
            assert!(outcome.reached(), "{outcome:?}");
            if round >= 20 {
                job_times[i].push(start.elapsed());
            }
        }
    }
    let base = percentile(&mut job_times[0].clone(), 0.5);
    println!(
        "{:<11} {:>12} {:>12} {:>14} {:>14}",
        "layers", "job p50", "job p99", "job p50 - none", "spawn p50"
    );
    for (i, (name, _)) in configs.iter().enumerate() {
        let p50 = percentile(&mut job_times[i], 0.5);
        let p99 = percentile(&mut job_times[i], 0.99);
        let spawn = percentile(&mut spawn_times[i], 0.5);
        let delta = p50.as_secs_f64() - base.as_secs_f64();
        println!(
            "{name:<11} {:>9.3} ms {:>9.3} ms {:>+11.3} ms {:>11.3} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            delta * 1e3,
            spawn.as_secs_f64() * 1e3
        );
    }
}
