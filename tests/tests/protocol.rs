//! The host–worker protocol against a worker that breaks it on purpose
//! (`pvf-rogue-execute`, the common worker runner with a loop of its own). Every request
//! carries a fresh nonce the answer must echo, and nothing may arrive before a request or
//! after its answer. A violation is never a verdict on the candidate: it is Internal, a
//! security event, and the worker is killed and replaced.

use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_host::Verdict;
use pvf_tests::{adder_params, binaries, execute, guest, host_config, metric, start_host};

/// What two executions on a host whose execute workers run `pvf-rogue-execute` under
/// `mode` gave.
struct Run {
    verdicts: Vec<Verdict>,
    protocol_events: f64,
    spawned: f64,
    retired: f64,
}

async fn run(mode: &str) -> Run {
    let links = tempfile::tempdir().unwrap();
    let worker = links.path().join(format!("pvf-rogue-execute-{mode}"));
    std::os::unix::fs::symlink(&binaries().rogue_execute, &worker).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut config = host_config(cache.path());
    config.execute_worker = worker;
    // Secure mode: the rogue behaves in the start-up self-test, then misbehaves.
    let host = start_host(config).await;
    let (code, params) = (guest("adder"), ExecutorParams::default());
    let mut verdicts = Vec::new();
    for add in [1, 2] {
        let out = execute(
            &host,
            &code,
            &params,
            &adder_params(1, add, 0),
            ExecKind::Backing,
        )
        .await;
        verdicts.push(out.verdict);
    }
    let metrics = host.metrics();
    Run {
        verdicts,
        protocol_events: metric(metrics, "pvf_security_events", "kind=\"protocol\""),
        spawned: metric(metrics, "polkadot_pvf_worker_spawned", "flavor=\"execute\""),
        retired: metric(metrics, "polkadot_pvf_worker_retired", "flavor=\"execute\""),
    }
}

/// Each request met a protocol violation: Internal, counted, and a fresh worker for each.
async fn assert_violation_each_time(mode: &str) {
    let run = run(mode).await;
    for verdict in &run.verdicts {
        assert!(
            matches!(verdict, Verdict::Internal(reason) if reason.to_string().contains("protocol")),
            "{mode}: {verdict}"
        );
    }
    assert_eq!(run.protocol_events, 2.0, "{mode}: security events");
    assert_eq!(
        (run.spawned, run.retired),
        (2.0, 2.0),
        "{mode}: each request killed its worker and the next got a new one"
    );
}

#[tokio::test]
async fn an_answer_with_another_nonce_is_internal_and_replaces_the_worker() {
    assert_violation_each_time("wrong-nonce").await;
}

#[tokio::test]
async fn an_extra_frame_after_the_answer_is_internal_and_replaces_the_worker() {
    assert_violation_each_time("extra-frame").await;
}

#[tokio::test]
async fn a_frame_before_any_request_is_internal_and_replaces_the_worker() {
    assert_violation_each_time("early-frame").await;
}

/// The negative control: the same worker, well-behaved, is believed (its forged head is
/// what it answered) and kept.
#[tokio::test]
async fn a_well_behaved_worker_is_answered_and_kept() {
    let run = run("honest").await;
    for verdict in &run.verdicts {
        assert!(
            matches!(verdict, Verdict::Valid(result) if result.head_data == [42]),
            "{verdict}"
        );
    }
    assert_eq!(run.protocol_events, 0.0);
    assert_eq!((run.spawned, run.retired), (1.0, 0.0));
}
