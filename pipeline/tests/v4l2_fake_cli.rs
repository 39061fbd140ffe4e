//! `camseal run --source v4l2-m2m:...` as the real binary, against the V4L2 encoder stand-in
//! (`hal/fake-v4l2`, preloaded with `LD_PRELOAD=$(scripts/fake-v4l2.sh)`), in every modelled
//! driver profile. Each segment is decrypted on its own and must start with SPS, PPS and an
//! IDR, and decode alone with openh264; an errored CAPTURE buffer becomes a signed
//! source-loss gap while recording goes on.

mod cli;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use camseal::nal::{Codec, classify, nal_units};
use cli::{Setup, command, run_args, s, segments, succeeded};

const PROFILES: [&str; 3] = ["bcm2835", "venus-old", "mediatek"];
const DEVICE: &str = "/dev/fake-v4l2-enc";

fn shim() -> &'static PathBuf {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/fake-v4l2.sh");
        let out = Command::new(&script)
            .output()
            .expect("run scripts/fake-v4l2.sh");
        assert!(
            out.status.success(),
            "scripts/fake-v4l2.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// `camseal run` on the fake encoder: 320x240 at 30 fps for 4 s, a segment per second
/// (keyframes come every 30 frames).
fn run(setup: &Setup, profile: &str, fault: &str, out: &std::path::Path, stream: u32) -> Output {
    let source = format!("v4l2-m2m:{DEVICE}:320x240@30");
    let stream = stream.to_string();
    let mut args = run_args(&setup.camera, &source, out);
    args.extend([
        "--duration",
        "4",
        "--segment-seconds",
        "1",
        "--stream",
        &stream,
    ]);
    let mut cmd = command(&args);
    cmd.env("LD_PRELOAD", shim())
        .env("FAKE_V4L2_PROFILE", profile)
        .env("FAKE_V4L2_FAULT", fault)
        .env("FAKE_V4L2_DEVICE", DEVICE);
    cmd.output().unwrap()
}

/// The NAL types before (and including) the first picture, and whether the whole segment
/// decodes from its start with a fresh decoder.
fn check_segment(plain: &[u8]) -> Result<(), String> {
    let mut types = Vec::new();
    for nal in nal_units(plain) {
        let Some(info) = classify(Codec::H264, nal.payload) else {
            continue;
        };
        types.push(info.nal_type);
        if info.is_vcl {
            break;
        }
    }
    let sps = types.iter().position(|&t| t == 7);
    let pps = types.iter().position(|&t| t == 8);
    match (sps, pps, types.last()) {
        (Some(a), Some(b), Some(5)) if a < b => {}
        _ => return Err(format!("starts with NAL types {types:?}")),
    }
    let mut decoder = openh264::decoder::Decoder::new().map_err(|e| e.to_string())?;
    let mut pictures = 0;
    for nal in nal_units(plain) {
        if let Some(_yuv) = decoder
            .decode(&plain[nal.span])
            .map_err(|e| format!("decode: {e}"))?
        {
            pictures += 1;
        }
    }
    pictures += decoder.flush_remaining().map_err(|e| e.to_string())?.len();
    if pictures == 0 {
        return Err("no picture decoded".into());
    }
    Ok(())
}

#[test]
fn every_segment_decrypted_alone_starts_with_sps_pps_idr_in_every_profile() {
    let setup = Setup::new();
    for (stream, profile) in PROFILES.into_iter().enumerate() {
        let out = setup.path(&format!("v4l2-{profile}"));
        let ran = run(&setup, profile, "", &out, stream as u32);
        let (stdout, stderr) = succeeded(&ran, &format!("run on fake {profile}"));
        assert!(!stderr.contains("fake-v4l2: misuse"), "{profile}: {stderr}");
        assert!(stdout.contains("120 frames"), "{profile}: {stdout}");
        let segs = segments(&out);
        assert!(segs.len() >= 3, "{profile}: {} segments", segs.len());
        for (seq, seg) in segs.iter().enumerate() {
            let (plain, _) = setup.decrypt_ok(&[seg], &["--from-seq", &seq.to_string()]);
            if let Err(e) = check_segment(&plain) {
                panic!("{profile}: segment {} decrypted alone {e}", s(seg));
            }
        }
    }
}

#[test]
fn an_error_buffer_is_a_recorded_gap_and_recording_goes_on_in_every_profile() {
    let setup = Setup::new();
    for (stream, profile) in PROFILES.into_iter().enumerate() {
        let out = setup.path(&format!("v4l2-error-{profile}"));
        // Frame 45 fails: the middle of the second second.
        let ran = run(&setup, profile, "error:45", &out, stream as u32);
        let (stdout, _) = succeeded(&ran, &format!("run on fake {profile} with an error"));
        assert!(
            stdout.contains("the source lost") && stdout.contains("source-loss gap"),
            "{profile}: {stdout}"
        );
        let segs = segments(&out);
        assert!(segs.len() >= 3, "{profile}: {} segments", segs.len());
        for (seq, seg) in segs.iter().enumerate() {
            let (plain, _) = setup.decrypt_ok(&[seg], &["--from-seq", &seq.to_string()]);
            if let Err(e) = check_segment(&plain) {
                panic!("{profile}: segment {} decrypted alone {e}", s(seg));
            }
        }
        succeeded(&setup.verify(&[&out]), &format!("verify {profile}"));
    }
}
