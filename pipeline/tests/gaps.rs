//! Signed gap markers (header extension 0x0001) and how the chain check treats them.

mod common;

use std::path::PathBuf;

use camseal::footage::{
    FootageError, check_chain, collect_paths, decrypt_footage, load_headers, verify_footage,
};
use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::write::{
    HPKE_KEM_X25519, Randomness, RecipientKey, SegmentParams, SegmentWriter,
};
use camseal::segment::{
    CloseReason, Digest32, Gap, GapReason, Header, Parsed, SegmentEnd, SegmentError,
};
use common::*;

struct Stream {
    dir: tempfile::TempDir,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes segment `seq` naming `prev` and recording `gaps`; returns its header hash.
    fn write(&self, seq: u64, prev: Digest32, gaps: &[Gap], truncate: bool) -> Digest32 {
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
            start_pts: seq * 9000,
            wallclock_ms: 0,
            prev_header_hash: prev,
            recipients: &keys,
            gaps,
            padding: camseal::segment::padding::Padding::Off,
        };
        let mut w =
            SegmentWriter::create(Vec::new(), &params, &camera(7), &Randomness::Os).unwrap();
        for i in 0..3u64 {
            w.append(seq * 9000 + i * 3000, i == 0, false, &payload(seq, i))
                .unwrap();
        }
        let (mut bytes, summary) = w
            .finish(SegmentEnd {
                end_pts: seq * 9000 + 9000,
                reason: CloseReason::Keyframe,
            })
            .unwrap();
        if truncate {
            bytes.truncate(bytes.len() - 150);
        }
        std::fs::write(self.path(seq), bytes).unwrap();
        summary.header_hash
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.path().join(format!("seg-{seq:04}.cseg"))
    }

    fn files(&self) -> Vec<camseal::footage::SegmentFile> {
        let paths = collect_paths(&[self.dir.path().to_path_buf()]).unwrap();
        load_headers(&paths, None).unwrap()
    }
}

fn payload(seq: u64, i: u64) -> Vec<u8> {
    format!("segment {seq} frame {i} ").repeat(20).into_bytes()
}

fn crash_gap(seq: u64) -> Gap {
    Gap {
        reason: GapReason::Crash,
        lost_segments: Some((seq, seq)),
        frames: 0,
        from_pts: seq * 9000,
        to_pts: seq * 9000 + 9000,
    }
}

#[test]
fn gap_encoding_round_trips_and_rejects_nonsense() {
    let g = Gap {
        reason: GapReason::DroppedFrames,
        lost_segments: None,
        frames: 12,
        from_pts: 3000,
        to_pts: 39000,
    };
    assert_eq!(Gap::parse(&g.encode()).unwrap(), g);
    let c = crash_gap(4);
    assert_eq!(Gap::parse(&c.encode()).unwrap(), c);
    let mut bad = c.encode();
    bad[0] = 9;
    assert!(Gap::parse(&bad).is_err());
    let mut backwards = c.encode();
    backwards[17] = 0; // last < first
    backwards[9] = 5;
    assert!(Gap::parse(&backwards).is_err());
    assert!(Gap::parse(&c.encode()[..41]).is_err());
}

#[test]
fn gaps_are_in_the_signed_header() {
    let s = Stream::new();
    s.write(8, [1; 32], &[crash_gap(7)], false);
    let bytes = std::fs::read(s.path(8)).unwrap();
    let Parsed::Complete(header, _) = Header::parse(&bytes).unwrap() else {
        panic!("header");
    };
    assert_eq!(header.gaps(), vec![crash_gap(7)]);
    // Changing the gap breaks the signature (and the header MAC).
    let needle = crash_gap(7).encode();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut bad = bytes.clone();
    bad[at + 25] ^= 1; // frames
    std::fs::write(s.path(8), &bad).unwrap();
    // Nothing of a header is believed before its signature verifies.
    let paths = collect_paths(&[s.dir.path().to_path_buf()]).unwrap();
    let err = load_headers(&paths, None).unwrap_err();
    assert!(matches!(
        err.segment_error(),
        Some(SegmentError::BadHeaderSignature)
    ));
}

