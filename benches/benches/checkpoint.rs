//! The cost format v2 adds per second of video and per record: one Ed25519 checkpoint
//! signature per `--checkpoint-ms` (1 s by default) per stream, and one 64-byte BLAKE3 fold
//! per record on the writer (FORMAT.md §4). Measured beside the per-record BLAKE3 of a
//! typical record, which the seal workers compute in parallel.

use std::hint::black_box;

use camseal::segment::{RecordsDigest, checkpoint_message, record_digest};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};

fn checkpoint(c: &mut Criterion) {
    let camera = SigningKey::from_bytes(&[7; 32]);
    let header_hash = [0x42; 32];
    let mut group = c.benchmark_group("checkpoint");
    group.bench_function("ed25519-sign", |b| {
        let mut count = 0u64;
        b.iter(|| {
            count += 1;
            let message = checkpoint_message(&header_hash, count, &[count as u8; 32]);
            black_box(camera.sign(&message))
        })
    });
    group.bench_function("records-digest-fold", |b| {
        let mut digest = RecordsDigest::new(&header_hash);
        let d = [0x17; 32];
        b.iter(|| {
            digest.push(black_box(&d));
            black_box(digest.value())
        })
    });
    for size in [1500usize, 16 << 10, 64 << 10] {
        let record = vec![0x5a; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("record-blake3/{size}"), |b| {
            b.iter(|| black_box(record_digest(black_box(&record))))
        });
    }
    group.finish();
}

criterion_group!(benches, checkpoint);
criterion_main!(benches);
