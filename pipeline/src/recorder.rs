//! Turning a stream of access units into a directory of sealed segment files.
//!
//! - [`SegmentPolicy`] (pure) decides when a segment closes.
//! - [`ChainState`] (pure codec, atomic file I/O) remembers, per camera stream, the next
//!   sequence number and the previous segment's digest, so the hash chain continues across
//!   restarts.
//! - [`Recorder`] cuts access units into NAL-aligned chunks, seals them into a
//!   [`SegmentWriter`], and publishes each finished segment atomically: it is written as
//!   `NAME.cseg.part`, fsynced, renamed to `NAME.cseg`, and the directory is fsynced.
//!   Only sealed bytes ever reach the disk.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;

use crate::chunk::chunk_access_unit;
use crate::nal::Codec;
use crate::seal::SframeSuite;
use crate::segment::write::{Randomness, RecipientKey, SegmentParams, SegmentWriter};
use crate::segment::{CloseReason, Digest32, Gap, SegmentEnd, SegmentError, camera_id};

/// 90 kHz: the timestamp clock.
pub const PTS_HZ: u64 = 90_000;

/// When segments close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPolicy {
    /// Close at the first keyframe at least this far (in 90 kHz ticks) after the start.
    pub target_ticks: u64,
    /// Close before a frame that would start this far or further after the start, keyframe
    /// or not.
    pub max_ticks: u64,
    /// Close before a frame once the segment holds this many bytes.
    pub max_bytes: u64,
}

impl SegmentPolicy {
    /// A policy with the given target length; the maximum is three targets, and 64 MiB.
    pub fn with_target(target: Duration) -> SegmentPolicy {
        let target_ticks = duration_ticks(target).max(1);
        SegmentPolicy {
            target_ticks,
            max_ticks: target_ticks.saturating_mul(3),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Whether the open segment (started at `start_pts`, `bytes` long) must close before a
    /// frame at `pts`, and why.
    pub fn close_before(
        &self,
        start_pts: u64,
        bytes: u64,
        pts: u64,
        keyframe: bool,
    ) -> Option<CloseReason> {
        let elapsed = pts.saturating_sub(start_pts);
        if keyframe && elapsed >= self.target_ticks {
            Some(CloseReason::Keyframe)
        } else if elapsed >= self.max_ticks {
            Some(CloseReason::MaxDuration)
        } else if bytes >= self.max_bytes {
            Some(CloseReason::MaxBytes)
        } else {
            None
        }
    }
}

/// Where a camera stream's hash chain stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChainState {
    /// Sequence number of the next segment.
    pub next_seq: u64,
    /// Digest of the last finished segment (zero before the first).
    pub prev_digest: Digest32,
}

impl ChainState {
    /// Text encoding of the state file.
    pub fn encode(&self) -> String {
        format!(
            "camseal-chain-v1\nnext_seq {}\nprev_digest {}\n",
            self.next_seq,
            hex::encode(self.prev_digest)
        )
    }

    /// Parses a state file.
    pub fn parse(text: &str) -> Result<ChainState, RecorderError> {
        let bad = || RecorderError::ChainState("unrecognised chain state file".into());
        let mut lines = text.lines();
        if lines.next() != Some("camseal-chain-v1") {
            return Err(bad());
        }
        let next_seq = lines
            .next()
            .and_then(|l| l.strip_prefix("next_seq "))
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let digest = lines
            .next()
            .and_then(|l| l.strip_prefix("prev_digest "))
            .and_then(|v| hex::decode(v).ok())
            .ok_or_else(bad)?;
        let prev_digest = digest.try_into().map_err(|_| bad())?;
        Ok(ChainState {
            next_seq,
            prev_digest,
        })
    }

    /// Loads the state from `path`; a missing file is a fresh chain.
    pub fn load(path: &Path) -> Result<ChainState, RecorderError> {
        match fs::read_to_string(path) {
            Ok(text) => ChainState::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ChainState::default()),
            Err(e) => Err(RecorderError::io(path, e)),
        }
    }

    /// Stores the state atomically.
    pub fn store(&self, path: &Path) -> Result<(), RecorderError> {
        write_atomic(path, self.encode().as_bytes())
    }
}

/// Everything a [`Recorder`] needs to know.
pub struct RecorderConfig {
    /// Directory the segments go to (created if missing).
    pub out_dir: PathBuf,
    /// Where the stream's chain state lives (in the camera's home).
    pub chain_path: PathBuf,
    /// The camera's signing key.
    pub camera: SigningKey,
    /// Recipients: (HPKE KEM id, public key).
    pub recipients: Vec<(u16, Vec<u8>)>,
    /// Media cipher suite.
    pub suite: SframeSuite,
    /// Codec of the stream.
    pub codec: Codec,
    /// Stream number.
    pub stream_id: u32,
    /// When segments close.
    pub policy: SegmentPolicy,
    /// Largest record plaintext.
    pub max_chunk: usize,
    /// Duration of one frame in 90 kHz ticks (for the last frame's end).
    pub frame_ticks: u64,
    /// Randomness for segment keys (always `Os` outside tests).
    pub randomness: Randomness,
}

