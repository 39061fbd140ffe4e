//! Recipient lists: who may open new segments, versioned and signed by the account key.
//!
//! Encoding (all integers big-endian; see `docs/PROTOCOL.md`):
//! ```text
//! body   = "CSRL" | format u16 (=1) | version u64 | account ed25519 [32] | count u16
//!          | count * (kem u16 | key_len u16 | key | label_len u8 | label)
//! signed = body | Ed25519 signature [64] over ("camseal recipient list v1" || body)
//! ```

use std::collections::HashMap;

use ed25519_dalek::{Signature, Signer};

#[cfg(test)]
use super::KEM_X25519_HKDF_SHA256;
use super::wire::Reader;
use super::{AccountSecret, KeyError, account_id, check_recipient_key, verifying_key};

/// One recipient: a KEM public key that every new segment key is wrapped to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    /// HPKE KEM id: [`super::KEM_X25519_HKDF_SHA256`] or [`super::KEM_XWING`]; unknown ids
    /// are carried unchanged, so that further KEMs can be added without a new list format.
    pub kem: u16,
    /// The KEM public key (32 bytes for X25519, 1216 for X-Wing).
    pub public_key: Vec<u8>,
    /// A short human name ("account", "phone"), at most 64 bytes of UTF-8, no control
    /// characters.
    pub label: String,
}

/// A versioned recipient list, as signed by an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecipientList {
    /// Monotonic version: a camera only installs a list newer than the one it has.
    pub version: u64,
    /// Ed25519 public key of the account that signs the list.
    pub account: [u8; 32],
    /// The recipients, 1 to 256 of them, no two with the same KEM and key.
    pub recipients: Vec<Recipient>,
}

impl RecipientList {
    /// The recipients this build can wrap segment keys to, as `(kem, public key)` pairs
    /// for the engine, and those it cannot (a newer KEM on the list), which will not be
    /// able to watch. `camseal run` and the embedding API share this one rule.
    pub fn wrappable(&self) -> (Vec<(u16, Vec<u8>)>, Vec<&Recipient>) {
        let (known, unknown): (Vec<&Recipient>, Vec<&Recipient>) = self
            .recipients
            .iter()
            .partition(|r| super::KemKind::from_id(r.kem).is_some());
        let known = known
            .into_iter()
            .map(|r| (r.kem, r.public_key.clone()))
            .collect();
        (known, unknown)
    }

    /// Encodes the list and appends the account's signature.
    ///
    /// Fails if `account` is not the account the list names, or if the list breaks a limit
    /// that [`RecipientList::parse_signed`] enforces (so nothing is signed that a camera
    /// would refuse).
    pub fn sign(&self, account: &AccountSecret) -> Result<Vec<u8>, KeyError> {
        let signing_key = account.signing_key();
        if signing_key.verifying_key().to_bytes() != self.account {
            return Err(KeyError::AccountMismatch);
        }
        let mut out = self.encode_body()?;
        let signature = signing_key.sign(&signed_message(&out));
        out.extend_from_slice(&signature.to_bytes());
        Ok(out)
    }

