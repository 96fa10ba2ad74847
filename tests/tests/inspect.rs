//! `pvf inspect`: the report on real and test code, and the exit codes for bad input.

use pvf_tests::guest_path;

/// Runs `pvf inspect ARGS`; returns (exit code, stdout).
fn inspect(args: &[&str]) -> (i32, String) {
    let args: Vec<&str> = std::iter::once("inspect")
        .chain(args.iter().copied())
        .collect();
    pvf_tests::pvf_cli(None, &args)
}

#[test]
fn corpus_runtimes_are_described_with_supported_and_stubbed_imports() {
    let Some(corpus) = pvf_tests::corpus() else {
        return;
    };
    for path in corpus {
        let path = path.to_str().unwrap();
        let (code, out) = inspect(&["--json", path]);
        assert_eq!(code, 0, "{path}: {out}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["compressed"], true, "{path}");
        assert!(report["code_bytes"].as_u64() > report["blob_bytes"].as_u64());
        let names = |key: &str| -> Vec<String> {
            report["imports"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let (supported, stubbed) = (names("supported"), names("stubbed"));
        assert!(supported.contains(&"env.ext_hashing_blake2_256_version_1".to_string()));
        assert!(supported.contains(&"env.ext_allocator_malloc_version_1".to_string()));
        assert!(stubbed.contains(&"env.ext_storage_get_version_1".to_string()));
        assert!(supported.iter().all(|s| !stubbed.contains(s)));
        assert_eq!(report["memory"]["imported"], true, "{path}");
        let exports = report["exports"].as_array().unwrap();
        assert!(exports.iter().any(|e| e["name"] == "validate_block"));

        let (code, text) = inspect(&[path]);
        assert_eq!(code, 0);
        assert!(text.starts_with("compressed: yes"), "{text}");
        assert!(text.contains("imports stubbed"), "{text}");
    }
}

#[test]
fn a_test_guest_is_uncompressed_with_its_memory_limits() {
    let (code, out) = inspect(&[guest_path("stub-call").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("compressed: no"), "{out}");
    assert!(out.contains("memory: 2 pages initial"), "{out}");
    assert!(out.contains("imports stubbed (1)"), "{out}");
    assert!(out.contains("env.ext_storage_get_version_1"), "{out}");
}

#[test]
fn unreadable_or_unparsable_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(inspect(&["/nonexistent.wasm"]).0, 2);
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0\x05garbage").unwrap();
    assert_eq!(inspect(&[garbage.to_str().unwrap()]).0, 2);
    let bad_wat = dir.path().join("bad.wat");
    std::fs::write(&bad_wat, "(module (func").unwrap();
    assert_eq!(inspect(&[bad_wat.to_str().unwrap()]).0, 2);
    // A code bomb is never inflated past the limit.
    let bomb = dir.path().join("bomb.code");
    std::fs::write(
        &bomb,
        pvf_common::compress::compress(&vec![0; 20 << 20]).unwrap(),
    )
    .unwrap();
    assert_eq!(inspect(&[bomb.to_str().unwrap()]).0, 2);
}
