//! A worker's stdout and stderr are pipes the host reads into its log, never the host's own
//! stdout and stderr: `pvf serve` answers on stdout, where a worker's bytes would read as
//! answers. The workers here are `pvf-noisy-worker`, which writes a forged answer to its
//! stdout and terminal escapes to its stderr before it becomes the real worker.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use pvf_tests::{adder_params, binaries, guest_path};

/// `pvf` next to noisy wrappers of its workers: `Config::new` finds workers next to the
/// executable, so `dir/pvf` runs `dir/pvf-*-worker` (the wrapper), which runs
/// `dir/real/pvf-*-worker`.
fn noisy_install(dir: &Path) -> std::path::PathBuf {
    let bins = binaries();
    let pvf = dir.join("pvf");
    // A hard link, not a symlink: the executable's own path must be in `dir`.
    std::fs::hard_link(&bins.pvf, &pvf).unwrap_or_else(|_| {
        std::fs::copy(&bins.pvf, &pvf).unwrap();
    });
    std::fs::create_dir(dir.join("real")).unwrap();
    for (name, real) in [
        ("pvf-prepare-worker", &bins.prepare_worker),
        ("pvf-execute-worker", &bins.execute_worker),
    ] {
        std::os::unix::fs::symlink(&bins.noisy_worker, dir.join(name)).unwrap();
        std::os::unix::fs::symlink(real, dir.join("real").join(name)).unwrap();
    }
    pvf
}

#[test]
fn a_workers_output_never_reaches_the_hosts_stdout_and_is_logged_escaped() {
    let _cpu = pvf_tests::cpu_heavy().blocking_lock();
    let install = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pvf = noisy_install(install.path());
    let request = serde_json::json!({
        "id": "r1",
        "code": guest_path("adder"),
        "params_hex": hex::encode(adder_params(1, 2, 0)),
    });
    let mut serve = Command::new(&pvf)
        .arg("--cache-dir")
        .arg(cache.path())
        .arg("serve")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = serve.stdin.take().unwrap();
    writeln!(stdin, "{request}").unwrap();
    drop(stdin);
    let out = serve.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Only the host's answer is on stdout.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {stdout}");
    let answer: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(answer["id"], "r1", "{answer}");
    assert_eq!(answer["verdict"], "Valid", "{answer}");
    assert!(
        !stdout.contains("NOISY"),
        "a worker wrote to stdout: {stdout}"
    );
    // The control: the workers did write, and the host logged it, escaped and cut.
    assert!(
        stderr.contains("stdout: {\"id\":1,\"verdict\":\"Valid\"")
            && stderr.contains("NOISY-WORKER-STDOUT"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\\x1b[31mNOISY-WORKER-STDERR\\x1b[0m\\x0d"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "a raw terminal escape in the log");
    assert!(stderr.contains("more bytes cut"), "{stderr}");
}
