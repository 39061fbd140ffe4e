//! Reading a segment: the pure [`Verifier`] (structure, hashes, signature; no key) and
//! [`Opener`] (the same plus decryption), and the [`SegmentReader`] shell that pulls items
//! from any `Read` with one record in memory at a time.

use std::io::Read;

use hmac::{KeyInit, Mac};
use hpke::Deserializable;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::padding::{self, Padding};
use super::write::{HPKE_AEAD_AES128GCM, HPKE_KDF_SHA256};
use super::{
    Checkpoint, Digest32, HEADER_MAC_INFO, Header, HeaderParser, Item, Parsed, RecordFlags,
    RecordView, RecordsDigest, SegmentEnd, SegmentError, TRAILER_MARKER, Trailer, camera_id,
    checkpoint_message, hpke_info, key_id, parse_item, record_digest, record_metadata,
    trailer_message, verify_camera_signature,
};
use crate::keys::{KemKind, RecipientSecret};
use crate::seal::{SealError, SframeHeader, SframeKey, sframe_header_len};

/// What a verified segment amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Records, the final one included.
    pub record_count: u64,
    /// The header hash: what the next segment names as `prev_header_hash`.
    pub header_hash: Digest32,
    /// The records digest the trailer signs.
    pub records_digest: Digest32,
    /// Signed checkpoints seen, the one before the trailer included.
    pub checkpoints: u64,
    /// The trailer says the camera ended the stream with this segment.
    pub end_of_stream: bool,
    /// The end-of-segment summary (only known to an [`Opener`]).
    pub end: Option<SegmentEnd>,
}

/// One opened record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenedRecord {
    /// Index (SFrame CTR).
    pub index: u64,
    /// pts, 90 kHz.
    pub pts: u64,
    /// Flags.
    pub flags: RecordFlags,
    /// For the final record, the end-of-segment summary; its plaintext is not video.
    pub end: Option<SegmentEnd>,
}

/// Checks a segment's structure, records digest, checkpoints and camera signatures without
/// any key. The header's own signature is checked by [`SegmentReader::new`] (or
/// [`Header::verify_signature`]) before a `Verifier` is made for it.
#[derive(Clone)]
pub struct Verifier {
    header_hash: Digest32,
    segment_seq: u64,
    camera_key: [u8; 32],
    digest: RecordsDigest,
    signed_count: u64,
    checkpoints: u64,
    final_seen: bool,
    padding: Padding,
}

impl Verifier {
    /// Starts verifying the segment whose header is `header`.
    pub fn new(header: &Header) -> Verifier {
        let header_hash = header.hash();
        Verifier {
            header_hash,
            segment_seq: header.segment_seq,
            camera_key: header.camera_key,
            digest: RecordsDigest::new(&header_hash),
            signed_count: 0,
            checkpoints: 0,
            final_seen: false,
            padding: header.padding(),
        }
    }

    /// Checks a record's place in the sequence and folds it into the records digest. The
    /// record is not vouched for until a checkpoint or the trailer covers it
    /// ([`signed_count`](Verifier::signed_count)).
    pub fn observe(&mut self, record: &RecordView<'_>) -> Result<u64, SegmentError> {
        if self.final_seen {
            return Err(SegmentError::RecordAfterFinal);
        }
        let (sframe, used) = SframeHeader::parse(record.sframe)
            .map_err(|_| SegmentError::Malformed("bad SFrame header"))?;
        if used != sframe_header_len(sframe.kid, sframe.ctr) {
            return Err(SegmentError::Malformed(
                "SFrame header is not minimally encoded",
            ));
        }
        if sframe.kid != self.segment_seq {
            return Err(SegmentError::WrongSegment {
                expected: self.segment_seq,
                found: sframe.kid,
            });
        }
        if sframe.ctr != self.digest.count() {
            return Err(SegmentError::OutOfOrder {
                expected: self.digest.count(),
                found: sframe.ctr,
            });
        }
        // The final record's plaintext is the 9-byte end summary: its size is public, so a
        // reader without the key checks it too.
        if record.flags.is_final()
            && record.sframe.len() != used + SegmentEnd::LEN + camseal_kernels::TAG_LEN
        {
            return Err(if record.sframe.len() == used + camseal_kernels::TAG_LEN {
                SegmentError::EmptyFinal
            } else {
                SegmentError::Malformed("final record has the wrong size")
            });
        }
        // A padded video record's size is public too: its plaintext must be a bucket plus
        // the padding length (FORMAT.md §3.1).
        if self.padding == Padding::Buckets && !record.flags.is_final() {
            let sealed = record
                .sframe
                .len()
                .checked_sub(used + camseal_kernels::TAG_LEN + padding::PAD_LEN_BYTES);
            if !sealed.is_some_and(padding::is_bucket) {
                return Err(SegmentError::Malformed(
                    "padded record's size is not a padding bucket",
                ));
            }
        }
        let index = self.digest.count();
        self.digest.push(&record_digest(record.encoded));
        self.final_seen = record.flags.is_final();
        Ok(index)
    }

