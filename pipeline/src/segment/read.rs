//! Reading a segment: the pure [`Verifier`] (structure, hashes, signature; no key) and
//! [`Opener`] (the same plus decryption), and the [`SegmentReader`] shell that pulls items
//! from any `Read` with one record in memory at a time.

use std::io::Read;

use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{KeyInit, Mac};
use hpke::Deserializable;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::write::{HPKE_AEAD_AES128GCM, HPKE_KDF_SHA256, HPKE_KEM_X25519};
use super::{
    Digest32, HEADER_MAC_INFO, Header, Item, Parsed, RecordFlags, RecordView, SegmentEnd,
    SegmentError, TRAILER_MARKER, Trailer, camera_id, hpke_info, key_id, parse_item,
    record_metadata, segment_digest, signed_message,
};
use crate::seal::{SealError, SframeHeader, SframeKey};

/// What a verified segment amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Records, the final one included.
    pub record_count: u64,
    /// The digest the next segment must name as `prev_digest`.
    pub digest: Digest32,
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

/// Checks a segment's structure, record hash and camera signature without any key.
#[derive(Clone)]
pub struct Verifier {
    header_hash: Digest32,
    segment_seq: u64,
    camera_key: [u8; 32],
    next_index: u64,
    records_hash: Sha256,
    final_seen: bool,
}

impl Verifier {
    /// Starts verifying the segment whose header is `header`.
    pub fn new(header: &Header) -> Verifier {
        Verifier {
            header_hash: header.hash(),
            segment_seq: header.segment_seq,
            camera_key: header.camera_key,
            next_index: 0,
            records_hash: Sha256::new(),
            final_seen: false,
        }
    }

    /// Checks a record's place in the sequence and hashes it.
    pub fn observe(&mut self, record: &RecordView<'_>) -> Result<u64, SegmentError> {
        if self.final_seen {
            return Err(SegmentError::RecordAfterFinal);
        }
        let (sframe, _) = SframeHeader::parse(record.sframe)
            .map_err(|_| SegmentError::Malformed("bad SFrame header"))?;
        if sframe.kid != self.segment_seq {
            return Err(SegmentError::WrongSegment {
                expected: self.segment_seq,
                found: sframe.kid,
            });
        }
        if sframe.ctr != self.next_index {
            return Err(SegmentError::OutOfOrder {
                expected: self.next_index,
                found: sframe.ctr,
            });
        }
        self.records_hash.update(record.encoded);
        self.final_seen = record.flags.is_final();
        let index = self.next_index;
        self.next_index += 1;
        Ok(index)
    }

    /// Checks the trailer against what was observed, and the camera's signature.
    pub fn finish(self, trailer: &Trailer) -> Result<Verified, SegmentError> {
        if !self.final_seen {
            return Err(SegmentError::NoFinal);
        }
        let records_hash: Digest32 = self.records_hash.finalize().into();
        if trailer.record_count != self.next_index {
            return Err(SegmentError::TrailerTampered("record count does not match"));
        }
        if !bool::from(trailer.records_hash.ct_eq(&records_hash)) {
            return Err(SegmentError::TrailerTampered("records hash does not match"));
        }
        // A camera key that is not even a valid point can only come from modification.
        let key =
            VerifyingKey::from_bytes(&self.camera_key).map_err(|_| SegmentError::BadSignature)?;
        let message = signed_message(&self.header_hash, self.next_index, &records_hash);
        key.verify_strict(&message, &Signature::from_bytes(&trailer.signature))
            .map_err(|_| SegmentError::BadSignature)?;
        Ok(Verified {
            record_count: self.next_index,
            digest: segment_digest(&self.header_hash, self.next_index, &records_hash),
            end: None,
        })
    }

    /// Records observed so far.
    pub fn records_seen(&self) -> u64 {
        self.next_index
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
        let public =
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*x25519_secret));
        let my_id = key_id(public.as_bytes());
        let info = hpke_info(&header.camera_key, header.stream_id, header.segment_seq);
        // Our own stanza first; then every other X25519 stanza, so that a modified key id
        // is reported as tampering rather than as "not a recipient".
        let candidates = header
            .stanzas
            .iter()
            .filter(|s| s.key_id == my_id)
            .chain(header.stanzas.iter().filter(|s| s.key_id != my_id));
        for stanza in candidates {
            if (stanza.kem, stanza.kdf, stanza.aead)
                != (HPKE_KEM_X25519, HPKE_KDF_SHA256, HPKE_AEAD_AES128GCM)
            {
                continue;
            }
            let Some(base_key) =
                hpke_open(x25519_secret, &stanza.enc, &info, b"", &stanza.wrapped_key)
            else {
                continue;
            };
            if !header_mac_ok(&base_key, header) {
                return Err(SegmentError::HeaderTampered);
            }
            let key = SframeKey::derive(header.suite, header.segment_seq, &base_key)?;
            // The verifier already hashed the header; encoding and hashing it again is waste.
            let verifier = Verifier::new(header);
            return Ok(Opener {
                header_hash: verifier.header_hash,
                verifier,
                key,
                end: None,
            });
        }
        if header.stanzas.iter().any(|s| s.key_id == my_id) {
            // Our key id is listed but its stanza does not open: it was modified.
            return Err(SegmentError::HeaderTampered);
        }
        Err(SegmentError::NotARecipient)
    }

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
            self.key
                .open_append(record.sframe, &metadata, out)
                .map_err(|e| record_error(e, index))?;
        }
        Ok(OpenedRecord {
            index,
            pts: record.pts,
            flags: record.flags,
            end,
        })
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
    /// Reads and parses the header.
    pub fn new(mut inner: R) -> Result<SegmentReader<R>, SegmentError> {
        let mut buf = Vec::with_capacity(4096);
        loop {
            match Header::parse(&buf)? {
                Parsed::Complete(header, used) => {
                    buf.drain(..used);
                    return Ok(SegmentReader {
                        inner,
                        buf,
                        header,
                        finished: false,
                        offset: used as u64,
                        pending: 0,
                    });
                }
                Parsed::Needed(n) => {
                    if !fill_to(&mut inner, &mut buf, n)? {
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

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Byte offset of the next item in the segment.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, or the trailer. After the trailer, checks that nothing follows it.
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

/// HPKE base-mode single-shot open matching [`super::write::hpke_seal`]. `None` if the
/// ciphertext does not open under this key.
pub fn hpke_open(
    x25519_secret: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    type Kem = hpke::kem::X25519HkdfSha256;
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(x25519_secret).ok()?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).ok()?;
    let mut ctx = hpke::setup_receiver::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, Kem>(
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
    mac.update(&header.encode_unmaced());
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

/// Reads until `buf` holds `n` bytes. Returns false at end of input before that.
fn fill_to<R: Read>(r: &mut R, buf: &mut Vec<u8>, n: usize) -> Result<bool, SegmentError> {
    let mut chunk = [0u8; 8192];
    while buf.len() < n {
        let want = (n - buf.len()).min(chunk.len());
        let got = read_some(r, &mut chunk[..want])?;
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
