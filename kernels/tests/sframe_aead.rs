//! The AES-GCM step of the RFC 9605 (SFrame) Appendix C vectors, on every backend this CPU
//! runs. The vectors are the pipeline's copy (`pipeline/tests/data/sframe/rfc9605.json`);
//! key and nonce derivation are the pipeline's job and are tested there, here only
//! `AEAD.Encrypt(sframe_key, nonce, aad, pt)` must give the vector's ciphertext and tag.

use camseal_kernels::test_util::{check_known_answer, check_rejects};
use camseal_kernels::{Aead, Backend, Nonce, Suite, TAG_LEN, Tag};

#[test]
fn rfc9605_appendix_c_aes_gcm_suites() {
    let json: serde_json::Value = serde_json::from_str(include_str!(
        "../../pipeline/tests/data/sframe/rfc9605.json"
    ))
    .expect("parse rfc9605.json");
    let vectors = json["sframe"].as_array().expect("sframe vectors");
    let mut ran = 0;
    for v in vectors {
        let suite = match v["cipher_suite"].as_u64() {
            Some(4) => Suite::Aes128Gcm,
            Some(5) => Suite::Aes256Gcm,
            // The appendix also has AES-CTR+HMAC suites, which camseal does not use.
            _ => continue,
        };
        let key = hex_field(v, "sframe_key");
        let nonce: Nonce = hex_field(v, "nonce").try_into().expect("12-byte nonce");
        let aad = hex_field(v, "aad");
        let metadata = hex_field(v, "metadata");
        let pt = hex_field(v, "pt");
        let sealed = hex_field(v, "ct");
        // `ct` is the whole SFrame record: header || ciphertext || tag, where the AAD is
        // header || metadata.
        let header_len = aad.len() - metadata.len();
        assert_eq!(&sealed[..header_len], &aad[..header_len]);
        let body = &sealed[header_len..];
        let (ct, tag) = body.split_at(body.len() - TAG_LEN);
        let tag: Tag = tag.try_into().expect("16-byte tag");

        for backend in Backend::available() {
            let aead = Aead::with_backend(suite, &key, backend).expect("key length");
            check_known_answer(&aead, &nonce, &aad, &pt, ct, &tag);
            let mut bad = tag;
            bad[TAG_LEN - 1] ^= 0x80;
            check_rejects(&aead, &nonce, &aad, ct, &bad);
        }
        ran += 1;
    }
    assert_eq!(
        ran, 2,
        "RFC 9605 has one AES-128-GCM and one AES-256-GCM vector"
    );
}

fn hex_field(v: &serde_json::Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap_or_else(|| panic!("field {name}"))).expect("hex")
}
