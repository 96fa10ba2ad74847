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
use pvf_common::worker::job_process::{JobEnd, JobIsolation, JobLimits, run_job};
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
    // Before the async runtime starts threads: the job runner wants a single-threaded caller.
    pid_namespace_cost(rounds);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(layers_cost(rounds));
}

/// What a PID namespace per job adds: empty jobs through the job runner, forked plainly and
/// into their own user and PID namespaces, interleaved. Measured in a job of its own (so
/// single-threaded, as a worker is) that first enters a user namespace, as a worker does.
fn pid_namespace_cost(rounds: usize) {
    let limits = JobLimits::from_cpu(Duration::from_secs(600));
    let measured = run_job(limits, JobIsolation::Fork, no_confine, || {
        enter_user_namespace()?;
        let mut samples = [Vec::new(), Vec::new()];
        for round in 0..rounds + 20 {
            for (isolation, samples) in [JobIsolation::Fork, JobIsolation::OwnPidNamespace]
                .into_iter()
                .zip(samples.iter_mut())
            {
                let start = Instant::now();
                match run_job(limits, isolation, no_confine, || ()) {
                    Ok(JobEnd::Finished { .. }) => {}
                    other => return Err(format!("{isolation:?}: {other:?}")),
                }
                if round >= 20 {
                    samples.push(start.elapsed());
                }
            }
        }
        Ok(samples.map(|mut s| percentile(&mut s, 0.5).as_nanos() as u64))
    });
    match measured {
        Ok(JobEnd::Finished {
            value: Ok([plain, own]),
            ..
        }) => {
            let ms = |nanos: u64| nanos as f64 / 1e6;
            println!(
                "empty job p50 {:.3} ms; in its own user and PID namespaces p50 {:.3} ms ({:+.3} ms)\n",
                ms(plain),
                ms(own),
                ms(own) - ms(plain)
            );
        }
        Ok(JobEnd::Finished { value: Err(e), .. }) => println!("pid namespace: unmeasured ({e})\n"),
        other => println!("pid namespace: unmeasured ({other:?})\n"),
    }
}

fn no_confine() -> Result<(), String> {
    Ok(())
}

/// Enters a new user namespace with this process's ids mapped, as a worker's are (a nested
/// one needs its creator's ids mapped).
fn enter_user_namespace() -> Result<(), String> {
    // SAFETY: getters without side effects.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // SAFETY: plain syscall in a single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(format!("unshare: {}", std::io::Error::last_os_error()));
    }
    let write = |file: &str, content: String| {
        std::fs::write(format!("/proc/self/{file}"), content).map_err(|e| format!("{file}: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("1000 {uid} 1"))?;
    write("gid_map", format!("1000 {gid} 1"))
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
        in_worker: false,
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
