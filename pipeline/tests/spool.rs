//! The spool at the library level: segments written through it, crashes at every stage of a
//! segment's life, the quota, and what `verify` and `decrypt` make of the result.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use camseal::footage::{collect_paths, decrypt_footage, load_headers, verify_footage};
use camseal::recorder::ChainState;
use camseal::segment::write::{CheckpointPolicy, Randomness, SegmentParams, SegmentWriter};
use camseal::segment::{CloseReason, Gap, GapReason, SegmentEnd, camera_id};
use camseal::spool::{
    EntryKind, QuotaPolicy, SegmentId, Spool, SpoolConfig, SpoolError, SpoolWriter,
};
use common::*;

struct Camera {
    spool: Spool,
    chain: ChainState,
    log: Arc<Mutex<Vec<String>>>,
}

impl Camera {
    fn new(dir: &Path, max_bytes: Option<u64>, policy: QuotaPolicy) -> Camera {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let config = SpoolConfig {
            max_bytes,
            policy,
            sync_interval: None,
            log: Arc::new(move |l| sink.lock().unwrap().push(l.to_string())),
        };
        Camera {
            spool: Spool::open(dir, config).unwrap(),
            chain: ChainState::default(),
            log,
        }
    }

    fn id(&self, seq: u64) -> SegmentId {
        SegmentId {
            camera_id: camera_id(&camera(7).verifying_key().to_bytes()),
            stream: 0,
            seq,
        }
    }

    /// Opens the next segment the way the recorder does: header durable first, then the
    /// sequence number reserved. Returns the writer after `records` records.
    fn open(&mut self, records: u64) -> Result<SegmentWriter<SpoolWriter>, SpoolError> {
        let seq = self.chain.next_seq;
        let (w, gaps) = self.spool.begin(self.id(seq))?;
        let (_, pk) = recipient(1);
        let keys = [x25519_recipient(&pk)];
        let params = SegmentParams {
            segment_seq: seq,
            start_pts: seq * 9000,
            prev_header_hash: self.chain.prev_header_hash,
            gaps: &gaps,
            ..segment_params(&keys)
        };
        // A checkpoint before every frame, so a crash keeps all but the last frame.
        let mut w = SegmentWriter::create(w, &params, &camera(7), &Randomness::Os)
            .unwrap()
            .with_checkpoints(CheckpointPolicy::every_ms(1));
        self.chain.next_seq = seq + 1; // reserved
        for i in 0..records {
            w.append(seq * 9000 + i * 3000, i == 0, false, &payload(seq, i))
                .unwrap();
        }
        Ok(w)
    }

    fn close(&mut self, w: SegmentWriter<SpoolWriter>) {
        let seq = self.chain.next_seq - 1;
        let (out, summary) = w
            .finish(SegmentEnd {
                end_pts: seq * 9000 + 9000,
                reason: CloseReason::Keyframe,
            })
            .unwrap();
        let mut chain = self.chain;
        out.commit(|| -> Result<(), ()> {
            chain.prev_header_hash = summary.header_hash;
            Ok(())
        })
        .unwrap();
        self.chain = chain;
    }

    fn segment(&mut self, records: u64) {
        let w = self.open(records).unwrap();
        self.close(w);
    }

