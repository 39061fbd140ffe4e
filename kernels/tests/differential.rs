//! Differential tests: every backend against RustCrypto `aes-gcm` called directly through its
//! allocating `Aead::encrypt` API (a different entry point from the one `portable` wraps), plus
//! the API's error cases.

use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use camseal_kernels::test_util::{check_backend, check_known_answer, check_rejects, emulated};
use camseal_kernels::{Aead, Backend, Error, NONCE_LEN, Nonce, Suite, TAG_LEN, Tag};
use proptest::prelude::*;

const SUITES: [Suite; 2] = [Suite::Aes128Gcm, Suite::Aes256Gcm];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if emulated() { 24 } else { 256 }))]

    /// Random keys, nonces, AAD and lengths up to 64 KiB: every backend, in place and out of
    /// place at random offsets, must match the reference byte for byte and open again.
    #[test]
    fn matches_reference_random(
        aes256 in any::<bool>(),
        key in prop::array::uniform32(any::<u8>()),
        nonce in any::<Nonce>(),
        aad in prop::collection::vec(any::<u8>(), 0..300),
        len in random_len(),
        seed in any::<u64>(),
        offset in 0usize..32,
    ) {
        let suite = if aes256 { Suite::Aes256Gcm } else { Suite::Aes128Gcm };
        let key = &key[..suite.key_len()];
        let pt = pseudo_random(seed, len);
        check_against_reference(suite, key, &nonce, &aad, &pt, offset);
    }

    /// A single flipped bit anywhere in ciphertext, tag or AAD must be rejected by every
    /// backend, with the output wiped.
    #[test]
    fn rejects_any_flipped_bit(
        aes256 in any::<bool>(),
        key in prop::array::uniform32(any::<u8>()),
        nonce in any::<Nonce>(),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        len in 0usize..2048,
        seed in any::<u64>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let suite = if aes256 { Suite::Aes256Gcm } else { Suite::Aes128Gcm };
        let key = &key[..suite.key_len()];
        let pt = pseudo_random(seed, len);
        let sealed = reference_seal(suite, key, &nonce, &aad, &pt);
        let (ct, tag) = split(&sealed);
        for backend in Backend::available() {
            let aead = Aead::with_backend(suite, key, backend).expect("key length");
            let at = flip.index(ct.len() + TAG_LEN + aad.len());
            let (mut ct, mut tag, mut aad) = (ct.to_vec(), tag, aad.clone());
            if at < ct.len() {
                ct[at] ^= 1 << bit;
            } else if at < ct.len() + TAG_LEN {
                tag[at - ct.len()] ^= 1 << bit;
            } else {
                aad[at - ct.len() - TAG_LEN] ^= 1 << bit;
            }
            check_rejects(&aead, &nonce, &aad, &ct, &tag);
        }
    }
}

/// A few random lengths between 64 KiB and 1 MiB (two, up to 256 KiB, under emulation),
/// random key, nonce and AAD: every backend in place and out of place against the reference.
#[test]
fn matches_reference_random_lengths_to_1mib() {
    let (count, max) = if emulated() {
        (2, 256 << 10)
    } else {
        (4, 1 << 20)
    };
    let mut seed = 0x5eed_1234_u64 ^ std::process::id() as u64;
    for i in 0..count {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let suite = SUITES[i % 2];
        let len = MAX_RANDOM_LEN + (seed >> 20) as usize % (max - MAX_RANDOM_LEN + 1);
        let key = pseudo_random(seed ^ 1, suite.key_len());
        let nonce: Nonce = pseudo_random(seed ^ 2, NONCE_LEN).try_into().unwrap();
        let aad = pseudo_random(seed ^ 3, (seed % 200) as usize);
        let pt = pseudo_random(seed ^ 4, len);
        println!("seed {seed:#x}: {suite:?} len {len}");
        check_against_reference(suite, &key, &nonce, &aad, &pt, (seed % 13) as usize);
    }
}

