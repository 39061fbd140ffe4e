//! The `soft` source through the public API: frame counts, keyframes, parameter sets,
//! timestamps, and a decode of its output by openh264's decoder.

use std::time::Duration;

use camseal_hal::{
    Codec, Encoder, EncoderConfig, FrameRate, HalError, Packet, PixelFormat, Profile, RawFrame,
    SoftConfig, SoftSource,
};
use camseal_nal::{classify, nal_units};

fn source(width: u32, height: u32, fps: u32, frames: u64) -> SoftSource {
    let mut config = SoftConfig::new(width, height, fps);
    config.duration = Some(FrameRate::from_fps(fps).unwrap().time_of(frames));
    SoftSource::new(config).unwrap()
}

fn collect(source: &mut dyn Encoder) -> Vec<Packet> {
    let mut packets = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        packets.push(p);
    }
    packets
}

/// NAL unit types of an access unit, in order.
fn nal_types(data: &[u8]) -> Vec<u8> {
    nal_units(data)
        .filter_map(|nal| classify(Codec::H264, nal.payload))
        .map(|info| info.nal_type)
        .collect()
}

#[test]
fn duration_gives_the_frames_that_start_within_it() {
    for (fps, duration, expected) in [
        (30, Duration::from_secs(1), 30),
        (10, Duration::from_millis(500), 5),
        (30, Duration::from_millis(1010), 31),
        (30, Duration::ZERO, 0),
    ] {
        let mut config = SoftConfig::new(64, 48, fps);
        config.duration = Some(duration);
        let mut s = SoftSource::new(config).unwrap();
        assert_eq!(
            collect(&mut s).len(),
            expected,
            "{fps} fps for {duration:?}"
        );
        // The end is sticky.
        assert!(s.next_packet().unwrap().is_none());
    }
}

#[test]
fn first_packet_is_an_idr_with_sps_and_pps() {
    let mut s = source(160, 96, 30, 2);
    let first = s.next_packet().unwrap().unwrap();
    assert!(first.keyframe);
    assert_eq!(first.codec, Codec::H264);
    assert_eq!(first.pts, 0);
    let types = nal_types(first.data());
    let pos = |t: u8| types.iter().position(|&x| x == t);
    let (sps, pps, idr) = (pos(7).unwrap(), pos(8).unwrap(), pos(5).unwrap());
    assert!(
        sps < idr && pps < idr,
        "parameter sets must precede the IDR slice: {types:?}"
    );
    let second = s.next_packet().unwrap().unwrap();
    assert!(!second.keyframe);
    assert!(!nal_types(second.data()).contains(&5));
}

#[test]
fn keyframe_interval_is_honoured_and_every_idr_carries_its_headers() {
    let mut config = SoftConfig::new(96, 64, 30);
    config.keyframe_interval = 7;
    config.duration = Some(Duration::from_secs(1));
    let packets = collect(&mut SoftSource::new(config).unwrap());
    assert_eq!(packets.len(), 30);
    let keyframes: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes, [0, 7, 14, 21, 28]);
    for (i, p) in packets.iter().enumerate() {
        let types = nal_types(p.data());
        assert_eq!(types.contains(&5), p.keyframe, "frame {i}: {types:?}");
        if p.keyframe {
            assert!(
                types.contains(&7) && types.contains(&8),
                "frame {i}: {types:?}"
            );
        }
    }
}

#[test]
fn default_keyframe_interval_is_one_second() {
    let packets = collect(&mut source(64, 48, 10, 25));
    let keyframes: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes, [0, 10, 20]);
}

#[test]
fn pts_are_strictly_increasing_at_the_frame_rate() {
    let packets = collect(&mut source(64, 48, 25, 20));
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pts, i as u64 * 3600);
    }
    assert!(packets.windows(2).all(|w| w[0].pts < w[1].pts));
}

#[test]
fn each_packet_is_exactly_one_access_unit() {
    for p in collect(&mut source(128, 72, 30, 12)) {
        let aus: Vec<_> = camseal_nal::access_units(Codec::H264, p.data()).collect();
        assert_eq!(aus.len(), 1);
        assert_eq!(aus[0].span, 0..p.len());
        assert_eq!(aus[0].keyframe, p.keyframe);
        assert!(p.data().starts_with(&[0, 0, 0, 1]) || p.data().starts_with(&[0, 0, 1]));
    }
}

