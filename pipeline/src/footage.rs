//! Checking and opening a stream of segment files: what `camseal verify` and `camseal
//! decrypt` do, as library calls, with one rule set for both (FORMAT.md §6).
//!
//! 1. [`load_headers`] reads every header, checks the camera's signature over it and that
//!    the camera is the expected one, and orders the segments by sequence number. Nothing a
//!    header says (gaps, crash declarations, its predecessor) is believed before that.
//! 2. [`check_chain`] is pure: from the signed headers alone it decides whether the
//!    segments form one unbroken stream window, which segments a later header declares lost
//!    or crashed, and where the window starts. `verify` and `decrypt` both call it.
//! 3. [`read_segment`] reads one segment, releasing a record's plaintext (or, without a
//!    key, counting it) only once a camera signature (a checkpoint or the trailer) covers
//!    it. A segment cut off before its trailer yields its signed prefix; whether a cut-off
//!    segment is acceptable is [`ChainPlan::may_be_cut_off`]'s answer.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use crate::keys::{OpeningKeys, RecipientSecret};
use crate::segment::read::{Opener, SegmentReader, Verifier, check_camera};
use crate::segment::{
    Digest32, Gap, GapReason, Header, Item, RecordFlags, SegmentEnd, SegmentError, camera_id,
};

/// One record whose plaintext a signature now covers, as [`read_segment_records`] hands it
/// out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleasedRecord {
    /// The record's pts (90 kHz): its access unit's, or for the final record the segment's
    /// end.
    pub pts: u64,
    /// The record's flags (keyframe, continuation, final).
    pub flags: RecordFlags,
    /// How many of the released bytes are this record's plaintext (0 for the final record,
    /// whose end summary is not video).
    pub len: usize,
}

/// A segment file and its header (whose signature [`load_headers`] checked).
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// The file.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
    /// The header hash.
    pub header_hash: Digest32,
}

/// How a segment read ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentStatus {
    /// Trailer present and valid: every record is signed.
    Complete {
        /// The trailer says the camera ended the stream with this segment.
        end_of_stream: bool,
    },
    /// The file ends before its trailer. Only the records a checkpoint signed count.
    CutOff {
        /// Whole records after the last valid checkpoint, dropped unread.
        dropped: u64,
    },
}

/// The outcome for one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// The file.
    pub path: PathBuf,
    /// Sequence number.
    pub seq: u64,
    /// Records (the final one included) that a signature covers and that were read.
    pub records: u64,
    /// Valid checkpoints.
    pub checkpoints: u64,
    /// Video bytes released (decrypt only).
    pub video_bytes: u64,
    /// pts of the last signed record (the final record's pts is the segment's end).
    pub last_pts: Option<u64>,
    /// The end summary (decrypt only).
    pub end: Option<SegmentEnd>,
    /// Whether the segment was whole.
    pub status: SegmentStatus,
    /// A later segment's signed header declares this segment crashed.
    pub declared_crashed: bool,
    /// Losses the camera recorded (signed) in this segment's header.
    pub gaps: Vec<Gap>,
}

impl SegmentReport {
    /// Whether the segment ends before its trailer.
    pub fn incomplete(&self) -> bool {
        matches!(self.status, SegmentStatus::CutOff { .. })
    }

    /// Records dropped because no signature covers them.
    pub fn dropped(&self) -> u64 {
        match self.status {
            SegmentStatus::CutOff { dropped } => dropped,
            SegmentStatus::Complete { .. } => 0,
        }
    }
}

/// How a stream window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The last segment is whole and its trailer says the camera ended the stream there.
    Clean,
    /// The last segment is cut off before its trailer (a crash, a power cut, or a segment
    /// still being written).
    Crash,
    /// The last segment is whole but more were to follow: the camera is still recording,
    /// or newer segments are missing (compare with the stream head).
    Open,
}

impl StreamEnd {
    /// Name for reports and JSON: `clean`, `crash` or `open`.
    pub const fn name(self) -> &'static str {
        match self {
            StreamEnd::Clean => "clean",
            StreamEnd::Crash => "crash",
            StreamEnd::Open => "open",
        }
    }
}

/// The covered window of a stream: what a set of segments vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// The camera's public key.
    pub camera_key: [u8; 32],
    /// Stream number.
    pub stream: u32,
    /// First sequence number given.
    pub first_seq: u64,
    /// Last sequence number given.
    pub last_seq: u64,
    /// Camera wall clock of the first frame, Unix ms (0 if the camera did not know it).
    pub first_time_ms: u64,
    /// Camera wall clock of the last signed frame, Unix ms (0 if unknown).
    pub last_time_ms: u64,
    /// How the window ends.
    pub ended: StreamEnd,
    /// Segments given.
    pub segments: usize,
    /// Every loss the headers declare.
    pub gaps: Vec<Gap>,
}

