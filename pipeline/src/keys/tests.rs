//! Tests of the account, camera and device keys, and the published vectors.
//!
//! The vectors in `VECTOR_*` (also printed in `docs/PROTOCOL.md`) were computed with an
//! independent implementation (Python `hashlib`/`hmac` and `cryptography`), not with this
//! code.

use ed25519_dalek::Signer;
use hmac::{KeyInit, Mac};

use super::*;

type HmacSha256 = hmac::Hmac<Sha256>;

const VECTOR_ACCOUNT_X25519_SECRET: &str =
    "c7f39a34007a44ab192d031a1341888b4ea16f9e8b23c5457ae361de18ef723d";
const VECTOR_ACCOUNT_X25519: &str =
    "f0f84668858195c123ce85c167ca53144cafe1a4679d4bece4397dbf20eb4a10";
const VECTOR_ACCOUNT_ED25519: &str =
    "783dd79c869f261e0e7f6f85624a489d4c3b27090cfb928857a2c45a6ecabba1";
const VECTOR_ACCOUNT_ID: &str = "750897cf7565ace9";
const VECTOR_CAMERA_ED25519: &str =
    "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7";
const VECTOR_CAMERA_ID: &str = "551dec042d28d432";
const VECTOR_DEVICE_X25519: &str =
    "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a";
const VECTOR_LIST: &str = "4353524c00010000000000000001783dd79c869f261e0e7f6f85624a489d4c3b27090cfb928857a2c45a6ecabba1000200200020f0f84668858195c123ce85c167ca53144cafe1a4679d4bece4397dbf20eb4a10076163636f756e740020002079a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a0570686f6e65b41701c07ee102cf773f023d9306cbef70653a3b8f13cf25b3c21ebd56d6a36a385a1fad9393a6c41bae585ffca3344ff7b06dc03cc7a469bd7a23ed774d7901";
/// Sealed by the independent implementation with Argon2id (m = 65536 KiB, t = 3, p = 4),
/// salt a0..af, nonce c0..cb, passphrase entropy 7f * 16, account seed 00..1f.
const VECTOR_BACKUP: &str = "4353424b0001000100000000000300000004a0a1a2a3a4a5a6a7a8a9aaabacadaeafc0c1c2c3c4c5c6c7c8c9cacb9fdcbeb08659342873b0be1fca9675deeaf3748ae3c6600c00ec576f79fb3c3debadd33476cefd3747ab60b14c9dbc21";
const VECTOR_BACKUP_PASSPHRASE: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

fn seq(start: u8) -> [u8; 32] {
    core::array::from_fn(|i| start + i as u8)
}

fn unhex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).unwrap();
    out
}

/// HKDF-SHA256 with an empty salt and 32 bytes of output, written out from RFC 5869 with
/// plain HMAC so it does not share code with `derive`.
fn hkdf_by_hand(ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut extract = <HmacSha256 as KeyInit>::new_from_slice(&[]).unwrap();
    extract.update(ikm);
    let prk = extract.finalize().into_bytes();
    let mut expand = <HmacSha256 as KeyInit>::new_from_slice(&prk).unwrap();
    expand.update(info);
    expand.update(&[1]);
    expand.finalize().into_bytes().into()
}

#[test]
fn account_vector() {
    let a = AccountSecret::from_seed(seq(0));
    assert_eq!(
        hex::encode(*a.x25519_secret()),
        VECTOR_ACCOUNT_X25519_SECRET
    );
    let p = a.public();
    assert_eq!(hex::encode(p.x25519), VECTOR_ACCOUNT_X25519);
    assert_eq!(hex::encode(p.ed25519), VECTOR_ACCOUNT_ED25519);
    assert_eq!(p.id(), VECTOR_ACCOUNT_ID);
    assert_eq!(account_id(&p.ed25519), VECTOR_ACCOUNT_ID);
}

#[test]
fn account_derivation_matches_rfc5869_by_hand() {
    for start in [0u8, 1, 100, 200] {
        let seed = seq(start);
        let a = AccountSecret::from_seed(seed);
        assert_eq!(
            *a.x25519_secret(),
            hkdf_by_hand(&seed, b"camseal v1 account x25519")
        );
        assert_eq!(
            a.signing_key().to_bytes(),
            hkdf_by_hand(&seed, b"camseal v1 account ed25519")
        );
        // The two halves are independent keys.
        assert_ne!(*a.x25519_secret(), a.signing_key().to_bytes());
    }
}

