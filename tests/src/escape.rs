//! Escape attempts: what a guest with arbitrary code execution in a job process would try.
//! They live only here, in test-only worker binaries built from the same `common` worker
//! loop and sandbox as the real workers; no cargo feature can put them into a release
//! worker.
//!
//! An attempt returns `Ok` when its call reached the kernel and did what it asked (or, for
//! calls passed a bad fd or pointer on purpose, when the kernel answered at all), and `Err`
//! when something refused it. A job killed by seccomp reports SIGSYS instead.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use parity_scale_codec::{Decode, Encode};
use pvf_common::ipc::frame;
use pvf_common::sandbox::rlimits::JobRlimits;
use pvf_common::sandbox::{self, Layer, WorkerContext, WorkerKind};
use pvf_common::worker::JobDeath;
use pvf_common::worker::child::{self, ChildFault, OUTPUT_FD, exit_now, fork_child};
use pvf_common::worker::job_process::{EXIT_CONFINE_FAILED, JobEnd, JobLimits, run_job};

/// What the test tells an attempt about the world outside the sandbox.
#[derive(Clone, Debug, Encode, Decode)]
pub struct AttemptRequest {
    /// Which attempt to run.
    pub name: String,
    /// The test process's pid (the "host").
    pub host_pid: u32,
    /// The worker's pid, as the host sees it.
    pub worker_pid: u32,
    /// A world-writable directory outside the worker dir.
    pub outside_dir: String,
    /// A Unix socket the host listens on.
    pub host_socket: String,
    /// A TCP port the host listens on (127.0.0.1).
    pub tcp_port: u16,
    /// A UDP port the host listens on (127.0.0.1).
    pub udp_port: u16,
    /// The job's rlimits (small, so resource attempts stop quickly).
    pub rlimits: JobRlimits,
    /// Run the attempt in the worker process itself rather than in a job: the negative
    /// control of attempts on what a job inherits.
    pub in_worker: bool,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum AttemptOutcome {
    /// The call reached the kernel and was not refused.
    Reached(String),
    /// The call was refused (errno, or a missing path).
    Refused(String),
    /// The job process died (seccomp kill, rlimit signal).
    Died(JobDeath),
    /// The job hit its time limit.
    TimedOut,
    /// The attempt name is unknown or the runner failed.
    Error(String),
}

impl AttemptOutcome {
    /// Whether the attempt got through.
    pub fn reached(&self) -> bool {
        matches!(self, Self::Reached(_))
    }
}

/// One attempt and the layer sets that must each block it on their own.
pub struct Attempt {
    /// Name, as a claim about the sandbox.
    pub name: &'static str,
    /// The worker kind it runs in.
    pub kind: WorkerKind,
    /// Each entry is a set of layers that, alone, must block the attempt.
    pub blockers: &'static [&'static [Layer]],
    body: fn(&AttemptRequest, &WorkerContext) -> Result<String, String>,
}

use Layer::{Landlock, Limits, Namespaces, Seccomp};