    /// Checks a checkpoint against the records observed before it, and its signature.
    /// Returns how many records are now signed.
    pub fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<u64, SegmentError> {
        let count = self.digest.count();
        if checkpoint.record_count != count {
            return Err(SegmentError::CheckpointTampered(
                "record count does not match the records before it",
            ));
        }
        if count <= self.signed_count {
            return Err(SegmentError::Malformed("checkpoint covers no new records"));
        }
        if !bool::from(checkpoint.records_digest.ct_eq(&self.digest.value())) {
            return Err(SegmentError::CheckpointTampered(
                "records digest does not match",
            ));
        }
        verify_camera_signature(
            &self.camera_key,
            &checkpoint_message(&self.header_hash, count, &checkpoint.records_digest),
            &checkpoint.signature,
        )?;
        self.signed_count = count;
        self.checkpoints += 1;
        Ok(count)
    }

    /// Checks the trailer against what was observed, and the camera's signature.
    pub fn finish(self, trailer: &Trailer) -> Result<Verified, SegmentError> {
        if !self.final_seen {
            return Err(SegmentError::NoFinal);
        }
        let records_digest = self.digest.value();
        if trailer.record_count != self.digest.count() {
            return Err(SegmentError::TrailerTampered("record count does not match"));
        }
        if !bool::from(trailer.records_digest.ct_eq(&records_digest)) {
            return Err(SegmentError::TrailerTampered(
                "records digest does not match",
            ));
        }
        verify_camera_signature(
            &self.camera_key,
            &trailer_message(
                &self.header_hash,
                trailer.flags,
                self.digest.count(),
                &records_digest,
            ),
            &trailer.signature,
        )?;
        Ok(Verified {
            record_count: self.digest.count(),
            header_hash: self.header_hash,
            records_digest,
            checkpoints: self.checkpoints,
            end_of_stream: trailer.flags.end_of_stream(),
            end: None,
        })
    }

    /// Continues mid-segment (a live stream joined late): the first `count` records are
    /// not seen, and `digest` is claimed to be their records digest. Nothing before `count`
    /// is vouched for; a checkpoint or the trailer verifies only if the claim was true (the
    /// digest chain is a hash chain), so a false claim is caught as tampering.
    pub fn resume(&mut self, count: u64, digest: Digest32) {
        self.digest = RecordsDigest::resumed(digest, count);
        self.signed_count = count;
    }

    /// Records observed so far.
    pub fn records_seen(&self) -> u64 {
        self.digest.count()
    }

    /// Records covered by the last valid checkpoint.
    pub fn signed_count(&self) -> u64 {
        self.signed_count
    }

    /// Valid checkpoints so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// The header hash.
    pub fn header_hash(&self) -> &Digest32 {
        &self.header_hash
    }
}

/// Opens a segment's records with a recipient key, checking everything [`Verifier`] does.
pub struct Opener {
    verifier: Verifier,
    header_hash: Digest32,
    key: SframeKey,
    end: Option<SegmentEnd>,
}

impl Opener {
    /// Unwraps the segment key with the recipient's X25519 secret and checks the header MAC.
    pub fn new(header: &Header, x25519_secret: &[u8; 32]) -> Result<Opener, SegmentError> {
        Opener::with_keys(
            header,
            &[RecipientSecret::new(KemKind::X25519, *x25519_secret)],
        )
    }

