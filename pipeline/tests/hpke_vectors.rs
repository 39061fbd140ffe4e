//! RFC 9180 Appendix A.1 (base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM):
//! the suite camseal wraps segment keys with. The first encryption goes through camseal's own
//! `hpke_seal`/`hpke_open`; the later sequence numbers and the exporter check the HPKE
//! context of the same crate and suite.

use std::collections::HashMap;

use camseal::segment::read::hpke_open;
use camseal::segment::write::hpke_seal;
use hpke::{Deserializable, Kem as _, Serializable};

type Kem = hpke::kem::X25519HkdfSha256;
type Aead = hpke::aead::AesGcm128;
type Kdf = hpke::kdf::HkdfSha256;

fn vectors() -> HashMap<String, Vec<u8>> {
    include_str!("data/hpke/rfc9180-a1.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key = value");
            (k.trim().to_owned(), hex::decode(v.trim()).expect("hex"))
        })
        .collect()
}

fn arr(v: &[u8]) -> [u8; 32] {
    v.try_into().expect("32 bytes")
}

#[test]
fn derive_keypair_matches() {
    let v = vectors();
    let (sk, pk) = Kem::derive_keypair(&v["ikmR"]);
    assert_eq!(pk.to_bytes().to_vec(), v["pkRm"]);
    // The crate stores X25519 scalars clamped (RFC 7748 §5); the RFC prints them unclamped.
    let mut want = arr(&v["skRm"]);
    want[0] &= 248;
    want[31] &= 127;
    want[31] |= 64;
    assert_eq!(sk.to_bytes().to_vec(), want.to_vec());
}

#[test]
fn camseal_seal_and_open_reproduce_the_first_encryption() {
    let v = vectors();
    let (enc, ct) = hpke_seal(
        &v["pkRm"],
        &v["info"],
        &v["aad0"],
        &v["pt"],
        &arr(&v["ikmE"]),
    )
    .unwrap();
    assert_eq!(enc, v["enc"]);
    assert_eq!(enc, v["pkEm"]);
    assert_eq!(ct, v["ct0"]);
    let pt = hpke_open(&arr(&v["skRm"]), &enc, &v["info"], &v["aad0"], &ct).unwrap();
    assert_eq!(&pt[..], &v["pt"][..]);
    // A wrong key or a modified ciphertext does not open.
    assert!(hpke_open(&[7; 32], &enc, &v["info"], &v["aad0"], &ct).is_none());
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert!(hpke_open(&arr(&v["skRm"]), &enc, &v["info"], &v["aad0"], &bad).is_none());
}

#[test]
fn context_sequence_and_exporter() {
    let v = vectors();
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&v["skRm"]).unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&v["enc"]).unwrap();
    let mut ctx =
        hpke::setup_receiver::<Aead, Kdf, Kem>(&hpke::OpModeR::Base, &sk, &enc, &v["info"])
            .unwrap();
    for i in 0..3 {
        let pt = ctx
            .open(&v[&format!("ct{i}")], &v[&format!("aad{i}")])
            .unwrap();
        assert_eq!(pt, v["pt"], "sequence {i}");
    }
    let mut exported = [0u8; 32];
    ctx.export(&v["exporter_context0"], &mut exported).unwrap();
    assert_eq!(exported.to_vec(), v["exported_value0"]);
}
