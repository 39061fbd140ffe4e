//! The stream head: a small object the camera signs after each segment it publishes, naming
//! the latest segment of the stream (`docs/FORMAT.md` §7).
//!
//! A hash chain shows a hole or a replaced segment, but not a missing *end*: a cloud that
//! withholds the newest segments serves a shorter chain that is still whole. The head closes
//! that gap. It names the newest segment (sequence number, header hash, and what its signed
//! trailer says), so a reader given the segments and the head sees when a newer segment
//! exists than the newest one given ([`compare`]).
//!
//! ```text
//! head = magic "CSHD" | version (2) | flags | camera_key | stream_id | seq | header_hash
//!        | record_count | records_digest | wallclock_ms | signature
//! ```
//!
//! A head cannot show that it is itself out of date: a cloud that serves an old head together
//! with the segments up to the one it names passes every check. Only the head's age (its
//! `wallclock_ms` against the reader's clock) shows that.
//!
//! This module is pure: encoding, parsing, signing, verifying and comparing. The engine writes
//! the file (`engine::HeadFile`), the uploader sends it.

use ed25519_dalek::{Signer, SigningKey};

use super::write::SegmentSummary;
use super::{Digest32, SegmentError, Trailer, VERSION, camera_id, verify_camera_signature};

/// A camera's signed statement about the latest segment of one of its streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHead {
    /// The camera's Ed25519 public key, which signs the head.
    pub camera_key: [u8; 32],
    /// Stream number within the camera.
    pub stream_id: u32,
    /// Sequence number of the latest segment published.
    pub seq: u64,
    /// That segment's header hash.
    pub header_hash: Digest32,
    /// Records in that segment, from its trailer.
    pub record_count: u64,
    /// Its records digest, from its trailer.
    pub records_digest: Digest32,
    /// Its trailer says the camera ended the stream with it.
    pub end_of_stream: bool,
    /// Camera wall clock when the head was written, Unix milliseconds (0 if unknown).
    pub wallclock_ms: u64,
    /// Ed25519 signature by `camera_key` over [`head_message`] of the other fields.
    pub signature: [u8; 64],
}

impl StreamHead {
    /// Encoded length: a head has exactly this many bytes.
    pub const LEN: usize = 4 + 1 + 1 + 32 + 4 + 8 + 32 + 8 + 32 + 8 + 64;

    /// The head after segment `seq` of stream `stream_id`, whose trailer `summary` describes,
    /// signed by `camera` at camera wall clock `wallclock_ms`.
    pub fn sign(
        camera: &SigningKey,
        stream_id: u32,
        seq: u64,
        summary: &SegmentSummary,
        end_of_stream: bool,
        wallclock_ms: u64,
    ) -> StreamHead {
        let mut head = StreamHead {
            camera_key: camera.verifying_key().to_bytes(),
            stream_id,
            seq,
            header_hash: summary.header_hash,
            record_count: summary.record_count,
            records_digest: summary.records_digest,
            end_of_stream,
            wallclock_ms,
            signature: [0; 64],
        };
        head.signature = camera
            .sign(&head_message(&head.encode_unsigned()))
            .to_bytes();
        head
    }

