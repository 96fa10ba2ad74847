//! Helpers for the integration tests: build and locate the real worker binaries, load the
//! test guests, encode params, and find the corpus. [`escape`] holds the escape attempts
//! that the test-only workers run.

pub mod escape;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use parity_scale_codec::Encode;
use pvf_common::validation::ValidationParams;

/// The built binaries the tests drive.
pub struct Binaries {
    /// The `pvf` CLI.
    pub pvf: PathBuf,
    /// The prepare worker.
    pub prepare_worker: PathBuf,
    /// The execute worker.
    pub execute_worker: PathBuf,
    /// The test-only prepare worker that runs escape attempts.
    pub escape_prepare: PathBuf,
    /// The test-only execute worker that runs escape attempts.
    pub escape_execute: PathBuf,
}

/// Builds the binaries once per test process (with the profile the tests were built with)
/// and returns their paths. Tests never assume the binaries already exist.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut build = Command::new(cargo);
        build.current_dir(workspace_root()).args([
            "build",
            "--bins",
            "-p",
            "pvf-prepare-worker",
            "-p",
            "pvf-execute-worker",
            "-p",
            "pvf-host",
            "-p",
            "pvf-tests",
        ]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("running cargo build for the worker binaries");
        assert!(status.success(), "building the worker binaries failed");
        // Test executables live in target/<profile>/deps; the binaries one level up.
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> dir")
            .to_path_buf();
        binaries_in(&dir)
    })
}

/// The binaries in `dir`.
pub fn binaries_in(dir: &Path) -> Binaries {
    Binaries {
        pvf: dir.join("pvf"),
        prepare_worker: dir.join("pvf-prepare-worker"),
        execute_worker: dir.join("pvf-execute-worker"),
        escape_prepare: dir.join("pvf-escape-prepare"),
        escape_execute: dir.join("pvf-escape-execute"),
    }
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The path of a test guest's WAT source.
pub fn guest_path(name: &str) -> PathBuf {
    workspace_root()
        .join("tests/guests")
        .join(format!("{name}.wat"))
}

/// A test guest compiled to Wasm.
pub fn guest(name: &str) -> Vec<u8> {
    wat::parse_file(guest_path(name)).unwrap_or_else(|e| panic!("guest {name}: {e}"))
}

/// Params for the adder guest: head = `parent + add`, watermark = `relay`.
pub fn adder_params(parent: u64, add: u64, relay: u32) -> Vec<u8> {
    ValidationParams {
        parent_head: parent.to_le_bytes().to_vec(),
        block_data: add.to_le_bytes().to_vec(),
        relay_parent_number: relay,
        relay_parent_storage_root: [0; 32],
    }
    .encode()
}

/// SCALE `ValidationParams` with the given head and block data (relay fields zero).
pub fn validation_params(parent_head: &[u8], block_data: &[u8]) -> Vec<u8> {
    ValidationParams {
        parent_head: parent_head.to_vec(),
        block_data: block_data.to_vec(),
        relay_parent_number: 0,
        relay_parent_storage_root: [0; 32],
    }
    .encode()
}

/// The head the adder guest returns for `parent + add`.
pub fn adder_head(parent: u64, add: u64) -> Vec<u8> {
    parent.wrapping_add(add).to_le_bytes().to_vec()
}

/// The real parachain runtimes in `../shared/corpus`, or `None` (with the reason printed)
/// where the corpus is not present.
pub fn corpus() -> Option<Vec<PathBuf>> {
    let dir = workspace_root().join("../shared/corpus");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "code"))
            .collect(),
        Err(e) => {
            eprintln!("SKIP: no corpus at {}: {e}", dir.display());
            return None;
        }
    };
    files.sort();
    Some(files)
}

/// A host configuration that uses the freshly built workers and `cache_dir`.
pub fn host_config(cache_dir: &Path) -> pvf_host::Config {
    let bins = binaries();
    let mut config = pvf_host::Config::new(cache_dir.to_path_buf());
    config.prepare_worker = bins.prepare_worker.clone();
    config.execute_worker = bins.execute_worker.clone();
    config
}

/// Starts a host on `config` and spawns its future on the current runtime.
pub async fn start_host(config: pvf_host::Config) -> pvf_host::ValidationHost {
    let (host, future) = pvf_host::start(config).await.expect("host starts");
    tokio::spawn(future);
    host
}

/// Starts a host on `config`; returns the handle and the task running it, so a test can
/// stop the host (drop every handle, await the task) and start another on the same cache.
pub async fn start_host_task(
    config: pvf_host::Config,
) -> (pvf_host::ValidationHost, tokio::task::JoinHandle<()>) {
    let (host, future) = pvf_host::start(config).await.expect("host starts");
    (host, tokio::spawn(future))
}

/// Stops a host started by [`start_host_task`]: it releases the cache when this returns.
pub async fn stop_host(host: pvf_host::ValidationHost, task: tokio::task::JoinHandle<()>) {
    drop(host);
    task.await.expect("the host task ends cleanly");
}

