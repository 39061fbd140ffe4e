//! What a reader without any key sees in one segment: the header's fields, the records'
//! clear metadata, the checkpoints and the trailer, each camera signature's verdict, and
//! everything found wrong, in reading order.
//!
//! Unlike [`SegmentReader`](super::read::SegmentReader), [`inspect`] does not stop at a bad
//! header signature or at the first bad item: it parses the header with [`Header::parse`]
//! (structure only), checks every signature against the key the header names, and goes on
//! as far as the bytes parse. It never fails and never panics: a file that is not a
//! segment at all comes back as an [`Inspection`] with no header and one problem.
//!
//! Pure: it reads a byte slice and returns a report; the caller reads the file.

use subtle::ConstantTimeEq;

use super::read::Verifier;
use super::{
    CHECKPOINT_MARKER, Digest32, Header, Item, MAGIC, Parsed, RecordsDigest, SegmentError,
    TRAILER_MARKER, camera_id, checkpoint_message, parse_item, record_digest, trailer_message,
    verify_camera_signature,
};

/// Everything [`inspect`] found in one segment.
#[derive(Debug)]
pub struct Inspection {
    /// Bytes given.
    pub len: u64,
    /// The format version byte, when the bytes start with the segment magic.
    pub version: Option<u8>,
    /// The header, when it parsed.
    pub header: Option<HeaderReport>,
    /// The records, as far as they parsed.
    pub records: RecordStats,
    /// Every checkpoint, in order.
    pub checkpoints: Vec<CheckpointReport>,
    /// The trailer, when present.
    pub trailer: Option<TrailerReport>,
    /// Records that a valid camera signature (checkpoint or trailer) covers, counting only
    /// up to the first problem found in the records, checkpoints or trailer: what a reader
    /// would release.
    pub signed_records: u64,
    /// Where parsing stopped: `len` when every byte parsed, else the offset of the item
    /// that did not parse (or of the bytes after the trailer).
    pub parsed_to: u64,
    /// What is wrong, in reading order; empty for a good segment. The first one is what
    /// `camseal verify` would report for this segment on its own.
    pub problems: Vec<Problem>,
}

impl Inspection {
    /// Whether the segment parsed to its end and every check passed: each signature is
    /// valid, each checkpoint and the trailer match the records, and (when asked) the
    /// camera is the expected one.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first problem, which decides the verdict.
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }

    /// Takes the first problem's error out (for exit codes and reports).
    pub fn into_first_error(self) -> Option<SegmentError> {
        self.problems.into_iter().next().map(|p| p.error)
    }
}

/// The parsed header and the verdicts about it.
#[derive(Debug)]
pub struct HeaderReport {
    /// The header, as parsed (structure checked, nothing believed yet).
    pub header: Header,
    /// Its encoded length.
    pub len: u64,
    /// Its hash: what the next segment names as `prev_header_hash`.
    pub hash: Digest32,
    /// The camera id of the key the header names.
    pub camera_id: String,
    /// Whether the camera's signature over the header verifies with the key it names.
    pub signature_valid: bool,
    /// Whether that key is the expected camera's (`None` when none was given).
    pub camera_matches: Option<bool>,
}

/// The records' clear metadata, summed up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Whole records, the final one included.
    pub count: u64,
    /// Their encoded size in total (length prefix, flags, pts, SFrame header, ciphertext
    /// and tag), as on disk.
    pub total_bytes: u64,
    /// The smallest encoded record.
    pub min_bytes: Option<u64>,
    /// The largest encoded record.
    pub max_bytes: Option<u64>,
    /// Records flagged keyframe.
    pub keyframes: u64,
    /// Records flagged continuation (the rest of a NAL unit split over several records).
    pub continuations: u64,
    /// Whether a record flagged final was seen.
    pub final_record: bool,
    /// pts of the first record.
    pub first_pts: Option<u64>,
    /// pts of the last record (the final record's pts is the segment's end).
    pub last_pts: Option<u64>,
    /// Every record's encoded size, in order: what anyone who sees the file or the upload
    /// learns about each frame (bucketed when the segment pads, FORMAT.md §3.1).
    pub sizes: Vec<u64>,
}

/// One checkpoint and the verdicts about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Its offset in the segment.
    pub offset: u64,
    /// How many records it says it covers.
    pub record_count: u64,
    /// How many records came before it.
    pub records_before: u64,
    /// Whether its records digest is the digest of the records before it.
    pub digest_matches: bool,
    /// Whether the camera's signature over it verifies with the key the header names.
    pub signature_valid: bool,
}

