//! Sealing a segment: the pure [`SegmentSealer`] (shareable by seal workers) and the
//! [`SegmentWriter`] shell that appends records to any `Write` in order.

use std::io::Write;

use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use hmac::{KeyInit, Mac};
use hpke::{Deserializable, Serializable};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::padding::{self, Padding};
use super::{
    Checkpoint, Digest32, Gap, HEADER_MAC_INFO, Header, MAX_RECORD_PLAINTEXT, RecordFlags,
    RecordsDigest, SegmentEnd, SegmentError, Stanza, Trailer, TrailerFlags, checkpoint_message,
    encode_gap_extensions, header_message, hpke_info, key_id, record_digest, record_metadata,
    trailer_message,
};
use crate::nal::Codec;
use crate::seal::{SframeHeader, SframeKey, SframeSuite};

/// Most gaps one header records (the extension area is limited to 64 KiB).
pub const MAX_GAPS: usize = 1000;

/// Bytes before a record's SFrame ciphertext: `record_len` (4), `flags` (1), `pts` (8).
pub const RECORD_PREFIX_LEN: usize = 13;

/// HPKE KEM id of DHKEM(X25519, HKDF-SHA256).
pub const HPKE_KEM_X25519: u16 = 0x0020;
/// HPKE KEM id of X-Wing (ML-KEM-768 + X25519).
pub const HPKE_KEM_XWING: u16 = crate::keys::KEM_XWING;
/// HPKE KDF id of HKDF-SHA256.
pub const HPKE_KDF_SHA256: u16 = 0x0001;
/// HPKE AEAD id of AES-128-GCM.
pub const HPKE_AEAD_AES128GCM: u16 = 0x0001;

/// A recipient public key the segment key is wrapped to.
#[derive(Clone, Copy, Debug)]
pub struct RecipientKey<'a> {
    /// HPKE KEM id: [`HPKE_KEM_X25519`] or [`HPKE_KEM_XWING`].
    pub kem: u16,
    /// The encoded public key.
    pub public_key: &'a [u8],
}

/// Everything in a header that the caller chooses.
#[derive(Clone, Debug)]
pub struct SegmentParams<'a> {
    /// Media cipher suite.
    pub suite: SframeSuite,
    /// Codec of the video.
    pub codec: Codec,
    /// Stream number within the camera.
    pub stream_id: u32,
    /// Sequence number within the stream.
    pub segment_seq: u64,
    /// pts of the first frame (90 kHz).
    pub start_pts: u64,
    /// Unix milliseconds when the segment opened.
    pub wallclock_ms: u64,
    /// Header hash of the predecessor segment of the stream (zero for the first).
    pub prev_header_hash: Digest32,
    /// Who may open the segment.
    pub recipients: &'a [RecipientKey<'a>],
    /// Losses to record in this header (usually empty).
    pub gaps: &'a [Gap],
    /// Whether video records are padded to size buckets (FORMAT.md §3.1).
    pub padding: Padding,
}

/// Where the segment key and the HPKE ephemeral keys come from.
#[derive(Clone)]
pub enum Randomness {
    /// The OS CSPRNG. The only choice outside tests.
    Os,
    /// Deterministic bytes expanded from a seed, for test vectors and reproducibility tests.
    /// Never use it to seal real footage: every segment sealed with the same seed reuses the
    /// same key.
    FixedForTests([u8; 32]),
}

/// The bytes [`Randomness::FixedForTests`] expands `seed` into: the segment base key and one
/// 32-byte HPKE ephemeral seed (`ikmE`) per recipient. Published in the test vectors so that
/// other implementations can reproduce them without this expansion.
pub fn fixed_test_randomness(seed: [u8; 32], recipients: usize) -> ([u8; 32], Vec<[u8; 32]>) {
    // Only fails if the OS RNG fails, which `FixedForTests` never calls.
    let r = SegmentRandom::new(&Randomness::FixedForTests(seed), recipients)
        .expect("fixed randomness cannot fail");
    let mut eph: Vec<[u8; 32]> = r
        .ephemerals
        .iter()
        .map(|e| {
            let mut ikm = [0u8; 32];
            ikm.copy_from_slice(&e[..32]);
            ikm
        })
        .collect();
    eph.reverse();
    (*r.base_key, eph)
}

