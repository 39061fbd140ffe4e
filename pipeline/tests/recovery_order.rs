//! What a crash leaves between the publisher's durability steps, and what recovery makes of
//! it: the chain state is stored before a segment is made durable and visible (docs/UPLOAD.md,
//! "Closing"), a power cut can leave two segments open in an `--out` directory, and a file
//! named with the last sequence number there is cannot wrap the chain.

mod common;
mod synth;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use camseal::engine::{DirSink, Engine, EngineConfig, SegmentInfo, SegmentOutput, SegmentSink};
use camseal::footage::{collect_paths, load_headers, verify_footage};
use camseal::recorder::{ChainState, segment_file_name};
use camseal::seal::SframeSuite;
use camseal::segment::write::{Randomness, SegmentParams, SegmentWriter};
use camseal::segment::{CloseReason, Header, Parsed, SegmentEnd, camera_id};
use camseal::spool::{EntryKind, SegmentId, Spool, SpoolConfig, SpoolError};
use common::*;
use synth::*;

/// What the chain state file said when each segment's publication (fsync, rename) began.
type Seen = Arc<Mutex<Vec<(u64, ChainState)>>>;

/// A directory sink that reads the stored chain state at the moment each segment starts to
/// become durable.
struct Watching {
    inner: DirSink,
    chain_path: PathBuf,
    seen: Seen,
}

impl SegmentSink for Watching {
    fn open(&mut self, info: &SegmentInfo) -> std::io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(WatchingOutput {
            inner: self.inner.open(info)?,
            seq: info.seq,
            chain_path: self.chain_path.clone(),
            seen: Arc::clone(&self.seen),
        }))
    }
}

struct WatchingOutput {
    inner: Box<dyn SegmentOutput>,
    seq: u64,
    chain_path: PathBuf,
    seen: Seen,
}

impl SegmentOutput for WatchingOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write(bytes)
    }

    fn publish(self: Box<Self>) -> std::io::Result<PathBuf> {
        let stored = ChainState::load(&self.chain_path).unwrap();
        self.seen.lock().unwrap().push((self.seq, stored));
        self.inner.publish()
    }
}

fn header_of(path: &Path) -> Header {
    match Header::parse(&std::fs::read(path).unwrap()).unwrap() {
        Parsed::Complete(h, _) => h,
        Parsed::Needed(_) => panic!("{}: no whole header", path.display()),
    }
}

/// The chain state never lags a segment that a reader can see: recovery examines only
/// unfinished files, so a visible segment with a stale chain state behind it would have its
/// number used again. The publisher therefore stores the state (next number, this segment's
/// header hash) before the segment is fsynced and renamed into place.
#[test]
fn the_chain_state_is_stored_before_each_segment_is_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let chain_path = dir.path().join("0.chain");
    let seen = Seen::default();
    let engine = Engine::new(EngineConfig::new(1)).unwrap();
    let mut config = stream_config(0, 0.2);
    config.chain_path = Some(chain_path.clone());
    let sink = Watching {
        inner: DirSink::new(&out).unwrap(),
        chain_path: chain_path.clone(),
        seen: Arc::clone(&seen),
    };
    let mut stream = engine.open_stream(config, Box::new(sink)).unwrap();
    for i in 0..40u64 {
        let (key, au) = access_unit(i, 10, frame_size(i, 10, 20_000, 3_000), 9_000);
        stream.push(packet(i, key, au), Instant::now()).unwrap();
    }
    stream.finish(CloseReason::EndOfStream).unwrap();
    engine.shutdown();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let cam = camera_id(&camera(7).verifying_key().to_bytes());
    for (seq, stored) in seen {
        let header = header_of(&out.join(segment_file_name(&cam, 0, seq)));
        assert!(
            stored.next_seq > seq,
            "segment {seq} began to be published while the chain state still offered its number: {stored:?}"
        );
        assert_eq!(
            stored.prev_header_hash,
            header.hash(),
            "segment {seq} began to be published before the chain state named it"
        );
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// Segment `seq` of camera 7, stream 0, with `gaps` declared; returns its bytes and header hash.
fn segment(seq: u64, prev: [u8; 32], gaps: &[camseal::segment::Gap]) -> (Vec<u8>, [u8; 32]) {
    let (_, pk) = recipient(1);
    let keys = [x25519_recipient(&pk)];
    let start = (seq % 1000) * 9000;
    let params = SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        segment_seq: seq,
        start_pts: start,
        prev_header_hash: prev,
        gaps,
        ..segment_params(&keys)
    };
    let mut w = SegmentWriter::create(
        Vec::new(),
        &params,
        &camera(7),
        &Randomness::FixedForTests([seq as u8; 32]),
    )
    .unwrap();
    for i in 0..3u64 {
        w.append(start + i * 3000, i == 0, false, &[seq as u8; 2000])
            .unwrap();
    }
    let (bytes, summary) = w
        .finish(SegmentEnd {
            end_pts: start + 9000,
            reason: CloseReason::Keyframe,
        })
        .unwrap();
    (bytes, summary.header_hash)
}

