//! Account, device and camera keys, the recovery backup, and signed recipient lists.
//!
//! What this module does **not** do: it touches no files, clocks or sockets (that is
//! [`crate::home`]), and it does not wrap segment keys (that is the segment writer, using the
//! X25519 keys from here). Every function maps bytes or text to keys and back, so each
//! encoding can be tested, and re-implemented from `docs/PROTOCOL.md`, on its own.
//!
//! The pieces:
//! - [`AccountSecret`]: the viewer account key AK, one 32-byte seed from which the X25519 (HPKE)
//!   half and the Ed25519 (signing) half are derived with HKDF-SHA256.
//! - [`CameraSecret`]: the camera identity key CK (Ed25519).
//! - [`DevicePublic`]: a viewer device's own X25519 key DK_i.
//! - [`RecipientList`]: who may watch, versioned and signed by AK.
//! - [`Passphrase`], [`seal_backup`], [`open_backup`]: AK sealed under 12 BIP39 words,
//!   stretched with Argon2id.
//!
//! Secrets ([`AccountSecret`], [`CameraSecret`], [`Passphrase`]) are zeroized on drop, and
//! their `Debug` output is redacted. No error message ever contains key material.

mod backup;
mod passphrase;
mod recipients;
mod text;
mod wire;

use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use backup::{BackupParams, open_backup, seal_backup, seal_backup_with};
pub use passphrase::Passphrase;
pub use recipients::{Recipient, RecipientList};

/// HPKE KEM id of DHKEM(X25519, HKDF-SHA256) (RFC 9180, section 7.1).
pub const KEM_X25519_HKDF_SHA256: u16 = 0x0020;

/// Why a key, list, passphrase or backup was refused.
///
/// Messages never contain key material, passphrase words or other secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A recipient list names one account but is being signed with another.
    #[error("the recipient list names a different account than the key signing it")]
    AccountMismatch,
    /// The recovery passphrase's checksum does not match its words.
    #[error(
        "the recovery passphrase's checksum does not match: a word is wrong or two words are swapped"
    )]
    BadChecksum,
    /// The input is not in the expected format; the text says what is wrong.
    #[error("bad format: {0}")]
    BadFormat(String),
    /// An Ed25519 signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Argon2id could not run (for example, its memory could not be allocated).
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// A passphrase word is not in the BIP39 English word list.
    #[error("word {position} of the recovery passphrase is not in the BIP39 English word list")]
    UnknownWord {
        /// 1-based position of the word. The word itself is not kept: it is nearly a secret.
        position: usize,
    },
    /// The recovery passphrase has the wrong number of words.
    #[error("the recovery passphrase has {0} words; it must have 12")]
    WordCount(usize),
    /// The backup does not open with this passphrase. AES-GCM cannot tell a wrong passphrase
    /// from a modified backup, so the message names both.
    #[error("wrong recovery passphrase (or the backup file was modified)")]
    WrongPassphrase,
}

/// The viewer account key AK: a 32-byte seed.
///
/// Both halves are derived from the seed, so one secret is all a backup has to carry:
/// `x25519 = HKDF-SHA256(ikm = seed, salt = "", info = "camseal v1 account x25519")` and
/// `ed25519 seed = HKDF-SHA256(ikm = seed, salt = "", info = "camseal v1 account ed25519")`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct AccountSecret {
    seed: [u8; 32],
}

