//! The spool's decisions, free of I/O: file names and object keys, which segments a full
//! spool drops, how much of a crashed segment is a valid prefix, and which gaps the next
//! segment declares.

use std::fmt;
use std::str::FromStr;

use crate::segment::read::Verifier;
use crate::segment::{Digest32, Gap, GapReason, Header, Item, Parsed, parse_item};

/// Which segment of which camera stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId {
    /// The camera id (16 lowercase hex digits, FORMAT.md §7).
    pub camera_id: String,
    /// Stream number.
    pub stream: u32,
    /// Sequence number.
    pub seq: u64,
}

impl SegmentId {
    /// `<camera id>-s<stream>-<seq, 12 digits>.cseg` (FORMAT.md §7): the name of a closed
    /// segment in the spool and in a `dir:` sink.
    pub fn file_name(&self) -> String {
        format!("{}.cseg", self.stem())
    }

    /// The object key under `prefix`: `PREFIX/<camera id>/<stream>/<seq, 12 digits>.cseg`.
    /// The same segment always gets the same key, so a repeated upload is idempotent.
    pub fn object_key(&self, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        let tail = format!("{}/{}/{:012}.cseg", self.camera_id, self.stream, self.seq);
        if prefix.is_empty() {
            tail
        } else {
            format!("{prefix}/{tail}")
        }
    }

    /// The object key of this segment's stream head under `prefix`:
    /// `PREFIX/<camera id>/<stream>/head`, next to the stream's segments. Each upload of a
    /// head replaces the previous one.
    pub fn head_object_key(&self, prefix: &str) -> String {
        head_object_key(prefix, &self.camera_id, self.stream)
    }

    /// Parses an object key made by [`object_key`](Self::object_key) with `prefix`.
    pub fn from_object_key(prefix: &str, key: &str) -> Option<SegmentId> {
        let prefix = prefix.trim_matches('/');
        let rest = if prefix.is_empty() {
            key
        } else {
            key.strip_prefix(prefix)?.strip_prefix('/')?
        };
        let mut parts = rest.split('/');
        let (camera_id, stream, file) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_camera_id(camera_id) {
            return None;
        }
        let seq = file.strip_suffix(".cseg")?;
        if seq.len() != 12 {
            return None;
        }
        Some(SegmentId {
            camera_id: camera_id.to_string(),
            stream: parse_decimal(stream)?,
            seq: parse_decimal(seq)?,
        })
    }

    /// The file name of this segment in state `kind`.
    pub fn spool_name(&self, kind: EntryKind) -> String {
        let stem = self.stem();
        match kind {
            EntryKind::Closed => format!("{stem}.cseg"),
            EntryKind::Incomplete => format!("{stem}{INCOMPLETE_SUFFIX}"),
            EntryKind::Open => format!("{stem}{OPEN_SUFFIX}"),
            EntryKind::Temp => format!("{stem}{TEMP_SUFFIX}"),
        }
    }

    fn stem(&self) -> String {
        format!("{}-s{}-{:012}", self.camera_id, self.stream, self.seq)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stream {} seq {}",
            self.camera_id, self.stream, self.seq
        )
    }
}

/// The object key of a stream head under `prefix`: `PREFIX/<camera id>/<stream>/head`
/// (see [`SegmentId::head_object_key`]). It never parses as a segment's key.
pub fn head_object_key(prefix: &str, camera_id: &str, stream: u32) -> String {
    let prefix = prefix.trim_matches('/');
    let tail = format!("{camera_id}/{stream}/{HEAD_OBJECT_NAME}");
    if prefix.is_empty() {
        tail
    } else {
        format!("{prefix}/{tail}")
    }
}

/// The state a spool file is in, as its name tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Sealed, signed and durable; waiting for upload.
    Closed,
    /// Recovered after a crash: a valid prefix (header and whole records, no trailer);
    /// waiting for upload under the same object key as a closed segment.
    Incomplete,
    /// Being written: a valid header followed by whole records.
    Open,
    /// A header being made durable before it becomes an open segment (a random temporary
    /// name, or `NAME.cseg.hdr` from older versions); never uploaded.
    Temp,
}