/// Like [`fixed_test_randomness`], but each recipient's whole 64-byte ephemeral seed: an
/// X-Wing recipient's `eseed` (an X25519 recipient's `ikmE` is its first 32 bytes).
pub fn fixed_test_eseeds(seed: [u8; 32], recipients: usize) -> Vec<[u8; 64]> {
    // Only fails if the OS RNG fails, which `FixedForTests` never calls.
    let r = SegmentRandom::new(&Randomness::FixedForTests(seed), recipients)
        .expect("fixed randomness cannot fail");
    let mut eph: Vec<[u8; 64]> = r.ephemerals.iter().map(|e| **e).collect();
    eph.reverse();
    eph
}

/// Summary of a finished segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// SHA-256 of the header (what the next segment names as `prev_header_hash`).
    pub header_hash: Digest32,
    /// The records digest the trailer signs.
    pub records_digest: Digest32,
    /// Checkpoints written, the one before the trailer included.
    pub checkpoints: u64,
    /// Records written, the final one included.
    pub record_count: u64,
    /// Total bytes of the segment.
    pub bytes: u64,
}

/// The pure half of sealing: the header and the record keys. `Sync`, so seal workers can
/// share one sealer and seal records of one segment in parallel.
pub struct SegmentSealer {
    header: Header,
    header_bytes: Vec<u8>,
    header_hash: Digest32,
    key: SframeKey,
    padding: Padding,
}

/// A fresh segment key, wrapped (HPKE) to every recipient: the costly half of opening a
/// segment. It depends only on the camera, stream, sequence number, suite and recipients, not
/// on anything known only when the segment opens (start pts, the previous digest, gaps), so
/// an engine can make the next segment's key ahead of time, off the frame that opens it.
pub struct WrappedSegmentKey {
    suite: SframeSuite,
    stream_id: u32,
    segment_seq: u64,
    camera_key: [u8; 32],
    recipients: Vec<(u16, Vec<u8>)>,
    base_key: Zeroizing<[u8; 32]>,
    stanzas: Vec<Stanza>,
}

impl WrappedSegmentKey {
    /// Draws a segment key and wraps it to every recipient.
    pub fn new(
        suite: SframeSuite,
        stream_id: u32,
        segment_seq: u64,
        recipients: &[RecipientKey<'_>],
        camera_key: &[u8; 32],
        randomness: &Randomness,
    ) -> Result<WrappedSegmentKey, SegmentError> {
        if recipients.is_empty() {
            return Err(SegmentError::Wrap("no recipients"));
        }
        if recipients.len() > super::MAX_STANZAS {
            return Err(SegmentError::Limit(
                "more recipients than a header may carry (1024)",
            ));
        }
        // Readers refuse a header with two stanzas of one suite and key id (`Header::parse`).
        let mut seen = std::collections::HashSet::with_capacity(recipients.len());
        for r in recipients {
            if !seen.insert((r.kem, key_id(r.public_key))) {
                return Err(SegmentError::Wrap("the same recipient key is given twice"));
            }
        }
        let mut rng = SegmentRandom::new(randomness, recipients.len())?;
        let base_key = rng.base_key.clone();
        let info = hpke_info(camera_key, stream_id, segment_seq);
        let mut stanzas = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            stanzas.push(wrap(recipient, &info, &base_key[..], &mut rng)?);
        }
        Ok(WrappedSegmentKey {
            suite,
            stream_id,
            segment_seq,
            camera_key: *camera_key,
            recipients: recipients
                .iter()
                .map(|r| (r.kem, r.public_key.to_vec()))
                .collect(),
            base_key,
            stanzas,
        })
    }

    /// The segment sequence number it was wrapped for.
    pub fn segment_seq(&self) -> u64 {
        self.segment_seq
    }

