//! Segment boundaries: a keyframe that opens a segment does not wait for the previous
//! segment's trailer (format v2 chains by header hash), and the output keeps its order and
//! its chain.

mod common;
mod synth;

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use camseal::engine::{
    CopyMeter, Engine, EngineConfig, HandOff, MemorySink, Pushed, SegmentInfo, SegmentOutput,
    SegmentSink,
};
use camseal::recorder::ChainState;
use camseal::segment::CloseReason;
use camseal::segment::read::SegmentReader;
use common::open_all;
use synth::*;

/// Holds every write of segment 0 after its header until the gate opens: the writer thread
/// is stuck inside segment 0, so its trailer cannot be signed.
#[derive(Clone, Default)]
struct Gate {
    state: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Default)]
struct GateState {
    open: bool,
    /// Writes segment 0's output has finished.
    seg0_writes: usize,
}

impl Gate {
    fn release(&self) {
        let (m, c) = &*self.state;
        m.lock().unwrap().open = true;
        c.notify_all();
    }

    fn seg0_writes(&self) -> usize {
        self.state.0.lock().unwrap().seg0_writes
    }
}

struct GatedSink {
    inner: MemorySink,
    gate: Gate,
}

impl SegmentSink for GatedSink {
    fn open(&mut self, info: &SegmentInfo) -> std::io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(GatedOutput {
            inner: self.inner.open(info)?,
            gate: (info.seq == 0).then(|| self.gate.clone()),
        }))
    }
}

struct GatedOutput {
    inner: Box<dyn SegmentOutput>,
    gate: Option<Gate>,
}

impl SegmentOutput for GatedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(gate) = &self.gate {
            let (m, c) = &*gate.state;
            let mut state = m.lock().unwrap();
            // The header goes through; everything after it waits for the gate.
            while state.seg0_writes >= 1 && !state.open {
                state = c.wait(state).unwrap();
            }
            state.seg0_writes += 1;
        }
        self.inner.write(bytes)
    }

    fn publish(self: Box<Self>) -> std::io::Result<std::path::PathBuf> {
        self.inner.publish()
    }
}

#[test]
fn a_keyframe_that_opens_a_segment_does_not_wait_for_the_previous_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let chain_path = dir.path().join("0.chain");
    let engine = Engine::new(EngineConfig::new(1)).unwrap();
    let memory = MemorySink::new(CopyMeter::new());
    let gate = Gate::default();
    let sink = GatedSink {
        inner: memory.clone(),
        gate: gate.clone(),
    };
    // Segments of 0.1 s (three frames at 30 fps), a keyframe every three frames: frame 3
    // closes segment 0 and opens segment 1.
    let mut config = stream_config(0, 0.1);
    config.chain_path = Some(chain_path.clone());
    let mut stream = engine.open_stream(config, Box::new(sink)).unwrap();
    let (boundary_tx, boundary_rx) = mpsc::channel();
    let source = std::thread::spawn(move || {
        let mut input = Vec::new();
        for i in 0..6u64 {
            let (key, au) = access_unit(i, 3, frame_size(i, 3, 30_000, 6000), 8000);
            input.extend_from_slice(&au);
            assert_eq!(
                stream.push(packet(i, key, au), Instant::now()).unwrap(),
                Pushed::Queued
            );
            if i == 3 {
                // The chain already names segment 0's header for what follows.
                boundary_tx.send(stream.chain()).unwrap();
            }
        }
        let stats = stream.finish(CloseReason::EndOfStream).unwrap();
        (stats, input)
    });
    // The writer is held inside segment 0, before its first record: if opening segment 1
    // waited for segment 0's trailer, this would time out. (A deadlock detector, not a
    // timing assertion: nothing releases the writer until the push has returned.)
    let chain = boundary_rx.recv_timeout(Duration::from_secs(60));
    let writes_then = gate.seg0_writes();
    gate.release();
    let chain = chain.expect("the keyframe that opens segment 1 waited for segment 0's trailer");
    // At most the header (the writer may not have reached even that): no record, no trailer.
    assert!(
        writes_then <= 1,
        "segment 0 got {writes_then} writes past the gate"
    );
    let (stats, input) = source.join().unwrap();
    engine.shutdown();

    let segments = memory.segments();
    assert_eq!(segments.len(), 2);
    assert_eq!(stats.segments, 2);
    let h0 = SegmentReader::new(&segments[0].1[..])
        .unwrap()
        .header()
        .clone();
    let h1 = SegmentReader::new(&segments[1].1[..])
        .unwrap()
        .header()
        .clone();
    assert_eq!((h0.segment_seq, h1.segment_seq), (0, 1));
    assert_eq!(chain.next_seq, 1);
    assert_eq!(chain.prev_header_hash, h0.hash());
    assert_eq!(
        h1.prev_header_hash,
        h0.hash(),
        "segment 1 names segment 0's header"
    );
    // Everything decrypts, in order, to the input.
    let mut plain = Vec::new();
    for (_, bytes) in &segments {
        let (p, _) = open_all(bytes, &[1; 32]).unwrap();
        plain.extend_from_slice(&p);
    }
    assert!(plain == input, "decrypted stream differs from the input");
    // The stored chain state moved past both segments, naming the last header.
    assert_eq!(
        ChainState::load(&chain_path).unwrap(),
        ChainState {
            next_seq: 2,
            prev_header_hash: h1.hash(),
        }
    );
}

#[test]
fn segments_shorter_than_the_sealing_backlog_stay_in_order() {
    // One-frame segments of ten chunks each, sealed by four workers: the next segment's
    // header is ordered behind the previous segment's final record even while that
    // segment's chunks are still being sealed.
    let run = |workers: usize| {
        let mut config = EngineConfig::new(workers);
        config.max_chunk = 4096;
        config.hand_off = HandOff::Always;
        let engine = Engine::new(config).unwrap();
        let sink = MemorySink::new(CopyMeter::new());
        let mut stream = engine
            .open_stream(stream_config(0, 0.01), Box::new(sink.clone()))
            .unwrap();
        let mut input = Vec::new();
        for i in 0..24u64 {
            let (key, au) = access_unit(i, 1, 40 << 10, 9000);
            input.extend_from_slice(&au);
            stream.push(packet(i, key, au), Instant::now()).unwrap();
        }
        let stats = stream.finish(CloseReason::EndOfStream).unwrap();
        engine.shutdown();
        assert_eq!(stats.segments, 24);
        (sink.segments(), input)
    };
    let (one, input) = run(1);
    let mut plain = Vec::new();
    let mut prev = [0u8; 32];
    for (seq, (_, bytes)) in one.iter().enumerate() {
        let header = SegmentReader::new(&bytes[..]).unwrap().header().clone();
        assert_eq!(header.segment_seq, seq as u64);
        assert_eq!(header.prev_header_hash, prev);
        prev = header.hash();
        plain.extend_from_slice(&open_all(bytes, &[1; 32]).unwrap().0);
    }
    assert!(plain == input);
    let (four, _) = run(4);
    assert!(one == four, "output depends on the worker count");
}
