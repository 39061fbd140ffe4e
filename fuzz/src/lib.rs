//! Bodies of the fuzz targets (`fuzz_targets/*.rs` only call these), kept in a library so
//! that they build and can be run on single inputs with `cargo test` as well.
//!
//! Each body feeds arbitrary bytes to a parser the way the product does and checks that it
//! returns (an error is fine; a panic, an overflow or a hang is a bug), plus a few cheap
//! invariants the parser documents.

use std::path::PathBuf;

use arbitrary::Unstructured;
use camseal::footage::{SegmentFile, check_chain};
use camseal::keys::RecipientList;
use camseal::nal::{
    Codec, PocReader, access_units, classify, frame_rate, nal_units, sniff_codec,
};
use camseal::segment::inspect::inspect;
use camseal::segment::read::{Opener, SegmentReader, Verifier};
use camseal::segment::{
    Gap, GapReason, Header, Item, Parsed, encode_gap_extensions, header_message,
};
use camseal::spool::SegmentId;
use ed25519_dalek::{Signer, SigningKey};

/// The camera of `docs/vectors` (Ed25519 seed `07` × 32).
pub fn camera() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// The X25519 secret of the first recipient of `docs/vectors`.
pub const RECIPIENT_SECRET: [u8; 32] = [1; 32];

/// NAL units, access units, codec sniffing, SPS timing and the chunker over one buffer.
pub fn nal(data: &[u8]) {
    let _ = sniff_codec(data);
    let mut end = 0;
    for unit in nal_units(data) {
        assert_eq!(unit.span.start, end, "NAL spans must partition the input");
        end = unit.span.end;
        let _ = classify(Codec::H264, unit.payload);
        let _ = classify(Codec::H265, unit.payload);
    }
    assert_eq!(end, data.len());
    let max_chunk = data.first().map_or(1, |&b| usize::from(b) * 7 + 1);
    for codec in [Codec::H264, Codec::H265] {
        let _ = frame_rate(codec, data);
        let mut poc = PocReader::new(codec);
        let mut end = 0;
        for au in access_units(codec, data) {
            assert_eq!(au.span.start, end, "access units must partition the input");
            end = au.span.end;
            let bytes = &data[au.span];
            let _ = poc.access_unit(bytes);
            let mut at = 0;
            for chunk in camseal::chunk::chunk_access_unit(bytes, max_chunk) {
                assert_eq!(
                    chunk.range.start, at,
                    "chunks must partition the access unit"
                );
                assert!(!chunk.range.is_empty() && chunk.range.len() <= max_chunk);
                at = chunk.range.end;
            }
            assert_eq!(at, bytes.len());
        }
        assert_eq!(end, data.len());
    }
}

/// A segment file as `inspect`, `verify` and `decrypt` read it. The first input byte picks
/// a mode: bit 0 re-signs a parseable header with [`camera`] (so that mutations get past the
/// header signature to the records), the rest of the input is the file.
pub fn segment(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 != 0 {
        resign_header(rest)
    } else {
        rest.to_vec()
    };
    let camera_pub = camera().verifying_key().to_bytes();
    let report = inspect(&bytes, Some(&camera_pub));
    assert!(report.parsed_to <= bytes.len() as u64);
    let _ = inspect(&bytes, None);
    read(&bytes, None);
    read(&bytes, Some(&RECIPIENT_SECRET));
}

/// `bytes` with its header (when one parses) signed by [`camera`].
pub fn resign_header(bytes: &[u8]) -> Vec<u8> {
    let Ok(Parsed::Complete(mut header, used)) = Header::parse(bytes) else {
        return bytes.to_vec();
    };
    let camera = camera();
    header.camera_key = camera.verifying_key().to_bytes();
    header.signature = camera.sign(&header_message(&header.hash())).to_bytes();
    let Ok(mut out) = header.encode() else {
        return bytes.to_vec();
    };
    out.extend_from_slice(&bytes[used..]);
    out
}

/// The reading loop of `verify` (no key) and `decrypt` (a recipient key) over `bytes`.
fn read(bytes: &[u8], key: Option<&[u8; 32]>) {
    let Ok(mut reader) = SegmentReader::new(bytes) else {
        return;
    };
    enum Walk {
        Open(Opener),
        Verify(Verifier),
    }
    let mut walk = match key {
        Some(key) => match Opener::new(reader.header(), key) {
            Ok(opener) => Walk::Open(opener),
            Err(_) => return,
        },
        None => Walk::Verify(Verifier::new(reader.header())),
    };
    let mut plain = Vec::new();
    loop {
        let Ok(item) = reader.next_item() else {
            return;
        };
        let step = match (&mut walk, item) {
            (Walk::Open(o), Item::Record(r)) => {
                plain.clear();
                o.open(&r, &mut plain).map(drop)
            }
            (Walk::Verify(v), Item::Record(r)) => v.observe(&r).map(drop),
            (Walk::Open(o), Item::Checkpoint(c)) => o.checkpoint(&c).map(drop),
            (Walk::Verify(v), Item::Checkpoint(c)) => v.checkpoint(&c).map(drop),
            (_, Item::Trailer(t)) => {
                let _ = match walk {
                    Walk::Open(o) => o.finish(&t),
                    Walk::Verify(v) => v.finish(&t),
                };
                return;
            }
        };
        if step.is_err() {
            return;
        }
    }
}

