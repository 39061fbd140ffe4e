//! Bodies of the fuzz targets (`fuzz_targets/*.rs` only call these), kept in a library so
//! that they build and can be run on single inputs with `cargo test` as well.
//!
//! Each body feeds arbitrary bytes to a parser the way the product does and checks that it
//! returns (an error is fine; a panic, an overflow or a hang is a bug), plus a few cheap
//! invariants the parser documents.

use std::path::PathBuf;

use arbitrary::Unstructured;
use camseal::control::{self, Decision};
use camseal::footage::{SegmentFile, check_chain};
use camseal::keys::{AccountPin, AccountSecret, KemKind, RecipientList, RecipientSecret};
use camseal::nal::{
    Codec, PocReader, access_units, classify, frame_rate, nal_units, sniff_codec,
};
use camseal::segment::inspect::inspect;
use camseal::segment::read::{Opener, SegmentReader, Verifier};
use camseal::segment::{
    Gap, GapReason, Header, Item, Parsed, encode_gap_extensions, header_message,
};
use camseal::share::Share;
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

/// The account the `control` and `share` targets re-sign with (seed `03` × 32).
pub fn account() -> AccountSecret {
    AccountSecret::from_seed([3; 32])
}

/// The camera id the `control` target plays (its seeds are made for it).
pub const CONTROL_CAMERA_ID: &str = "0123456789abcdef";

/// The keys the `share` target opens with: the X25519 private key of RFC 7748 §6.1 (Alice)
/// and the X-Wing decapsulation key of the first vector in `docs/vectors/xwing-kem.json`;
/// the seeds address their public keys.
pub fn share_keys() -> [RecipientSecret; 2] {
    let hex32 = |s: &str| {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    };
    [
        RecipientSecret::new(
            KemKind::X25519,
            hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        ),
        RecipientSecret::new(
            KemKind::XWing,
            hex32("7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"),
        ),
    ]
}

/// Signs `body` with [`account`] under `context`, as the product signs lists, control
/// objects and shares: `body || Ed25519(context || body)`.
fn signed(context: &[u8], body: &[u8]) -> Vec<u8> {
    let signature = account()
        .signing_key()
        .sign(&[context, body].concat())
        .to_bytes();
    [body, &signature[..]].concat()
}

/// A control object (`control/<camera_id>/recipients`) as `run`'s poller judges it:
/// `control::open`, then `control::decide` for camera [`CONTROL_CAMERA_ID`] with [`account`]
/// pinned, against an installed list that byte 0 picks (bits 1-2: none, version 1, version
/// 3, or another account pinned).
///
/// Byte 0 bit 0 re-signs: the rest is then an object body whose list has no signature
/// (`"CSCC" | format | camera id | list_len | list body`); the list's account is set to
/// [`account`], the list and the object are signed, and `list_len` is set, so mutations of
/// every field get past both signatures. Returns the decision (for the seed tests).
pub fn control(data: &[u8]) -> Option<Decision> {
    let (&mode, rest) = data.split_first()?;
    let object = if mode & 1 == 1 {
        // Header: magic 4, format 2, camera id 8, list_len 4; the list's account is at
        // 4 + 2 + 8 of its body ("CSRL", format, version).
        if rest.len() < 18 + 46 {
            return None;
        }
        let mut list_body = rest[18..].to_vec();
        list_body[14..46].copy_from_slice(&account().public().ed25519);
        let list = signed(b"camseal recipient list v1", &list_body);
        let mut body = rest[..14].to_vec();
        body.extend_from_slice(&(list.len() as u32).to_be_bytes());
        body.extend_from_slice(&list);
        signed(b"camseal control v1", &body)
    } else {
        rest.to_vec()
    };
    if let Ok(o) = control::open(&object) {
        assert_eq!(o.camera_id.len(), 16);
        assert_eq!(
            RecipientList::parse_signed(&o.signed_list).as_ref(),
            Ok(&o.list)
        );
    }
    let own = account();
    let pin = match (mode >> 1) & 3 {
        3 => AccountPin {
            ed25519: AccountSecret::from_seed([4; 32]).public().ed25519,
        },
        _ => AccountPin {
            ed25519: own.public().ed25519,
        },
    };
    let installed = match (mode >> 1) & 3 {
        1 | 2 => {
            let version = if (mode >> 1) & 3 == 1 { 1 } else { 3 };
            let list = RecipientList {
                version,
                account: own.public().ed25519,
                recipients: vec![camseal::keys::Recipient {
                    kem: KemKind::X25519.id(),
                    public_key: own.recipient_secret(KemKind::X25519).public_key(),
                    label: "account".into(),
                }],
            };
            let bytes = list.sign(&own).unwrap();
            Some((list, bytes))
        }
        _ => None,
    };
    let decision = control::decide(
        &object,
        CONTROL_CAMERA_ID,
        Some(&pin),
        installed.as_ref().map(|(l, b)| (l, b.as_slice())),
    );
    match &decision {
        Decision::Apply(o) => {
            assert_eq!(o.camera_id, CONTROL_CAMERA_ID);
            assert_eq!(o.list.account, pin.ed25519);
            if let Some((l, _)) = &installed {
                assert!(o.list.version > l.version);
            }
        }
        Decision::Installed => {
            let (_, bytes) = installed.as_ref().expect("installed without a list");
            assert_eq!(control::open(&object).unwrap().signed_list, *bytes);
        }
        Decision::Refuse(_) => {}
    }
    Some(decision)
}