/// Every attempt.
pub const ATTEMPTS: &[Attempt] = &[
    Attempt {
        name: "job_cannot_read_etc_passwd",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: read_etc_passwd,
    },
    Attempt {
        name: "job_cannot_list_the_real_root",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: list_root,
    },
    Attempt {
        name: "job_cannot_read_proc_1_cmdline",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: read_proc1_cmdline,
    },
    Attempt {
        name: "job_cannot_read_the_host_environment",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: read_host_environ,
    },
    Attempt {
        name: "execute_job_cannot_write_outside_its_dir",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: write_outside,
    },
    Attempt {
        name: "prepare_job_cannot_write_outside_its_dir",
        kind: WorkerKind::Prepare,
        blockers: &[&[Namespaces], &[Landlock]],
        body: write_outside,
    },
    Attempt {
        name: "job_cannot_escape_with_dotdot",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: dotdot_escape,
    },
    Attempt {
        name: "job_cannot_follow_a_planted_symlink_out",
        kind: WorkerKind::Prepare,
        blockers: &[&[Namespaces], &[Landlock]],
        body: symlink_escape,
    },
    Attempt {
        name: "job_cannot_connect_over_tcp",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: tcp_connect,
    },
    Attempt {
        name: "job_cannot_send_udp",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Seccomp]],
        body: udp_send,
    },
    Attempt {
        name: "job_cannot_create_a_socketpair",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: socketpair,
    },
    Attempt {
        name: "job_cannot_connect_to_the_host_socket",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Seccomp]],
        body: connect_host_socket,
    },
    Attempt {
        name: "job_cannot_set_up_io_uring",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: io_uring_setup,
    },
    Attempt {
        name: "job_cannot_fork",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: fork_once,
    },
    Attempt {
        name: "job_cannot_clone_a_process",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: clone_process,
    },
    Attempt {
        name: "job_cannot_execve",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: execve_bad_pointer,
    },
    Attempt {
        name: "job_cannot_signal_the_host",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: kill_host,
    },
    Attempt {
        name: "job_cannot_signal_the_worker",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Seccomp]],
        body: kill_worker,
    },
    Attempt {
        name: "job_cannot_ptrace",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: ptrace_attach,
    },
    Attempt {
        name: "job_cannot_setns",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: setns_bad_fd,
    },
    Attempt {
        name: "job_cannot_mount",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: mount_bad_pointer,
    },
    Attempt {
        name: "job_cannot_chroot",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: chroot_bad_pointer,
    },
    Attempt {
        name: "job_cannot_use_keyctl",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: keyctl_bad_id,
    },
    Attempt {
        name: "job_cannot_use_bpf",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: bpf_bad_pointer,
    },
    Attempt {
        name: "job_cannot_open_perf_events",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: perf_event_bad_pointer,
    },
    Attempt {
        name: "job_cannot_inject_terminal_input",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: tiocsti_bad_fd,
    },
    Attempt {
        name: "job_cannot_fork_bomb",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp], &[Namespaces, Limits]],
        body: fork_bomb,
    },
    Attempt {
        name: "job_cannot_write_an_unbounded_file",
        kind: WorkerKind::Prepare,
        blockers: &[&[Limits]],
        body: big_file,
    },
    Attempt {
        name: "job_cannot_allocate_past_its_memory_limit",
        kind: WorkerKind::Execute,
        blockers: &[&[Limits]],
        body: allocate,
    },
    Attempt {
        name: "job_cannot_write_to_inherited_fds",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: write_inherited_fds,
    },
    Attempt {
        name: "prepare_job_cannot_write_to_inherited_fds",
        kind: WorkerKind::Prepare,
        blockers: &[],
        body: write_inherited_fds,
    },
    Attempt {
        name: "job_cannot_map_shared_memory",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: map_shared_memory,
    },
    Attempt {
        name: "prepare_job_cannot_map_shared_memory",
        kind: WorkerKind::Prepare,
        blockers: &[&[Seccomp]],
        body: map_shared_memory,
    },
    Attempt {
        name: "job_cannot_take_memory_through_memfds",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: memfd_memory,
    },
    Attempt {
        name: "job_cannot_map_executable_memory",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: map_executable,
    },
    Attempt {
        name: "job_cannot_make_memory_executable",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: make_executable,
    },
    Attempt {
        name: "job_cannot_clone_a_thread_into_new_namespaces",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: clone_thread_into_namespaces,
    },
    Attempt {
        name: "job_cannot_use_userfaultfd",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: userfaultfd,
    },
    Attempt {
        name: "job_cannot_write_another_process_memory",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: process_vm_writev,
    },
    Attempt {
        name: "job_cannot_take_another_process_descriptor",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: pidfd_getfd,
    },
    Attempt {
        name: "holder_cannot_read_etc_passwd",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Landlock], &[Seccomp]],
        body: read_etc_passwd,
    },
    Attempt {
        name: "holder_cannot_connect_to_the_host_socket",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Seccomp]],
        body: connect_host_socket,
    },
    Attempt {
        name: "holder_cannot_signal_the_worker",
        kind: WorkerKind::Execute,
        blockers: &[&[Namespaces], &[Seccomp]],
        body: kill_worker,
    },
    Attempt {
        name: "holder_cannot_execve",
        kind: WorkerKind::Execute,
        blockers: &[&[Seccomp]],
        body: execve_bad_pointer,
    },
    Attempt {
        name: "holder_cannot_write_to_inherited_fds",
        kind: WorkerKind::Execute,
        blockers: &[],
        body: write_inherited_fds,
    },
    Attempt {
        name: "job_can_sleep",
        kind: WorkerKind::Execute,
        blockers: &[],
        body: sleep_briefly,
    },
    Attempt {
        name: "job_can_return",
        kind: WorkerKind::Execute,
        blockers: &[],
        body: return_at_once,
    },
];