/// The stream-1 window of `docs/vectors`: segments 0, 1, 2, 3 (cut off) and 5.
const VECTORS: [&[u8]; 5] = [
    include_bytes!("../../docs/vectors/v2-chain-0.cseg"),
    include_bytes!("../../docs/vectors/v2-chain-1.cseg"),
    include_bytes!("../../docs/vectors/v2-chain-2.cseg"),
    include_bytes!("../../docs/vectors/v2-cutoff-3.cseg"),
    include_bytes!("../../docs/vectors/v2-gaps-5.cseg"),
];

/// The chain and gap checker (`check_chain`, what `verify` and `decrypt` decide from the
/// signed headers) on a set of headers built from the vectors' real ones: the input picks
/// which to take (byte 0: a bit per vector; `1f` is the valid window), how many copies to
/// add, and per header whether to change its sequence number, stream, gaps or predecessor
/// hash. Only headers that `validate` accepts are given, as `load_headers` would.
pub fn chain(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let base: Vec<Header> = VECTORS
        .iter()
        .filter_map(|b| match Header::parse(b) {
            Ok(Parsed::Complete(h, _)) => Some(h),
            _ => None,
        })
        .collect();
    let pick: u8 = u.arbitrary().unwrap_or(0);
    let mut headers: Vec<Header> = base
        .iter()
        .enumerate()
        .filter(|(i, _)| pick & (1 << i) != 0)
        .map(|(_, h)| h.clone())
        .collect();
    let extra = u.int_in_range(0..=6u8).unwrap_or(0);
    for _ in 0..extra {
        let i = u.choose_index(base.len()).unwrap_or(0);
        headers.push(base[i].clone());
    }
    for i in 0..headers.len() {
        let op: u8 = u.arbitrary().unwrap_or(0);
        if op & 1 != 0 {
            headers[i].segment_seq = if op & 0x80 != 0 {
                u.arbitrary().unwrap_or(u64::MAX)
            } else {
                u.int_in_range(0..=12).unwrap_or(0)
            };
        }
        if op & 2 != 0 {
            headers[i].stream_id = u.int_in_range(1..=2).unwrap_or(1);
        }
        if op & 4 != 0 {
            let n = u.int_in_range(0..=3u8).unwrap_or(0);
            let mut gaps = Vec::new();
            for _ in 0..n {
                let reason = GapReason::from_code(u.int_in_range(1..=4).unwrap_or(1))
                    .unwrap_or(GapReason::Crash);
                let lost_segments = if u.arbitrary().unwrap_or(false) {
                    let a: u64 = if op & 0x40 != 0 {
                        u.arbitrary().unwrap_or(0)
                    } else {
                        u.int_in_range(0..=12).unwrap_or(0)
                    };
                    let len: u64 = u.int_in_range(0..=4).unwrap_or(0);
                    Some((a, a.saturating_add(len)))
                } else {
                    None
                };
                gaps.push(Gap {
                    reason,
                    lost_segments,
                    frames: u.arbitrary().unwrap_or(0),
                    from_pts: 0,
                    to_pts: 0,
                });
            }
            headers[i].extensions = encode_gap_extensions(&gaps);
        }
        if op & 8 != 0 {
            headers[i].prev_header_hash = match u.int_in_range(0..=2u8).unwrap_or(0) {
                0 => [0; 32],
                1 => {
                    let j = u.choose_index(headers.len()).unwrap_or(0);
                    headers[j].hash()
                }
                _ => u.arbitrary().unwrap_or([0x5a; 32]),
            };
        }
    }
    let mut files: Vec<SegmentFile> = headers
        .into_iter()
        .filter(|h| h.validate().is_ok())
        .enumerate()
        .map(|(i, header)| SegmentFile {
            path: PathBuf::from(format!("{i}.cseg")),
            header_hash: header.hash(),
            header,
        })
        .collect();
    files.sort_by_key(|f| (f.header.stream_id, f.header.segment_seq));
    let from_seq = u.int_in_range(0..=8).unwrap_or(0);
    let Ok(plan) = check_chain(&files, from_seq) else {
        return;
    };
    // What an accepted window must be: one stream, no sequence number twice, and every hole
    // (checked when short enough to walk) declared lost by a given header.
    let lost: Vec<(u64, u64)> = files
        .iter()
        .flat_map(|f| f.header.gaps())
        .filter_map(|g| g.lost_segments)
        .collect();
    let declared = |seq: u64| lost.iter().any(|&(a, z)| (a..=z).contains(&seq));
    for pair in files.windows(2) {
        let (a, b) = (&pair[0].header, &pair[1].header);
        assert_eq!(
            a.stream_id, b.stream_id,
            "an accepted window has one stream"
        );
        assert!(
            a.segment_seq < b.segment_seq,
            "an accepted window has no duplicate"
        );
        if b.segment_seq - a.segment_seq < 1024 {
            for seq in a.segment_seq + 1..b.segment_seq {
                assert!(
                    declared(seq),
                    "hole at {seq} accepted without a declaration"
                );
            }
        }
    }
    let last = files.last().map_or(0, |f| f.header.segment_seq);
    assert!(plan.may_be_cut_off(last, true));
}

