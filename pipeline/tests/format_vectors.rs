//! Deterministic test vectors for the segment format (docs/vectors/) and the negative
//! testkit (pipeline/tests/testkit/). Run with `CAMSEAL_REGEN_VECTORS=1` to rewrite them
//! after a deliberate format change; otherwise the committed bytes must be reproduced
//! exactly.

mod common;

use std::path::PathBuf;

use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::write::{
    HPKE_KEM_X25519, Randomness, RecipientKey, SegmentParams, SegmentSealer, SegmentWriter,
    fixed_test_randomness,
};
use camseal::segment::{
    CloseReason, RecordFlags, SegmentEnd, SegmentError, Trailer, segment_digest, signed_message,
};
use common::*;
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn regen() -> bool {
    std::env::var_os("CAMSEAL_REGEN_VECTORS").is_some()
}

/// Small but real-looking Annex-B pieces: SPS, PPS and an IDR slice, then a P slice.
fn vector_records() -> Vec<Rec> {
    let sps_pps_idr = hex::decode(
        "0000000167640028acd940780227e5c0440000030004000003009c3c60c658\
         0000000168ebe3cb22c0\
         0000016588840033fffee1ff2e0a4c5cfb1c0b27a1bd92e4bbc34ba6a8a5",
    )
    .unwrap();
    let p_slice = hex::decode("000001419a21d2a2c5b1e0e3fdd1dc86c3f6a1c0").unwrap();
    vec![
        (0, true, false, sps_pps_idr),
        (3000, false, false, p_slice.clone()),
        (6000, false, false, p_slice),
    ]
}

struct Case {
    name: &'static str,
    suite: SframeSuite,
}

const CASES: &[Case] = &[
    Case {
        name: "v1-aes128gcm",
        suite: SframeSuite::Aes128GcmSha256,
    },
    Case {
        name: "v1-aes256gcm",
        suite: SframeSuite::Aes256GcmSha512,
    },
];

fn build_vector(suite: SframeSuite) -> (Vec<u8>, serde_json::Value) {
    let camera = camera(7);
    let recipients = [recipient(1), recipient(2)];
    let keys: Vec<RecipientKey<'_>> = recipients
        .iter()
        .map(|(_, pk)| RecipientKey {
            kem: HPKE_KEM_X25519,
            public_key: pk,
        })
        .collect();
    let seed = [0x42u8; 32];
    let params = SegmentParams {
        suite,
        codec: Codec::H264,
        stream_id: 1,
        segment_seq: 5,
        start_pts: 0,
        wallclock_ms: 1_764_000_000_000,
        prev_digest: [0xab; 32],
        recipients: &keys,
        gaps: &[],
    };
    let mut w = SegmentWriter::create(
        Vec::new(),
        &params,
        &camera,
        &Randomness::FixedForTests(seed),
    )
    .unwrap();
    let records = vector_records();
    for (pts, key, cont, data) in &records {
        w.append(*pts, *key, *cont, data).unwrap();
    }
    let end = SegmentEnd {
        end_pts: 9000,
        reason: CloseReason::EndOfStream,
    };
    let header_hash = hex::encode(w.header().hash());
    let (bytes, summary) = w.finish(end).unwrap();
    let (base_key, ikm_e) = fixed_test_randomness(seed, 2);
    let json = serde_json::json!({
        "description": "camseal segment format v1 test vector; see docs/FORMAT.md",
        "suite": suite.id(),
        "codec": 1,
        "camera_ed25519_seed": hex::encode(camera.to_bytes()),
        "camera_ed25519_public": hex::encode(camera.verifying_key().to_bytes()),
        "recipients": recipients.iter().map(|(sk, pk)| serde_json::json!({
            "x25519_secret": hex::encode(sk), "x25519_public": hex::encode(pk)
        })).collect::<Vec<_>>(),
        "stream_id": 1,
        "segment_seq": 5,
        "start_pts": 0,
        "wallclock_ms": 1_764_000_000_000u64,
        "prev_digest": hex::encode([0xab; 32]),
        "segment_base_key": hex::encode(base_key),
        "hpke_ikm_e": ikm_e.iter().map(hex::encode).collect::<Vec<_>>(),
        "records": records.iter().map(|(pts, key, cont, data)| serde_json::json!({
            "pts": pts, "keyframe": key, "continuation": cont, "plaintext": hex::encode(data)
        })).collect::<Vec<_>>(),
        "end": {"end_pts": 9000, "close_reason": 4},
        "header_hash": header_hash,
        "segment_digest": hex::encode(summary.digest),
        "segment_sha256": hex::encode(Sha256::digest(&bytes)),
        "segment_len": bytes.len(),
    });
    (bytes, json)
}