/// A segment that was sealed and published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedSegment {
    /// Where it is.
    pub path: PathBuf,
    /// Its sequence number.
    pub seq: u64,
    /// Access units in it.
    pub frames: u64,
    /// Its size.
    pub bytes: u64,
    /// Why it closed.
    pub reason: CloseReason,
}

/// Totals over a recording.
#[derive(Clone, Debug, Default)]
pub struct RecorderStats {
    /// Access units sealed.
    pub frames: u64,
    /// Video bytes sealed.
    pub video_bytes: u64,
    /// Segments published.
    pub segments: u64,
    /// Segment bytes written.
    pub segment_bytes: u64,
    /// Per-frame seal time (chunking and sealing every chunk of the access unit), in ns.
    pub seal_ns: Vec<u64>,
}

/// Seals access units into segment files. See the [module docs](self).
pub struct Recorder {
    config: RecorderConfig,
    camera_id: String,
    chain: ChainState,
    open: Option<OpenSegment>,
    stats: RecorderStats,
    pending_gaps: Vec<Gap>,
}

impl Recorder {
    /// Prepares the output directory and loads the chain state.
    pub fn new(config: RecorderConfig) -> Result<Recorder, RecorderError> {
        if config.recipients.is_empty() {
            return Err(RecorderError::NoRecipients);
        }
        fs::create_dir_all(&config.out_dir).map_err(|e| RecorderError::io(&config.out_dir, e))?;
        let chain = ChainState::load(&config.chain_path)?;
        let camera_id = camera_id(&config.camera.verifying_key().to_bytes());
        Ok(Recorder {
            config,
            camera_id,
            chain,
            open: None,
            stats: RecorderStats::default(),
            pending_gaps: Vec::new(),
        })
    }

    /// Seals one access unit. Returns the segment it closed first, if it closed one.
    pub fn push(
        &mut self,
        pts: u64,
        keyframe: bool,
        access_unit: &[u8],
    ) -> Result<Option<ClosedSegment>, RecorderError> {
        let mut closed = None;
        if let Some(open) = &self.open {
            let bytes = open.writer.bytes_written();
            if let Some(reason) =
                self.config
                    .policy
                    .close_before(open.start_pts, bytes, pts, keyframe)
            {
                closed = self.close(reason)?;
            }
        }
        if self.open.is_none() {
            self.open = Some(self.begin(pts)?);
        }
        let started = Instant::now();
        let open = self.open.as_mut().ok_or(RecorderError::NoOpenSegment)?;
        for chunk in chunk_access_unit(access_unit, self.config.max_chunk) {
            open.writer
                .append(pts, keyframe, chunk.continuation, &access_unit[chunk.range])?;
        }
        self.stats
            .seal_ns
            .push(started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64);
        open.frames += 1;
        open.last_pts = pts;
        self.stats.frames += 1;
        self.stats.video_bytes += access_unit.len() as u64;
        Ok(closed)
    }

    /// Seals the open segment, if any, with `reason`, and publishes it.
    pub fn close(&mut self, reason: CloseReason) -> Result<Option<ClosedSegment>, RecorderError> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        let end = SegmentEnd {
            end_pts: open.last_pts.saturating_add(self.config.frame_ticks),
            reason,
        };
        let (out, summary) = open.writer.finish(end)?;
        let file = out
            .into_inner()
            .map_err(|e| RecorderError::io(&open.part_path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| RecorderError::io(&open.part_path, e))?;
        drop(file);
        fs::rename(&open.part_path, &open.final_path)
            .map_err(|e| RecorderError::io(&open.final_path, e))?;
        sync_dir(&self.config.out_dir)?;
        self.chain = ChainState {
            next_seq: open.seq + 1,
            prev_digest: summary.digest,
        };
        self.chain.store(&self.config.chain_path)?;
        self.stats.segments += 1;
        self.stats.segment_bytes += summary.bytes;
        Ok(Some(ClosedSegment {
            path: open.final_path,
            seq: open.seq,
            frames: open.frames,
            bytes: summary.bytes,
            reason,
        }))
    }

    /// Records a loss; it is written, signed, into the header of the next segment opened.
    pub fn record_gap(&mut self, gap: Gap) {
        self.pending_gaps.push(gap);
    }

