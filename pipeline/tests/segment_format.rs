//! The segment format v1 at the library level: round trips, every tampering, truncation.

mod common;

use camseal::seal::SframeSuite;
use camseal::segment::SegmentError;
use common::*;

fn plaintext_of(records: &[Rec]) -> Vec<u8> {
    records.iter().flat_map(|r| r.3.clone()).collect()
}

#[test]
fn round_trip_both_suites_several_recipients() {
    let (s1, p1) = recipient(1);
    let (s2, p2) = recipient(2);
    for suite in [SframeSuite::Aes128GcmSha256, SframeSuite::Aes256GcmSha512] {
        let records = sample_records(12);
        let (bytes, summary) = build(suite, 5, [0; 32], &[p1, p2], &records);
        assert_eq!(summary.bytes as usize, bytes.len());
        assert_eq!(summary.record_count, 13);
        for secret in [&s1, &s2] {
            let (pt, v) = open_all(&bytes, secret).unwrap();
            assert_eq!(pt, plaintext_of(&records));
            assert_eq!(v.digest, summary.digest);
            assert_eq!(v.end.unwrap().end_pts, 11 * 3000 + 3000);
        }
        assert_eq!(verify_all(&bytes).unwrap().digest, summary.digest);
    }
}

#[test]
fn empty_segment_still_has_final_record() {
    let (s1, p1) = recipient(1);
    let (bytes, summary) = build(SframeSuite::Aes128GcmSha256, 0, [0; 32], &[p1], &[]);
    assert_eq!(summary.record_count, 1);
    let (pt, _) = open_all(&bytes, &s1).unwrap();
    assert!(pt.is_empty());
}

#[test]
fn not_a_recipient() {
    let (_, p1) = recipient(1);
    let (s3, _) = recipient(3);
    let (bytes, _) = build(
        SframeSuite::Aes128GcmSha256,
        0,
        [0; 32],
        &[p1],
        &sample_records(3),
    );
    assert!(matches!(
        open_all(&bytes, &s3),
        Err(SegmentError::NotARecipient)
    ));
}

#[test]
fn every_single_bit_flip_is_detected() {
    let (s1, p1) = recipient(1);
    let (bytes, _) = build(
        SframeSuite::Aes128GcmSha256,
        9,
        [3; 32],
        &[p1],
        &sample_records(4),
    );
    let (header_len, records, trailer) = layout(&bytes);
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            let opened = open_all(&bad, &s1);
            let verified = verify_all(&bad);
            assert!(opened.is_err(), "open accepted a flip at byte {i}");
            assert!(verified.is_err(), "verify accepted a flip at byte {i}");
            let e = opened.unwrap_err();
            if i < header_len {
                assert!(
                    matches!(
                        e,
                        SegmentError::HeaderTampered
                            | SegmentError::NotASegment
                            | SegmentError::UnsupportedVersion(_)
                            | SegmentError::UnsupportedSuite(_)
                            | SegmentError::Malformed(_)
                            | SegmentError::Truncated(_)
                            | SegmentError::BadSignature
                            | SegmentError::NotARecipient
                    ),
                    "header byte {i}: {e}"
                );
            } else if trailer.contains(&i) {
                assert!(
                    matches!(
                        e,
                        SegmentError::TrailerTampered(_)
                            | SegmentError::BadSignature
                            | SegmentError::Malformed(_)
                            | SegmentError::Truncated(_)
                    ),
                    "trailer byte {i}: {e}"
                );
            } else {
                assert!(records.iter().any(|r| r.contains(&i)));
                assert!(
                    matches!(
                        e,
                        SegmentError::RecordTampered { .. }
                            | SegmentError::OutOfOrder { .. }
                            | SegmentError::WrongSegment { .. }
                            | SegmentError::Malformed(_)
                            | SegmentError::Truncated(_)
                            | SegmentError::TrailingData
                            | SegmentError::EmptyFinal
                            | SegmentError::NoFinal
                            | SegmentError::RecordAfterFinal
                    ),
                    "record byte {i}: {e}"
                );
            }
        }
    }
}

#[test]
fn record_swap_drop_duplicate() {
    let (s1, p1) = recipient(1);
    let (bytes, _) = build(
        SframeSuite::Aes128GcmSha256,
        2,
        [0; 32],
        &[p1],
        &sample_records(5),
    );
    let (h, recs, trailer) = layout(&bytes);
    let assemble = |order: &[usize]| {
        let mut out = bytes[..h].to_vec();
        for &i in order {
            out.extend_from_slice(&bytes[recs[i].clone()]);
        }
        out.extend_from_slice(&bytes[trailer.clone()]);
        out
    };
    let swapped = assemble(&[0, 2, 1, 3, 4, 5]);
    let dropped = assemble(&[0, 1, 3, 4, 5]);
    let duplicated = assemble(&[0, 1, 1, 2, 3, 4, 5]);
    for bad in [&swapped, &dropped, &duplicated] {
        assert!(matches!(
            open_all(bad, &s1),
            Err(SegmentError::OutOfOrder { .. })
        ));
        assert!(matches!(
            verify_all(bad),
            Err(SegmentError::OutOfOrder { .. })
        ));
    }
    // Dropping the final record.
    let no_final = assemble(&[0, 1, 2, 3, 4]);
    assert!(matches!(
        open_all(&no_final, &s1),
        Err(SegmentError::NoFinal)
    ));
}

#[test]
fn truncation_everywhere_is_detected() {
    let (s1, p1) = recipient(1);
    let (bytes, _) = build(
        SframeSuite::Aes128GcmSha256,
        2,
        [0; 32],
        &[p1],
        &sample_records(4),
    );
    for cut in 0..bytes.len() {
        let e = open_all(&bytes[..cut], &s1).unwrap_err();
        assert!(matches!(e, SegmentError::Truncated(_)), "cut at {cut}: {e}");
        assert!(matches!(
            verify_all(&bytes[..cut]),
            Err(SegmentError::Truncated(_))
        ));
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(matches!(
        open_all(&extra, &s1),
        Err(SegmentError::TrailingData)
    ));
}
