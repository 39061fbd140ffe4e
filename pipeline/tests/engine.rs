//! The engine: byte-identical output for any worker count, records in order, many streams on
//! one pool, the drop policy's signed gap markers, and no user-space copy of video bytes.

mod common;
mod synth;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camseal::engine::{
    CopyMeter, DirSink, Engine, EngineConfig, HandOff, MemorySink, Overload, Pushed, SegmentInfo,
    SegmentOutput, SegmentSink, Stream, StreamEvent,
};
use camseal::footage::{decrypt_footage, load_headers, verify_footage};
use camseal::recorder::ChainState;
use camseal::segment::{CloseReason, GapReason};
use common::open_all;
use synth::*;

/// Seals `frames` synthetic frames on one stream with `workers` workers; returns the
/// segments (name, bytes) and the plaintext that went in.
fn seal_with(
    workers: usize,
    caller_seals: bool,
    hand_off: HandOff,
    frames: u64,
) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let mut config = EngineConfig::new(workers);
    config.caller_seals = caller_seals;
    config.hand_off = hand_off;
    config.max_chunk = 4096;
    config.buffers = 24;
    let engine = Engine::new(config).unwrap();
    let sink = MemorySink::new(CopyMeter::new());
    let mut stream = engine
        .open_stream(stream_config(0, 0.2), Box::new(sink.clone()))
        .unwrap();
    let mut input = Vec::new();
    for i in 0..frames {
        // Keyframes of 40 KiB in NAL units of 9000 bytes: ten chunks, some continuations.
        let size = frame_size(i, 10, 40 << 10, 6000);
        let (key, au) = access_unit(i, 10, size, 9000);
        input.extend_from_slice(&au);
        assert_eq!(
            stream.push(packet(i, key, au), Instant::now()).unwrap(),
            Pushed::Queued
        );
    }
    let stats = stream.finish(CloseReason::EndOfStream).unwrap();
    assert_eq!(stats.frames, frames);
    assert_eq!(stats.video_bytes, input.len() as u64);
    engine.shutdown();
    (sink.segments(), input)
}

#[test]
fn output_is_identical_for_any_worker_count() {
    let (one, input) = seal_with(1, false, HandOff::Always, 60);
    assert!(one.len() >= 5, "{} segments", one.len());
    // Every segment opens, in order, to exactly the input.
    let mut plain = Vec::new();
    for (_, bytes) in &one {
        let (p, _) = open_all(bytes, &[1; 32]).unwrap();
        plain.extend_from_slice(&p);
    }
    assert!(plain == input, "decrypted stream differs from the input");
    // `Always`: every keyframe is split over the workers while the source thread seals and
    // helps; `Measured`: whatever the measured costs decide on this machine.
    for (workers, caller_seals, hand_off) in [
        (1, true, HandOff::Always),
        (2, false, HandOff::Always),
        (2, true, HandOff::Always),
        (2, true, HandOff::Measured),
        (4, true, HandOff::Always),
        (8, false, HandOff::Always),
        (8, true, HandOff::Measured),
    ] {
        let (other, _) = seal_with(workers, caller_seals, hand_off, 60);
        let what = format!("{workers} workers, caller seals: {caller_seals}, {hand_off:?}");
        assert_eq!(other.len(), one.len(), "{what}");
        for ((n1, b1), (n2, b2)) in one.iter().zip(&other) {
            assert_eq!(n1, n2);
            assert!(b1 == b2, "{n1} differs with {what}");
        }
    }
}

