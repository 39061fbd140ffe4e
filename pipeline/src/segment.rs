//! The sealed segment format v2 (`docs/FORMAT.md`).
//!
//! ```text
//! segment = header || (record | checkpoint)* || trailer
//! ```
//! - The header names the camera, stream, sequence number and the previous segment's header
//!   hash, carries the segment key wrapped with HPKE to every recipient, an HMAC, and the
//!   camera's signature, made when the segment opens.
//! - Each record is one SFrame ciphertext (KID = segment sequence, CTR = record index) with
//!   its pts and flags in the clear, authenticated as SFrame metadata together with the
//!   header hash. The last record, and only it, is flagged `final`.
//! - Checkpoints, about once a second, sign the record count and the running BLAKE3 records
//!   digest; the trailer does the same for the whole segment. A reader releases only
//!   records that a signature covers.
//!
//! This module holds the pure codec: encoders, parsers that report how many more bytes they
//! need, and digests. [`write`](mod@write) seals; [`read`] opens and verifies.

pub mod head;
pub mod inspect;
pub mod padding;
pub mod read;
pub mod write;

use std::collections::HashSet;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::nal::Codec;
use crate::seal::SframeSuite;

/// A 32-byte digest (SHA-256 or BLAKE3, as each use says).
pub type Digest32 = [u8; 32];

/// The outcome of parsing from a buffer that may not yet hold the whole item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The item, and how many bytes of the buffer it used.
    Complete(T, usize),
    /// At least this many bytes are needed in total before parsing can finish.
    Needed(usize),
}

/// Parses a segment header from a buffer that grows between calls, in time linear in the
/// header's length: each call resumes after the last field group it finished (the fixed
/// fields, each recipient stanza), so no byte is parsed more than a few times however the
/// bytes arrive. A header longer than [`MAX_HEADER_LEN`] or with more than [`MAX_STANZAS`]
/// stanzas is refused as malformed as soon as its lengths say so, before it is read.
#[derive(Default)]
pub struct HeaderParser {
    /// Bytes of the buffer already turned into `fixed` and `stanzas`.
    pos: usize,
    fixed: Option<FixedFields>,
    stanzas: Vec<Stanza>,
    seen: HashSet<(u16, u16, u16, [u8; 8])>,
    examined: u64,
}

impl HeaderParser {
    /// A parser at the start of a header.
    pub fn new() -> HeaderParser {
        HeaderParser::default()
    }

    /// Parses on from where the last call stopped. `buf` holds the header from its first
    /// byte and must start with the bytes the previous calls saw.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Parsed<Header>, SegmentError> {
        let mut r = Cursor {
            buf,
            pos: self.pos,
            needed: 0,
            examined: 0,
        };
        let result = self.advance(&mut r);
        self.examined += r.examined as u64;
        match result? {
            Some(header) => Ok(Parsed::Complete(header, r.pos)),
            None if r.needed > MAX_HEADER_LEN => Err(SegmentError::Malformed(
                "the header is longer than the format's limit of 1 MiB",
            )),
            None => Ok(Parsed::Needed(r.needed)),
        }
    }

    /// How many header bytes this parser has examined so far, re-reads included: at most a
    /// small multiple of the header's length.
    pub fn examined(&self) -> u64 {
        self.examined
    }

    /// `Ok(None)`: more bytes are needed (`r.needed`).
    fn advance(&mut self, r: &mut Cursor<'_>) -> Result<Option<Header>, SegmentError> {
        macro_rules! need {
            ($e:expr) => {
                match $e {
                    Some(v) => v,
                    None => return Ok(None),
                }
            };
        }
        if self.fixed.is_none() {
            let magic = need!(r.take(4));
            if magic != MAGIC {
                return Err(SegmentError::NotASegment);
            }
            let version = need!(r.u8());
            if version != VERSION {
                return Err(SegmentError::UnsupportedVersion(version));
            }
            let suite_id = need!(r.u16());
            let suite =
                SframeSuite::from_id(suite_id).ok_or(SegmentError::UnsupportedSuite(suite_id))?;
            let codec = match need!(r.u8()) {
                1 => Codec::H264,
                2 => Codec::H265,
                _ => return Err(SegmentError::Malformed("unknown codec")),
            };
            if need!(r.u8()) != 0 {
                return Err(SegmentError::Malformed("reserved header flags are set"));
            }
            let camera_key = need!(r.array::<32>());
            let stream_id = need!(r.u32());
            let segment_seq = need!(r.u64());
            let start_pts = need!(r.u64());
            let wallclock_ms = need!(r.u64());
            let prev_header_hash = need!(r.array::<32>());
            let ext_len = usize::from(need!(r.u16()));
            let extensions = need!(r.take(ext_len)).to_vec();
            check_extensions(&extensions)?;
            let n_stanzas = need!(r.u16());
            if n_stanzas == 0 {
                return Err(SegmentError::Malformed("header has no recipients"));
            }
            if usize::from(n_stanzas) > MAX_STANZAS {
                return Err(SegmentError::Malformed(
                    "the header has more recipient stanzas than the format's limit of 1024",
                ));
            }
            self.fixed = Some(FixedFields {
                suite,
                codec,
                camera_key,
                stream_id,
                segment_seq,
                start_pts,
                wallclock_ms,
                prev_header_hash,
                extensions,
                n_stanzas,
            });
            self.stanzas.reserve(usize::from(n_stanzas).min(64));
            self.pos = r.pos;
        }
        let n_stanzas = self.fixed.as_ref().map_or(0, |f| usize::from(f.n_stanzas));
        while self.stanzas.len() < n_stanzas {
            let kem = need!(r.u16());
            let kdf = need!(r.u16());
            let aead = need!(r.u16());
            let key_id = need!(r.array::<8>());
            let enc_len = usize::from(need!(r.u16()));
            let enc = need!(r.take(enc_len)).to_vec();
            let ct_len = usize::from(need!(r.u16()));
            let wrapped_key = need!(r.take(ct_len)).to_vec();
            if !self.seen.insert((kem, kdf, aead, key_id)) {
                return Err(SegmentError::Malformed(
                    "two recipient stanzas of one suite name the same key id",
                ));
            }
            self.stanzas.push(Stanza {
                kem,
                kdf,
                aead,
                key_id,
                enc,
                wrapped_key,
            });
            self.pos = r.pos;
        }
        let mac = need!(r.array::<32>());
        let signature = need!(r.array::<64>());
        let Some(f) = self.fixed.take() else {
            return Err(SegmentError::Malformed("header parser reused"));
        };
        Ok(Some(Header {
            suite: f.suite,
            codec: f.codec,
            camera_key: f.camera_key,
            stream_id: f.stream_id,
            segment_seq: f.segment_seq,
            start_pts: f.start_pts,
            wallclock_ms: f.wallclock_ms,
            prev_header_hash: f.prev_header_hash,
            extensions: f.extensions,
            stanzas: std::mem::take(&mut self.stanzas),
            mac,
            signature,
        }))
    }
}