/// Finds an attempt by name.
pub fn attempt(name: &str) -> Option<&'static Attempt> {
    ATTEMPTS.iter().find(|a| a.name == name)
}

/// The escape worker's main: the common worker loop with attempts instead of jobs.
pub fn serve(kind: WorkerKind) -> ExitCode {
    pvf_common::worker::serve(kind, Attempter)
}

struct Attempter;

impl pvf_common::worker::Handler for Attempter {
    type Request = AttemptRequest;
    type Response = AttemptOutcome;

    fn handle(&mut self, ctx: &WorkerContext, request: AttemptRequest) -> AttemptOutcome {
        run(ctx, request)
    }
}

/// The descriptors the worker held when it forked the job: recorded in the worker just
/// before the fork, read by the job in its copy of the worker's memory.
static WORKER_FDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn run(ctx: &WorkerContext, request: AttemptRequest) -> AttemptOutcome {
    let Some(attempt) = attempt(&request.name) else {
        return AttemptOutcome::Error(format!("unknown attempt {}", request.name));
    };
    let mut ctx = ctx.clone();
    ctx.rlimits = request.rlimits;
    *WORKER_FDS.lock().unwrap_or_else(|e| e.into_inner()) = open_fds();
    if request.in_worker {
        return outcome((attempt.body)(&request, &ctx));
    }
    if attempt.name.starts_with("holder_") {
        return run_in_holder(&ctx, &request, attempt);
    }
    let limits = JobLimits::from_cpu(Duration::from_secs(10));
    let end = run_job(
        limits,
        ctx.job_isolation(),
        || sandbox::confine_job(&ctx),
        || (attempt.body)(&request, &ctx),
    );
    match end {
        Ok(JobEnd::Finished {
            value: Ok(detail), ..
        }) => AttemptOutcome::Reached(detail),
        Ok(JobEnd::Finished {
            value: Err(detail), ..
        }) => AttemptOutcome::Refused(detail),
        Ok(JobEnd::Died(death)) => AttemptOutcome::Died(death),
        Ok(JobEnd::TimedOut { .. } | JobEnd::WallClockExceeded { .. }) => AttemptOutcome::TimedOut,
        Err(e) => AttemptOutcome::Error(e.to_string()),
    }
}

fn outcome(result: Result<String, String>) -> AttemptOutcome {
    match result {
        Ok(detail) => AttemptOutcome::Reached(detail),
        Err(detail) => AttemptOutcome::Refused(detail),
    }
}

/// Runs an attempt as an execute worker's artifact holder would: forked with nothing but its
/// pipes and confined by the holder's layers, where a crafted artifact's code would run.
fn run_in_holder(
    ctx: &WorkerContext,
    request: &AttemptRequest,
    attempt: &Attempt,
) -> AttemptOutcome {
    let holder = fork_child(ctx.job_isolation(), &[], || {
        let (_input, mut output) = child::pipes();
        if sandbox::confine_holder(ctx).is_err() {
            exit_now(EXIT_CONFINE_FAILED);
        }
        let _ = frame::write(&mut output, &(attempt.body)(request, ctx));
    });
    let mut holder = match holder {
        Ok(holder) => holder,
        Err(e) => return AttemptOutcome::Error(e.to_string()),
    };
    let answer = holder.receive(Instant::now() + Duration::from_secs(10));
    match answer.map(|bytes| frame::decode::<Result<String, String>>(&bytes)) {
        Ok(Ok(result)) => outcome(result),
        Ok(Err(e)) => AttemptOutcome::Error(e.to_string()),
        Err(ChildFault::Died(death)) => AttemptOutcome::Died(death),
        Err(ChildFault::Late(_)) => AttemptOutcome::TimedOut,
        Err(fault) => AttemptOutcome::Error(fault.to_string()),
    }
}

fn io<T>(r: std::io::Result<T>, what: &str) -> Result<String, String> {
    r.map(|_| format!("{what}: ok"))
        .map_err(|e| format!("{what}: {e}"))
}

/// A raw syscall's result: any answer from the kernel means it was reached.
fn reached(ret: libc::c_long, what: &str) -> Result<String, String> {
    let err = std::io::Error::last_os_error();
    Ok(if ret < 0 {
        format!("{what}: reached the kernel ({err})")
    } else {
        format!("{what}: {ret}")
    })
}

fn libc_result(ret: libc::c_int, what: &str) -> Result<String, String> {
    if ret < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(format!("{what}: ok"))
    }
}