/// A signed recipient list as a camera or viewer reads it from a file. When it parses, it is
/// within the documented limits.
pub fn recipients(data: &[u8]) {
    if let Ok(list) = RecipientList::parse_signed(data) {
        assert!(!list.recipients.is_empty() && list.recipients.len() <= 256);
        for r in &list.recipients {
            assert!(r.label.len() <= 64);
        }
        let _ = list.account_id();
    }
}

/// The four pairing messages (PROTOCOL.md §9), each fed to the side that receives it, with
/// the earlier steps run honestly with the setup code `12345678`. Byte 0 picks the step:
///
/// - 0: the frame length check of every step, and the setup code parser;
/// - 1: the camera receives the input as a viewer's `hello`;
/// - 2, 3, 4: the viewer's `share`, the camera's `list`, the viewer's `result` message: the
///   honest message with the input XORed over it (and any extra input bytes appended). An
///   unchanged message must pair; any change must fail, since every one is authenticated;
/// - 5: the camera refuses with the input (as text) as its reason: the viewer must get it
///   back, cut to the cap and with no control characters.
pub fn pairing(data: &[u8]) {
    use camseal::keys::{AccountSecret, CameraSecret, KEM_X25519_HKDF_SHA256, Recipient};
    use camseal::pairing::{
        ExpectCameraResult, ExpectCameraShare, ExpectViewerHello, ExpectViewerList, PairingError,
        SetupCode, ViewerStart, frame_len,
    };

    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let code = || SetupCode::parse("1234-5678").expect("a valid code");
    let account = AccountSecret::from_seed([7; 32]);
    let Ok(list) = (RecipientList {
        version: 1,
        account: account.public().ed25519,
        recipients: vec![Recipient {
            kem: KEM_X25519_HKDF_SHA256,
            public_key: account.public().x25519.to_vec(),
            label: "account".into(),
        }],
    })
    .sign(&account) else {
        return;
    };
    let camera = CameraSecret::from_seed([9; 32]);
    // The honest message with the input XORed over it; whether it changed.
    let mutate = |honest: &[u8]| -> (Vec<u8>, bool) {
        let mut m = honest.to_vec();
        for (i, b) in input.iter().enumerate() {
            match m.get_mut(i) {
                Some(x) => *x ^= b,
                None => m.push(*b),
            }
        }
        let changed = m != honest;
        (m, changed)
    };
    let expect = |result: Result<(), PairingError>, changed: bool, step: &str| match result {
        Ok(()) => assert!(!changed, "a changed {step} message was accepted"),
        Err(e) => assert!(changed, "the honest {step} message was refused: {e}"),
    };
    let Ok((viewer, hello)) = ViewerStart::start(&code(), list.clone()) else {
        return;
    };
    match mode % 6 {
        0 => {
            if let Some(header) = input.get(..4) {
                let header = [header[0], header[1], header[2], header[3]];
                for cap in [
                    ExpectViewerHello::MAX_LEN,
                    ExpectCameraShare::MAX_LEN,
                    ExpectViewerList::MAX_LEN,
                    ExpectCameraResult::MAX_LEN,
                ] {
                    if let Ok(len) = frame_len(header, cap) {
                        assert!(len <= cap);
                    }
                }
            }
            if let Ok(code) = SetupCode::parse(&String::from_utf8_lossy(input)) {
                let digits = code.as_str();
                assert!(digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()));
            }
        }
        1 => {
            let _ = ExpectViewerHello::new(code()).receive(input);
        }
        2 => {
            let Ok((_, share)) = ExpectViewerHello::new(code()).receive(&hello) else {
                panic!("the honest hello was refused");
            };
            let (share, changed) = mutate(&share);
            expect(viewer.receive(&share).map(drop), changed, "share");
        }
        3 => {
            let Ok((cam, share)) = ExpectViewerHello::new(code()).receive(&hello) else {
                panic!("the honest hello was refused");
            };
            let Ok((_, msg)) = viewer.receive(&share) else {
                panic!("the honest share was refused");
            };
            let (msg, changed) = mutate(&msg);
            let got = cam.receive(&msg);
            if let Ok((got, _)) = &got {
                assert_eq!(*got, list, "the camera got another list");
            }
            expect(got.map(drop), changed, "list");
        }
        _ => {
            let Ok((cam, share)) = ExpectViewerHello::new(code()).receive(&hello) else {
                panic!("the honest hello was refused");
            };
            let Ok((viewer, msg)) = viewer.receive(&share) else {
                panic!("the honest share was refused");
            };
            let Ok((got, answer)) = cam.receive(&msg) else {
                panic!("the honest list was refused");
            };
            if mode % 6 == 4 {
                let Ok(result) = answer.paired(&camera, &got) else {
                    return;
                };
                let (result, changed) = mutate(&result);
                let paired = viewer.receive(&result);
                if let Ok(public) = &paired {
                    assert_eq!(*public, camera.public(), "paired with another camera");
                }
                expect(paired.map(drop), changed, "result");
            } else {
                let reason = String::from_utf8_lossy(input);
                let Ok(result) = answer.refused(&reason) else {
                    return;
                };
                match viewer.receive(&result) {
                    Err(PairingError::Refused(r)) => {
                        // Cut to 1024 bytes on a character boundary, controls shown as '?'.
                        let mut end = reason.len().min(1024);
                        while !reason.is_char_boundary(end) {
                            end -= 1;
                        }
                        let shown: String = reason[..end]
                            .chars()
                            .map(|c| if c.is_control() { '?' } else { c })
                            .collect();
                        assert_eq!(r, shown);
                    }
                    other => panic!("a refusal arrived as {other:?}"),
                }
            }
        }
    }
}