/// The header fields before the stanzas, kept while the stanzas arrive.
struct FixedFields {
    suite: SframeSuite,
    codec: Codec,
    camera_key: [u8; 32],
    stream_id: u32,
    segment_seq: u64,
    start_pts: u64,
    wallclock_ms: u64,
    prev_header_hash: Digest32,
    extensions: Vec<u8>,
    n_stanzas: u16,
}

/// Flags carried in the clear by each record and authenticated with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct RecordFlags(u8);

impl RecordFlags {
    /// The record holds (the start of) a keyframe access unit.
    pub const KEYFRAME: u8 = 0x01;
    /// The record does not start at a NAL boundary: it continues a NAL unit that was split
    /// because it was larger than the chunk limit.
    pub const CONTINUATION: u8 = 0x02;
    /// The record is the segment's last; its plaintext is the end-of-segment summary.
    pub const FINAL: u8 = 0x04;
    const KNOWN: u8 = Self::KEYFRAME | Self::CONTINUATION | Self::FINAL;

    /// Flags for a video record.
    pub const fn video(keyframe: bool, continuation: bool) -> RecordFlags {
        let mut bits = 0;
        if keyframe {
            bits |= Self::KEYFRAME;
        }
        if continuation {
            bits |= Self::CONTINUATION;
        }
        RecordFlags(bits)
    }

    /// Flags of the final record.
    pub const fn final_record() -> RecordFlags {
        RecordFlags(Self::FINAL)
    }

    /// Parses flags, rejecting reserved bits and contradictory combinations.
    pub fn from_bits(bits: u8) -> Result<RecordFlags, SegmentError> {
        if bits & !Self::KNOWN != 0
            || (bits & Self::FINAL != 0 && bits & (Self::KEYFRAME | Self::CONTINUATION) != 0)
        {
            return Err(SegmentError::Malformed("record has invalid flags"));
        }
        Ok(RecordFlags(bits))
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the keyframe flag is set.
    pub const fn keyframe(self) -> bool {
        self.0 & Self::KEYFRAME != 0
    }

    /// Whether the continuation flag is set.
    pub const fn continuation(self) -> bool {
        self.0 & Self::CONTINUATION != 0
    }

    /// Whether the final flag is set.
    pub const fn is_final(self) -> bool {
        self.0 & Self::FINAL != 0
    }
}

/// Why a segment was closed (carried in the final record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// A keyframe arrived after the target duration.
    Keyframe,
    /// The maximum duration was reached.
    MaxDuration,
    /// The maximum size was reached.
    MaxBytes,
    /// The camera was asked to stop (SIGINT/SIGTERM).
    Shutdown,
    /// The source ended.
    EndOfStream,
}

impl CloseReason {
    /// Wire value.
    pub const fn code(self) -> u8 {
        match self {
            CloseReason::Keyframe => 0,
            CloseReason::MaxDuration => 1,
            CloseReason::MaxBytes => 2,
            CloseReason::Shutdown => 3,
            CloseReason::EndOfStream => 4,
        }
    }

    /// Parses a wire value.
    pub fn from_code(code: u8) -> Result<CloseReason, SegmentError> {
        Ok(match code {
            0 => CloseReason::Keyframe,
            1 => CloseReason::MaxDuration,
            2 => CloseReason::MaxBytes,
            3 => CloseReason::Shutdown,
            4 => CloseReason::EndOfStream,
            _ => return Err(SegmentError::Malformed("unknown close reason")),
        })
    }

    /// Whether the camera ends the stream with a segment closed for this reason (its
    /// trailer then says so, FORMAT.md §4.2).
    pub const fn ends_stream(self) -> bool {
        matches!(self, CloseReason::Shutdown | CloseReason::EndOfStream)
    }

    /// Human-readable name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            CloseReason::Keyframe => "keyframe",
            CloseReason::MaxDuration => "max-duration",
            CloseReason::MaxBytes => "max-bytes",
            CloseReason::Shutdown => "shutdown",
            CloseReason::EndOfStream => "end-of-stream",
        }
    }
}