/// Validates `validation_params` against `code` and returns the outcome.
pub async fn execute(
    host: &pvf_host::ValidationHost,
    code: &[u8],
    params: &pvf_common::params::ExecutorParams,
    validation_params: &[u8],
    kind: pvf_common::params::ExecKind,
) -> pvf_host::Execution {
    host.execute(pvf_host::ExecuteArgs {
        code: std::sync::Arc::new(code.to_vec()),
        executor_params: params.clone(),
        validation_params: std::sync::Arc::new(validation_params.to_vec()),
        kind,
        timeout: None,
    })
    .await
    .expect("the host takes the request")
}

/// Child processes of this process whose command line contains `name`.
pub fn child_processes(name: &str) -> Vec<i32> {
    children_of(std::process::id() as i32)
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(name)
        })
        .collect()
}

/// Child processes of `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    let parent = parent.to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 4 (after the parenthesised command) is the parent pid.
            let ppid = stat
                .rsplit(") ")
                .next()
                .and_then(|rest| rest.split(' ').nth(1));
            ppid == Some(parent.as_str())
        })
        .collect()
}

/// Live (not zombie) processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(") ")
                .next()
                .is_some_and(|rest| rest.starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .collect()
}

/// Serializes tests whose assertions depend on getting CPU time (a time limit measured
/// against its wall-clock backstop) with tests that burn every core (compiling the corpus).
/// On a 2-core machine, running them side by side would starve the timed job.
pub fn cpu_heavy() -> &'static tokio::sync::Mutex<()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    &LOCK
}

/// The adder guest made distinct by a trailing custom section holding `n`: same behaviour,
/// another code hash, so another artifact.
pub fn adder_variant(n: u32) -> Vec<u8> {
    variant_of(guest("adder"), n)
}

/// `code` with a trailing custom section holding `n`.
fn variant_of(mut code: Vec<u8>, n: u32) -> Vec<u8> {
    let payload = n.to_le_bytes();
    // Custom section: id 0, size, name length 1, name "n", then the payload.
    code.extend_from_slice(&[0, 2 + payload.len() as u8, 1, b'n']);
    code.extend_from_slice(&payload);
    code
}

/// A valid guest whose compilation takes tens of milliseconds of CPU on any machine (about
/// 60 ms here): many functions with long bodies. Tests that need a preparation to miss a
/// 1 ms limit, or a preparation to stay in progress while a test acts, use it: the adder can
/// compile within 1 ms on a fast, idle machine. Each `n` gives another code hash.
pub fn slow_to_compile_guest(n: u32) -> Vec<u8> {
    let body: String = (0..20)
        .map(|i| {
            format!(
                "(local.set $x (i32.add (i32.mul (local.get $x) (i32.const {})) \
                 (i32.load (local.get $x))))",
                i + 3
            )
        })
        .collect();
    let functions: String = (0..300)
        .map(|i| {
            format!("(func (export \"f{i}\") (param $x i32) (result i32) {body} (local.get $x))\n")
        })
        .collect();
    let module = format!(
        "(module (memory (export \"memory\") 2) \
         (global (export \"__heap_base\") i32 (i32.const 65536)) \
         (func (export \"validate_block\") (param i32 i32) (result i64) unreachable)\n\
         {functions})"
    );
    variant_of(
        wat::parse_str(module).expect("the generated guest is valid WAT"),
        n,
    )
}

/// Runs the `pvf` CLI (with `--cache-dir` when given); returns its exit code and stdout.
pub fn pvf_cli(cache: Option<&Path>, args: &[&str]) -> (i32, String) {
    let mut command = Command::new(&binaries().pvf);
    if let Some(cache) = cache {
        command.arg("--cache-dir").arg(cache);
    }
    let out = command.args(args).output().expect("run pvf");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Validates the adder `code` on `parent + add` and asserts it is Valid with that head.
pub async fn assert_adder_valid(
    host: &pvf_host::ValidationHost,
    code: &[u8],
    parent: u64,
    add: u64,
) {
    let out = execute(
        host,
        code,
        &pvf_common::params::ExecutorParams::default(),
        &adder_params(parent, add, 0),
        pvf_common::params::ExecKind::Backing,
    )
    .await;
    assert!(
        matches!(&out.verdict, pvf_host::Verdict::Valid(r) if r.head_data == adder_head(parent, add)),
        "{}",
        out.verdict
    );
}

/// Whether any thread of a process is in state R (running or runnable).
pub fn is_running(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).any(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        stat.rsplit(") ")
            .next()
            .is_some_and(|rest| rest.starts_with('R'))
    })
}

/// The execute jobs running now under the host whose cache is `cache`, as (worker, job)
/// pids. A job is the child of its artifact's holder, the worker's child; a job forked ahead
/// of time sleeps on its input pipe until it gets work.
pub fn running_execute_jobs(cache: &Path) -> Vec<(i32, i32)> {
    let workers = child_processes(&format!("{}/workers/execute-", cache.display()));
    workers
        .into_iter()
        .flat_map(|worker| {
            children_of(worker)
                .into_iter()
                .flat_map(children_of)
                .filter(|job| is_running(*job))
                .map(move |job| (worker, job))
        })
        .collect()
}
