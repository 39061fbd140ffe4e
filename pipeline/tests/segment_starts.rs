//! Every segment decodes on its own, whatever the source does: encoders that send parameter
//! sets once or as a buffer of their own, a stream that starts between keyframes, and a
//! source that loses pictures (`Stream::lost`), which becomes a signed source-loss gap while
//! recording goes on.

mod common;
mod synth;

use std::time::Instant;

use camseal::engine::{CopyMeter, Engine, EngineConfig, MemorySink, Pushed, Stream, StreamEvent};
use camseal::footage::{load_headers, verify_footage};
use camseal::nal::{Codec, classify, nal_units};
use camseal::segment::{CloseReason, GapReason};
use camseal_hal::{Loss, Packet};
use common::open_all;
use synth::*;

const SPS: [u8; 9] = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0x8c];
const PPS: [u8; 8] = [0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];

/// Frame `i` of a 10-frame GOP as an encoder in V4L2 `HEADER_MODE_SEPARATE` sends it: no
/// parameter sets in the picture itself.
fn bare_picture(i: u64) -> (bool, Vec<u8>) {
    let (key, au) = access_unit(i, 10, frame_size(i, 10, 6000, 2000), 1500);
    let strip = if key { SPS.len() + PPS.len() } else { 0 };
    assert!(!key || au[..strip] == [&SPS[..], &PPS[..]].concat());
    (key, au[strip..].to_vec())
}

fn open(engine: &Engine, target_s: f64) -> (Stream, MemorySink) {
    let sink = MemorySink::new(CopyMeter::new());
    let stream = engine
        .open_stream(stream_config(0, target_s), Box::new(sink.clone()))
        .unwrap();
    (stream, sink)
}

/// The NAL unit types of a segment's plaintext, in order.
fn nal_types(plain: &[u8]) -> Vec<u8> {
    nal_units(plain)
        .filter_map(|n| classify(Codec::H264, n.payload))
        .map(|info| info.nal_type)
        .collect()
}

fn assert_each_segment_starts_decodable(segments: &[(String, Vec<u8>)]) -> Vec<u8> {
    assert!(segments.len() >= 3, "{} segments", segments.len());
    let mut all = Vec::new();
    for (name, bytes) in segments {
        let (plain, _) = open_all(bytes, &[1; 32]).unwrap();
        let types = nal_types(&plain);
        assert_eq!(
            types.get(..3),
            Some(&[7u8, 8, 5][..]),
            "{name} does not start with SPS, PPS, IDR: {:?}",
            &types[..types.len().min(6)]
        );
        all.extend_from_slice(&plain);
    }
    all
}

#[test]
fn parameter_sets_sent_once_as_their_own_buffer_begin_every_segment() {
    let engine = Engine::new(EngineConfig::new(2)).unwrap();
    let (mut stream, sink) = open(&engine, 0.2);
    // The headers come first, alone, with the IDR's timestamp and no keyframe flag.
    let headers = Packet::from_vec(Codec::H264, 0, false, [&SPS[..], &PPS[..]].concat());
    assert_eq!(stream.push(headers, Instant::now()).unwrap(), Pushed::Held);
    let mut pictures = Vec::new();
    for i in 0..60 {
        let (key, au) = bare_picture(i);
        pictures.extend_from_slice(&au);
        assert_eq!(
            stream.push(packet(i, key, au), Instant::now()).unwrap(),
            Pushed::Queued
        );
    }
    let stats = stream.finish(CloseReason::EndOfStream).unwrap();
    assert_eq!(stats.frames, 60);
    let all = assert_each_segment_starts_decodable(&sink.segments());
    // Nothing but parameter sets was added: the pictures are all there, in order.
    let slices: Vec<u8> = nal_units(&all)
        .filter(|n| classify(Codec::H264, n.payload).is_some_and(|i| i.is_vcl))
        .flat_map(|n| all[n.span].to_vec())
        .collect();
    assert!(slices == pictures, "the pictures changed on the way");
}

