//! Escape tests: each attempt (tests/src/escape.rs) runs in a real job process of a
//! test-only worker (the `holder_*` ones in an artifact holder's confinement), three ways:
//! with every layer on (blocked), with every layer off (the negative control: it must get
//! through), and with each layer meant to block it on alone (blocked). A layer this machine cannot apply skips with a printed reason, or fails when
//! `PVF_REQUIRE_SANDBOX=1` (CI).
//!
//! When run as root, `escape_suite_passes_unprivileged` also runs every attempt test as a
//! fresh unprivileged user, from a copy of the binaries in a world-readable directory.

use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pvf_common::sandbox::rlimits::JobRlimits;
use pvf_common::sandbox::{Layers, WorkerKind};
use pvf_host::worker::{SpawnSpec, WorkerError, WorkerProcess};
use pvf_tests::escape::{ATTEMPTS, AttemptOutcome, AttemptRequest, PLANTED_LINK, attempt};

/// Set in the unprivileged re-run: where the copied binaries are.
const BIN_DIR_ENV: &str = "PVF_ESCAPE_BIN_DIR";

/// What the host side offers to escape towards.
struct World {
    _host_socket: UnixListener,
    host_socket_path: PathBuf,
    tcp: TcpListener,
    udp: UdpSocket,
    outside: tempfile::TempDir,
    workers: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let outside = tempfile::tempdir().unwrap();
        std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let host_socket_path = outside.path().join("host.sock");
        let host_socket = UnixListener::bind(&host_socket_path).unwrap();
        std::fs::set_permissions(&host_socket_path, std::fs::Permissions::from_mode(0o777))
            .unwrap();
        Self {
            _host_socket: host_socket,
            host_socket_path,
            tcp: TcpListener::bind("127.0.0.1:0").unwrap(),
            udp: UdpSocket::bind("127.0.0.1:0").unwrap(),
            outside,
            workers: tempfile::tempdir().unwrap(),
        }
    }

    fn request(&self, name: &str, worker_pid: u32, in_worker: bool) -> AttemptRequest {
        AttemptRequest {
            name: name.into(),
            host_pid: std::process::id(),
            worker_pid,
            outside_dir: self.outside.path().display().to_string(),
            host_socket: self.host_socket_path.display().to_string(),
            tcp_port: self.tcp.local_addr().unwrap().port(),
            udp_port: self.udp.local_addr().unwrap().port(),
            rlimits: JobRlimits {
                open_files: 64,
                file_size: 1 << 20,
                processes: 8,
                data: 256 << 20,
            },
            in_worker,
        }
    }
}

fn escape_binary(kind: WorkerKind) -> PathBuf {
    let dir = std::env::var_os(BIN_DIR_ENV).map(PathBuf::from);
    let bins = match &dir {
        Some(dir) => pvf_tests::binaries_in(dir),
        None => {
            let b = pvf_tests::binaries();
            pvf_tests::binaries_in(b.pvf.parent().unwrap())
        }
    };
    match kind {
        WorkerKind::Prepare => bins.escape_prepare,
        WorkerKind::Execute => bins.escape_execute,
    }
}

fn require_sandbox() -> bool {
    std::env::var("PVF_REQUIRE_SANDBOX").is_ok_and(|v| v == "1")
}

async fn spawn(
    world: &World,
    kind: WorkerKind,
    layers: Layers,
) -> Result<WorkerProcess, WorkerError> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let spec = SpawnSpec {
        program: escape_binary(kind),
        dir: world.workers.path().join(format!("w{n}")),
        timeout: Duration::from_secs(20),
        layers,
    };
    WorkerProcess::spawn(&spec).await
}

/// Runs one attempt in a job under `layers`; `None` if the layers cannot be applied here.
async fn run(world: &World, name: &str, layers: Layers) -> Option<AttemptOutcome> {
    run_in(world, name, layers, false).await
}

