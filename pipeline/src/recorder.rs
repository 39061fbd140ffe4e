//! Segment policy and per-stream chain state, shared by the engine (`crate::engine`).
//!
//! - [`SegmentPolicy`] (pure) decides when a segment closes.
//! - [`ChainState`] (pure codec, atomic file I/O) remembers, per camera stream, the next
//!   sequence number and the previous segment's header hash, so the hash chain continues across
//!   restarts.
//! - [`segment_file_name`] names segment files so a listing sorts by camera, stream, seq.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::segment::{CloseReason, Digest32, SegmentError};

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
    /// Header hash of the segment before `next_seq` (zero before the first).
    pub prev_header_hash: Digest32,
}

impl ChainState {
    /// Text encoding of the state file.
    pub fn encode(&self) -> String {
        format!(
            "camseal-chain-v2\nnext_seq {}\nprev_header_hash {}\n",
            self.next_seq,
            hex::encode(self.prev_header_hash)
        )
    }

    /// Parses a state file.
    pub fn parse(text: &str) -> Result<ChainState, RecorderError> {
        let bad = || RecorderError::ChainState("unrecognised chain state file".into());
        let mut lines = text.lines();
        if lines.next() != Some("camseal-chain-v2") {
            return Err(bad());
        }
        let next_seq = lines
            .next()
            .and_then(|l| l.strip_prefix("next_seq "))
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let digest = lines
            .next()
            .and_then(|l| l.strip_prefix("prev_header_hash "))
            .and_then(|v| hex::decode(v).ok())
            .ok_or_else(bad)?;
        let prev_header_hash = digest.try_into().map_err(|_| bad())?;
        Ok(ChainState {
            next_seq,
            prev_header_hash,
        })
    }

    /// The state that reserves `next_seq` before a segment with that number is written (a
    /// crash mid-segment must not let the next run reuse the number).
    ///
    /// Fails with [`RecorderError::SequenceExhausted`] when `next_seq` is the last `u64`:
    /// the state after it could not be written, and a sequence number that wrapped to 0
    /// would restart the chain (FORMAT.md §6) with numbers the stream already used.
    pub fn reserve(&self) -> Result<ChainState, RecorderError> {
        Ok(ChainState {
            next_seq: self
                .next_seq
                .checked_add(1)
                .ok_or(RecorderError::SequenceExhausted)?,
            prev_header_hash: self.prev_header_hash,
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
    /// Nobody to seal to.
    #[error("no trusted recipients")]
    NoRecipients,
    /// The stream has used every sequence number a segment can have.
    #[error(
        "the stream's sequence numbers are exhausted (the next would be past 2^64 - 1); record to another stream number"
    )]
    SequenceExhausted,
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

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecorderError> {
    let dir = crate::fsutil::parent(path);
    fs::create_dir_all(dir).map_err(|e| RecorderError::io(dir, e))?;
    crate::fsutil::write_atomic(path, bytes, crate::fsutil::PUBLIC)
        .map_err(|e| RecorderError::io(path, e))
}

const DEFAULT_MAX_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_sequence_number_is_refused_not_wrapped() {
        let last = ChainState {
            next_seq: u64::MAX - 1,
            prev_header_hash: [7; 32],
        };
        let reserved = last.reserve().unwrap();
        assert_eq!(reserved.next_seq, u64::MAX);
        assert_eq!(reserved.prev_header_hash, [7; 32]);
        assert!(matches!(
            reserved.reserve(),
            Err(RecorderError::SequenceExhausted)
        ));
        // A state file that says so is read back and still refused.
        let parsed = ChainState::parse(&reserved.encode()).unwrap();
        assert!(parsed.reserve().is_err());
    }

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
            prev_header_hash: [7; 32],
        };
        assert_eq!(ChainState::parse(&s.encode()).unwrap(), s);
        assert!(ChainState::parse("").is_err());
        assert!(ChainState::parse("camseal-chain-v2\nnext_seq x\n").is_err());
        assert!(ChainState::parse("camseal-chain-v2\nnext_seq 1\nprev_header_hash 00\n").is_err());
        // A v1 state names a segment digest, which v2 headers cannot carry.
        assert!(ChainState::parse("camseal-chain-v1\nnext_seq 1\nprev_digest 00\n").is_err());
    }
}
