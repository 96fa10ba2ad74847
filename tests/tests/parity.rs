//! Parity with Polkadot's PVF host, through the real workers: each behaviour that issue 12
//! found different, with the verdict, stage and kind Polkadot's host gives (`docs/parity.md`
//! has the source for each).

use std::sync::Arc;

use parity_scale_codec::Encode;
use pvf_common::error::PrepareError;
use pvf_common::params::{ExecKind, ExecutorParams};
use pvf_common::validation::MAX_MESSAGES;
use pvf_host::{PrecheckError, ValidationHost, Verdict};
use pvf_tests::{execute, host_config, pvf_cli, start_host, validation_params};

async fn host(cache: &tempfile::TempDir) -> ValidationHost {
    start_host(host_config(cache.path())).await
}

/// The verdict for `wat` on `block_data` (backing).
async fn verdict(host: &ValidationHost, wat: &str, block_data: &[u8]) -> Verdict {
    let code = wat::parse_str(wat).unwrap();
    let params = ExecutorParams::default();
    let vp = validation_params(&[], block_data);
    execute(host, &code, &params, &vp, ExecKind::Backing)
        .await
        .verdict
}

async fn precheck(host: &ValidationHost, wat: &str) -> Result<(), PrepareError> {
    let code = Arc::new(wat::parse_str(wat).unwrap());
    match host.precheck(code, ExecutorParams::default()).await {
        Ok(_) => Ok(()),
        Err(PrecheckError::Prepare(e)) => Err(e),
        Err(e) => panic!("{e}"),
    }
}

/// (class, stage, kind) of a verdict.
fn class(verdict: &Verdict) -> (&'static str, &'static str, Option<&'static str>) {
    (
        verdict.class(),
        verdict.stage().as_str(),
        verdict.reason().map(|r| r.kind()),
    )
}

/// A module with `imports`, an exported memory of `pages`, `__heap_base` at 64 KiB, and
/// `body`.
fn module(imports: &str, pages: &str, body: &str) -> String {
    format!(
        r#"(module {imports} (memory (export "memory") {pages})
            (global (export "__heap_base") i32 (i32.const 65536)) {body})"#
    )
}

/// `validate_block` returning an empty result (12 zero bytes at address 0).
const EMPTY_RESULT: &str = r#"(func (export "validate_block") (param i32 i32) (result i64)
    (i64.const 0x0000000c00000000))"#;

#[tokio::test]
async fn sign_extension_is_refused_at_preparation() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let wat = module(
        "",
        "1",
        r#"(func (export "validate_block") (param i32 i32) (result i64)
            (drop (i32.extend8_s (local.get 0))) (i64.const 0x0000000c00000000))"#,
    );
    let err = precheck(&host, &wat).await.unwrap_err();
    assert!(err.is_deterministic(), "{err}");
    let verdict = verdict(&host, &wat, &[]).await;
    assert_eq!(
        class(&verdict),
        ("Internal", "prepare", Some("preparation")),
        "{verdict}"
    );
}

#[tokio::test]
async fn a_declared_memory_maximum_does_not_bound_growth_or_the_allocator() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    // Declares at most 2 pages, grows by 10 and allocates 1 MiB: both fit the 2,080-page
    // bound, which is the only one Polkadot's host applies.
    let wat = module(
        r#"(import "env" "ext_allocator_malloc_version_1" (func $malloc (param i32) (result i32)))"#,
        "2 2",
        r#"(func (export "validate_block") (param i32 i32) (result i64)
            (if (i32.eq (memory.grow (i32.const 10)) (i32.const -1)) (then unreachable))
            (drop (call $malloc (i32.const 1048576)))
            (i64.const 0x0000000c00000000))"#,
    );
    let verdict = verdict(&host, &wat, &[]).await;
    assert!(matches!(verdict, Verdict::Valid(_)), "{verdict}");
}