#[test]
fn streams_share_the_pool_and_keep_their_own_chains() {
    let engine = Engine::new(EngineConfig::new(2)).unwrap();
    let mut handles = Vec::new();
    for id in 0..3u32 {
        let sink = MemorySink::new(CopyMeter::new());
        let mut stream = engine
            .open_stream(stream_config(id, 0.3), Box::new(sink.clone()))
            .unwrap();
        handles.push(std::thread::spawn(move || {
            let mut input = Vec::new();
            // Stream 0 is a "main" stream of large frames, the others small "sub" streams.
            let (key, other) = if id == 0 {
                (300_000, 60_000)
            } else {
                (8000, 2000)
            };
            for i in 0..45u64 {
                let (k, au) = access_unit(i, 15, frame_size(i, 15, key, other), 20_000);
                input.extend_from_slice(&au);
                stream.push(packet(i, k, au), Instant::now()).unwrap();
            }
            let stats = stream.finish(CloseReason::EndOfStream).unwrap();
            (id, stats, sink.segments(), input)
        }));
    }
    for h in handles {
        let (id, stats, segments, input) = h.join().unwrap();
        assert_eq!(stats.frames, 45);
        assert_eq!(stats.segments, segments.len() as u64);
        let mut plain = Vec::new();
        let mut prev = [0u8; 32];
        for (seq, (name, bytes)) in segments.iter().enumerate() {
            assert!(name.contains(&format!("-s{id}-")), "{name}");
            let mut reader = camseal::segment::read::SegmentReader::new(&bytes[..]).unwrap();
            let header = reader.header().clone();
            assert_eq!(header.stream_id, id);
            assert_eq!(header.segment_seq, seq as u64);
            assert_eq!(header.prev_header_hash, prev, "chain of stream {id}");
            let _ = reader.next_item();
            let (p, v) = open_all(bytes, &[1; 32]).unwrap();
            prev = v.header_hash;
            plain.extend_from_slice(&p);
        }
        assert!(plain == input, "stream {id} does not decrypt to its input");
        assert_eq!(
            stats
                .latency
                .histogram(camseal::engine::Stage::Appended)
                .len(),
            45
        );
    }
}

/// An output that takes `delay` per write, to play a slow disk or network.
struct Throttled<S> {
    inner: S,
    delay: Duration,
}

impl<S: SegmentSink> SegmentSink for Throttled<S> {
    fn open(&mut self, info: &SegmentInfo) -> std::io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(ThrottledOutput {
            inner: self.inner.open(info)?,
            delay: self.delay,
        }))
    }
}

struct ThrottledOutput {
    inner: Box<dyn SegmentOutput>,
    delay: Duration,
}

impl SegmentOutput for ThrottledOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.write(bytes)
    }

    fn publish(self: Box<Self>) -> std::io::Result<std::path::PathBuf> {
        self.inner.publish()
    }
}

#[test]
fn dropped_frames_become_signed_gaps_that_verify_and_decrypt_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(1);
    config.buffers = 4;
    config.max_chunk = 16 << 10;
    let engine = Engine::new(config).unwrap();
    let mut sc = stream_config(0, 100.0);
    sc.overload = Overload::DropFrames;
    let sink = Throttled {
        inner: DirSink::new(dir.path()).unwrap(),
        delay: Duration::from_millis(3),
    };
    let mut stream = engine.open_stream(sc, Box::new(sink)).unwrap();
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut events = Vec::new();
    for i in 0..120u64 {
        let (k, au) = access_unit(i, 6, frame_size(i, 6, 40_000, 12_000), 16_000);
        match stream
            .push(packet(i, k, au.clone()), Instant::now())
            .unwrap()
        {
            Pushed::Queued => kept.extend_from_slice(&au),
            Pushed::Dropped => dropped += 1,
            other => panic!("frame {i}: {other:?} from a source that loses nothing"),
        }
        events.extend(stream.take_events());
    }
    let stats = stream.finish(CloseReason::EndOfStream).unwrap();
    assert!(dropped > 0, "the slow sink never made the engine drop");
    assert_eq!(stats.dropped_frames, dropped);
    assert_eq!(stats.frames + dropped, 120);

    // Every run of drops that a frame followed is an event and a gap in the next header.
    let event_frames: u64 = events
        .iter()
        .map(|e| match e {
            StreamEvent::Dropped { frames, .. } => *frames,
            StreamEvent::Published(_) => 0,
        })
        .sum();
    let paths = camseal::footage::collect_paths(&[dir.path().to_path_buf()]).unwrap();
    let files = load_headers(&paths, None).unwrap();
    let (results, chain) = verify_footage(&files);
    chain.unwrap();
    let mut gap_frames = 0;
    for r in &results {
        let r = r.as_ref().unwrap();
        for g in &r.gaps {
            assert_eq!(g.reason, GapReason::DroppedFrames);
            assert!(g.frames > 0 && g.from_pts < g.to_pts);
            gap_frames += g.frames;
        }
    }
    assert!(gap_frames > 0, "no gap marker written");
    assert!(gap_frames <= dropped && gap_frames == event_frames.min(gap_frames));
    let mut plain = Vec::new();
    let reports = decrypt_footage(&files, &[1; 32], false, &mut plain, |_| {}).unwrap();
    let decrypt_gaps: u64 = reports.iter().flat_map(|r| &r.gaps).map(|g| g.frames).sum();
    assert_eq!(decrypt_gaps, gap_frames);
    assert!(
        plain == kept,
        "decrypted frames differ from the frames kept"
    );
}