/// Parses a spool file name. Names the spool did not make give `None`.
pub fn parse_spool_name(name: &str) -> Option<(SegmentId, EntryKind)> {
    let (stem, kind) = if let Some(s) = name.strip_suffix(INCOMPLETE_SUFFIX) {
        (s, EntryKind::Incomplete)
    } else if let Some(s) = name.strip_suffix(OPEN_SUFFIX) {
        (s, EntryKind::Open)
    } else if let Some(s) = name.strip_suffix(TEMP_SUFFIX) {
        (s, EntryKind::Temp)
    } else if let Some(s) = name.strip_suffix(".cseg") {
        (s, EntryKind::Closed)
    } else {
        return None;
    };
    let (rest, seq) = stem.rsplit_once('-')?;
    let (camera_id, stream) = rest.rsplit_once("-s")?;
    if !is_camera_id(camera_id) {
        return None;
    }
    Some((
        SegmentId {
            camera_id: camera_id.to_string(),
            stream: parse_decimal(stream)?,
            seq: parse_seq(seq)?,
        },
        kind,
    ))
}

/// What a full spool does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QuotaPolicy {
    /// Delete the oldest segments not yet uploaded (the default): recent footage matters
    /// more than old footage that could not be uploaded for hours.
    #[default]
    DropOldest,
    /// Stop opening new segments until uploads make room; keep what is spooled.
    StopRecording,
}

impl FromStr for QuotaPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<QuotaPolicy, String> {
        match s {
            "drop-oldest" => Ok(QuotaPolicy::DropOldest),
            "stop-recording" => Ok(QuotaPolicy::StopRecording),
            other => Err(format!(
                "unknown spool policy {other:?}: use drop-oldest or stop-recording"
            )),
        }
    }
}

impl fmt::Display for QuotaPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaPolicy::DropOldest => "drop-oldest",
            QuotaPolicy::StopRecording => "stop-recording",
        })
    }
}

/// Which of the droppable segments (oldest first, with their sizes) to delete so that
/// `used` bytes fit in `max`. Drops as few as possible, oldest first; may return all of them
/// and still not fit (an open segment alone can exceed a tiny quota).
pub fn plan_drops(used: u64, max: u64, droppable_oldest_first: &[u64]) -> usize {
    let mut used = used;
    let mut n = 0;
    for &bytes in droppable_oldest_first {
        if used <= max {
            break;
        }
        used = used.saturating_sub(bytes);
        n += 1;
    }
    n
}

/// Whether a new segment may be opened under `stop-recording`: only while the spool is
/// below its quota.
pub fn may_open(used: u64, max: Option<u64>) -> bool {
    max.is_none_or(|m| used < m)
}

/// What a crashed (open) segment file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixScan {
    /// The header, if the file holds a whole one.
    pub header: Option<Header>,
    /// Length of the longest valid prefix: the header and every whole record after it that
    /// is in sequence. Zero without a whole header.
    pub valid_len: usize,
    /// Whole records in the valid prefix.
    pub records: u64,
    /// pts of the last whole record (the header's start pts if none).
    pub last_pts: u64,
    /// The file is a whole segment: trailer present, signature valid, nothing after it.
    /// Holds the segment's header hash.
    pub complete: Option<Digest32>,
}

/// Scans the bytes of an open segment after a crash.
///
/// Records are checked for sequence (SFrame KID and CTR) and structure, not decrypted: the
/// camera no longer holds the segment key. A torn last record (a write cut short) ends the
/// valid prefix.
pub fn scan_prefix(bytes: &[u8]) -> PrefixScan {
    let mut scan = PrefixScan {
        header: None,
        valid_len: 0,
        records: 0,
        last_pts: 0,
        complete: None,
    };
    let (header, mut at) = match Header::parse(bytes) {
        Ok(Parsed::Complete(h, used)) => (h, used),
        _ => return scan,
    };
    scan.valid_len = at;
    scan.last_pts = header.start_pts;
    let mut verifier = Verifier::new(&header);
    loop {
        match parse_item(&bytes[at..]) {
            Ok(Parsed::Complete(Item::Record(r), used)) => {
                if verifier.observe(&r).is_err() {
                    break;
                }
                at += used;
                scan.valid_len = at;
                scan.records += 1;
                scan.last_pts = r.pts;
            }
            Ok(Parsed::Complete(Item::Checkpoint(c), used)) => {
                if verifier.checkpoint(&c).is_err() {
                    break;
                }
                at += used;
                scan.valid_len = at;
            }
            Ok(Parsed::Complete(Item::Trailer(t), used)) => {
                if at + used == bytes.len()
                    && let Ok(v) = verifier.finish(&t)
                {
                    scan.complete = Some(v.header_hash);
                }
                break;
            }
            Ok(Parsed::Needed(_)) | Err(_) => break,
        }
    }
    scan.header = Some(header);
    scan
}

