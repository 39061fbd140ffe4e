//! `camseal run --source rkmpp` against the fake MPP library (`scripts/fake-mpp.sh`), as the
//! real binary: every committed fixture comes back byte-identical through `camseal decrypt`,
//! injected faults end the run with one clear error, and a machine without MPP says so in one
//! line.

mod cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use cli::{
    Fixture, Setup, command, failed, fixture, fixtures, one_line_error, run_args, s, succeeded,
};

#[test]
fn every_fixture_round_trips_through_the_fake_encoder() {
    let setup = Setup::new();
    // MPP 1.0.4 (the releases boards package) and HEAD name some configuration keys
    // differently (FAKE_MPP_VERSION, docs/HARDWARE.md).
    let runs = ["1.0.4", "head"]
        .into_iter()
        .flat_map(|v| fixtures().into_iter().map(move |f| (v, f)));
    for (stream, (version, f)) in runs.enumerate() {
        let what = format!("rkmpp {} (MPP {version})", f.name);
        let out = setup.path(&format!("mpp-{version}-{}", f.name));
        let source = format!("rkmpp:{}@{}", size_of(&f), f.fps.0 / f.fps.1.max(1));
        // One stream per output directory, so that each directory holds a whole stream.
        let stream = stream.to_string();
        let extra = ["--codec", f.codec.name(), "--stream", &stream];
        let run = rkmpp_with(
            &setup,
            &f.path,
            &source,
            &out,
            &extra,
            &[("FAKE_MPP_VERSION", version)],
        );
        let (stdout, _) = succeeded(&run, &what);
        assert!(
            stdout.contains(&format!("{} frames", f.frames)),
            "{what}: {stdout}"
        );
        let (plain, _) = setup.decrypt_ok(&[&out], &[]);
        assert!(plain == f.bytes(), "{what}: decrypted stream differs");
        succeeded(&setup.verify(&[&out]), &format!("verify {what}"));
    }
}

#[test]
fn the_documented_command_round_trips() {
    // The fake does not compare the stream's resolution with the configured one, so the
    // command from the docs works with any recording.
    let setup = Setup::new();
    let f = fixture("h264-baseline-320x240");
    let out = setup.path("doc");
    let run = rkmpp(&setup, &f.path, "rkmpp:1280x720@30", &out, &[]);
    succeeded(&run, "rkmpp:1280x720@30");
    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    assert!(plain == f.bytes());

    // H.265 needs --codec; the default is H.264, which the fake refuses for an H.265 stream.
    let h265 = fixture("h265-main-640x360");
    let out = setup.path("doc-h265");
    let run = rkmpp(
        &setup,
        &h265.path,
        "rkmpp:1280x720@30",
        &out,
        &["--stream", "1"],
    );
    let line = failed(&run, 1, "h265 stream, default codec");
    assert!(line.contains("could not open a h264 encoder"), "{line}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("fake-mpp: error in mpp_init: codec mismatch"),
        "{stderr}"
    );
    let run = rkmpp(
        &setup,
        &h265.path,
        "rkmpp:1280x720@30",
        &out,
        &["--codec", "h265", "--stream", "1"],
    );
    succeeded(&run, "h265 with --codec h265");
    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    assert!(plain == h265.bytes());
}

#[test]
fn the_highest_bitrates_stay_within_mpps_cap() {
    // MPP refuses rc:bps_max at or above 200 MiB/s (inc/rk_venc_rc.h), in every version; the
    // backend keeps its 17/16 headroom below that, however high --bitrate goes.
    let setup = Setup::new();
    let f = fixture("h264-baseline-320x240");
    for (i, bitrate) in ["197000000", "250000000", "4000000000"].iter().enumerate() {
        let out = setup.path(&format!("bitrate-{i}"));
        let stream = i.to_string();
        let run = rkmpp(
            &setup,
            &f.path,
            "rkmpp:320x240@25",
            &out,
            &["--bitrate", bitrate, "--stream", &stream],
        );
        succeeded(&run, &format!("--bitrate {bitrate}"));
        let (plain, _) = setup.decrypt_ok(&[&out], &[]);
        assert!(plain == f.bytes(), "--bitrate {bitrate}");
    }
}

#[test]
fn duration_and_early_eos_end_the_run_normally() {
    let setup = Setup::new();
    let f = fixture("h264-baseline-320x240");
    // 1 s at 25 fps: the first 25 access units.
    let out = setup.path("duration");
    let run = rkmpp(
        &setup,
        &f.path,
        "rkmpp:320x240@25",
        &out,
        &["--duration", "1"],
    );
    let (stdout, _) = succeeded(&run, "--duration 1");
    assert!(stdout.contains("25 frames"), "{stdout}");
    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    assert!(f.bytes().starts_with(&plain) && plain.len() < f.bytes().len());

    let out = setup.path("eos");
    let run = rkmpp_with(
        &setup,
        &f.path,
        "rkmpp:320x240@25",
        &out,
        &[],
        &[("FAKE_MPP_FAULT", "eos:10")],
    );
    let (stdout, _) = succeeded(&run, "early EOS");
    assert!(stdout.contains("10 frames"), "{stdout}");
}

