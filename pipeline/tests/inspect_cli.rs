//! `camseal inspect` through the real binary: text and JSON reports of good, cut-off,
//! forged and foreign files, and the exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use camseal::keys::CameraPublic;
use common::camera;
use serde_json::Value;
use tempfile::TempDir;

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camseal"))
        .arg("inspect")
        .args(args)
        .stdin(Stdio::null())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// (exit code, stdout, stderr), after checking that nothing panicked.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = inspect(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    (out.status.code().expect("exit code"), stdout, stderr)
}

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../docs/vectors/{name}.cseg"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes `camera.pub` files for the vectors' camera (seed 7) and another one (seed 8).
fn camera_pubs(dir: &Path) -> (PathBuf, PathBuf) {
    let write = |seed: u8, name: &str| {
        let path = dir.join(name);
        let public = CameraPublic {
            ed25519: camera(seed).verifying_key().to_bytes(),
        };
        std::fs::write(&path, public.to_text()).unwrap();
        path
    };
    (write(7, "ours.pub"), write(8, "other.pub"))
}

/// The value of a report line (`  label         value`).
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("  ")
                .and_then(|l| l.strip_prefix(label))
                .filter(|rest| rest.starts_with(' '))
        })
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{stdout}"))
        .trim()
}

#[test]
fn a_good_segment_is_shown_whole_and_exits_0() {
    let tmp = TempDir::new().unwrap();
    let (ours, _) = camera_pubs(tmp.path());
    let path = vector("v2-chain-1");
    let (code, stdout, stderr) = run(&["--camera", s(&ours), s(&path)]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let camera_id = camseal::segment::camera_id(&camera(7).verifying_key().to_bytes());
    assert!(field(&stdout, "format").starts_with("camseal segment v2"));
    assert!(field(&stdout, "camera").starts_with(&format!("{camera_id}  (the --camera key)")));
    assert_eq!(field(&stdout, "stream"), "1  seq 1");
    assert_eq!(field(&stdout, "suite"), "0x0004 (aes-128-gcm)");
    assert_eq!(field(&stdout, "codec"), "h264");
    assert!(field(&stdout, "prev header").ends_with("(segment 0)"));
    assert_eq!(field(&stdout, "recipients"), "2");
    // Recipient 1's key id, and its KEM.
    assert!(stdout.contains("key id 1a92f23852dc908d  kem 0x0020 (DHKEM(X25519, HKDF-SHA256))"));
    assert_eq!(field(&stdout, "gaps"), "none");
    assert!(
        field(&stdout, "records")
            .starts_with("9 (3 keyframe, 2 continuation, final record present)")
    );
    assert!(field(&stdout, "trailer").starts_with("present at byte"));
    assert!(field(&stdout, "trailer").contains("end of stream: no"));
    assert!(field(&stdout, "signatures").starts_with("header valid, checkpoints "));
    assert!(field(&stdout, "signatures").ends_with(" valid, trailer valid"));
    assert_eq!(
        field(&stdout, "signed"),
        "9 of 9 records covered by a valid camera signature"
    );
    assert_eq!(field(&stdout, "verdict"), "OK");
}

#[test]
fn gaps_and_crash_declarations_are_listed() {
    let (code, stdout, _) = run(&[s(&vector("v2-gaps-5"))]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(field(&stdout, "gaps"), "3");
    assert!(stdout.contains("gap (crash): segment 3 lost or incomplete"));
    assert!(stdout.contains("gap (crash): segment 4 lost or incomplete"));
    assert!(stdout.contains("gap (dropped-frames), 3 frames lost"));
    assert!(field(&stdout, "prev header").ends_with("(segment 2)"));
    assert!(field(&stdout, "trailer").contains("end of stream: yes"));
    assert_eq!(field(&stdout, "suite"), "0x0005 (aes-256-gcm)");
}

#[test]
fn a_cut_off_segment_shows_its_signed_prefix_and_exits_4() {
    let (code, stdout, stderr) = run(&[s(&vector("v2-cutoff-3"))]);
    assert_eq!(code, 4, "{stdout}\n{stderr}");
    assert_eq!(field(&stdout, "trailer"), "absent");
    assert_eq!(field(&stdout, "checkpoints"), "2");
    assert!(
        stdout
            .contains("#2 at byte 773: covers 6 records (6 before it): digest ok, signature valid")
    );
    assert_eq!(
        field(&stdout, "signed"),
        "6 of 8 records covered by a valid camera signature"
    );
    assert!(field(&stdout, "verdict").starts_with("FAILED: segment is truncated"));
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("v2-cutoff-3.cseg: segment is truncated: inside a record"));
}

#[test]
fn a_flipped_header_byte_fails_the_header_signature_and_exits_3() {
    let tmp = TempDir::new().unwrap();
    let mut bytes = std::fs::read(vector("v2-chain-0")).unwrap();
    // A byte of wallclock_ms (offset 4+1+2+1+1+32+4+8+8 = 61): the header still parses.
    bytes[61 + 7] ^= 0x01;
    let forged = tmp.path().join("forged.cseg");
    std::fs::write(&forged, &bytes).unwrap();
    let (code, stdout, stderr) = run(&[s(&forged)]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    // Everything is still shown; the header signature is invalid, and so is every later
    // signature, since each signs the header hash.
    assert_eq!(field(&stdout, "stream"), "1  seq 0");
    assert!(field(&stdout, "signatures").starts_with("header INVALID, checkpoints 0 of "));
    assert!(field(&stdout, "verdict").contains("header signature is invalid"));
    assert!(stderr.contains("header is tampered or forged"), "{stderr}");

    let (code, stdout, _) = run(&["--json", s(&forged)]);
    assert_eq!(code, 3);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["signatures"]["header"], false);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 3);
}