#[test]
fn camera_vector() {
    let c = CameraSecret::from_seed(seq(32));
    let p = c.public();
    assert_eq!(hex::encode(p.ed25519), VECTOR_CAMERA_ED25519);
    assert_eq!(p.id(), VECTOR_CAMERA_ID);
    assert_eq!(p.id().len(), 16);
    let msg = b"trailer";
    let sig = c.signing_key().sign(msg);
    p.verifying_key().unwrap().verify_strict(msg, &sig).unwrap();
}

#[test]
fn recipient_list_vector() {
    let a = AccountSecret::from_seed(seq(0));
    let device = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(seq(64)));
    assert_eq!(hex::encode(device.as_bytes()), VECTOR_DEVICE_X25519);
    let list = RecipientList {
        version: 1,
        account: a.public().ed25519,
        recipients: vec![
            Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: a.public().x25519.to_vec(),
                label: "account".into(),
            },
            Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: device.as_bytes().to_vec(),
                label: "phone".into(),
            },
        ],
    };
    // Ed25519 signatures are deterministic, so the whole signed list is a fixed vector.
    assert_eq!(hex::encode(list.sign(&a).unwrap()), VECTOR_LIST);
    let parsed = RecipientList::parse_signed(&hex::decode(VECTOR_LIST).unwrap()).unwrap();
    assert_eq!(parsed, list);
}

#[test]
fn generated_keys_differ() {
    let a = AccountSecret::generate().unwrap();
    let b = AccountSecret::generate().unwrap();
    assert_ne!(a.public(), b.public());
    let c = CameraSecret::generate().unwrap();
    let d = CameraSecret::generate().unwrap();
    assert_ne!(c.public(), d.public());
}

#[test]
fn text_round_trips() {
    let a = AccountSecret::from_seed(seq(0));
    let pub_text = a.public().to_text();
    assert_eq!(
        pub_text,
        format!(
            "camseal-account-v1\nx25519 {VECTOR_ACCOUNT_X25519}\ned25519 {VECTOR_ACCOUNT_ED25519}\n"
        )
    );
    assert_eq!(AccountPublic::from_text(&pub_text).unwrap(), a.public());
    let key_text = a.to_text();
    assert_eq!(
        key_text.as_str(),
        format!("camseal-account-key-v1\nseed {}\n", hex::encode(seq(0)))
    );
    assert_eq!(
        AccountSecret::from_text(&key_text).unwrap().public(),
        a.public()
    );

    let c = CameraSecret::from_seed(seq(32));
    let cpub = c.public().to_text();
    assert_eq!(
        cpub,
        format!("camseal-camera-v1\ned25519 {VECTOR_CAMERA_ED25519}\n")
    );
    assert_eq!(CameraPublic::from_text(&cpub).unwrap(), c.public());
    assert_eq!(
        CameraSecret::from_text(&c.to_text()).unwrap().public(),
        c.public()
    );

    let d = DevicePublic {
        kem: KemKind::X25519,
        public_key: unhex32(VECTOR_DEVICE_X25519).to_vec(),
    };
    assert_eq!(
        d.to_text(),
        format!("camseal-device-v1\nx25519 {VECTOR_DEVICE_X25519}\n")
    );
    assert_eq!(DevicePublic::from_text(&d.to_text()).unwrap(), d);
}

#[test]
fn xwing_device_keys_round_trip_and_are_checked() {
    let secret = RecipientSecret::new(KemKind::XWing, seq(64));
    let public = secret.device_public();
    assert_eq!(public.public_key.len(), XWING_PUBLIC_LEN);
    let text = public.to_text();
    assert!(text.starts_with("camseal-device-v1\nxwing "), "{text}");
    assert_eq!(
        text.len(),
        "camseal-device-v1\nxwing \n".len() + 2 * XWING_PUBLIC_LEN
    );
    assert_eq!(DevicePublic::from_text(&text).unwrap(), public);
    assert_eq!(public.recipient("phone").kem, KEM_XWING);

    let key_text = secret.to_text();
    assert_eq!(
        key_text.as_str(),
        format!("camseal-device-key-v1\nxwing {}\n", hex::encode(seq(64)))
    );
    let back = RecipientSecret::from_text(&key_text).unwrap();
    assert_eq!((back.kem(), back.secret()), (KemKind::XWing, &seq(64)));
    let classic = RecipientSecret::new(KemKind::X25519, seq(64));
    let back = RecipientSecret::from_text(&classic.to_text()).unwrap();
    assert_eq!(back.kem(), KemKind::X25519);
    assert_eq!(back.public_key(), classic.public_key());
    // A key file is not a public file.
    assert!(DevicePublic::from_text(&key_text).is_err());
    assert!(RecipientSecret::from_text(&text).is_err());

    // An X-Wing key of the wrong length, with a low-order X25519 half, or whose ML-KEM half
    // has a coefficient of 4095 (>= q = 3329) is refused.
    let mut bad_len = public.clone();
    bad_len.public_key.pop();
    let mut low_order = public.clone();
    low_order.public_key[1184..].copy_from_slice(&[0; 32]);
    let mut modulus = public.clone();
    modulus.public_key[0] = 0xff;
    modulus.public_key[1] |= 0x0f;
    for bad in [bad_len, low_order, modulus] {
        let e = DevicePublic::from_text(&bad.to_text()).unwrap_err();
        assert!(matches!(e, KeyError::BadFormat(_)), "{e}");
    }
}