#[test]
fn a_stream_that_starts_between_keyframes_begins_at_the_first_one_and_says_so() {
    let engine = Engine::new(EngineConfig::new(1)).unwrap();
    let (mut stream, sink) = open(&engine, 0.2);
    // Frames 7, 8, 9 of a GOP that began before the camera was opened.
    for i in 7..10 {
        let (key, au) = access_unit(i, 10, 3000, 1500);
        assert!(!key);
        assert_eq!(
            stream.push(packet(i, key, au), Instant::now()).unwrap(),
            Pushed::Skipped
        );
    }
    for i in 10..50 {
        let (key, au) = access_unit(i, 10, 3000, 1500);
        assert_eq!(
            stream.push(packet(i, key, au), Instant::now()).unwrap(),
            Pushed::Queued
        );
    }
    let events = stream.take_events();
    let stats = stream.finish(CloseReason::EndOfStream).unwrap();
    assert_eq!((stats.frames, stats.lost_frames), (40, 3));
    assert!(
        events.iter().any(|e| matches!(
            e,
            StreamEvent::Dropped {
                reason: GapReason::SourceLoss,
                frames: 3,
                from_pts: 21_000,
                to_pts: 30_000
            }
        )),
        "{events:?}"
    );
    let segments = sink.segments();
    assert_each_segment_starts_decodable(&segments);
    let camseal::segment::Parsed::Complete(first, _) =
        camseal::segment::Header::parse(&segments[0].1).unwrap()
    else {
        panic!("the first segment's header is cut short");
    };
    first.verify_signature().unwrap();
    let gaps = first.gaps();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].reason, GapReason::SourceLoss);
    assert_eq!(
        (gaps[0].frames, gaps[0].from_pts, gaps[0].to_pts),
        (3, 21_000, 30_000)
    );
}

#[test]
fn a_loss_skips_to_the_next_keyframe_becomes_a_signed_gap_and_recording_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(EngineConfig::new(2)).unwrap();
    let sink = camseal::engine::DirSink::new(dir.path()).unwrap();
    let mut stream = engine
        .open_stream(stream_config(0, 100.0), Box::new(sink))
        .unwrap();
    let mut outcomes = Vec::new();
    for i in 0..40u64 {
        if i == 13 {
            // The encoder lost picture 13 (an empty packet, an errored buffer).
            stream.lost(Loss {
                frames: 1,
                from_pts: 13 * 3000,
                to_pts: 14 * 3000,
            });
            continue;
        }
        let (key, au) = access_unit(i, 10, 3000, 1500);
        outcomes.push((i, stream.push(packet(i, key, au), Instant::now()).unwrap()));
    }
    let events = stream.take_events();
    let stats = stream.finish(CloseReason::EndOfStream).unwrap();
    // 14..19 refer to the lost picture and are skipped; 20 is a keyframe and recording goes on.
    for (i, pushed) in &outcomes {
        let want = if (14..20).contains(i) {
            Pushed::Skipped
        } else {
            Pushed::Queued
        };
        assert_eq!(*pushed, want, "frame {i}");
    }
    assert_eq!((stats.frames, stats.lost_frames), (33, 7));
    assert!(
        events.iter().any(|e| matches!(
            e,
            StreamEvent::Dropped {
                reason: GapReason::SourceLoss,
                frames: 7,
                ..
            }
        )),
        "{events:?}"
    );
    // The gap is in the header the keyframe began, signed, and verification accepts it.
    let paths = camseal::footage::collect_paths(&[dir.path().to_path_buf()]).unwrap();
    let files = load_headers(&paths, None).unwrap();
    assert_eq!(
        files.len(),
        2,
        "the loss must close the segment at the next keyframe"
    );
    let (results, chain) = verify_footage(&files);
    chain.unwrap();
    let gaps: Vec<_> = results
        .iter()
        .flat_map(|r| r.as_ref().unwrap().gaps.clone())
        .collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].reason, GapReason::SourceLoss);
    assert_eq!(
        (gaps[0].frames, gaps[0].from_pts, gaps[0].to_pts),
        (7, 13 * 3000, 20 * 3000)
    );
}
