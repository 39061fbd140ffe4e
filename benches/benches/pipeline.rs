//! The pipeline around the AEAD: the chunker, sealing one record per chunk size (the seal
//! workers' path: `SegmentSealer::seal_record_into` into a reused buffer), and the whole
//! engine (chunker, workers, reorder, in-order appender with the records hash, publisher)
//! on an in-memory stream, with a sink that discards the bytes.

#[path = "../../pipeline/tests/common/params.rs"]
mod params;

use std::hint::black_box;
use std::time::Instant;

use camseal::chunk::chunk_access_unit;
use camseal::engine::{DiscardSink, Engine, EngineConfig, Overload, StreamConfig, WallClock};
use camseal::nal::Codec;
use camseal::recorder::SegmentPolicy;
use camseal::seal::SframeSuite;
use camseal::segment::write::{CheckpointPolicy, HPKE_KEM_X25519, Randomness, SegmentSealer};
use camseal::segment::{CloseReason, RecordFlags};
use camseal_hal::Packet;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use params::{segment_params, x25519_recipient};

fn chunker(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk_access_unit");
    for (name, au) in [
        ("p-frame-20k", access_unit(1, 20_000, 20_000)),
        ("idr-300k-slices", access_unit(0, 300_000, 40_000)),
        ("idr-1m-one-nal", access_unit(0, 1 << 20, 1 << 20)),
    ] {
        group.throughput(Throughput::Bytes(au.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| chunk_access_unit(black_box(&au), 64 << 10).count())
        });
    }
    group.finish();
}

fn seal_record(c: &mut Criterion) {
    let sealer = sealer();
    let mut group = c.benchmark_group("seal_record_into");
    for &size in &[1500usize, 16 << 10, 64 << 10, 256 << 10] {
        let plaintext = vec![0x5au8; size];
        let mut out = vec![0u8; size + 64];
        let mut index = 0u64;
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                index += 1;
                sealer
                    .seal_record_into(
                        index,
                        index * 3000,
                        RecordFlags::video(false, false),
                        black_box(&plaintext),
                        black_box(&mut out),
                    )
                    .expect("buffer is large enough")
            })
        });
    }
    group.finish();
}

fn engine(c: &mut Criterion) {
    // 2 s of a 1080p-like stream at 30 fps: 150 KB keyframes, ~25 KB other frames.
    let frames: Vec<(bool, Vec<u8>)> = (0..60u64)
        .map(|i| {
            let key = i % 30 == 0;
            let size = if key {
                150_000
            } else {
                15_000 + (i as usize * 7919) % 20_000
            };
            (key, access_unit(if key { 0 } else { 1 }, size, 40_000))
        })
        .collect();
    let bytes: usize = frames.iter().map(|(_, au)| au.len()).sum();
    let mut group = c.benchmark_group("engine");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes as u64));
    for (streams, workers) in [(1, 1), (1, 2), (4, 2)] {
        let name = format!("{streams}-streams-{workers}-workers");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    total += run_engine(&frames, streams, workers);
                }
                total / streams as u32
            })
        });
    }
    group.finish();
}

criterion_group!(benches, chunker, seal_record, engine);
criterion_main!(benches);

/// Seals `frames` on `streams` streams (each its own thread) and returns the wall time.
fn run_engine(frames: &[(bool, Vec<u8>)], streams: usize, workers: usize) -> std::time::Duration {
    let engine = Engine::new(EngineConfig::new(workers)).expect("valid config");
    let handles: Vec<_> = (0..streams)
        .map(|id| {
            engine
                .open_stream(stream_config(id as u32), Box::new(DiscardSink))
                .expect("stream opens")
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for mut stream in handles {
            scope.spawn(move || {
                for (i, (key, au)) in frames.iter().enumerate() {
                    // The bench's "encoder buffer": allocated outside the engine, as a
                    // hardware encoder's output would be.
                    let p = Packet::from_vec(Codec::H264, i as u64 * 3000, *key, au.clone());
                    stream.push(p, Instant::now()).expect("push");
                }
                stream.finish(CloseReason::EndOfStream).expect("finish");
            });
        }
    });
    started.elapsed()
}

fn stream_config(stream_id: u32) -> StreamConfig {
    StreamConfig {
        camera: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        recipients: vec![(HPKE_KEM_X25519, recipient_public())],
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        stream_id,
        policy: SegmentPolicy::with_target(std::time::Duration::from_secs(1)),
        frame_ticks: 3000,
        chain_path: None,
        randomness: Randomness::Os,
        wallclock: WallClock::System,
        overload: Overload::Block,
        checkpoints: CheckpointPolicy::default(),
        padding: camseal::segment::padding::Padding::Off,
    }
}

fn sealer() -> SegmentSealer {
    let pk = recipient_public();
    let keys = [x25519_recipient(&pk)];
    let params = segment_params(&keys);
    let camera = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    SegmentSealer::new(&params, &camera, &Randomness::Os).expect("sealer")
}

fn recipient_public() -> Vec<u8> {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([1u8; 32]))
        .to_bytes()
        .to_vec()
}

/// An Annex-B access unit of `size` bytes in NAL units of at most `nal_max` bytes; an IDR
/// with SPS and PPS when `kind` is 0.
fn access_unit(kind: u8, size: usize, nal_max: usize) -> Vec<u8> {
    let mut au = Vec::with_capacity(size + 16);
    let slice = if kind == 0 {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        0x65
    } else {
        0x41
    };
    let mut k = 0usize;
    while au.len() < size {
        au.extend_from_slice(&[0, 0, 0, 1, slice]);
        let n = nal_max.min(size.saturating_sub(au.len())).max(1);
        au.extend((0..n).map(|j| ((j * 7 + k * 13) % 255 + 1) as u8));
        k += 1;
    }
    au
}
