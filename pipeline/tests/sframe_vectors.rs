//! RFC 9605 Appendix C: header encodings and the AES-GCM suites' encryption vectors.

use camseal::seal::{SframeHeader, SframeKey, SframeSuite};
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("data/sframe/rfc9605.json");
    serde_json::from_str(text).expect("vector file parses")
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

#[test]
fn header_encodings() {
    let v = vectors();
    let cases = v["header"].as_array().unwrap();
    assert_eq!(cases.len(), 289);
    for case in cases {
        let header = SframeHeader {
            kid: case["kid"].as_u64().unwrap(),
            ctr: case["ctr"].as_u64().unwrap(),
        };
        let want = hex(&case["encoded"]);
        let mut got = Vec::new();
        header.encode(&mut got);
        assert_eq!(got, want, "{header:?}");
        let (parsed, len) = SframeHeader::parse(&want).unwrap();
        assert_eq!((parsed, len), (header, want.len()));
    }
}

#[test]
fn aes_gcm_suites() {
    let v = vectors();
    let cases = v["sframe"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "suites 0x0004 and 0x0005");
    for case in cases {
        let suite = SframeSuite::from_id(case["cipher_suite"].as_u64().unwrap() as u16).unwrap();
        let key = SframeKey::derive(
            suite,
            case["kid"].as_u64().unwrap(),
            &hex(&case["base_key"]),
        )
        .unwrap();
        let ctr = case["ctr"].as_u64().unwrap();
        let mut ct = Vec::new();
        key.seal_append(ctr, &hex(&case["metadata"]), &hex(&case["pt"]), &mut ct)
            .unwrap();
        assert_eq!(ct, hex(&case["ct"]), "suite {suite:?}");
        let mut pt = Vec::new();
        key.open_append(&ct, &hex(&case["metadata"]), &mut pt)
            .unwrap();
        assert_eq!(pt, hex(&case["pt"]));
    }
}