impl CheckpointReport {
    /// Whether it covers exactly the records before it, with their digest, validly signed.
    pub fn ok(&self) -> bool {
        self.record_count == self.records_before && self.digest_matches && self.signature_valid
    }
}

/// The trailer and the verdicts about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailerReport {
    /// Its offset in the segment.
    pub offset: u64,
    /// The trailer says the camera ended the stream with this segment.
    pub end_of_stream: bool,
    /// How many records it says the segment has.
    pub record_count: u64,
    /// How many records came before it.
    pub records_before: u64,
    /// Whether its records digest is the digest of the records before it.
    pub digest_matches: bool,
    /// Whether the camera's signature over it verifies with the key the header names.
    pub signature_valid: bool,
    /// Bytes after it (there must be none).
    pub trailing_bytes: u64,
}

impl TrailerReport {
    /// Whether it covers exactly the records before it, validly signed, and ends the file.
    pub fn ok(&self) -> bool {
        self.record_count == self.records_before
            && self.digest_matches
            && self.signature_valid
            && self.trailing_bytes == 0
    }
}

/// Something wrong with the segment, and where.
#[derive(Debug)]
pub struct Problem {
    /// Offset of the header or item it is about.
    pub offset: u64,
    /// What.
    pub error: SegmentError,
}

/// Inspects one segment held in `bytes`. With `expected_camera`, also checks that the
/// header names that camera's key (after its own signature, as `verify` does).
pub fn inspect(bytes: &[u8], expected_camera: Option<&[u8; 32]>) -> Inspection {
    let mut out = Inspection {
        len: bytes.len() as u64,
        version: (bytes.len() > MAGIC.len() && bytes.starts_with(MAGIC))
            .then(|| bytes[MAGIC.len()]),
        header: None,
        records: RecordStats::default(),
        checkpoints: Vec::new(),
        trailer: None,
        signed_records: 0,
        parsed_to: 0,
        problems: Vec::new(),
    };
    // A file shorter than the magic that does not start like it is no segment at all (the
    // header parser would ask for more bytes).
    if !bytes.is_empty() && !MAGIC.starts_with(&bytes[..bytes.len().min(MAGIC.len())]) {
        out.problem(0, SegmentError::NotASegment);
        return out;
    }
    let (header, header_len) = match Header::parse(bytes) {
        Ok(Parsed::Complete(header, used)) => (header, used),
        Ok(Parsed::Needed(_)) => {
            out.problem(
                0,
                SegmentError::Truncated(if bytes.is_empty() {
                    "file is empty"
                } else {
                    "inside the header"
                }),
            );
            return out;
        }
        Err(e) => {
            out.problem(0, e);
            return out;
        }
    };
    let hash = header.hash();
    let signature_valid = header.verify_signature().is_ok();
    if !signature_valid {
        out.problem(0, SegmentError::BadHeaderSignature);
    } else if let Err(e) = header.validate() {
        // The rules on what a signed header may say (FORMAT.md §2.4).
        out.problem(0, e);
    }
    let camera_matches = expected_camera.map(|c| *c == header.camera_key);
    if let (Some(false), Some(expected)) = (camera_matches, expected_camera) {
        out.problem(
            0,
            SegmentError::WrongCamera {
                expected: camera_id(expected),
                found: camera_id(&header.camera_key),
            },
        );
    }
    let mut walk = Walk {
        verifier: Some(Verifier::new(&header)),
        digest: RecordsDigest::new(&hash),
        hash,
        camera_key: header.camera_key,
    };
    out.header = Some(HeaderReport {
        camera_id: header.camera_id(),
        len: header_len as u64,
        hash,
        signature_valid,
        camera_matches,
        header,
    });
    let mut pos = header_len;
    loop {
        let rest = &bytes[pos..];
        let offset = pos as u64;
        out.parsed_to = offset;
        if rest.is_empty() {
            out.problem(offset, SegmentError::Truncated("the trailer is missing"));
            break;
        }
        let (item, used) = match parse_item(rest) {
            Ok(Parsed::Complete(item, used)) => (item, used),
            Ok(Parsed::Needed(_)) => {
                out.problem(offset, SegmentError::Truncated(truncated_inside(rest)));
                break;
            }
            Err(e) => {
                out.problem(offset, e);
                break;
            }
        };
        pos += used;
        match item {
            Item::Record(record) => {
                out.records.add(&record);
                walk.digest.push(&record_digest(record.encoded));
                if let Some(e) = walk.verify(|v| v.observe(&record).map(drop)) {
                    out.problem(offset, e);
                }
            }
            Item::Checkpoint(checkpoint) => {
                out.checkpoints.push(CheckpointReport {
                    offset,
                    record_count: checkpoint.record_count,
                    records_before: walk.digest.count(),
                    digest_matches: walk.digest_matches(&checkpoint.records_digest),
                    signature_valid: walk.signed(
                        &checkpoint_message(
                            &walk.hash,
                            checkpoint.record_count,
                            &checkpoint.records_digest,
                        ),
                        &checkpoint.signature,
                    ),
                });
                match walk.verify(|v| v.checkpoint(&checkpoint)) {
                    Some(e) => out.problem(offset, e),
                    None => out.signed_records = walk.signed_count(),
                }
            }
            Item::Trailer(trailer) => {
                let trailing_bytes = (bytes.len() - pos) as u64;
                out.trailer = Some(TrailerReport {
                    offset,
                    end_of_stream: trailer.flags.end_of_stream(),
                    record_count: trailer.record_count,
                    records_before: walk.digest.count(),
                    digest_matches: walk.digest_matches(&trailer.records_digest),
                    signature_valid: walk.signed(
                        &trailer_message(
                            &walk.hash,
                            trailer.flags,
                            trailer.record_count,
                            &trailer.records_digest,
                        ),
                        &trailer.signature,
                    ),
                    trailing_bytes,
                });
                if let Some(verifier) = walk.verifier.take() {
                    match verifier.finish(&trailer) {
                        Ok(verified) => out.signed_records = verified.record_count,
                        Err(e) => out.problem(offset, e),
                    }
                }
                out.parsed_to = pos as u64;
                if trailing_bytes > 0 {
                    out.problem(pos as u64, SegmentError::TrailingData);
                } else {
                    out.parsed_to = out.len;
                }
                break;
            }
        }
    }
    out
}

