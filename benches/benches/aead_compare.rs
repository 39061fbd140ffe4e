//! AES-GCM seal throughput side by side: camseal's dispatched kernel, each camseal backend
//! this CPU runs, `ring` 0.17 and RustCrypto `aes-gcm`, for both suites at 64 B .. 1 MiB.
//!
//! Every contender seals in place, on the same buffer, with the same 41-byte AAD (camseal's
//! record AAD), so the memory traffic is identical; `camseal-seal_to` adds the out-of-place
//! call the pipeline makes. The ratios in `docs/PERFORMANCE.md` come from this bench:
//!
//! ```text
//! cargo bench -p camseal-benches --bench aead_compare
//! ```
//!
//! Filter with criterion's usual argument, e.g. `-- 'aes-128-gcm/(ring|camseal)/'`.

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};
use camseal_kernels::{Aead, Backend, NONCE_LEN, Suite};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

fn compare(c: &mut Criterion) {
    for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
        let key = filler(suite.key_len(), 0x4b);
        let nonce = [0x24; NONCE_LEN];
        let aad = filler(AAD_LEN, 0xad);
        let mut group = c.benchmark_group(format!("seal/{}", suite.name()));

        let dispatched = Aead::new(suite, &key).expect("key length matches suite");
        let backends: Vec<(String, Aead)> = Backend::available()
            .into_iter()
            .map(|b| {
                let aead = Aead::with_backend(suite, &key, b).expect("key length");
                (format!("camseal[{}]", b.name().replace('/', ":")), aead)
            })
            .collect();
        let ring_alg = match suite {
            Suite::Aes128Gcm => &AES_128_GCM,
            Suite::Aes256Gcm => &AES_256_GCM,
        };
        let ring_key = LessSafeKey::new(UnboundKey::new(ring_alg, &key).expect("ring key"));
        let rc = RustCrypto::new(suite, &key);

        for &size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let mut buf = filler(size, 0x17);
            let input = filler(size, 0x71);
            let mut out = vec![0u8; size];

            group.bench_function(BenchmarkId::new("ring", size), |b| {
                b.iter(|| {
                    ring_key
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(&aad[..]),
                            black_box(&mut buf[..]),
                        )
                        .expect("ring seal")
                })
            });
            group.bench_function(BenchmarkId::new("camseal", size), |b| {
                b.iter(|| {
                    dispatched
                        .seal_in_place(&nonce, &aad, black_box(&mut buf[..]))
                        .expect("seal")
                })
            });
            group.bench_function(BenchmarkId::new("camseal-seal_to", size), |b| {
                b.iter(|| {
                    dispatched
                        .seal_to(&nonce, &aad, black_box(&input), black_box(&mut out))
                        .expect("seal")
                })
            });
            group.bench_function(BenchmarkId::new("rustcrypto-aes-gcm", size), |b| {
                b.iter(|| rc.seal(&nonce, &aad, black_box(&mut buf[..])))
            });
            for (name, aead) in &backends {
                group.bench_function(BenchmarkId::new(name.as_str(), size), |b| {
                    b.iter(|| {
                        aead.seal_in_place(&nonce, &aad, black_box(&mut buf[..]))
                            .expect("seal")
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, compare);
criterion_main!(benches);

/// RustCrypto `aes-gcm` 0.11, called directly (not through camseal's portable wrapper).
enum RustCrypto {
    Aes128(Box<aes_gcm::Aes128Gcm>),
    Aes256(Box<aes_gcm::Aes256Gcm>),
}

impl RustCrypto {
    fn new(suite: Suite, key: &[u8]) -> RustCrypto {
        match suite {
            Suite::Aes128Gcm => RustCrypto::Aes128(Box::new(
                aes_gcm::Aes128Gcm::new_from_slice(key).expect("key length"),
            )),
            Suite::Aes256Gcm => RustCrypto::Aes256(Box::new(
                aes_gcm::Aes256Gcm::new_from_slice(key).expect("key length"),
            )),
        }
    }

    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let buf = InOutBuf::from(buf);
        let tag = match self {
            RustCrypto::Aes128(k) => k.encrypt_inout_detached(nonce.into(), aad, buf),
            RustCrypto::Aes256(k) => k.encrypt_inout_detached(nonce.into(), aad, buf),
        };
        tag.expect("length within limits").into()
    }
}

/// Deterministic non-constant bytes; their values do not affect AES-GCM timing.
fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

const SIZES: &[usize] = &[64, 256, 1500, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// camseal's record AAD: H(header) (32) | pts (8) | flags (1).
const AAD_LEN: usize = 41;