fn read_etc_passwd(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    io(std::fs::read("/etc/passwd"), "read /etc/passwd")
}

fn list_root(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let names: Vec<String> = std::fs::read_dir("/")
        .map_err(|e| format!("read_dir /: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    if names
        .iter()
        .any(|n| n == "etc" || n == "proc" || n == "usr")
    {
        Ok(format!("/ holds {names:?}"))
    } else {
        Err(format!("/ holds only {names:?}"))
    }
}

fn read_proc1_cmdline(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    io(std::fs::read("/proc/1/cmdline"), "read /proc/1/cmdline")
}

fn read_host_environ(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    io(
        std::fs::read(format!("/proc/{}/environ", r.host_pid)),
        "read the host's environ",
    )
}

fn write_outside(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let path = PathBuf::from(&r.outside_dir).join(format!("escaped-{}", std::process::id()));
    io(std::fs::write(path, b"out"), "write outside")
}

fn dotdot_escape(_: &AttemptRequest, ctx: &WorkerContext) -> Result<String, String> {
    let path = ctx.dir.join("../../../../../../../../../../etc/passwd");
    io(std::fs::read(path), "read ../../etc/passwd")
}

fn symlink_escape(_: &AttemptRequest, ctx: &WorkerContext) -> Result<String, String> {
    io(
        std::fs::read(ctx.dir.join(PLANTED_LINK)),
        "read through planted symlink",
    )
}

/// The symlink the host plants in the worker dir, pointing at `/etc/passwd`.
pub const PLANTED_LINK: &str = "planted-link";

fn tcp_connect(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    io(
        std::net::TcpStream::connect(("127.0.0.1", r.tcp_port)),
        "tcp connect",
    )
}

fn udp_send(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("udp bind: {e}"))?;
    io(socket.send_to(b"x", ("127.0.0.1", r.udp_port)), "udp send")
}

fn socketpair(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    let ret = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    libc_result(ret, "socketpair")
}

fn connect_host_socket(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    io(
        std::os::unix::net::UnixStream::connect(&r.host_socket),
        "connect to the host socket",
    )
}

fn io_uring_setup(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a null params pointer makes the kernel answer EFAULT without side effects.
    reached(
        unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null_mut::<u8>()) },
        "io_uring_setup",
    )
}

fn fork_once(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: the child exits at once without touching shared state.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => unsafe_exit(0),
        p if p > 0 => {
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(p, std::ptr::null_mut(), 0) };
            Ok("fork: ok".into())
        }
        _ => Err(format!("fork: {}", std::io::Error::last_os_error())),
    }
}

fn clone_process(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a raw clone with SIGCHLD and no stack behaves like fork; the child exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) };
    match pid {
        0 => unsafe_exit(0),
        p if p > 0 => {
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(p as i32, std::ptr::null_mut(), 0) };
            Ok("clone: ok".into())
        }
        _ => Err(format!("clone: {}", std::io::Error::last_os_error())),
    }
}

fn unsafe_exit(code: i32) -> ! {
    // SAFETY: leaving a forked child at once.
    unsafe { libc::_exit(code) }
}

fn execve_bad_pointer(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a null path makes the kernel answer EFAULT; nothing is executed.
    reached(
        unsafe { libc::syscall(libc::SYS_execve, 0usize, 0usize, 0usize) },
        "execve",
    )
}

fn kill_host(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: signal 0 only checks permission; nothing is delivered.
    libc_result(unsafe { libc::kill(r.host_pid as i32, 0) }, "kill(host, 0)")
}

fn kill_worker(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: signal 0 only checks permission; nothing is delivered.
    libc_result(
        unsafe { libc::kill(r.worker_pid as i32, 0) },
        "kill(worker, 0)",
    )
}

fn ptrace_attach(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: pid -1 does not exist: the kernel answers ESRCH and attaches to nothing.
    reached(
        unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, -1, 0, 0) },
        "ptrace",
    )
}

fn setns_bad_fd(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: fd -1 is invalid: EBADF.
    reached(unsafe { libc::syscall(libc::SYS_setns, -1, 0) }, "setns")
}

fn mount_bad_pointer(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a bad target pointer makes the kernel answer EFAULT; nothing is mounted.
    reached(
        unsafe { libc::syscall(libc::SYS_mount, 0usize, 1usize, 0usize, 0usize, 0usize) },
        "mount",
    )
}