impl Coverage {
    /// The window of `files` (sorted, non-empty) given the per-segment `reports`.
    pub fn of(files: &[SegmentFile], reports: &[SegmentReport]) -> Option<Coverage> {
        let first = files.first()?;
        let last = files.last()?;
        let last_report = reports.iter().find(|r| r.seq == last.header.segment_seq);
        let ended = match last_report.map(|r| r.status) {
            Some(SegmentStatus::Complete {
                end_of_stream: true,
            }) => StreamEnd::Clean,
            Some(SegmentStatus::Complete {
                end_of_stream: false,
            }) => StreamEnd::Open,
            Some(SegmentStatus::CutOff { .. }) | None => StreamEnd::Crash,
        };
        let wall = |h: &Header, pts: u64| {
            if h.wallclock_ms == 0 {
                0
            } else {
                h.wallclock_ms
                    .saturating_add(pts.saturating_sub(h.start_pts) / 90)
            }
        };
        let last_pts = last_report
            .and_then(|r| r.last_pts)
            .unwrap_or(last.header.start_pts);
        let mut gaps: Vec<Gap> = Vec::new();
        for f in files {
            for g in f.header.gaps() {
                if !gaps.contains(&g) {
                    gaps.push(g);
                }
            }
        }
        Some(Coverage {
            camera_key: first.header.camera_key,
            stream: first.header.stream_id,
            first_seq: first.header.segment_seq,
            last_seq: last.header.segment_seq,
            first_time_ms: wall(&first.header, first.header.start_pts),
            last_time_ms: wall(&last.header, last_pts),
            ended,
            segments: files.len(),
            gaps,
        })
    }
}

/// What can be wrong with footage as a whole, or with one segment in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FootageError {
    /// A segment is bad.
    #[error("{}: {source}", path.display())]
    Segment {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: SegmentError,
    },
    /// A share does not open a segment (`decrypt --share`).
    #[error("{}: {source}", path.display())]
    Share {
        /// The file.
        path: PathBuf,
        /// Why the share does not open it.
        source: crate::share::ShareError,
    },
    /// A sequence number is missing between two given segments, and no signed header
    /// declares it lost.
    #[error("segment chain is broken: segment {missing} is missing between {} and {}", before.display(), after.display())]
    MissingSegment {
        /// The first missing sequence number.
        missing: u64,
        /// The segment before the hole.
        before: PathBuf,
        /// The segment after the hole.
        after: PathBuf,
    },
    /// The window does not start where it should: earlier segments are missing.
    #[error(
        "segment chain is broken: segment(s) {expected}..={} are missing before {} and no signed header declares them lost (the window starts at segment {expected}); to check a window that starts later, pass --from-seq {first}",
        first - 1,
        path.display()
    )]
    MissingStart {
        /// Where the window should start.
        expected: u64,
        /// The first sequence number given.
        first: u64,
        /// The first segment given.
        path: PathBuf,
    },
    /// A segment names another header hash for its predecessor than the one given.
    #[error("segment chain is broken: {} does not follow {} (previous header hash mismatch: a segment was replaced)", after.display(), before.display())]
    ChainMismatch {
        /// The earlier segment.
        before: PathBuf,
        /// The later segment.
        after: PathBuf,
    },
    /// A segment before the end of the window is cut off, and no later header declares
    /// it crashed.
    #[error("{}: segment is truncated, yet later segments follow it and none declares a crash: its tail was removed", path.display())]
    CutOffInside {
        /// The file.
        path: PathBuf,
    },
    /// The same sequence number twice.
    #[error("segment {seq} is given twice ({} and {})", first.display(), second.display())]
    Duplicate {
        /// Sequence number.
        seq: u64,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// `--stream N` names a stream none of the given segments belongs to.
    #[error("no given segment belongs to stream {stream} (the segments are of stream {present})")]
    NoSuchStream {
        /// The stream asked for.
        stream: u32,
        /// The streams present, comma-separated.
        present: String,
    },
    /// Segments of several streams (or cameras) were given to one call.
    #[error("segments of several streams were given ({0}); choose one with --stream N")]
    MixedStreams(String),
    /// Nothing to do.
    #[error("no segment files (*.cseg) found in the given paths")]
    NoSegments,
    /// A path could not be read or written.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing the plaintext failed.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

impl FootageError {
    /// The segment error inside, if this is about one segment.
    pub fn segment_error(&self) -> Option<&SegmentError> {
        match self {
            FootageError::Segment { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Expands directories to their `*.cseg` files (sorted by name) and keeps files as given.
pub fn collect_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, FootageError> {
    let mut paths = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| io(input, e))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| io(input, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cseg"))
                .collect();
            found.sort();
            paths.extend(found);
        } else {
            paths.push(input.clone());
        }
    }
    if paths.is_empty() {
        return Err(FootageError::NoSegments);
    }
    Ok(paths)
}

/// Reads every header, checks its camera signature, and orders the segments by stream and
/// sequence number.
///
/// With `camera`, every segment must come from that camera (a header that names another
/// key is [`SegmentError::WrongCamera`], checked after its signature, so that a forged
/// header is reported as tampered). Without it, they must all come from the camera of the
/// first segment.
pub fn load_headers(
    paths: &[PathBuf],
    camera: Option<&[u8; 32]>,
) -> Result<Vec<SegmentFile>, FootageError> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let reader = SegmentReader::new(BufReader::new(file)).map_err(|e| seg(path, e))?;
        let header = reader.header().clone();
        files.push(SegmentFile {
            path: path.clone(),
            header_hash: header.hash(),
            header,
        });
    }
    let expected = match (camera, files.first()) {
        (Some(c), _) => *c,
        (None, Some(f)) => f.header.camera_key,
        (None, None) => return Err(FootageError::NoSegments),
    };
    for f in &files {
        check_camera(&f.header, &expected).map_err(|e| seg(&f.path, e))?;
    }
    files.sort_by_key(|f| (f.header.stream_id, f.header.segment_seq));
    Ok(files)
}

/// Keeps the segments of stream `stream` only (`--stream N`), from a list [`load_headers`]
/// made. Errors when none is left, naming the streams that were given.
pub fn select_stream(files: &mut Vec<SegmentFile>, stream: u32) -> Result<(), FootageError> {
    let mut present: Vec<u32> = files.iter().map(|f| f.header.stream_id).collect();
    present.dedup();
    files.retain(|f| f.header.stream_id == stream);
    if files.is_empty() {
        let present: Vec<String> = present.iter().map(u32::to_string).collect();
        return Err(FootageError::NoSuchStream {
            stream,
            present: present.join(", "),
        });
    }
    Ok(())
}

/// What [`check_chain`] decided about a window of segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainPlan {
    /// Sequence numbers that a given header declares lost in a crash.
    crashed: Vec<(u64, u64)>,
    last_seq: u64,
}