    /// Parses a signed list and verifies its signature against the account key it names.
    ///
    /// This proves only that *some* account signed the list; the caller decides whether it
    /// is the right account (a camera compares it with the key it pinned).
    pub fn parse_signed(bytes: &[u8]) -> Result<RecipientList, KeyError> {
        if bytes.len() > MAX_SIGNED_LEN {
            return Err(KeyError::BadFormat(format!(
                "a recipient list is at most {MAX_SIGNED_LEN} bytes, this is {}",
                bytes.len()
            )));
        }
        if !bytes.starts_with(MAGIC) {
            return Err(not_a_list());
        }
        if bytes.len() < SIGNATURE_LEN {
            return Err(KeyError::BadFormat(
                "too short to be a recipient list".into(),
            ));
        }
        let (body, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let list = decode_body(body)?;
        let key = verifying_key(&list.account)?;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(signature);
        key.verify_strict(&signed_message(body), &Signature::from_bytes(&sig))
            .map_err(|_| KeyError::BadSignature)?;
        Ok(list)
    }

    /// The short id of the signing account (see [`account_id`]).
    pub fn account_id(&self) -> String {
        account_id(&self.account)
    }

    fn encode_body(&self) -> Result<Vec<u8>, KeyError> {
        check_count(self.recipients.len())?;
        let mut out = Vec::with_capacity(
            HEADER_LEN
                + self
                    .recipients
                    .iter()
                    .map(|r| 5 + r.public_key.len() + r.label.len())
                    .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.account);
        // Invariant: check_count bounded the count by MAX_RECIPIENTS, which fits in u16.
        out.extend_from_slice(&(self.recipients.len() as u16).to_be_bytes());
        let mut seen = Seen::with_capacity(self.recipients.len());
        for (i, r) in self.recipients.iter().enumerate() {
            check_recipient(i, r.kem, &r.public_key, &r.label)?;
            check_unique(&mut seen, i, r)?;
            out.extend_from_slice(&r.kem.to_be_bytes());
            // Invariant: check_recipient bounded the key by MAX_KEY_LEN and the label by
            // MAX_LABEL_LEN, which fit in u16 and u8.
            out.extend_from_slice(&(r.public_key.len() as u16).to_be_bytes());
            out.extend_from_slice(&r.public_key);
            out.push(r.label.len() as u8);
            out.extend_from_slice(r.label.as_bytes());
        }
        Ok(out)
    }
}

fn decode_body(body: &[u8]) -> Result<RecipientList, KeyError> {
    let mut r = Reader::new(body);
    if r.bytes(MAGIC.len(), "magic")? != MAGIC {
        return Err(not_a_list());
    }
    let format = r.u16("format version")?;
    if format != FORMAT_VERSION {
        return Err(KeyError::BadFormat(format!(
            "unsupported recipient list format version {format} (this camseal reads version \
             {FORMAT_VERSION})"
        )));
    }
    let version = r.u64("list version")?;
    let account = r.array::<32>("account key")?;
    let count = usize::from(r.u16("recipient count")?);
    check_count(count)?;
    let mut recipients: Vec<Recipient> = Vec::with_capacity(count);
    for i in 0..count {
        let kem = r.u16("recipient kem")?;
        let key_len = usize::from(r.u16("recipient key length")?);
        let public_key = r.bytes(key_len, "recipient key")?.to_vec();
        let label_len = usize::from(r.u8("recipient label length")?);
        let label = std::str::from_utf8(r.bytes(label_len, "recipient label")?)
            .map_err(|_| KeyError::BadFormat(format!("recipient {}: label is not UTF-8", i + 1)))?
            .to_owned();
        check_recipient(i, kem, &public_key, &label)?;
        let recipient = Recipient {
            kem,
            public_key,
            label,
        };
        recipients.push(recipient);
    }
    r.finish()?;
    let mut seen = Seen::with_capacity(recipients.len());
    for (i, recipient) in recipients.iter().enumerate() {
        check_unique(&mut seen, i, recipient)?;
    }
    Ok(RecipientList {
        version,
        account,
        recipients,
    })
}

fn not_a_list() -> KeyError {
    KeyError::BadFormat("not a recipient list (the file does not start with \"CSRL\")".into())
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(body);
    msg
}

fn check_count(count: usize) -> Result<(), KeyError> {
    if count == 0 {
        return Err(KeyError::BadFormat("the recipient list is empty".into()));
    }
    if count > MAX_RECIPIENTS {
        return Err(KeyError::BadFormat(format!(
            "{count} recipients; at most {MAX_RECIPIENTS} are allowed"
        )));
    }
    Ok(())
}

/// `index` is 0-based; messages count from 1.
fn check_recipient(index: usize, kem: u16, key: &[u8], label: &str) -> Result<(), KeyError> {
    let n = index + 1;
    check_recipient_key(kem, key)
        .map_err(|e| KeyError::BadFormat(format!("recipient {n}: {e}")))?;
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(KeyError::BadFormat(format!(
            "recipient {n}: key length {} is outside 1..={MAX_KEY_LEN}",
            key.len()
        )));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(KeyError::BadFormat(format!(
            "recipient {n}: label is {} bytes; at most {MAX_LABEL_LEN} are allowed",
            label.len()
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(KeyError::BadFormat(format!(
            "recipient {n}: label contains control characters"
        )));
    }
    Ok(())
}

/// Keys seen so far and where, so that a list is checked in time linear in its length.
type Seen<'a> = HashMap<(u16, &'a [u8]), usize>;

fn check_unique<'a>(seen: &mut Seen<'a>, index: usize, r: &'a Recipient) -> Result<(), KeyError> {
    if let Some(j) = seen.insert((r.kem, &r.public_key), index) {
        return Err(KeyError::BadFormat(format!(
            "recipient {} repeats the key of recipient {}",
            index + 1,
            j + 1
        )));
    }
    Ok(())
}

const MAGIC: &[u8; 4] = b"CSRL";
const FORMAT_VERSION: u16 = 1;
/// magic, format, version, account, count.
const HEADER_LEN: usize = 4 + 2 + 8 + 32 + 2;
const SIGNATURE_LEN: usize = 64;
const SIGNING_CONTEXT: &[u8] = b"camseal recipient list v1";
const MAX_RECIPIENTS: usize = 256;
const MAX_KEY_LEN: usize = 4096;
const MAX_LABEL_LEN: usize = 64;
/// The largest list the limits allow.
const MAX_SIGNED_LEN: usize =
    HEADER_LEN + MAX_RECIPIENTS * (2 + 2 + MAX_KEY_LEN + 1 + MAX_LABEL_LEN) + SIGNATURE_LEN;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AccountSecret;