#[test]
fn encoder_faults_are_one_clear_error() {
    let setup = Setup::new();
    let f = fixture("h264-baseline-320x240");
    for (fault, expect) in [
        ("stall", "produced no packet in 3 waits"),
        ("get:5", "encode_get_packet failed: MPP_ERR_VPUHW"),
        ("init", "/dev/mpp_service"),
        ("cfg", "MPP_ENC_SET_CFG failed"),
    ] {
        let out = setup.path(&format!("fault-{fault}"));
        let run = rkmpp_with(
            &setup,
            &f.path,
            "rkmpp:320x240@25",
            &out,
            &[],
            &[("FAKE_MPP_FAULT", fault)],
        );
        let line = failed(&run, 1, fault);
        assert!(line.contains(expect), "{fault}: {line}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!stderr.contains("fake-mpp: misuse"), "{fault}: {stderr}");
    }
}

#[test]
fn without_mpp_the_run_fails_in_one_line() {
    let setup = Setup::new();
    let out = setup.path("none");
    // No CAMSEAL_MPP_LIB: the loader searches for librockchip_mpp.so.1 and finds none here.
    let run = command(&run_args(&setup.camera, "rkmpp", &out))
        .env_remove("CAMSEAL_MPP_LIB")
        .output()
        .unwrap();
    let line = one_line_error(&run, "rkmpp without MPP");
    assert!(
        line.contains("Rockchip MPP library not found")
            && line.contains("librockchip_mpp.so.1")
            && line.contains("CAMSEAL_MPP_LIB"),
        "{line}"
    );
    assert_eq!(run.status.code(), Some(1));
}

#[test]
fn without_a_v4l2_device_the_run_fails_in_one_line() {
    let setup = Setup::new();
    let out = setup.path("v4l2");
    for (source, input) in [
        ("v4l2-m2m:/dev/nonexistent-video11", None),
        ("v4l2:/dev/nonexistent-video0", None),
        ("rkmpp:640x360@30", Some("v4l2:/dev/nonexistent-video0")),
    ] {
        let mut args = vec![
            "run",
            "--home",
            s(&setup.camera),
            "--source",
            source,
            "--out",
            s(&out),
        ];
        if let Some(input) = input {
            args.extend(["--input", input]);
        }
        let mut cmd = command(&args);
        if input.is_some() {
            cmd.env("CAMSEAL_MPP_LIB", fake_lib());
        }
        let run = cmd.output().unwrap();
        let line = one_line_error(&run, source);
        assert!(
            line.starts_with("error: cannot open V4L2 device /dev/nonexistent-video")
                && line.contains("No such file or directory"),
            "{source}: {line}"
        );
        assert_eq!(run.status.code(), Some(1));
    }
}

#[test]
fn bad_specs_and_misplaced_input_are_refused() {
    let setup = Setup::new();
    let out = setup.path("bad");
    for (args, expect) in [
        (vec!["--source", "rkmpp:1281x720@30"], "sides must be even"),
        (vec!["--source", "rkmpp:big"], "is not WIDTHxHEIGHT@FPS"),
        (
            vec!["--source", "soft", "--input", "v4l2:/dev/video0"],
            "--input applies to",
        ),
    ] {
        let mut all = vec!["run", "--home", s(&setup.camera), "--out", s(&out)];
        all.extend(args.iter().copied());
        let run = command(&all)
            .env("CAMSEAL_MPP_LIB", fake_lib())
            .output()
            .unwrap();
        let line = one_line_error(&run, expect);
        assert!(line.contains(expect), "{line}");
    }
}

/// `WxH` from a fixture name such as `h264-main-cabac-640x360.264`.
fn size_of(f: &Fixture) -> String {
    let stem = f.name.split('.').next().unwrap();
    stem.rsplit('-').next().unwrap().to_owned()
}

fn rkmpp(setup: &Setup, stream: &Path, source: &str, out: &Path, extra: &[&str]) -> Output {
    rkmpp_with(setup, stream, source, out, extra, &[])
}

fn rkmpp_with(
    setup: &Setup,
    stream: &Path,
    source: &str,
    out: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = run_args(&setup.camera, source, out);
    args.extend_from_slice(extra);
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