    /// Encodes the head, signature included.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..UNSIGNED_LEN].copy_from_slice(&self.encode_unsigned());
        out[UNSIGNED_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// Encodes everything the signature covers: every field but the signature.
    pub fn encode_unsigned(&self) -> [u8; UNSIGNED_LEN] {
        let mut out = [0u8; UNSIGNED_LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4] = VERSION;
        out[5] = if self.end_of_stream { END_OF_STREAM } else { 0 };
        out[6..38].copy_from_slice(&self.camera_key);
        out[38..42].copy_from_slice(&self.stream_id.to_be_bytes());
        out[42..50].copy_from_slice(&self.seq.to_be_bytes());
        out[50..82].copy_from_slice(&self.header_hash);
        out[82..90].copy_from_slice(&self.record_count.to_be_bytes());
        out[90..122].copy_from_slice(&self.records_digest);
        out[122..130].copy_from_slice(&self.wallclock_ms.to_be_bytes());
        out
    }

    /// Parses a head: exactly [`LEN`](Self::LEN) bytes, the magic, version 2, no reserved
    /// flag. Does not check the signature ([`verify`](Self::verify) does).
    pub fn parse(bytes: &[u8]) -> Result<StreamHead, SegmentError> {
        if bytes.len() >= 4 && &bytes[..4] != MAGIC {
            return Err(SegmentError::Malformed("not a stream head (bad magic)"));
        }
        if bytes.len() != Self::LEN {
            return Err(SegmentError::Malformed("stream head has the wrong length"));
        }
        if bytes[4] != VERSION {
            return Err(SegmentError::UnsupportedVersion(bytes[4]));
        }
        if bytes[5] & !END_OF_STREAM != 0 {
            return Err(SegmentError::Malformed(
                "stream head has reserved flags set",
            ));
        }
        Ok(StreamHead {
            camera_key: array_at(&bytes[6..38]),
            stream_id: u32::from_be_bytes(array_at(&bytes[38..42])),
            seq: u64::from_be_bytes(array_at(&bytes[42..50])),
            header_hash: array_at(&bytes[50..82]),
            record_count: u64::from_be_bytes(array_at(&bytes[82..90])),
            records_digest: array_at(&bytes[90..122]),
            end_of_stream: bytes[5] & END_OF_STREAM != 0,
            wallclock_ms: u64::from_be_bytes(array_at(&bytes[122..130])),
            signature: array_at(&bytes[UNSIGNED_LEN..]),
        })
    }

    /// Checks the signature with the key the head names ([`SegmentError::BadSignature`]).
    /// Only after this, and a check that the key is the expected camera's, may a reader
    /// believe the head.
    pub fn verify(&self) -> Result<(), SegmentError> {
        verify_camera_signature(
            &self.camera_key,
            &head_message(&self.encode_unsigned()),
            &self.signature,
        )
    }

    /// Checks the signature ([`verify`](Self::verify)), then that the head is `camera`'s: what
    /// a reader must know before believing the head.
    pub fn check(&self, camera: &[u8; 32]) -> Result<(), HeadError> {
        self.verify().map_err(|_| HeadError::BadSignature)?;
        if self.camera_key != *camera {
            return Err(HeadError::WrongCamera {
                expected: camera_id(camera),
                found: self.camera_id(),
            });
        }
        Ok(())
    }

    /// The camera id of the key that signed the head.
    pub fn camera_id(&self) -> String {
        camera_id(&self.camera_key)
    }

    /// How long ago the head was written, in milliseconds, by a reader's clock at `now_ms`
    /// against the camera's clock: negative if the camera's clock is ahead, `None` if the
    /// camera did not know the time.
    pub fn age_ms(&self, now_ms: u64) -> Option<i64> {
        if self.wallclock_ms == 0 {
            return None;
        }
        let diff = i128::from(now_ms) - i128::from(self.wallclock_ms);
        Some(diff.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

/// The message the camera signs for a head: context and the head without its signature.
pub fn head_message(unsigned: &[u8; UNSIGNED_LEN]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEAD_SIGNATURE_CONTEXT.len() + UNSIGNED_LEN);
    m.extend_from_slice(HEAD_SIGNATURE_CONTEXT);
    m.extend_from_slice(unsigned);
    m
}

/// `<camera id>-s<stream>.head`: the head's file name in an output directory, a spool and a
/// `dir:` sink, next to the stream's segments.
pub fn file_name(camera_id: &str, stream_id: u32) -> String {
    format!("{camera_id}-s{stream_id}{FILE_SUFFIX}")
}

/// Parses a name made by [`file_name`]: (camera id, stream).
pub fn parse_file_name(name: &str) -> Option<(String, u32)> {
    let stem = name.strip_suffix(FILE_SUFFIX)?;
    let (camera, stream) = stem.rsplit_once("-s")?;
    let camera_ok = camera.len() == 16
        && camera
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let stream_ok = !stream.is_empty() && stream.bytes().all(|b| b.is_ascii_digit());
    if !(camera_ok && stream_ok) {
        return None;
    }
    Some((camera.to_string(), stream.parse().ok()?))
}

/// A given segment, as far as [`compare`] needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenSegment {
    /// Stream number from its (verified) header.
    pub stream_id: u32,
    /// Sequence number.
    pub seq: u64,
    /// Its header hash.
    pub header_hash: Digest32,
    /// Its trailer, once the camera's signature over it is verified; `None` if the segment
    /// is cut off before it. Only the segment the head names needs it.
    pub trailer: Option<Trailer>,
}

/// How a (verified) head relates to the segments given with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadMatch {
    /// The head names an older given segment, and matches it; newer segments were given
    /// too. The head is out of date: written before those segments (a crash between a
    /// segment and its head), or an old head served again.
    Behind {
        /// The newest sequence number given.
        newest: u64,
    },
    /// The head names the newest given segment, and matches it.
    Current,
    /// The head names a segment older than the newest given one that is not given (before
    /// the window, or declared lost): nothing to compare it with.
    NotGiven {
        /// The newest sequence number given.
        newest: u64,
    },
}

impl HeadMatch {
    /// Name for reports and JSON: `behind`, `ok` or `not-given`.
    pub const fn name(self) -> &'static str {
        match self {
            HeadMatch::Behind { .. } => "behind",
            HeadMatch::Current => "ok",
            HeadMatch::NotGiven { .. } => "not-given",
        }
    }
}