impl Inspection {
    fn problem(&mut self, offset: u64, error: SegmentError) {
        self.problems.push(Problem { offset, error });
    }
}

impl RecordStats {
    fn add(&mut self, record: &super::RecordView<'_>) {
        let size = record.encoded.len() as u64;
        self.count += 1;
        self.total_bytes += size;
        self.min_bytes = Some(self.min_bytes.map_or(size, |m| m.min(size)));
        self.max_bytes = Some(self.max_bytes.map_or(size, |m| m.max(size)));
        self.keyframes += u64::from(record.flags.keyframe());
        self.continuations += u64::from(record.flags.continuation());
        self.final_record |= record.flags.is_final();
        self.first_pts.get_or_insert(record.pts);
        self.last_pts = Some(record.pts);
        self.sizes.push(size);
    }
}

/// The reading state after the header: a [`Verifier`] until its first error (it then says
/// no more), and an independent running digest so that later checkpoints still get a
/// verdict.
struct Walk {
    verifier: Option<Verifier>,
    digest: RecordsDigest,
    hash: Digest32,
    camera_key: [u8; 32],
}

impl Walk {
    /// Runs one verifier step; on its first error, returns it and retires the verifier.
    fn verify<T>(
        &mut self,
        step: impl FnOnce(&mut Verifier) -> Result<T, SegmentError>,
    ) -> Option<SegmentError> {
        let result = step(self.verifier.as_mut()?);
        match result {
            Ok(_) => None,
            Err(e) => {
                self.verifier = None;
                Some(e)
            }
        }
    }

    fn signed_count(&self) -> u64 {
        self.verifier.as_ref().map_or(0, Verifier::signed_count)
    }

    fn digest_matches(&self, claimed: &Digest32) -> bool {
        bool::from(claimed.ct_eq(&self.digest.value()))
    }

    fn signed(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        verify_camera_signature(&self.camera_key, message, signature).is_ok()
    }
}

/// Which item a segment that ends early is cut inside.
fn truncated_inside(rest: &[u8]) -> &'static str {
    if rest.starts_with(&TRAILER_MARKER.to_be_bytes()) {
        "inside the trailer"
    } else if rest.starts_with(&CHECKPOINT_MARKER.to_be_bytes()) {
        "inside a checkpoint"
    } else {
        "inside a record"
    }
}