    fn account(n: u8) -> AccountSecret {
        AccountSecret::from_seed([n; 32])
    }

    fn x25519(label: &str, byte: u8) -> Recipient {
        Recipient {
            kem: KEM_X25519_HKDF_SHA256,
            public_key: vec![byte; 32],
            label: label.into(),
        }
    }

    fn list(acc: &AccountSecret, version: u64, recipients: Vec<Recipient>) -> RecipientList {
        RecipientList {
            version,
            account: acc.public().ed25519,
            recipients,
        }
    }

    #[test]
    fn round_trip_with_unknown_kem_carried() {
        let acc = account(1);
        let l = list(
            &acc,
            7,
            vec![
                x25519("account", 9),
                Recipient {
                    kem: 0x647a, // an X-Wing-sized key under an id this version does not know
                    public_key: vec![3; 1216],
                    label: "tablette ✓".into(),
                },
                x25519("", 10),
            ],
        );
        let signed = l.sign(&acc).unwrap();
        assert_eq!(RecipientList::parse_signed(&signed).unwrap(), l);
        assert_eq!(l.account_id(), acc.public().id());
    }

    #[test]
    fn encoding_matches_the_documented_layout() {
        let acc = account(2);
        let l = list(&acc, 0x0102_0304_0506_0708, vec![x25519("ab", 0xee)]);
        let signed = l.sign(&acc).unwrap();

        let mut body = Vec::new();
        body.extend_from_slice(b"CSRL");
        body.extend_from_slice(&[0, 1]);
        body.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        body.extend_from_slice(&acc.public().ed25519);
        body.extend_from_slice(&[0, 1]);
        body.extend_from_slice(&[0x00, 0x20, 0, 32]);
        body.extend_from_slice(&[0xee; 32]);
        body.extend_from_slice(&[2, b'a', b'b']);
        assert_eq!(&signed[..body.len()], &body[..]);
        assert_eq!(signed.len(), body.len() + 64);

        // The signature is Ed25519 over the context string followed by the body.
        let mut msg = b"camseal recipient list v1".to_vec();
        msg.extend_from_slice(&body);
        let sig = acc.signing_key().sign(&msg).to_bytes();
        assert_eq!(&signed[body.len()..], &sig[..]);
        // ... and not over the bare body.
        let bare = acc.signing_key().sign(&body).to_bytes();
        assert_ne!(&signed[body.len()..], &bare[..]);
    }