    /// Unwraps the segment key with the first of `secrets` (X25519 or X-Wing) that has a
    /// stanza, and checks the header MAC (see [`unwrap_base_key`]).
    pub fn with_keys(header: &Header, secrets: &[RecipientSecret]) -> Result<Opener, SegmentError> {
        let base_key = unwrap_base_key(header, secrets)?;
        Opener::from_checked_key(header, &base_key)
    }

    /// An opener from a segment base key obtained another way (a share, `crate::share`):
    /// the header MAC is checked with it as [`Opener::with_keys`] does.
    pub fn with_base_key(header: &Header, base_key: &[u8]) -> Result<Opener, SegmentError> {
        if !header_mac_ok(base_key, header) {
            return Err(SegmentError::HeaderTampered);
        }
        Opener::from_checked_key(header, base_key)
    }

    /// An opener from a base key whose header MAC was checked already.
    fn from_checked_key(header: &Header, base_key: &[u8]) -> Result<Opener, SegmentError> {
        let key = SframeKey::derive(header.suite, header.segment_seq, base_key)?;
        // The verifier already hashed the header; encoding and hashing it again is waste.
        let verifier = Verifier::new(header);
        Ok(Opener {
            header_hash: *verifier.header_hash(),
            verifier,
            key,
            end: None,
        })
    }
}

/// The segment base key, unwrapped with the first of `secrets` (X25519 or X-Wing) that has a
/// stanza in `header`; the header MAC is checked with it, so a modified header is tampering.
///
/// For each key: its own stanza (by key id) first; then every other stanza of its kind, so
/// that a modified key id is reported as tampering rather than as "not a recipient". Stanzas
/// of a suite this reader does not implement are skipped: one that carries our key id is
/// "not a recipient" (for this build), never "tampered".
pub fn unwrap_base_key(
    header: &Header,
    secrets: &[RecipientSecret],
) -> Result<Zeroizing<Vec<u8>>, SegmentError> {
    let info = hpke_info(&header.camera_key, header.stream_id, header.segment_seq);
    let mut listed = false;
    for secret in secrets {
        let kem = secret.kem().id();
        let my_id = key_id(&secret.public_key());
        let supported = |s: &&super::Stanza| {
            (s.kem, s.kdf, s.aead) == (kem, HPKE_KDF_SHA256, HPKE_AEAD_AES128GCM)
        };
        let candidates = header
            .stanzas
            .iter()
            .filter(supported)
            .filter(|s| s.key_id == my_id)
            .chain(
                header
                    .stanzas
                    .iter()
                    .filter(supported)
                    .filter(|s| s.key_id != my_id),
            );
        for stanza in candidates {
            let Some(base_key) = open_stanza(secret, &stanza.enc, &info, &stanza.wrapped_key)
            else {
                continue;
            };
            if !header_mac_ok(&base_key, header) {
                return Err(SegmentError::HeaderTampered);
            }
            return Ok(base_key);
        }
        listed |= header
            .stanzas
            .iter()
            .filter(supported)
            .any(|s| s.key_id == my_id);
    }
    if listed {
        // Our key id is listed but its stanza does not open: it was modified.
        return Err(SegmentError::HeaderTampered);
    }
    Err(SegmentError::NotARecipient)
}

impl Opener {
    /// Authenticates and decrypts one record. Video plaintext is appended to `out` only if
    /// the record authenticates; the final record's summary is returned instead.
    pub fn open(
        &mut self,
        record: &RecordView<'_>,
        out: &mut Vec<u8>,
    ) -> Result<OpenedRecord, SegmentError> {
        let index = self.verifier.observe(record)?;
        let metadata = record_metadata(&self.header_hash, record.pts, record.flags);
        let mut end = None;
        if record.flags.is_final() {
            let mut summary = Vec::new();
            self.key
                .open_append(record.sframe, &metadata, &mut summary)
                .map_err(|e| record_error(e, index))?;
            let parsed = SegmentEnd::parse(&summary)?;
            self.end = Some(parsed);
            end = Some(parsed);
        } else {
            let start = out.len();
            self.key
                .open_append(record.sframe, &metadata, out)
                .map_err(|e| record_error(e, index))?;
            if self.verifier.padding == Padding::Buckets {
                match padding::unpadded_len(&out[start..]) {
                    Ok(payload) => out.truncate(start + payload),
                    Err(e) => {
                        out.truncate(start);
                        return Err(e);
                    }
                }
            }
        }
        Ok(OpenedRecord {
            index,
            pts: record.pts,
            flags: record.flags,
            end,
        })
    }

