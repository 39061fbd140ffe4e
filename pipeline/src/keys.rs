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
//! - [`DevicePublic`], [`RecipientSecret`]: a viewer device's own key DK_i, hybrid X-Wing
//!   (X25519 + ML-KEM-768) by default or classic X25519 ([`KemKind`]).
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

/// HPKE KEM id of X-Wing, the hybrid of ML-KEM-768 and X25519 (draft-connolly-cfrg-xwing-kem,
/// IANA section; the same id in draft-ietf-hpke-pq).
pub const KEM_XWING: u16 = 0x647a;

/// The two kinds of recipient key camseal seals segment keys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KemKind {
    /// DHKEM(X25519, HKDF-SHA256): classic, broken by a large quantum computer.
    X25519,
    /// X-Wing (ML-KEM-768 + X25519): secure while either half is.
    XWing,
}

impl KemKind {
    /// The HPKE KEM id.
    pub const fn id(self) -> u16 {
        match self {
            KemKind::X25519 => KEM_X25519_HKDF_SHA256,
            KemKind::XWing => KEM_XWING,
        }
    }

    /// The kind of a KEM id, `None` for ids this build cannot seal to or open.
    pub const fn from_id(id: u16) -> Option<KemKind> {
        match id {
            KEM_X25519_HKDF_SHA256 => Some(KemKind::X25519),
            KEM_XWING => Some(KemKind::XWing),
            _ => None,
        }
    }

    /// Name for people and JSON: `x25519-hkdf-sha256` or `x-wing`.
    pub const fn name(self) -> &'static str {
        match self {
            KemKind::X25519 => "x25519-hkdf-sha256",
            KemKind::XWing => "x-wing",
        }
    }

    /// Length of a public key (`SerializePublicKey`).
    pub const fn public_key_len(self) -> usize {
        match self {
            KemKind::X25519 => 32,
            KemKind::XWing => XWING_PUBLIC_LEN,
        }
    }

    /// The field name in key files: `x25519` or `xwing`.
    const fn field(self) -> &'static str {
        match self {
            KemKind::X25519 => "x25519",
            KemKind::XWing => "xwing",
        }
    }
}

/// Length of an X-Wing public key: the ML-KEM-768 encapsulation key (1184 bytes), then the
/// X25519 public key (32).
pub const XWING_PUBLIC_LEN: usize = 1216;

/// A recipient's private key: 32 bytes for either kind. For X25519 it is the raw private key
/// (RFC 9180 `DeserializePrivateKey`, unclamped); for X-Wing it is the decapsulation key seed
/// from which both halves are expanded (draft-connolly-cfrg-xwing-kem, `GenerateKeyPairDerand`).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecipientSecret {
    #[zeroize(skip)]
    kem: KemKind,
    secret: [u8; 32],
}

impl RecipientSecret {
    /// A key of kind `kem` from its 32 secret bytes.
    pub fn new(kem: KemKind, secret: [u8; 32]) -> Self {
        RecipientSecret { kem, secret }
    }

    /// Draws a fresh key of kind `kem` from the OS CSPRNG.
    pub fn generate(kem: KemKind) -> Result<Self, KeyError> {
        Ok(RecipientSecret {
            kem,
            secret: *random_32()?,
        })
    }

    /// The kind of key.
    pub fn kem(&self) -> KemKind {
        self.kem
    }

    /// The 32 secret bytes.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public key, as a recipient list and the stanza key id carry it.
    pub fn public_key(&self) -> Vec<u8> {
        match self.kem {
            KemKind::X25519 => {
                let sk = x25519_dalek::StaticSecret::from(self.secret);
                x25519_dalek::PublicKey::from(&sk).as_bytes().to_vec()
            }
            KemKind::XWing => {
                use hpke::{Deserializable, Kem, Serializable};
                type X = hpke::kem::XWing;
                // Invariant: any 32 bytes are an X-Wing decapsulation key (the length is the
                // only check `from_bytes` makes).
                let sk = <X as Kem>::PrivateKey::from_bytes(&self.secret)
                    .expect("32 bytes are an X-Wing private key");
                X::sk_to_pk(&sk).to_bytes().to_vec()
            }
        }
    }

    /// The public half as a device public key.
    pub fn device_public(&self) -> DevicePublic {
        DevicePublic {
            kem: self.kem,
            public_key: self.public_key(),
        }
    }

    /// Encodes as the text of a device key file: `camseal-device-key-v1`, then one
    /// `x25519 <hex>` or `xwing <hex>` line with the 32 secret bytes.
    pub fn to_text(&self) -> Zeroizing<String> {
        text::encode_secret_named(DEVICE_KEY_HEADER, self.kem.field(), &self.secret)
    }

    /// Decodes the text of a device key file.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        let (index, secret) = text::decode_secret_named(
            s,
            DEVICE_KEY_HEADER,
            [KemKind::X25519.field(), KemKind::XWing.field()],
        )?;
        let kem = [KemKind::X25519, KemKind::XWing][index];
        Ok(RecipientSecret {
            kem,
            secret: *secret,
        })
    }
}

/// What a reader opens segments with: one X25519 secret (`[u8; 32]`, the only kind before
/// X-Wing), or any number of [`RecipientSecret`]s, tried in order.
pub trait OpeningKeys {
    /// The keys, in the order to try them.
    fn opening_keys(&self) -> std::borrow::Cow<'_, [RecipientSecret]>;
}

impl OpeningKeys for [u8; 32] {
    fn opening_keys(&self) -> std::borrow::Cow<'_, [RecipientSecret]> {
        std::borrow::Cow::Owned(vec![RecipientSecret::new(KemKind::X25519, *self)])
    }
}

