//! X-Wing (ML-KEM-768 + X25519) recipients, below the CLI:
//!
//! - the official X-Wing KEM vectors (`docs/vectors/xwing-kem.json`, copied unchanged from
//!   draft-connolly-cfrg-xwing-kem's `spec/test-vectors.json`): the public key from the
//!   seed, the ciphertext from `eseed`, and the shared secret, checked through camseal's own
//!   `hpke_seal_xwing`/`hpke_open_xwing` against an HPKE key schedule (RFC 9180 §5.1)
//!   written here from the spec;
//! - a camseal segment vector with an X-Wing and an X25519 stanza
//!   (`docs/vectors/xwing-segment-8.{cseg,json}`), deterministic from a seed, reproduced
//!   byte for byte;
//! - tampered X-Wing stanzas (re-signed by the camera, so that only the stanza check can
//!   catch them) fail cleanly;
//! - the size of a stanza of each kind, measured on real headers (`docs/PERFORMANCE.md`).
//!
//! To rewrite the segment vector after a deliberate format change:
//! `CAMSEAL_REGEN_VECTORS=1 cargo test -p camseal --test xwing_vectors`.

mod common;

use std::path::PathBuf;

use camseal::keys::{KemKind, RecipientSecret};
use camseal::segment::read::{Opener, SegmentReader, hpke_open, hpke_open_xwing};
use camseal::segment::write::{
    HPKE_KEM_X25519, HPKE_KEM_XWING, Randomness, RecipientKey, SegmentParams, SegmentWriter,
    fixed_test_eseeds, fixed_test_randomness, hpke_seal_xwing,
};
use camseal::segment::{CloseReason, Header, Parsed, SegmentEnd, SegmentError, header_message};
use camseal::segment::{hpke_info, key_id};
use common::{camera, recipient, sample_records, segment_params};
use ed25519_dalek::Signer;
use hkdf::Hkdf;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

// ---------------------------------------------------------------------------------------
// An HPKE base-mode key schedule with HKDF-SHA256 and AES-128-GCM, from RFC 9180 §5.1 and
// §4 (LabeledExtract / LabeledExpand), for the shared secret of any KEM.

fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> [u8; 32] {
    let labeled = [b"HPKE-v1".as_slice(), suite, label, ikm].concat();
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &labeled);
    prk.into()
}

fn labeled_expand(suite: &[u8], prk: &[u8; 32], label: &[u8], info: &[u8], len: u16) -> Vec<u8> {
    let labeled = [
        &len.to_be_bytes(),
        b"HPKE-v1".as_slice(),
        suite,
        label,
        info,
    ]
    .concat();
    let mut out = vec![0u8; usize::from(len)];
    Hkdf::<Sha256>::from_prk(prk)
        .unwrap()
        .expand(&labeled, &mut out)
        .unwrap();
    out
}

/// AES-128-GCM key and base nonce of an HPKE base-mode context with shared secret `ss`.
fn key_schedule(kem: u16, ss: &[u8], info: &[u8]) -> (Vec<u8>, [u8; 12]) {
    // suite_id = "HPKE" || kem_id || kdf_id (HKDF-SHA256) || aead_id (AES-128-GCM)
    let suite = [b"HPKE".as_slice(), &kem.to_be_bytes(), &[0, 1], &[0, 1]].concat();
    let psk_id_hash = labeled_extract(&suite, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(&suite, b"", b"info_hash", info);
    let context = [&[0u8][..], &psk_id_hash, &info_hash].concat(); // mode_base = 0
    let secret = labeled_extract(&suite, ss, b"secret", b"");
    let key = labeled_expand(&suite, &secret, b"key", &context, 16);
    let nonce = labeled_expand(&suite, &secret, b"base_nonce", &context, 12);
    (key, nonce.try_into().unwrap())
}

fn aes128gcm_seal(key: &[u8], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let aead = camseal_kernels::Aead::new(camseal_kernels::Suite::Aes128Gcm, key).unwrap();
    let mut out = vec![0u8; pt.len()];
    let tag = aead.seal_to(nonce, aad, pt, &mut out).unwrap();
    out.extend_from_slice(&tag);
    out
}

#[test]
fn official_xwing_vectors_through_camseals_hpke() {
    let text = std::fs::read_to_string(vector_dir().join("xwing-kem.json")).unwrap();
    let vectors: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 3);
    let info = b"camseal x-wing vector info";
    let plaintext = [0x42u8; 32];
    for (i, v) in vectors.iter().enumerate() {
        let (seed, sk, pk) = (unhex(&v["seed"]), unhex(&v["sk"]), unhex(&v["pk"]));
        let (eseed, ct, ss) = (unhex(&v["eseed"]), unhex(&v["ct"]), unhex(&v["ss"]));
        // The decapsulation key is the seed itself; the public key is expanded from it.
        assert_eq!(seed, sk, "vector {i}");
        let secret = RecipientSecret::new(KemKind::XWing, sk.clone().try_into().unwrap());
        assert_eq!(secret.public_key(), pk, "vector {i}: public key");

        let eseed: [u8; 64] = eseed.try_into().unwrap();
        let (enc, wrapped) = hpke_seal_xwing(&pk, info, b"aad", &plaintext, &eseed).unwrap();
        assert_eq!(enc, ct, "vector {i}: X-Wing ciphertext");
        let (key, nonce) = key_schedule(HPKE_KEM_XWING, &ss, info);
        assert_eq!(
            wrapped,
            aes128gcm_seal(&key, &nonce, b"aad", &plaintext),
            "vector {i}: the HPKE context is not keyed by the vector's shared secret"
        );
        let opened = hpke_open_xwing(secret.secret(), &enc, info, b"aad", &wrapped).unwrap();
        assert_eq!(&opened[..], &plaintext[..], "vector {i}");
        // Another key, or a changed ciphertext, does not open it.
        assert!(hpke_open_xwing(&[7; 32], &enc, info, b"aad", &wrapped).is_none());
        let mut bad = enc.clone();
        bad[500] ^= 1;
        assert!(hpke_open_xwing(secret.secret(), &bad, info, b"aad", &wrapped).is_none());
    }
}