/// The end-of-segment summary, the plaintext of the final record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentEnd {
    /// pts just past the last frame of the segment.
    pub end_pts: u64,
    /// Why the segment was closed.
    pub reason: CloseReason,
}

impl SegmentEnd {
    /// Encoded length.
    pub const LEN: usize = 9;

    /// Encodes the summary.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.end_pts.to_be_bytes());
        out[8] = self.reason.code();
        out
    }

    /// Parses the summary. An empty or otherwise mis-sized final record is an error.
    pub fn parse(bytes: &[u8]) -> Result<SegmentEnd, SegmentError> {
        if bytes.is_empty() {
            return Err(SegmentError::EmptyFinal);
        }
        if bytes.len() != Self::LEN {
            return Err(SegmentError::Malformed("final record has the wrong size"));
        }
        let mut pts = [0u8; 8];
        pts.copy_from_slice(&bytes[..8]);
        Ok(SegmentEnd {
            end_pts: u64::from_be_bytes(pts),
            reason: CloseReason::from_code(bytes[8])?,
        })
    }
}

/// Why footage is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GapReason {
    /// The camera crashed or lost power: the tail of an open segment was lost.
    Crash,
    /// Frames were dropped by the configured backpressure policy.
    DroppedFrames,
    /// Sealed segments were dropped from a full spool before they were uploaded.
    SpoolQuota,
    /// The source lost pictures (an encoder fault, an errored buffer), or delivered pictures
    /// that cannot be decoded without pictures that were not recorded (a stream that began
    /// between keyframes); everything up to the next keyframe was skipped.
    SourceLoss,
}

impl GapReason {
    /// Wire value.
    pub const fn code(self) -> u8 {
        match self {
            GapReason::Crash => 1,
            GapReason::DroppedFrames => 2,
            GapReason::SpoolQuota => 3,
            GapReason::SourceLoss => 4,
        }
    }

    /// Parses a wire value.
    pub fn from_code(code: u8) -> Result<GapReason, SegmentError> {
        Ok(match code {
            1 => GapReason::Crash,
            2 => GapReason::DroppedFrames,
            3 => GapReason::SpoolQuota,
            4 => GapReason::SourceLoss,
            _ => return Err(SegmentError::Malformed("unknown gap reason")),
        })
    }

    /// Name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            GapReason::Crash => "crash",
            GapReason::DroppedFrames => "dropped-frames",
            GapReason::SpoolQuota => "spool-quota",
            GapReason::SourceLoss => "source-loss",
        }
    }
}

/// A signed record of lost footage, carried in the header of the next segment written after
/// the loss (header extension type 0x0001, FORMAT.md §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gap {
    /// Why.
    pub reason: GapReason,
    /// Whole segments of this stream that are lost or incomplete, `first..=last`, if any.
    /// The segment carrying the gap then names the segment before `first` as its
    /// predecessor in the hash chain.
    pub lost_segments: Option<(u64, u64)>,
    /// Frames lost, if known (0 if not).
    pub frames: u64,
    /// pts of the first lost frame (or of the start of the loss).
    pub from_pts: u64,
    /// pts just past the last lost frame (or of the end of the loss).
    pub to_pts: u64,
}

impl Gap {
    /// Encoded length of the extension value.
    pub const LEN: usize = 42;

    /// `frames` frames, pts `from_pts..to_pts`, not recorded because the spool was full.
    pub fn spool_quota(frames: u64, from_pts: u64, to_pts: u64) -> Gap {
        Gap {
            reason: GapReason::SpoolQuota,
            lost_segments: None,
            frames,
            from_pts,
            to_pts,
        }
    }

    /// Encodes the extension value.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.reason.code();
        let (first, last) = self.lost_segments.unwrap_or((0, 0));
        out[1] = u8::from(self.lost_segments.is_some());
        out[2..10].copy_from_slice(&first.to_be_bytes());
        out[10..18].copy_from_slice(&last.to_be_bytes());
        out[18..26].copy_from_slice(&self.frames.to_be_bytes());
        out[26..34].copy_from_slice(&self.from_pts.to_be_bytes());
        out[34..42].copy_from_slice(&self.to_pts.to_be_bytes());
        out
    }

    /// Parses an extension value.
    pub fn parse(v: &[u8]) -> Result<Gap, SegmentError> {
        if v.len() != Self::LEN {
            return Err(SegmentError::Malformed("gap extension has the wrong size"));
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let lost_segments = match v[1] {
            0 if u64_at(2) == 0 && u64_at(10) == 0 => None,
            1 if u64_at(2) <= u64_at(10) => Some((u64_at(2), u64_at(10))),
            _ => {
                return Err(SegmentError::Malformed(
                    "gap extension has an invalid range",
                ));
            }
        };
        Ok(Gap {
            reason: GapReason::from_code(v[0])?,
            lost_segments,
            frames: u64_at(18),
            from_pts: u64_at(26),
            to_pts: u64_at(34),
        })
    }
}

/// Encodes gaps as the header's extension area.
pub fn encode_gap_extensions(gaps: &[Gap]) -> Vec<u8> {
    let mut out = Vec::with_capacity(gaps.len() * (4 + Gap::LEN));
    for gap in gaps {
        out.extend_from_slice(&EXT_GAP.to_be_bytes());
        out.extend_from_slice(&(Gap::LEN as u16).to_be_bytes());
        out.extend_from_slice(&gap.encode());
    }
    out
}