impl ChainPlan {
    /// Whether segment `seq` may end before its trailer: a later signed header declares it
    /// crashed, or it is the window's last segment and the caller accepts an incomplete
    /// end (`decrypt --allow-incomplete`).
    pub fn may_be_cut_off(&self, seq: u64, allow_incomplete_end: bool) -> bool {
        self.declared_crashed(seq) || (allow_incomplete_end && seq == self.last_seq)
    }

    /// Whether a given header declares `seq` lost in a crash.
    pub fn declared_crashed(&self, seq: u64) -> bool {
        self.crashed.iter().any(|&(a, b)| (a..=b).contains(&seq))
    }
}

/// The window's first segment, once every segment is known to be of one stream, with no
/// sequence number twice (`files` in stream order).
fn one_stream(files: &[SegmentFile]) -> Result<&SegmentFile, FootageError> {
    let first = files.first().ok_or(FootageError::NoSegments)?;
    for pair in files.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.header.stream_id != b.header.stream_id {
            return Err(FootageError::MixedStreams(format!(
                "streams {} and {}",
                a.header.stream_id, b.header.stream_id
            )));
        }
        if a.header.segment_seq == b.header.segment_seq {
            return Err(FootageError::Duplicate {
                seq: a.header.segment_seq,
                first: a.path.clone(),
                second: b.path.clone(),
            });
        }
    }
    Ok(first)
}

/// Checks that `files` (one camera, sorted by [`load_headers`]) form one unbroken window
/// of one stream, from the signed headers alone (FORMAT.md §6):
///
/// - one stream, no sequence number twice;
/// - the window starts at `from_seq` (0: the stream's first segment), or every sequence
///   number before the first given one down to `from_seq` is declared lost;
/// - every sequence number between two given segments is declared lost by a given header;
/// - each segment's `prev_header_hash` is its predecessor's header hash when that segment
///   is given.
pub fn check_chain(files: &[SegmentFile], from_seq: u64) -> Result<ChainPlan, FootageError> {
    let first = one_stream(files)?;
    let lost: Vec<(u64, u64)> = declared(files, |_| true);
    let start = first.header.segment_seq;
    if from_seq < start
        && let Some(missing) = first_undeclared(&lost, from_seq, start)
    {
        return Err(FootageError::MissingStart {
            expected: missing,
            first: start,
            path: first.path.clone(),
        });
    }
    for (j, b) in files.iter().enumerate().skip(1) {
        let prev = &files[j - 1];
        if let Some(missing) =
            first_undeclared(&lost, prev.header.segment_seq + 1, b.header.segment_seq)
        {
            return Err(FootageError::MissingSegment {
                missing,
                before: prev.path.clone(),
                after: b.path.clone(),
            });
        }
    }
    for b in files {
        let Some(pred) = b.header.predecessor_seq() else {
            // `b` starts the stream: what is given before it can only be the remains of
            // segments that `b` itself declares lost (a crash of the very first segments).
            if let Some(before) = files.iter().find(|f| {
                f.header.segment_seq < b.header.segment_seq
                    && !b.header.gaps().iter().any(|g| {
                        g.lost_segments
                            .is_some_and(|(a, z)| (a..=z).contains(&f.header.segment_seq))
                    })
            }) {
                return Err(FootageError::ChainMismatch {
                    before: before.path.clone(),
                    after: b.path.clone(),
                });
            }
            continue;
        };
        if let Ok(i) = files.binary_search_by_key(&pred, |f| f.header.segment_seq)
            && files[i].header_hash != b.header.prev_header_hash
        {
            return Err(FootageError::ChainMismatch {
                before: files[i].path.clone(),
                after: b.path.clone(),
            });
        }
        // A predecessor not given is either before the window or declared lost: the hole
        // checks above already failed otherwise.
    }
    Ok(ChainPlan {
        crashed: declared(files, |g| g.reason == GapReason::Crash),
        last_seq: files.last().map_or(start, |f| f.header.segment_seq),
    })
}