// ---------------------------------------------------------------------------------------
// The segment vector.

const SEGMENT_VECTOR: &str = "xwing-segment-8";
/// The X-Wing recipient's decapsulation key.
const XWING_SECRET: [u8; 32] = [0x11; 32];
/// The X25519 recipient's seed (`common::recipient`).
const X25519_SEED: u8 = 1;
/// Every byte of the `Randomness::FixedForTests` seed.
const RANDOMNESS_SEED: u8 = 0x48;

fn vector_segment() -> Vec<u8> {
    let xwing_public = RecipientSecret::new(KemKind::XWing, XWING_SECRET).public_key();
    let (_, x25519_public) = recipient(X25519_SEED);
    let keys = [
        RecipientKey {
            kem: HPKE_KEM_XWING,
            public_key: &xwing_public,
        },
        RecipientKey {
            kem: HPKE_KEM_X25519,
            public_key: &x25519_public,
        },
    ];
    let params = SegmentParams {
        stream_id: 8,
        wallclock_ms: 1_764_000_000_000,
        ..segment_params(&keys)
    };
    let mut w = SegmentWriter::create(
        Vec::new(),
        &params,
        &camera(7),
        &Randomness::FixedForTests([RANDOMNESS_SEED; 32]),
    )
    .unwrap();
    for (pts, key, cont, data) in sample_records(4) {
        w.append(pts, key, cont, &data).unwrap();
    }
    w.finish(SegmentEnd {
        end_pts: 12_000,
        reason: CloseReason::Keyframe,
    })
    .unwrap()
    .0
}

fn header_of(bytes: &[u8]) -> (Header, usize) {
    match Header::parse(bytes).unwrap() {
        Parsed::Complete(h, len) => (h, len),
        Parsed::Needed(_) => panic!("incomplete header"),
    }
}

fn describe_vector(bytes: &[u8]) -> Value {
    let (header, header_len) = header_of(bytes);
    let (base_key, _) = fixed_test_randomness([RANDOMNESS_SEED; 32], 2);
    let eseeds = fixed_test_eseeds([RANDOMNESS_SEED; 32], 2);
    let xwing = RecipientSecret::new(KemKind::XWing, XWING_SECRET);
    let (x25519_secret, x25519_public) = recipient(X25519_SEED);
    let info = hpke_info(&header.camera_key, header.stream_id, header.segment_seq);
    let stanzas: Vec<Value> = header
        .stanzas
        .iter()
        .zip(&eseeds)
        .map(|(s, eseed)| {
            let randomness = if s.kem == HPKE_KEM_XWING {
                json!({ "eseed": hex::encode(eseed) })
            } else {
                json!({ "ikm_e": hex::encode(&eseed[..32]) })
            };
            json!({
                "kem": s.kem,
                "kdf": s.kdf,
                "aead": s.aead,
                "key_id": hex::encode(s.key_id),
                "randomness": randomness,
                "enc_len": s.enc.len(),
                "enc": hex::encode(&s.enc),
                "wrapped_key": hex::encode(&s.wrapped_key),
            })
        })
        .collect();
    json!({
        "name": SEGMENT_VECTOR,
        "about": "a segment of stream 8 sealed to an X-Wing recipient (kem 0x647a) and an \
                  X25519 recipient (kem 0x0020); each stanza opens with its own key",
        "file": format!("{SEGMENT_VECTOR}.cseg"),
        "file_len": bytes.len(),
        "file_sha256": hex::encode(Sha256::digest(bytes)),
        "camera_ed25519_seed": hex::encode([7u8; 32]),
        "randomness_seed": hex::encode([RANDOMNESS_SEED; 32]),
        "segment_base_key": hex::encode(base_key),
        "hpke_info": hex::encode(&info),
        "header_len": header_len,
        "header_hash": hex::encode(header.hash()),
        "recipients": [
            {
                "kem": HPKE_KEM_XWING,
                "secret": hex::encode(XWING_SECRET),
                "public": hex::encode(xwing.public_key()),
            },
            {
                "kem": HPKE_KEM_X25519,
                "secret": hex::encode(x25519_secret),
                "public": hex::encode(x25519_public),
            },
        ],
        "stanzas": stanzas,
    })
}