    fn restart(&mut self) -> camseal::spool::Recovery {
        let config = self.spool.config().clone();
        self.spool = Spool::open(self.spool.dir(), config).unwrap();
        self.spool
            .recover(&camera(7).verifying_key().to_bytes(), 0, &mut self.chain)
            .unwrap()
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.spool.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn payload(seq: u64, i: u64) -> Vec<u8> {
    format!("segment {seq} frame {i} ").repeat(40).into_bytes()
}

fn expected(seqs: &[(u64, u64)]) -> Vec<u8> {
    seqs.iter()
        .flat_map(|&(s, n)| (0..n).flat_map(move |i| payload(s, i)))
        .collect()
}

fn decrypt_dir(
    dir: &Path,
    salvage: bool,
) -> Result<(Vec<u8>, Vec<camseal::footage::SegmentReport>), camseal::footage::FootageError> {
    let files = load_headers(&collect_paths(&[dir.to_path_buf()])?, None)?;
    let mut out = Vec::new();
    let reports = decrypt_footage(&files, &recipient(1).0, salvage, &mut out, |_| {})?;
    Ok((out, reports))
}

#[test]
fn closed_segments_wait_in_order_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    for _ in 0..3 {
        cam.segment(3);
    }
    let pending = cam.spool.pending().unwrap();
    assert_eq!(
        pending.iter().map(|p| p.id.seq).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(pending.iter().all(|p| !p.incomplete));
    let (out, _) = decrypt_dir(dir.path(), false).unwrap();
    assert_eq!(out, expected(&[(0, 3), (1, 3), (2, 3)]));
    let status = cam.spool.status().unwrap();
    assert_eq!((status.pending, status.open), (3, 0));
}

#[test]
fn an_open_segment_is_a_valid_header_and_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    let w = cam.open(2).unwrap();
    let open = dir.path().join(cam.id(0).spool_name(EntryKind::Open));
    // Read while it is being written: a header and two whole records, nothing torn.
    let bytes = std::fs::read(&open).unwrap();
    let scan = camseal::spool::policy::scan_prefix(&bytes);
    assert_eq!((scan.records, scan.valid_len), (2, bytes.len()));
    assert!(scan.complete.is_none());
    drop(w);
}

#[test]
fn crash_mid_segment_is_salvaged_and_declared() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    cam.segment(3);
    cam.segment(3);
    let w = cam.open(2).unwrap();
    drop(w); // the process dies here
    // ...and the kernel had taken only part of a third record.
    let open = dir.path().join(cam.id(2).spool_name(EntryKind::Open));
    let mut torn = std::fs::read(&open).unwrap();
    torn.extend_from_slice(&[0, 0, 1, 0, 0, 7, 7]);
    std::fs::write(&open, &torn).unwrap();

    let mut restarted = cam.chain;
    let rec = cam.restart();
    assert_eq!(rec.salvaged, vec![(cam.id(2), 2)]);
    assert!(!rec.chain_changed, "seq 2 was already reserved");
    restarted.next_seq = 3;
    assert_eq!(cam.chain, restarted);
    assert_eq!(rec.gaps.len(), 1);
    assert_eq!(rec.gaps[0].reason, GapReason::Crash);
    assert_eq!(rec.gaps[0].lost_segments, Some((2, 2)));
    assert!(
        cam.names()
            .contains(&cam.id(2).spool_name(EntryKind::Incomplete))
    );
    let pending = cam.spool.pending().unwrap();
    assert!(pending.iter().any(|p| p.id.seq == 2 && p.incomplete));

    // Recovery again (a crash before the next segment opened) changes nothing.
    let again = cam.restart();
    assert_eq!(again.gaps, rec.gaps);
    assert!(again.salvaged.is_empty());

    cam.segment(3);
    // The crash gap was delivered in segment 3's durable header.
    assert!(cam.restart().gaps.is_empty());
    let files = load_headers(&collect_paths(&[dir.path().to_path_buf()]).unwrap(), None).unwrap();
    let (results, chain) = verify_footage(&files);
    chain.unwrap();
    // Segment 3's signed header declares the crash: segment 2's signed prefix verifies, and
    // its last record, which no checkpoint covers, is dropped.
    let crashed = results[2].as_ref().unwrap();
    assert!(crashed.incomplete() && crashed.declared_crashed);
    assert_eq!((crashed.records, crashed.dropped()), (1, 1));
    for salvage in [false, true] {
        let (out, reports) = decrypt_dir(dir.path(), salvage).unwrap();
        assert!(reports[2].incomplete());
        assert_eq!(out, expected(&[(0, 3), (1, 3), (2, 1), (3, 3)]));
    }
}

