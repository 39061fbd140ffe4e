//! `camseal run --source rkmpp` against the fake MPP library when the encoder loses a picture
//! (`FAKE_MPP_FAULT=empty:N`: an empty packet without EOS, as MPP returns after a hardware
//! error) or a put outlasts the input timeout (`slow-put:N`), in both `FAKE_MPP_VERSION`
//! modes: the run goes on, the lost picture is a signed `source-loss` gap in a segment header,
//! and nothing the encoder still held is freed (the fake would abort with "released while
//! held").

mod cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use cli::{Setup, command, fixture, s, segments, succeeded};

#[test]
fn an_empty_packet_becomes_a_gap_and_the_run_goes_on() {
    let setup = Setup::new();
    let f = fixture("h264-baseline-320x240");
    // One frame of the encoder's 25 fps (the `rkmpp:320x240@25` spec) in 90 kHz ticks.
    let frame: u64 = 90_000 / 25;
    for (id, version) in MPP_VERSIONS.into_iter().enumerate() {
        let what = format!("empty:10, MPP {version}");
        let out = setup.path(&format!("empty-{version}"));
        let run = rkmpp(
            &setup,
            &id.to_string(),
            &f.path,
            &out,
            &[
                ("FAKE_MPP_VERSION", version),
                ("FAKE_MPP_FAULT", "empty:10"),
            ],
        );
        let (stdout, stderr) = succeeded(&run, &what);
        assert_fake_silent(&stderr, &what);
        // Frames after the lost one were still recorded.
        let frames = recorded_frames(&stdout);
        assert!(
            frames > 10 && frames < u64::from(f.frames),
            "{what}: {stdout}"
        );

        let gaps: Vec<Value> = segments(&out)
            .iter()
            .flat_map(|seg| inspect_gaps(seg, &what))
            .collect();
        assert_eq!(gaps.len(), 1, "{what}: {gaps:?}");
        let gap = &gaps[0];
        assert_eq!(gap["reason"], "source-loss", "{what}: {gap}");
        assert_eq!(gap["frames"], 1, "{what}: {gap}");
        // The 10th frame (pts 9 frames in) is the one lost.
        assert_eq!(gap["from_pts"], 9 * frame, "{what}: {gap}");
        assert_eq!(gap["to_pts"], 10 * frame, "{what}: {gap}");
        succeeded(&setup.verify(&[&out]), &format!("verify {what}"));
    }
}

#[test]
fn a_timed_out_put_loses_nothing() {
    let setup = Setup::new();
    let f = fixture("h264-baseline-320x240");
    for (id, version) in MPP_VERSIONS.into_iter().enumerate() {
        let what = format!("slow-put:5, MPP {version}");
        let out = setup.path(&format!("slow-put-{version}"));
        let run = rkmpp(
            &setup,
            &id.to_string(),
            &f.path,
            &out,
            &[
                ("FAKE_MPP_VERSION", version),
                ("FAKE_MPP_FAULT", "slow-put:5"),
            ],
        );
        let (stdout, stderr) = succeeded(&run, &what);
        assert_fake_silent(&stderr, &what);
        assert_eq!(
            recorded_frames(&stdout),
            u64::from(f.frames),
            "{what}: {stdout}"
        );
        let (plain, _) = setup.decrypt_ok(&[&out], &[]);
        assert!(plain == f.bytes(), "{what}: decrypted stream differs");
    }
}

/// The MPP releases whose configuration keys the fake models.
const MPP_VERSIONS: [&str; 2] = ["1.0.4", "head"];

fn assert_fake_silent(stderr: &str, what: &str) {
    for alarm in ["fake-mpp: misuse", "fake-mpp: released while held"] {
        assert!(!stderr.contains(alarm), "{what}: {stderr}");
    }
}

/// N from the summary line `done: N frames, ...`.
fn recorded_frames(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("done: "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    line["done: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {line}"))
}

/// The gaps `camseal inspect --json` lists in a segment's header.
fn inspect_gaps(segment: &Path, what: &str) -> Vec<Value> {
    let out = command(&["inspect", "--json", s(segment)])
        .output()
        .unwrap();
    let (stdout, _) = succeeded(&out, &format!("inspect {what}"));
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    v["gaps"].as_array().cloned().unwrap_or_default()
}

/// One run, as stream `id` of the camera, so that each output directory holds a whole
/// stream (a camera numbers a stream's segments on across runs).
fn rkmpp(setup: &Setup, id: &str, stream: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let args = [
        "run",
        "--home",
        s(&setup.camera),
        "--source",
        "rkmpp:320x240@25",
        "--stream",
        id,
        "--out",
        s(out),
    ];
    let mut cmd = command(&args);
    cmd.env("CAMSEAL_MPP_LIB", fake_lib())
        .env("FAKE_MPP_STREAM", stream)
        .env_remove("FAKE_MPP_FAULT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The fake library, built once per test binary by `scripts/fake-mpp.sh`.
fn fake_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fake-mpp.sh");
        let out = Command::new(script).output().unwrap();
        assert!(
            out.status.success(),
            "scripts/fake-mpp.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}
