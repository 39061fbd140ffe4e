//! Checking and opening a stream of segment files: what `camseal decrypt` and
//! `camseal verify` do, as library calls.
//!
//! Segments are grouped by camera and stream and sorted by sequence number. Consecutive
//! segments must be linked: sequence numbers without a hole, and each header naming the
//! previous segment's digest. A missing or replaced segment therefore shows up as a break in
//! the chain, which is reported separately from tampering inside a segment.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use crate::segment::read::{Opener, SegmentReader, Verified, Verifier, check_camera};
use crate::segment::{Digest32, Gap, GapReason, Header, Item, SegmentEnd, SegmentError, camera_id};

/// A segment file and its header, read up front to order the files.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// The file.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
}

/// The outcome for one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// The file.
    pub path: PathBuf,
    /// Sequence number.
    pub seq: u64,
    /// Records (the final one included) that were verified.
    pub records: u64,
    /// Video bytes recovered (decrypt only).
    pub video_bytes: u64,
    /// The end summary (decrypt only).
    pub end: Option<SegmentEnd>,
    /// The segment is cut short; only a prefix was recovered (decrypt with salvage only).
    pub incomplete: bool,
    /// The first segment names a predecessor that was not given.
    pub chain_starts_mid_stream: bool,
    /// Losses the camera recorded (signed) in this segment's header.
    pub gaps: Vec<Gap>,
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
    /// A sequence number is missing between two given segments.
    #[error("segment chain is broken: segment {missing} is missing between {} and {}", before.display(), after.display())]
    MissingSegment {
        /// The first missing sequence number.
        missing: u64,
        /// The segment before the hole.
        before: PathBuf,
        /// The segment after the hole.
        after: PathBuf,
    },
    /// Consecutive sequence numbers whose digests do not link: a segment was replaced.
    #[error("segment chain is broken: {} does not follow {} (previous-segment digest mismatch)", after.display(), before.display())]
    ChainMismatch {
        /// The earlier segment.
        before: PathBuf,
        /// The later segment.
        after: PathBuf,
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
    /// Segments of several streams were given to one output.
    #[error("segments of several streams were given ({0}); decrypt one stream at a time")]
    MixedStreams(String),
    /// Nothing to do.
    #[error("no segment files (*.cseg) found in the given paths")]
    NoSegments,
    /// A path could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
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

/// Reads every header and orders the segments by camera, stream and sequence number.
///
/// With `camera`, every segment must come from that camera. Without it, they must all come
/// from the camera of the first segment.
pub fn load_headers(
    paths: &[PathBuf],
    camera: Option<&[u8; 32]>,
) -> Result<Vec<SegmentFile>, FootageError> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let reader = SegmentReader::new(BufReader::new(file)).map_err(|e| seg(path, e))?;
        files.push(SegmentFile {
            path: path.clone(),
            header: reader.header().clone(),
        });
    }
    let expected = match (camera, files.first()) {
        (Some(c), _) => *c,
        (None, Some(f)) => f.header.camera_key,
        (None, None) => return Err(FootageError::NoSegments),
    };
    for f in &files {
        if let Err(e) = check_camera(&f.header, &expected) {
            // A camera key that differs may be another camera's, or a modified one: only a
            // segment that verifies under the key it names was really signed by another
            // camera. Without `--camera`, the expectation comes from the first segment, so
            // that one must verify too before anything is blamed on the others.
            verify_file(&f.path)?;
            if camera.is_none()
                && let Some(first) = files.first()
            {
                verify_file(&first.path)?;
            }
            return Err(seg(&f.path, e));
        }
    }
    files.sort_by_key(|f| (f.header.stream_id, f.header.segment_seq));
    Ok(files)
}

