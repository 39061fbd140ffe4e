//! The control channel: a signed recipient list published for one camera on its sink, and
//! the camera's decision about it (pure: no files, sockets or clocks).
//!
//! What this module does **not** do: it does not fetch or store anything (`camseal run`
//! polls the sink, and [`crate::home::CameraHome::trust`] installs what [`decide`] accepts),
//! and it never trusts a list on first use: only a camera that already pinned an account
//! accepts lists from the channel.
//!
//! Encoding of the object `control/<camera_id>/recipients` (integers big-endian; see
//! `docs/PROTOCOL.md`):
//! ```text
//! body    = "CSCC" | format u16 (=1) | camera_id [8] | list_len u32 | signed list
//! object  = body | Ed25519 signature [64] over ("camseal control v1" || body)
//! ```
//! The signature is made by the same account key that signed the list inside, so the
//! object binds that list to one camera: the cloud can neither move a list to another
//! camera nor edit it.

use ed25519_dalek::{Signature, Signer, VerifyingKey};

use crate::keys::{AccountPin, AccountSecret, KeyError, RecipientList, account_id};

/// Why a control object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The list is signed by another account than the one the camera pinned.
    #[error("signed by account {got}, but this camera pinned account {pinned}")]
    ForeignAccount {
        /// The pinned account's id.
        pinned: String,
        /// The signing account's id.
        got: String,
    },
    /// The object does not parse, or a signature does not verify.
    #[error("not a valid signed control object: {0}")]
    Invalid(KeyError),
    /// The camera has no pinned account yet: the channel never enrolls a camera.
    #[error(
        "this camera has no pinned account yet: enroll it first (`camera setup` or `camera trust`)"
    )]
    NotEnrolled,
    /// The list's version is not above the installed one (a replay or a rollback).
    #[error("list version {version} is not newer than the installed version {installed}")]
    NotNewer {
        /// The offered version.
        version: u64,
        /// The installed version.
        installed: u64,
    },
    /// The object is bound to another camera.
    #[error("made for camera {got}, not for this camera ({own})")]
    OtherCamera {
        /// The camera id in the object.
        got: String,
        /// This camera's id.
        own: String,
    },
}

/// A control object that parsed and whose signatures verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlObject {
    /// The camera it is for (16 hex digits).
    pub camera_id: String,
    /// The list inside.
    pub list: RecipientList,
    /// The list's signed bytes, as `camera trust` takes them.
    pub signed_list: Vec<u8>,
}

/// What the camera does with a control object it fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Install it, and seal from the next segment on to its recipients.
    Apply(ControlObject),
    /// It is the list already installed: nothing to do.
    Installed,
    /// Refuse it and keep recording to the installed recipients.
    Refuse(Refusal),
}

