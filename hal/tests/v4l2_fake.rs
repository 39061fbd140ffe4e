//! The V4L2 M2M backend against the stand-in encoder (`hal/fake-v4l2`, an `LD_PRELOAD` shim
//! built by `scripts/fake-v4l2.sh`), in every modelled driver profile: bcm2835-codec
//! (single-planar, JOINED headers), old venus (SEPARATE headers never repeated, non-zero
//! `data_offset`, 4 KiB `sizeimage`, no `VIDIOC_ENCODER_CMD`) and MediaTek (NV12M input
//! only, the first header in a buffer of its own).
//!
//! A preload must be in place when the process starts, so each case re-runs this test binary
//! as a child with the shim preloaded; the child runs the `#[ignore]`d `child_*` test, which
//! refuses to run without the shim.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use camseal_hal::v4l2::V4l2M2mSource;
use camseal_hal::{Codec, EncoderConfig, FrameRate, Loss, TestPattern};

const PROFILES: [&str; 3] = ["bcm2835", "venus-old", "mediatek"];
const DEVICE: &str = "/dev/fake-v4l2-enc";
/// 2 s at 30 fps with a keyframe every 15 frames: 60 frames, 4 IDRs.
const FRAMES: u64 = 60;
const GOP: u32 = 15;

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

/// Runs `child` under the shim in `profile`, with `fault`; returns its stdout.
fn run_child(child: &str, profile: &str, fault: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LD_PRELOAD", shim())
        .env("FAKE_V4L2_PROFILE", profile)
        .env("FAKE_V4L2_FAULT", fault)
        .env("FAKE_V4L2_DEVICE", DEVICE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{child} in profile {profile} (fault {fault:?}) failed:\n{stdout}\n{stderr}"
    );
    // The shim reports misuse it can see (e.g. timestamps that are not microseconds).
    assert!(
        !stderr.contains("fake-v4l2: misuse"),
        "{child} in profile {profile}:\n{stderr}"
    );
    // The child ran its checks (a filter that matched nothing would also "succeed").
    assert!(
        stdout.contains("1 passed"),
        "{child} did not run:\n{stdout}"
    );
    stdout
}

#[test]
fn every_keyframe_starts_with_parameter_sets_in_every_profile() {
    for profile in PROFILES {
        run_child("child_stream", profile, "");
    }
}

#[test]
fn an_error_buffer_becomes_a_loss_and_the_stream_goes_on_in_every_profile() {
    for profile in PROFILES {
        let out = run_child("child_stream", profile, "error:20");
        assert!(out.contains("loss: 1 frames"), "{profile}:\n{out}");
    }
}

#[test]
fn reordered_capture_buffers_are_accepted() {
    for profile in PROFILES {
        let out = run_child("child_stream", profile, "reorder:5");
        assert!(out.contains("reordered: 1"), "{profile}:\n{out}");
    }
}

struct Copied {
    pts: u64,
    keyframe: bool,
    data: Vec<u8>,
}

fn in_child() -> bool {
    std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("fake_v4l2"))
}

/// Encodes `FRAMES` test-pattern frames through the fake device and checks every packet;
/// prints what the parent checks.
#[test]
#[ignore = "run by the tests above, in a child with the V4L2 stand-in preloaded"]
fn child_stream() {
    assert!(in_child(), "needs LD_PRELOAD=$(scripts/fake-v4l2.sh)");
    let fps = FrameRate::from_fps(30).unwrap();
    let (w, h) = (320, 240);
    let mut config = EncoderConfig::new(Codec::H264, w, h, fps);
    config.gop = GOP;
    let pattern = TestPattern::new(w, h, fps)
        .unwrap()
        .with_duration(Duration::from_secs(FRAMES / 30));
    let mut source = V4l2M2mSource::open(
        std::path::Path::new(DEVICE),
        &config,
        Some(Box::new(pattern)),
    )
    .unwrap();
    // Copies: a packet holds a CAPTURE buffer until dropped, and the device has only a few.
    let mut packets: Vec<Copied> = Vec::new();
    let mut loss: Option<Loss> = None;
    loop {
        let next = camseal_hal::Encoder::next_packet(&mut source).unwrap();
        if let Some(l) = camseal_hal::Encoder::take_loss(&mut source) {
            match &mut loss {
                Some(total) => total.merge(l),
                None => loss = Some(l),
            }
        }
        match next {
            Some(p) => packets.push(Copied {
                pts: p.pts,
                keyframe: p.keyframe,
                data: p.data().to_vec(),
            }),
            None => break,
        }
    }
    let stats = source.stats().clone();
    let lost = loss.map_or(0, |l| l.frames);
    println!("loss: {lost} frames");
    println!("reordered: {}", stats.reordered);
    // Every frame came out, as a packet or as a loss: the drain (with or without
    // VIDIOC_ENCODER_CMD) ended the stream after the last one.
    assert_eq!(packets.len() as u64 + lost, FRAMES, "{stats:?}");
    let mut keyframes = 0;
    let mut decoder_pictures = 0;
    for p in &packets {
        let data = &p.data[..];
        // data_offset honoured: the packet starts at its start code, not in padding.
        assert!(
            data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1]),
            "packet at {} starts {:02x?}",
            p.pts,
            &data[..data.len().min(8)]
        );
        let types: Vec<u8> = camseal_nal::nal_units(data)
            .filter_map(|n| n.payload.first().map(|b| b & 0x1f))
            .collect();
        // No packet of headers alone: they were merged into the next picture.
        assert!(types.iter().any(|t| (1..=5).contains(t)), "{types:?}");
        if p.keyframe {
            keyframes += 1;
            let vcl = types.iter().position(|&t| t == 5).unwrap();
            assert!(
                types[..vcl].contains(&7) && types[..vcl].contains(&8),
                "keyframe at {} has NAL types {types:?}",
                p.pts
            );
            // Decodes on its own: a fresh decoder given only this packet shows a picture.
            let mut decoder = openh264::decoder::Decoder::new().unwrap();
            let shown = decoder.decode(data).unwrap().is_some()
                || !decoder.flush_remaining().unwrap().is_empty();
            assert!(shown, "keyframe at {} did not decode alone", p.pts);
            decoder_pictures += 1;
        } else {
            assert!(!types.contains(&5));
        }
    }
    assert!(keyframes >= 3, "only {keyframes} keyframes");
    assert_eq!(decoder_pictures, keyframes);
    // pts are the frames' own (90 kHz), back from the driver's timeval exactly.
    for p in &packets {
        assert_eq!(p.pts % fps.pts(1), 0, "pts {} is not a frame time", p.pts);
    }
    if stats.reordered == 0 {
        assert!(packets.windows(2).all(|w| w[0].pts < w[1].pts));
    }
}
