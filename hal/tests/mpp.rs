//! The `rkmpp` backend against the fake MPP library (`hal/fake-mpp`, built by
//! `scripts/fake-mpp.sh`): byte-identical replay of real H.264/H.265 streams, zero-copy
//! DMA-buf import, keyframes, fault injection, and the fake's misuse checks.
//!
//! The fake keeps process-wide state (its stream, faults and leak check come from the
//! environment), so every scenario runs in a child process: the parent test re-runs this test
//! binary on one `#[ignore]`d `child_*` test with `MPP_CHILD` and the fake's variables set,
//! then checks the child's exit status and stderr. A `child_*` test run by hand without
//! `MPP_CHILD` does nothing.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use camseal_hal::mpp::{GetPacketError, MppError, MppOptions, MppSource, MppStats};
use camseal_hal::{
    Codec, DmaBuf, Encoder, EncoderConfig, FrameRate, FrameSource, HalError, Packet, Plane,
    RawFrame, TestPattern,
};
use rockchip_mpp_sys as ffi;

// ---------------------------------------------------------------------------------------------
// Parent tests

#[test]
fn h264_fixtures_come_back_byte_for_byte() {
    for (name, size) in [
        ("h264-baseline-320x240.h264", "320x240"),
        ("h264-main-cabac-640x360.264", "640x360"),
        ("h264-high-bframes-slices-640x360.h264", "640x360"),
    ] {
        for version in MPP_VERSIONS {
            let out = child(
                "child_roundtrip",
                &[
                    ("FAKE_MPP_STREAM", fixture(name).into()),
                    ("FAKE_MPP_VERSION", version.into()),
                    ("CHILD_CODEC", "h264".into()),
                    ("CHILD_SIZE", size.into()),
                ],
            );
            assert_child_ok(&out, &format!("{name}, MPP {version}"));
        }
    }
}

#[test]
fn h265_fixtures_come_back_byte_for_byte() {
    for name in [
        "h265-main-640x360.h265",
        "h265-aud-repeat-headers-640x360.hevc",
    ] {
        for version in MPP_VERSIONS {
            let out = child(
                "child_roundtrip",
                &[
                    ("FAKE_MPP_STREAM", fixture(name).into()),
                    ("FAKE_MPP_VERSION", version.into()),
                    ("CHILD_CODEC", "h265".into()),
                    ("CHILD_SIZE", "640x360".into()),
                ],
            );
            assert_child_ok(&out, &format!("{name}, MPP {version}"));
        }
    }
}

/// The MPP releases whose configuration keys the fake models (`FAKE_MPP_VERSION`).
const MPP_VERSIONS: [&str; 2] = ["1.0.4", "head"];

#[test]
fn a_timed_out_put_never_frees_a_held_frame() {
    // The second put times out while the fake's encoder still holds the frame; freeing the
    // frame, its MPP buffer or its DMA-buf then aborts the child with "released while held"
    // (which `assert_child_ok` rejects). The packets still come back byte for byte.
    for version in MPP_VERSIONS {
        for (name, codec, size) in [
            ("h264-baseline-320x240.h264", "h264", "320x240"),
            ("h265-main-640x360.h265", "h265", "640x360"),
        ] {
            let out = child(
                "child_roundtrip",
                &[
                    ("FAKE_MPP_STREAM", fixture(name).into()),
                    ("FAKE_MPP_VERSION", version.into()),
                    ("FAKE_MPP_FAULT", "slow-put:2".into()),
                    ("CHILD_CODEC", codec.into()),
                    ("CHILD_SIZE", size.into()),
                    ("CHILD_PUT_TIMEOUTS", "1".into()),
                ],
            );
            assert_child_ok(&out, &format!("{name}, slow-put:2, MPP {version}"));
        }
        let mut env = stream_env("h264-baseline-320x240.h264");
        env.push(("FAKE_MPP_VERSION", version.into()));
        env.push(("FAKE_MPP_FAULT", "slow-put:2".into()));
        env.push(("CHILD_PUT_TIMEOUTS", "1".into()));
        assert_child_ok(
            &child("child_dmabuf", &env),
            &format!("DMA-buf, slow-put:2, MPP {version}"),
        );
    }
}