    /// Whether it was wrapped for exactly this segment: the HPKE `info` binds the camera,
    /// stream and sequence number, and the stanzas name the recipients.
    /// Whether this key was made for the segment `params` describes (same camera, stream,
    /// sequence number, suite and recipients), so [`SegmentSealer::with_key`] takes it.
    pub fn fits(&self, params: &SegmentParams<'_>, camera_key: &[u8; 32]) -> bool {
        self.suite == params.suite
            && self.stream_id == params.stream_id
            && self.segment_seq == params.segment_seq
            && self.camera_key == *camera_key
            && self.recipients.len() == params.recipients.len()
            && self
                .recipients
                .iter()
                .zip(params.recipients)
                .all(|((kem, pk), r)| *kem == r.kem && pk[..] == *r.public_key)
    }
}

impl SegmentSealer {
    /// Draws a segment key, wraps it to every recipient, and builds and signs the header.
    pub fn new(
        params: &SegmentParams<'_>,
        camera: &SigningKey,
        randomness: &Randomness,
    ) -> Result<SegmentSealer, SegmentError> {
        let key = WrappedSegmentKey::new(
            params.suite,
            params.stream_id,
            params.segment_seq,
            params.recipients,
            &camera.verifying_key().to_bytes(),
            randomness,
        )?;
        SegmentSealer::with_key(params, camera, key)
    }