fn chroot_bad_pointer(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a bad path pointer: EFAULT.
    reached(unsafe { libc::syscall(libc::SYS_chroot, 1usize) }, "chroot")
}

fn keyctl_bad_id(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: KEYCTL_GET_KEYRING_ID of a nonexistent special id: an error, no side effect.
    reached(
        unsafe { libc::syscall(libc::SYS_keyctl, 0, -100, 0) },
        "keyctl",
    )
}

fn bpf_bad_pointer(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a null attribute pointer: an error, no side effect.
    reached(unsafe { libc::syscall(libc::SYS_bpf, 0, 0usize, 0) }, "bpf")
}

fn perf_event_bad_pointer(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a null attribute pointer: EFAULT, no side effect.
    reached(
        unsafe { libc::syscall(libc::SYS_perf_event_open, 0usize, 0, -1, -1, 0) },
        "perf_event_open",
    )
}

fn tiocsti_bad_fd(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let byte = b'x';
    // SAFETY: fd -1 is invalid: EBADF, nothing is injected.
    reached(
        unsafe { libc::ioctl(-1, libc::TIOCSTI, &byte) } as libc::c_long,
        "ioctl(TIOCSTI)",
    )
}

/// Forks children that stay alive until twice the process limit is reached, then reaps
/// them: bounded even with no sandbox.
fn fork_bomb(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let target = 2 * r.rlimits.processes;
    let mut children = Vec::new();
    let mut failure = None;
    while (children.len() as u64) < target {
        // SAFETY: the child sleeps briefly and exits; it touches no shared state.
        match unsafe { libc::fork() } {
            0 => {
                std::thread::sleep(Duration::from_secs(2));
                unsafe_exit(0)
            }
            p if p > 0 => children.push(p),
            _ => {
                failure = Some(std::io::Error::last_os_error());
                break;
            }
        }
    }
    for child in &children {
        // SAFETY: killing and reaping our own children.
        unsafe {
            libc::kill(*child, libc::SIGKILL);
            libc::waitpid(*child, std::ptr::null_mut(), 0);
        }
    }
    match failure {
        None => Ok(format!("{} processes", children.len())),
        Some(e) => Err(format!(
            "fork failed after {} processes: {e}",
            children.len()
        )),
    }
}

/// Writes twice the file-size limit into the worker dir.
fn big_file(r: &AttemptRequest, ctx: &WorkerContext) -> Result<String, String> {
    let mut file =
        std::fs::File::create(ctx.dir.join("big")).map_err(|e| format!("create: {e}"))?;
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    while written < 2 * r.rlimits.file_size {
        file.write_all(&chunk)
            .map_err(|e| format!("write after {written} bytes: {e}"))?;
        written += chunk.len() as u64;
    }
    Ok(format!("wrote {written} bytes"))
}

/// Maps and touches twice the data limit, in 8 MiB steps.
fn allocate(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    map_twice_the_data_limit(r, libc::MAP_PRIVATE)
}

/// Maps and touches twice the data limit as shared anonymous memory: memory RLIMIT_DATA
/// does not count.
fn map_shared_memory(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    map_twice_the_data_limit(r, libc::MAP_SHARED)
}

/// Maps (`sharing`: private or shared) and touches anonymous memory, 8 MiB at a time, up to
/// twice the data limit.
fn map_twice_the_data_limit(r: &AttemptRequest, sharing: libc::c_int) -> Result<String, String> {
    const STEP: usize = 8 << 20;
    let mut total = 0u64;
    while total < 2 * r.rlimits.data {
        // SAFETY: a fresh anonymous mapping, written only through its own pointer.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STEP,
                libc::PROT_READ | libc::PROT_WRITE,
                sharing | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap after {total} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: ptr points at STEP writable bytes.
        unsafe { std::ptr::write_bytes(ptr.cast::<u8>(), 1, STEP) };
        total += STEP as u64;
    }
    Ok(format!("mapped {total} bytes"))
}

/// A job that only waits: lets a test look at a live job process.
fn sleep_briefly(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    std::thread::sleep(Duration::from_millis(1_500));
    Ok("slept".into())
}

/// A job that does nothing: measures the per-job cost of the sandbox.
fn return_at_once(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    Ok(String::new())
}

/// Descriptors open in this process.
fn open_fds() -> Vec<i32> {
    // SAFETY: F_GETFD only reads a descriptor's flags.
    (0..1024)
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .collect()
}