    /// Totals so far.
    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }

    /// The camera id the segment names start with.
    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    fn begin(&mut self, start_pts: u64) -> Result<OpenSegment, RecorderError> {
        let seq = self.chain.next_seq;
        // Reserve the sequence number before writing: if we crash mid-segment, the next run
        // does not reuse it, and the chain shows the lost segment as missing.
        ChainState {
            next_seq: seq + 1,
            prev_digest: self.chain.prev_digest,
        }
        .store(&self.config.chain_path)?;
        let name = segment_file_name(&self.camera_id, self.config.stream_id, seq);
        let final_path = self.config.out_dir.join(&name);
        let part_path = self.config.out_dir.join(format!("{name}.part"));
        if final_path.exists() {
            return Err(RecorderError::SegmentExists(final_path));
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part_path)
            .map_err(|e| RecorderError::io(&part_path, e))?;
        let keys: Vec<RecipientKey<'_>> = self
            .config
            .recipients
            .iter()
            .map(|(kem, pk)| RecipientKey {
                kem: *kem,
                public_key: pk,
            })
            .collect();
        let params = SegmentParams {
            suite: self.config.suite,
            codec: self.config.codec,
            stream_id: self.config.stream_id,
            segment_seq: seq,
            start_pts,
            wallclock_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            prev_digest: self.chain.prev_digest,
            recipients: &keys,
            gaps: &self.pending_gaps,
        };
        let writer = SegmentWriter::create(
            BufWriter::with_capacity(256 * 1024, file),
            &params,
            &self.config.camera,
            &self.config.randomness,
        )?;
        self.pending_gaps.clear();
        Ok(OpenSegment {
            writer,
            part_path,
            final_path,
            seq,
            start_pts,
            last_pts: start_pts,
            frames: 0,
        })
    }
}

/// `<camera id>-s<stream>-<seq, 12 digits>.cseg`: sorts by camera, stream, then sequence.
pub fn segment_file_name(camera_id: &str, stream_id: u32, seq: u64) -> String {
    format!("{camera_id}-s{stream_id}-{seq:012}.cseg")
}

/// Errors while recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The chain state file is unreadable.
    #[error("chain state: {0}")]
    ChainState(String),
    /// A segment with the next sequence number already exists.
    #[error("{} already exists; refusing to overwrite a sealed segment", .0.display())]
    SegmentExists(PathBuf),
    /// Nobody to seal to.
    #[error("no trusted recipients")]
    NoRecipients,
    /// Internal: push without an open segment.
    #[error("no open segment")]
    NoOpenSegment,
    /// Sealing failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
}

impl RecorderError {
    fn io(path: &Path, source: std::io::Error) -> RecorderError {
        RecorderError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Converts a duration to 90 kHz ticks.
pub fn duration_ticks(d: Duration) -> u64 {
    (d.as_nanos() * u128::from(PTS_HZ) / 1_000_000_000).min(u128::from(u64::MAX)) as u64
}

struct OpenSegment {
    writer: SegmentWriter<BufWriter<File>>,
    part_path: PathBuf,
    final_path: PathBuf,
    seq: u64,
    start_pts: u64,
    last_pts: u64,
    frames: u64,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecorderError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| RecorderError::io(dir, e))?;
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| RecorderError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| RecorderError::io(&tmp, e))?;
    f.sync_all().map_err(|e| RecorderError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| RecorderError::io(path, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), RecorderError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RecorderError::io(dir, e))
}

const DEFAULT_MAX_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_closes_at_first_keyframe_after_target() {
        let p = SegmentPolicy::with_target(Duration::from_secs(1));
        assert_eq!(p.close_before(0, 0, 89_999, true), None);
        assert_eq!(p.close_before(0, 0, 90_000, false), None);
        assert_eq!(
            p.close_before(0, 0, 90_000, true),
            Some(CloseReason::Keyframe)
        );
        assert_eq!(
            p.close_before(0, 0, 270_000, false),
            Some(CloseReason::MaxDuration)
        );
        assert_eq!(
            p.close_before(0, 64 << 20, 10, false),
            Some(CloseReason::MaxBytes)
        );
    }

    #[test]
    fn chain_state_round_trip_and_garbage() {
        let s = ChainState {
            next_seq: 42,
            prev_digest: [7; 32],
        };
        assert_eq!(ChainState::parse(&s.encode()).unwrap(), s);
        assert!(ChainState::parse("").is_err());
        assert!(ChainState::parse("camseal-chain-v1\nnext_seq x\n").is_err());
        assert!(ChainState::parse("camseal-chain-v1\nnext_seq 1\nprev_digest 00\n").is_err());
    }
}