/// One recipient's wrapped copy of the segment key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    /// HPKE KEM id (0x0020: DHKEM(X25519, HKDF-SHA256)).
    pub kem: u16,
    /// HPKE KDF id (0x0001: HKDF-SHA256).
    pub kdf: u16,
    /// HPKE AEAD id (0x0001: AES-128-GCM).
    pub aead: u16,
    /// First 8 bytes of SHA-256 over the recipient's public key, to find one's stanza.
    pub key_id: [u8; 8],
    /// HPKE encapsulated key.
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the segment base key.
    pub wrapped_key: Vec<u8>,
}

/// The segment header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Media cipher suite.
    pub suite: SframeSuite,
    /// Video codec of the records' plaintext.
    pub codec: Codec,
    /// The camera's Ed25519 public key, which signs the header, checkpoints and trailer.
    pub camera_key: [u8; 32],
    /// Stream number within the camera.
    pub stream_id: u32,
    /// Sequence number of the segment within the stream (also the SFrame KID).
    pub segment_seq: u64,
    /// pts of the first frame, 90 kHz.
    pub start_pts: u64,
    /// Camera wall clock when the segment was opened, Unix milliseconds (0 if unknown).
    pub wallclock_ms: u64,
    /// Header hash of the predecessor segment of the stream (FORMAT.md §6); all zero for
    /// the first segment.
    pub prev_header_hash: Digest32,
    /// Raw extension area (TLVs): gap declarations.
    pub extensions: Vec<u8>,
    /// Wrapped segment keys, one per recipient.
    pub stanzas: Vec<Stanza>,
    /// HMAC-SHA256 over everything above, keyed from the segment key.
    pub mac: Digest32,
    /// The camera's Ed25519 signature over [`header_message`] of the header hash.
    pub signature: [u8; 64],
}

impl Header {
    /// Encodes everything the header MAC covers (the header without MAC and signature).
    ///
    /// Fails when a variable field (the extensions, a stanza's `enc` or wrapped key) or the
    /// stanza count does not fit its 16-bit length field: such a header has no encoding.
    pub fn encode_unmaced(&self) -> Result<Vec<u8>, SegmentError> {
        let mut out = Vec::with_capacity(256 + self.stanzas.len() * 96);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.suite.id().to_be_bytes());
        out.push(codec_code(self.codec));
        out.push(0); // header flags, reserved
        out.extend_from_slice(&self.camera_key);
        out.extend_from_slice(&self.stream_id.to_be_bytes());
        out.extend_from_slice(&self.segment_seq.to_be_bytes());
        out.extend_from_slice(&self.start_pts.to_be_bytes());
        out.extend_from_slice(&self.wallclock_ms.to_be_bytes());
        out.extend_from_slice(&self.prev_header_hash);
        out.extend_from_slice(&len16(
            self.extensions.len(),
            "header extensions longer than 65535 bytes",
        )?);
        out.extend_from_slice(&self.extensions);
        out.extend_from_slice(&len16(
            self.stanzas.len(),
            "more than 65535 recipient stanzas",
        )?);
        for s in &self.stanzas {
            out.extend_from_slice(&s.kem.to_be_bytes());
            out.extend_from_slice(&s.kdf.to_be_bytes());
            out.extend_from_slice(&s.aead.to_be_bytes());
            out.extend_from_slice(&s.key_id);
            out.extend_from_slice(&len16(
                s.enc.len(),
                "a stanza's encapsulated key is longer than 65535 bytes",
            )?);
            out.extend_from_slice(&s.enc);
            out.extend_from_slice(&len16(
                s.wrapped_key.len(),
                "a stanza's wrapped key is longer than 65535 bytes",
            )?);
            out.extend_from_slice(&s.wrapped_key);
        }
        Ok(out)
    }

    /// Encodes the bytes the header hash covers: everything but the signature.
    pub fn encode_unsigned(&self) -> Result<Vec<u8>, SegmentError> {
        let mut out = self.encode_unmaced()?;
        out.extend_from_slice(&self.mac);
        Ok(out)
    }

    /// Encodes the whole header, MAC and signature included.
    pub fn encode(&self) -> Result<Vec<u8>, SegmentError> {
        let mut out = self.encode_unsigned()?;
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Parses a header from the start of `buf`. Checks structure only: the caller verifies
    /// the signature ([`Header::verify_signature`]) before it believes any field.
    ///
    /// A reader that gets the header a few bytes at a time keeps one [`HeaderParser`]
    /// instead, so that each call resumes where the last stopped.
    pub fn parse(buf: &[u8]) -> Result<Parsed<Header>, SegmentError> {
        HeaderParser::new().parse(buf)
    }

    /// The rules on what a signed header may say (FORMAT.md §2.4), checked after its
    /// signature: a header that breaks them was signed by a faulty or compromised camera,
    /// which is reported as malformed rather than tampered.
    pub fn validate(&self) -> Result<(), SegmentError> {
        for gap in self.gaps() {
            // A segment can declare only earlier segments lost: not itself, not later ones.
            if gap
                .lost_segments
                .is_some_and(|(_, last)| last >= self.segment_seq)
            {
                return Err(SegmentError::Malformed(
                    "gap declares this segment or a later one lost",
                ));
            }
        }
        // A segment is the first of its stream exactly when every earlier sequence number
        // is declared lost (or there is none), and only then is `prev_header_hash` zero.
        let first_of_stream = self.first_declared_lost() == 0;
        if first_of_stream != (self.prev_header_hash == [0; 32]) {
            return Err(SegmentError::Malformed(if first_of_stream {
                "the first segment of a stream must have an all-zero prev_header_hash"
            } else {
                "prev_header_hash is zero but the segment is not the first of its stream"
            }));
        }
        Ok(())
    }

    /// SHA-256 of the encoded header up to and including its MAC (not the signature): what
    /// the camera signs, and what every record, checkpoint and the trailer are bound to.
    ///
    /// A header that has no encoding ([`Header::encode_unmaced`]; never one that `parse`
    /// returned or the writer made) hashes to the digest of a fixed string that no header
    /// starts with, so it matches no signature and no chain link.
    pub fn hash(&self) -> Digest32 {
        match self.encode_unsigned() {
            Ok(bytes) => Sha256::digest(bytes).into(),
            Err(_) => Sha256::digest(b"camseal: a header with no encoding").into(),
        }
    }

    /// Checks the camera's signature over the header with the key the header names. Only
    /// after this (and a check that the key is one the reader trusts) may a reader believe
    /// anything the header says.
    pub fn verify_signature(&self) -> Result<(), SegmentError> {
        verify_camera_signature(
            &self.camera_key,
            &header_message(&self.hash()),
            &self.signature,
        )
        .map_err(|_| SegmentError::BadHeaderSignature)
    }

    /// The camera id derived from the camera key (see `CameraPublic::id`).
    pub fn camera_id(&self) -> String {
        camera_id(&self.camera_key)
    }

    /// The gaps this header records (parsed from its extensions, which `parse` validated).
    pub fn gaps(&self) -> Vec<Gap> {
        let mut gaps = Vec::new();
        let mut ext = &self.extensions[..];
        while ext.len() >= 4 {
            let ty = u16::from_be_bytes([ext[0], ext[1]]);
            let len = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            let Some(value) = ext.get(4..4 + len) else {
                break;
            };
            if ty == EXT_GAP
                && let Ok(gap) = Gap::parse(value)
            {
                gaps.push(gap);
            }
            ext = &ext[4 + len..];
        }
        gaps
    }

    /// How the video records are padded (FORMAT.md §3.1): announced by an extension that
    /// `parse` validated.
    pub fn padding(&self) -> padding::Padding {
        let mut ext = &self.extensions[..];
        while ext.len() >= 4 {
            let ty = u16::from_be_bytes([ext[0], ext[1]]);
            let len = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            let Some(value) = ext.get(4..4 + len) else {
                break;
            };
            if ty == padding::EXT_PADDING
                && let Ok(p) = padding::Padding::from_extension_value(value)
            {
                return p;
            }
            ext = &ext[4 + len..];
        }
        padding::Padding::Off
    }

    /// The sequence number of the segment this one names as its predecessor: the previous
    /// one, or the one before a range of segments a gap declares lost. `None` for the first
    /// segment of a stream (an all-zero `prev_header_hash`).
    pub fn predecessor_seq(&self) -> Option<u64> {
        self.first_declared_lost().checked_sub(1)
    }

    /// The lowest sequence number of the run of segments right before this one that its
    /// own *crash* gaps declare lost (its own sequence number if none is). Adjacent and
    /// overlapping ranges join: crash gaps `3..=4` and `5..=6` in the header of segment 7
    /// make 2 its predecessor. Only a crash moves the predecessor: the camera never learned
    /// the crashed segments' fate, so it links to the last segment it finished. Segments lost
    /// otherwise (dropped from a full spool) were finished, and the chain runs through them.
    fn first_declared_lost(&self) -> u64 {
        first_crashed_before(&self.gaps(), self.segment_seq)
    }
}

