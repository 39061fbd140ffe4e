//! Known-answer tests from the GCM specification (McGrew & Viega, Appendix B), read from
//! `tests/data/*.txt`, on every backend this CPU can run.
//!
//! Each data file gets the same four tests from `vector_tests!`: encrypt, decrypt, flipped tag
//! bytes, and flipped ciphertext/AAD bytes.

use camseal_kernels::test_util::{check_known_answer, check_rejects};
use camseal_kernels::{Aead, Backend, NONCE_LEN, Nonce, Suite, TAG_LEN, Tag};

macro_rules! vector_tests {
    ($name:ident, $suite:expr, $file:literal, $count:expr) => {
        mod $name {
            use super::*;

            fn vectors() -> Vec<Vector> {
                let vectors = parse(include_str!(concat!("data/", $file)), $suite);
                // A parser that silently drops records would make every test below pass.
                assert_eq!(vectors.len(), $count, "vector count in {}", $file);
                vectors
            }

            #[test]
            fn encrypt() {
                for_each_case(&vectors(), |aead, v| {
                    let mut buf = v.pt.clone();
                    let tag = aead
                        .seal_in_place(&v.nonce, &v.aad, &mut buf)
                        .expect("seal");
                    assert_eq!(buf, v.ct, "case {} on {}", v.count, aead.backend());
                    assert_eq!(tag, v.tag, "case {} on {}", v.count, aead.backend());
                });
            }

            #[test]
            fn decrypt() {
                for_each_case(&vectors(), |aead, v| {
                    let mut buf = v.ct.clone();
                    aead.open_in_place(&v.nonce, &v.aad, &mut buf, &v.tag)
                        .expect("open");
                    assert_eq!(buf, v.pt, "case {} on {}", v.count, aead.backend());
                    // And every other entry point, at an odd offset.
                    check_known_answer(aead, &v.nonce, &v.aad, &v.pt, &v.ct, &v.tag);
                });
            }

            #[test]
            fn flipped_tag() {
                for_each_case(&vectors(), |aead, v| {
                    for i in 0..TAG_LEN {
                        let mut tag = v.tag;
                        tag[i] ^= 0x01;
                        check_rejects(aead, &v.nonce, &v.aad, &v.ct, &tag);
                    }
                });
            }

            #[test]
            fn flipped_ciphertext_and_aad() {
                for_each_case(&vectors(), |aead, v| {
                    for i in edges(v.ct.len()) {
                        let mut ct = v.ct.clone();
                        ct[i] ^= 0x80;
                        check_rejects(aead, &v.nonce, &v.aad, &ct, &v.tag);
                    }
                    for i in edges(v.aad.len()) {
                        let mut aad = v.aad.clone();
                        aad[i] ^= 0x80;
                        check_rejects(aead, &v.nonce, &aad, &v.ct, &v.tag);
                    }
                    let mut nonce = v.nonce;
                    nonce[NONCE_LEN - 1] ^= 0x01;
                    check_rejects(aead, &nonce, &v.aad, &v.ct, &v.tag);
                });
            }
        }
    };
}

vector_tests!(aes128gcm, Suite::Aes128Gcm, "aes128gcm.txt", 4);
vector_tests!(aes256gcm, Suite::Aes256Gcm, "aes256gcm.txt", 4);

/// The parser itself must reject malformed records rather than skip them.
#[test]
fn parser_rejects_incomplete_records() {
    let missing_tag = "Count = 1\nKey = 00\nIV = 00\nPT =\nAAD =\nCT =\n";
    assert!(std::panic::catch_unwind(|| parse(missing_tag, Suite::Aes128Gcm)).is_err());
}

/// One known-answer case from a data file.
struct Vector {
    count: u32,
    suite: Suite,
    key: Vec<u8>,
    nonce: Nonce,
    aad: Vec<u8>,
    pt: Vec<u8>,
    ct: Vec<u8>,
    tag: Tag,
}

/// Runs `check` for every vector on every available backend.
fn for_each_case(vectors: &[Vector], check: impl Fn(&Aead, &Vector)) {
    let backends = Backend::available();
    assert!(backends.contains(&Backend::portable()));
    for backend in backends {
        for v in vectors {
            let aead = Aead::with_backend(v.suite, &v.key, backend).expect("key length");
            check(&aead, v);
        }
    }
}

/// First and last index of a buffer of `len` bytes (none if empty, one if `len` is 1).
fn edges(len: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = [0, len.saturating_sub(1)]
        .into_iter()
        .filter(|&i| i < len)
        .collect();
    idx.dedup();
    idx
}

/// Parses `Field = hex` records separated by blank lines; `#` starts a comment line.
fn parse(text: &str, suite: Suite) -> Vec<Vector> {
    let mut vectors = Vec::new();
    for record in text.split("\n\n") {
        let fields: Vec<(&str, &str)> = record
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad line {l:?}"));
                (k.trim(), v.trim())
            })
            .collect();
        if fields.is_empty() {
            continue;
        }
        let field = |name: &str| -> &str {
            let mut found = fields.iter().filter(|(k, _)| *k == name);
            let (_, v) = found
                .next()
                .unwrap_or_else(|| panic!("missing {name} in {record:?}"));
            assert!(found.next().is_none(), "duplicate {name} in {record:?}");
            v
        };
        let bytes = |name: &str| hex::decode(field(name)).expect("hex");
        let v = Vector {
            count: field("Count").parse().expect("Count"),
            suite,
            key: bytes("Key"),
            nonce: bytes("IV").try_into().expect("96-bit IV"),
            aad: bytes("AAD"),
            pt: bytes("PT"),
            ct: bytes("CT"),
            tag: bytes("Tag").try_into().expect("128-bit tag"),
        };
        assert_eq!(fields.len(), 7, "unexpected fields in case {}", v.count);
        assert_eq!(
            v.key.len(),
            suite.key_len(),
            "key length in case {}",
            v.count
        );
        assert_eq!(v.pt.len(), v.ct.len(), "PT/CT lengths in case {}", v.count);
        vectors.push(v);
    }
    vectors
}
