//! Shares: chosen segments' keys re-wrapped by the account for a third party (a lawyer, an
//! insurer), signed by the account (pure: no files or sockets).
//!
//! What this module does **not** do: it does not re-encrypt anything (the segments stay as
//! the camera sealed them, and the camera's signatures still prove them), and it gives the
//! third party no key to anything but the segment keys it lists.
//!
//! Encoding (integers big-endian; see `docs/PROTOCOL.md`):
//! ```text
//! body  = "CSSH" | format u16 (=1) | account ed25519 [32] | camera ed25519 [32]
//!         | stream u32 | kem u16 | key_len u16 | recipient key | count u16
//!         | count * (seq u64 | header_hash [32] | enc_len u16 | enc | ct_len u16 | ct)
//! share = body | Ed25519 signature [64] over ("camseal share v1" || body)
//! ```
//! Each `enc | ct` is an HPKE base-mode seal (the segment suites: DHKEM(X25519) or X-Wing, as
//! `kem` says, with HKDF-SHA256 and AES-128-GCM) of the segment base key to the recipient key,
//! with
//! `info = "camseal share v1" || camera key || stream u32 || seq u64 || header_hash`, so a
//! wrapped key opens only for the one segment whose signed header hashes to `header_hash`.

use ed25519_dalek::{Signature, Signer, VerifyingKey};
use zeroize::Zeroizing;

use crate::keys::{
    AccountSecret, DevicePublic, KemKind, KeyError, RecipientSecret, account_id,
    check_recipient_key,
};
use crate::segment::read::{hpke_open, hpke_open_xwing};
use crate::segment::write::{hpke_seal, hpke_seal_xwing};

/// Why a share was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// The share does not parse, or its signature does not verify.
    #[error("not a valid signed share: {0}")]
    Invalid(KeyError),
    /// A segment is of another camera or stream than the share, or its header is not the
    /// one the share was made for.
    #[error("segment {seq} is not the segment this share names (another camera, stream or header)")]
    Mismatch {
        /// The segment's sequence number.
        seq: u64,
    },
    /// The segment's key is not in the share.
    #[error("segment {seq} is not in this share")]
    NotShared {
        /// The segment's sequence number.
        seq: u64,
    },
    /// The wrapped key does not open with this key: the share is for someone else.
    #[error("this share is not addressed to this key")]
    NotForYou,
    /// A key could not be wrapped (an invalid recipient key, or no randomness).
    #[error("cannot wrap a segment key: {0}")]
    Wrap(String),
}

/// One shared segment: which one it is, and its key wrapped to the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSegment {
    /// The segment's sequence number.
    pub seq: u64,
    /// SHA-256 hash of its signed header (`Verifier::header_hash`).
    pub header_hash: [u8; 32],
    /// HPKE encapsulated key.
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the segment base key.
    pub wrapped: Vec<u8>,
}

/// A signed share, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Ed25519 key of the account that granted it (and signed it).
    pub account: [u8; 32],
    /// Ed25519 key of the camera that sealed the segments.
    pub camera_key: [u8; 32],
    /// The stream.
    pub stream_id: u32,
    /// The recipient's KEM id.
    pub kem: u16,
    /// The recipient's public key.
    pub recipient: Vec<u8>,
    /// The segments, in the order given, each seq once.
    pub segments: Vec<SharedSegment>,
}

/// A segment to share: its identity and its base key (unwrapped by the account).
pub struct ToShare<'a> {
    /// The segment's sequence number.
    pub seq: u64,
    /// SHA-256 hash of its signed header.
    pub header_hash: [u8; 32],
    /// Its base key.
    pub base_key: &'a [u8],
}

