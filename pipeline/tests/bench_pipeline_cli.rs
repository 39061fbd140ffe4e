//! `camseal bench --source ...`, run as the real binary: the JSON summary's keys and shape,
//! the `.hgrm` and SVG files, and argument errors (no timing assertions).

use std::process::{Command, Output, Stdio};

fn camseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camseal"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn fixture() -> String {
    format!(
        "file:{}/tests/data/streams/h264-baseline-320x240.h264",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn pipeline_bench_writes_json_hgrm_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let hgrm = dir.path().join("bench.hgrm");
    let svg = dir.path().join("bench.svg");
    let segments = dir.path().join("segments");
    let source = fixture();
    let out = camseal(&[
        "bench",
        "--source",
        &source,
        "--streams",
        "2",
        "--workers",
        "2",
        "--duration",
        "6",
        "--segment-seconds",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--out",
        segments.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stage in ["kernel", "sealed", "appended", "written", "durable"] {
        assert!(stdout.contains(stage), "{stdout}");
    }

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let obj = doc.as_object().unwrap();
    for key in [
        "frames",
        "bytes",
        "mb_per_s",
        "latency_us",
        "kernel_us",
        "copied_bytes_per_video_byte",
        "peak_rss_bytes",
    ] {
        assert!(obj.contains_key(key), "missing {key} in {doc}");
    }
    // 6 s of a looped file, two streams: the loop keeps going past the file's end.
    let frames = doc["frames"].as_u64().unwrap();
    let fps_frames = |s: f64| (s * 25.0) as u64;
    assert!(frames >= 2 * fps_frames(5.0), "{frames} frames");
    assert!(doc["bytes"].as_u64().unwrap() > 0);
    assert!(doc["mb_per_s"].as_f64().unwrap() > 0.0);
    for key in ["latency_us", "kernel_us"] {
        let p = doc[key].as_object().unwrap();
        let mut names: Vec<&String> = p.keys().collect();
        names.sort();
        assert_eq!(names, ["max", "p50", "p99", "p999"], "{key}");
        let v = |k: &str| p[k].as_f64().unwrap();
        assert!(v("p50") > 0.0 && v("p50") <= v("p99") && v("p99") <= v("p999"));
        assert!(v("p999") <= v("max"), "{key}: {p:?}");
    }
    // The per-frame overhead is appended minus kernel of the same frame, so its median
    // cannot exceed the median of appended; the writer really ran.
    let overhead = doc["overhead_us"].as_object().unwrap();
    let median = |o: &serde_json::Map<String, serde_json::Value>| o["p50"].as_f64().unwrap();
    assert!(median(overhead) <= median(doc["latency_us"].as_object().unwrap()));
    assert!(doc["writer_mb_per_s"].as_f64().unwrap() > 0.0);
    let stages = doc["stages"].as_object().unwrap();
    let frames_in = |stage: &str| stages[stage]["frames"].as_u64().unwrap();
    assert_eq!(frames_in("written"), frames);
    assert_eq!(frames_in("appended"), frames);
    // A file source lends its mapping: nothing is copied.
    assert_eq!(doc["copied_bytes_per_video_byte"].as_f64().unwrap(), 0.0);
    assert!(doc["peak_rss_bytes"].as_u64().unwrap() > 0);

    // The segments it kept decrypt-free verify: pts kept increasing over the loops.
    let names: Vec<String> = std::fs::read_dir(&segments)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".cseg") || n.ends_with(".head")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.contains("-s0-")) && names.iter().any(|n| n.contains("-s1-")));
    let mut paths: Vec<_> = std::fs::read_dir(&segments)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-s0-"))
        .collect();
    paths.sort();
    let mut last_start = None;
    for p in &paths {
        camseal::footage::verify_file(p).unwrap();
        let files = camseal::footage::load_headers(std::slice::from_ref(p), None).unwrap();
        let start = files[0].header.start_pts;
        assert!(last_start.is_none_or(|l| l < start), "pts went back");
        last_start = Some(start);
    }
    assert!(paths.len() >= 5, "{} segments", paths.len());

    let hgrm = std::fs::read_to_string(&hgrm).unwrap();
    for stage in ["kernel", "sealed", "appended", "written", "durable"] {
        assert!(hgrm.contains(&format!("# stage {stage}")), "{hgrm}");
    }
    assert!(hgrm.contains("Percentile") && hgrm.contains("#[Max"));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("appended"), "{svg}");
}