/// Checks that `files` (one camera, sorted) form one unbroken chain of one stream.
///
/// Each segment must name its predecessor: the previous sequence number, or, when its header
/// records a gap of lost segments, the segment before that gap. A hole not covered by a
/// signed gap is a missing segment. `digests[i]`, when given, is the verified digest of
/// `files[i]` (`None` if it did not verify or is incomplete); each successor must name it.
/// With an empty `digests`, only the structure is checked.
pub fn check_chain(
    files: &[SegmentFile],
    digests: &[Option<Digest32>],
) -> Result<(), FootageError> {
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
    for (j, b) in files.iter().enumerate().skip(1) {
        let prev = &files[j - 1];
        let pred = b.header.predecessor_seq();
        let hole_start = prev.header.segment_seq + 1;
        // Seqs strictly between `prev` and `b` must be declared lost by `b`, and `b`'s
        // declared predecessor must not be newer than `prev`.
        let declared_from = pred.map_or(0, |p| p + 1);
        // Segments dropped from a full spool are declared by whichever segment was opened
        // next, which may come several segments after the hole.
        if hole_start < b.header.segment_seq
            && hole_start < declared_from
            && let Some(missing) = first_undeclared(
                &files[j..],
                hole_start,
                b.header.segment_seq.min(declared_from),
            )
        {
            return Err(FootageError::MissingSegment {
                missing,
                before: prev.path.clone(),
                after: b.path.clone(),
            });
        }
        let Some(pred) = pred else {
            if first_undeclared(
                &files[j..],
                files[0].header.segment_seq,
                b.header.segment_seq,
            )
            .is_none()
            {
                // Everything before `b` is declared lost (the very first segment crashed).
                continue;
            }
            // `b` claims to start the stream, yet older segments were given.
            return Err(FootageError::ChainMismatch {
                before: prev.path.clone(),
                after: b.path.clone(),
            });
        };
        let Ok(i) = files[..j].binary_search_by_key(&pred, |f| f.header.segment_seq) else {
            if pred < files[0].header.segment_seq
                || first_undeclared(&files[j..], pred, pred + 1).is_none()
            {
                // The predecessor is older than everything given, or declared lost.
                continue;
            }
            return Err(FootageError::MissingSegment {
                missing: pred,
                before: prev.path.clone(),
                after: b.path.clone(),
            });
        };
        if let Some(Some(d)) = digests.get(i)
            && *d != b.header.prev_digest
        {
            return Err(FootageError::ChainMismatch {
                before: files[i].path.clone(),
                after: b.path.clone(),
            });
        }
    }
    Ok(())
}

/// The first sequence number in `from..to` that no header in `files` declares lost.
fn first_undeclared(files: &[SegmentFile], from: u64, to: u64) -> Option<u64> {
    let mut ranges: Vec<(u64, u64)> = files
        .iter()
        .flat_map(|f| f.header.gaps())
        .filter_map(|g| g.lost_segments)
        .collect();
    ranges.sort_unstable();
    let mut next = from;
    for (first, last) in ranges {
        if next >= to {
            break;
        }
        if first > next {
            break;
        }
        next = next.max(last.saturating_add(1));
    }
    (next < to).then_some(next)
}

/// Whether a later segment's header declares `seq` lost in a crash, which makes its
/// truncated remains salvageable.
pub fn declared_crashed(files: &[SegmentFile], seq: u64) -> bool {
    files.iter().any(|f| {
        f.header.gaps().iter().any(|g| {
            g.reason == GapReason::Crash
                && g.lost_segments.is_some_and(|(a, b)| (a..=b).contains(&seq))
        })
    })
}

/// Verifies one segment file without keys.
pub fn verify_file(path: &Path) -> Result<Verified, FootageError> {
    let file = File::open(path).map_err(|e| io(path, e))?;
    let mut reader = SegmentReader::new(BufReader::new(file)).map_err(|e| seg(path, e))?;
    let mut verifier = Verifier::new(reader.header());
    loop {
        match reader.next_item().map_err(|e| seg(path, e))? {
            Item::Record(r) => {
                verifier.observe(&r).map_err(|e| seg(path, e))?;
            }
            Item::Trailer(t) => return verifier.finish(&t).map_err(|e| seg(path, e)),
        }
    }
}

