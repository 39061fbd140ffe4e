//! A segment header over the format's caps (FORMAT.md §2: at most 1024 recipient stanzas
//! and 1 MiB) is refused by `verify` and `inspect` with a clear error, not parsed at length.

mod cli;

use std::fs;
use std::path::Path;

use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::{Header, MAX_HEADER_LEN, MAX_STANZAS, Stanza};
use cli::{Setup, camseal, s};

fn header(stanzas: usize, enc_len: usize) -> Vec<u8> {
    Header {
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        camera_key: [1; 32],
        stream_id: 0,
        segment_seq: 0,
        start_pts: 0,
        wallclock_ms: 0,
        prev_header_hash: [0; 32],
        extensions: Vec::new(),
        stanzas: (0..stanzas)
            .map(|i| Stanza {
                kem: 0x20,
                kdf: 1,
                aead: 1,
                key_id: (i as u64).to_be_bytes(),
                enc: vec![2; enc_len],
                wrapped_key: vec![3; 48],
            })
            .collect(),
        mac: [4; 32],
        signature: [5; 64],
    }
    .encode()
    .unwrap()
}

fn refused(setup: &Setup, file: &Path, needle: &str) {
    for args in [
        vec!["verify", "--camera", s(&setup.camera_pub), s(file)],
        vec!["inspect", s(file)],
    ] {
        let out = camseal(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(8), "{args:?}: {text}");
        assert!(text.contains(needle), "{args:?}: {needle:?} not in {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn headers_over_the_caps_are_refused_by_verify_and_inspect() {
    let setup = Setup::new();
    let many = setup.path("many-stanzas.cseg");
    fs::write(&many, header(MAX_STANZAS + 1, 32)).unwrap();
    refused(
        &setup,
        &many,
        "more recipient stanzas than the format's limit of 1024",
    );

    let big = setup.path("big-header.cseg");
    let bytes = header(20, 60_000);
    assert!(bytes.len() > MAX_HEADER_LEN);
    fs::write(&big, bytes).unwrap();
    refused(&setup, &big, "longer than the format's limit of 1 MiB");
}