impl AccountSecret {
    /// Draws a fresh account seed from the OS CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(AccountSecret {
            seed: *random_32()?,
        })
    }

    /// Builds the account from a known seed (tests and vectors; [`AccountSecret::from_text`]
    /// for key files).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        AccountSecret { seed }
    }

    /// The raw X25519 private key for HPKE (unclamped, as RFC 9180 `DeserializePrivateKey`
    /// expects; X25519 clamps it on use).
    pub fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        derive(&self.seed, INFO_ACCOUNT_X25519)
    }

    /// The account's Ed25519 signing key (it signs recipient lists).
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&derive(&self.seed, INFO_ACCOUNT_ED25519))
    }

    /// The public halves.
    pub fn public(&self) -> AccountPublic {
        let x = x25519_dalek::StaticSecret::from(*self.x25519_secret());
        AccountPublic {
            x25519: x25519_dalek::PublicKey::from(&x).to_bytes(),
            ed25519: self.signing_key().verifying_key().to_bytes(),
        }
    }

    /// Encodes the seed as the text of an `account.key` file (see `docs/PROTOCOL.md`).
    pub fn to_text(&self) -> Zeroizing<String> {
        text::encode_secret(ACCOUNT_KEY_HEADER, &self.seed)
    }

    /// Decodes the text of an `account.key` file.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        Ok(AccountSecret {
            seed: *text::decode_secret(s, ACCOUNT_KEY_HEADER)?,
        })
    }
}

impl core::fmt::Debug for AccountSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AccountSecret(<redacted>)")
    }
}

/// The public halves of an account key: what cameras and senders need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountPublic {
    /// X25519 public key: segment keys are wrapped to it with HPKE.
    pub x25519: [u8; 32],
    /// Ed25519 public key: it verifies recipient lists. Cameras pin it.
    pub ed25519: [u8; 32],
}

impl AccountPublic {
    /// Encodes as the text of an `account.pub` file.
    pub fn to_text(&self) -> String {
        text::encode_public(
            ACCOUNT_PUB_HEADER,
            &[("x25519", &self.x25519), ("ed25519", &self.ed25519)],
        )
    }

    /// Decodes the text of an `account.pub` file, checking that the Ed25519 key is a valid,
    /// non-weak point.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        let [x25519, ed25519] = text::decode_public(s, ACCOUNT_PUB_HEADER, ["x25519", "ed25519"])?;
        verifying_key(&ed25519)?;
        Ok(AccountPublic { x25519, ed25519 })
    }

    /// The account's short id (see [`account_id`]).
    pub fn id(&self) -> String {
        account_id(&self.ed25519)
    }
}

/// The short id of an account, from its Ed25519 public key: the first 8 bytes of
/// `SHA-256("camseal account id v1" || ed25519)` as 16 lowercase hex digits.
///
/// It is for people to compare and for messages; trust decisions compare the whole key.
pub fn account_id(ed25519: &[u8; 32]) -> String {
    short_id(ACCOUNT_ID_CONTEXT, ed25519)
}

/// The account key a camera pinned when it installed its first recipient list: only lists
/// signed by this key are accepted afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountPin {
    /// The account's Ed25519 public key.
    pub ed25519: [u8; 32],
}

impl AccountPin {
    /// Encodes as the text of a camera's `pinned-account` file.
    pub fn to_text(&self) -> String {
        text::encode_public(PIN_HEADER, &[("ed25519", &self.ed25519)])
    }

    /// Decodes the text of a `pinned-account` file.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        let [ed25519] = text::decode_public(s, PIN_HEADER, ["ed25519"])?;
        verifying_key(&ed25519)?;
        Ok(AccountPin { ed25519 })
    }

    /// The pinned account's short id (see [`account_id`]).
    pub fn id(&self) -> String {
        account_id(&self.ed25519)
    }
}

/// The camera identity key CK: an Ed25519 seed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct CameraSecret {
    seed: [u8; 32],
}

impl CameraSecret {
    /// Draws a fresh camera key from the OS CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(CameraSecret {
            seed: *random_32()?,
        })
    }

    /// Builds the camera key from a known seed (tests and vectors).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        CameraSecret { seed }
    }

    /// The camera's Ed25519 signing key (it signs segment trailers).
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.seed)
    }

    /// The public key.
    pub fn public(&self) -> CameraPublic {
        CameraPublic {
            ed25519: self.signing_key().verifying_key().to_bytes(),
        }
    }

    /// Encodes the seed as the text of a `camera.key` file.
    pub fn to_text(&self) -> Zeroizing<String> {
        text::encode_secret(CAMERA_KEY_HEADER, &self.seed)
    }

    /// Decodes the text of a `camera.key` file.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        Ok(CameraSecret {
            seed: *text::decode_secret(s, CAMERA_KEY_HEADER)?,
        })
    }
}

