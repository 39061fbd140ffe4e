//! The segment format v2 at the library level: round trips, checkpoints, every tampering,
//! truncation, and what `inspect` makes of each.

mod common;

use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::inspect::inspect;
use camseal::segment::write::{
    CheckpointPolicy, HPKE_KEM_X25519, Randomness, RecipientKey, SegmentParams, SegmentWriter,
};
use camseal::segment::{Checkpoint, CloseReason, SegmentEnd, SegmentError};
use common::*;

fn plaintext_of(records: &[Rec]) -> Vec<u8> {
    records.iter().flat_map(|r| r.3.clone()).collect()
}

/// Seals `records` for recipient 1 with checkpoints as `policy` asks.
fn seal(seq: u64, records: &[Rec], policy: CheckpointPolicy) -> Vec<u8> {
    let (_, pk) = recipient(1);
    let keys = [RecipientKey {
        kem: HPKE_KEM_X25519,
        public_key: &pk,
    }];
    let params = SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        stream_id: 0,
        segment_seq: seq,
        start_pts: records.first().map_or(0, |r| r.0),
        wallclock_ms: 1_700_000_000_000,
        prev_header_hash: if seq == 0 { [0; 32] } else { [seq as u8; 32] },
        recipients: &keys,
        gaps: &[],
        padding: camseal::segment::padding::Padding::Off,
    };
    let mut w = SegmentWriter::create(
        Vec::new(),
        &params,
        &camera(7),
        &Randomness::FixedForTests([seq as u8; 32]),
    )
    .unwrap()
    .with_checkpoints(policy);
    for (pts, key, cont, data) in records {
        w.append(*pts, *key, *cont, data).unwrap();
    }
    let end = records.last().map_or(0, |r| r.0 + 3000);
    w.finish(SegmentEnd {
        end_pts: end,
        reason: CloseReason::Keyframe,
    })
    .unwrap()
    .0
}

#[test]
fn round_trip_both_suites_several_recipients() {
    let (s1, p1) = recipient(1);
    let (s2, p2) = recipient(2);
    for suite in [SframeSuite::Aes128GcmSha256, SframeSuite::Aes256GcmSha512] {
        let records = sample_records(12);
        let (bytes, summary) = build(suite, 5, [5; 32], &[p1, p2], &records);
        assert_eq!(summary.bytes as usize, bytes.len());
        assert_eq!(summary.record_count, 13);
        for secret in [&s1, &s2] {
            let (pt, v) = open_all(&bytes, secret).unwrap();
            assert_eq!(pt, plaintext_of(&records));
            assert_eq!(v.records_digest, summary.records_digest);
            assert_eq!(v.header_hash, summary.header_hash);
            assert_eq!(v.checkpoints, summary.checkpoints);
            assert_eq!(v.end.unwrap().end_pts, 11 * 3000 + 3000);
        }
        let v = verify_all(&bytes).unwrap();
        assert_eq!(v.records_digest, summary.records_digest);
        assert!(!v.end_of_stream);
        let report = inspect(&bytes, None);
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.records.count, 13);
        assert_eq!(report.signed_records, 13);
        assert_eq!(report.checkpoints.len() as u64, summary.checkpoints);
    }
}