    /// Continues mid-segment (see [`Verifier::resume`]).
    pub fn resume(&mut self, count: u64, digest: Digest32) {
        self.verifier.resume(count, digest);
    }

    /// Checks a checkpoint (see [`Verifier::checkpoint`]).
    pub fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<u64, SegmentError> {
        self.verifier.checkpoint(checkpoint)
    }

    /// Records covered by the last valid checkpoint.
    pub fn signed_count(&self) -> u64 {
        self.verifier.signed_count()
    }

    /// Checks the trailer and the camera signature.
    pub fn finish(self, trailer: &Trailer) -> Result<Verified, SegmentError> {
        let mut verified = self.verifier.finish(trailer)?;
        verified.end = self.end;
        Ok(verified)
    }
}

/// Pulls a segment's header and items from a byte source, holding one record at a time.
pub struct SegmentReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    header: Header,
    finished: bool,
    offset: u64,
    pending: usize,
}

impl<R: Read> SegmentReader<R> {
    /// Reads and parses the header, and checks the camera's signature over it (with the key
    /// the header names: [`check_camera`] then says whether that is a camera the reader
    /// trusts).
    pub fn new(mut inner: R) -> Result<SegmentReader<R>, SegmentError> {
        let mut buf = Vec::with_capacity(8192);
        let (header, used, _) = read_header(&mut inner, &mut buf)?;
        header.verify_signature()?;
        header.validate()?;
        buf.drain(..used);
        Ok(SegmentReader {
            inner,
            buf,
            header,
            finished: false,
            offset: used as u64,
            pending: 0,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Byte offset of the next item in the segment.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, checkpoint, or the trailer. After the trailer, checks that nothing
    /// follows it.
    pub fn next_item(&mut self) -> Result<Item<'_>, SegmentError> {
        if self.finished {
            return Err(SegmentError::Malformed("read past the trailer"));
        }
        // Drop the previous item's bytes.
        let consumed = self.consumed_len();
        if consumed > 0 {
            self.buf.drain(..consumed);
        }
        loop {
            match parse_item(&self.buf)? {
                Parsed::Complete(Item::Trailer(trailer), used) => {
                    self.buf.drain(..used);
                    self.offset += used as u64;
                    self.finished = true;
                    let mut probe = [0u8; 1];
                    if !self.buf.is_empty() || read_some(&mut self.inner, &mut probe)? > 0 {
                        return Err(SegmentError::TrailingData);
                    }
                    return Ok(Item::Trailer(trailer));
                }
                Parsed::Complete(Item::Checkpoint(checkpoint), used) => {
                    self.buf.drain(..used);
                    self.offset += used as u64;
                    return Ok(Item::Checkpoint(checkpoint));
                }
                Parsed::Complete(Item::Record(_), used) => {
                    self.offset += used as u64;
                    self.pending = used;
                    // Re-parse to hand out a borrow tied to `self`.
                    return match parse_item(&self.buf[..used])? {
                        Parsed::Complete(item, _) => Ok(item),
                        Parsed::Needed(_) => Err(SegmentError::Malformed("record re-parse")),
                    };
                }
                Parsed::Needed(n) => {
                    if !fill_to(&mut self.inner, &mut self.buf, n)? {
                        return Err(if self.buf.is_empty() {
                            SegmentError::Truncated("the trailer is missing")
                        } else if self.buf.starts_with(&TRAILER_MARKER.to_be_bytes()) {
                            SegmentError::Truncated("inside the trailer")
                        } else if self
                            .buf
                            .starts_with(&super::CHECKPOINT_MARKER.to_be_bytes())
                        {
                            SegmentError::Truncated("inside a checkpoint")
                        } else {
                            SegmentError::Truncated("inside a record")
                        });
                    }
                }
            }
        }
    }

    fn consumed_len(&mut self) -> usize {
        std::mem::take(&mut self.pending)
    }
}

/// Reads a header into `buf` (which may then hold bytes after it) with one resumable
/// parser, so the work is linear in the header's length however the bytes arrive. Returns
/// the header, its length, and how many bytes the parser examined.
fn read_header<R: Read>(
    inner: &mut R,
    buf: &mut Vec<u8>,
) -> Result<(Header, usize, u64), SegmentError> {
    let mut parser = HeaderParser::new();
    loop {
        match parser.parse(buf)? {
            Parsed::Complete(header, used) => return Ok((header, used, parser.examined())),
            Parsed::Needed(n) => {
                if !fill_to(inner, buf, n)? {
                    return Err(if buf.is_empty() {
                        SegmentError::Truncated("file is empty")
                    } else {
                        SegmentError::Truncated("inside the header")
                    });
                }
            }
        }
    }
}

fn open_stanza(
    secret: &RecipientSecret,
    enc: &[u8],
    info: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    match secret.kem() {
        KemKind::X25519 => hpke_open(secret.secret(), enc, info, b"", ciphertext),
        KemKind::XWing => hpke_open_xwing(secret.secret(), enc, info, b"", ciphertext),
    }
}

/// HPKE base-mode single-shot open matching [`super::write::hpke_seal`]. `None` if the
/// ciphertext does not open under this key.
pub fn hpke_open(
    x25519_secret: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    open_with::<hpke::kem::X25519HkdfSha256>(x25519_secret, enc, info, aad, ciphertext)
}

/// HPKE base-mode single-shot open matching [`super::write::hpke_seal_xwing`], with the
/// 32-byte X-Wing decapsulation key. `None` if the ciphertext does not open under this key:
/// X-Wing decapsulation itself never fails (ML-KEM rejects implicitly, with a pseudorandom
/// secret), so a modified `enc` shows up as a ciphertext that does not authenticate.
pub fn hpke_open_xwing(
    xwing_secret: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    open_with::<hpke::kem::XWing>(xwing_secret, enc, info, aad, ciphertext)
}

fn open_with<K: hpke::Kem>(
    secret: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let sk = K::PrivateKey::from_bytes(secret).ok()?;
    // Refuses an `enc` of the wrong length (tested with truncated X-Wing stanzas).
    let enc = K::EncappedKey::from_bytes(enc).ok()?;
    let mut ctx = hpke::setup_receiver::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, K>(
        &hpke::OpModeR::Base,
        &sk,
        &enc,
        info,
    )
    .ok()?;
    ctx.open(ciphertext, aad).ok().map(Zeroizing::new)
}

fn header_mac_ok(base_key: &[u8], header: &Header) -> bool {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&[]), base_key);
    let mut mac_key = Zeroizing::new([0u8; 32]);
    if hk.expand(HEADER_MAC_INFO, &mut mac_key[..]).is_err() {
        return false;
    }
    let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key[..]) else {
        return false;
    };
    let Ok(unmaced) = header.encode_unmaced() else {
        return false;
    };
    mac.update(&unmaced);
    mac.verify_slice(&header.mac).is_ok()
}