/// The tag corrupted in each of its 16 bytes (low and high bit): every backend must reject
/// through both open calls and leave the output zeroed.
#[test]
fn tag_corrupted_in_each_byte_is_rejected() {
    for suite in SUITES {
        let key = pseudo_random(99, suite.key_len());
        let nonce = [0x17; NONCE_LEN];
        for len in [0, 1, 16, 100, 129, 1500, 4097] {
            let aad = pseudo_random(len as u64, len % 23);
            let pt = pseudo_random(!(len as u64), len);
            let sealed = reference_seal(suite, &key, &nonce, &aad, &pt);
            let (ct, tag) = split(&sealed);
            for backend in Backend::available() {
                let aead = Aead::with_backend(suite, &key, backend).expect("key length");
                for byte in 0..TAG_LEN {
                    for bit in [0x01, 0x80] {
                        let mut bad = tag;
                        bad[byte] ^= bit;
                        check_rejects(&aead, &nonce, &aad, ct, &bad);
                    }
                }
            }
        }
    }
}

/// Every length from 0 to 1024 bytes, both suites, every backend, at a few offsets.
#[test]
fn matches_reference_every_length_to_1024() {
    for suite in SUITES {
        let key = pseudo_random(suite.key_len() as u64, suite.key_len());
        for len in 0..=1024usize {
            let nonce: Nonce = pseudo_random(len as u64, NONCE_LEN).try_into().unwrap();
            let aad = pseudo_random(!(len as u64), len % 41);
            let pt = pseudo_random(len as u64 ^ 0xfeed, len);
            check_against_reference(suite, &key, &nonce, &aad, &pt, len % 17);
        }
    }
}

