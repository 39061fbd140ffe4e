//! Backpressure: a sink slower than the source stalls the source, memory stays bounded by
//! the engine's configuration, and no frame is lost.
//!
//! Alone in its test binary, so the peak RSS it reads is its own.

mod synth;

use std::io::Read;
use std::time::{Duration, Instant};

use camseal::engine::{
    DirSink, Engine, EngineConfig, SegmentInfo, SegmentOutput, SegmentSink, Stage,
};
use camseal::footage::{collect_paths, decrypt_footage, load_headers};
use camseal::segment::CloseReason;
use sha2::{Digest, Sha256};
use synth::*;

/// Writes through to a directory at no more than `bytes_per_sec`.
struct Throttled {
    inner: DirSink,
    bytes_per_sec: f64,
}

impl SegmentSink for Throttled {
    fn open(&mut self, info: &SegmentInfo) -> std::io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(ThrottledOutput {
            inner: self.inner.open(info)?,
            bytes_per_sec: self.bytes_per_sec,
        }))
    }
}

struct ThrottledOutput {
    inner: Box<dyn SegmentOutput>,
    bytes_per_sec: f64,
}

impl SegmentOutput for ThrottledOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        std::thread::sleep(Duration::from_secs_f64(
            bytes.len() as f64 / self.bytes_per_sec,
        ));
        self.inner.write(bytes)
    }

    fn publish(self: Box<Self>) -> std::io::Result<std::path::PathBuf> {
        self.inner.publish()
    }
}

fn rss_kib(field: &str) -> u64 {
    let mut s = String::new();
    std::fs::File::open("/proc/self/status")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_slow_sink_stalls_the_source_with_bounded_memory_and_no_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(2);
    config.buffers = 16;
    let bound_kib = {
        // Record buffers, plus the packets their jobs keep alive (at most one per buffer,
        // and one in the source's hand), plus the stream's own working set.
        let packets = (config.buffers + 1) * FRAME;
        ((config.buffer_bytes() + packets) / 1024) as u64 + SLACK_KIB
    };
    let engine = Engine::new(config).unwrap();
    let sink = Throttled {
        inner: DirSink::new(dir.path()).unwrap(),
        bytes_per_sec: 40e6,
    };
    let mut stream = engine
        .open_stream(stream_config(0, 1.0), Box::new(sink))
        .unwrap();

    // Settle allocator and thread stacks, then measure the peak from here on.
    let baseline = rss_kib("VmRSS:");
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");

    let mut input_hash = Sha256::new();
    let started = Instant::now();
    let mut total = 0usize;
    let mut i = 0u64;
    while total < TOTAL {
        // Every packet is a fresh allocation, as an encoder hands out new buffers: if the
        // engine queued them without bound, RSS would grow with the stream.
        let (key, au) = access_unit(i, 30, FRAME, 60_000);
        input_hash.update(&au);
        total += au.len();
        stream.push(packet(i, key, au), Instant::now()).unwrap();
        i += 1;
    }
    let stats = stream.finish(CloseReason::EndOfStream).unwrap();
    let elapsed = started.elapsed();
    let peak = rss_kib("VmHWM:");
    engine.shutdown();

    assert_eq!(stats.frames, i);
    assert_eq!(stats.dropped_frames, 0);
    // The sink, not the source, set the pace: the source was stalled.
    assert!(
        elapsed.as_secs_f64() > 0.8 * TOTAL as f64 / 40e6,
        "finished in {elapsed:?}: the throttle did not hold the source back"
    );
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown < bound_kib,
        "peak RSS grew by {grown} KiB over {baseline} KiB; bound {bound_kib} KiB for a {} KiB stream",
        TOTAL / 1024
    );
    assert!(
        (TOTAL / 1024) as u64 > 4 * bound_kib,
        "the stream must dwarf the bound"
    );

    // No frame lost: everything decrypts, byte for byte.
    let paths = collect_paths(&[dir.path().to_path_buf()]).unwrap();
    let files = load_headers(&paths, None).unwrap();
    let mut out = HashWriter(Sha256::new());
    decrypt_footage(&files, &[1; 32], false, &mut out, |_| {}).unwrap();
    assert!(
        out.0.finalize() == input_hash.finalize(),
        "frames lost or changed"
    );
    assert_eq!(stats.latency.histogram(Stage::Durable).len(), i);
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes per access unit (several NAL units, four records each).
const FRAME: usize = 240_000;
/// Bytes of video pushed in all.
const TOTAL: usize = 120 << 20;
/// Allowance for heap fragmentation, thread stacks and the decrypt-free bookkeeping.
const SLACK_KIB: u64 = 8 * 1024;