    /// Builds and signs the header around a key wrapped ahead of time; refuses a key
    /// wrapped for another segment, camera, suite or set of recipients.
    pub fn with_key(
        params: &SegmentParams<'_>,
        camera: &SigningKey,
        key: WrappedSegmentKey,
    ) -> Result<SegmentSealer, SegmentError> {
        let camera_key = &camera.verifying_key().to_bytes();
        if params.gaps.len() > MAX_GAPS {
            return Err(SegmentError::Limit("too many gaps in one header"));
        }
        if !key.fits(params, camera_key) {
            return Err(SegmentError::Wrap(
                "the wrapped key was made for another segment",
            ));
        }
        let WrappedSegmentKey {
            base_key, stanzas, ..
        } = key;
        let mut header = Header {
            suite: params.suite,
            codec: params.codec,
            camera_key: *camera_key,
            stream_id: params.stream_id,
            segment_seq: params.segment_seq,
            start_pts: params.start_pts,
            wallclock_ms: params.wallclock_ms,
            prev_header_hash: params.prev_header_hash,
            extensions: encode_extensions(params.padding, params.gaps),
            stanzas,
            mac: [0u8; 32],
            signature: [0u8; 64],
        };
        // Never sign a header that readers must refuse (FORMAT.md §2.4).
        header.validate()?;
        header.mac = header_mac(&base_key[..], &header.encode_unmaced()?);
        let header_hash: Digest32 = Sha256::digest(header.encode_unsigned()?).into();
        header.signature = camera.sign(&header_message(&header_hash)).to_bytes();
        let header_bytes = header.encode()?;
        let key = SframeKey::derive(params.suite, params.segment_seq, &base_key[..])?;
        Ok(SegmentSealer {
            header,
            header_bytes,
            header_hash,
            key,
            padding: params.padding,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The encoded header, written first.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// SHA-256 of the encoded header.
    pub fn header_hash(&self) -> &Digest32 {
        &self.header_hash
    }

    /// Seals `plaintext` as record number `index` and appends the encoded record to `out`.
    pub fn seal_record(
        &self,
        index: u64,
        pts: u64,
        flags: RecordFlags,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SegmentError> {
        if plaintext.len() > MAX_RECORD_PLAINTEXT {
            return Err(SegmentError::Limit("record plaintext larger than 16 MiB"));
        }
        let start = out.len();
        out.extend_from_slice(&[0u8; 4]);
        out.push(flags.bits());
        out.extend_from_slice(&pts.to_be_bytes());
        let metadata = record_metadata(&self.header_hash, pts, flags);
        if self.pads(flags) {
            let mut padded = Zeroizing::new(Vec::new());
            padding::pad_into(plaintext, &mut padded);
            self.key.seal_append(index, &metadata, &padded, out)?;
        } else {
            self.key.seal_append(index, &metadata, plaintext, out)?;
        }
        // Bounded by MAX_RECORD_PLAINTEXT plus a few dozen bytes, so it fits in u32.
        let body_len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&body_len.to_be_bytes());
        Ok(())
    }

    /// Seals `plaintext` as record number `index` into the start of `out` (a pooled buffer
    /// of at least [`record_len`](SegmentSealer::record_len) bytes) and returns the record's
    /// length. The plaintext is read once and each output byte written once; nothing is
    /// allocated.
    pub fn seal_record_into(
        &self,
        index: u64,
        pts: u64,
        flags: RecordFlags,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SegmentError> {
        if plaintext.len() > MAX_RECORD_PLAINTEXT {
            return Err(SegmentError::Limit("record plaintext larger than 16 MiB"));
        }
        let sealed_len = if self.pads(flags) {
            self.padding.sealed_plaintext_len(plaintext.len())
        } else {
            plaintext.len()
        };
        let len = RECORD_PREFIX_LEN + self.key.sealed_len(index, sealed_len);
        let Some(out) = out.get_mut(..len) else {
            return Err(SegmentError::Limit("record buffer too small"));
        };
        let (prefix, sframe) = out.split_at_mut(RECORD_PREFIX_LEN);
        // Bounded by MAX_RECORD_PLAINTEXT plus a few dozen bytes, so it fits in u32.
        prefix[..4].copy_from_slice(&((len - 4) as u32).to_be_bytes());
        prefix[4] = flags.bits();
        prefix[5..].copy_from_slice(&pts.to_be_bytes());
        let metadata = record_metadata(&self.header_hash, pts, flags);
        if self.pads(flags) {
            // The padded plaintext is built where it is encrypted: one copy of the video
            // bytes, no buffer in between.
            let mut filled = Ok(());
            self.key.seal_filled_into(
                index,
                &metadata,
                sealed_len,
                |body| filled = padding::pad_in_place(plaintext, body),
                sframe,
            )?;
            filled?;
        } else {
            self.key.seal_into(index, &metadata, plaintext, sframe)?;
        }
        Ok(len)
    }

    /// The encoded length of video record `index` with a `plaintext_len`-byte plaintext
    /// (padding included): known before sealing, so a writer can account for a segment's
    /// size, and size its buffers, up front.
    pub fn record_len(&self, index: u64, plaintext_len: usize) -> usize {
        RECORD_PREFIX_LEN
            + self
                .key
                .sealed_len(index, self.padding.sealed_plaintext_len(plaintext_len))
    }

    /// How this segment's video records are padded.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// The segment sequence number (the SFrame KID).
    pub fn segment_seq(&self) -> u64 {
        self.header.segment_seq
    }

    /// Whether a record with these flags is padded: every video record of a padded
    /// segment. The final record's size is fixed and public (FORMAT.md §3), so padding it
    /// would hide nothing.
    fn pads(&self, flags: RecordFlags) -> bool {
        self.padding == Padding::Buckets && !flags.is_final()
    }
}

/// When the camera signs a checkpoint (FORMAT.md §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Sign a checkpoint before the first record of a frame that starts at least this many
    /// 90 kHz ticks after the last checkpoint (or the segment's first record).
    pub interval_ticks: u64,
    /// Also sign one, even inside a frame, once this many record bytes are unsigned: it
    /// bounds what a reader must hold back before a signature covers it.
    pub max_unsigned_bytes: u64,
}

impl CheckpointPolicy {
    /// A checkpoint every `interval_ms` of video (at least 1 ms), and every 8 MiB.
    pub fn every_ms(interval_ms: u64) -> CheckpointPolicy {
        CheckpointPolicy {
            interval_ticks: interval_ms.max(1).saturating_mul(90),
            max_unsigned_bytes: 8 << 20,
        }
    }
}

impl Default for CheckpointPolicy {
    /// One checkpoint per second of video.
    fn default() -> CheckpointPolicy {
        CheckpointPolicy::every_ms(1000)
    }
}

/// The in-order half of parallel sealing: takes records already sealed by
/// [`SegmentSealer::seal_record_into`] (on any thread), in index order, with their
/// [`record_digest`] (also computed on any thread), folds them into the records digest,
/// signs checkpoints as the [`CheckpointPolicy`] asks, and builds the signed trailer. It
/// never touches the record bytes beyond their 13-byte prefix and SFrame header, so the
/// caller writes them out from wherever they were sealed.
pub struct RecordAppender {
    header_hash: Digest32,
    kid: u64,
    camera: SigningKey,
    digest: RecordsDigest,
    policy: CheckpointPolicy,
    /// Records covered by the last checkpoint.
    signed_count: u64,
    /// pts of the first record after the last checkpoint (or of the segment's first).
    checkpoint_pts: Option<u64>,
    last_pts: Option<u64>,
    unsigned_bytes: u64,
    checkpoints: u64,
    bytes: u64,
    finished: bool,
}

impl RecordAppender {
    /// An appender for the segment `sealer` seals, signing with `camera`. The header is
    /// counted in [`bytes`](RecordAppender::bytes) (the caller writes it first).
    pub fn new(
        sealer: &SegmentSealer,
        camera: &SigningKey,
        policy: CheckpointPolicy,
    ) -> RecordAppender {
        RecordAppender {
            header_hash: sealer.header_hash,
            kid: sealer.header.segment_seq,
            camera: camera.clone(),
            digest: RecordsDigest::new(&sealer.header_hash),
            policy,
            signed_count: 0,
            checkpoint_pts: None,
            last_pts: None,
            unsigned_bytes: 0,
            checkpoints: 0,
            bytes: sealer.header_bytes.len() as u64,
            finished: false,
        }
    }

    /// Takes the next record and its [`record_digest`]. Checks that it is record number
    /// [`record_count`](RecordAppender::record_count) of this segment (KID and CTR in its
    /// SFrame header) and that no final record came before it. Returns the checkpoint the
    /// policy asks for, if any: the caller writes it *before* the record.
    pub fn append(
        &mut self,
        record: &[u8],
        record_digest: &Digest32,
    ) -> Result<Option<[u8; Checkpoint::LEN]>, SegmentError> {
        let parsed = record
            .get(RECORD_PREFIX_LEN..)
            .ok_or(SegmentError::Malformed("record shorter than its prefix"))
            .and_then(|sframe| SframeHeader::parse(sframe).map_err(SegmentError::from))?;
        let (header, _) = parsed;
        if self.finished || header.kid != self.kid || header.ctr != self.digest.count() {
            return Err(SegmentError::Malformed("record appended out of order"));
        }
        let mut pts = [0u8; 8];
        pts.copy_from_slice(&record[5..RECORD_PREFIX_LEN]);
        let pts = u64::from_be_bytes(pts);
        let new_frame = self.last_pts != Some(pts);
        let due_by_time = new_frame
            && self
                .checkpoint_pts
                .is_some_and(|at| pts.saturating_sub(at) >= self.policy.interval_ticks);
        let due_by_size = self.unsigned_bytes >= self.policy.max_unsigned_bytes;
        let checkpoint = if self.digest.count() > self.signed_count && (due_by_time || due_by_size)
        {
            self.checkpoint_pts = Some(pts);
            Some(self.sign_checkpoint())
        } else {
            None
        };
        self.checkpoint_pts.get_or_insert(pts);
        self.last_pts = Some(pts);
        self.finished = record[4] & RecordFlags::FINAL != 0;
        self.digest.push(record_digest);
        self.unsigned_bytes += record.len() as u64;
        self.bytes += record.len() as u64;
        Ok(checkpoint)
    }

    /// Records taken so far.
    pub fn record_count(&self) -> u64 {
        self.digest.count()
    }

    /// Segment bytes so far: the header, the records and the checkpoints.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Signs the last checkpoint and the trailer once the final record is in; returns their
    /// bytes (to be written in this order) and the segment's summary (both included in
    /// `bytes`). `end_of_stream`: the camera ends the stream with this segment.
    pub fn finish(
        mut self,
        end_of_stream: bool,
    ) -> Result<(Vec<u8>, SegmentSummary), SegmentError> {
        if !self.finished {
            return Err(SegmentError::Malformed("trailer before the final record"));
        }
        let mut out = Vec::with_capacity(Checkpoint::LEN + Trailer::LEN);
        out.extend_from_slice(&self.sign_checkpoint());
        let records_digest = self.digest.value();
        let flags = TrailerFlags::new(end_of_stream);
        let message = trailer_message(
            &self.header_hash,
            flags,
            self.digest.count(),
            &records_digest,
        );
        let trailer = Trailer {
            flags,
            record_count: self.digest.count(),
            records_digest,
            signature: self.camera.sign(&message).to_bytes(),
        };
        out.extend_from_slice(&trailer.encode());
        let summary = SegmentSummary {
            header_hash: self.header_hash,
            records_digest,
            checkpoints: self.checkpoints,
            record_count: self.digest.count(),
            bytes: self.bytes + Trailer::LEN as u64,
        };
        Ok((out, summary))
    }

    fn sign_checkpoint(&mut self) -> [u8; Checkpoint::LEN] {
        let records_digest = self.digest.value();
        let message = checkpoint_message(&self.header_hash, self.digest.count(), &records_digest);
        let checkpoint = Checkpoint {
            record_count: self.digest.count(),
            records_digest,
            signature: self.camera.sign(&message).to_bytes(),
        };
        self.signed_count = self.digest.count();
        self.unsigned_bytes = 0;
        self.checkpoints += 1;
        self.bytes += Checkpoint::LEN as u64;
        checkpoint.encode()
    }
}

/// Writes one segment to `W`: the header at creation, records in order, the trailer at
/// [`finish`](SegmentWriter::finish). Dropping a writer without `finish` leaves a segment
/// that every reader reports as truncated.
pub struct SegmentWriter<W: Write> {
    sealer: SegmentSealer,
    appender: RecordAppender,
    out: W,
    scratch: Vec<u8>,
}

impl<W: Write> SegmentWriter<W> {
    /// Builds the header and writes it to `out`.
    pub fn create(
        mut out: W,
        params: &SegmentParams<'_>,
        camera: &SigningKey,
        randomness: &Randomness,
    ) -> Result<SegmentWriter<W>, SegmentError> {
        let sealer = SegmentSealer::new(params, camera, randomness)?;
        out.write_all(sealer.header_bytes())?;
        let appender = RecordAppender::new(&sealer, camera, CheckpointPolicy::default());
        Ok(SegmentWriter {
            sealer,
            appender,
            out,
            scratch: Vec::new(),
        })
    }

    /// The header written.
    pub fn header(&self) -> &Header {
        self.sealer.header()
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.appender.bytes()
    }

    /// Records written so far.
    pub fn record_count(&self) -> u64 {
        self.appender.record_count()
    }

    /// Seals and appends one video record.
    pub fn append(
        &mut self,
        pts: u64,
        keyframe: bool,
        continuation: bool,
        plaintext: &[u8],
    ) -> Result<(), SegmentError> {
        let flags = RecordFlags::video(keyframe, continuation);
        self.append_with_flags(pts, flags, plaintext)
    }

    /// Uses `policy` for the checkpoints of the records appended from now on.
    pub fn with_checkpoints(mut self, policy: CheckpointPolicy) -> SegmentWriter<W> {
        self.appender.policy = policy;
        self
    }

    /// Seals the final record, the last checkpoint and the signed trailer, flushes, and
    /// returns the sink. The trailer marks the end of the stream when `end.reason` says the
    /// camera stopped (shutdown or end of source).
    pub fn finish(mut self, end: SegmentEnd) -> Result<(W, SegmentSummary), SegmentError> {
        self.append_with_flags(end.end_pts, RecordFlags::final_record(), &end.encode())?;
        let (tail, summary) = self.appender.finish(end.reason.ends_stream())?;
        self.out.write_all(&tail)?;
        self.out.flush()?;
        Ok((self.out, summary))
    }

    fn append_with_flags(
        &mut self,
        pts: u64,
        flags: RecordFlags,
        plaintext: &[u8],
    ) -> Result<(), SegmentError> {
        self.scratch.clear();
        self.sealer.seal_record(
            self.appender.record_count(),
            pts,
            flags,
            plaintext,
            &mut self.scratch,
        )?;
        let digest = record_digest(&self.scratch);
        if let Some(checkpoint) = self.appender.append(&self.scratch, &digest)? {
            self.out.write_all(&checkpoint)?;
        }
        self.out.write_all(&self.scratch)?;
        Ok(())
    }
}

/// The extension area of a header: the padding announcement (if any), then the gaps.
fn encode_extensions(padding: Padding, gaps: &[Gap]) -> Vec<u8> {
    let mut out = padding.extension().map_or_else(Vec::new, |e| e.to_vec());
    out.extend_from_slice(&encode_gap_extensions(gaps));
    out
}

/// Computes the header MAC with a key derived from the segment base key.
pub(crate) fn header_mac(base_key: &[u8], unmaced: &[u8]) -> Digest32 {
    let hk = Hkdf::<Sha256>::new(Some(&[]), base_key);
    let mut mac_key = Zeroizing::new([0u8; 32]);
    // 32 bytes is a valid HKDF-SHA256 output length.
    hk.expand(HEADER_MAC_INFO, &mut mac_key[..])
        .expect("valid HKDF length");
    // HMAC accepts keys of any length.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key[..])
        .expect("HMAC takes any key length");
    mac.update(unmaced);
    mac.finalize().into_bytes().into()
}

fn wrap(
    recipient: &RecipientKey<'_>,
    info: &[u8],
    base_key: &[u8],
    rng: &mut SegmentRandom,
) -> Result<Stanza, SegmentError> {
    let (enc, wrapped_key) = match crate::keys::KemKind::from_id(recipient.kem) {
        Some(crate::keys::KemKind::X25519) => {
            let seed = rng.ephemeral()?;
            let mut ikm_e = Zeroizing::new([0u8; 32]);
            ikm_e.copy_from_slice(&seed[..32]);
            hpke_seal(recipient.public_key, info, b"", base_key, &ikm_e)?
        }
        Some(crate::keys::KemKind::XWing) => {
            let eseed = rng.ephemeral()?;
            hpke_seal_xwing(recipient.public_key, info, b"", base_key, &eseed)?
        }
        None => return Err(SegmentError::Wrap("unsupported recipient key type")),
    };
    Ok(Stanza {
        kem: recipient.kem,
        kdf: HPKE_KDF_SHA256,
        aead: HPKE_AEAD_AES128GCM,
        key_id: key_id(recipient.public_key),
        enc,
        wrapped_key,
    })
}

/// HPKE base-mode single-shot seal with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
/// AES-128-GCM (RFC 9180 §6.1), with the ephemeral key derived from `ikm_e` by
/// `DeriveKeyPair`. Returns `(enc, ciphertext)`. Exposed for the RFC 9180 vector tests.
pub fn hpke_seal(
    recipient_public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    ikm_e: &[u8; 32],
) -> Result<(Vec<u8>, Vec<u8>), SegmentError> {
    type Kem = hpke::kem::X25519HkdfSha256;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_public)
        .map_err(|_| SegmentError::Wrap("invalid X25519 recipient key"))?;
    seal_with::<Kem>(&pk, info, aad, plaintext, ikm_e)
}

/// HPKE base-mode single-shot seal with X-Wing, HKDF-SHA256 and AES-128-GCM. `eseed` is the
/// 64 bytes of X-Wing `Encapsulate` randomness (draft-connolly-cfrg-xwing-kem
/// `EncapsulateDerand`: 32 for ML-KEM, then 32 for the X25519 ephemeral key). Returns
/// `(enc, ciphertext)`; `enc` is the 1120-byte X-Wing ciphertext.
pub fn hpke_seal_xwing(
    recipient_public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    eseed: &[u8; 64],
) -> Result<(Vec<u8>, Vec<u8>), SegmentError> {
    type Kem = hpke::kem::XWing;
    // Sealing to a key a recipient list would refuse is refused too, with the same checks.
    crate::keys::check_recipient_key(HPKE_KEM_XWING, recipient_public)
        .map_err(|_| SegmentError::Wrap("invalid X-Wing recipient key"))?;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_public)
        .map_err(|_| SegmentError::Wrap("invalid X-Wing recipient key"))?;
    seal_with::<Kem>(&pk, info, aad, plaintext, eseed)
}

fn seal_with<K: hpke::Kem>(
    pk: &K::PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    seed: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SegmentError> {
    let mut eph = EphemeralRng {
        seed: Zeroizing::new(seed.to_vec()),
        used: 0,
        overdrawn: false,
    };
    let (enc, mut ctx) = hpke::setup_sender_with_rng::<
        hpke::aead::AesGcm128,
        hpke::kdf::HkdfSha256,
        K,
    >(&hpke::OpModeS::Base, pk, info, &mut eph)
    .map_err(|_| SegmentError::Wrap("HPKE encapsulation failed"))?;
    // HPKE must draw exactly the seed: more would be zeros, less would leave some unused
    // (a change in how the library draws randomness, which the vectors would not match).
    if eph.overdrawn || eph.used != seed.len() {
        return Err(SegmentError::Wrap(
            "HPKE used another amount of randomness than expected",
        ));
    }
    let ciphertext = ctx
        .seal(plaintext, aad)
        .map_err(|_| SegmentError::Wrap("HPKE seal failed"))?;
    Ok((enc.to_bytes().to_vec(), ciphertext))
}

/// All randomness one segment needs, drawn up front: the base key and one 64-byte
/// ephemeral seed per recipient. X-Wing uses all 64 bytes; X25519 uses the first 32, which
/// with fixed test randomness are the same bytes as a 32-byte draw (HKDF-Expand output is a
/// prefix of any longer output), so vectors made before X-Wing still hold.
struct SegmentRandom {
    base_key: Zeroizing<[u8; 32]>,
    ephemerals: Vec<Zeroizing<[u8; 64]>>,
}

impl SegmentRandom {
    fn new(randomness: &Randomness, recipients: usize) -> Result<SegmentRandom, SegmentError> {
        let fill = |buf: &mut [u8], label: &[u8], index: u64| -> Result<(), SegmentError> {
            match randomness {
                Randomness::Os => getrandom::fill(buf).map_err(|_| SegmentError::Random),
                Randomness::FixedForTests(seed) => {
                    let hk = Hkdf::<Sha256>::new(Some(b"camseal test randomness"), seed);
                    let mut info = label.to_vec();
                    info.extend_from_slice(&index.to_be_bytes());
                    hk.expand(&info, buf).map_err(|_| SegmentError::Random)
                }
            }
        };
        let mut base_key = Zeroizing::new([0u8; 32]);
        fill(&mut base_key[..], b"base key", 0)?;
        let mut ephemerals = Vec::with_capacity(recipients);
        for i in 0..recipients {
            let mut e = Zeroizing::new([0u8; 64]);
            fill(&mut e[..], b"ephemeral", i as u64)?;
            ephemerals.push(e);
        }
        ephemerals.reverse();
        Ok(SegmentRandom {
            base_key,
            ephemerals,
        })
    }

    fn ephemeral(&mut self) -> Result<Zeroizing<[u8; 64]>, SegmentError> {
        self.ephemerals
            .pop()
            .ok_or(SegmentError::Wrap("ran out of ephemeral keys"))
    }
}

/// Hands HPKE exactly the one pre-drawn seed it derives its ephemeral key from (32 bytes for
/// X25519, 64 for X-Wing). If HPKE ever asked for more, it gets zeros and `overdrawn` makes
/// the caller fail, rather than silently weakening the key.
struct EphemeralRng {
    seed: Zeroizing<Vec<u8>>,
    used: usize,
    overdrawn: bool,
}

impl hpke::rand_core::TryRng for EphemeralRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        let available = self.seed.len() - self.used;
        if dest.len() > available {
            self.overdrawn = true;
            dest.fill(0);
            return Ok(());
        }
        dest.copy_from_slice(&self.seed[self.used..self.used + dest.len()]);
        self.used += dest.len();
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for EphemeralRng {}