impl OpeningKeys for Zeroizing<[u8; 32]> {
    fn opening_keys(&self) -> std::borrow::Cow<'_, [RecipientSecret]> {
        (**self).opening_keys()
    }
}

impl OpeningKeys for [RecipientSecret] {
    fn opening_keys(&self) -> std::borrow::Cow<'_, [RecipientSecret]> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl<const N: usize> OpeningKeys for [RecipientSecret; N] {
    fn opening_keys(&self) -> std::borrow::Cow<'_, [RecipientSecret]> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl core::fmt::Debug for RecipientSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RecipientSecret({}, <redacted>)", self.kem.name())
    }
}

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

    /// The account's X-Wing decapsulation key seed: `HKDF-SHA256(ikm = seed, salt = "",
    /// info = "camseal v1 account x-wing")`. Derived like the X25519 half, so the backup
    /// restores it too.
    pub fn xwing_secret(&self) -> Zeroizing<[u8; 32]> {
        derive(&self.seed, INFO_ACCOUNT_XWING)
    }

    /// The account's recipient key of kind `kem`.
    pub fn recipient_secret(&self, kem: KemKind) -> RecipientSecret {
        let secret = match kem {
            KemKind::X25519 => self.x25519_secret(),
            KemKind::XWing => self.xwing_secret(),
        };
        RecipientSecret::new(kem, *secret)
    }

    /// Both recipient keys of the account, hybrid first: a reader tries each, so footage
    /// sealed before and after a home switched kinds opens alike.
    pub fn recipient_secrets(&self) -> [RecipientSecret; 2] {
        [
            self.recipient_secret(KemKind::XWing),
            self.recipient_secret(KemKind::X25519),
        ]
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

/// A viewer device's own public key (DK_i), listed as a recipient next to the account key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DevicePublic {
    /// The kind of key.
    pub kem: KemKind,
    /// The public key: 32 bytes for X25519, [`XWING_PUBLIC_LEN`] for X-Wing.
    pub public_key: Vec<u8>,
}

impl DevicePublic {
    /// Encodes as the text of a `devices/NAME.pub` file: `camseal-device-v1`, then one
    /// `x25519 <hex>` or `xwing <hex>` line.
    pub fn to_text(&self) -> String {
        text::encode_public_named(DEVICE_PUB_HEADER, self.kem.field(), &self.public_key)
    }

    /// Decodes the text of a `devices/NAME.pub` file (files written before X-Wing, with an
    /// `x25519` line, read as before), and checks the key as a recipient list would.
    pub fn from_text(s: &str) -> Result<Self, KeyError> {
        let kinds = [KemKind::X25519, KemKind::XWing];
        let (index, public_key) = text::decode_public_named(
            s,
            DEVICE_PUB_HEADER,
            [
                (kinds[0].field(), kinds[0].public_key_len()),
                (kinds[1].field(), kinds[1].public_key_len()),
            ],
        )?;
        let kem = kinds[index];
        check_recipient_key(kem.id(), &public_key).map_err(KeyError::BadFormat)?;
        Ok(DevicePublic { kem, public_key })
    }

    /// The device as a recipient with `label`.
    pub fn recipient(&self, label: impl Into<String>) -> Recipient {
        Recipient {
            kem: self.kem.id(),
            public_key: self.public_key.clone(),
            label: label.into(),
        }
    }
}

/// Checks a public key of a KEM this build knows: its length, that an X25519 key (alone or
/// as X-Wing's second half) is not of small order, and that an X-Wing key's ML-KEM half
/// passes the FIPS 203 encapsulation key check. Keys of other KEMs pass unchecked: they are
/// carried, never sealed to. The error text says what is wrong, without the key.
pub(crate) fn check_recipient_key(kem: u16, key: &[u8]) -> Result<(), String> {
    let Some(kind) = KemKind::from_id(kem) else {
        return Ok(());
    };
    let name = match kind {
        KemKind::X25519 => "an X25519",
        KemKind::XWing => "an X-Wing",
    };
    if key.len() != kind.public_key_len() {
        return Err(format!(
            "{name} key is {} bytes, not {}",
            kind.public_key_len(),
            key.len()
        ));
    }
    let x25519_half = &key[key.len() - 32..];
    if is_low_order_x25519(x25519_half) {
        return Err(match kind {
            KemKind::X25519 => {
                "the X25519 key is a low-order point (nothing could be sealed to it)".into()
            }
            KemKind::XWing => "the X25519 half of the X-Wing key is a low-order point".into(),
        });
    }
    if kind == KemKind::XWing {
        use hpke::{Deserializable, Kem};
        if <hpke::kem::XWing as Kem>::PublicKey::from_bytes(key).is_err() {
            return Err(
                "the ML-KEM-768 half of the X-Wing key fails the FIPS 203 encapsulation key check"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Whether Diffie-Hellman with this X25519 public key gives the all-zero output for every
/// private key: true exactly for points of small order, where a clamped scalar (a multiple
/// of the cofactor 8) kills the whole point. HPKE would refuse to seal to such a key.
fn is_low_order_x25519(key: &[u8]) -> bool {
    let Ok(u) = <[u8; 32]>::try_from(key) else {
        return false;
    };
    x25519_dalek::x25519([1; 32], u) == [0; 32]
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
const DEVICE_KEY_HEADER: &str = "camseal-device-key-v1";
const DEVICE_PUB_HEADER: &str = "camseal-device-v1";
const INFO_ACCOUNT_ED25519: &[u8] = b"camseal v1 account ed25519";
const INFO_ACCOUNT_X25519: &[u8] = b"camseal v1 account x25519";
const INFO_ACCOUNT_XWING: &[u8] = b"camseal v1 account x-wing";
const PIN_HEADER: &str = "camseal-pinned-account-v1";

#[cfg(test)]
mod tests;
