//! SFrame (RFC 9605) record protection: header encoding, key and salt derivation, and
//! AES-GCM sealing with `nonce = salt XOR CTR`.
//!
//! Pure: no I/O, no clocks, no randomness. The segment layer chooses KID (the segment
//! sequence number) and CTR (the record index) and supplies the metadata that is
//! authenticated alongside the SFrame header.

use camseal_kernels::{Aead, NONCE_LEN, Suite, TAG_LEN};
use hkdf::Hkdf;
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

/// An SFrame cipher suite camseal supports (the AES-GCM suites of RFC 9605).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SframeSuite {
    /// 0x0004 AES_128_GCM_SHA256_128.
    Aes128GcmSha256,
    /// 0x0005 AES_256_GCM_SHA512_128.
    Aes256GcmSha512,
}

impl SframeSuite {
    /// The IANA suite identifier.
    pub const fn id(self) -> u16 {
        match self {
            SframeSuite::Aes128GcmSha256 => 0x0004,
            SframeSuite::Aes256GcmSha512 => 0x0005,
        }
    }

    /// The suite for an IANA identifier, if camseal supports it.
    pub const fn from_id(id: u16) -> Option<SframeSuite> {
        match id {
            0x0004 => Some(SframeSuite::Aes128GcmSha256),
            0x0005 => Some(SframeSuite::Aes256GcmSha512),
            _ => None,
        }
    }

    /// The AEAD behind the suite.
    pub const fn aead(self) -> Suite {
        match self {
            SframeSuite::Aes128GcmSha256 => Suite::Aes128Gcm,
            SframeSuite::Aes256GcmSha512 => Suite::Aes256Gcm,
        }
    }

    /// The name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        self.aead().name()
    }
}

impl core::str::FromStr for SframeSuite {
    type Err = SealError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "aes-128-gcm" | "aes128gcm" | "0x0004" => Ok(SframeSuite::Aes128GcmSha256),
            "aes-256-gcm" | "aes256gcm" | "0x0005" => Ok(SframeSuite::Aes256GcmSha512),
            _ => Err(SealError::UnknownSuite(s.to_owned())),
        }
    }
}

/// Errors from SFrame sealing and opening.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The record did not authenticate. Deliberately says nothing more.
    #[error("record authentication failed")]
    Auth,
    /// The SFrame header is cut short or malformed.
    #[error("malformed SFrame header")]
    Header,
    /// The record is shorter than a header plus a tag.
    #[error("SFrame ciphertext too short")]
    TooShort,
    /// A suite name that camseal does not know.
    #[error("unknown cipher suite {0:?} (use aes-128-gcm or aes-256-gcm)")]
    UnknownSuite(String),
    /// The kernel rejected the operation (message too long).
    #[error("AEAD kernel error: {0}")]
    Kernel(camseal_kernels::Error),
}

/// An SFrame header: key id and counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SframeHeader {
    /// Key identifier (camseal: the segment sequence number).
    pub kid: u64,
    /// Counter (camseal: the record index within the segment).
    pub ctr: u64,
}

