//! `Stream::set_recipients`, as the control channel uses it: the segment being recorded keeps
//! the recipients it was opened with, every segment opened afterwards is sealed to the new
//! ones only (a key wrapped ahead of time for the old list is not used), and an empty list
//! is refused without changing anything.

mod common;
mod synth;

use std::time::Instant;

use camseal::engine::{CopyMeter, Engine, EngineConfig, MemorySink};
use camseal::segment::CloseReason;
use camseal::segment::SegmentError;
use camseal::segment::write::HPKE_KEM_X25519;
use common::open_all;
use synth::*;

#[test]
fn new_recipients_apply_from_the_next_segment() {
    let engine = Engine::new(EngineConfig::new(2)).unwrap();
    let sink = MemorySink::new(CopyMeter::new());
    // Segments of 10 frames: a keyframe every 10 frames, a target shorter than that.
    let mut stream = engine
        .open_stream(stream_config(0, 0.2), Box::new(sink.clone()))
        .unwrap();
    for i in 0..60u64 {
        if i == 25 {
            // Mid-segment (segment 2 opened at frame 20).
            assert!(stream.set_recipients(Vec::new()).is_err());
            let from = stream
                .set_recipients(vec![(HPKE_KEM_X25519, recipient_public(2))])
                .unwrap();
            assert_eq!(from, 3);
        }
        let (key, au) = access_unit(i, 10, frame_size(i, 10, 20_000, 4000), 9000);
        stream.push(packet(i, key, au), Instant::now()).unwrap();
    }
    stream.finish(CloseReason::EndOfStream).unwrap();
    engine.shutdown();
    let segments = sink.segments();
    assert_eq!(segments.len(), 6);
    for (seq, (name, bytes)) in segments.iter().enumerate() {
        let old = open_all(bytes, &[1; 32]);
        let new = open_all(bytes, &[2; 32]);
        if seq <= 2 {
            assert!(old.is_ok(), "{name}: {old:?}");
            assert!(matches!(new, Err(SegmentError::NotARecipient)), "{name}");
        } else {
            assert!(matches!(old, Err(SegmentError::NotARecipient)), "{name}");
            assert!(new.is_ok(), "{name}: {new:?}");
        }
    }
}