#[test]
fn only_a_copying_sink_copies_video_bytes() {
    let run = |sink: Box<dyn SegmentSink>| {
        let engine = Engine::new(EngineConfig::new(2)).unwrap();
        let mut stream = engine.open_stream(stream_config(0, 1.0), sink).unwrap();
        let mut bytes = 0;
        for i in 0..40u64 {
            let (k, au) = access_unit(i, 10, frame_size(i, 10, 150_000, 20_000), 40_000);
            bytes += au.len();
            stream.push(packet(i, k, au), Instant::now()).unwrap();
        }
        stream.finish(CloseReason::EndOfStream).unwrap();
        bytes
    };
    let dir = tempfile::tempdir().unwrap();
    let meter = CopyMeter::new();
    // The directory sink writes pool buffers straight to the file: nothing to count.
    run(Box::new(CountingDir {
        inner: DirSink::new(dir.path()).unwrap(),
        seen: Arc::default(),
    }));
    assert_eq!(meter.bytes(), 0);
    // The in-memory sink copies every byte it gets, and its meter shows it.
    let video = run(Box::new(MemorySink::new(meter.clone())));
    assert!(meter.bytes() > video as u64, "{} of {video}", meter.bytes());
}

/// A directory sink that checks each record it is given lies in memory it has seen before
/// (the pool's buffers are reused, not reallocated per record).
struct CountingDir {
    inner: DirSink,
    seen: Arc<Mutex<std::collections::HashSet<usize>>>,
}

impl SegmentSink for CountingDir {
    fn open(&mut self, info: &SegmentInfo) -> std::io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(CountingOutput {
            inner: self.inner.open(info)?,
            seen: Arc::clone(&self.seen),
        }))
    }
}

struct CountingOutput {
    inner: Box<dyn SegmentOutput>,
    seen: Arc<Mutex<std::collections::HashSet<usize>>>,
}

impl SegmentOutput for CountingOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut seen = self.seen.lock().unwrap();
        seen.insert(bytes.as_ptr() as usize);
        // 32 pool buffers, plus the header and trailer of each segment.
        assert!(seen.len() <= 32 + 2 * 8, "records come from fresh memory");
        drop(seen);
        self.inner.write(bytes)
    }

    fn publish(self: Box<Self>) -> std::io::Result<std::path::PathBuf> {
        self.inner.publish()
    }
}

/// A sink whose publication (fsync, upload) is slow: the publisher's queue fills up.
struct SlowPublish(MemorySink);

impl SegmentSink for SlowPublish {
    fn open(&mut self, info: &SegmentInfo) -> std::io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(SlowOutput(self.0.open(info)?)))
    }
}

struct SlowOutput(Box<dyn SegmentOutput>);

impl SegmentOutput for SlowOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write(bytes)
    }

    fn publish(self: Box<Self>) -> std::io::Result<std::path::PathBuf> {
        std::thread::sleep(Duration::from_millis(4));
        self.0.publish()
    }
}

#[test]
fn a_slow_publisher_with_many_streams_does_not_deadlock() {
    let engine = Engine::new(EngineConfig::new(2)).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for id in 0..4u32 {
        let sink = MemorySink::new(CopyMeter::new());
        // A segment per frame (the maximum length, three targets, is under one frame):
        // far more segments than the publisher's queue holds.
        let mut stream = engine
            .open_stream(stream_config(id, 0.01), Box::new(SlowPublish(sink.clone())))
            .unwrap();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            for i in 0..80u64 {
                let (k, au) = access_unit(i, 2, frame_size(i, 2, 70_000, 5000), 30_000);
                stream.push(packet(i, k, au), Instant::now()).unwrap();
            }
            let stats = stream.finish(CloseReason::EndOfStream).unwrap();
            done_tx
                .send((stats.segments, sink.segments().len()))
                .unwrap();
        });
    }
    for _ in 0..4 {
        let (segments, published) = done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a stream hung: deadlock between the appender and the publisher");
        assert_eq!(segments, 80);
        assert_eq!(published, 80);
    }
}