    #[test]
    fn every_byte_flip_is_rejected() {
        let acc = account(3);
        let l = list(&acc, 2, vec![x25519("account", 1), x25519("phone", 2)]);
        let signed = l.sign(&acc).unwrap();
        for i in 0..signed.len() {
            for bit in 0..8 {
                let mut bad = signed.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    RecipientList::parse_signed(&bad).is_err(),
                    "flip of bit {bit} in byte {i} accepted"
                );
            }
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_rejected() {
        let acc = account(4);
        let signed = list(&acc, 1, vec![x25519("account", 1)])
            .sign(&acc)
            .unwrap();
        for n in 0..signed.len() {
            assert!(RecipientList::parse_signed(&signed[..n]).is_err(), "{n}");
        }
        let mut longer = signed.clone();
        longer.push(0);
        assert!(RecipientList::parse_signed(&longer).is_err());
    }

    #[test]
    fn a_list_re_signed_by_another_account_names_that_account() {
        let (a, b) = (account(5), account(6));
        let l = list(&a, 1, vec![x25519("account", 1)]);
        // Signing a list that names a with b's key is refused outright.
        assert_eq!(l.sign(&b), Err(KeyError::AccountMismatch));
        // Swapping in b's signature on a's body fails verification.
        let signed_a = l.sign(&a).unwrap();
        let mut l_b = l.clone();
        l_b.account = b.public().ed25519;
        let signed_b = l_b.sign(&b).unwrap();
        let mut forged = signed_a.clone();
        let n = forged.len();
        forged[n - 64..].copy_from_slice(&signed_b[n - 64..]);
        assert_eq!(
            RecipientList::parse_signed(&forged),
            Err(KeyError::BadSignature)
        );
        // b's own list parses and names b.
        assert_eq!(
            RecipientList::parse_signed(&signed_b).unwrap().account,
            b.public().ed25519
        );
    }

    #[test]
    fn limits_are_enforced_on_both_sides() {
        let acc = account(7);
        let cases: Vec<Vec<Recipient>> = vec![
            vec![],
            (0..=256u16)
                .map(|i| Recipient {
                    kem: 0x9999,
                    public_key: i.to_be_bytes().to_vec(),
                    label: String::new(),
                })
                .collect(),
            vec![Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: vec![1; 31],
                label: "short".into(),
            }],
            vec![Recipient {
                kem: 0x9999,
                public_key: vec![],
                label: "empty".into(),
            }],
            vec![Recipient {
                kem: 0x9999,
                public_key: vec![1; 4097],
                label: "huge".into(),
            }],
            vec![x25519(&"x".repeat(65), 1)],
            vec![x25519("tab\there", 1)],
            vec![x25519("a", 1), x25519("b", 1)],
            // Low-order X25519 points: 0, 1, and a point of order 8.
            vec![x25519("zero", 0)],
            vec![Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: [&[1u8][..], &[0; 31]].concat(),
                label: "one".into(),
            }],
            vec![Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: hex::decode(
                    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
                )
                .unwrap(),
                label: "order 8".into(),
            }],
        ];
        for recipients in cases {
            let n = recipients.len();
            let l = list(&acc, 1, recipients);
            assert!(
                matches!(l.sign(&acc), Err(KeyError::BadFormat(_))),
                "signed a bad list of {n}"
            );
        }
        // 256 recipients and a 64-byte label are fine.
        let max: Vec<Recipient> = (0..256u16)
            .map(|i| Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: [i.to_be_bytes().as_slice(), &[0x55; 30]].concat(),
                label: "é".repeat(32),
            })
            .collect();
        let l = list(&acc, 1, max);
        assert_eq!(
            RecipientList::parse_signed(&l.sign(&acc).unwrap()).unwrap(),
            l
        );
    }

    #[test]
    fn bad_lists_signed_by_hand_are_rejected_by_the_parser() {
        // The parser must not rely on sign() having validated: build bodies by hand.
        let acc = account(8);
        let sign_raw = |body: &[u8]| {
            let mut out = body.to_vec();
            out.extend_from_slice(&acc.signing_key().sign(&signed_message(body)).to_bytes());
            out
        };
        let header = |count: u16| {
            let mut b = b"CSRL\x00\x01".to_vec();
            b.extend_from_slice(&1u64.to_be_bytes());
            b.extend_from_slice(&acc.public().ed25519);
            b.extend_from_slice(&count.to_be_bytes());
            b
        };
        let entry = |kem: u16, key: &[u8], label: &[u8]| {
            let mut b = kem.to_be_bytes().to_vec();
            b.extend_from_slice(&(key.len() as u16).to_be_bytes());
            b.extend_from_slice(key);
            b.push(label.len() as u8);
            b.extend_from_slice(label);
            b
        };
        let good = [header(1), entry(0x20, &[1; 32], b"ok")].concat();
        assert!(RecipientList::parse_signed(&sign_raw(&good)).is_ok());

        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", header(0)),
            ("count too large", header(257)),
            (
                "count beyond entries",
                [header(2), entry(0x20, &[1; 32], b"")].concat(),
            ),
            (
                "bad utf-8",
                [header(1), entry(0x20, &[1; 32], b"\xff")].concat(),
            ),
            (
                "x25519 length",
                [header(1), entry(0x20, &[1; 33], b"")].concat(),
            ),
            (
                "label too long",
                [header(1), entry(0x20, &[1; 32], &[b'a'; 65])].concat(),
            ),
            (
                "duplicate",
                [
                    header(2),
                    entry(0x20, &[1; 32], b"a"),
                    entry(0x20, &[1; 32], b"b"),
                ]
                .concat(),
            ),
            ("trailing byte", [good.clone(), vec![0]].concat()),
            (
                "format 2",
                [b"CSRL\x00\x02".to_vec(), good[6..].to_vec()].concat(),
            ),
            ("magic", [b"CSRX".to_vec(), good[4..].to_vec()].concat()),
        ];
        for (name, body) in cases {
            assert!(
                matches!(
                    RecipientList::parse_signed(&sign_raw(&body)),
                    Err(KeyError::BadFormat(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn oversized_input_is_rejected_before_parsing() {
        // docs/PROTOCOL.md states this bound.
        assert_eq!(MAX_SIGNED_LEN, 1_066_352);
        let huge = vec![0u8; MAX_SIGNED_LEN + 1];
        assert!(matches!(
            RecipientList::parse_signed(&huge),
            Err(KeyError::BadFormat(_))
        ));
    }
}