#[test]
fn segment_vectors_reproduce_exactly() {
    for case in CASES {
        let (bytes, json) = build_vector(case.suite);
        let bin = root()
            .join("docs/vectors")
            .join(format!("{}.cseg", case.name));
        let meta = root()
            .join("docs/vectors")
            .join(format!("{}.json", case.name));
        let pretty = serde_json::to_string_pretty(&json).unwrap() + "\n";
        if regen() {
            std::fs::write(&bin, &bytes).unwrap();
            std::fs::write(&meta, &pretty).unwrap();
        }
        let want =
            std::fs::read(&bin).expect("vector file present (CAMSEAL_REGEN_VECTORS=1 writes it)");
        assert_eq!(
            bytes, want,
            "{} changed: the format is not reproducible",
            case.name
        );
        assert_eq!(std::fs::read_to_string(&meta).unwrap(), pretty);
        // Both recipients open it, and the plaintext is the records' concatenation.
        let plain: Vec<u8> = vector_records().iter().flat_map(|r| r.3.clone()).collect();
        for secret in [recipient(1).0, recipient(2).0] {
            let (pt, v) = open_all(&want, &secret).unwrap();
            assert_eq!(pt, plain);
            assert_eq!(
                hex::encode(v.digest),
                json["segment_digest"].as_str().unwrap()
            );
        }
    }
}

/// Seals a segment record by record with full control over flags, for negative cases.
fn craft(records: &[(RecordFlags, Vec<u8>)], sign_count: Option<u64>) -> Vec<u8> {
    let camera = camera(7);
    let (_, pk) = recipient(1);
    let keys = [RecipientKey {
        kem: HPKE_KEM_X25519,
        public_key: &pk,
    }];
    let params = SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        stream_id: 0,
        segment_seq: 1,
        start_pts: 0,
        wallclock_ms: 0,
        prev_digest: [0; 32],
        recipients: &keys,
        gaps: &[],
    };
    let sealer = SegmentSealer::new(
        &params,
        &camera.verifying_key().to_bytes(),
        &Randomness::FixedForTests([9; 32]),
    )
    .unwrap();
    let mut out = sealer.header_bytes().to_vec();
    let mut recs = Vec::new();
    for (i, (flags, pt)) in records.iter().enumerate() {
        sealer
            .seal_record(i as u64, i as u64 * 3000, *flags, pt, &mut recs)
            .unwrap();
    }
    let records_hash: [u8; 32] = Sha256::digest(&recs).into();
    out.extend_from_slice(&recs);
    let count = sign_count.unwrap_or(records.len() as u64);
    let sig = camera.sign(&signed_message(sealer.header_hash(), count, &records_hash));
    let trailer = Trailer {
        record_count: count,
        records_hash,
        signature: sig.to_bytes(),
    };
    out.extend_from_slice(&trailer.encode());
    let _ = segment_digest(sealer.header_hash(), count, &records_hash);
    out
}

fn end_summary() -> Vec<u8> {
    SegmentEnd {
        end_pts: 9000,
        reason: CloseReason::Keyframe,
    }
    .encode()
    .to_vec()
}

fn testkit_cases() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    let v = |k| RecordFlags::video(k, false);
    let f = RecordFlags::final_record();
    let good = craft(
        &[
            (v(true), b"one".to_vec()),
            (v(false), b"two".to_vec()),
            (v(false), b"three".to_vec()),
            (f, end_summary()),
        ],
        None,
    );
    let (h, recs, trailer) = layout(&good);
    let reorder = {
        let mut o = good[..h].to_vec();
        for i in [0, 2, 1, 3] {
            o.extend_from_slice(&good[recs[i].clone()]);
        }
        o.extend_from_slice(&good[trailer.clone()]);
        o
    };
    let mut bad_tag = good.clone();
    bad_tag[recs[2].end - 1] ^= 0x01;
    let mut garbage = good.clone();
    garbage.extend_from_slice(b"garbage");
    vec![
        (
            "good",
            "ok",
            "a valid segment with three video records and the final record",
            good.clone(),
        ),
        (
            "truncated",
            "truncated",
            "cut in the middle of the third record",
            good[..recs[2].start + 10].to_vec(),
        ),
        (
            "truncated_before_trailer",
            "truncated",
            "all records present, trailer missing",
            good[..trailer.start].to_vec(),
        ),
        (
            "no_final",
            "no-final",
            "records and a signed trailer, but no record flagged final",
            craft(
                &[(v(true), b"one".to_vec()), (v(false), b"two".to_vec())],
                None,
            ),
        ),
        (
            "two_final",
            "record-after-final",
            "two records flagged final",
            craft(
                &[
                    (v(true), b"one".to_vec()),
                    (f, end_summary()),
                    (f, end_summary()),
                ],
                None,
            ),
        ),
        (
            "empty_final",
            "empty-final",
            "the final record has an empty plaintext",
            craft(&[(v(true), b"one".to_vec()), (f, Vec::new())], None),
        ),
        (
            "bad_tag_record_2",
            "record-tampered",
            "the tag of record 2 has one bit flipped",
            bad_tag,
        ),
        (
            "reordered",
            "out-of-order",
            "records 1 and 2 swapped",
            reorder,
        ),
        (
            "trailing_garbage",
            "trailing-data",
            "bytes after the trailer",
            garbage,
        ),
        (
            "count_mismatch",
            "trailer-tampered",
            "trailer signed with a record count one too high",
            craft(&[(v(true), b"one".to_vec()), (f, end_summary())], Some(3)),
        ),
    ]
}