#[test]
fn crash_between_trailer_and_rename_finishes_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    cam.segment(2);
    let w = cam.open(2).unwrap();
    let (out, summary) = w
        .finish(SegmentEnd {
            end_pts: 20_000,
            reason: CloseReason::Keyframe,
        })
        .unwrap();
    drop(out); // trailer written, chain not yet stored, not renamed
    let rec = cam.restart();
    assert_eq!(rec.completed, vec![cam.id(1)]);
    assert!(rec.gaps.is_empty() && rec.chain_changed);
    assert_eq!(cam.chain.prev_header_hash, summary.header_hash);
    cam.segment(2);
    let (out, _) = decrypt_dir(dir.path(), false).unwrap();
    assert_eq!(out, expected(&[(0, 2), (1, 2), (2, 2)]));
}

#[test]
fn a_header_never_reserved_is_discarded_and_its_gaps_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    cam.segment(2);
    let gap = Gap {
        reason: GapReason::DroppedFrames,
        lost_segments: None,
        frames: 5,
        from_pts: 1,
        to_pts: 2,
    };
    cam.spool.queue_gap(&cam.id(0).camera_id, 0, gap).unwrap();
    let w = cam.open(0).unwrap();
    drop(w);
    cam.chain.next_seq = 1; // the crash came before the reservation
    let rec = cam.restart();
    assert_eq!(rec.discarded.len(), 1);
    assert_eq!(rec.gaps, vec![gap]);
    cam.segment(1);
    let files = load_headers(&collect_paths(&[dir.path().to_path_buf()]).unwrap(), None).unwrap();
    assert_eq!(files[1].header.gaps(), vec![gap]);
    verify_footage(&files).1.unwrap();
}

#[test]
fn repeated_crashes_extend_one_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    cam.segment(2);
    drop(cam.open(1).unwrap());
    cam.restart();
    drop(cam.open(1).unwrap()); // crashes again, carrying the first crash gap
    let rec = cam.restart();
    assert!(
        rec.gaps.iter().any(|g| g.lost_segments == Some((1, 2))),
        "{:?}",
        rec.gaps
    );
    cam.segment(2);
    let files = load_headers(&collect_paths(&[dir.path().to_path_buf()]).unwrap(), None).unwrap();
    verify_footage(&files).1.unwrap();
    // Each crashed segment held one record, which no checkpoint covered: both are dropped.
    let (out, reports) = decrypt_dir(dir.path(), true).unwrap();
    assert_eq!((reports[1].dropped(), reports[2].dropped()), (1, 1));
    assert_eq!(out, expected(&[(0, 2), (3, 2)]));
}

/// Found by scripts/test-power-cut.sh: the engine opens the next segment while the publisher
/// still fsyncs the previous one, so a power cut can leave two open segments, the second
/// naming the first (which the cut took) as its predecessor. The segment after recovery must
/// link past both, to the last finished one, as its joined crash gaps declare.
#[test]
fn a_power_cut_with_two_open_segments_links_past_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    cam.segment(2);
    let w = cam.open(2).unwrap();
    let (out, summary) = w
        .finish(SegmentEnd {
            end_pts: 18_000,
            reason: CloseReason::Keyframe,
        })
        .unwrap();
    drop(out); // being published: not yet fsynced nor renamed
    cam.chain.prev_header_hash = summary.header_hash;
    drop(cam.open(1).unwrap());
    // The cut takes what segment 1 had not fsynced: its trailer and the end of a record.
    let open = dir.path().join(cam.id(1).spool_name(EntryKind::Open));
    let bytes = std::fs::read(&open).unwrap();
    std::fs::write(&open, &bytes[..bytes.len() - 40]).unwrap();
    let rec = cam.restart();
    assert_eq!(
        rec.salvaged
            .iter()
            .map(|(id, _)| id.seq)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    cam.segment(2);
    let files = load_headers(&collect_paths(&[dir.path().to_path_buf()]).unwrap(), None).unwrap();
    assert_eq!(files.len(), 4);
    verify_footage(&files).1.unwrap();
}