impl Share {
    /// Wraps each segment's key to `recipient` (an X25519 or X-Wing public key, sealed with
    /// the segment suite of its kind) and signs the share with `account`.
    pub fn grant(
        account: &AccountSecret,
        camera_key: [u8; 32],
        stream_id: u32,
        recipient: &DevicePublic,
        segments: &[ToShare<'_>],
    ) -> Result<Vec<u8>, ShareError> {
        check_recipient_key(recipient.kem.id(), &recipient.public_key).map_err(ShareError::Wrap)?;
        if segments.is_empty() || segments.len() > MAX_SEGMENTS {
            return Err(ShareError::Wrap(format!(
                "a share holds 1 to {MAX_SEGMENTS} segments"
            )));
        }
        let mut shared = Vec::with_capacity(segments.len());
        for s in segments {
            if shared.iter().any(|x: &SharedSegment| x.seq == s.seq) {
                return Err(ShareError::Wrap(format!(
                    "segment {} is given twice",
                    s.seq
                )));
            }
            // X25519 draws 32 bytes for its ephemeral key, X-Wing 64 (32 for ML-KEM, 32 for
            // its X25519 half).
            let mut seed = Zeroizing::new([0u8; 64]);
            getrandom::fill(seed.as_mut())
                .map_err(|_| ShareError::Wrap("the OS random generator failed".into()))?;
            let info = info(&camera_key, stream_id, s.seq, &s.header_hash);
            let sealed = match recipient.kem {
                KemKind::X25519 => {
                    let mut ikm = Zeroizing::new([0u8; 32]);
                    ikm.copy_from_slice(&seed[..32]);
                    hpke_seal(&recipient.public_key, &info, b"", s.base_key, &ikm)
                }
                KemKind::XWing => {
                    hpke_seal_xwing(&recipient.public_key, &info, b"", s.base_key, &seed)
                }
            };
            let (enc, wrapped) = sealed.map_err(|e| ShareError::Wrap(e.to_string()))?;
            shared.push(SharedSegment {
                seq: s.seq,
                header_hash: s.header_hash,
                enc,
                wrapped,
            });
        }
        let share = Share {
            account: account.public().ed25519,
            camera_key,
            stream_id,
            kem: recipient.kem.id(),
            recipient: recipient.public_key.clone(),
            segments: shared,
        };
        let mut out = share.encode_body();
        let signature = account.signing_key().sign(&signed_message(&out));
        out.extend_from_slice(&signature.to_bytes());
        Ok(out)
    }

    /// Parses a share and verifies the account's signature over it.
    pub fn parse_signed(bytes: &[u8]) -> Result<Share, ShareError> {
        let bad = |what: &str| ShareError::Invalid(KeyError::BadFormat(what.to_owned()));
        if bytes.len() > MAX_SHARE_LEN {
            return Err(bad("too large to be a share"));
        }
        if !bytes.starts_with(MAGIC) || bytes.len() < MAGIC.len() + 2 + SIGNATURE_LEN {
            return Err(bad("not a share (it does not start with \"CSSH\")"));
        }
        let (body, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let mut r = Reader(&body[MAGIC.len()..]);
        let truncated = || bad("truncated");
        let format = u16::from_be_bytes(r.array().ok_or_else(truncated)?);
        if format != FORMAT_VERSION {
            return Err(bad("unsupported share format version"));
        }
        let account: [u8; 32] = r.array().ok_or_else(truncated)?;
        let camera_key: [u8; 32] = r.array().ok_or_else(truncated)?;
        let stream_id = u32::from_be_bytes(r.array().ok_or_else(truncated)?);
        let kem = u16::from_be_bytes(r.array().ok_or_else(truncated)?);
        let key_len = u16::from_be_bytes(r.array().ok_or_else(truncated)?);
        let recipient = r.take(usize::from(key_len)).ok_or_else(truncated)?.to_vec();
        // Only kinds this build seals to and opens: a share to any other key opens for no one.
        if KemKind::from_id(kem).is_none() {
            return Err(bad(
                "the recipient key is of a KEM this build does not know",
            ));
        }
        check_recipient_key(kem, &recipient).map_err(|e| bad(&e))?;
        let count = u16::from_be_bytes(r.array().ok_or_else(truncated)?);
        if count == 0 || usize::from(count) > MAX_SEGMENTS {
            return Err(bad("a share holds 1 to 4096 segments"));
        }
        let mut segments: Vec<SharedSegment> = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let seq = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
            let header_hash = r.array().ok_or_else(truncated)?;
            let enc_len = u16::from_be_bytes(r.array().ok_or_else(truncated)?);
            let enc = r.take(usize::from(enc_len)).ok_or_else(truncated)?.to_vec();
            let ct_len = u16::from_be_bytes(r.array().ok_or_else(truncated)?);
            let wrapped = r.take(usize::from(ct_len)).ok_or_else(truncated)?.to_vec();
            if segments.iter().any(|s| s.seq == seq) {
                return Err(bad("a segment is listed twice"));
            }
            segments.push(SharedSegment {
                seq,
                header_hash,
                enc,
                wrapped,
            });
        }
        if !r.0.is_empty() {
            return Err(bad("trailing bytes before the signature"));
        }
        let key = VerifyingKey::from_bytes(&account)
            .map_err(|_| bad("not a valid Ed25519 account key"))?;
        if key.is_weak() {
            return Err(bad("weak Ed25519 account key"));
        }
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(signature);
        key.verify_strict(&signed_message(body), &Signature::from_bytes(&sig))
            .map_err(|_| ShareError::Invalid(KeyError::BadSignature))?;
        Ok(Share {
            account,
            camera_key,
            stream_id,
            kem,
            recipient,
            segments,
        })
    }

    /// The granting account's short id.
    pub fn account_id(&self) -> String {
        account_id(&self.account)
    }

    /// The recipient key's kind (`parse_signed` refuses kinds this build does not know).
    pub fn kem_kind(&self) -> Option<KemKind> {
        KemKind::from_id(self.kem)
    }

    /// The one of `keys` this share is addressed to (same kind and public key), if any.
    pub fn addressed_key<'k>(&self, keys: &'k [RecipientSecret]) -> Option<&'k RecipientSecret> {
        keys.iter()
            .find(|k| k.kem().id() == self.kem && k.public_key() == self.recipient)
    }

    /// The base key of the segment `seq` of `camera_key`'s stream `stream_id` whose signed
    /// header hashes to `header_hash`, unwrapped with the one of `keys` the share is
    /// addressed to.
    pub fn base_key(
        &self,
        camera_key: &[u8; 32],
        stream_id: u32,
        seq: u64,
        header_hash: &[u8; 32],
        keys: &[RecipientSecret],
    ) -> Result<Zeroizing<Vec<u8>>, ShareError> {
        let Some(s) = self.segments.iter().find(|s| s.seq == seq) else {
            return Err(ShareError::NotShared { seq });
        };
        if *camera_key != self.camera_key
            || stream_id != self.stream_id
            || *header_hash != s.header_hash
        {
            return Err(ShareError::Mismatch { seq });
        }
        let Some(key) = self.addressed_key(keys) else {
            return Err(ShareError::NotForYou);
        };
        let info = info(camera_key, stream_id, seq, header_hash);
        match key.kem() {
            KemKind::X25519 => hpke_open(key.secret(), &s.enc, &info, b"", &s.wrapped),
            KemKind::XWing => hpke_open_xwing(key.secret(), &s.enc, &info, b"", &s.wrapped),
        }
        .ok_or(ShareError::NotForYou)
    }

    fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.account);
        out.extend_from_slice(&self.camera_key);
        out.extend_from_slice(&self.stream_id.to_be_bytes());
        out.extend_from_slice(&self.kem.to_be_bytes());
        // Invariant: keys, encapsulations and wrapped keys are at most a few hundred bytes,
        // and grant() bounded the count by MAX_SEGMENTS; all fit in u16.
        out.extend_from_slice(&(self.recipient.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.recipient);
        out.extend_from_slice(&(self.segments.len() as u16).to_be_bytes());
        for s in &self.segments {
            out.extend_from_slice(&s.seq.to_be_bytes());
            out.extend_from_slice(&s.header_hash);
            out.extend_from_slice(&(s.enc.len() as u16).to_be_bytes());
            out.extend_from_slice(&s.enc);
            out.extend_from_slice(&(s.wrapped.len() as u16).to_be_bytes());
            out.extend_from_slice(&s.wrapped);
        }
        out
    }
}

