//! AES-GCM seal throughput of `camseal_kernels::Aead`, one criterion group per backend this
//! CPU can run (absent tiers are skipped), for both suites at the chunk sizes the pipeline
//! produces: 64 B and 256 B (parameter sets, small NAL units), 1500 B (an MTU-sized live
//! packet), 16 KiB and 64 KiB (`max_chunk`), 256 KiB and 1 MiB (large keyframes).
//!
//! Sealing is out of place (`seal_to`), as the seal workers do: plaintext is read from the
//! encoder's buffer and ciphertext written into a pooled output buffer. Each iteration reads
//! its input from a different, mostly unaligned, offset of a larger buffer, so the figure is
//! not that of one lucky alignment.

use std::hint::black_box;

use camseal_kernels::{Aead, Backend, NONCE_LEN, Suite};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn seal(c: &mut Criterion) {
    for backend in Backend::available() {
        let mut group = c.benchmark_group(format!("seal_to/{backend}"));
        for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
            let key = filler(suite.key_len(), 0x4b);
            let aead = Aead::with_backend(suite, &key, backend).expect("key length matches suite");
            let nonce = [0x24; NONCE_LEN];
            let aad = filler(AAD_LEN, 0xad);
            for &size in SIZES {
                let input = filler(size + OFFSET_SPAN, 0x17);
                let mut output = vec![0u8; size];
                let mut offset = 0;
                group.throughput(Throughput::Bytes(size as u64));
                group.bench_function(BenchmarkId::new(suite.name(), size), |b| {
                    b.iter(|| {
                        offset = (offset + OFFSET_STEP) % OFFSET_SPAN;
                        let plaintext = &input[offset..offset + size];
                        aead.seal_to(&nonce, &aad, black_box(plaintext), black_box(&mut output))
                            .expect("lengths match")
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, seal);
criterion_main!(benches);

/// Deterministic non-constant bytes; their values do not affect AES-GCM timing.
fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

const SIZES: &[usize] = &[64, 256, 1500, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Input offsets range over one page ...
const OFFSET_SPAN: usize = 4096;
/// ... in odd steps, so successive iterations start at different alignments.
const OFFSET_STEP: usize = 1031;
/// camseal's record AAD: H(header) (32) | pts (8) | flags (1).
const AAD_LEN: usize = 41;