/// The lowest sequence number of the run of segments right before `segment_seq` that the
/// crash gaps in `gaps` declare lost (`segment_seq` itself if none do): where a segment
/// carrying these gaps links back to (FORMAT.md §6.1).
pub fn first_crashed_before(gaps: &[Gap], segment_seq: u64) -> u64 {
    let ranges: Vec<(u64, u64)> = gaps
        .iter()
        .filter(|g| g.reason == GapReason::Crash)
        .filter_map(|g| g.lost_segments)
        .collect();
    let mut first = segment_seq;
    while let Some(f) = ranges
        .iter()
        .filter(|&&(f, last)| f < first && last.saturating_add(1) >= first)
        .map(|&(f, _)| f)
        .min()
    {
        first = f;
    }
    first
}

/// A record as it sits in the segment: clear fields plus the SFrame ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Flags.
    pub flags: RecordFlags,
    /// Presentation timestamp, 90 kHz.
    pub pts: u64,
    /// SFrame header || ciphertext || tag.
    pub sframe: &'a [u8],
    /// The whole encoded record, length prefix included (what the records digest hashes).
    pub encoded: &'a [u8],
}

/// A signed checkpoint: the camera vouches for the first `record_count` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Records covered, counted from the first.
    pub record_count: u64,
    /// The records digest after those records.
    pub records_digest: Digest32,
    /// Ed25519 signature by the camera key over [`checkpoint_message`].
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Encoded length.
    pub const LEN: usize = 4 + 8 + 32 + 64;

    /// Encodes the checkpoint.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&CHECKPOINT_MARKER.to_be_bytes());
        out[4..12].copy_from_slice(&self.record_count.to_be_bytes());
        out[12..44].copy_from_slice(&self.records_digest);
        out[44..].copy_from_slice(&self.signature);
        out
    }
}

/// Flags carried in the clear by the trailer and signed with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct TrailerFlags(u8);

impl TrailerFlags {
    /// The camera ended the stream with this segment (shutdown or end of source): no
    /// segment follows until the next run.
    pub const END_OF_STREAM: u8 = 0x01;