/// A share file as `decrypt --share` reads it: `Share::parse_signed`, then each segment's
/// key unwrapped with [`share_keys`] (as given, and for another stream, seq and header).
///
/// Byte 0 bit 0 re-signs: the rest is a share body without a signature; its account is set
/// to [`account`] and it is signed, so mutations of every field get past the signature.
/// Returns whether the share parsed (for the seed tests).
pub fn share(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let bytes = if mode & 1 == 1 {
        // "CSSH", format u16, then the account key.
        if rest.len() < 38 {
            return false;
        }
        let mut body = rest.to_vec();
        body[6..38].copy_from_slice(&account().public().ed25519);
        signed(b"camseal share v1", &body)
    } else {
        rest.to_vec()
    };
    let Ok(share) = Share::parse_signed(&bytes) else {
        return false;
    };
    let kind = share.kem_kind().expect("a parsed share names a known KEM");
    assert_eq!(share.recipient.len(), kind.public_key_len());
    assert!(!share.segments.is_empty() && share.segments.len() <= 4096);
    let keys = share_keys();
    for s in &share.segments {
        assert_eq!(share.segments.iter().filter(|x| x.seq == s.seq).count(), 1);
        let _ = share.base_key(
            &share.camera_key,
            share.stream_id,
            s.seq,
            &s.header_hash,
            &keys,
        );
        assert!(
            share
                .base_key(
                    &share.camera_key,
                    share.stream_id ^ 1,
                    s.seq,
                    &s.header_hash,
                    &keys
                )
                .is_err()
        );
    }
    true
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

    #[test]
    fn the_control_and_share_seeds_reach_past_the_signatures() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus");
        let read =
            |target: &str, name: &str| std::fs::read(format!("{dir}/{target}/{name}")).unwrap();
        let decision = |name: &str| control(&read("control", name));
        assert!(matches!(decision("resigned-new"), Some(Decision::Apply(_))));
        assert!(matches!(
            decision("resigned-newer-mixed"),
            Some(Decision::Apply(_))
        ));
        assert!(matches!(
            decision("resigned-replayed"),
            Some(Decision::Refuse(control::Refusal::NotNewer { .. }))
        ));
        assert!(matches!(
            decision("resigned-foreign-pin"),
            Some(Decision::Refuse(control::Refusal::ForeignAccount { .. }))
        ));
        assert!(matches!(
            decision("unsigned"),
            Some(Decision::Refuse(control::Refusal::Invalid(_)))
        ));
        assert!(share(&read("share", "resigned-x25519")));
        assert!(share(&read("share", "resigned-xwing")));
        assert!(!share(&read("share", "unsigned-x25519")));
    }

    #[test]
    fn a_resigned_control_seed_is_applied_and_a_resigned_share_opens_for_its_key() {
        // The re-signing mode makes a valid object of a body with an unsigned list.
        let own = account();
        let list = RecipientList {
            version: 2,
            account: [0; 32],
            recipients: vec![camseal::keys::Recipient {
                kem: KemKind::X25519.id(),
                public_key: vec![9; 32],
                label: "phone".into(),
            }],
        };
        let signed_list = RecipientList {
            account: own.public().ed25519,
            ..list.clone()
        }
        .sign(&own)
        .unwrap();
        let object = control::seal(CONTROL_CAMERA_ID, &signed_list, &own).unwrap();
        let body_without_sigs = [
            &object[..14],
            &[0; 4],
            &signed_list[..signed_list.len() - 64],
        ]
        .concat();
        let resigned = {
            let mut d = vec![1];
            d.extend_from_slice(&body_without_sigs);
            d
        };
        assert!(matches!(control(&resigned), Some(Decision::Apply(_))));
        assert!(matches!(
            control::decide(
                &object,
                CONTROL_CAMERA_ID,
                Some(&AccountPin {
                    ed25519: own.public().ed25519
                }),
                None
            ),
            Decision::Apply(_)
        ));
        // A share to each fuzz key opens with it.
        for key in share_keys() {
            let bytes = Share::grant(
                &own,
                [5; 32],
                0,
                &key.device_public(),
                &[camseal::share::ToShare {
                    seq: 1,
                    header_hash: [1; 32],
                    base_key: &[11; 32],
                }],
            )
            .unwrap();
            let s = Share::parse_signed(&bytes).unwrap();
            assert_eq!(
                *s.base_key(&[5; 32], 0, 1, &[1; 32], &share_keys()).unwrap(),
                vec![11; 32]
            );
            assert!(share(&[[0].as_slice(), &bytes].concat()));
            assert!(share(
                &[[1].as_slice(), &bytes[..bytes.len() - 64]].concat()
            ));
        }
    }
}