/// Writes to every descriptor the worker held (but the job's own output pipe, which may
/// reuse one's number) with a null buffer: an open, writable descriptor answers EFAULT and
/// nothing is written; a closed one EBADF; the job's fd filter EPERM.
fn write_inherited_fds(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let fds = WORKER_FDS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut reached = false;
    let mut answers = Vec::new();
    for fd in fds.into_iter().filter(|fd| *fd != OUTPUT_FD) {
        // SAFETY: a null buffer: the kernel copies nothing (EFAULT) if it gets that far.
        let ret = unsafe { libc::write(fd, std::ptr::null(), 1) };
        let err = std::io::Error::last_os_error();
        reached |= ret >= 0 || err.raw_os_error() == Some(libc::EFAULT);
        answers.push(format!("fd {fd}: {err}"));
    }
    let answers = answers.join("; ");
    if reached { Ok(answers) } else { Err(answers) }
}

/// Takes twice the data limit as memfds no larger than the file-size limit, each mapped,
/// touched and its descriptor closed (the mapping keeps the memory): memory neither
/// RLIMIT_DATA nor RLIMIT_FSIZE nor RLIMIT_NOFILE bounds.
fn memfd_memory(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let size = r.rlimits.file_size.min(8 << 20) as usize;
    let mut total = 0u64;
    while total < 2 * r.rlimits.data {
        let failed = |what: &str| {
            Err(format!(
                "{what} after {total} bytes: {}",
                std::io::Error::last_os_error()
            ))
        };
        // SAFETY: a valid name; the new descriptor is ours.
        let fd = unsafe { libc::memfd_create(c"attempt".as_ptr(), 0) };
        if fd < 0 {
            return failed("memfd_create");
        }
        // SAFETY: sizing our own memfd.
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
            return failed("ftruncate");
        }
        // SAFETY: a fresh shared mapping of our own memfd, written only through its pointer.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return failed("mmap(memfd)");
        }
        // SAFETY: ptr points at `size` writable bytes; the descriptor is ours to close.
        unsafe {
            std::ptr::write_bytes(ptr.cast::<u8>(), 1, size);
            libc::close(fd);
        }
        total += size as u64;
    }
    Ok(format!("took {total} bytes through memfds"))
}

/// Maps anonymous memory executable.
fn map_executable(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a fresh anonymous mapping that nothing executes.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(format!(
            "mmap(PROT_EXEC): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok("mapped executable memory".into())
}

/// Makes writable memory executable.
fn make_executable(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a fresh anonymous mapping that nothing executes.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(format!("mmap: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: changing the protection of our own mapping.
    let ret = unsafe { libc::mprotect(ptr, 4096, libc::PROT_READ | libc::PROT_EXEC) };
    libc_result(ret, "mprotect(PROT_EXEC)")
}

/// `clone(CLONE_THREAD | CLONE_NEWUSER)`: the kernel refuses the combination (EINVAL), so
/// reaching it creates nothing.
fn clone_thread_into_namespaces(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    let flags = libc::CLONE_THREAD | libc::CLONE_SIGHAND | libc::CLONE_VM | libc::CLONE_NEWUSER;
    // SAFETY: the kernel rejects these flags together before creating anything.
    reached(
        unsafe { libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0, 0, 0, 0) },
        "clone(CLONE_THREAD | CLONE_NEWUSER)",
    )
}

fn userfaultfd(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: creates at most a descriptor, closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
    if fd >= 0 {
        // SAFETY: closing the descriptor we just got.
        unsafe { libc::close(fd as i32) };
    }
    reached(fd, "userfaultfd")
}

fn process_vm_writev(r: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: a null local iovec: the kernel answers EFAULT (or ESRCH, EPERM) and writes
    // nothing into the host.
    reached(
        unsafe {
            libc::syscall(
                libc::SYS_process_vm_writev,
                r.host_pid as libc::pid_t,
                std::ptr::null::<libc::iovec>(),
                1usize,
                std::ptr::null::<libc::iovec>(),
                1usize,
                0usize,
            )
        },
        "process_vm_writev(host)",
    )
}

fn pidfd_getfd(_: &AttemptRequest, _: &WorkerContext) -> Result<String, String> {
    // SAFETY: an invalid pidfd: EBADF, no descriptor is taken.
    reached(
        unsafe { libc::syscall(libc::SYS_pidfd_getfd, -1, 0, 0) },
        "pidfd_getfd",
    )
}