/// Runs one attempt under `layers`, in a job or in the worker itself.
async fn run_in(
    world: &World,
    name: &str,
    layers: Layers,
    in_worker: bool,
) -> Option<AttemptOutcome> {
    let attempt = attempt(name).expect("known attempt");
    let mut worker = match spawn(world, attempt.kind, layers).await {
        Ok(worker) => worker,
        Err(WorkerError::Sandbox(reason)) if !require_sandbox() => {
            eprintln!("SKIP {name} with {layers:?}: this machine cannot apply it: {reason:?}");
            return None;
        }
        Err(e) => panic!("{name}: spawning the escape worker with {layers:?}: {e}"),
    };
    if name == "job_cannot_follow_a_planted_symlink_out" {
        std::os::unix::fs::symlink("/etc/passwd", worker.dir().join(PLANTED_LINK)).unwrap();
    }
    let outcome = worker
        .call::<_, AttemptOutcome>(
            &world.request(name, worker.pid().expect("a live worker"), in_worker),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: escape worker failed: {e}"));
    Some(outcome)
}

/// The three runs of an attempt.
async fn check(name: &str) {
    let world = World::new();
    let attempt = attempt(name).unwrap();
    if let Some(outcome) = run(&world, name, Layers::NONE).await {
        assert!(
            outcome.reached(),
            "{name}: negative control (no sandbox) must get through: {outcome:?}"
        );
    }
    if let Some(outcome) = run(&world, name, Layers::ALL).await {
        assert!(
            !outcome.reached(),
            "{name}: full sandbox must block it: {outcome:?}"
        );
        assert!(
            !matches!(outcome, AttemptOutcome::Error(_) | AttemptOutcome::TimedOut),
            "{name}: {outcome:?}"
        );
    }
    for blockers in attempt.blockers {
        // Root is exempt from RLIMIT_NPROC: alone, limits cannot bound it; with namespaces
        // the job is `nobody`. Unprivileged, limits alone suffice.
        let layers = blockers.iter().fold(Layers::NONE, |l, b| l.with(*b));
        if let Some(outcome) = run(&world, name, layers).await {
            assert!(
                !outcome.reached(),
                "{name}: {blockers:?} alone must block it: {outcome:?}"
            );
        }
    }
}

macro_rules! attempt_tests {
    ($($name:ident),* $(,)?; custom: $($custom:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                check(stringify!($name)).await;
            }
        )*
        /// Every attempt in the list has a test here.
        #[test]
        fn every_attempt_has_a_test() {
            let tested = [$(stringify!($name),)* $(stringify!($custom)),*];
            for attempt in ATTEMPTS {
                assert!(attempt.name.starts_with("job_can_") || tested.contains(&attempt.name), "{} has no test", attempt.name);
            }
        }
    };
}

attempt_tests!(
    job_cannot_read_etc_passwd,
    job_cannot_list_the_real_root,
    job_cannot_read_proc_1_cmdline,
    job_cannot_read_the_host_environment,
    execute_job_cannot_write_outside_its_dir,
    prepare_job_cannot_write_outside_its_dir,
    job_cannot_escape_with_dotdot,
    job_cannot_follow_a_planted_symlink_out,
    job_cannot_connect_over_tcp,
    job_cannot_send_udp,
    job_cannot_create_a_socketpair,
    job_cannot_connect_to_the_host_socket,
    job_cannot_set_up_io_uring,
    job_cannot_fork,
    job_cannot_clone_a_process,
    job_cannot_execve,
    job_cannot_signal_the_host,
    job_cannot_signal_the_worker,
    job_cannot_ptrace,
    job_cannot_setns,
    job_cannot_mount,
    job_cannot_chroot,
    job_cannot_use_keyctl,
    job_cannot_use_bpf,
    job_cannot_open_perf_events,
    job_cannot_inject_terminal_input,
    job_cannot_fork_bomb,
    job_cannot_write_an_unbounded_file,
    job_cannot_allocate_past_its_memory_limit,
    job_cannot_map_shared_memory,
    prepare_job_cannot_map_shared_memory,
    job_cannot_take_memory_through_memfds,
    job_cannot_map_executable_memory,
    job_cannot_make_memory_executable,
    job_cannot_clone_a_thread_into_new_namespaces,
    job_cannot_use_userfaultfd,
    job_cannot_write_another_process_memory,
    job_cannot_take_another_process_descriptor,
    holder_cannot_read_etc_passwd,
    holder_cannot_connect_to_the_host_socket,
    holder_cannot_signal_the_worker,
    holder_cannot_execve;
    custom:
    job_cannot_write_to_inherited_fds,
    prepare_job_cannot_write_to_inherited_fds,
    holder_cannot_write_to_inherited_fds,
);

/// Runs an attempt to write to every descriptor the worker held, and checks each answer:
/// `errno` is what every write must get with every layer on, with none, and with each
/// blocking layer alone. With no layer the job holds none of them already (EBADF: the
/// write reached the kernel and found no descriptor). The negative control is the worker
/// itself, which still holds them: its writes reach the host socket and stdio (EFAULT, from
/// the null buffer, so nothing is written).
async fn inherited_fds(name: &str, errno_with_all: i32) {
    let world = World::new();
    let all_answer = |outcome: &AttemptOutcome, errno: i32| {
        let AttemptOutcome::Refused(answers) = outcome else {
            panic!("{name}: {outcome:?}");
        };
        let want = format!("(os error {errno})");
        assert!(
            answers.split("; ").all(|a| a.ends_with(&want)),
            "{name}: every write must fail with {want}: {answers}"
        );
        assert!(
            answers.contains("fd 2:"),
            "{name}: stderr was tried: {answers}"
        );
    };
    if let Some(outcome) = run_in(&world, name, Layers::NONE, true).await {
        assert!(
            matches!(&outcome, AttemptOutcome::Reached(a) if a.contains("(os error 14)")),
            "{name}: negative control (the worker's own descriptors) must be writable: {outcome:?}"
        );
    }
    if let Some(outcome) = run(&world, name, Layers::NONE).await {
        all_answer(&outcome, libc::EBADF);
    }
    if let Some(outcome) = run(&world, name, Layers::ALL).await {
        all_answer(&outcome, errno_with_all);
    }
    for blockers in attempt(name).unwrap().blockers {
        let layers = blockers.iter().fold(Layers::NONE, |l, b| l.with(*b));
        if let Some(outcome) = run(&world, name, layers).await {
            all_answer(&outcome, errno_with_all);
        }
    }
}