#[test]
fn the_xwing_segment_vector_reproduces_and_opens_for_each_recipient() {
    let bytes = vector_segment();
    let json = format!("{:#}\n", describe_vector(&bytes));
    let bin = vector_dir().join(format!("{SEGMENT_VECTOR}.cseg"));
    let meta = vector_dir().join(format!("{SEGMENT_VECTOR}.json"));
    if std::env::var_os("CAMSEAL_REGEN_VECTORS").is_some() {
        std::fs::write(&bin, &bytes).unwrap();
        std::fs::write(&meta, &json).unwrap();
    }
    assert!(
        std::fs::read(&bin).unwrap() == bytes,
        "{} changed: the X-Wing stanza or the writer is no longer reproducible",
        bin.display()
    );
    assert_eq!(std::fs::read_to_string(&meta).unwrap(), json);

    let (header, _) = header_of(&bytes);
    let kems: Vec<u16> = header.stanzas.iter().map(|s| s.kem).collect();
    assert_eq!(kems, [0x647a, 0x0020]);
    let xwing = RecipientSecret::new(KemKind::XWing, XWING_SECRET);
    let (x25519_secret, x25519_public) = recipient(X25519_SEED);
    assert_eq!(header.stanzas[0].key_id, key_id(&xwing.public_key()));
    assert_eq!(header.stanzas[1].key_id, key_id(&x25519_public));

    // Each stanza unwraps the published base key with its own key, and only with it.
    let (base_key, _) = fixed_test_randomness([RANDOMNESS_SEED; 32], 2);
    let info = hpke_info(&header.camera_key, header.stream_id, header.segment_seq);
    let (s0, s1) = (&header.stanzas[0], &header.stanzas[1]);
    let opened = hpke_open_xwing(xwing.secret(), &s0.enc, &info, b"", &s0.wrapped_key).unwrap();
    assert_eq!(&opened[..], &base_key[..]);
    let opened = hpke_open(&x25519_secret, &s1.enc, &info, b"", &s1.wrapped_key).unwrap();
    assert_eq!(&opened[..], &base_key[..]);
    assert!(hpke_open_xwing(xwing.secret(), &s1.enc, &info, b"", &s1.wrapped_key).is_none());

    // Whole-segment opening: the hybrid key alone, the classic key alone, and both.
    let records = sample_records(4);
    let want: Vec<u8> = records.iter().flat_map(|r| r.3.clone()).collect();
    for keys in [
        vec![xwing.clone()],
        vec![RecipientSecret::new(KemKind::X25519, x25519_secret)],
        vec![
            RecipientSecret::new(KemKind::X25519, [9; 32]),
            xwing.clone(),
        ],
    ] {
        assert_eq!(open_with(&bytes, &keys).unwrap(), want);
    }
    // A stranger of either kind is not a recipient.
    for stranger in [
        RecipientSecret::new(KemKind::XWing, [0x12; 32]),
        RecipientSecret::new(KemKind::X25519, [9; 32]),
    ] {
        assert!(matches!(
            open_with(&bytes, &[stranger]),
            Err(SegmentError::NotARecipient)
        ));
    }
}