/// One page of an S3 ListObjectsV2 answer, read as `S3Sink::list` reads it: the XML parsed
/// by rusty-s3, each key turned into a segment id under a prefix the input picks.
pub fn s3_listing(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(page) = rusty_s3::actions::ListObjectsV2::parse_response(text) else {
        return;
    };
    for prefix in ["", "cams", "cams/home/"] {
        for c in &page.contents {
            if let Some(id) = SegmentId::from_object_key(prefix, &c.key) {
                // The id names the object it came from.
                assert_eq!(
                    SegmentId::from_object_key(prefix, &id.object_key(prefix)),
                    Some(id)
                );
            }
        }
    }
}

/// The settings file of `camseal run --config`: `camseal::config::parse` on any text. Checks
/// that settings come in file order and that every position (of a setting or of an error)
/// lies inside the text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    let inside = |at: camseal::config::Position| {
        assert!(at.line >= 1 && at.line <= lines && at.column >= 1, "{at} in {lines} lines");
        let line = text.split('\n').nth(at.line - 1).unwrap_or_default();
        assert!(at.column <= line.chars().count() + 1, "{at}: past its line");
    };
    match camseal::config::parse(text) {
        Ok(settings) => {
            for s in &settings {
                inside(s.at);
            }
            assert!(settings.windows(2).all(|w| (w[0].at.line, w[0].at.column) < (w[1].at.line, w[1].at.column)));
        }
        Err(camseal::config::ConfigError::Syntax { at, .. })
        | Err(camseal::config::ConfigError::Shape { at, .. }) => inside(at),
        Err(e) => panic!("an error without a position: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_seeds_pass() {
        config(include_bytes!("../corpus/config/default"));
        config(include_bytes!("../corpus/config/shapes"));
        config(include_bytes!("../corpus/config/refused"));
        config("\u{e9}\u{e9} = [\n\"x".as_bytes());
    }

    #[test]
    fn the_vectors_form_an_accepted_window() {
        // The seed `1f` of the chain corpus: all five headers, unchanged.
        chain(&[0x1f]);
        for v in VECTORS {
            segment(&[[0].as_slice(), v].concat());
            segment(&[[1].as_slice(), v].concat());
        }
    }

    #[test]
    fn every_pairing_step_runs_honest_and_changed() {
        for mode in 0..6u8 {
            pairing(&[mode]);
            pairing(&[mode, 0, 0, 1]);
            pairing(&[mode, 0, 0, 0, 0, 0x21, b'1', b'2']);
        }
    }
}