fn info(camera_key: &[u8; 32], stream_id: u32, seq: u64, header_hash: &[u8; 32]) -> Vec<u8> {
    let mut info = Vec::with_capacity(SIGNING_CONTEXT.len() + 32 + 4 + 8 + 32);
    info.extend_from_slice(SIGNING_CONTEXT);
    info.extend_from_slice(camera_key);
    info.extend_from_slice(&stream_id.to_be_bytes());
    info.extend_from_slice(&seq.to_be_bytes());
    info.extend_from_slice(header_hash);
    info
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(body);
    msg
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Some(out)
    }
}

const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"CSSH";
/// Enough for a day of 4-second segments and then some.
const MAX_SEGMENTS: usize = 4096;
const MAX_SHARE_LEN: usize = 4 * 1024 * 1024;
const SIGNATURE_LEN: usize = 64;
const SIGNING_CONTEXT: &[u8] = b"camseal share v1";

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient(kem: KemKind, seed: u8) -> (RecipientSecret, DevicePublic) {
        let secret = RecipientSecret::new(kem, [seed; 32]);
        let public = secret.device_public();
        (secret, public)
    }

    fn a_share_opens_exactly_its_segments_for_its_recipient(kem: KemKind) {
        let account = AccountSecret::from_seed([1; 32]);
        let (secret, public) = recipient(kem, 9);
        let camera = [5u8; 32];
        let bytes = Share::grant(
            &account,
            camera,
            0,
            &public,
            &[
                ToShare {
                    seq: 3,
                    header_hash: [3; 32],
                    base_key: &[33; 32],
                },
                ToShare {
                    seq: 4,
                    header_hash: [4; 32],
                    base_key: &[44; 32],
                },
            ],
        )
        .unwrap();
        let share = Share::parse_signed(&bytes).unwrap();
        assert_eq!(share.account, account.public().ed25519);
        assert_eq!((share.kem, share.kem_kind()), (kem.id(), Some(kem)));
        assert_eq!(share.recipient, public.public_key);
        let mine = [secret];
        assert_eq!(
            *share.base_key(&camera, 0, 4, &[4; 32], &mine).unwrap(),
            vec![44; 32]
        );
        assert_eq!(
            share.base_key(&camera, 0, 5, &[5; 32], &mine),
            Err(ShareError::NotShared { seq: 5 })
        );
        assert_eq!(
            share.base_key(&camera, 0, 3, &[9; 32], &mine),
            Err(ShareError::Mismatch { seq: 3 })
        );
        assert_eq!(
            share.base_key(&camera, 1, 3, &[3; 32], &mine),
            Err(ShareError::Mismatch { seq: 3 })
        );
        // Another key of either kind, or the same 32 secret bytes read as the other kind.
        let other = if kem == KemKind::X25519 {
            KemKind::XWing
        } else {
            KemKind::X25519
        };
        for wrong in [
            recipient(kem, 8).0,
            recipient(other, 9).0,
            recipient(other, 8).0,
        ] {
            assert_eq!(
                share.base_key(&camera, 0, 3, &[3; 32], &[wrong]),
                Err(ShareError::NotForYou)
            );
        }
        // The right key among others is found.
        let keys = [recipient(other, 7).0, recipient(kem, 9).0];
        assert_eq!(
            *share.base_key(&camera, 0, 3, &[3; 32], &keys).unwrap(),
            vec![33; 32]
        );
        // Every flipped byte breaks the signature or the parse; so does every truncation.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x80;
            assert!(Share::parse_signed(&bad).is_err(), "byte {i}");
            assert!(Share::parse_signed(&bytes[..i]).is_err(), "length {i}");
        }
    }

    #[test]
    fn an_x25519_share_opens_exactly_its_segments_for_its_recipient() {
        a_share_opens_exactly_its_segments_for_its_recipient(KemKind::X25519);
    }

    #[test]
    fn an_xwing_share_opens_exactly_its_segments_for_its_recipient() {
        a_share_opens_exactly_its_segments_for_its_recipient(KemKind::XWing);
    }

    #[test]
    fn an_xwing_share_wraps_with_xwing() {
        let account = AccountSecret::from_seed([1; 32]);
        let (_, public) = recipient(KemKind::XWing, 9);
        let bytes = Share::grant(
            &account,
            [5; 32],
            0,
            &public,
            &[ToShare {
                seq: 1,
                header_hash: [1; 32],
                base_key: &[11; 32],
            }],
        )
        .unwrap();
        let share = Share::parse_signed(&bytes).unwrap();
        // The X-Wing encapsulation is 1120 bytes; an X25519 one would be 32.
        assert_eq!(share.segments[0].enc.len(), 1120);
        assert_eq!(share.recipient.len(), 1216);
    }

    #[test]
    fn a_share_to_a_key_nothing_can_seal_to_is_refused() {
        let account = AccountSecret::from_seed([1; 32]);
        let seg = [ToShare {
            seq: 1,
            header_hash: [1; 32],
            base_key: &[11; 32],
        }];
        // A low-order X25519 point, and an X-Wing key whose ML-KEM half fails the FIPS 203
        // check (all 0xff coefficients are out of range).
        for bad in [
            DevicePublic {
                kem: KemKind::X25519,
                public_key: vec![0; 32],
            },
            DevicePublic {
                kem: KemKind::XWing,
                public_key: [vec![0xff; 1184], vec![9; 32]].concat(),
            },
        ] {
            assert!(
                matches!(
                    Share::grant(&account, [5; 32], 0, &bad, &seg),
                    Err(ShareError::Wrap(_))
                ),
                "{bad:?}"
            );
        }
    }
}
