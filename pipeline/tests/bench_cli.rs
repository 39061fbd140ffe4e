//! `camseal bench kernels`, run as the real binary: the JSON report's shape, AEAD-alone and
//! sealed-then-hashed rows (no timing assertions), the printed path name, and argument
//! errors.

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
    assert_eq!(results.len(), SUITES.len() * SIZES.len(), "rows");
    let mut seen = BTreeSet::new();
    for r in results {
        let r = r.as_object().unwrap();
        assert_eq!(r.len(), 3, "{r:?}");
        let suite = r["suite"].as_str().unwrap();
        assert!(SUITES.contains(&suite), "{suite}");
        let bytes = r["bytes"].as_u64().unwrap();
        let gbps = r["gb_per_s"].as_f64();
        assert!(
            gbps.is_some_and(|g| g.is_finite() && g > 0.0),
            "gb_per_s is not a positive number: {r:?}"
        );
        assert!(
            seen.insert((suite.to_string(), bytes)),
            "duplicate {suite} {bytes}"
        );
    }
    for suite in SUITES {
        for bytes in SIZES {
            assert!(
                seen.contains(&(suite.to_string(), bytes)),
                "missing {suite} {bytes}"
            );
        }
        assert!(stdout.contains(suite), "{suite} is printed: {stdout}");
    }
    // The AEAD-alone rows keep their place at the head of the list, in their old order,
    // for the tools that read them by position.
    let head: Vec<_> = results[..14]
        .iter()
        .map(|r| (r["suite"].as_str().unwrap(), r["bytes"].as_u64().unwrap()))
        .collect();
    let old: Vec<_> = ["aes-128-gcm", "aes-256-gcm"]
        .into_iter()
        .flat_map(|suite| SIZES.map(|bytes| (suite, bytes)))
        .collect();
    assert_eq!(head, old, "the AEAD-alone rows come first");
}

#[test]
fn bench_kernels_in_place_seals_in_place_with_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in-place.json");
    let out = camseal(&[
        "bench",
        "kernels",
        "--in-place",
        "--json",
        file.to_str().unwrap(),
        "--seconds",
        "0.005",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("seal call: in-place"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), SUITES.len() * SIZES.len(), "rows");
    assert!(
        results
            .iter()
            .all(|r| r["gb_per_s"].as_f64().is_some_and(|g| g > 0.0))
    );
    // The default stays the pipeline's out-of-place call.
    let out = camseal(&["bench", "kernels", "--seconds", "0.001"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seal call: seal_to"), "{stdout}");
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

/// Every suite of the report: the AEAD alone, then sealed and hashed with format v2's
/// record digest (BLAKE3) and with format v1's (SHA-256).
const SUITES: [&str; 6] = [
    "aes-128-gcm",
    "aes-256-gcm",
    "aes-128-gcm+blake3",
    "aes-256-gcm+blake3",
    "aes-128-gcm+sha256",
    "aes-256-gcm+sha256",
];
const SIZES: [u64; 7] = [64, 256, 1500, 16384, 65536, 262144, 1048576];
