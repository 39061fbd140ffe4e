//! camseal's dispatched AES-GCM seal against `ring`, measured interleaved: short timed
//! slices of the two alternate many times, and each side keeps its fastest slice. On a
//! shared machine (other builds running) criterion's sequential runs see different loads;
//! interleaving exposes both sides to the same load, and the fastest slice is the one least
//! disturbed by it. Prints a table of GB/s and the ratio camseal / ring.
//!
//! ```text
//! cargo bench -p camseal-benches --bench aead_ratio
//! ```
//!
//! Optional arguments: `rounds=N` (slices per side and size, default 200) and
//! `suite=aes-128-gcm|aes-256-gcm`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use camseal_kernels::{Aead, NONCE_LEN, Suite};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this without it, and
    // then one slice per size is enough to check that it works.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = if args.iter().any(|a| a == "--bench") {
        200
    } else {
        1
    };
    let mut suites = vec![Suite::Aes128Gcm, Suite::Aes256Gcm];
    for arg in &args {
        if let Some(n) = arg.strip_prefix("rounds=") {
            rounds = n.parse().expect("rounds=N");
        } else if let Some(s) = arg.strip_prefix("suite=") {
            suites.retain(|suite| suite.name() == s);
        }
    }

    for suite in suites {
        let key = vec![0x4b; suite.key_len()];
        let aead = Aead::new(suite, &key).expect("key length");
        let alg = match suite {
            Suite::Aes128Gcm => &AES_128_GCM,
            Suite::Aes256Gcm => &AES_256_GCM,
        };
        let ring_key = LessSafeKey::new(UnboundKey::new(alg, &key).expect("ring key"));
        let nonce = [0x24; NONCE_LEN];
        let aad = [0xad; AAD_LEN];
        println!(
            "{} seal in place, path {}, fastest of {rounds} interleaved slices",
            suite.name(),
            aead.backend()
        );
        println!(
            "{:>9} {:>10} {:>10} {:>7}",
            "bytes", "ring GB/s", "camseal", "ratio"
        );
        for &size in SIZES {
            let mut buf = vec![0x17u8; size];
            // Enough iterations per slice for about 200 microseconds of work.
            let iters = (SLICE_BYTES / size).max(1);
            let mut best_ring = Duration::MAX;
            let mut best_camseal = Duration::MAX;
            for _ in 0..rounds {
                let t = Instant::now();
                for _ in 0..iters {
                    let _ = black_box(
                        ring_key
                            .seal_in_place_separate_tag(
                                Nonce::assume_unique_for_key(nonce),
                                Aad::from(&aad[..]),
                                black_box(&mut buf[..]),
                            )
                            .expect("ring seal"),
                    );
                }
                best_ring = best_ring.min(t.elapsed());
                let t = Instant::now();
                for _ in 0..iters {
                    let _ = black_box(
                        aead.seal_in_place(&nonce, &aad, black_box(&mut buf[..]))
                            .expect("seal"),
                    );
                }
                best_camseal = best_camseal.min(t.elapsed());
            }
            let gbps = |d: Duration| (iters * size) as f64 / d.as_secs_f64() / 1e9;
            println!(
                "{size:>9} {:>10.3} {:>10.3} {:>7.3}",
                gbps(best_ring),
                gbps(best_camseal),
                best_ring.as_secs_f64() / best_camseal.as_secs_f64()
            );
        }
    }
}

const SIZES: &[usize] = &[64, 256, 1500, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// camseal's record AAD: H(header) (32) | pts (8) | flags (1).
const AAD_LEN: usize = 41;
/// Bytes sealed per timed slice.
const SLICE_BYTES: usize = 1 << 20;