#[test]
fn discard_seals_everything_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("discard.json");
    // Where the bench would otherwise put its temporary segments.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let source = fixture();
    let out = Command::new(env!("CARGO_BIN_EXE_camseal"))
        .args([
            "bench",
            "--source",
            &source,
            "--streams",
            "2",
            "--workers",
            "2",
            "--duration",
            "4",
            "--segment-seconds",
            "1",
            "--discard",
            "--json",
            json.to_str().unwrap(),
        ])
        .env("TMPDIR", &tmp)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "frames",
        "bytes",
        "mb_per_s",
        "latency_us",
        "kernel_us",
        "copied_bytes_per_video_byte",
        "peak_rss_bytes",
        "overhead_us",
        "writer_mb_per_s",
        "stages",
    ] {
        assert!(doc.get(key).is_some(), "missing {key} in {doc}");
    }
    assert_eq!(doc["discard"], true);
    // Sealed, hashed and signed: every frame went through the writer, segments closed.
    let frames = doc["frames"].as_u64().unwrap();
    assert!(frames >= 2 * 75, "{frames} frames");
    assert_eq!(doc["stages"]["written"]["frames"].as_u64(), Some(frames));
    assert!(doc["segments"].as_u64().unwrap() >= 2 * 3, "{doc}");
    assert_eq!(doc["copied_bytes_per_video_byte"].as_f64(), Some(0.0));
    // Not paced: no floor.
    assert!(doc["floor_us"].is_null());
    // Nothing reached a file system: no temporary directory, nothing beside the JSON.
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "wrote into TMPDIR"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["discard.json", "tmp"]);

    // --discard drops the bytes; --out keeps them: both at once is a usage error.
    let out = camseal(&["bench", "--source", &source, "--discard", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn realtime_reports_the_platform_floor_beside_the_overhead() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("paced.json");
    let svg = dir.path().join("paced.svg");
    let source = fixture();
    let out = camseal(&[
        "bench",
        "--source",
        &source,
        "--realtime",
        "--rt",
        "--duration",
        "1",
        "--discard",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --rt says, per item, whether it could apply it (it may not be permitted here).
    for what in [
        "mlockall",
        "source 0: SCHED_FIFO",
        "source 0: pinned",
        "seal worker 0",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("--rt: ") && l.contains(what)),
            "{what} not reported: {stdout}"
        );
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let frames = doc["frames"].as_u64().unwrap();
    for key in ["floor_us", "overhead_us"] {
        let p = doc[key]
            .as_object()
            .unwrap_or_else(|| panic!("{key}: {doc}"));
        let mut names: Vec<&String> = p.keys().collect();
        names.sort();
        assert_eq!(names, ["max", "p50", "p90", "p99", "p999"], "{key}");
        let v = |k: &str| p[k].as_f64().unwrap();
        assert!(v("p50") > 0.0 && v("p50") <= v("p90") && v("p90") <= v("p99"));
        assert!(
            v("p99") <= v("p999") && v("p999") <= v("max"),
            "{key}: {p:?}"
        );
    }
    assert!(frames >= 20, "{frames} frames");
    assert!(doc["rt"].as_array().is_some_and(|a| !a.is_empty()));
    // The table has a floor row next to the overhead row, the plot a floor curve.
    for row in ["overhead", "floor"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(row)),
            "no {row} row: {stdout}"
        );
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("floor") && svg.contains("overhead"), "{svg}");
}

#[test]
fn pipeline_bench_rejects_bad_arguments() {
    let source = fixture();
    for args in [
        vec!["bench", "--source", "nope"],
        vec!["bench", "--source", &source, "--streams", "0"],
        vec!["bench", "--source", &source, "--workers", "0"],
        vec!["bench", "--source", &source, "--duration", "0"],
        vec!["bench", "--source", &source, "--duration", "nan"],
        vec!["bench", "--source", "file:/nonexistent.h264"],
        vec!["bench", "kernels", "--source", &source],
    ] {
        let out = camseal(&args);
        assert!(!out.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