#[test]
fn output_decodes_to_pictures_of_the_configured_size() {
    let packets = collect(&mut source(176, 144, 30, 15));
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let mut pictures = 0;
    for p in &packets {
        if let Some(yuv) = decoder.decode(p.data()).unwrap() {
            use openh264::formats::YUVSource;
            assert_eq!(yuv.dimensions(), (176, 144));
            pictures += 1;
        }
    }
    pictures += decoder.flush_remaining().unwrap().len();
    assert_eq!(pictures, packets.len());
    // The pattern moves, so inter frames carry real residual data, not just skip flags.
    let inter: Vec<usize> = packets
        .iter()
        .filter(|p| !p.keyframe)
        .map(Packet::len)
        .collect();
    let mean = inter.iter().sum::<usize>() / inter.len();
    assert!(mean > 200, "inter frames average only {mean} bytes");
}

#[test]
fn forced_keyframe_comes_on_the_next_frame() {
    let mut s = source(64, 48, 30, 10);
    for _ in 0..3 {
        s.next_packet().unwrap().unwrap();
    }
    s.force_keyframe().unwrap();
    let p = s.next_packet().unwrap().unwrap();
    assert!(p.keyframe);
    assert!(nal_types(p.data()).contains(&7));
    assert!(!s.next_packet().unwrap().unwrap().keyframe);
}

#[test]
fn drain_ends_the_stream() {
    let mut config = SoftConfig::new(64, 48, 30);
    config.duration = None;
    let mut s = SoftSource::new(config).unwrap();
    s.next_packet().unwrap().unwrap();
    s.drain().unwrap();
    assert!(s.next_packet().unwrap().is_none());
    assert!(s.next_packet().unwrap().is_none());
}

#[test]
fn configure_resizes_with_a_fresh_idr_and_rejects_what_it_cannot_do() {
    let mut s = source(64, 48, 30, 10);
    s.next_packet().unwrap().unwrap();
    s.next_packet().unwrap().unwrap();

    let rate = FrameRate::from_fps(30).unwrap();
    let mut config = EncoderConfig::new(Codec::H264, 96, 64, rate);
    config.gop = 4;
    s.configure(&config).unwrap();
    assert_eq!(s.config().keyframe_interval, 4);
    let p = s.next_packet().unwrap().unwrap();
    assert!(p.keyframe);
    assert_eq!(
        p.pts,
        2 * 3000,
        "timestamps continue across a reconfiguration"
    );

    let h265 = EncoderConfig::new(Codec::H265, 96, 64, rate);
    assert!(matches!(
        s.configure(&h265),
        Err(HalError::InvalidConfig(_))
    ));
    let mut high = config.clone();
    high.profile = Some(Profile::High);
    assert!(matches!(
        s.configure(&high),
        Err(HalError::InvalidConfig(_))
    ));
    let faster = EncoderConfig::new(Codec::H264, 96, 64, FrameRate::from_fps(60).unwrap());
    let e = s.configure(&faster).unwrap_err();
    assert!(e.to_string().contains("mid-stream"), "{e}");
    let odd = EncoderConfig::new(Codec::H264, 97, 64, rate);
    assert!(matches!(s.configure(&odd), Err(HalError::InvalidConfig(_))));
    // A rejected configuration leaves the source running as before.
    assert!(!s.next_packet().unwrap().unwrap().keyframe);
}

#[test]
fn frame_rate_may_change_before_the_first_packet() {
    let mut s = source(64, 48, 30, 10);
    let rate = FrameRate::from_fps(10).unwrap();
    s.configure(&EncoderConfig::new(Codec::H264, 64, 48, rate))
        .unwrap();
    assert_eq!(s.frame_rate(), rate);
    let pts: Vec<u64> = collect(&mut s).iter().map(|p| p.pts).collect();
    // The 10-frame (1/3 s at 30 fps) limit is re-read at 10 fps: frames at 0, 0.1, 0.2, 0.3 s.
    assert_eq!(pts, [0, 9000, 18000, 27000]);
}

#[test]
fn submit_is_unsupported() {
    let mut s = source(64, 48, 30, 1);
    let frame = RawFrame::nv12(64, 48, 64, 0, Box::new(vec![0u8; 64 * 48 * 3 / 2])).unwrap();
    assert_eq!(frame.format(), PixelFormat::Nv12);
    assert!(matches!(s.submit(frame), Err(HalError::Unsupported(_))));
}
