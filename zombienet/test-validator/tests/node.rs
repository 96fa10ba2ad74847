//! The test validator as zombienet runs it, without zombienet: two nodes agree, a restarted
//! node validates from its cache, it serves its metrics, and a killed node leaves no worker
//! behind. Runs the real binary with the real workers next to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a node with its base path in `base`, an ephemeral metrics port and short rounds.
fn node(base: &Path, extra: &[&str]) -> Child {
    // Builds the workers into the dir the validator binary is in, where it looks for them.
    pvf_tests::binaries();
    Command::new(env!("CARGO_BIN_EXE_pvf-test-validator"))
        .arg("--base-path")
        .arg(base)
        .args(["--prometheus-port", "0", "--round-interval-ms", "10"])
        .args(["--name", "alice", "--validator", "--rpc-cors", "all"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning pvf-test-validator")
}

/// Runs a node for `rounds` rounds and returns its log.
fn run_rounds(base: &Path, rounds: u32) -> String {
    let child = node(base, &["--rounds", &rounds.to_string()]);
    let output = child.wait_with_output().expect("waiting for the node");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "node failed: {log}");
    log
}

/// `candidate=… verdict=… digest=…` of every verdict line, in order.
fn verdicts(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.split_once(" verdict candidate="))
        .map(|(_, rest)| rest.split(" reason=").next().unwrap_or(rest).to_string())
        .collect()
}

#[test]
fn two_nodes_agree_and_a_restarted_node_validates_from_its_cache() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = run_rounds(a.path(), 2);
    let other = run_rounds(b.path(), 2);
    assert_eq!(
        verdicts(&first).len(),
        10,
        "two rounds of five guests: {first}"
    );
    assert_eq!(verdicts(&first), verdicts(&other));
    assert!(first.contains("candidate=adder#1 verdict=Valid"), "{first}");
    assert!(
        first.contains("candidate=trap#0 verdict=Invalid"),
        "{first}"
    );

    let again = run_rounds(a.path(), 1);
    assert_eq!(again.matches("cached=true").count(), 5, "{again}");
    assert!(!again.contains("cached=false"), "{again}");
    assert_eq!(verdicts(&again)[..], verdicts(&first)[..5]);
}

#[test]
fn serves_metrics_and_a_killed_node_leaves_no_worker_behind() {
    let base = tempfile::tempdir().unwrap();
    let mut child = node(base.path(), &[]);
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let addr = read_until(&mut stderr, "starting")
        .split(" metrics=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the starting line names the metrics address")
        .to_string();
    read_until(&mut stderr, "verdict candidate=stub-call#0");

    let metrics = scrape(&addr);
    assert!(
        metrics.contains("substrate_process_start_time_seconds "),
        "{metrics}"
    );
    assert!(
        metrics.contains("polkadot_pvf_prepare_concluded 5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("polkadot_pvf_execution_time_bucket{le=\"2\"}"),
        "{metrics}"
    );

    assert!(
        !processes_under(base.path()).is_empty(),
        "the node has workers"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the node");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_under(base.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_under(base.path()), Vec::<i32>::new(), "survivors");
}

/// Reads log lines until one contains `needle`, and returns it.
fn read_until(stderr: &mut BufReader<ChildStderr>, needle: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stderr.read_line(&mut line).expect("reading the node's log");
        assert!(n > 0, "the node exited before logging {needle:?}");
        if line.contains(needle) {
            return line;
        }
    }
}

fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connecting to the metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("sending the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("reading the response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    response
}

/// Processes whose command line names `dir`: the node and its workers (their worker dirs are
/// inside the node's base path).
fn processes_under(dir: &Path) -> Vec<i32> {
    pvf_tests::processes_matching(&dir.to_string_lossy())
}
