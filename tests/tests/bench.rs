//! `pvf bench --quick --json` end to end: every scenario runs through the real workers and
//! sandbox, and the file holds DESIGN.md's schema with measured (positive, ordered) values.
//! The corpus is left out to keep it fast; its scenarios are covered by the same code paths.

use std::process::Command;

use pvf_tests::binaries;
use serde_json::Value;

fn number(value: &Value, path: &str) -> f64 {
    let mut at = value;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {at}"))
}

#[test]
fn quick_bench_writes_the_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let out = Command::new(&binaries().pvf)
        .args(["bench", "--quick", "--corpus"])
        .arg(dir.path().join("no-corpus"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run pvf bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pvf bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tiny latency p50"), "no table: {stdout}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON file")).expect("JSON");
    assert_eq!(report["machine"]["sandbox"], "enforce");
    assert!(number(&report, "machine.cores") >= 1.0);
    for path in [
        "tiny_latency.p50_ms",
        "tiny_latency.p99_ms",
        "tiny_latency.baseline_p50_ms",
        "tiny_latency_spaced.p50_ms",
        "tiny_latency_spaced.gap_ms",
        "tiny_throughput.jobs_per_s",
        "tiny_throughput.workers",
        "cpu_throughput.jobs_per_s",
        "cpu_throughput.baseline_jobs_per_s",
        "cpu_throughput.ratio",
        "restart.cold_ms",
        "restart.warm_ms",
        "restart.ratio",
    ] {
        assert!(number(&report, path) > 0.0, "{path} is not positive");
    }
    assert!(number(&report, "tiny_latency.p99_ms") >= number(&report, "tiny_latency.p50_ms"));
    // A round trip through processes cannot beat a call in the same process.
    assert!(
        number(&report, "tiny_latency.p50_ms") > number(&report, "tiny_latency.baseline_p50_ms")
    );
    assert_eq!(report["runtime_latency"], Value::Array(Vec::new()));
    assert_eq!(report["runtime_latency_spaced"], Value::Array(Vec::new()));
    assert!(stdout.contains("tiny latency p50, 5 ms apart"), "{stdout}");
    let prepare = report["prepare"].as_array().expect("prepare is a list");
    assert_eq!(prepare.len(), 1, "the adder guest, no corpus: {prepare:?}");
    assert_eq!(prepare[0]["code"], "adder");
    for key in ["ms", "baseline_ms", "ratio"] {
        assert!(number(&prepare[0], key) > 0.0, "prepare.{key}");
    }
}