#[test]
fn drop_oldest_counts_logs_and_declares_every_drop() {
    let dir = tempfile::tempdir().unwrap();
    let probe = tempfile::tempdir().unwrap();
    let mut one = Camera::new(probe.path(), None, QuotaPolicy::DropOldest);
    one.segment(3);
    let seg_bytes = one.spool.pending().unwrap()[0].bytes;

    let mut cam = Camera::new(dir.path(), Some(seg_bytes * 5 / 2), QuotaPolicy::DropOldest);
    for _ in 0..6 {
        cam.segment(3);
    }
    let status = cam.spool.status().unwrap();
    assert!(status.counters.dropped_segments >= 3, "{status:?}");
    assert!(status.pending_bytes <= seg_bytes * 5 / 2 + seg_bytes);
    let log = cam.log.lock().unwrap().clone();
    assert_eq!(
        log.iter().filter(|l| l.contains("QUOTA")).count() as u64,
        status.counters.dropped_segments
    );
    // The drops are declared in the headers of later segments, and the chain over what is
    // left (plus what was uploaded earlier, here nothing) verifies.
    cam.segment(3);
    let files = load_headers(&collect_paths(&[dir.path().to_path_buf()]).unwrap(), None).unwrap();
    let declared: Vec<Gap> = files.iter().flat_map(|f| f.header.gaps()).collect();
    assert!(declared.iter().all(|g| g.reason == GapReason::SpoolQuota));
    // Every sequence number not in the spool is declared, even when the segment that first
    // declared it was dropped in turn; drops during the last segment wait in the queue for
    // the next header.
    let queued = cam.restart().gaps;
    let present: Vec<u64> = files.iter().map(|f| f.header.segment_seq).collect();
    for seq in 0..*present.last().unwrap() {
        assert!(
            present.contains(&seq)
                || declared
                    .iter()
                    .chain(&queued)
                    .any(|g| g.lost_segments == Some((seq, seq))),
            "seq {seq} neither present nor declared: {declared:?} {queued:?}"
        );
    }
    // The spool holds a window of the stream: its first segments were dropped, and the
    // segment that declared some of those drops was dropped in turn.
    let from = present[0];
    let (results, chain) = camseal::footage::verify_footage_from(&files, from);
    chain.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    let mut out = Vec::new();
    camseal::footage::decrypt_footage_from(&files, &recipient(1).0, from, false, &mut out, |_| {})
        .unwrap();
    // Without saying where the window starts, the missing start is reported.
    assert!(matches!(
        verify_footage(&files).1,
        Err(camseal::footage::FootageError::MissingStart { .. })
    ));
}

#[test]
fn stop_recording_refuses_new_segments_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), Some(1), QuotaPolicy::StopRecording);
    cam.segment(1);
    assert!(matches!(cam.open(1), Err(SpoolError::Full { .. })));
    // Uploading makes room.
    for p in cam.spool.pending().unwrap() {
        cam.spool.remove(&p).unwrap();
    }
    cam.segment(1);
}

#[test]
fn a_crash_of_the_first_segment_restarts_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut cam = Camera::new(dir.path(), None, QuotaPolicy::DropOldest);
    drop(cam.open(2).unwrap());
    let rec = cam.restart();
    assert_eq!(rec.gaps[0].lost_segments, Some((0, 0)));
    cam.segment(2);
    let files = load_headers(&collect_paths(&[dir.path().to_path_buf()]).unwrap(), None).unwrap();
    verify_footage(&files).1.unwrap();
    // Segment 0 kept one signed record (a checkpoint before its second frame).
    let (out, _) = decrypt_dir(dir.path(), true).unwrap();
    assert_eq!(out, expected(&[(0, 1), (1, 2)]));
}
