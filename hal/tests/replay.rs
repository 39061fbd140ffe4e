//! The `file` source through the public API: byte-identical replay, codec selection, errors,
//! limits, looping, pacing, and the recorded fixtures under `pipeline/tests/data/streams/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use camseal_hal::{
    Codec, Encoder, EncoderConfig, FileOptions, FileSource, FrameRate, HalError, Packet, RawFrame,
    SoftConfig, SoftSource,
};

/// `frames` frames of the soft encoder at 30 fps, one keyframe every 5, as one buffer.
fn soft_stream(frames: u64) -> Vec<u8> {
    let mut config = SoftConfig::new(96, 64, 30);
    config.keyframe_interval = 5;
    config.duration = Some(FrameRate::from_fps(30).unwrap().time_of(frames));
    let mut source = SoftSource::new(config).unwrap();
    let mut out = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        out.extend_from_slice(p.data());
    }
    out
}

fn write_temp(bytes: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    file
}

fn options() -> FileOptions {
    FileOptions::default()
}

fn collect(source: &mut dyn Encoder) -> Vec<Packet> {
    let mut packets = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        packets.push(p);
    }
    packets
}

#[test]
fn replay_is_byte_identical_with_keyframes_and_timestamps() {
    let stream = soft_stream(23);
    let file = write_temp(&stream, ".h264");
    let mut source = FileSource::open(file.path(), options()).unwrap();
    assert_eq!(source.codec(), Codec::H264);
    assert_eq!(source.len(), stream.len());
    let rate = source.frame_rate();
    let packets = collect(&mut source);
    assert_eq!(packets.len(), 23);
    let joined: Vec<u8> = packets.iter().flat_map(|p| p.data().to_vec()).collect();
    assert_eq!(joined, stream);
    let keyframes: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes, [0, 5, 10, 15, 20]);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pts, rate.pts(i as u64));
        assert_eq!(p.codec, Codec::H264);
    }
    assert!(packets.windows(2).all(|w| w[0].pts < w[1].pts));
    assert!(source.next_packet().unwrap().is_none());
}

#[test]
fn packets_outlive_the_source_and_cross_threads() {
    let stream = soft_stream(6);
    let file = write_temp(&stream, ".264");
    let mut source = FileSource::open(file.path(), options()).unwrap();
    let packets = collect(&mut source);
    drop(source);
    drop(file); // The file is unlinked; the mapping keeps the bytes.
    let joined = std::thread::spawn(move || {
        packets
            .iter()
            .flat_map(|p| p.data().to_vec())
            .collect::<Vec<u8>>()
    })
    .join()
    .unwrap();
    assert_eq!(joined, stream);
}

#[test]
fn fps_option_overrides_the_stream() {
    let file = write_temp(&soft_stream(4), ".h264");
    let mut opts = options();
    opts.fps = FrameRate::new(25, 1);
    let mut source = FileSource::open(file.path(), opts).unwrap();
    let pts: Vec<u64> = collect(&mut source).iter().map(|p| p.pts).collect();
    assert_eq!(pts, [0, 3600, 7200, 10800]);
}