/// Wraps `signed_list` (a list signed by `account`) for the camera `camera_id`.
pub fn seal(
    camera_id: &str,
    signed_list: &[u8],
    account: &AccountSecret,
) -> Result<Vec<u8>, KeyError> {
    let list = RecipientList::parse_signed(signed_list)?;
    let signing_key = account.signing_key();
    if signing_key.verifying_key().to_bytes() != list.account {
        return Err(KeyError::AccountMismatch);
    }
    let id = parse_camera_id(camera_id)?;
    let len = u32::try_from(signed_list.len())
        .map_err(|_| KeyError::BadFormat("the recipient list is too large".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + signed_list.len() + SIGNATURE_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&id);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(signed_list);
    let signature = signing_key.sign(&signed_message(&out));
    out.extend_from_slice(&signature.to_bytes());
    Ok(out)
}

/// Parses a control object and verifies both signatures (the list's, and the object's by
/// the same account). Which account it is, and whether it is newer, is [`decide`]'s call.
pub fn open(bytes: &[u8]) -> Result<ControlObject, KeyError> {
    if bytes.len() > MAX_OBJECT_LEN {
        return Err(KeyError::BadFormat(format!(
            "a control object is at most {MAX_OBJECT_LEN} bytes, this is {}",
            bytes.len()
        )));
    }
    if bytes.len() < HEADER_LEN + SIGNATURE_LEN || !bytes.starts_with(MAGIC) {
        return Err(KeyError::BadFormat(
            "not a control object (it does not start with \"CSCC\")".into(),
        ));
    }
    let (body, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    let format = u16::from_be_bytes([body[4], body[5]]);
    if format != FORMAT_VERSION {
        return Err(KeyError::BadFormat(format!(
            "unsupported control object format {format} (this camseal reads {FORMAT_VERSION})"
        )));
    }
    let camera_id = hex::encode(&body[6..14]);
    let len = u32::from_be_bytes([body[14], body[15], body[16], body[17]]) as usize;
    let signed_list = &body[HEADER_LEN..];
    if signed_list.len() != len {
        return Err(KeyError::BadFormat(
            "the list length does not match the object's size".into(),
        ));
    }
    let list = RecipientList::parse_signed(signed_list)?;
    let key = VerifyingKey::from_bytes(&list.account)
        .map_err(|_| KeyError::BadFormat("not a valid Ed25519 public key".into()))?;
    let mut sig = [0u8; SIGNATURE_LEN];
    sig.copy_from_slice(signature);
    key.verify_strict(&signed_message(body), &Signature::from_bytes(&sig))
        .map_err(|_| KeyError::BadSignature)?;
    Ok(ControlObject {
        camera_id,
        list,
        signed_list: signed_list.to_vec(),
    })
}

/// The camera's decision about a fetched object: it must verify, be made for `own_camera_id`,
/// be signed by the pinned account, and carry a version above `installed` (the version of
/// the installed list). The same version as the installed one is [`Decision::Installed`]
/// when it is the same signed list, and refused otherwise.
pub fn decide(
    bytes: &[u8],
    own_camera_id: &str,
    pin: Option<&AccountPin>,
    installed: Option<(&RecipientList, &[u8])>,
) -> Decision {
    let object = match open(bytes) {
        Ok(object) => object,
        Err(e) => return Decision::Refuse(Refusal::Invalid(e)),
    };
    if object.camera_id != own_camera_id {
        return Decision::Refuse(Refusal::OtherCamera {
            got: object.camera_id,
            own: own_camera_id.to_owned(),
        });
    }
    let Some(pin) = pin else {
        return Decision::Refuse(Refusal::NotEnrolled);
    };
    if pin.ed25519 != object.list.account {
        return Decision::Refuse(Refusal::ForeignAccount {
            pinned: pin.id(),
            got: account_id(&object.list.account),
        });
    }
    if let Some((list, signed)) = installed {
        if object.list.version == list.version && object.signed_list == signed {
            return Decision::Installed;
        }
        if object.list.version <= list.version {
            return Decision::Refuse(Refusal::NotNewer {
                version: object.list.version,
                installed: list.version,
            });
        }
    }
    Decision::Apply(object)
}

/// The object key of a camera's control object, under a sink's prefix:
/// `[PREFIX/]control/<camera_id>/recipients`.
pub fn object_key(prefix: &str, camera_id: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let tail = format!("control/{camera_id}/recipients");
    if prefix.is_empty() {
        tail
    } else {
        format!("{prefix}/{tail}")
    }
}

fn parse_camera_id(camera_id: &str) -> Result<[u8; 8], KeyError> {
    let mut out = [0u8; 8];
    if camera_id.len() != 16 || hex::decode_to_slice(camera_id, &mut out).is_err() {
        return Err(KeyError::BadFormat(format!(
            "{camera_id:?} is not a camera id (16 hex digits)"
        )));
    }
    Ok(out)
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(body);
    msg
}

const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 4 + 2 + 8 + 4;
const MAGIC: &[u8; 4] = b"CSCC";
/// A list is at most 2 MiB; the envelope adds less than 100 bytes.
const MAX_OBJECT_LEN: usize = 2 * 1024 * 1024 + 1024;
const SIGNATURE_LEN: usize = 64;
const SIGNING_CONTEXT: &[u8] = b"camseal control v1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KEM_X25519_HKDF_SHA256, Recipient};

    fn account(seed: u8) -> AccountSecret {
        AccountSecret::from_seed([seed; 32])
    }

    fn signed(account: &AccountSecret, version: u64) -> (RecipientList, Vec<u8>) {
        let list = RecipientList {
            version,
            account: account.public().ed25519,
            recipients: vec![Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: account.public().x25519.to_vec(),
                label: "account".into(),
            }],
        };
        let bytes = list.sign(account).unwrap();
        (list, bytes)
    }

    fn pin(account: &AccountSecret) -> AccountPin {
        AccountPin {
            ed25519: account.public().ed25519,
        }
    }

    const CAM: &str = "0123456789abcdef";

    #[test]
    fn a_newer_list_for_this_camera_from_the_pinned_account_applies() {
        let a = account(1);
        let (old, old_bytes) = signed(&a, 3);
        let (_, new_bytes) = signed(&a, 4);
        let object = seal(CAM, &new_bytes, &a).unwrap();
        match decide(&object, CAM, Some(&pin(&a)), Some((&old, &old_bytes))) {
            Decision::Apply(o) => {
                assert_eq!(o.list.version, 4);
                assert_eq!(o.signed_list, new_bytes);
            }
            other => panic!("{other:?}"),
        }
        let same = seal(CAM, &old_bytes, &a).unwrap();
        assert_eq!(
            decide(&same, CAM, Some(&pin(&a)), Some((&old, &old_bytes))),
            Decision::Installed
        );
    }

    #[test]
    fn rollback_foreign_other_camera_forged_and_unenrolled_are_refused() {
        let a = account(1);
        let (installed, installed_bytes) = signed(&a, 5);
        let inst = Some((&installed, &installed_bytes[..]));
        let (_, older) = signed(&a, 4);
        let object = seal(CAM, &older, &a).unwrap();
        assert!(matches!(
            decide(&object, CAM, Some(&pin(&a)), inst),
            Decision::Refuse(Refusal::NotNewer {
                version: 4,
                installed: 5
            })
        ));
        // Same version, different list: also a rollback of sorts.
        let mut other = installed.clone();
        other.recipients[0].label = "x".into();
        let other = seal(CAM, &other.sign(&a).unwrap(), &a).unwrap();
        assert!(matches!(
            decide(&other, CAM, Some(&pin(&a)), inst),
            Decision::Refuse(Refusal::NotNewer { .. })
        ));

        let b = account(2);
        let (_, foreign) = signed(&b, 9);
        let object = seal(CAM, &foreign, &b).unwrap();
        assert!(matches!(
            decide(&object, CAM, Some(&pin(&a)), inst),
            Decision::Refuse(Refusal::ForeignAccount { .. })
        ));

        let (_, newer) = signed(&a, 6);
        let object = seal("fedcba9876543210", &newer, &a).unwrap();
        assert!(matches!(
            decide(&object, CAM, Some(&pin(&a)), inst),
            Decision::Refuse(Refusal::OtherCamera { .. })
        ));
        assert!(matches!(
            decide(&seal(CAM, &newer, &a).unwrap(), CAM, None, None),
            Decision::Refuse(Refusal::NotEnrolled)
        ));

        // Any flipped byte: the camera id, the list, or the signature.
        let good = seal(CAM, &newer, &a).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(decide(&bad, CAM, Some(&pin(&a)), inst), Decision::Refuse(_)),
                "byte {i}"
            );
            assert!(
                matches!(
                    decide(&good[..i], CAM, Some(&pin(&a)), inst),
                    Decision::Refuse(Refusal::Invalid(_))
                ),
                "length {i}"
            );
        }
        // The envelope signed by another account around a list of the pinned account.
        assert_eq!(
            seal(CAM, &newer, &b).unwrap_err(),
            KeyError::AccountMismatch
        );
        assert!(matches!(
            decide(&good[..good.len() - 1], CAM, Some(&pin(&a)), inst),
            Decision::Refuse(Refusal::Invalid(_))
        ));
    }
}
