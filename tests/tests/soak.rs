//! A short chaos soak in the test command: `pvf soak --minutes 1` through the real binaries
//! must keep every invariant it checks (see `host/src/cli/soak`). The long soak is the same
//! command with more minutes.

use pvf_tests::{binaries, cpu_heavy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_chaos_breaks_no_promise() {
    let _cpu = cpu_heavy().lock().await;
    let out = std::process::Command::new(&binaries().pvf)
        .args(["soak", "--minutes", "1"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("7 passed, 0 failed"), "{stdout}");
    assert!(
        !stdout.contains("faults: 0 "),
        "faults were injected: {stdout}"
    );
}