/// The gaps the segment after a crashed segment `seq` declares.
///
/// The crashed segment's own header may have carried gaps (earlier losses) that no whole
/// segment has delivered yet; they are declared again. When one of them declared segments
/// up to `seq - 1` crashed, the new crash gap starts where that one started, so the segment
/// after the crash names the same predecessor as the crashed one did (the chain state's
/// previous digest is unchanged by a crash).
///
/// An earlier crash gap that the new one covers (segments `first..seq`) is folded into it
/// rather than declared twice; its pts, the earlier crash, become the new gap's start. Gaps
/// of other reasons stay, so every reason is still named.
pub fn crash_gaps(carried: &[Gap], seq: u64, from_pts: u64) -> Vec<Gap> {
    // Only a crash run moves the predecessor (FORMAT.md §6.1), so only one extends.
    let first = carried
        .iter()
        .filter(|g| g.reason == GapReason::Crash)
        .filter_map(|g| g.lost_segments)
        .filter(|&(_, last)| last.checked_add(1) == Some(seq))
        .map(|(first, _)| first)
        .min()
        .unwrap_or(seq);
    let covered = |g: &Gap| {
        g.reason == GapReason::Crash
            && g.lost_segments
                .is_some_and(|(f, last)| f >= first && last < seq)
    };
    let mut gaps: Vec<Gap> = Vec::with_capacity(carried.len() + 1);
    let mut start_pts = from_pts;
    for g in carried {
        if covered(g) {
            start_pts = start_pts.min(g.from_pts);
        } else if !gaps.contains(g) {
            gaps.push(*g);
        }
    }
    gaps.push(Gap {
        reason: GapReason::Crash,
        lost_segments: Some((first, seq)),
        frames: 0,
        from_pts: start_pts,
        to_pts: from_pts,
    });
    gaps
}

/// The sequence number in a segment's file name, as `segment_file_name` writes it: at least
/// 12 digits, zero-padded to 12 and no further (so one number has one name), up to u64::MAX.
pub fn parse_seq(s: &str) -> Option<u64> {
    let seq: u64 = parse_decimal(s)?;
    (s.len() == 12 || (s.len() > 12 && !s.starts_with('0'))).then_some(seq)
}

fn is_camera_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decimal digits only (no sign, no spaces), as the spool writes them.
fn parse_decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