#[tokio::test]
async fn a_memory_import_from_any_module_is_the_modules_memory() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let importing = |module: &str, name: &str| {
        format!(
            r#"(module (import "{module}" "{name}" (memory 1))
                (global (export "__heap_base") i32 (i32.const 1024)) {EMPTY_RESULT})"#
        )
    };
    let verdict_of = |wat: String| {
        let host = host.clone();
        async move { verdict(&host, &wat, &[]).await }
    };
    let v = verdict_of(importing("anything", "memory")).await;
    assert!(matches!(v, Verdict::Valid(_)), "{v}");
    // Exported under the import's name: with another name the call has no `memory`.
    let v = verdict_of(importing("env", "heap")).await;
    assert_eq!(
        class(&v),
        ("Invalid", "execute", Some("bad_interface")),
        "{v}"
    );
    // Imported and exported again as `memory`: two exports of that name, invalid code.
    let twice = r#"(module (import "env" "memory" (memory 1)) (export "memory" (memory 0)))"#;
    assert!(precheck(&host, twice).await.unwrap_err().is_deterministic());
}

#[tokio::test]
async fn imports_the_host_does_not_provide_fail_runtime_construction() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    for import in [
        r#"(import "other" "f" (func))"#,
        r#"(import "env" "ext_allocator_malloc_version_1" (func (param i64) (result i32)))"#,
        r#"(import "env" "t" (table 1 funcref))"#,
    ] {
        let wat = module(import, "1", EMPTY_RESULT);
        let v = verdict(&host, &wat, &[]).await;
        assert_eq!(
            class(&v),
            ("PossiblyInvalid", "execute", Some("instantiation")),
            "{import}: {v}"
        );
        // A pre-check builds the runtime too: neither accepted nor rejected.
        let cache = tempfile::tempdir().unwrap();
        let fresh = start_host(host_config(cache.path())).await;
        let err = precheck(&fresh, &wat).await.unwrap_err();
        assert!(
            matches!(err, PrepareError::RuntimeConstruction(_)) && !err.is_deterministic(),
            "{import}: {err}"
        );
    }
}

#[tokio::test]
async fn instantiation_failures_are_possibly_invalid() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    for wat in [
        module(
            "",
            "1",
            &format!("(func $s unreachable) (start $s) {EMPTY_RESULT}"),
        ),
        module("", "2081", EMPTY_RESULT),
    ] {
        precheck(&host, &wat).await.unwrap();
        let v = verdict(&host, &wat, &[]).await;
        assert_eq!(
            class(&v),
            ("PossiblyInvalid", "execute", Some("instantiation")),
            "{v}"
        );
    }
}

#[tokio::test]
async fn a_missing_entry_point_or_heap_base_prepares_and_is_invalid_when_executed() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    for wat in [
        module("", "1", ""),
        module(
            "",
            "1",
            r#"(func (export "validate_block") (param i32) (result i64) (i64.const 0))"#,
        ),
        format!(r#"(module (memory (export "memory") 1) {EMPTY_RESULT})"#),
        format!(r#"(module (global (export "__heap_base") i32 (i32.const 0)) {EMPTY_RESULT})"#),
    ] {
        precheck(&host, &wat).await.unwrap();
        let v = verdict(&host, &wat, &[]).await;
        assert_eq!(
            class(&v),
            ("Invalid", "execute", Some("bad_interface")),
            "{v}"
        );
    }
}

/// Returns a result with as many upward messages (empty) as the u32 in its block data says.
const MESSAGES: &str = r#"(module
    (memory (export "memory") 2)
    (global (export "__heap_base") i32 (i32.const 65536))
    (func (export "validate_block") (param $ptr i32) (param $len i32) (result i64)
        (local $n i32) (local $at i32)
        ;; The block data is a Vec<u8> after an empty parent head: compact(4), then the u32.
        (local.set $n (i32.load offset=2 (local.get $ptr)))
        ;; head_data: empty; new_validation_code: None; upward: compact(n) in four bytes.
        (i32.store (i32.const 2) (i32.or (i32.shl (local.get $n) (i32.const 2)) (i32.const 2)))
        ;; n empty messages (zero bytes are already there), no horizontal messages, two u32s.
        (local.set $at (i32.add (i32.const 6) (i32.add (local.get $n) (i32.const 9))))
        (i64.or (i64.shl (i64.extend_i32_u (local.get $at)) (i64.const 32)) (i64.const 0))))"#;