/// The state a power cut leaves in an `--out` directory while segment 1 is being published
/// and segment 2 is open: the chain state already names segment 1 (it is stored first), and
/// neither file's tail reached the disk. The segment after recovery must link past both to
/// segment 0, as its joined crash gaps declare (FORMAT.md §6.1), and the whole stream verify.
#[test]
fn dir_recovery_after_a_cut_with_two_open_segments_links_past_both() {
    let dir = tempfile::tempdir().unwrap();
    let cam_key = camera(7).verifying_key().to_bytes();
    let cam = camera_id(&cam_key);
    let name = |seq| segment_file_name(&cam, 0, seq);
    let (s0, h0) = segment(0, [0; 32], &[]);
    let (s1, h1) = segment(1, h0, &[]);
    let (s2, _) = segment(2, h1, &[]);
    write_file(&dir.path().join(name(0)), &s0);
    // The cut takes each open file's trailer and the end of its last record.
    write_file(
        &dir.path().join(format!("{}.part", name(1))),
        &s1[..s1.len() - 150],
    );
    write_file(
        &dir.path().join(format!("{}.part", name(2))),
        &s2[..s2.len() - 150],
    );
    let mut chain = ChainState {
        next_seq: 3,
        prev_header_hash: h1,
    };
    let mut sink = DirSink::new(dir.path()).unwrap();
    let rec = sink.recover(&cam_key, 0, &mut chain).unwrap();
    assert_eq!(rec.salvaged.len(), 2, "{rec:?}");
    assert_eq!(chain.next_seq, 3);
    assert_eq!(
        chain.prev_header_hash, h0,
        "the next segment must link to segment 0"
    );
    let (s3, _) = segment(3, chain.prev_header_hash, &rec.gaps);
    write_file(&dir.path().join(name(3)), &s3);
    let files = load_headers(&collect_paths(&[dir.path().to_path_buf()]).unwrap(), None).unwrap();
    assert_eq!(files.len(), 4);
    verify_footage(&files).1.unwrap();
}

/// A whole segment and a crash tail named with u64::MAX: no number follows it, so recovery
/// says so instead of wrapping the chain to 0 or panicking.
#[test]
fn dir_recovery_refuses_a_segment_numbered_u64_max() {
    let cam_key = camera(7).verifying_key().to_bytes();
    let cam = camera_id(&cam_key);
    let (whole, _) = segment(u64::MAX, [9; 32], &[]);
    for bytes in [&whole[..], &whole[..whole.len() - 150]] {
        let dir = tempfile::tempdir().unwrap();
        let part = dir
            .path()
            .join(format!("{}.part", segment_file_name(&cam, 0, u64::MAX)));
        write_file(&part, bytes);
        let mut chain = ChainState::default();
        let err = DirSink::new(dir.path())
            .unwrap()
            .recover(&cam_key, 0, &mut chain)
            .unwrap_err();
        assert!(
            err.to_string().contains("the last there is"),
            "unclear error: {err}"
        );
        assert_eq!(chain, ChainState::default(), "the chain moved");
    }
}

#[test]
fn spool_recovery_refuses_a_segment_numbered_u64_max() {
    let cam_key = camera(7).verifying_key().to_bytes();
    let (whole, _) = segment(u64::MAX, [9; 32], &[]);
    for bytes in [&whole[..], &whole[..whole.len() - 150]] {
        let dir = tempfile::tempdir().unwrap();
        let id = SegmentId {
            camera_id: camera_id(&cam_key),
            stream: 0,
            seq: u64::MAX,
        };
        write_file(&dir.path().join(id.spool_name(EntryKind::Open)), bytes);
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        let mut chain = ChainState::default();
        let err = spool.recover(&cam_key, 0, &mut chain).unwrap_err();
        assert!(
            matches!(err, SpoolError::SequenceExhausted(_)),
            "unclear error: {err}"
        );
        assert!(err.to_string().contains("the last there is"), "{err}");
        assert_eq!(chain, ChainState::default(), "the chain moved");
    }
}