impl SframeHeader {
    /// Appends the RFC 9605 §4.3 encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let len = self.encode_into(&mut buf);
        out.extend_from_slice(&buf[..len]);
    }

    /// Writes the encoding into `buf` and returns its length.
    pub fn encode_into(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        let mut config = 0u8;
        let mut len = 1;
        if self.kid < 8 {
            config |= (self.kid as u8) << 4;
        } else {
            let n = min_be_len(self.kid);
            config |= 0x80 | (((n - 1) as u8) << 4);
            buf[len..len + n].copy_from_slice(&self.kid.to_be_bytes()[8 - n..]);
            len += n;
        }
        if self.ctr < 8 {
            config |= self.ctr as u8;
        } else {
            let n = min_be_len(self.ctr);
            config |= 0x08 | ((n - 1) as u8);
            buf[len..len + n].copy_from_slice(&self.ctr.to_be_bytes()[8 - n..]);
            len += n;
        }
        buf[0] = config;
        len
    }

    /// Parses a header at the start of `buf`; returns it and its encoded length.
    ///
    /// Non-minimal encodings are accepted on input, as RFC 9605 does not forbid them; the
    /// segment layer compares KID and CTR by value.
    pub fn parse(buf: &[u8]) -> Result<(SframeHeader, usize), SealError> {
        let config = *buf.first().ok_or(SealError::Header)?;
        let mut pos = 1;
        let kid = if config & 0x80 == 0 {
            u64::from((config >> 4) & 0x07)
        } else {
            let n = usize::from((config >> 4) & 0x07) + 1;
            let v = read_be(buf, pos, n)?;
            pos += n;
            v
        };
        let ctr = if config & 0x08 == 0 {
            u64::from(config & 0x07)
        } else {
            let n = usize::from(config & 0x07) + 1;
            let v = read_be(buf, pos, n)?;
            pos += n;
            v
        };
        Ok((SframeHeader { kid, ctr }, pos))
    }
}

/// The per-KID keys derived from an SFrame base key (RFC 9605 §4.4.2).
pub struct SframeKey {
    suite: SframeSuite,
    kid: u64,
    aead: Aead,
    salt: [u8; NONCE_LEN],
}

impl SframeKey {
    /// Derives `sframe_key` and `sframe_salt` for `kid` from `base_key`.
    pub fn derive(suite: SframeSuite, kid: u64, base_key: &[u8]) -> Result<SframeKey, SealError> {
        let (key, salt) = derive_key_and_salt(suite, kid, base_key);
        let aead = Aead::new(suite.aead(), &key).map_err(SealError::Kernel)?;
        Ok(SframeKey {
            suite,
            kid,
            aead,
            salt,
        })
    }

    /// The suite.
    pub fn suite(&self) -> SframeSuite {
        self.suite
    }

    /// The key id these keys are for.
    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// The AEAD kernel in use (for reports).
    pub fn backend(&self) -> camseal_kernels::Backend {
        self.aead.backend()
    }