#[test]
fn releasing_a_held_frame_is_detected() {
    // The detector the test above relies on: raw FFI sequences that free what the fake's
    // encoder still holds must abort, and the one that frees after MPP let go must not.
    for version in MPP_VERSIONS {
        for (case, fault, caught) in [
            ("frame-deinit-after-timed-out-put", "slow-put:1", true),
            ("frame-deinit-while-queued-async", "", true),
            ("dmabuf-closed-after-timed-out-put", "slow-put:1", true),
            ("frame-deinit-after-sync-put", "", false),
        ] {
            let mut env = stream_env("h264-baseline-320x240.h264");
            env.push(("FAKE_MPP_VERSION", version.into()));
            env.push(("FAKE_MPP_FAULT", fault.into()));
            env.push(("CHILD_CASE", case.into()));
            if case.ends_with("-async") {
                env.push(("CHILD_ASYNC", "1".into()));
            }
            let out = child("child_misuse", &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let fired = stderr.contains("fake-mpp: released while held");
            assert_eq!(fired, caught, "{case}, MPP {version}:\n{stderr}");
            assert_eq!(
                out.status.success(),
                !caught,
                "{case}, MPP {version}:\n{stderr}"
            );
            assert_eq!(
                stderr.contains("CHILD REACHED END"),
                !caught,
                "{case}, MPP {version}:\n{stderr}"
            );
        }
    }
}

#[test]
fn key_input_frame_comes_back_only_in_async_mode() {
    // `set_enc_info_to_packet` attaches the input frame only when `mpp_init` chose async mode;
    // the child asserts which, and frees everything once MPP let go of it.
    for version in MPP_VERSIONS {
        for (case, mode) in [
            ("input-frame-meta", None),
            ("input-frame-meta", Some("CHILD_ASYNC")),
        ] {
            let mut env = stream_env("h264-baseline-320x240.h264");
            env.push(("FAKE_MPP_VERSION", version.into()));
            env.push(("CHILD_CASE", case.into()));
            if let Some(var) = mode {
                env.push((var, "1".into()));
            }
            let out = child("child_misuse", &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.contains("CHILD REACHED END"),
                "{case} {mode:?}, MPP {version}:\n{stderr}"
            );
        }
    }
}

#[test]
fn a_cachable_output_packet_needs_its_cpu_access_ended() {
    // Sync `Mpp::get_packet` begins a CPU read access on the packet's buffer; on a CACHABLE
    // buffer the caller must end it before the packet goes. The `rkmpp` round trips above go
    // through the same path (the backend's packets are cachable); this shows the fake catches
    // a missing end.
    for version in MPP_VERSIONS {
        for (end, caught) in [(true, false), (false, true)] {
            let mut env = stream_env("h264-baseline-320x240.h264");
            env.push(("FAKE_MPP_VERSION", version.into()));
            env.push(("CHILD_CASE", "output-packet".into()));
            if end {
                env.push(("CHILD_END", "1".into()));
            }
            let out = child("child_misuse", &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!("end {end}, MPP {version}:\n{stderr}");
            assert_eq!(out.status.success(), !caught, "{what}");
            assert_eq!(
                stderr.contains("released inside a CPU access"),
                caught,
                "{what}"
            );
            assert_eq!(stderr.contains("CHILD REACHED END"), !caught, "{what}");
        }
    }
}

#[test]
fn only_header_mode_each_idr_repeats_parameter_sets() {
    // MPP's default header mode sends SPS/PPS once (and again after a configuration change);
    // EACH_IDR, which the backend sets, puts them on every IDR.
    for version in MPP_VERSIONS {
        for each_idr in [false, true] {
            let mut env = stream_env("h264-baseline-320x240.h264");
            env.push(("FAKE_MPP_VERSION", version.into()));
            env.push(("CHILD_CASE", "header-mode".into()));
            if each_idr {
                env.push(("CHILD_EACH_IDR", "1".into()));
            }
            let out = child("child_misuse", &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.contains("CHILD REACHED END"),
                "EACH_IDR {each_idr}, MPP {version}:\n{stderr}"
            );
        }
    }
}

#[test]
fn an_empty_packet_is_a_loss_and_packets_keep_coming() {
    for version in MPP_VERSIONS {
        let mut env = stream_env("h264-baseline-320x240.h264");
        env.push(("FAKE_MPP_VERSION", version.into()));
        env.push(("FAKE_MPP_FAULT", "empty:3".into()));
        env.push(("CHILD_EXPECT", "empty".into()));
        assert_child_ok(
            &child("child_fault", &env),
            &format!("empty:3, MPP {version}"),
        );
    }
}

#[test]
fn dmabuf_frames_are_imported_without_a_copy() {
    let out = child("child_dmabuf", &stream_env("h264-baseline-320x240.h264"));
    assert_child_ok(&out, "dmabuf");
}

#[test]
fn submit_api_and_packets_outliving_the_encoder() {
    let out = child("child_submit", &stream_env("h264-baseline-320x240.h264"));
    assert_child_ok(&out, "submit");
}

#[test]
fn reconfigure_mid_stream() {
    for version in MPP_VERSIONS {
        let mut env = stream_env("h264-baseline-320x240.h264");
        env.push(("FAKE_MPP_VERSION", version.into()));
        let out = child("child_reconfigure", &env);
        assert_child_ok(&out, &format!("reconfigure, MPP {version}"));
    }
}

#[test]
fn one_timeout_is_retried_and_a_stall_is_an_error() {
    let mut env = stream_env("h264-baseline-320x240.h264");
    env.push(("FAKE_MPP_FAULT", "timeout:3".into()));
    env.push(("CHILD_EXPECT", "timeout".into()));
    assert_child_ok(&child("child_fault", &env), "timeout:3");

    let mut env = stream_env("h264-baseline-320x240.h264");
    env.push(("FAKE_MPP_FAULT", "stall".into()));
    env.push(("CHILD_EXPECT", "stall".into()));
    assert_child_ok(&child("child_fault", &env), "stall");
}

#[test]
fn injected_errors_become_typed_errors() {
    for (fault, expect) in [
        ("init", "init"),
        ("create", "create"),
        ("cfg", "cfg"),
        ("get:4", "get"),
        ("put:2", "put"),
        ("eos:7", "eos"),
        ("no-intra-meta", "no-intra-meta"),
        ("wrong-intra-meta", "wrong-intra-meta"),
    ] {
        let mut env = stream_env("h264-baseline-320x240.h264");
        env.push(("FAKE_MPP_FAULT", fault.into()));
        env.push(("CHILD_EXPECT", expect.into()));
        assert_child_ok(&child("child_fault", &env), fault);
    }
}

#[test]
fn a_codec_that_does_not_match_the_stream_fails_loudly() {
    let mut env = stream_env("h265-main-640x360.h265");
    env.push(("CHILD_EXPECT", "codec-mismatch".into()));
    let out = child("child_fault", &env);
    assert_child_ok(&out, "codec mismatch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fake-mpp: error in mpp_init: codec mismatch"),
        "{stderr}"
    );
}

#[test]
fn a_missing_library_is_one_clear_error() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_missing_library",
            "--ignored",
            "--nocapture",
        ])
        .env("MPP_CHILD", "1")
        .env("CAMSEAL_MPP_LIB", "/nonexistent/librockchip_mpp.so.1")
        .output()
        .unwrap();
    assert_child_ok(&out, "missing library");
}

#[test]
fn misuse_is_caught_by_the_fake() {
    for (case, message) in [
        (
            "double-packet-deinit",
            "misuse in mpp_packet_deinit: MppPacket",
        ),
        (
            "destroy-with-live-packet",
            "misuse in mpp_destroy: 1 packet(s) from this context are still alive",
        ),
        ("leak-at-last-destroy", "objects still alive after the last"),
        (
            "dmabuf-fd-closed-early",
            "fake-mpp: released while held: in mpp_buffer_put: the DMA-buf fd",
        ),
        (
            "blocking-get-without-frame",
            "with no frame queued would never return",
        ),
        ("buffer-double-put", "misuse in mpp_buffer_put: MppBuffer"),
        (
            "buffer-put-under-a-frame",
            "misuse in mpp_frame_deinit: MppBuffer",
        ),
        ("wrong-handle-kind", "is an MppFrame, not an MppPacket"),
    ] {
        let mut env = stream_env("h264-baseline-320x240.h264");
        env.push(("CHILD_CASE", case.into()));
        let out = child("child_misuse", &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{case}: the broken sequence was not caught\n{stderr}"
        );
        assert!(
            stderr.contains(message),
            "{case}: expected {message:?} in\n{stderr}"
        );
        assert!(
            !stderr.contains("CHILD REACHED END"),
            "{case}: the child ran past the misuse\n{stderr}"
        );
    }
}