#[test]
fn empty_segment_still_has_final_record() {
    let (s1, p1) = recipient(1);
    let (bytes, summary) = build(SframeSuite::Aes128GcmSha256, 0, [0; 32], &[p1], &[]);
    assert_eq!(summary.record_count, 1);
    assert_eq!(summary.checkpoints, 1);
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
fn checkpoints_follow_the_policy() {
    // 30 fps and a checkpoint every 100 ms of video: before every third frame.
    let records: Vec<Rec> = (0..10u64)
        .map(|i| (i * 3000, i == 0, false, vec![i as u8; 40]))
        .collect();
    let bytes = seal(1, &records, CheckpointPolicy::every_ms(100));
    let report = inspect(&bytes, None);
    assert!(report.ok(), "{:?}", report.problems);
    let covered: Vec<u64> = report.checkpoints.iter().map(|c| c.record_count).collect();
    // The last checkpoint, before the trailer, covers the final record too.
    assert_eq!(covered, [3, 6, 9, 11]);
    assert_eq!(verify_all(&bytes).unwrap().checkpoints, 4);

    // A frame larger than the byte bound gets a checkpoint inside it.
    let big: Vec<Rec> = (0..6u64)
        .map(|i| (0, i == 0, i > 0, vec![7; 600]))
        .collect();
    let bounded = CheckpointPolicy {
        interval_ticks: u64::MAX,
        max_unsigned_bytes: 1000,
    };
    let bytes = seal(1, &big, bounded);
    let report = inspect(&bytes, None);
    assert!(report.ok(), "{:?}", report.problems);
    let covered: Vec<u64> = report.checkpoints.iter().map(|c| c.record_count).collect();
    assert_eq!(covered, [2, 4, 6, 7]);
    let (s1, _) = recipient(1);
    assert_eq!(open_all(&bytes, &s1).unwrap().0, plaintext_of(&big));
}

#[test]
fn every_single_bit_flip_is_detected() {
    let (s1, _) = recipient(1);
    let records: Vec<Rec> = sample_records(4)
        .into_iter()
        .map(|(pts, key, cont, data)| (pts, key, cont, data[..data.len().min(300)].to_vec()))
        .collect();
    let bytes = seal(9, &records, CheckpointPolicy::every_ms(30));
    let p = parts(&bytes);
    assert!(p.checkpoints.len() >= 3, "checkpoints inside the segment");
    let in_any =
        |ranges: &[std::ops::Range<usize>], i: usize| ranges.iter().any(|r| r.contains(&i));
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            let opened = open_all(&bad, &s1);
            assert!(
                verify_all(&bad).is_err(),
                "verify accepted a flip at byte {i}"
            );
            let report = inspect(&bad, None);
            assert!(!report.ok(), "inspect accepted a flip at byte {i}");
            let e = opened.expect_err("open accepted a flip");
            let allowed = if i < p.header {
                matches!(
                    e,
                    SegmentError::HeaderTampered
                        | SegmentError::BadHeaderSignature
                        | SegmentError::NotASegment
                        | SegmentError::UnsupportedVersion(_)
                        | SegmentError::UnsupportedSuite(_)
                        | SegmentError::Malformed(_)
                        | SegmentError::Truncated(_)
                        | SegmentError::NotARecipient
                )
            } else if in_any(&p.checkpoints, i) {
                matches!(
                    e,
                    SegmentError::CheckpointTampered(_)
                        | SegmentError::BadSignature
                        | SegmentError::Malformed(_)
                        | SegmentError::Truncated(_)
                        // The marker's last bit turns a checkpoint into a trailer.
                        | SegmentError::NoFinal
                        | SegmentError::TrailerTampered(_)
                        | SegmentError::TrailingData
                )
            } else if p.trailer.contains(&i) {
                matches!(
                    e,
                    SegmentError::TrailerTampered(_)
                        | SegmentError::BadSignature
                        | SegmentError::Malformed(_)
                        | SegmentError::Truncated(_)
                        // The marker's last bit turns the trailer into a checkpoint.
                        | SegmentError::CheckpointTampered(_)
                )
            } else {
                assert!(in_any(&p.records, i));
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
                )
            };
            assert!(allowed, "byte {i} bit {bit:#x}: {e}");
            // A header byte is caught by the header signature, whatever else it breaks.
            if i >= 4 && i < p.header && !matches!(e, SegmentError::UnsupportedVersion(_)) {
                let signature_checked = report.header.as_ref().map(|h| h.signature_valid);
                assert_ne!(signature_checked, Some(true), "header byte {i}");
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
        [2; 32],
        &[p1],
        &sample_records(5),
    );
    let p = parts(&bytes);
    // No checkpoint inside (default policy, 5 frames): one before the trailer.
    assert_eq!(p.checkpoints.len(), 1);
    let assemble = |order: &[usize], tail: std::ops::RangeFrom<usize>| {
        let mut out = bytes[..p.header].to_vec();
        for &i in order {
            out.extend_from_slice(&bytes[p.records[i].clone()]);
        }
        out.extend_from_slice(&bytes[tail]);
        out
    };
    let tail = p.checkpoints[0].start..;
    let swapped = assemble(&[0, 2, 1, 3, 4, 5], tail.clone());
    let dropped = assemble(&[0, 1, 3, 4, 5], tail.clone());
    let duplicated = assemble(&[0, 1, 1, 2, 3, 4, 5], tail);
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
    // Dropping the final record (and the checkpoint over it).
    let no_final = assemble(&[0, 1, 2, 3, 4], p.trailer.start..);
    assert!(matches!(
        open_all(&no_final, &s1),
        Err(SegmentError::NoFinal)
    ));
    // Dropping only the checkpoints is harmless: the trailer signs everything.
    let no_checkpoint = assemble(&[0, 1, 2, 3, 4, 5], p.trailer.start..);
    assert_eq!(
        open_all(&no_checkpoint, &s1).unwrap().1.checkpoints,
        0,
        "the trailer alone vouches for the records"
    );
}