fn open_with(bytes: &[u8], keys: &[RecipientSecret]) -> Result<Vec<u8>, SegmentError> {
    let mut reader = SegmentReader::new(bytes)?;
    let mut opener = Opener::with_keys(reader.header(), keys)?;
    let mut out = Vec::new();
    loop {
        match reader.next_item()? {
            camseal::segment::Item::Record(r) => {
                opener.open(&r, &mut out)?;
            }
            camseal::segment::Item::Checkpoint(c) => {
                opener.checkpoint(&c)?;
            }
            camseal::segment::Item::Trailer(t) => {
                opener.finish(&t)?;
                return Ok(out);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tampered stanzas.

/// `bytes` with its header changed by `tweak` and signed again by the camera: what a
/// malicious camera-key holder could send, which the signature check does not stop.
fn re_signed(bytes: &[u8], tweak: impl FnOnce(&mut Header)) -> Vec<u8> {
    let (mut header, len) = header_of(bytes);
    tweak(&mut header);
    header.signature = camera(7).sign(&header_message(&header.hash())).to_bytes();
    [header.encode().unwrap(), bytes[len..].to_vec()].concat()
}

#[test]
fn tampered_xwing_stanzas_fail_cleanly() {
    let bytes = vector_segment();
    let xwing = RecipientSecret::new(KemKind::XWing, XWING_SECRET);
    type Tweak = Box<dyn Fn(&mut camseal::segment::Stanza)>;
    let cases: Vec<(&str, Tweak)> = vec![
        ("enc bit in the ML-KEM part", Box::new(|s| s.enc[10] ^= 1)),
        (
            "enc bit in the X25519 part",
            Box::new(|s| s.enc[1110] ^= 0x80),
        ),
        ("enc one byte short", Box::new(|s| s.enc.truncate(1119))),
        ("enc one byte long", Box::new(|s| s.enc.push(0))),
        ("enc empty", Box::new(|s| s.enc.clear())),
        ("enc of X25519 size", Box::new(|s| s.enc.truncate(32))),
        ("wrapped key bit", Box::new(|s| s.wrapped_key[3] ^= 1)),
        ("wrapped key empty", Box::new(|s| s.wrapped_key.clear())),
    ];
    for (name, tweak) in cases {
        let bad = re_signed(&bytes, |h| tweak(&mut h.stanzas[0]));
        // The X-Wing recipient's stanza is listed under its key id but does not open.
        let e = open_with(&bad, std::slice::from_ref(&xwing)).unwrap_err();
        assert!(matches!(e, SegmentError::HeaderTampered), "{name}: {e:?}");
    }
    // A changed kem id: the stanza is now of a suite nobody implements, so the X-Wing
    // recipient is not a recipient (for this build) rather than a victim of tampering.
    let other_kem = re_signed(&bytes, |h| h.stanzas[0].kem = 0x0021);
    assert!(matches!(
        open_with(&other_kem, std::slice::from_ref(&xwing)),
        Err(SegmentError::NotARecipient)
    ));
    // The same change without re-signing fails on the camera's signature already.
    let (mut header, _) = header_of(&bytes);
    header.verify_signature().unwrap();
    header.stanzas[0].enc[10] ^= 1;
    assert!(matches!(
        header.verify_signature(),
        Err(SegmentError::BadHeaderSignature)
    ));
}

// ---------------------------------------------------------------------------------------
// Size.

/// The header of a segment sealed to `n` recipients of `kem`, as bytes.
fn header_len_for(kem: KemKind, n: usize) -> usize {
    let publics: Vec<Vec<u8>> = (0..n)
        .map(|i| RecipientSecret::new(kem, [i as u8 + 1; 32]).public_key())
        .collect();
    let keys: Vec<RecipientKey<'_>> = publics
        .iter()
        .map(|pk| RecipientKey {
            kem: kem.id(),
            public_key: pk,
        })
        .collect();
    let mut w = SegmentWriter::create(
        Vec::new(),
        &segment_params(&keys),
        &camera(7),
        &Randomness::FixedForTests([3; 32]),
    )
    .unwrap();
    w.append(0, true, false, b"frame").unwrap();
    let (bytes, _) = w
        .finish(SegmentEnd {
            end_pts: 3000,
            reason: CloseReason::Keyframe,
        })
        .unwrap();
    header_of(&bytes).1
}

/// Prints the table in `docs/PERFORMANCE.md` ("Recipient stanzas"), and checks the stanza
/// sizes against the layout in `docs/FORMAT.md`: kem, kdf, aead (2 each), key id (8),
/// enc length (2) and enc, wrapped key length (2) and the wrapped 32-byte key with its
/// 16-byte tag.
#[test]
fn stanza_sizes_per_kind_and_per_segment() {
    let mut rows = Vec::new();
    for kem in [KemKind::X25519, KemKind::XWing] {
        let one = header_len_for(kem, 1);
        let stanza = header_len_for(kem, 2) - one;
        let enc = match kem {
            KemKind::X25519 => 32,
            KemKind::XWing => 1120,
        };
        assert_eq!(
            stanza,
            2 + 2 + 2 + 8 + 2 + enc + 2 + 32 + 16,
            "{}",
            kem.name()
        );
        let sizes: Vec<usize> = [1, 3, 10].iter().map(|&n| header_len_for(kem, n)).collect();
        // Each further recipient adds exactly one stanza.
        assert_eq!(sizes[1], one + 2 * stanza);
        assert_eq!(sizes[2], one + 9 * stanza);
        rows.push(format!(
            "| {} | {stanza} | {} | {} | {} |",
            kem.name(),
            sizes[0],
            sizes[1],
            sizes[2]
        ));
    }
    println!("| kem | bytes per stanza | header, 1 recipient | 3 recipients | 10 recipients |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