    /// Seals `plaintext` as one SFrame ciphertext and appends `header || ct || tag` to `out`.
    ///
    /// The plaintext is read once and the ciphertext written once, straight into `out`.
    pub fn seal_append(
        &self,
        ctr: u64,
        metadata: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = SframeHeader { kid: self.kid, ctr }.encode_into(&mut header);
        let aad = Aad::new(&header[..header_len], metadata);
        out.reserve(header_len + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&header[..header_len]);
        let start = out.len();
        // `resize` writes zeros that the kernel overwrites; it is not a copy of video bytes.
        out.resize(start + plaintext.len(), 0);
        let tag = self
            .aead
            .seal_to(&self.nonce(ctr), aad.bytes(), plaintext, &mut out[start..])
            .map_err(SealError::Kernel)?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Seals `plaintext` as one SFrame ciphertext into the start of `out`, which must hold at
    /// least [`sealed_len`](SframeKey::sealed_len) bytes; returns the length written.
    ///
    /// For pooled output buffers: nothing is zero-filled or resized, so each output byte is
    /// written once (the header, then the kernel's ciphertext and tag).
    pub fn seal_into(
        &self,
        ctr: u64,
        metadata: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SealError> {
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = SframeHeader { kid: self.kid, ctr }.encode_into(&mut header);
        let total = header_len + plaintext.len() + TAG_LEN;
        let Some(out) = out.get_mut(..total) else {
            return Err(SealError::Kernel(camseal_kernels::Error::BufferLength {
                input: total,
                output: out.len(),
            }));
        };
        let aad = Aad::new(&header[..header_len], metadata);
        let (head, rest) = out.split_at_mut(header_len);
        head.copy_from_slice(&header[..header_len]);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        let tag = self
            .aead
            .seal_to(&self.nonce(ctr), aad.bytes(), plaintext, body)
            .map_err(SealError::Kernel)?;
        tag_out.copy_from_slice(&tag);
        Ok(total)
    }

    /// Seals a `plaintext_len`-byte plaintext that `fill` writes straight into `out`, as
    /// [`seal_into`](SframeKey::seal_into) does for a plaintext held elsewhere: for a
    /// plaintext built on the fly (a padded record), with no buffer in between. `fill` gets
    /// exactly `plaintext_len` bytes; they are encrypted in place.
    pub fn seal_filled_into(
        &self,
        ctr: u64,
        metadata: &[u8],
        plaintext_len: usize,
        fill: impl FnOnce(&mut [u8]),
        out: &mut [u8],
    ) -> Result<usize, SealError> {
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = SframeHeader { kid: self.kid, ctr }.encode_into(&mut header);
        let total = header_len + plaintext_len + TAG_LEN;
        let Some(out) = out.get_mut(..total) else {
            return Err(SealError::Kernel(camseal_kernels::Error::BufferLength {
                input: total,
                output: out.len(),
            }));
        };
        let aad = Aad::new(&header[..header_len], metadata);
        let (head, rest) = out.split_at_mut(header_len);
        head.copy_from_slice(&header[..header_len]);
        let (body, tag_out) = rest.split_at_mut(plaintext_len);
        fill(body);
        let tag = self
            .aead
            .seal_in_place(&self.nonce(ctr), aad.bytes(), body)
            .map_err(SealError::Kernel)?;
        tag_out.copy_from_slice(&tag);
        Ok(total)
    }

    /// Length of the SFrame ciphertext of a `plaintext_len`-byte plaintext at counter `ctr`.
    pub fn sealed_len(&self, ctr: u64, plaintext_len: usize) -> usize {
        sframe_header_len(self.kid, ctr) + plaintext_len + TAG_LEN
    }

    /// Opens an SFrame ciphertext (`header || ct || tag`) and appends the plaintext to `out`.
    ///
    /// Returns the header. On any failure nothing is appended to `out`. The caller checks
    /// that KID and CTR are the ones it expects.
    pub fn open_append(
        &self,
        sframe_ct: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<SframeHeader, SealError> {
        let (header, header_len) = SframeHeader::parse(sframe_ct)?;
        if sframe_ct.len() < header_len + TAG_LEN {
            return Err(SealError::TooShort);
        }
        if header.kid != self.kid {
            return Err(SealError::Auth);
        }
        let (body, tag) = sframe_ct[header_len..].split_at(sframe_ct.len() - header_len - TAG_LEN);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let aad = Aad::new(&sframe_ct[..header_len], metadata);
        let start = out.len();
        out.resize(start + body.len(), 0);
        let result = self.aead.open_to(
            &self.nonce(header.ctr),
            aad.bytes(),
            body,
            &tag_bytes,
            &mut out[start..],
        );
        if result.is_err() {
            out.truncate(start);
            return Err(SealError::Auth);
        }
        Ok(header)
    }

    fn nonce(&self, ctr: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.salt;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }
}

impl core::fmt::Debug for SframeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SframeKey")
            .field("suite", &self.suite)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Drop for SframeKey {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.salt.zeroize();
    }
}

/// Largest encoded SFrame header: config byte, 8-byte KID, 8-byte CTR.
pub const MAX_HEADER_LEN: usize = 17;

/// `HKDF-Extract` then `HKDF-Expand` of the key and salt, per RFC 9605 §4.4.2.
fn derive_key_and_salt(
    suite: SframeSuite,
    kid: u64,
    base_key: &[u8],
) -> (Zeroizing<Vec<u8>>, [u8; NONCE_LEN]) {
    let mut key_label = Vec::with_capacity(KEY_LABEL.len() + 10);
    key_label.extend_from_slice(KEY_LABEL);
    key_label.extend_from_slice(&kid.to_be_bytes());
    key_label.extend_from_slice(&suite.id().to_be_bytes());
    let mut salt_label = Vec::with_capacity(SALT_LABEL.len() + 10);
    salt_label.extend_from_slice(SALT_LABEL);
    salt_label.extend_from_slice(&kid.to_be_bytes());
    salt_label.extend_from_slice(&suite.id().to_be_bytes());

    let mut key = Zeroizing::new(vec![0u8; suite.aead().key_len()]);
    let mut salt = [0u8; NONCE_LEN];
    // The output lengths (16/32 and 12) are far below HKDF's 255*HashLen limit.
    match suite {
        SframeSuite::Aes128GcmSha256 => {
            let hk = Hkdf::<Sha256>::new(Some(&[]), base_key);
            hk.expand(&key_label, &mut key).expect("valid HKDF length");
            hk.expand(&salt_label, &mut salt)
                .expect("valid HKDF length");
        }
        SframeSuite::Aes256GcmSha512 => {
            let hk = Hkdf::<Sha512>::new(Some(&[]), base_key);
            hk.expand(&key_label, &mut key).expect("valid HKDF length");
            hk.expand(&salt_label, &mut salt)
                .expect("valid HKDF length");
        }
    }
    (key, salt)
}

/// `header || metadata` without a heap allocation for camseal's 41-byte metadata.
struct Aad {
    inline: [u8; INLINE_AAD],
    heap: Vec<u8>,
    len: usize,
}

impl Aad {
    fn new(header: &[u8], metadata: &[u8]) -> Aad {
        let len = header.len() + metadata.len();
        let mut aad = Aad {
            inline: [0u8; INLINE_AAD],
            heap: Vec::new(),
            len,
        };
        if len <= INLINE_AAD {
            aad.inline[..header.len()].copy_from_slice(header);
            aad.inline[header.len()..len].copy_from_slice(metadata);
        } else {
            aad.heap.extend_from_slice(header);
            aad.heap.extend_from_slice(metadata);
        }
        aad
    }

    fn bytes(&self) -> &[u8] {
        if self.len <= INLINE_AAD {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

/// Encoded length of the SFrame header for `kid` and `ctr`.
pub fn sframe_header_len(kid: u64, ctr: u64) -> usize {
    let field = |v: u64| if v < 8 { 0 } else { min_be_len(v) };
    1 + field(kid) + field(ctr)
}

fn min_be_len(v: u64) -> usize {
    (8 - (v.leading_zeros() / 8) as usize).max(1)
}

fn read_be(buf: &[u8], pos: usize, n: usize) -> Result<u64, SealError> {
    let bytes = buf.get(pos..pos + n).ok_or(SealError::Header)?;
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

const KEY_LABEL: &[u8] = b"SFrame 1.0 Secret key ";
const SALT_LABEL: &[u8] = b"SFrame 1.0 Secret salt ";
const INLINE_AAD: usize = 96;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_inline() {
        let mut out = Vec::new();
        SframeHeader { kid: 7, ctr: 7 }.encode(&mut out);
        assert_eq!(out, [0x77]);
        SframeHeader { kid: 8, ctr: 8 }.encode(&mut out);
        assert_eq!(out[1..], [0x88, 8, 8]);
    }

    #[test]
    fn truncated_header_is_an_error() {
        assert_eq!(SframeHeader::parse(&[]), Err(SealError::Header));
        assert_eq!(
            SframeHeader::parse(&[0x99, 1, 2, 3]),
            Err(SealError::Header)
        );
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = SframeKey::derive(SframeSuite::Aes128GcmSha256, 42, &[9u8; 32]).unwrap();
        let mut sealed = Vec::new();
        key.seal_append(1000, b"meta", b"hello world", &mut sealed)
            .unwrap();
        let mut out = Vec::new();
        let h = key.open_append(&sealed, b"meta", &mut out).unwrap();
        assert_eq!((h.kid, h.ctr), (42, 1000));
        assert_eq!(out, b"hello world");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let mut out = Vec::new();
            assert!(
                key.open_append(&bad, b"meta", &mut out).is_err(),
                "byte {i}"
            );
            assert!(out.is_empty());
        }
        let mut out = Vec::new();
        assert!(key.open_append(&sealed, b"metb", &mut out).is_err());
    }
}