/// Reads one segment. With `opener_keys` (the recipient's secrets), decrypts and
/// hands `out` the video plaintext of each record once a signature covers it; without a
/// key, verifies structure, records digest and signatures only.
///
/// A segment cut off before its trailer is not an error here: it comes back as
/// [`SegmentStatus::CutOff`], with the records after its last checkpoint dropped. Whether
/// that is acceptable is the caller's question ([`ChainPlan::may_be_cut_off`]).
pub fn read_segment(
    file: &SegmentFile,
    opener_keys: Option<&[RecipientSecret]>,
    out: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<SegmentReport, FootageError> {
    let key = match opener_keys {
        Some(keys) => SegmentKey::Recipient(keys),
        None => SegmentKey::VerifyOnly,
    };
    read_segment_with(file, key, out)
}

/// How [`read_segment_with`] gets at a segment's key.
#[derive(Clone, Copy)]
pub enum SegmentKey<'a> {
    /// The recipient's secrets (X25519 or X-Wing, tried in order): the segment's own stanza
    /// for one of them.
    Recipient(&'a [RecipientSecret]),
    /// A share (`crate::share`) and the secrets to try on it (the one it is addressed to
    /// among them).
    Shared(&'a crate::share::Share, &'a [RecipientSecret]),
    /// No key: verify only.
    VerifyOnly,
}

/// [`read_segment`], with the segment key from `key`.
pub fn read_segment_with(
    file: &SegmentFile,
    key: SegmentKey<'_>,
    mut out: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<SegmentReport, FootageError> {
    read_segment_records(file, key, |bytes, _| out(bytes))
}

/// [`read_segment`], also telling `out` which records the released bytes are: their
/// lengths, in order, add up to the bytes' length (the final record's is 0).
pub fn read_segment_records(
    file: &SegmentFile,
    key: SegmentKey<'_>,
    mut out: impl FnMut(&[u8], &[ReleasedRecord]) -> std::io::Result<()>,
) -> Result<SegmentReport, FootageError> {
    let path = &file.path;
    let handle = File::open(path).map_err(|e| io(path, e))?;
    let mut reader = SegmentReader::new(BufReader::new(handle)).map_err(|e| seg(path, e))?;
    let mut walker = match key {
        SegmentKey::Recipient(keys) => {
            Walker::Open(Opener::with_keys(reader.header(), keys).map_err(|e| seg(path, e))?)
        }
        SegmentKey::Shared(share, keys) => {
            let header = reader.header();
            let hash = *Verifier::new(header).header_hash();
            let base_key = share
                .base_key(
                    &header.camera_key,
                    header.stream_id,
                    header.segment_seq,
                    &hash,
                    keys,
                )
                .map_err(|source| FootageError::Share {
                    path: path.clone(),
                    source,
                })?;
            Walker::Open(Opener::with_base_key(header, &base_key).map_err(|e| seg(path, e))?)
        }
        SegmentKey::VerifyOnly => Walker::Verify(Verifier::new(reader.header())),
    };
    let mut report = SegmentReport {
        path: path.clone(),
        seq: file.header.segment_seq,
        records: 0,
        checkpoints: 0,
        video_bytes: 0,
        last_pts: None,
        end: None,
        status: SegmentStatus::CutOff { dropped: 0 },
        declared_crashed: false,
        gaps: file.header.gaps(),
    };
    // Plaintext and pts of records that no signature covers yet.
    let mut pending = Vec::new();
    let mut pending_records = 0u64;
    let mut pending_pts = None;
    let mut pending_spans = Vec::new();
    let mut plain = Vec::new();
    loop {
        let item = match reader.next_item() {
            Ok(item) => item,
            Err(SegmentError::Truncated(_)) => {
                report.status = SegmentStatus::CutOff {
                    dropped: pending_records,
                };
                return Ok(report);
            }
            Err(e) => return Err(seg(path, e)),
        };
        match item {
            Item::Record(r) => {
                plain.clear();
                match &mut walker {
                    Walker::Open(opener) => {
                        let opened = opener.open(&r, &mut plain).map_err(|e| seg(path, e))?;
                        if let Some(end) = opened.end {
                            report.end = Some(end);
                        }
                    }
                    Walker::Verify(verifier) => {
                        verifier.observe(&r).map_err(|e| seg(path, e))?;
                    }
                }
                if pending.len() + plain.len() > MAX_UNSIGNED_PLAINTEXT {
                    return Err(seg(
                        path,
                        SegmentError::Limit("more than 64 MiB of records between two signatures"),
                    ));
                }
                pending.extend_from_slice(&plain);
                pending_spans.push(ReleasedRecord {
                    pts: r.pts,
                    flags: r.flags,
                    len: plain.len(),
                });
                pending_records += 1;
                pending_pts = Some(r.pts);
            }
            Item::Checkpoint(c) => {
                match &mut walker {
                    Walker::Open(opener) => opener.checkpoint(&c),
                    Walker::Verify(verifier) => verifier.checkpoint(&c),
                }
                .map_err(|e| seg(path, e))?;
                report.checkpoints += 1;
                release(
                    &mut report,
                    &mut pending,
                    &mut pending_spans,
                    &mut pending_records,
                    pending_pts,
                    &mut out,
                )?;
            }
            Item::Trailer(t) => {
                let verified = match walker {
                    Walker::Open(opener) => opener.finish(&t),
                    Walker::Verify(verifier) => verifier.finish(&t),
                }
                .map_err(|e| seg(path, e))?;
                release(
                    &mut report,
                    &mut pending,
                    &mut pending_spans,
                    &mut pending_records,
                    pending_pts,
                    &mut out,
                )?;
                report.status = SegmentStatus::Complete {
                    end_of_stream: verified.end_of_stream,
                };
                return Ok(report);
            }
        }
    }
}

/// Verifies one segment file without keys, on its own (no chain): a cut-off segment is
/// [`SegmentError::Truncated`].
pub fn verify_file(path: &Path) -> Result<SegmentReport, FootageError> {
    let files = load_headers(&[path.to_path_buf()], None)?;
    let report = read_segment(&files[0], None, |_| Ok(()))?;
    if report.incomplete() {
        return Err(seg(path, SegmentError::Truncated("the trailer is missing")));
    }
    Ok(report)
}

/// Verifies a window of one stream without keys, starting at its first segment: one result
/// per segment (in stream order) and the chain's verdict, so a report can show every
/// segment's state. The verdict over all is [`footage_verdict`]'s.
pub fn verify_footage(
    files: &[SegmentFile],
) -> (
    Vec<Result<SegmentReport, FootageError>>,
    Result<(), FootageError>,
) {
    verify_footage_from(files, 0)
}

/// [`verify_footage`] for a window that starts at `from_seq`.
pub fn verify_footage_from(
    files: &[SegmentFile],
    from_seq: u64,
) -> (
    Vec<Result<SegmentReport, FootageError>>,
    Result<(), FootageError>,
) {
    verify_footage_with(files, from_seq, |_| {})
}

/// [`verify_footage_from`], calling `on_segment` after each segment is read (for progress).
pub fn verify_footage_with(
    files: &[SegmentFile],
    from_seq: u64,
    mut on_segment: impl FnMut(&SegmentFile),
) -> (
    Vec<Result<SegmentReport, FootageError>>,
    Result<(), FootageError>,
) {
    let plan = check_chain(files, from_seq);
    let results = files
        .iter()
        .map(|file| {
            let result = read_segment(file, None, |_| Ok(()))
                .and_then(|report| judge(report, file, files, plan.as_ref().ok(), false));
            on_segment(file);
            result
        })
        .collect();
    (results, plan.map(|_| ()))
}

/// The verdict over a window (FORMAT.md §9): the chain's, which the signed headers decide
/// before any record is read, else the first segment (in stream order) that failed. This is
/// the order in which `decrypt` meets them, so both report the same error.
pub fn footage_verdict<'a>(
    results: &'a [Result<SegmentReport, FootageError>],
    chain: &'a Result<(), FootageError>,
) -> Result<(), &'a FootageError> {
    chain.as_ref()?;
    match results.iter().find_map(|r| r.as_ref().err()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Decrypts a window of one stream into `out`, with the same rules as [`verify_footage`]:
/// the chain is checked from the signed headers before any plaintext is written, then each
/// segment in order. Plaintext is written only once a camera signature covers it. A
/// segment may be cut off where a later header declares it crashed, or, with
/// `allow_incomplete_end`, when it is the last one; its unsigned tail is dropped and counted
/// ([`SegmentReport::dropped`]). `on_segment` is called after each segment.
pub fn decrypt_footage<W: Write, K: OpeningKeys + ?Sized>(
    files: &[SegmentFile],
    keys: &K,
    allow_incomplete_end: bool,
    out: &mut W,
    on_segment: impl FnMut(&SegmentReport),
) -> Result<Vec<SegmentReport>, FootageError> {
    decrypt_footage_from(files, keys, 0, allow_incomplete_end, out, on_segment)
}

/// [`decrypt_footage`] for a window that starts at `from_seq`.
pub fn decrypt_footage_from<W: Write, K: OpeningKeys + ?Sized>(
    files: &[SegmentFile],
    keys: &K,
    from_seq: u64,
    allow_incomplete_end: bool,
    out: &mut W,
    on_segment: impl FnMut(&SegmentReport),
) -> Result<Vec<SegmentReport>, FootageError> {
    let keys = keys.opening_keys();
    decrypt_footage_with(
        files,
        SegmentKey::Recipient(&keys),
        from_seq,
        allow_incomplete_end,
        out,
        on_segment,
    )
}

/// [`decrypt_footage_from`], with the segment keys from `key`.
pub fn decrypt_footage_with<W: Write>(
    files: &[SegmentFile],
    key: SegmentKey<'_>,
    from_seq: u64,
    allow_incomplete_end: bool,
    out: &mut W,
    on_segment: impl FnMut(&SegmentReport),
) -> Result<Vec<SegmentReport>, FootageError> {
    decrypt_footage_records_with(
        files,
        key,
        from_seq,
        allow_incomplete_end,
        |bytes, _| out.write_all(bytes),
        on_segment,
    )
}

/// [`decrypt_footage_from`] for a reader that needs each record's pts and flags (an MP4
/// export): `out` gets the released bytes and the records they are, as in
/// [`read_segment_records`].
pub fn decrypt_footage_records_from<K: OpeningKeys + ?Sized>(
    files: &[SegmentFile],
    keys: &K,
    from_seq: u64,
    allow_incomplete_end: bool,
    out: impl FnMut(&[u8], &[ReleasedRecord]) -> std::io::Result<()>,
    on_segment: impl FnMut(&SegmentReport),
) -> Result<Vec<SegmentReport>, FootageError> {
    let keys = keys.opening_keys();
    decrypt_footage_records_with(
        files,
        SegmentKey::Recipient(&keys),
        from_seq,
        allow_incomplete_end,
        out,
        on_segment,
    )
}

/// [`decrypt_footage_records_from`], with the segment keys from `key`.
pub fn decrypt_footage_records_with(
    files: &[SegmentFile],
    key: SegmentKey<'_>,
    from_seq: u64,
    allow_incomplete_end: bool,
    mut out: impl FnMut(&[u8], &[ReleasedRecord]) -> std::io::Result<()>,
    mut on_segment: impl FnMut(&SegmentReport),
) -> Result<Vec<SegmentReport>, FootageError> {
    let plan = check_chain(files, from_seq)?;
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        let report = read_segment_records(file, key, &mut out)?;
        let report = judge(report, file, files, Some(&plan), allow_incomplete_end)?;
        on_segment(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// A stretch of a window with no verified video, found by [`decrypt_footage_with_gaps`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FootageGap {
    /// The sequence numbers concerned (`first..=last`): missing, failing verification, or
    /// (for a chain break) the segment that does not follow its predecessor.
    pub segments: (u64, u64),
    /// A signed header of the window declares this loss (a crash, or segments a camera
    /// recorded as lost); `false`: nothing the camera signed accounts for it.
    pub declared: bool,
    /// What happened, in words.
    pub what: String,
    /// Signed camera time (Unix ms) of the last verified video before the gap, if any.
    pub from_ms: Option<u64>,
    /// Signed camera time (Unix ms) where verified video resumes after the gap, if any.
    pub to_ms: Option<u64>,
}

/// Decrypts every verifiable segment of a window of one stream into `out` and reports
/// what is missing in between, instead of stopping at the first hole as
/// [`decrypt_footage_from`] does. Each segment's plaintext is written only as camera
/// signatures cover it, as there. A hole is declared when a given signed header accounts
/// for it (segments declared lost, a segment cut off by a declared crash); missing segments
/// nothing declares, a segment that fails verification (what a signature covered before
/// the failure is kept), a segment cut off with no declaration (except the last one with
/// `allow_incomplete_end`) and a broken hash chain are undeclared gaps.
///
/// Still errors for a mixed or duplicated window (before anything is written), for a
/// segment this viewer is not a recipient of, and when reading or writing fails.
pub fn decrypt_footage_with_gaps<W: Write, K: OpeningKeys + ?Sized>(
    files: &[SegmentFile],
    keys: &K,
    from_seq: u64,
    allow_incomplete_end: bool,
    out: &mut W,
    on_segment: impl FnMut(&SegmentReport),
) -> Result<(Vec<SegmentReport>, Vec<FootageGap>), FootageError> {
    let keys = keys.opening_keys();
    decrypt_footage_with_gaps_with(
        files,
        SegmentKey::Recipient(&keys),
        from_seq,
        allow_incomplete_end,
        out,
        on_segment,
    )
}

/// [`decrypt_footage_with_gaps`], with the segment keys from `key`. With a share, a segment
/// whose signed header is not the one the share names (it was replaced or modified) is an
/// undeclared gap like any segment that fails verification; a segment the share does not
/// hold, or a share addressed to another key, is about the viewer and stays an error.
pub fn decrypt_footage_with_gaps_with<W: Write>(
    files: &[SegmentFile],
    key: SegmentKey<'_>,
    from_seq: u64,
    allow_incomplete_end: bool,
    out: &mut W,
    mut on_segment: impl FnMut(&SegmentReport),
) -> Result<(Vec<SegmentReport>, Vec<FootageGap>), FootageError> {
    let first = one_stream(files)?;
    let lost = declared(files, |_| true);
    let crashed = declared(files, |g| g.reason == GapReason::Crash);
    let is_declared = |a: u64, z: u64| first_undeclared(&lost, a, z.saturating_add(1)).is_none();
    let mut gaps: Vec<FootageGap> = Vec::new();
    // Gaps still waiting for the time at which verified video resumes.
    let mut open: Vec<usize> = Vec::new();
    let mut last_ms: Option<u64> = None;
    let start = first.header.segment_seq;
    if from_seq < start {
        let (a, z) = (from_seq, start - 1);
        if !is_declared(a, z) {
            open.push(gaps.len());
            gaps.push(FootageGap {
                segments: (a, z),
                declared: false,
                what: "missing before the first segment given".to_owned(),
                from_ms: None,
                to_ms: None,
            });
        }
    }
    let mut reports = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let seq = file.header.segment_seq;
        let mut gap = |gaps: &mut Vec<FootageGap>, segments, declared, what: String| {
            open.push(gaps.len());
            gaps.push(FootageGap {
                segments,
                declared,
                what,
                from_ms: last_ms,
                to_ms: None,
            });
        };
        if i > 0 {
            let prev = files[i - 1].header.segment_seq;
            if seq > prev + 1 {
                let (a, z) = (prev + 1, seq - 1);
                let declared = is_declared(a, z);
                let what = if declared {
                    "missing, declared lost by the camera (signed)"
                } else {
                    "missing, and no signed header declares them lost"
                };
                gap(&mut gaps, (a, z), declared, what.to_owned());
            }
        }
        if let Some(pred) = file.header.predecessor_seq()
            && let Ok(j) = files.binary_search_by_key(&pred, |f| f.header.segment_seq)
            && files[j].header_hash != file.header.prev_header_hash
        {
            gap(
                &mut gaps,
                (seq, seq),
                false,
                format!(
                    "does not follow segment {pred} (its previous-header hash differs: a segment was replaced)"
                ),
            );
        }
        let read = read_segment_with(file, key, |bytes| out.write_all(bytes));
        let mut report = match read {
            Ok(report) => report,
            // Not a recipient is about the viewer, not the footage: no gap, the answer.
            Err(FootageError::Segment { source, .. })
                if !matches!(source, SegmentError::NotARecipient) =>
            {
                gap(
                    &mut gaps,
                    (seq, seq),
                    false,
                    format!(
                        "fails verification ({source}); only what a signature covered before that is written"
                    ),
                );
                continue;
            }
            // The share names another header for this seq: the segment was replaced.
            Err(FootageError::Share {
                source: source @ crate::share::ShareError::Mismatch { .. },
                ..
            }) => {
                gap(
                    &mut gaps,
                    (seq, seq),
                    false,
                    format!("fails verification ({source}); nothing of it is written"),
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        report.declared_crashed = crashed.iter().any(|&(a, z)| (a..=z).contains(&seq));
        let is_last = i + 1 == files.len();
        // Verified video resumes here.
        let opened_ms = wall_ms(&file.header, file.header.start_pts);
        for k in open.drain(..) {
            gaps[k].to_ms = opened_ms;
        }
        last_ms = wall_ms(
            &file.header,
            report.last_pts.unwrap_or(file.header.start_pts),
        );
        if report.incomplete() && !(allow_incomplete_end && is_last) {
            let declared = report.declared_crashed;
            let what = format!(
                "cut off before its trailer{}; {} unsigned records dropped",
                if declared {
                    " by a crash a later segment declares (signed)"
                } else {
                    ", and nothing declares a crash"
                },
                report.dropped()
            );
            open.push(gaps.len());
            gaps.push(FootageGap {
                segments: (seq, seq),
                declared,
                what,
                from_ms: last_ms,
                to_ms: None,
            });
        }
        on_segment(&report);
        reports.push(report);
    }
    Ok((reports, gaps))
}

/// The camera's signed wall-clock time of `pts` in the segment `h` heads: its open time
/// plus the pts elapsed (90 kHz). `None` if the camera did not know the time.
fn wall_ms(h: &Header, pts: u64) -> Option<u64> {
    (h.wallclock_ms != 0).then(|| {
        h.wallclock_ms
            .saturating_add(pts.saturating_sub(h.start_pts) / 90)
    })
}

/// Applies the window's rules to one segment's report: a cut-off segment is accepted only
/// where [`ChainPlan::may_be_cut_off`] allows it.
fn judge(
    mut report: SegmentReport,
    file: &SegmentFile,
    files: &[SegmentFile],
    plan: Option<&ChainPlan>,
    allow_incomplete_end: bool,
) -> Result<SegmentReport, FootageError> {
    let seq = report.seq;
    report.declared_crashed = plan.is_some_and(|p| p.declared_crashed(seq));
    if report.incomplete() && !plan.is_some_and(|p| p.may_be_cut_off(seq, allow_incomplete_end)) {
        let is_last = files.last().is_some_and(|f| f.header.segment_seq == seq);
        return Err(if is_last {
            seg(
                &file.path,
                SegmentError::Truncated("the trailer is missing"),
            )
        } else {
            FootageError::CutOffInside {
                path: file.path.clone(),
            }
        });
    }
    Ok(report)
}

/// The camera-signed trailer that `file` ends with: `None` if its last bytes are not a
/// trailer whose signature verifies for its header (a segment cut off before its trailer).
/// For comparing a verified segment with a stream head (`segment::head::compare`).
pub fn read_trailer(file: &SegmentFile) -> Result<Option<crate::segment::Trailer>, FootageError> {
    use std::io::{Read, Seek, SeekFrom};

    use crate::segment::{Parsed, Trailer, parse_item, trailer_message, verify_camera_signature};

    let path = &file.path;
    let mut handle = File::open(path).map_err(|e| io(path, e))?;
    let len = handle.metadata().map_err(|e| io(path, e))?.len();
    if len < Trailer::LEN as u64 {
        return Ok(None);
    }
    let mut buf = [0u8; Trailer::LEN];
    handle
        .seek(SeekFrom::End(-(Trailer::LEN as i64)))
        .and_then(|_| handle.read_exact(&mut buf))
        .map_err(|e| io(path, e))?;
    let Ok(Parsed::Complete(Item::Trailer(trailer), _)) = parse_item(&buf) else {
        return Ok(None);
    };
    let message = trailer_message(
        &file.header_hash,
        trailer.flags,
        trailer.record_count,
        &trailer.records_digest,
    );
    Ok(
        verify_camera_signature(&file.header.camera_key, &message, &trailer.signature)
            .is_ok()
            .then_some(trailer),
    )
}

/// One line describing a recorded loss, for reports.
pub fn describe_gap(gap: &Gap) -> String {
    let mut text = format!("gap ({})", gap.reason.name());
    if let Some((a, b)) = gap.lost_segments {
        if a == b {
            text.push_str(&format!(": segment {a} lost or incomplete"));
        } else {
            text.push_str(&format!(": segments {a}..={b} lost or incomplete"));
        }
    }
    if gap.frames > 0 {
        text.push_str(&format!(", {} frames lost", gap.frames));
    }
    if gap.to_pts <= gap.from_pts {
        // A crash is learned of only on restart: the camera knows where the footage stops,
        // not how long it was down, so a zero span would be a false statement.
        text.push_str(&format!(" (at pts {}, length unknown)", gap.from_pts));
    } else {
        text.push_str(&format!(
            " (pts {}..{}, {:.3} s)",
            gap.from_pts,
            gap.to_pts,
            (gap.to_pts - gap.from_pts) as f64 / 90_000.0
        ));
    }
    text
}

/// The camera id of a camera public key, for messages.
pub fn camera_label(key: &[u8; 32]) -> String {
    camera_id(key)
}

enum Walker {
    Open(Opener),
    Verify(Verifier),
}

/// Hands out the plaintext that a signature now covers.
fn release(
    report: &mut SegmentReport,
    pending: &mut Vec<u8>,
    spans: &mut Vec<ReleasedRecord>,
    pending_records: &mut u64,
    pending_pts: Option<u64>,
    out: &mut impl FnMut(&[u8], &[ReleasedRecord]) -> std::io::Result<()>,
) -> Result<(), FootageError> {
    if !spans.is_empty() {
        out(pending, spans).map_err(FootageError::Output)?;
    }
    spans.clear();
    report.video_bytes += pending.len() as u64;
    report.records += *pending_records;
    if pending_pts.is_some() {
        report.last_pts = pending_pts;
    }
    pending.clear();
    *pending_records = 0;
    Ok(())
}

/// The lost ranges that the headers in `files` declare, for gaps `keep` selects.
fn declared(files: &[SegmentFile], keep: impl Fn(&Gap) -> bool) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = files
        .iter()
        .flat_map(|f| f.header.gaps())
        .filter(|g| keep(g))
        .filter_map(|g| g.lost_segments)
        .collect();
    ranges.sort_unstable();
    ranges.dedup();
    ranges
}

/// The first sequence number in `from..to` that no range in `ranges` (sorted) covers.
fn first_undeclared(ranges: &[(u64, u64)], from: u64, to: u64) -> Option<u64> {
    let mut next = from;
    for &(first, last) in ranges {
        if next >= to || first > next {
            break;
        }
        next = next.max(last.saturating_add(1));
    }
    (next < to).then_some(next)
}

fn io(path: &Path, source: std::io::Error) -> FootageError {
    FootageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn seg(path: &Path, source: SegmentError) -> FootageError {
    FootageError::Segment {
        path: path.to_path_buf(),
        source,
    }
}

/// Most plaintext a reader holds back while it waits for a signature. The camera signs a
/// checkpoint at least every 8 MiB of records (`CheckpointPolicy`), so only a segment
/// written by something else comes near it.
const MAX_UNSIGNED_PLAINTEXT: usize = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::GapReason;

    #[test]
    fn a_gap_without_a_known_length_is_not_described_as_zero_seconds() {
        let crash = Gap {
            reason: GapReason::Crash,
            lost_segments: None,
            frames: 0,
            from_pts: 537_000,
            to_pts: 537_000,
        };
        let text = describe_gap(&crash);
        assert!(!text.contains("0.000 s"), "{text}");
        assert!(text.contains("at pts 537000, length unknown"), "{text}");
        let dropped = Gap {
            reason: GapReason::DroppedFrames,
            frames: 3,
            to_pts: 537_000 + 9_000,
            ..crash
        };
        assert!(describe_gap(&dropped).contains("(pts 537000..546000, 0.100 s)"));
    }
}