impl core::fmt::Debug for CameraSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CameraSecret(<redacted>)")
    }
}

/// A camera's public identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CameraPublic {
    /// Ed25519 public key: it verifies segment trailers.
    pub ed25519: [u8; 32],
}

impl CameraPublic {
    /// Encodes as the text of a `camera.pub` file.
    pub fn to_text(&self) -> String {
        text::encode_public(CAMERA_PUB_HEADER, &[("ed25519", &self.ed25519)])
    }

    /// Decodes the text of a `camera.pub` file, checking that the key is a valid, non-weak
    /// point.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        let [ed25519] = text::decode_public(s, CAMERA_PUB_HEADER, ["ed25519"])?;
        verifying_key(&ed25519)?;
        Ok(CameraPublic { ed25519 })
    }

    /// The key as an Ed25519 verifier. Fails for bytes that are not a valid, non-weak point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        verifying_key(&self.ed25519)
    }

    /// The camera id: the first 8 bytes of `SHA-256("camseal camera id v1" || ed25519)` as 16
    /// lowercase hex digits. Segment headers and object keys name the camera by it.
    pub fn id(&self) -> String {
        short_id(CAMERA_ID_CONTEXT, &self.ed25519)
    }
}

/// A viewer device's own X25519 key (DK_i), listed as a recipient next to the account key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevicePublic {
    /// X25519 public key.
    pub x25519: [u8; 32],
}

impl DevicePublic {
    /// Encodes as the text of a `devices/NAME.pub` file.
    pub fn to_text(&self) -> String {
        text::encode_public(DEVICE_PUB_HEADER, &[("x25519", &self.x25519)])
    }

    /// Decodes the text of a `devices/NAME.pub` file.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        let [x25519] = text::decode_public(s, DEVICE_PUB_HEADER, ["x25519"])?;
        Ok(DevicePublic { x25519 })
    }
}

/// A viewer device's own private key: an X25519 secret that never leaves the device.
///
/// Segments sealed while the device's public key is on the camera's list open with it;
/// once a list without the device is installed, new segments no longer do.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DeviceSecret {
    x25519: [u8; 32],
}

impl DeviceSecret {
    /// Draws a fresh device key from the OS CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(DeviceSecret {
            x25519: *random_32()?,
        })
    }

    /// The raw X25519 private key for HPKE (unclamped; X25519 clamps it on use).
    pub fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.x25519)
    }

    /// The public key, as listed in `devices/NAME.pub`.
    pub fn public(&self) -> DevicePublic {
        let x = x25519_dalek::StaticSecret::from(self.x25519);
        DevicePublic {
            x25519: x25519_dalek::PublicKey::from(&x).to_bytes(),
        }
    }

    /// Encodes as the text of a `device.key` file: `camseal-device-key-v1`, then one
    /// `x25519 <hex>` line (the line names the key's kind, as in `devices/NAME.pub`).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut hex_buf = Zeroizing::new([0u8; 64]);
        // Invariant: 32 bytes encode to exactly 64 hex digits, which is the buffer's size.
        hex::encode_to_slice(self.x25519, hex_buf.as_mut()).expect("64-byte buffer for 32 bytes");
        // The capacity is exact, so the string never reallocates and leaves no stray copy.
        let mut out = Zeroizing::new(String::with_capacity(
            DEVICE_KEY_HEADER.len() + 1 + DEVICE_KEY_FIELD.len() + 64 + 1,
        ));
        out.push_str(DEVICE_KEY_HEADER);
        out.push('\n');
        out.push_str(DEVICE_KEY_FIELD);
        for &b in hex_buf.iter() {
            out.push(char::from(b));
        }
        out.push('\n');
        out
    }

    /// Decodes the text of a `device.key` file.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        let body = s.strip_suffix('\n').unwrap_or(s);
        let Some((header, line)) = body.split_once('\n') else {
            return Err(KeyError::BadFormat("not a device key file".into()));
        };
        if header != DEVICE_KEY_HEADER {
            return Err(KeyError::BadFormat(format!(
                "not a device key file (expected the header {DEVICE_KEY_HEADER})"
            )));
        }
        let Some(hex_digits) = line.strip_prefix(DEVICE_KEY_FIELD) else {
            return Err(KeyError::BadFormat(
                "a device key file has one `x25519 <64 hex digits>` line".into(),
            ));
        };
        let mut x25519 = Zeroizing::new([0u8; 32]);
        if hex_digits.len() != 64 || hex::decode_to_slice(hex_digits, x25519.as_mut()).is_err() {
            return Err(KeyError::BadFormat(
                "a device key file has one `x25519 <64 hex digits>` line".into(),
            ));
        }
        Ok(DeviceSecret { x25519: *x25519 })
    }
}