#[test]
fn a_frame_with_more_chunks_than_buffers_goes_through() {
    // 2 buffers, 1 KiB chunks, 40 KB keyframes: every keyframe needs 20 times the pool, so
    // its first records must reach the writer (and free their buffers) before its last
    // chunks can be queued.
    let mut config = EngineConfig::new(2);
    config.buffers = 2;
    config.max_chunk = 1024;
    let engine = Engine::new(config).unwrap();
    let sink = MemorySink::new(CopyMeter::new());
    let mut stream = engine
        .open_stream(stream_config(0, 100.0), Box::new(sink.clone()))
        .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut input = Vec::new();
        for i in 0..12u64 {
            let (k, au) = access_unit(i, 4, frame_size(i, 4, 40_000, 3000), 8000);
            input.extend_from_slice(&au);
            stream.push(packet(i, k, au), Instant::now()).unwrap();
        }
        let stats = stream.finish(CloseReason::EndOfStream).unwrap();
        done_tx.send((stats, input)).unwrap();
    });
    let (stats, input) = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the stream hung: records held back waiting for buffers they hold");
    assert_eq!(stats.frames, 12);
    assert!(
        stats.records > 12 * 10,
        "frames were not split: {}",
        stats.records
    );
    assert_eq!(stats.video_bytes, input.len() as u64);
    assert_eq!(sink.segments().len() as u64, stats.segments);
}

#[test]
fn a_stream_that_sealed_nothing_gives_its_reserved_sequence_number_back() {
    let dir = tempfile::tempdir().unwrap();
    let chain_path = dir.path().join("0.chain");
    let engine = Engine::new(EngineConfig::new(1)).unwrap();
    let open = |engine: &Engine| open_chained(engine, &chain_path);

    // Opening reserves sequence 0; a clean finish without frames releases it.
    let (stream, _) = open(&engine);
    assert_eq!(ChainState::load(&chain_path).unwrap().next_seq, 1);
    stream.finish(CloseReason::Shutdown).unwrap();
    assert_eq!(
        ChainState::load(&chain_path).unwrap(),
        ChainState::default()
    );

    // The next run uses sequence 0 and leaves 1 as the next.
    let (mut stream, sink) = open(&engine);
    let (k, au) = access_unit(0, 1, 4000, 4000);
    stream.push(packet(0, k, au), Instant::now()).unwrap();
    stream.finish(CloseReason::Shutdown).unwrap();
    assert_eq!(sink.segments().len(), 1);
    let after_one = ChainState::load(&chain_path).unwrap();
    assert_eq!(after_one.next_seq, 1);

    // An idle run after it changes nothing either.
    let (stream, _) = open(&engine);
    stream.finish(CloseReason::Shutdown).unwrap();
    assert_eq!(ChainState::load(&chain_path).unwrap(), after_one);

    // A run that fails before its first segment (the stream is dropped) gives it back too.
    let (stream, _) = open(&engine);
    drop(stream);
    assert_eq!(ChainState::load(&chain_path).unwrap(), after_one);

    // A crash (no drop code runs) keeps the reservation.
    let (stream, _) = open(&engine);
    std::mem::forget(stream);
    assert_eq!(ChainState::load(&chain_path).unwrap().next_seq, 2);
}

#[test]
fn a_crash_before_the_first_segment_of_a_stream_is_declared_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let chain_path = dir.path().join("0.chain");
    let engine = Engine::new(EngineConfig::new(1)).unwrap();
    let open = |engine: &Engine| open_chained(engine, &chain_path);
    // Two runs crash (no drop code runs) before writing anything: 0 and 1 are reserved.
    for _ in 0..2 {
        let (stream, _) = open(&engine);
        std::mem::forget(stream);
    }
    let (mut stream, sink) = open(&engine);
    let (k, au) = access_unit(0, 1, 4000, 4000);
    stream.push(packet(0, k, au), Instant::now()).unwrap();
    stream.finish(CloseReason::Shutdown).unwrap();
    let segments = sink.segments();
    let header = camseal::segment::read::SegmentReader::new(&segments[0].1[..])
        .unwrap()
        .header()
        .clone();
    // The first segment written is 2: it declares 0..=1 crashed and starts the stream.
    assert_eq!(header.segment_seq, 2);
    assert_eq!(header.prev_header_hash, [0; 32]);
    assert!(
        header
            .gaps()
            .iter()
            .any(|g| g.reason == camseal::segment::GapReason::Crash
                && g.lost_segments == Some((0, 1)))
    );
    assert_eq!(header.predecessor_seq(), None);
}

/// Opens stream 0 keeping its chain state at `chain_path`, into a memory sink.
fn open_chained(engine: &Engine, chain_path: &std::path::Path) -> (Stream, MemorySink) {
    let mut config = stream_config(0, 100.0);
    config.chain_path = Some(chain_path.to_path_buf());
    let sink = MemorySink::new(CopyMeter::new());
    (
        engine.open_stream(config, Box::new(sink.clone())).unwrap(),
        sink,
    )
}
