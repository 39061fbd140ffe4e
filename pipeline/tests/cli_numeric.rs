//! Every numeric flag is range-checked by the argument parser: an out-of-range, negative,
//! NaN or infinite value is a usage error (exit 2) that names the flag, never an abort
//! (`Duration::from_secs_f64` panics on such values, which is exit 134 in a release build).

mod cli;

use cli::{Setup, camseal, s};

/// `(the command's arguments before the flag, flag, values it must refuse)`.
fn cases(setup: &Setup) -> Vec<(Vec<String>, &'static str, Vec<&'static str>)> {
    let out = setup.path("out");
    let spool = setup.path("spool");
    let run = vec![
        "run".to_owned(),
        "--home".to_owned(),
        s(&setup.camera).to_owned(),
        "--out".to_owned(),
        s(&out).to_owned(),
    ];
    let run_sink = vec![
        "run".to_owned(),
        "--home".to_owned(),
        s(&setup.camera).to_owned(),
        "--spool".to_owned(),
        s(&spool).to_owned(),
        "--sink".to_owned(),
        format!("dir:{}", s(&setup.path("sink"))),
    ];
    let upload = vec![
        "upload".to_owned(),
        "--spool".to_owned(),
        s(&spool).to_owned(),
        "--sink".to_owned(),
        format!("dir:{}", s(&setup.path("sink"))),
        "--once".to_owned(),
    ];
    let fetch = vec![
        "fetch".to_owned(),
        "--sink".to_owned(),
        format!("dir:{}", s(&setup.path("sink"))),
        "--out".to_owned(),
        s(&setup.path("fetched")).to_owned(),
    ];
    let bench = vec![
        "bench".to_owned(),
        "--source".to_owned(),
        "soft".to_owned(),
        "--discard".to_owned(),
    ];
    let kernels = vec!["bench".to_owned(), "kernels".to_owned()];
    let demo = vec!["demo".to_owned()];
    let float = ["nan", "NaN", "inf", "-inf", "-1", "1e300"];
    let mut all = vec![
        // The three values the hardening review saw abort the process.
        (run.clone(), "--segment-seconds", vec!["1e30", "0"]),
        (run.clone(), "--duration", vec!["1e300", "0"]),
        (run_sink.clone(), "--upload-grace", vec!["1e300"]),
        (run.clone(), "--fps", vec!["0", "1e9"]),
        (run.clone(), "--checkpoint-ms", vec!["0", "-5", "1e3"]),
        (run.clone(), "--max-chunk", vec!["0", "99999999", "-1"]),
        (run.clone(), "--bitrate", vec!["0", "-1", "99999999999"]),
        (run.clone(), "--workers", vec!["0", "100000"]),
        (run.clone(), "--stream", vec!["-1", "4294967296"]),
        (run_sink.clone(), "--spool-max-bytes", vec!["0", "-1"]),
        (run_sink.clone(), "--upload-concurrency", vec!["0", "65"]),
        (run_sink.clone(), "--upload-max-bytes-per-sec", vec!["0"]),
        (upload.clone(), "--upload-concurrency", vec!["0", "65"]),
        (
            upload.clone(),
            "--upload-max-bytes-per-sec",
            vec!["0", "-1"],
        ),
        (fetch.clone(), "--stream", vec!["-1", "x"]),
        (fetch.clone(), "--since", vec!["-1", "1.5"]),
        (
            vec![
                "verify".to_owned(),
                "--camera".to_owned(),
                "c.pub".to_owned(),
            ],
            "--from-seq",
            vec!["-1", "18446744073709551616"],
        ),
        (bench.clone(), "--streams", vec!["0", "65"]),
        (bench.clone(), "--workers", vec!["0"]),
        (bench.clone(), "--max-chunk", vec!["0", "99999999"]),
    ];
    let floats: Vec<(Vec<String>, &'static str)> = vec![
        (run.clone(), "--segment-seconds"),
        (run.clone(), "--duration"),
        (run.clone(), "--fps"),
        (run_sink.clone(), "--upload-grace"),
        (run_sink.clone(), "--connect-timeout"),
        (run_sink.clone(), "--io-timeout"),
        (run_sink.clone(), "--retry-base-delay"),
        (run_sink, "--retry-max-delay"),
        (upload.clone(), "--connect-timeout"),
        (upload.clone(), "--io-timeout"),
        (upload.clone(), "--retry-base-delay"),
        (upload, "--retry-max-delay"),
        (fetch.clone(), "--connect-timeout"),
        (fetch, "--io-timeout"),
        (bench.clone(), "--duration"),
        (bench, "--segment-seconds"),
        (kernels, "--seconds"),
        (demo, "--duration"),
    ];
    for (prefix, flag) in floats {
        all.push((prefix, flag, float.to_vec()));
    }
    all
}

#[test]
fn out_of_range_numbers_are_usage_errors() {
    let setup = Setup::new();
    let mut checked = 0;
    for (prefix, flag, values) in cases(&setup) {
        for value in values {
            let mut args: Vec<&str> = prefix.iter().map(String::as_str).collect();
            // `--flag=value` so that a leading `-` is not taken for a flag.
            let arg = format!("{flag}={value}");
            args.push(&arg);
            if args[0] == "verify" {
                args.push("some.cseg");
            }
            let out = camseal(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}: expected a usage error\nstderr: {stderr}"
            );
            assert!(stderr.contains(flag), "{args:?}: flag not named:\n{stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} cases ran");
    assert!(!setup.path("out").exists(), "a refused run wrote segments");
}

#[test]
fn in_range_values_are_still_accepted() {
    let setup = Setup::new();
    let out = setup.path("out");
    let res = camseal(&[
        "run",
        "--home",
        s(&setup.camera),
        "--out",
        s(&out),
        "--source",
        "soft:64x64@5",
        "--duration=1",
        "--segment-seconds=0.5",
        "--max-chunk=16777216",
        "--workers=1",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}