fn record_error(e: SealError, index: u64) -> SegmentError {
    match e {
        SealError::Auth | SealError::TooShort | SealError::Header => {
            SegmentError::RecordTampered { index }
        }
        other => SegmentError::Seal(other),
    }
}

/// Reads until `buf` holds at least `n` bytes (it may read up to 8 KiB more, so that a
/// parser that asks for a few bytes at a time does not re-parse once per read). Returns
/// false at end of input before that.
fn fill_to<R: Read>(r: &mut R, buf: &mut Vec<u8>, n: usize) -> Result<bool, SegmentError> {
    let mut chunk = [0u8; 8192];
    while buf.len() < n {
        let got = read_some(r, &mut chunk)?;
        if got == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..got]);
    }
    Ok(true)
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, SegmentError> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SegmentError::Io(e)),
        }
    }
}

/// Checks that `header` comes from the camera with public key `expected`.
pub fn check_camera(header: &Header, expected: &[u8; 32]) -> Result<(), SegmentError> {
    if &header.camera_key != expected {
        return Err(SegmentError::WrongCamera {
            expected: camera_id(expected),
            found: camera_id(&header.camera_key),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nal::Codec;
    use crate::seal::SframeSuite;
    use crate::segment::{MAX_HEADER_LEN, MAX_STANZAS, Stanza};

    /// A structurally valid header (unsigned: only parsing is under test).
    fn header(stanzas: usize, enc_len: usize) -> Header {
        Header {
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            camera_key: [1; 32],
            stream_id: 0,
            segment_seq: 0,
            start_pts: 0,
            wallclock_ms: 0,
            prev_header_hash: [0; 32],
            extensions: Vec::new(),
            stanzas: (0..stanzas)
                .map(|i| Stanza {
                    kem: 0x20,
                    kdf: 1,
                    aead: 1,
                    key_id: (i as u64).to_be_bytes(),
                    enc: vec![2; enc_len],
                    wrapped_key: vec![3; 48],
                })
                .collect(),
            mac: [4; 32],
            signature: [5; 64],
        }
    }

    /// A length that does not fit its 16-bit field is refused, not written modulo 65536
    /// (which would make the header claim fewer bytes than follow, and parse as garbage).
    #[test]
    fn fields_too_long_for_their_length_field_have_no_encoding() {
        let mut too_long = Vec::new();
        let mut h = header(1, 32);
        h.extensions = vec![0; 65_536];
        too_long.push(h);
        too_long.push(header(1, 65_536));
        let mut h = header(1, 32);
        h.stanzas[0].wrapped_key = vec![3; 65_536];
        too_long.push(h);
        // 65536 stanzas: seconds natively, many minutes under Miri.
        if !cfg!(miri) {
            too_long.push(header(65_536, 0));
        }
        for h in &too_long {
            assert!(matches!(h.encode_unmaced(), Err(SegmentError::Limit(_))));
            assert!(matches!(h.encode_unsigned(), Err(SegmentError::Limit(_))));
            assert!(matches!(h.encode(), Err(SegmentError::Limit(_))));
            assert!(h.verify_signature().is_err());
        }
        // One byte less fits, all of it.
        let mut h = header(1, 32);
        h.extensions = vec![0; 65_535];
        let empty = header(1, 32).encode().unwrap().len();
        assert_eq!(h.encode().unwrap().len(), empty + 65_535);
    }

    /// Hands out one byte per `read`: the worst case for a parser that restarts.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            out[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn header_parsing_examines_each_byte_a_bounded_number_of_times() {
        // The bound holds for any size; under Miri a byte-by-byte read of the largest header
        // would take many minutes.
        let h = header(if cfg!(miri) { 32 } else { MAX_STANZAS }, 32);
        let bytes = h.encode().unwrap();
        let mut buf = Vec::new();
        let (parsed, used, examined) = read_header(&mut Trickle(&bytes), &mut buf).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(used, bytes.len());
        // Restarting from byte 0 at every read examines about len²/30 bytes here (tens of
        // megabytes); resuming examines each byte about twice at most.
        assert!(
            examined <= 3 * bytes.len() as u64,
            "{examined} bytes examined for a {}-byte header",
            bytes.len()
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads a megabyte one byte at a time, hours under Miri; the test above covers the parser"
    )]
    fn headers_over_the_caps_are_refused_before_they_are_read() {
        let too_many = header(MAX_STANZAS + 1, 32).encode().unwrap();
        let e = read_header(&mut Trickle(&too_many), &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("1024"), "{e}");

        // Under the stanza cap but over 1 MiB: refused once a length points past the cap,
        // without reading up to it.
        let huge = header(20, 60_000).encode().unwrap();
        assert!(huge.len() > MAX_HEADER_LEN);
        let mut buf = Vec::new();
        let e = read_header(&mut Trickle(&huge), &mut buf).unwrap_err();
        assert!(e.to_string().contains("1 MiB"), "{e}");
        assert!(buf.len() <= MAX_HEADER_LEN, "read {} bytes", buf.len());
        assert!(matches!(
            Header::parse(&huge),
            Err(SegmentError::Malformed(_))
        ));
    }
}