#[test]
fn the_account_xwing_key_is_derived_from_the_seed() {
    let a = AccountSecret::from_seed(seq(0));
    let mut expected = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&[][..]), &seq(0))
        .expand(b"camseal v1 account x-wing", &mut expected)
        .unwrap();
    assert_eq!(*a.xwing_secret(), expected);
    assert_ne!(*a.xwing_secret(), *a.x25519_secret());
    let [hybrid, classic] = a.recipient_secrets();
    assert_eq!(hybrid.kem(), KemKind::XWing);
    assert_eq!(classic.public_key(), a.public().x25519);
    assert_eq!(KemKind::from_id(KEM_XWING), Some(KemKind::XWing));
    assert_eq!(KemKind::from_id(0x0021), None);
    let dbg = format!("{hybrid:?}");
    assert!(dbg.contains("redacted") && !dbg.contains(&hex::encode(&hybrid.secret()[..4])));
}

#[test]
fn files_of_one_kind_are_refused_as_another() {
    let a = AccountSecret::from_seed(seq(0));
    let c = CameraSecret::from_seed(seq(32));
    assert!(AccountPublic::from_text(&c.public().to_text()).is_err());
    assert!(CameraPublic::from_text(&a.public().to_text()).is_err());
    assert!(AccountSecret::from_text(&c.to_text()).is_err());
    assert!(CameraSecret::from_text(&a.to_text()).is_err());
    // A public file is not a key file, and vice versa.
    assert!(AccountSecret::from_text(&a.public().to_text()).is_err());
    assert!(AccountPublic::from_text(&a.to_text()).is_err());
    let e = CameraPublic::from_text(&a.public().to_text()).unwrap_err();
    assert!(e.to_string().contains("camseal-account-v1"), "{e}");
}

#[test]
fn invalid_ed25519_points_are_refused() {
    // y = 2 does not decompress to a curve point; the identity (y = 1) is weak.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for bad in [not_a_point, identity] {
        let cam = CameraPublic { ed25519: bad };
        assert!(cam.verifying_key().is_err(), "{}", hex::encode(bad));
        assert!(CameraPublic::from_text(&cam.to_text()).is_err());
        let acc = AccountPublic {
            x25519: [9; 32],
            ed25519: bad,
        };
        assert!(AccountPublic::from_text(&acc.to_text()).is_err());
    }
}

#[test]
fn secrets_do_not_show_in_debug() {
    let a = AccountSecret::from_seed([0xab; 32]);
    let c = CameraSecret::from_seed([0xab; 32]);
    for s in [format!("{a:?}"), format!("{c:?}")] {
        assert!(!s.contains("ab") && !s.contains("171"), "{s}");
        assert!(s.contains("redacted"));
    }
}

#[test]
fn backup_vector_opens() {
    let backup = hex::decode(VECTOR_BACKUP).unwrap();
    assert_eq!(BackupParams::of(&backup).unwrap(), BackupParams::DEFAULT);
    let passphrase = Passphrase::parse(VECTOR_BACKUP_PASSPHRASE).unwrap();
    let account = open_backup(&backup, &passphrase).unwrap();
    assert_eq!(
        hex::encode(account.public().ed25519),
        VECTOR_ACCOUNT_ED25519
    );
    assert_eq!(hex::encode(account.public().x25519), VECTOR_ACCOUNT_X25519);
}