    /// Flags for a segment that does (`true`) or does not end the stream.
    pub const fn new(end_of_stream: bool) -> TrailerFlags {
        TrailerFlags(if end_of_stream {
            Self::END_OF_STREAM
        } else {
            0
        })
    }

    /// Parses flags, rejecting reserved bits.
    pub fn from_bits(bits: u8) -> Result<TrailerFlags, SegmentError> {
        if bits & !Self::END_OF_STREAM != 0 {
            return Err(SegmentError::Malformed("trailer has reserved flags set"));
        }
        Ok(TrailerFlags(bits))
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the segment ends the stream.
    pub const fn end_of_stream(self) -> bool {
        self.0 & Self::END_OF_STREAM != 0
    }
}

/// The signed trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Flags.
    pub flags: TrailerFlags,
    /// Number of records, the final one included.
    pub record_count: u64,
    /// The records digest over every record.
    pub records_digest: Digest32,
    /// Ed25519 signature by the camera key over [`trailer_message`].
    pub signature: [u8; 64],
}

impl Trailer {
    /// Encoded length.
    pub const LEN: usize = 4 + 1 + 8 + 32 + 64;

    /// Encodes the trailer.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&TRAILER_MARKER.to_be_bytes());
        out[4] = self.flags.bits();
        out[5..13].copy_from_slice(&self.record_count.to_be_bytes());
        out[13..45].copy_from_slice(&self.records_digest);
        out[45..].copy_from_slice(&self.signature);
        out
    }
}

/// What comes after the header: a record, a checkpoint, or the trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A signed checkpoint over the records before it.
    Checkpoint(Checkpoint),
    /// A record.
    Record(RecordView<'a>),
    /// The trailer; the segment ends after it.
    Trailer(Trailer),
}

/// Parses the next record, checkpoint or the trailer from the start of `buf`.
pub fn parse_item(buf: &[u8]) -> Result<Parsed<Item<'_>>, SegmentError> {
    if buf.len() < 4 {
        return Ok(Parsed::Needed(4));
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len == TRAILER_MARKER {
        if buf.len() < Trailer::LEN {
            return Ok(Parsed::Needed(Trailer::LEN));
        }
        let trailer = Trailer {
            flags: TrailerFlags::from_bits(buf[4])?,
            record_count: be_u64(&buf[5..13]),
            records_digest: array_at(&buf[13..45]),
            signature: array_at(&buf[45..Trailer::LEN]),
        };
        return Ok(Parsed::Complete(Item::Trailer(trailer), Trailer::LEN));
    }
    if len == CHECKPOINT_MARKER {
        if buf.len() < Checkpoint::LEN {
            return Ok(Parsed::Needed(Checkpoint::LEN));
        }
        let checkpoint = Checkpoint {
            record_count: be_u64(&buf[4..12]),
            records_digest: array_at(&buf[12..44]),
            signature: array_at(&buf[44..Checkpoint::LEN]),
        };
        return Ok(Parsed::Complete(
            Item::Checkpoint(checkpoint),
            Checkpoint::LEN,
        ));
    }
    let len = len as usize;
    if len < MIN_RECORD_BODY {
        return Err(SegmentError::Malformed("record too short"));
    }
    if len > MAX_RECORD_BODY {
        return Err(SegmentError::Malformed(
            "record length exceeds the format limit",
        ));
    }
    let total = 4 + len;
    if buf.len() < total {
        return Ok(Parsed::Needed(total));
    }
    let flags = RecordFlags::from_bits(buf[4])?;
    Ok(Parsed::Complete(
        Item::Record(RecordView {
            flags,
            pts: be_u64(&buf[5..13]),
            sframe: &buf[13..total],
            encoded: &buf[..total],
        }),
        total,
    ))
}

/// The SFrame metadata authenticated with each record: header hash, pts, flags.
pub fn record_metadata(header_hash: &Digest32, pts: u64, flags: RecordFlags) -> [u8; 41] {
    let mut m = [0u8; 41];
    m[..32].copy_from_slice(header_hash);
    m[32..40].copy_from_slice(&pts.to_be_bytes());
    m[40] = flags.bits();
    m
}

/// BLAKE3 of one encoded record (length prefix included): computed by whoever sealed it,
/// while the bytes are still in cache, and folded into the [`RecordsDigest`] in order.
pub fn record_digest(encoded_record: &[u8]) -> Digest32 {
    blake3::hash(encoded_record).into()
}

/// The running records digest (FORMAT.md §4): `R_0 = BLAKE3(context || header_hash)`, then
/// `R_{i+1} = BLAKE3(R_i || d_i)` where `d_i` is [`record_digest`] of record `i`. Folding one
/// 64-byte block per record keeps the in-order part cheap; the per-record hashing can run
/// on any thread.
#[derive(Clone, Debug)]
pub struct RecordsDigest {
    value: Digest32,
    count: u64,
}

impl RecordsDigest {
    /// The digest of no records of the segment with this header hash.
    pub fn new(header_hash: &Digest32) -> RecordsDigest {
        let mut h = blake3::Hasher::new();
        h.update(RECORDS_DIGEST_CONTEXT);
        h.update(header_hash);
        RecordsDigest {
            value: h.finalize().into(),
            count: 0,
        }
    }

    /// The digest of a segment's first `count` records, as given by someone else (a live
    /// stream joined mid-segment). Only a signature over a digest folded on from it makes
    /// it worth anything.
    pub fn resumed(value: Digest32, count: u64) -> RecordsDigest {
        RecordsDigest { value, count }
    }