#[test]
fn truncation_everywhere_is_detected_and_only_signed_records_count() {
    let (s1, _) = recipient(1);
    let records: Vec<Rec> = (0..8u64)
        .map(|i| (i * 3000, i == 0, false, vec![i as u8; 20 + i as usize]))
        .collect();
    let bytes = seal(2, &records, CheckpointPolicy::every_ms(50));
    // (end offset, records covered) of each checkpoint.
    let checkpoints: Vec<(usize, u64)> = inspect(&bytes, None)
        .checkpoints
        .iter()
        .map(|c| (c.offset as usize + Checkpoint::LEN, c.record_count))
        .collect();
    assert!(checkpoints.len() >= 3);
    let covered = |cut: usize| {
        checkpoints
            .iter()
            .filter(|c| c.0 <= cut)
            .map(|c| c.1)
            .max()
            .unwrap_or(0)
    };
    for cut in 0..bytes.len() {
        let e = open_all(&bytes[..cut], &s1).unwrap_err();
        assert!(matches!(e, SegmentError::Truncated(_)), "cut at {cut}: {e}");
        assert!(matches!(
            verify_all(&bytes[..cut]),
            Err(SegmentError::Truncated(_))
        ));
        let report = inspect(&bytes[..cut], None);
        assert!(
            matches!(
                report.first_problem().map(|p| &p.error),
                Some(SegmentError::Truncated(_))
            ),
            "cut at {cut}"
        );
        assert!(report.trailer.is_none());
        assert_eq!(report.signed_records, covered(cut), "cut at {cut}");
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(matches!(
        open_all(&extra, &s1),
        Err(SegmentError::TrailingData)
    ));
    assert!(matches!(
        inspect(&extra, None).first_problem().map(|p| &p.error),
        Some(SegmentError::TrailingData)
    ));
}

#[test]
fn inspect_names_the_camera_and_checks_it_against_the_expected_one() {
    let (_, p1) = recipient(1);
    let (bytes, summary) = build(
        SframeSuite::Aes256GcmSha512,
        0,
        [0; 32],
        &[p1],
        &sample_records(2),
    );
    let ours = camera(7).verifying_key().to_bytes();
    let other = camera(8).verifying_key().to_bytes();
    let report = inspect(&bytes, Some(&ours));
    assert!(report.ok());
    let h = report.header.as_ref().unwrap();
    assert_eq!(h.hash, summary.header_hash);
    assert_eq!(h.camera_matches, Some(true));
    assert_eq!(h.camera_id, camseal::segment::camera_id(&ours));
    assert_eq!(report.version, Some(2));

    let report = inspect(&bytes, Some(&other));
    assert!(matches!(
        report.first_problem().map(|p| &p.error),
        Some(SegmentError::WrongCamera { .. })
    ));
    // Only the camera is wrong: every signature is still valid with the key named.
    assert!(report.header.as_ref().unwrap().signature_valid);
    assert!(report.checkpoints.iter().all(|c| c.signature_valid));
    assert!(report.trailer.as_ref().unwrap().signature_valid);

    for junk in [&b""[..], b"CS", b"not a segment at all", &[0xff; 300]] {
        let report = inspect(junk, None);
        assert!(report.header.is_none() && !report.ok());
    }
}

#[test]
fn the_writer_refuses_a_recipient_twice() {
    // Readers reject a header with two stanzas of one key id, so the writer must not
    // make one.
    let (_, p1) = recipient(1);
    let keys = [RecipientKey {
        kem: HPKE_KEM_X25519,
        public_key: &p1,
    }; 2];
    let params = SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        stream_id: 0,
        segment_seq: 0,
        start_pts: 0,
        wallclock_ms: 0,
        prev_header_hash: [0; 32],
        recipients: &keys,
        gaps: &[],
        padding: camseal::segment::padding::Padding::Off,
    };
    let made = SegmentWriter::create(
        Vec::new(),
        &params,
        &camera(7),
        &Randomness::FixedForTests([1; 32]),
    );
    assert!(matches!(made, Err(SegmentError::Wrap(_))));
}
