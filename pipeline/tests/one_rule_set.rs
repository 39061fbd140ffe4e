//! `verify` and `decrypt` share one chain and gap checker (FORMAT.md §6, §9): on every
//! subset of a stream's segments, after random histories of crashes and spool drops, they
//! reach the same verdict.

mod common;

use std::path::PathBuf;

use camseal::footage::{
    FootageError, collect_paths, decrypt_footage, footage_verdict, load_headers, verify_footage,
};
use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::write::{
    CheckpointPolicy, HPKE_KEM_X25519, Randomness, RecipientKey, SegmentParams, SegmentWriter,
};
use camseal::segment::{CloseReason, Digest32, Gap, GapReason, SegmentEnd, SegmentError};
use common::*;
use proptest::prelude::*;

/// What happened to one segment.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// Written whole.
    Whole,
    /// Cut off by a crash; the next segment declares it.
    Crash,
    /// Written whole, then dropped from a full spool; declared `delay` segments later.
    Dropped { delay: usize },
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Whole),
        2 => Just(Fate::Crash),
        2 => (0usize..3).prop_map(|delay| Fate::Dropped { delay }),
    ]
}

/// Writes the stream a camera would leave after `history`, into `dir`. Returns the paths
/// of the segments that exist (dropped ones are deleted), and whether every loss was
/// declared by a segment that exists.
fn write_history(dir: &std::path::Path, history: &[Fate]) -> (Vec<PathBuf>, bool) {
    let (_, pk) = recipient(1);
    let keys = [RecipientKey {
        kem: HPKE_KEM_X25519,
        public_key: &pk,
    }];
    let mut prev: Digest32 = [0; 32];
    let mut crash_run: Option<(u64, u64)> = None;
    // (declare at seq, gap)
    let mut pending: Vec<(u64, Gap)> = Vec::new();
    let mut present = Vec::new();
    for (seq, fate) in history.iter().enumerate() {
        let seq = seq as u64;
        let mut gaps: Vec<Gap> = pending
            .iter()
            .filter(|(at, _)| *at <= seq)
            .map(|(_, g)| *g)
            .collect();
        pending.retain(|(at, _)| *at > seq);
        if let Some((first, last)) = crash_run.take() {
            gaps.push(Gap {
                reason: GapReason::Crash,
                lost_segments: Some((first, last)),
                frames: 0,
                from_pts: first * 9000,
                to_pts: seq * 9000,
            });
        }
        let params = SegmentParams {
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            stream_id: 0,
            segment_seq: seq,
            start_pts: seq * 9000,
            wallclock_ms: 0,
            prev_header_hash: prev,
            recipients: &keys,
            gaps: &gaps,
            padding: camseal::segment::padding::Padding::Off,
        };
        let mut w = SegmentWriter::create(
            Vec::new(),
            &params,
            &camera(7),
            &Randomness::FixedForTests([seq as u8 + 1; 32]),
        )
        .unwrap()
        .with_checkpoints(CheckpointPolicy::every_ms(1));
        for i in 0..3u64 {
            w.append(seq * 9000 + i * 3000, i == 0, false, &[seq as u8; 50])
                .unwrap();
        }
        let (mut bytes, summary) = w
            .finish(SegmentEnd {
                end_pts: seq * 9000 + 9000,
                reason: CloseReason::Keyframe,
            })
            .unwrap();
        let path = dir.join(format!("seg-{seq:04}.cseg"));
        match fate {
            Fate::Whole => {
                prev = summary.header_hash;
                present.push(path.clone());
            }
            Fate::Crash => {
                bytes.truncate(bytes.len() - 250);
                // As the spool does (`crash_gaps`): a crash run this segment declared up to
                // `seq - 1` grows to include it, so the next segment links past both.
                let first = gaps
                    .iter()
                    .filter(|g| g.reason == GapReason::Crash)
                    .filter_map(|g| g.lost_segments)
                    .filter(|&(_, last)| last + 1 == seq)
                    .map(|(first, _)| first)
                    .min()
                    .unwrap_or(seq);
                crash_run = Some((first, seq));
                present.push(path.clone());
            }
            Fate::Dropped { delay } => {
                prev = summary.header_hash;
                // As the spool does: what a dropped segment declared is declared again.
                pending.extend(gaps.iter().map(|g| (seq + 1, *g)));
                pending.push((
                    seq + 1 + *delay as u64,
                    Gap {
                        reason: GapReason::SpoolQuota,
                        lost_segments: Some((seq, seq)),
                        frames: 0,
                        from_pts: seq * 9000,
                        to_pts: seq * 9000 + 9000,
                    },
                ));
                continue;
            }
        }
        std::fs::write(&path, bytes).unwrap();
    }
    (present, pending.is_empty() && crash_run.is_none())
}

/// The exit-code class of an error (what `camseal` would exit with).
fn class(e: &FootageError) -> &'static str {
    match e {
        FootageError::Segment {
            source: SegmentError::Truncated(_),
            ..
        }
        | FootageError::CutOffInside { .. } => "truncated",
        FootageError::MissingSegment { .. }
        | FootageError::MissingStart { .. }
        | FootageError::ChainMismatch { .. }
        | FootageError::Duplicate { .. } => "chain",
        FootageError::Segment { .. } => "segment",
        _ => "other",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn verify_and_decrypt_agree_on_every_subset(
        history in prop::collection::vec(fate(), 2..8),
        keep in prop::collection::vec(any::<bool>(), 8),
    ) {
        let all = tempfile::tempdir().unwrap();
        let (present, all_declared) = write_history(all.path(), &history);
        let subset = tempfile::tempdir().unwrap();
        let mut kept = 0;
        for (i, p) in present.iter().enumerate() {
            if keep[i % keep.len()] {
                std::fs::copy(p, subset.path().join(p.file_name().unwrap())).unwrap();
                kept += 1;
            }
        }
        prop_assume!(kept > 0);
        let paths = collect_paths(&[subset.path().to_path_buf()]).unwrap();
        let files = load_headers(&paths, None).unwrap();
        let (results, chain) = verify_footage(&files);
        let verdict = footage_verdict(&results, &chain).map_err(class);
        for allow_incomplete_end in [false, true] {
            let mut out = Vec::new();
            let decrypted =
                decrypt_footage(&files, &recipient(1).0, allow_incomplete_end, &mut out, |_| {})
                    .map(|_| ())
                    .map_err(|e| class(&e));
            if allow_incomplete_end {
                // Salvage only ever turns a cut-off end into success.
                if verdict != decrypted {
                    prop_assert_eq!(verdict, Err("truncated"), "{:?}", history);
                    prop_assert!(decrypted.is_ok());
                }
            } else {
                prop_assert_eq!(verdict, decrypted, "history {:?}, kept {:?}", history, keep);
            }
        }
        // The whole stream, as the camera left it, verifies once every loss is declared
        // (a crash or drop at the very end waits for the next segment to declare it).
        if kept == present.len() && all_declared {
            prop_assert_eq!(verdict, Ok(()), "history {:?}", history);
        }
    }
}