#[test]
fn another_camera_exits_7_but_every_signature_is_valid() {
    let tmp = TempDir::new().unwrap();
    let (_, other) = camera_pubs(tmp.path());
    let (code, stdout, stderr) = run(&["--camera", s(&other), s(&vector("v2-chain-2"))]);
    assert_eq!(code, 7, "{stdout}\n{stderr}");
    assert!(field(&stdout, "camera").contains("NOT the --camera key"));
    assert!(field(&stdout, "signatures").starts_with("header valid"));
    assert!(stderr.contains("wrong camera"), "{stderr}");
    let (_, stdout, _) = run(&["--json", "--camera", s(&other), s(&vector("v2-chain-2"))]);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["camera_matches"], false);
    assert_eq!(v["signatures"]["header"], true);
}

#[test]
fn files_that_are_not_segments_get_a_clear_error_and_no_panic() {
    let tmp = TempDir::new().unwrap();
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "these are not the segments you are looking for\n").unwrap();
    let tiny = tmp.path().join("tiny");
    std::fs::write(&tiny, "hi").unwrap();
    let empty = tmp.path().join("empty.cseg");
    std::fs::write(&empty, "").unwrap();
    let mut junk = b"CSEG\x02".to_vec();
    junk.extend_from_slice(&[0xff; 400]);
    let bad_suite = tmp.path().join("junk.cseg");
    std::fs::write(&bad_suite, &junk).unwrap();
    let v1 = tmp.path().join("v1.cseg");
    let testkit =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testkit/v1_segment"))
            .unwrap();
    let at = testkit.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    std::fs::write(&v1, &testkit[at..]).unwrap();

    for (path, code, message) in [
        (&text, 1, "not a camseal segment"),
        (&tiny, 1, "not a camseal segment"),
        (&empty, 4, "segment is truncated: file is empty"),
        (&bad_suite, 1, "unsupported cipher suite 0xffff"),
        (&v1, 1, "unsupported segment format version 1"),
    ] {
        let (got, stdout, stderr) = run(&[s(path)]);
        assert_eq!(got, code, "{}: {stdout}\n{stderr}", path.display());
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(message), "{}: {stderr}", path.display());
        assert!(field(&stdout, "verdict").starts_with("FAILED: "));
    }
    let (_, stdout, _) = run(&[s(&v1)]);
    assert_eq!(
        field(&stdout, "format"),
        format!("camseal segment format v1, {} bytes", testkit.len() - at)
    );

    // A directory or a missing file is reported too, and the files after it are read.
    let missing = tmp.path().join("missing.cseg");
    let (code, stdout, stderr) = run(&[s(&missing), s(tmp.path()), s(&vector("v2-chain-0"))]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert_eq!(stdout.matches("verdict").count(), 3);
    assert!(stdout.trim_end().ends_with("verdict       OK"));
}