/// With the seccomp layer, the job's fd filter fails each write with EPERM.
#[tokio::test]
async fn job_cannot_write_to_inherited_fds() {
    inherited_fds("job_cannot_write_to_inherited_fds", libc::EPERM).await;
}

/// An artifact holder writes to its jobs' pipes, so its writes are not narrowed by
/// descriptor: it holds no inherited descriptor, so each write finds none.
#[tokio::test]
async fn holder_cannot_write_to_inherited_fds() {
    inherited_fds("holder_cannot_write_to_inherited_fds", libc::EBADF).await;
}

/// A prepare job's writes are not narrowed by descriptor yet (it still writes its artifact
/// to a file it opens): it holds no inherited descriptor, so each write finds none.
#[tokio::test]
async fn prepare_job_cannot_write_to_inherited_fds() {
    inherited_fds("prepare_job_cannot_write_to_inherited_fds", libc::EBADF).await;
}

fn proc_status(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn worker_and_job_processes_show_the_sandbox() {
    let world = World::new();
    let mut worker = match spawn(&world, WorkerKind::Execute, Layers::ALL).await {
        Ok(worker) => worker,
        Err(WorkerError::Sandbox(reason)) if !require_sandbox() => {
            eprintln!("SKIP: this machine cannot apply the sandbox: {reason:?}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let pid = worker.pid().unwrap();
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    assert_eq!(proc_status(pid, "Seccomp"), "2");
    for ns in ["user", "mnt", "net", "ipc", "uts", "cgroup"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(theirs, ours, "{ns} namespace is shared with the host");
    }
    // The worker's root holds exactly its worker dir.
    std::fs::write(worker.dir().join("marker"), b"").unwrap();
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(Path::new(&format!("/proc/{pid}/root"))),
        names(worker.dir())
    );
    assert_eq!(names(worker.dir()), vec!["marker".to_string()]);

    // During a job, the job process is under seccomp too.
    let request = world.request("job_can_sleep", pid, false);
    let call = worker.call::<_, AttemptOutcome>(&request, Duration::from_secs(30));
    let look = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        let job: u32 = children
            .split_whitespace()
            .next()
            .expect("a job process")
            .parse()
            .unwrap();
        let namespace =
            |pid: u32, ns: &str| std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let own_namespaces = ["pid", "user"].map(|ns| namespace(job, ns) != namespace(pid, ns));
        (
            proc_status(job, "Seccomp"),
            proc_status(job, "NoNewPrivs"),
            proc_status(job, "NSpid"),
            proc_status(job, "CapEff"),
            own_namespaces,
        )
    };
    let (outcome, (seccomp, nnp, ns_pid, caps, own_namespaces)) = tokio::join!(call, look);
    assert!(outcome.unwrap().reached());
    assert_eq!(seccomp, "2");
    assert_eq!(nnp, "1");
    // The job is PID 1 of its own PID namespace, in its own user namespace, and holds no
    // capability there.
    assert_eq!(own_namespaces, [true, true]);
    assert!(ns_pid.ends_with("\t1"), "NSpid {ns_pid:?}");
    assert_eq!(caps, "0000000000000000");
}

/// As root, re-runs every attempt test as a new unprivileged user (root's home is 0700
/// here, so the binaries are copied to a 0755 directory first).
#[test]
fn escape_suite_passes_unprivileged() {
    if std::env::var_os(BIN_DIR_ENV).is_some() {
        return; // this is the unprivileged re-run itself
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: not root; the attempt tests in this run already ran unprivileged");
        return;
    }
    const USER: &str = "pvf-escape-test";
    let exists = std::process::Command::new("id")
        .arg(USER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let status = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status()
            .expect("useradd");
        assert!(status.success(), "useradd {USER}");
    }
    let dir = tempfile::Builder::new()
        .prefix("pvf-unpriv-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bins = pvf_tests::binaries();
    let bin_dir = bins.pvf.parent().unwrap();
    for name in ["pvf-escape-prepare", "pvf-escape-execute"] {
        std::fs::copy(bin_dir.join(name), dir.path().join(name)).unwrap();
    }
    let test_exe = dir.path().join("escape-tests");
    std::fs::copy(std::env::current_exe().unwrap(), &test_exe).unwrap();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid", USER, "--regid", USER, "--clear-groups", "--"])
        .arg(&test_exe)
        .args(["_cannot_", "--test-threads=2"])
        .env(BIN_DIR_ENV, dir.path())
        .env("TMPDIR", "/tmp")
        .current_dir(dir.path())
        .output()
        .expect("running the suite unprivileged");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("unprivileged run:\n{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the escape suite failed unprivileged"
    );
    assert!(stdout.contains("test result: ok"), "{stdout}");
    assert!(
        !stdout.contains(" 0 passed"),
        "the unprivileged run ran no test: {stdout}"
    );
}