    /// Folds in the next record's digest.
    pub fn push(&mut self, record_digest: &Digest32) {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.value);
        block[32..].copy_from_slice(record_digest);
        self.value = blake3::hash(&block).into();
        self.count += 1;
    }

    /// The digest over the records pushed so far.
    pub fn value(&self) -> Digest32 {
        self.value
    }

    /// Records pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The message the camera signs for a header: context and header hash.
pub fn header_message(header_hash: &Digest32) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_SIGNATURE_CONTEXT.len() + 32);
    m.extend_from_slice(HEADER_SIGNATURE_CONTEXT);
    m.extend_from_slice(header_hash);
    m
}

/// The message the camera signs in a checkpoint.
pub fn checkpoint_message(
    header_hash: &Digest32,
    record_count: u64,
    records_digest: &Digest32,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_SIGNATURE_CONTEXT.len() + 72);
    m.extend_from_slice(CHECKPOINT_SIGNATURE_CONTEXT);
    m.extend_from_slice(header_hash);
    m.extend_from_slice(&record_count.to_be_bytes());
    m.extend_from_slice(records_digest);
    m
}

/// The message the camera signs in the trailer.
pub fn trailer_message(
    header_hash: &Digest32,
    flags: TrailerFlags,
    record_count: u64,
    records_digest: &Digest32,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(TRAILER_SIGNATURE_CONTEXT.len() + 73);
    m.extend_from_slice(TRAILER_SIGNATURE_CONTEXT);
    m.extend_from_slice(header_hash);
    m.push(flags.bits());
    m.extend_from_slice(&record_count.to_be_bytes());
    m.extend_from_slice(records_digest);
    m
}

/// Verifies a camera signature the way FORMAT.md §2.3 specifies: RFC 8032 Ed25519 with a
/// canonical `S` (below the group order), a canonical encoding of the key `A`, and neither
/// `A` nor `R` of small order (ed25519-dalek's `verify_strict`).
pub fn verify_camera_signature(
    camera_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SegmentError> {
    let key = VerifyingKey::from_bytes(camera_key).map_err(|_| SegmentError::BadSignature)?;
    // `from_bytes` accepts a non-canonical y coordinate (>= p); the spec does not.
    if key.to_bytes() != *camera_key {
        return Err(SegmentError::BadSignature);
    }
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| SegmentError::BadSignature)
}

/// The camera id for a camera public key (see [`crate::keys::CameraPublic::id`]).
pub fn camera_id(camera_key: &[u8; 32]) -> String {
    crate::keys::CameraPublic {
        ed25519: *camera_key,
    }
    .id()
}

/// HPKE `info` for wrapping a segment key: binds camera, stream and sequence number.
pub fn hpke_info(camera_key: &[u8; 32], stream_id: u32, segment_seq: u64) -> Vec<u8> {
    let mut info = Vec::with_capacity(HPKE_INFO_CONTEXT.len() + 44);
    info.extend_from_slice(HPKE_INFO_CONTEXT);
    info.extend_from_slice(camera_key);
    info.extend_from_slice(&stream_id.to_be_bytes());
    info.extend_from_slice(&segment_seq.to_be_bytes());
    info
}