#[test]
fn codec_precedence_is_explicit_then_extension_then_content() {
    let h264 = soft_stream(3);

    // The extension decides when nothing is explicit.
    let named = write_temp(&h264, ".h264");
    assert_eq!(
        FileSource::open(named.path(), options()).unwrap().codec(),
        Codec::H264
    );

    // No usable extension: the content is sniffed.
    for suffix in [".bin", ""] {
        let anon = write_temp(&h264, suffix);
        assert_eq!(
            FileSource::open(anon.path(), options()).unwrap().codec(),
            Codec::H264
        );
    }

    // An H.264 stream named .h265: the extension beats the content, and the stream then
    // fails validation as H.265 with a message naming the codec it was read as.
    let misnamed = write_temp(&h264, ".h265");
    let err = FileSource::open(misnamed.path(), options()).err().unwrap();
    assert!(
        matches!(
            err,
            HalError::NoParameterSets {
                codec: Codec::H265,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("h265"), "{err}");

    // ... and an explicit codec beats the extension.
    let mut opts = options();
    opts.codec = Some(Codec::H264);
    let mut source = FileSource::open(misnamed.path(), opts).unwrap();
    assert_eq!(source.codec(), Codec::H264);
    assert_eq!(collect(&mut source).len(), 3);

    let mut opts = options();
    opts.codec = Some(Codec::H265);
    assert!(FileSource::open(named.path(), opts).is_err());
}

#[test]
fn empty_file_is_an_empty_stream() {
    let file = write_temp(&[], ".h264");
    let err = FileSource::open(file.path(), options()).err().unwrap();
    assert!(matches!(err, HalError::EmptyStream { .. }), "{err}");
    assert!(err.to_string().contains("is empty"));
}

#[test]
fn garbage_is_not_annex_b() {
    let text = b"this is a text file, not a video stream\n".repeat(100);
    for suffix in [".h264", ".bin"] {
        let file = write_temp(&text, suffix);
        let err = FileSource::open(file.path(), options()).err().unwrap();
        assert!(matches!(err, HalError::NotAnnexB { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("does not look like an H.264/H.265 Annex-B stream"),
            "{msg}"
        );
        assert!(msg.contains(&file.path().display().to_string()), "{msg}");
    }
}

#[test]
fn slices_without_parameter_sets_are_rejected() {
    // Two IDR slices and nothing else.
    let slices = [
        0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x22,
    ];
    let named = write_temp(&slices, ".h264");
    let err = FileSource::open(named.path(), options()).err().unwrap();
    assert!(
        matches!(
            err,
            HalError::NoParameterSets {
                codec: Codec::H264,
                ..
            }
        ),
        "{err}"
    );
    // Without a name, nothing tells the codec.
    let anon = write_temp(&slices, ".bin");
    let err = FileSource::open(anon.path(), options()).err().unwrap();
    assert!(matches!(err, HalError::UnknownCodec { .. }), "{err}");
    assert!(err.to_string().contains(".h264/.h265"), "{err}");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let path = Path::new("/nonexistent/camseal/stream.h264");
    let err = FileSource::open(path, options()).err().unwrap();
    assert!(
        matches!(&err, HalError::Io { path: p, .. } if p == path),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn max_duration_stops_by_timestamp() {
    let file = write_temp(&soft_stream(10), ".h264");
    let mut opts = options();
    opts.fps = FrameRate::new(30, 1);
    opts.max_duration = Some(Duration::from_millis(200));
    let mut source = FileSource::open(file.path(), opts).unwrap();
    // Frames at 0, 33, 67, 100, 133, 167 ms start before 200 ms.
    assert_eq!(collect(&mut source).len(), 6);
    assert!(source.next_packet().unwrap().is_none());
}

#[test]
fn looping_reuses_the_file_with_increasing_timestamps() {
    let stream = soft_stream(12);
    let file = write_temp(&stream, ".h264");
    let once = collect(&mut FileSource::open(file.path(), options()).unwrap());

    let mut opts = options();
    opts.looped = true;
    opts.fps = FrameRate::new(30, 1);
    opts.max_duration = Some(Duration::from_secs(1));
    let mut source = FileSource::open(file.path(), opts).unwrap();
    let looped = collect(&mut source);
    assert_eq!(looped.len(), 30);
    for (i, p) in looped.iter().enumerate() {
        let original = &once[i % once.len()];
        assert_eq!(p.data(), original.data(), "packet {i}");
        // Same bytes, same memory: every loop reads the one mapping.
        assert_eq!(p.data().as_ptr(), looped[i % once.len()].data().as_ptr());
        assert_eq!(p.keyframe, original.keyframe);
        assert_eq!(p.pts, i as u64 * 3000);
    }

    // Without a limit the loop never ends.
    let mut opts = options();
    opts.looped = true;
    let mut endless = FileSource::open(file.path(), opts).unwrap();
    for _ in 0..100 {
        assert!(endless.next_packet().unwrap().is_some());
    }
    endless.drain().unwrap();
    assert!(endless.next_packet().unwrap().is_none());
}

#[test]
fn realtime_paces_packets_at_the_frame_rate() {
    let file = write_temp(&soft_stream(6), ".h264");
    let mut opts = options();
    opts.realtime = true;
    opts.fps = FrameRate::new(100, 1);
    let mut source = FileSource::open(file.path(), opts).unwrap();
    let start = Instant::now();
    assert_eq!(collect(&mut source).len(), 6);
    // A lower bound only (sleeping never ends early): frame 5 is due 50 ms after frame 0.
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn configure_checks_the_recording_and_the_rest_is_unsupported() {
    let file = write_temp(&soft_stream(3), ".h264");
    let mut source = FileSource::open(file.path(), options()).unwrap();
    let rate = source.frame_rate();
    source
        .configure(&EncoderConfig::new(Codec::H264, 96, 64, rate))
        .unwrap();
    let err = source
        .configure(&EncoderConfig::new(Codec::H265, 96, 64, rate))
        .unwrap_err();
    assert!(matches!(err, HalError::InvalidConfig(_)), "{err}");
    let other_rate = FrameRate::new(rate.num() + 1, rate.den()).unwrap();
    assert!(
        source
            .configure(&EncoderConfig::new(Codec::H264, 96, 64, other_rate))
            .is_err()
    );
    assert!(matches!(
        source.force_keyframe(),
        Err(HalError::Unsupported(_))
    ));
    let frame = RawFrame::nv12(96, 64, 96, 0, Box::new(vec![0u8; 96 * 64 * 3 / 2])).unwrap();
    assert!(matches!(
        source.submit(frame),
        Err(HalError::Unsupported(_))
    ));
    assert_eq!(collect(&mut source).len(), 3);
}

#[test]
fn sources_work_as_trait_objects() {
    let file = write_temp(&soft_stream(4), ".h264");
    let mut soft = SoftConfig::new(64, 48, 30);
    soft.duration = Some(Duration::from_millis(100));
    let mut sources: Vec<Box<dyn Encoder>> = vec![
        Box::new(FileSource::open(file.path(), options()).unwrap()),
        Box::new(SoftSource::new(soft).unwrap()),
    ];
    let counts: Vec<usize> = sources
        .iter_mut()
        .map(|s| {
            assert_eq!(s.codec(), Codec::H264);
            collect(s.as_mut()).len()
        })
        .collect();
    assert_eq!(counts, [4, 3]);
    // A source can be moved to another thread.
    let mut boxed = sources.pop().unwrap();
    std::thread::spawn(move || boxed.next_packet().unwrap())
        .join()
        .unwrap();
}

/// One line of the fixtures' MANIFEST: `name codec frames keyframes fps`.
struct Fixture {
    path: PathBuf,
    codec: Codec,
    frames: usize,
    keyframes: usize,
    fps: FrameRate,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipeline/tests/data/streams");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).expect("fixture MANIFEST");
    manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (num, den) = f[4].split_once('/').unwrap();
            Fixture {
                path: dir.join(f[0]),
                codec: f[1].parse().unwrap(),
                frames: f[2].parse().unwrap(),
                keyframes: f[3].parse().unwrap(),
                fps: FrameRate::new(num.parse().unwrap(), den.parse().unwrap()).unwrap(),
            }
        })
        .collect()
}

#[test]
fn recorded_fixtures_replay_exactly() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 2);
    for fx in fixtures {
        let name = fx.path.display().to_string();
        let bytes = std::fs::read(&fx.path).unwrap();
        // The codec comes from the extension here; sniffing must agree.
        let mut source = FileSource::open(&fx.path, options()).unwrap();
        assert_eq!(source.codec(), fx.codec, "{name}");
        assert_eq!(camseal_nal::sniff_codec(&bytes), Some(fx.codec), "{name}");
        assert_eq!(source.frame_rate(), fx.fps, "{name}");
        let packets = collect(&mut source);
        assert_eq!(packets.len(), fx.frames, "{name}");
        let keyframes = packets.iter().filter(|p| p.keyframe).count();
        assert_eq!(keyframes, fx.keyframes, "{name}");
        assert!(packets[0].keyframe, "{name}");
        let joined: Vec<u8> = packets.iter().flat_map(|p| p.data().to_vec()).collect();
        assert!(joined == bytes, "{name}: replay is not byte-identical");
        // Each picture is stamped with the time it is shown: every frame time once, in
        // decode order, which runs backwards only where B-frames are reordered.
        let mut shown: Vec<u64> = packets.iter().map(|p| p.pts).collect();
        let decode_ordered = shown.windows(2).all(|w| w[0] < w[1]);
        shown.sort_unstable();
        let frame_times: Vec<u64> = (0..fx.frames as u64).map(|i| fx.fps.pts(i)).collect();
        assert_eq!(shown, frame_times, "{name}");
        assert_eq!(
            decode_ordered,
            !B_FRAME_FIXTURES.iter().any(|b| name.ends_with(b)),
            "{name}"
        );
        // A keyframe (IDR) is shown after every picture decoded before it.
        for (i, p) in packets.iter().enumerate().filter(|(_, p)| p.keyframe) {
            assert!(
                packets[..i].iter().all(|q| q.pts < p.pts),
                "{name}: keyframe {i}"
            );
        }
    }
}

/// The fixtures that `scripts/gen-fixtures.sh` encodes with B-frames.
const B_FRAME_FIXTURES: [&str; 3] = [
    "h264-high-bframes-slices-640x360.h264",
    "h265-main-640x360.h265",
    "h265-aud-repeat-headers-640x360.hevc",
];

#[test]
fn a_looped_b_frame_recording_keeps_its_presentation_times() {
    let fx = fixtures()
        .into_iter()
        .find(|f| f.path.ends_with(B_FRAME_FIXTURES[0]))
        .unwrap();
    let mut opts = options();
    opts.looped = true;
    opts.max_duration = Some(fx.fps.time_of(2 * fx.frames as u64));
    let mut source = FileSource::open(&fx.path, opts).unwrap();
    let mut shown: Vec<u64> = collect(&mut source).iter().map(|p| p.pts).collect();
    assert_eq!(shown.len(), 2 * fx.frames);
    shown.sort_unstable();
    let frame_times: Vec<u64> = (0..2 * fx.frames as u64).map(|i| fx.fps.pts(i)).collect();
    assert_eq!(shown, frame_times);
}