/// Verifies a set of segments from one camera: each segment, then the chain.
///
/// Returns one result per segment (in stream order) and the chain verdict separately, so a
/// report can show every segment's state.
pub fn verify_footage(
    files: &[SegmentFile],
) -> (
    Vec<Result<SegmentReport, FootageError>>,
    Result<(), FootageError>,
) {
    let mut results = Vec::with_capacity(files.len());
    let mut digests = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        match verify_file(&f.path) {
            Ok(v) => {
                digests.push(Some(v.digest));
                results.push(Ok(SegmentReport {
                    path: f.path.clone(),
                    seq: f.header.segment_seq,
                    records: v.record_count,
                    video_bytes: 0,
                    end: None,
                    incomplete: false,
                    chain_starts_mid_stream: i == 0 && f.header.prev_digest != [0; 32],
                    gaps: f.header.gaps(),
                }));
            }
            Err(e) => {
                // A segment that does not verify cannot vouch for the next link.
                digests.push(None);
                results.push(Err(e));
            }
        }
    }
    let chain = check_chain(files, &digests);
    (results, chain)
}

/// Decrypts segments (one camera, one stream, sorted) into `out`, verifying everything.
///
/// Plaintext of a record is written only after that record authenticates. With `salvage`,
/// a last segment that is cut short yields its authenticated prefix and is reported as
/// incomplete; any other failure is an error. `on_segment` is called after each segment.
pub fn decrypt_footage<W: Write>(
    files: &[SegmentFile],
    x25519_secret: &[u8; 32],
    salvage: bool,
    out: &mut W,
    mut on_segment: impl FnMut(&SegmentReport),
) -> Result<Vec<SegmentReport>, FootageError> {
    check_chain(files, &[])?;
    let mut reports = Vec::with_capacity(files.len());
    let mut digests: Vec<Option<Digest32>> = Vec::with_capacity(files.len());
    let mut buf = Vec::new();
    for (i, f) in files.iter().enumerate() {
        check_chain(&files[..=i], &digests)?;
        let salvageable = i + 1 == files.len() || declared_crashed(files, f.header.segment_seq);
        let file = File::open(&f.path).map_err(|e| io(&f.path, e))?;
        let mut reader = SegmentReader::new(BufReader::new(file)).map_err(|e| seg(&f.path, e))?;
        let mut opener =
            Opener::new(reader.header(), x25519_secret).map_err(|e| seg(&f.path, e))?;
        let mut report = SegmentReport {
            path: f.path.clone(),
            seq: f.header.segment_seq,
            records: 0,
            video_bytes: 0,
            end: None,
            incomplete: false,
            chain_starts_mid_stream: i == 0 && f.header.prev_digest != [0; 32],
            gaps: f.header.gaps(),
        };
        loop {
            let item = match reader.next_item() {
                Ok(item) => item,
                Err(SegmentError::Truncated(_)) if salvage && salvageable => {
                    report.incomplete = true;
                    digests.push(None);
                    break;
                }
                Err(e) => return Err(seg(&f.path, e)),
            };
            match item {
                Item::Record(r) => {
                    buf.clear();
                    opener.open(&r, &mut buf).map_err(|e| seg(&f.path, e))?;
                    out.write_all(&buf)
                        .map_err(|e| io(Path::new("output"), e))?;
                    report.records += 1;
                    report.video_bytes += buf.len() as u64;
                }
                Item::Trailer(t) => {
                    let verified = opener.finish(&t).map_err(|e| seg(&f.path, e))?;
                    report.end = verified.end;
                    digests.push(Some(verified.digest));
                    break;
                }
            }
        }
        on_segment(&report);
        reports.push(report);
    }
    Ok(reports)
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
    text.push_str(&format!(
        " (pts {}..{}, {:.3} s)",
        gap.from_pts,
        gap.to_pts,
        gap.to_pts.saturating_sub(gap.from_pts) as f64 / 90_000.0
    ));
    text
}

/// The camera id of a camera public key, for messages.
pub fn camera_label(key: &[u8; 32]) -> String {
    camera_id(key)
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