/// The stanza key id for a recipient public key.
pub fn key_id(public_key: &[u8]) -> [u8; 8] {
    let d = Sha256::digest(public_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    id
}

/// Errors reading, verifying or writing segments. Each names one way a segment can be bad.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The bytes do not start with the segment magic.
    #[error("not a camseal segment (bad magic)")]
    NotASegment,
    /// A format version this build does not read.
    #[error("unsupported segment format version {0}")]
    UnsupportedVersion(u8),
    /// A cipher suite this build does not support.
    #[error("unsupported cipher suite 0x{0:04x}")]
    UnsupportedSuite(u16),
    /// Structurally invalid.
    #[error("malformed segment: {0}")]
    Malformed(&'static str),
    /// The segment ends before its trailer.
    #[error("segment is truncated: {0}")]
    Truncated(&'static str),
    /// Bytes follow the trailer.
    #[error("segment has data after its trailer")]
    TrailingData,
    /// No stanza opens with the given key.
    #[error("not a recipient: this segment's key was not wrapped to your key")]
    NotARecipient,
    /// The header MAC did not verify: the header was modified.
    #[error("header is tampered (header MAC mismatch)")]
    HeaderTampered,
    /// A record failed authentication.
    #[error("record {index} is tampered (authentication failed)")]
    RecordTampered {
        /// Index of the record.
        index: u64,
    },
    /// A record with an unexpected counter: records were reordered, dropped or duplicated.
    #[error(
        "record {expected} expected but record {found} found: records were reordered, dropped or duplicated"
    )]
    OutOfOrder {
        /// The index the reader expected.
        expected: u64,
        /// The counter found in the record.
        found: u64,
    },
    /// A record carries a KID other than the segment's sequence number.
    #[error("record belongs to segment {found}, not {expected}")]
    WrongSegment {
        /// The header's sequence number.
        expected: u64,
        /// The KID found.
        found: u64,
    },
    /// The final record is empty.
    #[error("final record is empty")]
    EmptyFinal,
    /// A record follows the final record.
    #[error("record after the final record")]
    RecordAfterFinal,
    /// The trailer arrived with no final record before it.
    #[error("segment has no final record")]
    NoFinal,
    /// The trailer's count or hash disagrees with the records: the trailer was modified, or
    /// records were removed.
    #[error("trailer is tampered: {0}")]
    TrailerTampered(&'static str),
    /// A camera signature over a checkpoint or the trailer does not verify.
    #[error("segment is tampered: the camera's signature is invalid")]
    BadSignature,
    /// The camera's signature over the header does not verify: nothing in the header (its
    /// recipients, gaps or crash declarations) may be believed.
    #[error("header is tampered or forged: the camera's header signature is invalid")]
    BadHeaderSignature,
    /// A checkpoint disagrees with the records before it.
    #[error("checkpoint is tampered: {0}")]
    CheckpointTampered(&'static str),
    /// The segment was signed by a camera other than the expected one.
    #[error("wrong camera: segment is from camera {found}, expected camera {expected}")]
    WrongCamera {
        /// Expected camera id.
        expected: String,
        /// Camera id in the segment.
        found: String,
    },
    /// Writing the segment failed.
    #[error("cannot write segment: {0}")]
    Io(#[from] std::io::Error),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    /// Key wrapping failed.
    #[error("key wrapping failed: {0}")]
    Wrap(&'static str),
    /// Randomness was unavailable.
    #[error("the OS random number generator failed")]
    Random,
    /// A record or argument exceeds a format limit.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
}

/// Longest segment header a reader accepts: 1 MiB (FORMAT.md §2).
pub const MAX_HEADER_LEN: usize = 1 << 20;
/// Most recipient stanzas a header may carry (FORMAT.md §2).
pub const MAX_STANZAS: usize = 1024;

/// Largest plaintext one record may hold: 16 MiB.
pub const MAX_RECORD_PLAINTEXT: usize = 16 << 20;

const MAGIC: &[u8; 4] = b"CSEG";
/// The format version this build reads and writes.
pub const VERSION: u8 = 2;
/// A record length that no record can have; it introduces the trailer.
pub(crate) const TRAILER_MARKER: u32 = 0xFFFF_FFFF;
/// A record length that no record can have; it introduces a checkpoint.
pub(crate) const CHECKPOINT_MARKER: u32 = 0xFFFF_FFFE;
/// flags + pts + smallest SFrame header + tag.
const MIN_RECORD_BODY: usize = 1 + 8 + 1 + 16;
/// A padded record's plaintext may be the 16 MiB bucket plus its padding length.
const MAX_RECORD_BODY: usize =
    1 + 8 + crate::seal::MAX_HEADER_LEN + MAX_RECORD_PLAINTEXT + padding::PAD_LEN_BYTES + 16;
/// Header extension type of a [`Gap`].
const EXT_GAP: u16 = 0x0001;
const HEADER_SIGNATURE_CONTEXT: &[u8] = b"camseal v2 segment header\0";
const CHECKPOINT_SIGNATURE_CONTEXT: &[u8] = b"camseal v2 segment checkpoint\0";
const TRAILER_SIGNATURE_CONTEXT: &[u8] = b"camseal v2 segment trailer\0";
const RECORDS_DIGEST_CONTEXT: &[u8] = b"camseal v2 records digest\0";
const HPKE_INFO_CONTEXT: &[u8] = b"camseal v2 segment key\0";
/// HKDF info for the header MAC key.
pub(crate) const HEADER_MAC_INFO: &[u8] = b"camseal v2 header mac";

/// A length as its big-endian 16-bit field, or `Limit(what)` when it does not fit.
fn len16(len: usize, what: &'static str) -> Result<[u8; 2], SegmentError> {
    u16::try_from(len)
        .map(u16::to_be_bytes)
        .map_err(|_| SegmentError::Limit(what))
}

fn codec_code(codec: Codec) -> u8 {
    match codec {
        Codec::H264 => 1,
        Codec::H265 => 2,
    }
}

/// Extensions are TLVs (`type u16 | len u16 | value`). Types below 0x8000 are critical: a
/// reader that does not know one must refuse the segment. v2 defines the gap (0x0001) and
/// the padding announcement (0x0002, at most once).
fn check_extensions(mut ext: &[u8]) -> Result<(), SegmentError> {
    let mut padding_seen = false;
    while !ext.is_empty() {
        if ext.len() < 4 {
            return Err(SegmentError::Malformed("truncated header extension"));
        }
        let ty = u16::from_be_bytes([ext[0], ext[1]]);
        let len = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        if ext.len() < 4 + len {
            return Err(SegmentError::Malformed("truncated header extension"));
        }
        if ty == EXT_GAP {
            Gap::parse(&ext[4..4 + len])?;
        } else if ty == padding::EXT_PADDING {
            padding::Padding::from_extension_value(&ext[4..4 + len])?;
            if padding_seen {
                return Err(SegmentError::Malformed("padding is announced twice"));
            }
            padding_seen = true;
        } else if ty < 0x8000 {
            return Err(SegmentError::Malformed("unknown critical header extension"));
        }
        ext = &ext[4 + len..];
    }
    Ok(())
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(array_at(b))
}

/// The first `N` bytes of `b`; callers pass slices of exactly `N` bytes.
fn array_at<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    needed: usize,
    /// Bytes taken, for [`HeaderParser::examined`].
    examined: usize,
}

impl<'a> Cursor<'a> {
    /// `None` also when the bytes would end past [`MAX_HEADER_LEN`] (then `needed` says so).
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos + n;
        if end > MAX_HEADER_LEN {
            self.needed = end;
            return None;
        }
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                self.examined += n;
                Some(s)
            }
            None => {
                self.needed = end;
                None
            }
        }
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.array()?))
    }
}