#[test]
fn crash_gap_links_over_an_incomplete_segment_and_allows_its_salvage() {
    let s = Stream::new();
    let d0 = s.write(0, [0; 32], &[], false);
    let d1 = s.write(1, d0, &[], false);
    let d2 = s.write(2, d1, &[], true); // crashed mid-segment
    s.write(3, d1, &[crash_gap(2)], false); // restarted camera links to 1
    let files = s.files();
    let (results, chain) = verify_footage(&files);
    chain.unwrap();
    // Segment 3's signed header declares the crash: segment 2 is accepted cut off, with
    // only what a checkpoint signed: here nothing, as its one checkpoint (before the
    // trailer) was cut, so all four records (three video, the final) are dropped.
    let crashed = results[2].as_ref().unwrap();
    assert!(crashed.incomplete() && crashed.declared_crashed);
    assert_eq!((crashed.records, crashed.dropped()), (0, 4));
    assert_eq!(results[3].as_ref().unwrap().gaps, vec![crash_gap(2)]);
    let (secret, _) = recipient(1);
    // Without the declaration the cut-off segment is a truncation inside the window.
    std::fs::remove_file(s.path(3)).unwrap();
    // (A spool drop does not move the predecessor: segment 3 names segment 2.)
    s.write(3, d2, &[SPOOL_QUOTA_2], false);
    let (results, chain) = verify_footage(&s.files());
    assert!(chain.is_ok());
    assert!(matches!(results[2], Err(FootageError::CutOffInside { .. })));
    s.write(3, d1, &[crash_gap(2)], false);
    let files = s.files();
    // Decryption keeps the signed prefix and everything after it, and never an unsigned
    // record.
    for allow_incomplete_end in [false, true] {
        let mut out = Vec::new();
        let reports =
            decrypt_footage(&files, &secret, allow_incomplete_end, &mut out, |_| {}).unwrap();
        assert!(reports[2].incomplete() && !reports[3].incomplete());
        assert!(!out.windows(10).any(|w| w == &payload(2, 0)[..10]));
        let full: Vec<u8> = [0, 1]
            .iter()
            .flat_map(|&q| (0..3).flat_map(move |i| payload(q, i)))
            .collect();
        assert!(out.starts_with(&full));
        assert!(out.ends_with(&(0..3).flat_map(|i| payload(3, i)).collect::<Vec<_>>()));
    }
}

/// A quota gap naming segment 2: it explains a missing segment, not a cut-off one.
const SPOOL_QUOTA_2: Gap = Gap {
    reason: GapReason::SpoolQuota,
    lost_segments: Some((2, 2)),
    frames: 0,
    from_pts: 18000,
    to_pts: 27000,
};

#[test]
fn a_hole_needs_a_signed_gap() {
    let s = Stream::new();
    let d0 = s.write(0, [0; 32], &[], false);
    let d1 = s.write(1, d0, &[], false);
    // Segment 2 is missing and segment 3 does not say why: a missing segment.
    s.write(3, d1, &[], false);
    assert!(matches!(
        verify_footage(&s.files()).1,
        Err(FootageError::MissingSegment { missing: 2, .. })
    ));
    // Declared lost (say, dropped from a full spool): the chain is intact.
    let quota = Gap {
        reason: GapReason::SpoolQuota,
        lost_segments: Some((2, 2)),
        frames: 0,
        from_pts: 18000,
        to_pts: 27000,
    };
    // Segment 2 was finished, then dropped: segment 3 still names it, and its link cannot
    // be checked, but the drop is declared.
    let d2 = s.write(2, d1, &[], false);
    std::fs::remove_file(s.path(2)).unwrap();
    s.write(3, d2, &[quota], false);
    let (results, chain) = verify_footage(&s.files());
    chain.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    // A crash gap makes segment 1 the predecessor: naming another header hash for it is a
    // mismatch.
    s.write(3, [9; 32], &[crash_gap(2)], false);
    assert!(matches!(
        verify_footage(&s.files()).1,
        Err(FootageError::ChainMismatch { .. })
    ));
    s.write(3, d1, &[crash_gap(2)], false);
    verify_footage(&s.files()).1.unwrap();
}

#[test]
fn structural_check_alone_finds_holes() {
    let s = Stream::new();
    let d0 = s.write(0, [0; 32], &[], false);
    s.write(2, d0, &[], false);
    let files = s.files();
    assert!(matches!(
        check_chain(&files, 0),
        Err(FootageError::MissingSegment { missing: 1, .. })
    ));
}