/// Why the given segments contradict a (verified) head.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The camera's signature over the head does not verify.
    #[error("stream head is tampered or forged: the camera's signature is invalid")]
    BadSignature,
    /// The head is of another stream than the segments.
    #[error("the stream head is for stream {head}, but the segments are of stream {given}")]
    OtherStream {
        /// The head's stream.
        head: u32,
        /// The segments' stream.
        given: u32,
    },
    /// The segment the head names is given, but it is not the one the head names.
    #[error(
        "segment chain is broken: segment {seq} differs from the one the stream head names ({what}): a segment was replaced"
    )]
    Replaced {
        /// Sequence number.
        seq: u64,
        /// What differs.
        what: &'static str,
    },
    /// The head names a segment newer than every given one: segments are withheld (or
    /// were not fetched).
    #[error(
        "segment chain is broken: the stream head says segment {head_seq} exists; the newest given is {newest}: newer segments are missing or withheld"
    )]
    Withheld {
        /// The sequence number the head names.
        head_seq: u64,
        /// The newest given.
        newest: u64,
    },
    /// The head was signed by another camera than the expected one.
    #[error("wrong camera: the stream head is from camera {found}, expected camera {expected}")]
    WrongCamera {
        /// Expected camera id.
        expected: String,
        /// Camera id of the head's key.
        found: String,
    },
}

/// Compares a head (whose signature and camera the caller checked) with the segments given
/// with it (of its camera, in any order; non-empty):
///
/// - every segment must be of the head's stream;
/// - the head must not name a segment newer than the newest given ([`HeadError::Withheld`]);
/// - if the segment it names is given, its header hash, and its signed trailer's record
///   count, records digest and end-of-stream flag must be the head's
///   ([`HeadError::Replaced`]).
pub fn compare(head: &StreamHead, given: &[GivenSegment]) -> Result<HeadMatch, HeadError> {
    if let Some(other) = given.iter().find(|g| g.stream_id != head.stream_id) {
        return Err(HeadError::OtherStream {
            head: head.stream_id,
            given: other.stream_id,
        });
    }
    let Some(newest) = given.iter().map(|g| g.seq).max() else {
        return Err(HeadError::Withheld {
            head_seq: head.seq,
            newest: 0,
        });
    };
    if head.seq > newest {
        return Err(HeadError::Withheld {
            head_seq: head.seq,
            newest,
        });
    }
    let Some(named) = given.iter().find(|g| g.seq == head.seq) else {
        return Ok(HeadMatch::NotGiven { newest });
    };
    let replaced = |what| HeadError::Replaced {
        seq: head.seq,
        what,
    };
    if named.header_hash != head.header_hash {
        return Err(replaced("header hash"));
    }
    let Some(trailer) = &named.trailer else {
        return Err(replaced("the given one is cut off before its trailer"));
    };
    if trailer.record_count != head.record_count {
        return Err(replaced("record count"));
    }
    if trailer.records_digest != head.records_digest {
        return Err(replaced("records digest"));
    }
    if trailer.flags.end_of_stream() != head.end_of_stream {
        return Err(replaced("end-of-stream flag"));
    }
    Ok(if head.seq == newest {
        HeadMatch::Current
    } else {
        HeadMatch::Behind { newest }
    })
}