fn kind(e: &SegmentError) -> &'static str {
    match e {
        SegmentError::Truncated(_) => "truncated",
        SegmentError::NoFinal => "no-final",
        SegmentError::RecordAfterFinal => "record-after-final",
        SegmentError::EmptyFinal => "empty-final",
        SegmentError::RecordTampered { .. } => "record-tampered",
        SegmentError::OutOfOrder { .. } => "out-of-order",
        SegmentError::TrailingData => "trailing-data",
        SegmentError::TrailerTampered(_) => "trailer-tampered",
        SegmentError::BadSignature => "bad-signature",
        SegmentError::HeaderTampered => "header-tampered",
        SegmentError::NotARecipient => "not-a-recipient",
        _ => "other",
    }
}

#[test]
fn testkit_cases_give_their_expected_errors() {
    let dir = root().join("pipeline/tests/testkit");
    if regen() {
        for (name, expect, comment, bytes) in testkit_cases() {
            let mut file = format!("expect: {expect}\ncomment: {comment}\n\n").into_bytes();
            file.extend_from_slice(&bytes);
            std::fs::write(dir.join(name), file).unwrap();
        }
    }
    let (secret, _) = recipient(1);
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let split = data
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("header ends with a blank line");
        let header = std::str::from_utf8(&data[..split]).unwrap();
        let expect = header
            .lines()
            .find_map(|l| l.strip_prefix("expect: "))
            .expect("expect: line");
        let bytes = &data[split + 2..];
        let got = match open_all(bytes, &secret) {
            Ok(_) => "ok",
            Err(e) => kind(&e),
        };
        assert_eq!(got, expect, "{}", path.display());
        // Without a key, every case but the structurally valid one fails as well.
        assert_eq!(
            verify_all(bytes).is_ok(),
            expect == "ok" || expect == "empty-final",
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert_eq!(seen, testkit_cases().len());
}

#[test]
fn a_key_wrapped_ahead_of_time_gives_the_same_header_and_only_fits_its_segment() {
    use camseal::segment::write::WrappedSegmentKey;
    let camera_pub = camera(7).verifying_key().to_bytes();
    let recipients = [recipient(1), recipient(2)];
    let keys: Vec<RecipientKey<'_>> = recipients
        .iter()
        .map(|(_, pk)| RecipientKey {
            kem: HPKE_KEM_X25519,
            public_key: pk,
        })
        .collect();
    let randomness = Randomness::FixedForTests([3; 32]);
    let params = SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H265,
        stream_id: 2,
        segment_seq: 41,
        start_pts: 777,
        wallclock_ms: 5,
        prev_digest: [0x11; 32],
        recipients: &keys,
        gaps: &[],
    };
    let wrap = |suite, stream, seq, recipients: &[RecipientKey<'_>], camera: &[u8; 32]| {
        WrappedSegmentKey::new(suite, stream, seq, recipients, camera, &randomness).unwrap()
    };
    let suite = SframeSuite::Aes128GcmSha256;

    let inline = SegmentSealer::new(&params, &camera_pub, &randomness).unwrap();
    let ahead =
        SegmentSealer::with_key(&params, &camera_pub, wrap(suite, 2, 41, &keys, &camera_pub))
            .unwrap();
    assert_eq!(ahead.header_bytes(), inline.header_bytes());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    inline
        .seal_record(0, 777, RecordFlags::video(true, false), b"frame", &mut a)
        .unwrap();
    ahead
        .seal_record(0, 777, RecordFlags::video(true, false), b"frame", &mut b)
        .unwrap();
    assert_eq!(a, b);

    let other_camera = camera(8).verifying_key().to_bytes();
    let mismatches = [
        ("sequence", wrap(suite, 2, 42, &keys, &camera_pub)),
        ("stream", wrap(suite, 3, 41, &keys, &camera_pub)),
        (
            "suite",
            wrap(SframeSuite::Aes256GcmSha512, 2, 41, &keys, &camera_pub),
        ),
        ("recipients", wrap(suite, 2, 41, &keys[..1], &camera_pub)),
        (
            "recipient order",
            wrap(suite, 2, 41, &[keys[1], keys[0]], &camera_pub),
        ),
        ("camera", wrap(suite, 2, 41, &keys, &other_camera)),
    ];
    for (what, key) in mismatches {
        match SegmentSealer::with_key(&params, &camera_pub, key) {
            Err(SegmentError::Wrap(_)) => {}
            Ok(_) => panic!("a key wrapped for another {what} was accepted"),
            Err(e) => panic!("another {what}: unexpected error {e}"),
        }
    }
}