impl core::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceSecret(<redacted>)")
    }
}

/// The short id of a device key, for lists and messages: the first 8 bytes of
/// `SHA-256("camseal device id v1" || kem u16 || public key)` as 16 lowercase hex digits.
pub fn device_id(kem: u16, public_key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(DEVICE_ID_CONTEXT)
        .chain_update(kem.to_be_bytes())
        .chain_update(public_key)
        .finalize();
    hex::encode(&digest[..8])
}

/// 32 bytes from the OS CSPRNG, in a buffer that is wiped on drop.
fn random_32() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut out = Zeroizing::new([0u8; 32]);
    getrandom::fill(out.as_mut()).map_err(|_| KeyError::Random)?;
    Ok(out)
}

/// Fills `out` from the OS CSPRNG.
fn random_fill(out: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(out).map_err(|_| KeyError::Random)
}

/// HKDF-SHA256 with an empty salt, 32 bytes of output.
fn derive(seed: &[u8; 32], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // Invariant: 32 bytes is far below HKDF-SHA256's 255 * 32 byte output limit.
    Hkdf::<Sha256>::new(Some(&[][..]), seed)
        .expand(info, out.as_mut())
        .expect("32-byte HKDF output is always valid");
    out
}

/// An Ed25519 public key that is a valid point and not of small order.
fn verifying_key(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(bytes)
        .map_err(|_| KeyError::BadFormat("not a valid Ed25519 public key".into()))?;
    if key.is_weak() {
        return Err(KeyError::BadFormat("weak Ed25519 public key".into()));
    }
    Ok(key)
}

fn short_id(context: &[u8], key: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(context)
        .chain_update(key)
        .finalize();
    hex::encode(&digest[..8])
}

const ACCOUNT_ID_CONTEXT: &[u8] = b"camseal account id v1";
const ACCOUNT_KEY_HEADER: &str = "camseal-account-key-v1";
const ACCOUNT_PUB_HEADER: &str = "camseal-account-v1";
const CAMERA_ID_CONTEXT: &[u8] = b"camseal camera id v1";
const CAMERA_KEY_HEADER: &str = "camseal-camera-key-v1";
const CAMERA_PUB_HEADER: &str = "camseal-camera-v1";
const DEVICE_ID_CONTEXT: &[u8] = b"camseal device id v1";
const DEVICE_KEY_FIELD: &str = "x25519 ";
const DEVICE_KEY_HEADER: &str = "camseal-device-key-v1";
const DEVICE_PUB_HEADER: &str = "camseal-device-v1";
const INFO_ACCOUNT_ED25519: &[u8] = b"camseal v1 account ed25519";
const INFO_ACCOUNT_X25519: &[u8] = b"camseal v1 account x25519";
const PIN_HEADER: &str = "camseal-pinned-account-v1";

#[cfg(test)]
mod tests;