#[tokio::test]
async fn more_than_16384_messages_are_a_bad_result() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    let at_most = verdict(&host, MESSAGES, &MAX_MESSAGES.to_le_bytes()).await;
    let Verdict::Valid(result) = &at_most else {
        panic!("{at_most}");
    };
    assert_eq!(result.upward_messages.len(), MAX_MESSAGES as usize);
    let over = verdict(&host, MESSAGES, &(MAX_MESSAGES + 1).to_le_bytes()).await;
    assert_eq!(
        class(&over),
        ("Invalid", "execute", Some("bad_result")),
        "{over}"
    );
}

#[tokio::test]
async fn a_result_larger_than_64_mib_reaches_the_caller() {
    let cache = tempfile::tempdir().unwrap();
    let host = host(&cache).await;
    // Head data of 65 MiB: compact(len) in four bytes at 0, then zeros, then the other
    // fields (all zero). 1,100 pages hold it, with the heap (and the params) in the last.
    let len: u32 = 65 * 1024 * 1024;
    let wat = format!(
        r#"(module (memory (export "memory") 1100)
            (global (export "__heap_base") i32 (i32.const {heap}))
            (func (export "validate_block") (param i32 i32) (result i64)
                (i32.store (i32.const 0) (i32.const {compact}))
                (i64.const {packed})))"#,
        heap = 1099 * 65536,
        compact = (len << 2) | 2,
        packed = u64::from(4 + len + 11) << 32,
    );
    let v = verdict(&host, &wat, &[]).await;
    let Verdict::Valid(result) = &v else {
        panic!("{v}");
    };
    assert_eq!(result.head_data.len(), len as usize);
    assert!(result.encode().len() > 64 * 1024 * 1024);
}

#[tokio::test]
async fn validate_json_says_where_a_verdict_came_from() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, wat: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, wat).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let trap = write(
        "trap.wat",
        &module(
            "",
            "1",
            r#"(func (export "validate_block") (param i32 i32) (result i64) unreachable)"#,
        ),
    );
    let sign_ext = write(
        "sign-ext.wat",
        &module(
            "",
            "1",
            r#"(func (export "validate_block") (param i32 i32) (result i64)
                (i64.extend_i32_s (i32.extend8_s (local.get 0))))"#,
        ),
    );
    let foreign = write(
        "foreign.wat",
        &module(r#"(import "x" "f" (func))"#, "1", EMPTY_RESULT),
    );
    let valid = write("valid.wat", &module("", "1", EMPTY_RESULT));
    let json = |args: &[&str]| {
        let (exit, out) = pvf_cli(Some(cache.path()), args);
        let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let field = |name: &str| value[name].as_str().map(str::to_owned);
        (exit, field("verdict"), field("stage"), field("kind"))
    };
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        json(&["validate", &trap, "--json"]),
        (1, s("Invalid"), s("execute"), s("trap"))
    );
    assert_eq!(
        json(&["validate", &sign_ext, "--json"]),
        (3, s("Internal"), s("prepare"), s("preparation"))
    );
    assert_eq!(
        json(&["validate", &foreign, "--json"]),
        (3, s("PossiblyInvalid"), s("execute"), s("instantiation"))
    );
    assert_eq!(
        json(&["validate", &valid, "--json"]),
        (0, s("Valid"), s("execute"), None)
    );
    // A pre-check judges the code.
    assert_eq!(
        json(&["prepare", &sign_ext, "--json"]),
        (1, s("Invalid"), s("prepare"), s("preparation"))
    );
    // `batch` prints the same fields per request.
    let requests = dir.path().join("requests.jsonl");
    let line = |code: &str| serde_json::json!({"code": code}).to_string();
    std::fs::write(&requests, format!("{}\n{}\n", line(&trap), line(&foreign))).unwrap();
    let (_, out) = pvf_cli(Some(cache.path()), &["batch", requests.to_str().unwrap()]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "trap");
    assert_eq!(lines[1]["stage"], "execute");
    assert_eq!(lines[1]["kind"], "instantiation");
}