#[test]
fn mpp_puts_seis_before_each_idr_unless_told_not_to() {
    for (mode, expect_sei) in [("default", true), ("disable", false)] {
        let mut env = stream_env("h264-baseline-320x240.h264");
        env.push(("CHILD_SEI", mode.into()));
        let out = child("child_sei", &env);
        assert_child_ok(&out, mode);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("SEI NAL units in the IDR packet: {expect_sei}")),
            "{mode}: {stderr}"
        );
    }
}

#[test]
fn bad_configuration_is_refused_by_the_fake() {
    let out = child(
        "child_bad_config",
        &stream_env("h264-baseline-320x240.h264"),
    );
    assert_child_ok(&out, "bad config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fake-mpp: error in mpp_enc_cfg_set_s32: cfg prep:bogus is invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("configuration lacks"), "{stderr}");
    // Releases up to 1.0.4 (the default) know only the old spelling of the frame-rate
    // denominators; the spelling HEAD introduced is an unknown key there.
    assert!(
        stderr.contains("cfg rc:fps_in_denom is invalid"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Children

#[test]
#[ignore = "run in a child process by h26x_fixtures_come_back_byte_for_byte"]
fn child_roundtrip() {
    if !in_child() {
        return;
    }
    let codec: Codec = env("CHILD_CODEC").parse().unwrap();
    let (w, h, fps) = camseal_hal::parse_video_spec(&env("CHILD_SIZE")).unwrap();
    let stream = std::fs::read(env("FAKE_MPP_STREAM")).unwrap();
    let mut options = MppOptions::new(EncoderConfig::new(codec, w, h, fps));
    options.input = Some(Box::new(TestPattern::new(w, h, fps).unwrap()));
    let mut source = MppSource::open(options).unwrap();
    assert_eq!(source.codec(), codec);
    let packets = drain_all(&mut source);
    let joined: Vec<u8> = packets.iter().flat_map(|p| p.data().to_vec()).collect();
    assert!(joined == stream, "the packets are not the stream");

    let expected: Vec<bool> = camseal_nal::access_units(codec, &stream)
        .map(|au| au.keyframe)
        .collect();
    let got: Vec<bool> = packets.iter().map(|p| p.keyframe).collect();
    assert_eq!(got, expected, "keyframes follow the bitstream");
    assert!(packets[0].keyframe);
    assert!(packets.windows(2).all(|w| w[0].pts < w[1].pts));
    assert_eq!(packets[1].pts - packets[0].pts, fps.pts(1));
    assert!(format!("{:?}", packets[0]).contains("mpp"));

    let stats = source.stats();
    let n = packets.len() as u64;
    assert_eq!(stats.packets, n);
    assert_eq!(
        stats.keyframes,
        expected.iter().filter(|k| **k).count() as u64
    );
    assert_eq!(stats.intra_meta_mismatches, 0);
    assert_eq!(stats.intra_meta_missing, 0);
    assert_eq!(stats.put_timeouts, expected_put_timeouts());
    // The pattern is mapped memory: every frame was copied into an MPP buffer.
    assert_eq!(stats.frames_imported, 0);
    assert!(stats.frames_copied >= n);
    drop(packets);
    drop(source);
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by dmabuf_frames_are_imported_without_a_copy"]
fn child_dmabuf() {
    if !in_child() {
        return;
    }
    // Any file stands in for a DMA-buf: the fake checks the fd is open and large enough.
    struct Files {
        w: u32,
        h: u32,
        n: u64,
        limit: u64,
    }
    impl FrameSource for Files {
        fn size(&self) -> (u32, u32) {
            (self.w, self.h)
        }
        fn frame_rate(&self) -> FrameRate {
            FrameRate::from_fps(25).unwrap()
        }
        fn next_frame(&mut self) -> Result<Option<RawFrame>, HalError> {
            if self.n == self.limit {
                return Ok(None);
            }
            // 336-byte rows (a multiple of 16) and 240 luma rows: what MPP reads in place.
            let (stride, rows) = (336usize, 240usize);
            let len = stride * rows * 3 / 2;
            let file = tempfile::tempfile().unwrap();
            file.set_len(len as u64).unwrap();
            let planes = [
                Plane { offset: 0, stride },
                Plane {
                    offset: stride * rows,
                    stride,
                },
            ];
            let pts = self.frame_rate().pts(self.n);
            self.n += 1;
            let buffer = DmaBuf::new(OwnedFd::from(file), len);
            RawFrame::new(
                camseal_hal::PixelFormat::Nv12,
                self.w,
                self.h,
                &planes,
                pts,
                Box::new(buffer),
            )
            .map(Some)
        }
    }
    let fps = FrameRate::from_fps(25).unwrap();
    let mut options = MppOptions::new(EncoderConfig::new(Codec::H264, 320, 240, fps));
    options.input = Some(Box::new(Files {
        w: 320,
        h: 240,
        n: 0,
        limit: 40,
    }));
    let mut source = MppSource::open(options).unwrap();
    let packets = drain_all(&mut source);
    // 40 frames in, then the drain: 40 packets of the 75-frame stream.
    assert_eq!(packets.len(), 40);
    let stats = source.stats();
    assert_eq!(stats.frames_imported, 40);
    assert_eq!(stats.frames_copied, 0);
    assert_eq!(stats.put_timeouts, expected_put_timeouts());
    drop(source);
    drop(packets);
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by submit_api_and_packets_outliving_the_encoder"]
fn child_submit() {
    if !in_child() {
        return;
    }
    let fps = FrameRate::from_fps(25).unwrap();
    let mut source = MppSource::open(MppOptions::new(EncoderConfig::new(
        Codec::H264,
        320,
        240,
        fps,
    )))
    .unwrap();
    // Nothing queued and no input: an error, not a hang.
    assert!(matches!(source.next_packet(), Err(HalError::NoInput(_))));
    let mut pattern = TestPattern::new(320, 240, fps).unwrap();
    let mut kept = Vec::new();
    for _ in 0..5 {
        source
            .submit(pattern.next_frame().unwrap().unwrap())
            .unwrap();
        kept.push(source.next_packet().unwrap().unwrap());
    }
    source.force_keyframe().unwrap();
    for _ in 0..3 {
        source
            .submit(pattern.next_frame().unwrap().unwrap())
            .unwrap();
    }
    source.drain().unwrap();
    let mut rest = 0;
    while let Some(p) = source.next_packet().unwrap() {
        rest += 1;
        kept.push(p);
    }
    assert_eq!(rest, 3);
    assert!(source.next_packet().unwrap().is_none(), "ended stays ended");
    // Frames cannot follow the drain.
    assert!(
        source
            .submit(pattern.next_frame().unwrap().unwrap())
            .is_err()
    );
    // Packets outlive the encoder, and another thread can release them: the context is
    // destroyed with the last one (the fake aborts if a packet outlives the context).
    drop(source);
    let stream = std::fs::read(env("FAKE_MPP_STREAM")).unwrap();
    let handle = std::thread::spawn(move || {
        let joined: Vec<u8> = kept.iter().flat_map(|p| p.data().to_vec()).collect();
        joined
    });
    let joined = handle.join().unwrap();
    assert!(stream.starts_with(&joined));
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by reconfigure_mid_stream"]
fn child_reconfigure() {
    if !in_child() {
        return;
    }
    let fps = FrameRate::from_fps(25).unwrap();
    let mut source = MppSource::open(MppOptions::new(EncoderConfig::new(
        Codec::H264,
        320,
        240,
        fps,
    )))
    .unwrap();
    let mut pattern = TestPattern::new(320, 240, fps).unwrap();
    source
        .submit(pattern.next_frame().unwrap().unwrap())
        .unwrap();
    source
        .submit(pattern.next_frame().unwrap().unwrap())
        .unwrap();
    let first = source.next_packet().unwrap().unwrap();
    // Reconfiguring stops the encoder (the queued frame is dropped) and applies the new size.
    let mut config = EncoderConfig::new(Codec::H264, 640, 360, fps);
    config.bitrate = 4_000_000;
    source.configure(&config).unwrap();
    let mut big = TestPattern::new(640, 360, fps).unwrap();
    let frame = big.next_frame().unwrap().unwrap();
    let pts = frame.pts;
    source.submit(frame).unwrap();
    let next = source.next_packet().unwrap().unwrap();
    assert!(!next.data().is_empty());
    // Not the second frame's packet, which MPP had already encoded before the reset (a P
    // picture of the old size): the new frame's, an IDR, as MPP forces one after a reset.
    assert!(
        next.keyframe,
        "a stale packet came out after the reconfigure"
    );
    assert_eq!(next.pts, pts);
    // The old size is refused now.
    assert!(
        source
            .submit(pattern.next_frame().unwrap().unwrap())
            .is_err()
    );
    // So are a codec change and an odd size.
    let h265 = EncoderConfig::new(Codec::H265, 640, 360, fps);
    assert!(source.configure(&h265).is_err());
    let odd = EncoderConfig::new(Codec::H264, 641, 360, fps);
    assert!(source.configure(&odd).is_err());
    drop((first, next, source));
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by the fault-injection tests"]
fn child_fault() {
    if !in_child() {
        return;
    }
    let expect = env("CHILD_EXPECT");
    let fps = FrameRate::from_fps(25).unwrap();
    let mut options = MppOptions::new(EncoderConfig::new(Codec::H264, 320, 240, fps));
    options.input = Some(Box::new(TestPattern::new(320, 240, fps).unwrap()));
    options.timeout = Duration::from_millis(20);
    let opened = MppSource::open(options);
    let message = |e: &HalError| e.to_string();
    match expect.as_str() {
        "init" | "codec-mismatch" => {
            let e = opened.err().unwrap();
            assert!(
                matches!(e, HalError::Mpp(MppError::Init(_))),
                "{}",
                message(&e)
            );
            assert!(message(&e).contains("/dev/mpp_service"), "{}", message(&e));
        }
        "create" => {
            let e = opened.err().unwrap();
            assert!(matches!(e, HalError::Mpp(MppError::Create(_))), "{e}");
        }
        "cfg" => {
            let e = opened.err().unwrap();
            assert!(message(&e).contains("MPP_ENC_SET_CFG"), "{e}");
            assert!(message(&e).contains("MPP_ERR_VALUE"), "{e}");
        }
        "timeout" => {
            let mut source = opened.unwrap();
            let packets = drain_all(&mut source);
            assert_eq!(packets.len(), 75, "every packet still arrives");
            assert_eq!(source.stats().timeouts, 1);
        }
        "stall" => {
            let mut source = opened.unwrap();
            let e = source.next_packet().unwrap_err();
            assert!(
                matches!(e, HalError::Mpp(MppError::Stalled { waits: 3, .. })),
                "{e}"
            );
        }
        "get" => {
            let mut source = opened.unwrap();
            let mut got = 0;
            let e = loop {
                match source.next_packet() {
                    Ok(Some(_)) => got += 1,
                    Ok(None) => panic!("the stream ended without the injected error"),
                    Err(e) => break e,
                }
            };
            assert_eq!(got, 3);
            assert!(
                matches!(
                    e,
                    HalError::Mpp(MppError::GetPacket(GetPacketError::Failed(_)))
                ),
                "{e}"
            );
            assert!(e.to_string().contains("MPP_ERR_VPUHW"), "{e}");
        }
        "put" => {
            let mut source = opened.unwrap();
            let e = source.next_packet().unwrap_err();
            assert!(e.to_string().contains("encode_put_frame failed"), "{e}");
        }
        "eos" => {
            let mut source = opened.unwrap();
            assert_eq!(drain_all(&mut source).len(), 7);
        }
        "empty" => {
            let mut source = opened.unwrap();
            let (mut packets, mut losses) = (Vec::new(), Vec::new());
            loop {
                let packet = source.next_packet().unwrap();
                if let Some(loss) = source.take_loss() {
                    losses.push((packets.len(), loss));
                }
                match packet {
                    Some(p) => packets.push(p),
                    None => break,
                }
            }
            // The third picture is lost, reported before the packet that follows it.
            assert_eq!(losses.len(), 1, "{losses:?}");
            let (at, loss) = losses[0];
            assert_eq!(at, 2);
            assert_eq!(loss.frames, 1);
            assert_eq!(loss.from_pts, packets[0].pts + fps.pts(2));
            assert_eq!(loss.to_pts, loss.from_pts + fps.pts(1));
            // Recording goes on, from the next frame, which MPP made an IDR.
            assert!(packets.len() > 3);
            assert!(packets[2].keyframe);
            assert_eq!(packets[2].pts, loss.to_pts);
            assert!(packets.windows(2).all(|w| w[0].pts < w[1].pts));
            assert_eq!(source.stats().lost, 1);
        }
        "no-intra-meta" | "wrong-intra-meta" => {
            let mut source = opened.unwrap();
            let packets = drain_all(&mut source);
            let stats: MppStats = source.stats();
            let n = packets.len() as u64;
            if expect == "no-intra-meta" {
                assert_eq!(
                    (stats.intra_meta_missing, stats.intra_meta_mismatches),
                    (n, 0)
                );
            } else {
                assert_eq!(
                    (stats.intra_meta_missing, stats.intra_meta_mismatches),
                    (0, n)
                );
            }
            // Keyframes come from the bitstream either way.
            assert_eq!(packets.iter().filter(|p| p.keyframe).count(), 5);
        }
        other => panic!("unknown expectation {other}"),
    }
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by a_missing_library_is_one_clear_error"]
fn child_missing_library() {
    if !in_child() {
        return;
    }
    let fps = FrameRate::from_fps(30).unwrap();
    let e = MppSource::open(MppOptions::new(EncoderConfig::new(
        Codec::H264,
        640,
        360,
        fps,
    )))
    .err()
    .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, HalError::Mpp(MppError::Load(_))), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.contains("Rockchip MPP library not found")
            && msg.contains("/nonexistent/librockchip_mpp.so.1"),
        "{msg}"
    );
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by bad_configuration_is_refused_by_the_fake"]
fn child_bad_config() {
    if !in_child() {
        return;
    }
    let mpp = Raw::new();
    // An unknown key is refused (MPP_NOK), as by real MPP.
    let cfg = mpp.cfg();
    // SAFETY: live cfg and a NUL-terminated key.
    let ret = unsafe { (mpp.lib.mpp_enc_cfg_set_s32)(cfg, c"prep:bogus".as_ptr(), 1) };
    assert_eq!(ret, ffi::MPP_NOK);
    // So is HEAD's spelling on a 1.0.x release.
    // SAFETY: live cfg and a NUL-terminated key.
    let ret = unsafe { (mpp.lib.mpp_enc_cfg_set_s32)(cfg, c"rc:fps_in_denom".as_ptr(), 1) };
    assert_eq!(ret, ffi::MPP_NOK);
    // An incomplete configuration is refused.
    // SAFETY: live context and cfg.
    let ret = unsafe { mpp.control(ffi::MPP_ENC_SET_CFG, cfg) };
    assert_eq!(ret, ffi::MPP_ERR_VALUE);
    // A complete one is accepted.
    mpp.configure(cfg, 320, 240);
    let (frame, buffer, group) = mpp.frame(320, 240);
    // SAFETY: live context and frame.
    let ret = unsafe { (mpp.api().encode_put_frame.unwrap())(mpp.ctx, frame) };
    assert_eq!(ret, ffi::MPP_OK);
    mpp.release(frame, buffer, group, cfg);
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by mpp_puts_seis_before_each_idr_unless_told_not_to"]
fn child_sei() {
    if !in_child() {
        return;
    }
    let (mpp, cfg) = Raw::encoding_320x240();
    if env("CHILD_SEI") == "disable" {
        let mut sei = ffi::MPP_ENC_SEI_MODE_DISABLE;
        // SAFETY: live context; the SEI mode is an int.
        let ret = unsafe { mpp.control(ffi::MPP_ENC_SET_SEI_CFG, (&raw mut sei).cast()) };
        assert_eq!(ret, ffi::MPP_OK);
    }
    // A mode past ONE_FRAME is refused, as by MPP.
    let mut bad = 7;
    // SAFETY: live context; the SEI mode is an int.
    let ret = unsafe { mpp.control(ffi::MPP_ENC_SET_SEI_CFG, (&raw mut bad).cast()) };
    assert_eq!(ret, ffi::MPP_NOK);
    let (frame, buffer, group) = mpp.frame(320, 240);
    let lib = &mpp.lib;
    let mut packet = std::ptr::null_mut();
    // SAFETY: live context, frame and out-pointer; the packet's bytes stay valid until
    // mpp_packet_deinit.
    let bytes = unsafe {
        assert_eq!(
            (mpp.api().encode_put_frame.unwrap())(mpp.ctx, frame),
            ffi::MPP_OK
        );
        assert_eq!(
            (mpp.api().encode_get_packet.unwrap())(mpp.ctx, &mut packet),
            ffi::MPP_OK
        );
        let pos = (lib.mpp_packet_get_pos)(packet) as *const u8;
        let len = (lib.mpp_packet_get_length)(packet);
        std::slice::from_raw_parts(pos, len).to_vec()
    };
    let nals: Vec<&[u8]> = camseal_nal::nal_units(&bytes).map(|n| n.payload).collect();
    let types: Vec<u8> = nals.iter().map(|p| p[0] & 0x1f).collect();
    let first_slice = types.iter().position(|&t| t == 5);
    assert!(
        first_slice.is_some(),
        "the first packet is an IDR: {types:?}"
    );
    // MPP's own SEIs: user data unregistered (type 5) with its `uuid_version` and
    // `uuid_rc_cfg` (mpp_enc_impl.cpp), right before the picture.
    let is_mpp_sei = |p: &[u8]| {
        p[0] & 0x1f == 6
            && p.get(1) == Some(&5)
            && p.get(3..7)
                .is_some_and(|u| u == [0x3d, 0x07, 0x6d, 0x45] || u == [0xd7, 0xdc, 0x03, 0xc3])
    };
    let mpp_seis: Vec<usize> = (0..nals.len()).filter(|&i| is_mpp_sei(nals[i])).collect();
    if !mpp_seis.is_empty() {
        let at = first_slice.unwrap();
        assert_eq!(mpp_seis, [at - 2, at - 1], "{types:?}");
    }
    eprintln!("SEI NAL units in the IDR packet: {}", !mpp_seis.is_empty());
    // SAFETY: the packet is live and released once.
    unsafe { (lib.mpp_packet_deinit)(&mut packet) };
    mpp.release(frame, buffer, group, cfg);
    eprintln!("CHILD OK");
}

#[test]
#[ignore = "run in a child process by misuse_is_caught_by_the_fake"]
fn child_misuse() {
    if !in_child() {
        return;
    }
    let (mpp, _cfg) = Raw::encoding_320x240();
    let put = mpp.api().encode_put_frame.unwrap();
    let get = mpp.api().encode_get_packet.unwrap();
    let lib = &mpp.lib;
    let case = env("CHILD_CASE");
    // SAFETY: deliberately not: each case breaks MPP's contract once, and the fake (which
    // never dereferences handles) must catch it before anything happens.
    unsafe {
        match case.as_str() {
            "double-packet-deinit" => {
                let (frame, _, _) = mpp.frame(320, 240);
                put(mpp.ctx, frame);
                let mut packet = std::ptr::null_mut();
                get(mpp.ctx, &mut packet);
                let copy = packet;
                (lib.mpp_packet_deinit)(&mut packet);
                let mut again = copy;
                (lib.mpp_packet_deinit)(&mut again);
            }
            "frame-deinit-after-timed-out-put" => {
                // slow-put:1: the put returns MPP_NOK, but the encoder still holds the frame.
                let (mut frame, _, _) = mpp.frame(320, 240);
                assert_eq!(put(mpp.ctx, frame), ffi::MPP_NOK);
                (lib.mpp_frame_deinit)(&mut frame);
            }
            "frame-deinit-while-queued-async" => {
                // Async mode (CHILD_ASYNC): a queued frame is MPP's until its packet is out.
                let (mut frame, _, _) = mpp.frame(320, 240);
                assert_eq!(put(mpp.ctx, frame), ffi::MPP_OK);
                (lib.mpp_frame_deinit)(&mut frame);
            }
            "dmabuf-closed-after-timed-out-put" => {
                // The frame and buffer stay; only the DMA-buf's fd is closed, then the
                // encoder reads it.
                let file = tempfile::tempfile().unwrap();
                file.set_len(320 * 240 * 3 / 2).unwrap();
                let mut info = ffi::MppBufferInfo {
                    type_: ffi::MPP_BUFFER_TYPE_EXT_DMA,
                    size: 320 * 240 * 3 / 2,
                    fd: std::os::fd::AsRawFd::as_raw_fd(&file),
                    ..ffi::MppBufferInfo::default()
                };
                let mut buffer = std::ptr::null_mut();
                assert_eq!(lib.mpp_buffer_import(&mut buffer, &mut info), ffi::MPP_OK);
                let (frame, own, _) = mpp.frame(320, 240);
                (lib.mpp_frame_set_buffer)(frame, buffer);
                lib.mpp_buffer_put(own);
                assert_eq!(put(mpp.ctx, frame), ffi::MPP_NOK);
                drop(file);
                let mut packet = std::ptr::null_mut();
                get(mpp.ctx, &mut packet);
            }
            "input-frame-meta" => {
                let is_async = std::env::var_os("CHILD_ASYNC").is_some();
                let (frame, buffer, group) = mpp.frame(320, 240);
                assert_eq!(put(mpp.ctx, frame), ffi::MPP_OK);
                let mut packet = std::ptr::null_mut();
                assert_eq!(get(mpp.ctx, &mut packet), ffi::MPP_OK);
                assert!(!packet.is_null());
                let meta = (lib.mpp_packet_get_meta)(packet);
                let mut input = std::ptr::null_mut();
                let found =
                    (lib.mpp_meta_get_frame)(meta, ffi::KEY_INPUT_FRAME, &mut input) == ffi::MPP_OK;
                if is_async {
                    assert!(found && input == frame, "async: KEY_INPUT_FRAME missing");
                } else {
                    assert!(!found, "sync: KEY_INPUT_FRAME attached");
                }
                (lib.mpp_packet_deinit)(&mut packet);
                mpp.release(frame, buffer, group, _cfg);
            }
            "output-packet" => {
                let (frame, buffer, group) = mpp.frame(320, 240);
                let (mut pgroup, mut pbuf) = (std::ptr::null_mut(), std::ptr::null_mut());
                lib.mpp_buffer_group_get_internal(
                    &mut pgroup,
                    ffi::MPP_BUFFER_TYPE_DRM | ffi::MPP_BUFFER_FLAGS_CACHABLE,
                );
                lib.mpp_buffer_get(pgroup, &mut pbuf, 320 * 240);
                let mut pkt = std::ptr::null_mut();
                assert_eq!(
                    (lib.mpp_packet_init_with_buffer)(&mut pkt, pbuf),
                    ffi::MPP_OK
                );
                // The packet holds its own reference on the buffer.
                lib.mpp_buffer_put(pbuf);
                (lib.mpp_packet_set_length)(pkt, 0);
                let meta = (lib.mpp_frame_get_meta)(frame);
                (lib.mpp_meta_set_packet)(meta, ffi::KEY_OUTPUT_PACKET, pkt);
                assert_eq!(put(mpp.ctx, frame), ffi::MPP_OK);
                let mut out = std::ptr::null_mut();
                assert_eq!(get(mpp.ctx, &mut out), ffi::MPP_OK);
                assert_eq!(out, pkt, "MPP encodes into the caller's packet");
                assert!((lib.mpp_packet_get_length)(out) > 0);
                if std::env::var_os("CHILD_END").is_some() {
                    lib.mpp_buffer_sync_end((lib.mpp_packet_get_buffer)(out), true);
                }
                (lib.mpp_packet_deinit)(&mut out);
                (lib.mpp_buffer_group_put)(pgroup);
                mpp.release(frame, buffer, group, _cfg);
            }
            "header-mode" => {
                let each_idr = std::env::var_os("CHILD_EACH_IDR").is_some();
                let mpp = Raw::new();
                let cfg = mpp.cfg();
                mpp.configure(cfg, 320, 240);
                if each_idr {
                    let mut mode = ffi::MPP_ENC_HEADER_MODE_EACH_IDR;
                    mpp.control(ffi::MPP_ENC_SET_HEADER_MODE, (&raw mut mode).cast());
                }
                let mut sei = ffi::MPP_ENC_SEI_MODE_DISABLE;
                mpp.control(ffi::MPP_ENC_SET_SEI_CFG, (&raw mut sei).cast());
                // (IDR, has SPS) of each packet over two GOPs of the fixture.
                let mut seen = Vec::new();
                for _ in 0..20 {
                    let (frame, buffer, group) = mpp.frame(320, 240);
                    assert_eq!(put(mpp.ctx, frame), ffi::MPP_OK);
                    let mut packet = std::ptr::null_mut();
                    assert_eq!(get(mpp.ctx, &mut packet), ffi::MPP_OK);
                    let pos = (lib.mpp_packet_get_pos)(packet).cast::<u8>();
                    let len = (lib.mpp_packet_get_length)(packet);
                    let bytes = std::slice::from_raw_parts(pos, len);
                    let (mut idr, mut sps) = (false, false);
                    for nal in camseal_nal::nal_units(bytes) {
                        if let Some(i) = camseal_nal::classify(Codec::H264, nal.payload) {
                            idr |= i.is_vcl && i.is_keyframe;
                            sps |= i.is_parameter_set;
                        }
                    }
                    seen.push((idr, sps));
                    (lib.mpp_packet_deinit)(&mut packet);
                    (lib.mpp_frame_deinit)(&mut { frame });
                    lib.mpp_buffer_put(buffer);
                    (lib.mpp_buffer_group_put)(group);
                }
                let idrs: Vec<bool> = seen.iter().filter(|s| s.0).map(|s| s.1).collect();
                assert!(idrs.len() >= 2, "{seen:?}");
                assert!(idrs[0], "the first IDR carries the parameter sets");
                assert_eq!(idrs[1], each_idr, "{seen:?}");
                assert!(seen.iter().all(|s| s.0 || !s.1), "{seen:?}");
                (lib.mpp_enc_cfg_deinit)(cfg);
                assert_eq!((lib.mpp_destroy)(mpp.ctx), ffi::MPP_OK);
            }
            "frame-deinit-after-sync-put" => {
                // Sync mode: a put that returned MPP_OK has its frame back (the packet is
                // already encoded), so freeing it is fine.
                let (frame, buffer, group) = mpp.frame(320, 240);
                assert_eq!(put(mpp.ctx, frame), ffi::MPP_OK);
                let mut packet = std::ptr::null_mut();
                get(mpp.ctx, &mut packet);
                (lib.mpp_packet_deinit)(&mut packet);
                mpp.release(frame, buffer, group, _cfg);
            }
            "destroy-with-live-packet" => {
                let (frame, _, _) = mpp.frame(320, 240);
                put(mpp.ctx, frame);
                let mut packet = std::ptr::null_mut();
                get(mpp.ctx, &mut packet);
                (lib.mpp_destroy)(mpp.ctx);
            }
            "leak-at-last-destroy" => {
                let (_frame, _, _) = mpp.frame(320, 240);
                (lib.mpp_destroy)(mpp.ctx);
            }
            "dmabuf-fd-closed-early" => {
                let file = tempfile::tempfile().unwrap();
                file.set_len(1 << 20).unwrap();
                let mut info = ffi::MppBufferInfo {
                    type_: ffi::MPP_BUFFER_TYPE_EXT_DMA,
                    size: 1 << 20,
                    fd: std::os::fd::AsRawFd::as_raw_fd(&file),
                    ..ffi::MppBufferInfo::default()
                };
                let mut buffer = std::ptr::null_mut();
                assert_eq!(lib.mpp_buffer_import(&mut buffer, &mut info), ffi::MPP_OK);
                drop(file);
                lib.mpp_buffer_put(buffer);
            }
            "blocking-get-without-frame" => {
                let mut packet = std::ptr::null_mut();
                get(mpp.ctx, &mut packet);
            }
            "buffer-double-put" => {
                let (mut group, mut buffer) = (std::ptr::null_mut(), std::ptr::null_mut());
                lib.mpp_buffer_group_get_internal(&mut group, ffi::MPP_BUFFER_TYPE_DRM);
                lib.mpp_buffer_get(group, &mut buffer, 4096);
                lib.mpp_buffer_put(buffer);
                lib.mpp_buffer_put(buffer);
            }
            "buffer-put-under-a-frame" => {
                // Our reference and the frame's: putting twice frees the frame's too.
                let (mut frame, buffer, _) = mpp.frame(320, 240);
                lib.mpp_buffer_put(buffer);
                lib.mpp_buffer_put(buffer);
                (lib.mpp_frame_deinit)(&mut frame);
            }
            "wrong-handle-kind" => {
                let (frame, _, _) = mpp.frame(320, 240);
                let mut as_packet = frame;
                (lib.mpp_packet_deinit)(&mut as_packet);
            }
            other => panic!("unknown case {other}"),
        }
    }
    eprintln!("CHILD REACHED END");
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Raw access to the fake through the FFI table, for call sequences the safe API forbids.
struct Raw {
    lib: ffi::Mpp,
    ctx: ffi::MppCtx,
    api: *mut ffi::MppApi,
}

impl Raw {
    fn new() -> Raw {
        let lib = ffi::Mpp::load().unwrap();
        let (mut ctx, mut api) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: out-pointers to locals.
        assert_eq!(unsafe { (lib.mpp_create)(&mut ctx, &mut api) }, ffi::MPP_OK);
        let raw = Raw { lib, ctx, api };
        let mut timeout: i32 = ffi::MPP_POLL_BLOCK;
        // SAFETY: live context; the timeout is an int.
        unsafe { raw.control(ffi::MPP_SET_OUTPUT_TIMEOUT, (&raw mut timeout).cast()) };
        if std::env::var_os("CHILD_ASYNC").is_some() {
            // A non-blocking input timeout at mpp_init selects async mode.
            let mut timeout: i32 = ffi::MPP_POLL_NON_BLOCK;
            // SAFETY: live context; the timeout is an int.
            unsafe { raw.control(ffi::MPP_SET_INPUT_TIMEOUT, (&raw mut timeout).cast()) };
        }
        // SAFETY: live context.
        let ret = unsafe { (raw.lib.mpp_init)(ctx, ffi::MPP_CTX_ENC, ffi::MPP_VIDEO_CODING_AVC) };
        assert_eq!(ret, ffi::MPP_OK);
        raw
    }

    /// A context configured for 320x240 H.264 with header mode EACH_IDR, and its cfg.
    fn encoding_320x240() -> (Raw, ffi::MppEncCfg) {
        let mpp = Raw::new();
        let cfg = mpp.cfg();
        mpp.configure(cfg, 320, 240);
        let mut mode = ffi::MPP_ENC_HEADER_MODE_EACH_IDR;
        // SAFETY: live context; the header mode is an int.
        unsafe { mpp.control(ffi::MPP_ENC_SET_HEADER_MODE, (&raw mut mode).cast()) };
        (mpp, cfg)
    }

    fn api(&self) -> &ffi::MppApi {
        // SAFETY: the vtable lives until mpp_destroy.
        unsafe { &*self.api }
    }

    /// # Safety
    /// `param` must be what `cmd` expects.
    unsafe fn control(&self, cmd: ffi::MpiCmd, param: *mut std::ffi::c_void) -> ffi::MppRet {
        // SAFETY: forwarded.
        unsafe { (self.api().control.unwrap())(self.ctx, cmd, param) }
    }

    fn cfg(&self) -> ffi::MppEncCfg {
        let mut cfg = std::ptr::null_mut();
        // SAFETY: out-pointer to a local.
        let ret = unsafe { (self.lib.mpp_enc_cfg_init)(&mut cfg) };
        assert_eq!(ret, ffi::MPP_OK);
        cfg
    }

    fn configure(&self, cfg: ffi::MppEncCfg, w: i32, h: i32) {
        for (key, value) in [
            (c"prep:width", w),
            (c"prep:height", h),
            (c"prep:hor_stride", w),
            (c"prep:ver_stride", h),
            (c"prep:format", ffi::MPP_FMT_YUV420SP),
            (c"rc:mode", ffi::MPP_ENC_RC_MODE_CBR),
            (c"rc:bps_target", 1_000_000),
            (c"rc:fps_in_num", 25),
            (c"rc:fps_in_denorm", 1),
            (c"rc:fps_out_num", 25),
            (c"rc:fps_out_denorm", 1),
            (c"rc:gop", 25),
            (c"codec:type", ffi::MPP_VIDEO_CODING_AVC),
        ] {
            // SAFETY: live cfg, NUL-terminated key.
            let ret = unsafe { (self.lib.mpp_enc_cfg_set_s32)(cfg, key.as_ptr(), value) };
            assert_eq!(ret, ffi::MPP_OK);
        }
        // SAFETY: live context and cfg.
        let ret = unsafe { self.control(ffi::MPP_ENC_SET_CFG, cfg) };
        assert_eq!(ret, ffi::MPP_OK);
    }

    /// A w x h NV12 frame over a fresh buffer from a fresh internal group.
    fn frame(&self, w: u32, h: u32) -> (ffi::MppFrame, ffi::MppBuffer, ffi::MppBufferGroup) {
        let lib = &self.lib;
        let (mut group, mut buffer, mut frame) = (
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        // SAFETY: out-pointers to locals; live handles.
        unsafe {
            lib.mpp_buffer_group_get_internal(&mut group, ffi::MPP_BUFFER_TYPE_DRM);
            lib.mpp_buffer_get(group, &mut buffer, (w * h * 3 / 2) as usize);
            (lib.mpp_frame_init)(&mut frame);
            (lib.mpp_frame_set_width)(frame, w);
            (lib.mpp_frame_set_height)(frame, h);
            (lib.mpp_frame_set_hor_stride)(frame, w);
            (lib.mpp_frame_set_ver_stride)(frame, h);
            (lib.mpp_frame_set_fmt)(frame, ffi::MPP_FMT_YUV420SP);
            (lib.mpp_frame_set_buffer)(frame, buffer);
        }
        (frame, buffer, group)
    }

    fn release(
        &self,
        mut frame: ffi::MppFrame,
        buffer: ffi::MppBuffer,
        group: ffi::MppBufferGroup,
        cfg: ffi::MppEncCfg,
    ) {
        let lib = &self.lib;
        // SAFETY: each live handle released once, in dependency order.
        unsafe {
            (lib.mpp_frame_deinit)(&mut frame);
            lib.mpp_buffer_put(buffer);
            (lib.mpp_buffer_group_put)(group);
            (lib.mpp_enc_cfg_deinit)(cfg);
            assert_eq!((lib.mpp_destroy)(self.ctx), ffi::MPP_OK);
        }
    }
}

fn drain_all(source: &mut dyn Encoder) -> Vec<Packet> {
    let mut packets = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        packets.push(p);
    }
    packets
}

/// `CHILD_PUT_TIMEOUTS`: how many puts the child expects to time out (0 unless set).
fn expected_put_timeouts() -> u64 {
    std::env::var("CHILD_PUT_TIMEOUTS").map_or(0, |n| n.parse().unwrap())
}

fn in_child() -> bool {
    std::env::var_os("MPP_CHILD").is_some()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pipeline/tests/data/streams")
        .join(name)
}

fn stream_env(name: &str) -> Vec<(&'static str, OsString)> {
    vec![("FAKE_MPP_STREAM", fixture(name).into())]
}

/// The fake library, built once per test binary.
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

/// Runs `test` of this binary in a child process with the fake and `vars`.
fn child(test: &str, vars: &[(&str, OsString)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("MPP_CHILD", "1")
    .env("CAMSEAL_MPP_LIB", fake_lib())
    // Each test names the fault and the MPP version it needs; nothing is inherited from the
    // caller's environment (`bad_configuration_is_refused_by_the_fake` is about 1.0.4 keys).
    .env_remove("FAKE_MPP_FAULT")
    .env_remove("FAKE_MPP_VERSION");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_child_ok(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stderr.contains("CHILD OK"),
        "{what}: child failed ({})\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("fake-mpp: misuse"),
        "{what}: the backend misused MPP\n{stderr}"
    );
    assert!(
        !stderr.contains("fake-mpp: released while held"),
        "{what}: the backend freed what MPP still held\n{stderr}"
    );
}