const HEAD_OBJECT_NAME: &str = "head";
const INCOMPLETE_SUFFIX: &str = ".incomplete.cseg";
const OPEN_SUFFIX: &str = ".cseg.open";
const TEMP_SUFFIX: &str = ".cseg.hdr";

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> SegmentId {
        SegmentId {
            camera_id: "0123456789abcdef".into(),
            stream: 2,
            seq,
        }
    }

    #[test]
    fn names_round_trip_for_every_kind() {
        for kind in [
            EntryKind::Closed,
            EntryKind::Incomplete,
            EntryKind::Open,
            EntryKind::Temp,
        ] {
            // Past 12 digits the name grows: every number, u64::MAX included, has a name.
            for seq in [42, 999_999_999_999, 1_000_000_000_000, u64::MAX] {
                let name = id(seq).spool_name(kind);
                assert_eq!(parse_spool_name(&name), Some((id(seq), kind)), "{name}");
            }
        }
        // One number, one name: no padding beyond 12 digits, nothing past u64::MAX.
        assert_eq!(
            parse_spool_name("0123456789abcdef-s2-0000000000007.cseg"),
            None
        );
        assert_eq!(
            parse_spool_name("0123456789abcdef-s2-18446744073709551616.cseg"),
            None
        );
        assert_eq!(id(7).file_name(), "0123456789abcdef-s2-000000000007.cseg");
        assert_eq!(parse_spool_name("notes.txt"), None);
        assert_eq!(parse_spool_name("0123456789abcdef-s2-7.cseg"), None);
        assert_eq!(
            parse_spool_name("0123456789ABCDEF-s2-000000000007.cseg"),
            None
        );
        assert_eq!(
            parse_spool_name("0123456789abcdef-s+2-000000000007.cseg"),
            None
        );
    }

    #[test]
    fn object_keys_round_trip_and_reject_strangers() {
        let k = id(5).object_key("/cams/home/");
        assert_eq!(k, "cams/home/0123456789abcdef/2/000000000005.cseg");
        assert_eq!(SegmentId::from_object_key("cams/home", &k), Some(id(5)));
        assert_eq!(id(5).object_key(""), "0123456789abcdef/2/000000000005.cseg");
        let head = id(5).head_object_key("/cams/home/");
        assert_eq!(head, "cams/home/0123456789abcdef/2/head");
        assert_eq!(
            head_object_key("", "0123456789abcdef", 2),
            "0123456789abcdef/2/head"
        );
        assert_eq!(SegmentId::from_object_key("cams/home", &head), None);
        assert_eq!(
            SegmentId::from_object_key("", "0123456789abcdef/2/000000000005.cseg"),
            Some(id(5))
        );
        assert_eq!(SegmentId::from_object_key("other", &k), None);
        assert_eq!(
            SegmentId::from_object_key("cams", "cams/0123456789abcdef/2/5.cseg"),
            None
        );
        assert_eq!(
            SegmentId::from_object_key("cams", "cams/0123456789abcdef/2/000000000005.cseg/x"),
            None
        );
    }

    #[test]
    fn drops_the_fewest_oldest_segments() {
        assert_eq!(plan_drops(100, 100, &[10, 10]), 0);
        assert_eq!(plan_drops(101, 100, &[10, 10]), 1);
        assert_eq!(plan_drops(115, 100, &[10, 10, 10]), 2);
        assert_eq!(plan_drops(500, 100, &[10, 10]), 2);
        assert!(may_open(99, Some(100)) && !may_open(100, Some(100)) && may_open(7, None));
        assert_eq!("drop-oldest".parse(), Ok(QuotaPolicy::DropOldest));
        assert_eq!("stop-recording".parse(), Ok(QuotaPolicy::StopRecording));
        assert!("drop".parse::<QuotaPolicy>().is_err());
    }

    #[test]
    fn crash_gap_extends_a_loss_the_crashed_segment_declared() {
        let quota = Gap {
            reason: GapReason::SpoolQuota,
            lost_segments: Some((1, 1)),
            frames: 0,
            from_pts: 0,
            to_pts: 9,
        };
        let g = crash_gaps(&[quota, quota], 9, 77);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], quota);
        assert_eq!(g[1].lost_segments, Some((9, 9)));
        assert_eq!((g[1].reason, g[1].from_pts), (GapReason::Crash, 77));
        let earlier_crash = Gap {
            reason: GapReason::Crash,
            lost_segments: Some((6, 8)),
            frames: 0,
            from_pts: 5,
            to_pts: 5,
        };
        // The earlier crash gap is folded into the new one, not declared twice.
        let g = crash_gaps(&[earlier_crash], 9, 40);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].lost_segments, Some((6, 9)));
        assert_eq!((g[0].from_pts, g[0].to_pts), (5, 40));
        // Other reasons stay named, and a crash gap elsewhere in the stream stays too.
        let quota_before = Gap {
            lost_segments: Some((6, 8)),
            ..quota
        };
        let older_crash = Gap {
            lost_segments: Some((2, 3)),
            ..earlier_crash
        };
        let g = crash_gaps(&[quota_before, older_crash, earlier_crash], 9, 40);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0], quota_before);
        assert_eq!(g[1], older_crash);
        assert_eq!(g[2].lost_segments, Some((6, 9)));
    }
}
