//! `camseal bench kernels`, run as the real binary: the JSON report's shape (no timing
//! assertions), the printed path name, and argument errors.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

use camseal_kernels::Backend;

fn camseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camseal"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn bench_kernels_writes_the_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kernels.json");
    let out = camseal(&[
        "bench",
        "kernels",
        "--json",
        file.to_str().unwrap(),
        "--seconds",
        "0.01",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let obj = doc.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["path", "results"],
        "top-level keys"
    );
    let path = doc["path"].as_str().unwrap();
    let names = [
        "x86-64/vaes-avx2",
        "x86-64/aesni-clmul",
        "aarch64/aes-pmull",
        "portable",
    ];
    assert!(names.contains(&path), "path {path}");
    // The binary runs the dispatcher's choice, which a CAMSEAL_KERNEL cap may lower.
    if std::env::var_os("CAMSEAL_KERNEL").is_none() {
        assert_eq!(path, Backend::detect().name());
    }
    assert!(stdout.contains(path), "the path is printed: {stdout}");

    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 14);
    let mut seen = BTreeSet::new();
    for r in results {
        let r = r.as_object().unwrap();
        assert_eq!(r.len(), 3, "{r:?}");
        let suite = r["suite"].as_str().unwrap();
        assert!(suite == "aes-128-gcm" || suite == "aes-256-gcm", "{suite}");
        let bytes = r["bytes"].as_u64().unwrap();
        let gbps = r["gb_per_s"].as_f64().unwrap();
        assert!(gbps.is_finite() && gbps > 0.0, "{r:?}");
        assert!(
            seen.insert((suite.to_string(), bytes)),
            "duplicate {suite} {bytes}"
        );
    }
    for suite in ["aes-128-gcm", "aes-256-gcm"] {
        for bytes in [64, 256, 1500, 16384, 65536, 262144, 1048576] {
            assert!(
                seen.contains(&(suite.to_string(), bytes)),
                "{suite} {bytes}"
            );
        }
    }
}

#[test]
fn bench_rejects_bad_seconds_and_missing_kind() {
    for bad in ["0", "-1", "nan", "1000"] {
        let out = camseal(&["bench", "kernels", "--seconds", bad]);
        assert!(!out.status.success(), "--seconds {bad} accepted");
    }
    let out = camseal(&["bench"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bench kernels"), "{stderr}");
}