/// `seal_to` must give the same bytes as `seal_in_place` whatever the alignment of its input
/// and output slices.
#[test]
fn in_place_and_out_of_place_agree_at_unaligned_offsets() {
    for backend in Backend::available() {
        for suite in SUITES {
            let key = pseudo_random(7, suite.key_len());
            let aead = Aead::with_backend(suite, &key, backend).expect("key length");
            let nonce = [0x42; NONCE_LEN];
            for len in [0, 1, 15, 16, 17, 31, 64, 255, 1500, 4097, 16 * 1024 + 3] {
                let pt = pseudo_random(len as u64, len);
                let mut want = pt.clone();
                let want_tag = aead.seal_in_place(&nonce, b"aad", &mut want).expect("seal");
                for in_off in 0..8 {
                    for out_off in 0..8 {
                        let mut input = vec![0xee; in_off + len];
                        input[in_off..].copy_from_slice(&pt);
                        let mut output = vec![0x11; out_off + len + 5];
                        let out = &mut output[out_off..out_off + len];
                        let tag = aead
                            .seal_to(&nonce, b"aad", &input[in_off..], out)
                            .expect("seal");
                        let what =
                            format!("{backend} {suite:?} len {len} in {in_off} out {out_off}");
                        assert_eq!(out, &want[..], "{what}");
                        assert_eq!(tag, want_tag, "{what}");
                        // Bytes around the output slice are untouched.
                        assert!(output[..out_off].iter().all(|&b| b == 0x11), "{what}");
                        assert!(output[out_off + len..].iter().all(|&b| b == 0x11), "{what}");

                        let mut back = vec![0x33; len];
                        aead.open_to(
                            &nonce,
                            b"aad",
                            &output[out_off..out_off + len],
                            &tag,
                            &mut back,
                        )
                        .expect("open_to");
                        assert_eq!(back, pt, "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn check_backend_on_every_available_backend() {
    let backends = Backend::available();
    assert!(!backends.is_empty());
    assert!(backends.contains(&Backend::portable()));
    assert!(
        backends.contains(&Backend::detect()),
        "detect() must pick an available backend"
    );
    for backend in backends {
        check_backend(backend);
    }
}

#[test]
fn key_length_errors() {
    for backend in Backend::available() {
        for suite in SUITES {
            for got in [0, 1, 15, 17, 24, 31, 33, 64] {
                let key = vec![0u8; got];
                let want = Err(Error::KeyLength {
                    expected: suite.key_len(),
                    got,
                });
                assert_eq!(Aead::with_backend(suite, &key, backend).map(|_| ()), want);
                assert_eq!(Aead::new(suite, &key).map(|_| ()), want);
            }
        }
        // Each suite's key length is wrong for the other one.
        assert!(Aead::with_backend(Suite::Aes128Gcm, &[0; 32], backend).is_err());
        assert!(Aead::with_backend(Suite::Aes256Gcm, &[0; 16], backend).is_err());
        assert!(Aead::with_backend(Suite::Aes128Gcm, &[0; 16], backend).is_ok());
        assert!(Aead::with_backend(Suite::Aes256Gcm, &[0; 32], backend).is_ok());
    }
}

#[test]
fn buffer_length_errors() {
    for backend in Backend::available() {
        for suite in SUITES {
            let aead = Aead::with_backend(suite, &vec![9; suite.key_len()], backend).unwrap();
            let nonce = [1; NONCE_LEN];
            let data = [0x5a; 100];
            for out_len in [0, 99, 101, 200] {
                let want = Err(Error::BufferLength {
                    input: 100,
                    output: out_len,
                });
                let mut out = vec![0x77; out_len];
                assert_eq!(
                    aead.seal_to(&nonce, b"", &data, &mut out),
                    want.map(|()| [0; 16])
                );
                assert!(
                    out.iter().all(|&b| b == 0x77),
                    "seal_to wrote on a length error"
                );
                assert_eq!(
                    aead.open_to(&nonce, b"", &data, &[0; TAG_LEN], &mut out),
                    want
                );
            }
            // Empty input with a non-empty output is a mismatch too.
            let mut out = [0u8; 1];
            assert_eq!(
                aead.seal_to(&nonce, b"", &[], &mut out),
                Err(Error::BufferLength {
                    input: 0,
                    output: 1
                })
            );
        }
    }
}

#[test]
fn aead_is_send_sync_and_debug_hides_the_key() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Aead>();

    let aead = Aead::new(Suite::Aes128Gcm, &[0xab; 16]).unwrap();
    let debug = format!("{aead:?}");
    assert!(debug.contains("Aes128Gcm"), "{debug}");
    assert!(
        !debug.contains("171") && !debug.to_lowercase().contains("ab, "),
        "{debug}"
    );
}

/// Lengths up to 64 KiB, weighted towards the short end: unoptimized test builds seal only a
/// few MB/s, and the block and tail edges live there. Every length to 1024 is also covered
/// exhaustively below.
fn random_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0usize..=4096,
        1 => 4096usize..=MAX_RANDOM_LEN,
    ]
}

/// Seals `pt` on every backend, in place and into `out` at `offset`, and requires the
/// reference's ciphertext and tag; then requires every open path to restore `pt`.
fn check_against_reference(
    suite: Suite,
    key: &[u8],
    nonce: &Nonce,
    aad: &[u8],
    pt: &[u8],
    offset: usize,
) {
    let sealed = reference_seal(suite, key, nonce, aad, pt);
    let (ct, tag) = split(&sealed);
    for backend in Backend::available() {
        let aead = Aead::with_backend(suite, key, backend).expect("key length");
        let what = format!("{backend} {suite:?} len {} offset {offset}", pt.len());

        // Out of place at an arbitrary offset, as the pipeline seals from encoder buffers.
        let mut input = vec![0; offset + pt.len()];
        input[offset..].copy_from_slice(pt);
        let mut output = vec![0; pt.len() + offset];
        let got = aead
            .seal_to(nonce, aad, &input[offset..], &mut output[offset..])
            .expect("seal_to");
        assert!(
            output[offset..] == *ct,
            "{what}: seal_to ciphertext differs"
        );
        assert_eq!(got, tag, "{what}: seal_to tag");

        check_known_answer(&aead, nonce, aad, pt, ct, &tag);
    }
}

/// The reference: RustCrypto `aes-gcm`, which returns `ct || tag`.
fn reference_seal(suite: Suite, key: &[u8], nonce: &Nonce, aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let payload = Payload { msg: pt, aad };
    let nonce = nonce.into();
    match suite {
        Suite::Aes128Gcm => Aes128Gcm::new_from_slice(key)
            .unwrap()
            .encrypt(nonce, payload),
        Suite::Aes256Gcm => Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt(nonce, payload),
    }
    .expect("reference seal")
}

fn split(sealed: &[u8]) -> (&[u8], Tag) {
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    (ct, tag.try_into().unwrap())
}

/// Cheap deterministic bytes (splitmix64): proptest draws only the seed, which keeps 64 KiB
/// inputs fast to generate and easy to reproduce from a failure's printed seed.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

const MAX_RANDOM_LEN: usize = 64 * 1024;