#[test]
fn json_is_one_object_per_line_with_the_documented_keys() {
    let tmp = TempDir::new().unwrap();
    let (ours, _) = camera_pubs(tmp.path());
    let junk = tmp.path().join("junk.bin");
    std::fs::write(&junk, [0u8; 50]).unwrap();
    let files = [
        vector("v2-gaps-5"),
        vector("v2-cutoff-3"),
        junk.clone(),
        vector("v2-kid9-ctr300"),
    ];
    let mut args = vec!["--json", "--camera", s(&ours)];
    args.extend(files.iter().map(|p| s(p)));
    let (code, stdout, _) = run(&args);
    // The first failing file (the cut-off one) decides.
    assert_eq!(code, 4);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(lines.len(), files.len());
    for (v, path) in lines.iter().zip(&files) {
        for key in [
            "path",
            "version",
            "camera",
            "stream",
            "seq",
            "suite",
            "recipients",
            "gaps",
            "records",
            "checkpoints",
            "trailer",
            "signatures",
            "ok",
            "error",
            "exit_code",
        ] {
            assert!(v.get(key).is_some(), "{}: no key {key}", path.display());
        }
        assert_eq!(v["path"], s(path));
        assert!(v["trailer"].is_boolean());
    }
    let (gaps, cut, junk, kid9) = (&lines[0], &lines[1], &lines[2], &lines[3]);

    let camera_id = camseal::segment::camera_id(&camera(7).verifying_key().to_bytes());
    assert_eq!(gaps["version"], 2);
    assert_eq!(gaps["camera"], camera_id.as_str());
    assert_eq!(gaps["camera_matches"], true);
    assert_eq!(
        (&gaps["stream"], &gaps["seq"], &gaps["suite"]),
        (&Value::from(1), &Value::from(5), &Value::from(5))
    );
    assert_eq!(gaps["recipients"][0]["key_id"], "1a92f23852dc908d");
    assert_eq!(gaps["recipients"][0]["kem"], 0x0020);
    assert_eq!(gaps["recipients"].as_array().unwrap().len(), 2);
    let reasons: Vec<&str> = gaps["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["crash", "crash", "dropped-frames"]);
    assert_eq!(gaps["gaps"][0]["first_seq"], 3);
    assert_eq!(gaps["gaps"][2]["first_seq"], Value::Null);
    assert_eq!(gaps["trailer"], true);
    assert_eq!(gaps["end_of_stream"], true);
    assert_eq!(gaps["ok"], true);
    assert_eq!(gaps["exit_code"], 0);

    assert_eq!(cut["trailer"], false);
    assert_eq!(cut["records"]["count"], 8);
    assert_eq!(cut["signed_records"], 6);
    let covered: Vec<u64> = cut["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["record_count"].as_u64().unwrap())
        .collect();
    assert_eq!(covered, [3, 6]);
    assert_eq!(
        cut["signatures"]["checkpoints"],
        serde_json::json!([true, true])
    );
    assert_eq!(cut["exit_code"], 4);

    assert_eq!(junk["version"], Value::Null);
    assert_eq!(junk["camera"], Value::Null);
    assert_eq!(junk["recipients"], serde_json::json!([]));
    assert_eq!(junk["trailer"], false);
    assert_eq!(junk["exit_code"], 1);
    assert!(
        junk["error"]
            .as_str()
            .unwrap()
            .contains("not a camseal segment")
    );

    assert_eq!(kid9["seq"], 9);
    assert_eq!(kid9["codec"], "h265");
    assert_eq!(kid9["records"]["count"], 300);
    assert_eq!(kid9["records"]["keyframes"], 10);
    assert!(kid9["records"]["min_bytes"].as_u64() <= kid9["records"]["max_bytes"].as_u64());
    assert_eq!(kid9["ok"], true);
}