/// Length of the signed part of a head (everything but the signature).
pub const UNSIGNED_LEN: usize = StreamHead::LEN - 64;

const MAGIC: &[u8; 4] = b"CSHD";
/// Flag bit: the named segment ends the stream.
const END_OF_STREAM: u8 = 0x01;
const FILE_SUFFIX: &str = ".head";
const HEAD_SIGNATURE_CONTEXT: &[u8] = b"camseal v2 stream head\0";

fn array_at<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::TrailerFlags;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn summary() -> SegmentSummary {
        SegmentSummary {
            header_hash: [0x11; 32],
            records_digest: [0x22; 32],
            checkpoints: 3,
            record_count: 42,
            bytes: 12_345,
        }
    }

    fn head() -> StreamHead {
        StreamHead::sign(&key(), 1, 9, &summary(), false, 1_700_000_000_000)
    }

    fn given(seq: u64, head: &StreamHead) -> GivenSegment {
        GivenSegment {
            stream_id: head.stream_id,
            seq,
            header_hash: if seq == head.seq {
                head.header_hash
            } else {
                [seq as u8; 32]
            },
            trailer: Some(Trailer {
                flags: TrailerFlags::new(head.end_of_stream && seq == head.seq),
                record_count: if seq == head.seq {
                    head.record_count
                } else {
                    5
                },
                records_digest: if seq == head.seq {
                    head.records_digest
                } else {
                    [0; 32]
                },
                signature: [0; 64],
            }),
        }
    }

    #[test]
    fn round_trip() {
        let h = head();
        let bytes = h.encode();
        assert_eq!(bytes.len(), StreamHead::LEN);
        assert_eq!(&bytes[..4], b"CSHD");
        assert_eq!(bytes[4], 2);
        let parsed = StreamHead::parse(&bytes).unwrap();
        assert_eq!(parsed, h);
        parsed.verify().unwrap();
        assert_eq!(parsed.camera_key, key().verifying_key().to_bytes());
        assert_eq!((parsed.stream_id, parsed.seq), (1, 9));
        assert_eq!(parsed.record_count, 42);
        assert!(!parsed.end_of_stream);
        let eos = StreamHead::sign(&key(), 1, 9, &summary(), true, 0);
        let parsed = StreamHead::parse(&eos.encode()).unwrap();
        assert!(parsed.end_of_stream);
        parsed.verify().unwrap();
        assert_eq!(parsed.age_ms(5), None);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "an Ed25519 verification per bit, hours under Miri; round_trip covers the code"
    )]
    fn every_flipped_bit_fails_parse_or_verification() {
        let bytes = head().encode();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes;
                b[i] ^= 1 << bit;
                let ok = StreamHead::parse(&b).and_then(|h| h.verify()).is_ok();
                assert!(!ok, "byte {i} bit {bit} flipped still verifies");
            }
        }
    }

    #[test]
    fn wrong_lengths_fail() {
        let bytes = head().encode();
        for len in [0, 3, 4, StreamHead::LEN - 1] {
            assert!(StreamHead::parse(&bytes[..len]).is_err(), "length {len}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(
            StreamHead::parse(&long),
            Err(SegmentError::Malformed(_))
        ));
        let mut other = bytes;
        other[..4].copy_from_slice(b"CSEG");
        assert!(StreamHead::parse(&other).is_err());
    }

    #[test]
    fn another_key_or_context_does_not_verify() {
        let mut h = head();
        h.camera_key = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(matches!(h.verify(), Err(SegmentError::BadSignature)));
        // The same fields signed as a plain message (no context) are not a head.
        let mut h = head();
        h.signature = key().sign(&h.encode_unsigned()).to_bytes();
        assert!(h.verify().is_err());
    }

    #[test]
    fn check_wants_a_good_signature_then_the_expected_camera() {
        let h = head();
        let own = key().verifying_key().to_bytes();
        assert_eq!(h.check(&own), Ok(()));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(matches!(
            h.check(&other),
            Err(HeadError::WrongCamera { .. })
        ));
        let mut forged = h.clone();
        forged.seq += 1;
        assert_eq!(forged.check(&own), Err(HeadError::BadSignature));
        // A head forged under another key is tampered, not merely another camera's.
        let mut swapped = h;
        swapped.camera_key = other;
        assert_eq!(swapped.check(&own), Err(HeadError::BadSignature));
    }

    #[test]
    fn age_is_reader_clock_minus_camera_clock() {
        let h = head();
        assert_eq!(h.age_ms(1_700_000_005_000), Some(5_000));
        assert_eq!(h.age_ms(1_699_999_999_000), Some(-1_000));
    }

    #[test]
    fn file_names_round_trip() {
        let name = file_name("0123456789abcdef", 3);
        assert_eq!(name, "0123456789abcdef-s3.head");
        assert_eq!(parse_file_name(&name), Some(("0123456789abcdef".into(), 3)));
        for bad in [
            "0123456789abcdef-s.head",
            "0123456789ABCDEF-s3.head",
            "0123456789abcde-s3.head",
            "0123456789abcdef-s3.cseg",
            "0123456789abcdef-s3-000000000001.cseg",
            "0123456789abcdef-sx.head",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn current_behind_and_not_given() {
        let h = head();
        let all: Vec<GivenSegment> = (5..=9).map(|s| given(s, &h)).collect();
        assert_eq!(compare(&h, &all), Ok(HeadMatch::Current));
        let newer: Vec<GivenSegment> = (5..=11).map(|s| given(s, &h)).collect();
        assert_eq!(compare(&h, &newer), Ok(HeadMatch::Behind { newest: 11 }));
        let later: Vec<GivenSegment> = (10..=11).map(|s| given(s, &h)).collect();
        assert_eq!(compare(&h, &later), Ok(HeadMatch::NotGiven { newest: 11 }));
        // Order does not matter.
        let mut shuffled = all.clone();
        shuffled.reverse();
        assert_eq!(compare(&h, &shuffled), Ok(HeadMatch::Current));
    }

    #[test]
    fn newest_segments_missing_is_withheld() {
        let h = head();
        let short: Vec<GivenSegment> = (5..=8).map(|s| given(s, &h)).collect();
        assert_eq!(
            compare(&h, &short),
            Err(HeadError::Withheld {
                head_seq: 9,
                newest: 8
            })
        );
        let text = compare(&h, &short).unwrap_err().to_string();
        assert!(
            text.contains("the stream head says segment 9 exists; the newest given is 8"),
            "{text}"
        );
        assert!(matches!(compare(&h, &[]), Err(HeadError::Withheld { .. })));
    }

    #[test]
    fn a_different_named_segment_is_replaced() {
        let h = head();
        let base: Vec<GivenSegment> = (5..=9).map(|s| given(s, &h)).collect();
        type Mutation = fn(&mut GivenSegment);
        let cases: [(&str, Mutation); 5] = [
            ("header hash", |g| g.header_hash[0] ^= 1),
            ("record count", |g| {
                if let Some(t) = &mut g.trailer {
                    t.record_count += 1;
                }
            }),
            ("records digest", |g| {
                if let Some(t) = &mut g.trailer {
                    t.records_digest[31] ^= 1;
                }
            }),
            ("end-of-stream flag", |g| {
                if let Some(t) = &mut g.trailer {
                    t.flags = TrailerFlags::new(true);
                }
            }),
            ("cut off", |g| g.trailer = None),
        ];
        for (what, change) in cases {
            let mut given = base.clone();
            change(&mut given[4]);
            match compare(&h, &given) {
                Err(HeadError::Replaced { seq: 9, what: w }) => {
                    assert!(w.contains(what), "{what}: {w}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        // An older named segment that differs is replaced too.
        let mut newer: Vec<GivenSegment> = (5..=10).map(|s| given(s, &h)).collect();
        newer[4].header_hash = [0; 32];
        assert!(matches!(
            compare(&h, &newer),
            Err(HeadError::Replaced { seq: 9, .. })
        ));
    }

    #[test]
    fn another_stream_is_refused() {
        let h = head();
        let mut given: Vec<GivenSegment> = (5..=9).map(|s| given(s, &h)).collect();
        given[0].stream_id = 2;
        assert_eq!(
            compare(&h, &given),
            Err(HeadError::OtherStream { head: 1, given: 2 })
        );
    }
}
