//! Deterministic test vectors for the segment format v2 (`docs/vectors/`, described in its
//! README) and the negative testkit (`pipeline/tests/testkit/`).
//!
//! Every vector is sealed by the real [`SegmentWriter`] with [`Randomness::FixedForTests`],
//! then taken apart and checked by an independent reading written here from the spec
//! (SFrame key derivation and AES-GCM, header MAC, SHA-256 header hash, BLAKE3 records
//! digest, the signed messages with their literal contexts): the JSON beside each `.cseg`
//! records those intermediate values. The committed bytes of both files must be reproduced
//! exactly, so a change to a single byte fails.
//!
//! To rewrite the vectors and the testkit after a deliberate format change:
//! `CAMSEAL_REGEN_VECTORS=1 cargo test -p camseal --test format_vectors`.

mod common;

use std::path::{Path, PathBuf};

use camseal::footage::{
    SegmentReport, SegmentStatus, footage_verdict, load_headers, read_segment, verify_footage,
};
use camseal::keys::OpeningKeys;
use camseal::nal::Codec;
use camseal::seal::{SframeHeader, SframeSuite};
use camseal::segment::inspect::inspect;
use camseal::segment::padding::Padding;
use camseal::segment::read::hpke_open;
use camseal::segment::write::{
    CheckpointPolicy, Randomness, RecipientKey, SegmentParams, SegmentSealer, SegmentWriter,
    fixed_test_randomness, hpke_seal,
};
use camseal::segment::{
    CloseReason, Digest32, Gap, GapReason, Header, Item, Parsed, RecordFlags, RecordsDigest,
    SegmentEnd, SegmentError, TrailerFlags, checkpoint_message, encode_gap_extensions,
    header_message, hpke_info, key_id, parse_item, trailer_message,
};
use common::*;
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

// ---------------------------------------------------------------------------------------
// The vectors.

/// The camera that seals every vector.
const CAMERA_SEED: u8 = 7;

/// What one vector is made of.
struct Spec {
    name: &'static str,
    about: &'static str,
    suite: SframeSuite,
    codec: Codec,
    stream_id: u32,
    segment_seq: u64,
    start_pts: u64,
    wallclock_ms: u64,
    prev: Prev,
    /// Seeds of the recipients (`common::recipient`), in stanza order.
    recipients: &'static [u8],
    gaps: Vec<Gap>,
    records: Vec<Rec>,
    /// How the segment ends: closed with this summary, or cut off.
    end: End,
    checkpoint_ms: u64,
    /// Every byte of the `Randomness::FixedForTests` seed.
    seed: u8,
    /// Size padding of the video records.
    padding: Padding,
}

enum Prev {
    /// The first segment of its stream: all zero.
    First,
    /// The header hash of an earlier vector.
    Of(&'static str),
    /// A predecessor that is not among the vectors.
    Fixed([u8; 32]),
}

enum End {
    Closed(SegmentEnd),
    /// The writer never finishes: the file stops in the middle of the last record.
    CutOff,
}

fn specs() -> Vec<Spec> {
    let base_wallclock = 1_764_000_000_000u64;
    let wall = |pts: u64| base_wallclock + pts / 90;
    vec![
        Spec {
            name: "v2-chain-0",
            about: "first segment of stream 1 (all-zero prev_header_hash), two recipients, \
                    H.264 SPS/PPS/IDR then P slices, a checkpoint every 100 ms of video",
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            stream_id: 1,
            segment_seq: 0,
            start_pts: 0,
            wallclock_ms: wall(0),
            prev: Prev::First,
            recipients: &[1, 2],
            gaps: Vec::new(),
            records: chain0_records(),
            end: End::Closed(SegmentEnd {
                end_pts: 36_000,
                reason: CloseReason::Keyframe,
            }),
            checkpoint_ms: 100,
            seed: 0x40,
            padding: Padding::Off,
        },
        Spec {
            name: "v2-chain-1",
            about: "second segment of stream 1, naming v2-chain-0's header hash; its IDR NAL \
                    unit is split over three records (two flagged continuation)",
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            stream_id: 1,
            segment_seq: 1,
            start_pts: 36_000,
            wallclock_ms: wall(36_000),
            prev: Prev::Of("v2-chain-0"),
            recipients: &[1, 2],
            gaps: Vec::new(),
            records: chain1_records(),
            end: End::Closed(SegmentEnd {
                end_pts: 54_000,
                reason: CloseReason::MaxDuration,
            }),
            checkpoint_ms: 100,
            seed: 0x41,
            padding: Padding::Off,
        },
        Spec {
            name: "v2-chain-2",
            about: "third segment of stream 1, naming v2-chain-1's header hash; one recipient",
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            stream_id: 1,
            segment_seq: 2,
            start_pts: 54_000,
            wallclock_ms: wall(54_000),
            prev: Prev::Of("v2-chain-1"),
            recipients: &[1],
            gaps: Vec::new(),
            records: p_frames(54_000, 4, true),
            end: End::Closed(SegmentEnd {
                end_pts: 66_000,
                reason: CloseReason::Keyframe,
            }),
            checkpoint_ms: 100,
            seed: 0x42,
            padding: Padding::Off,
        },
        Spec {
            name: "v2-cutoff-3",
            about: "fourth segment of stream 1, cut off by a crash: two checkpoints sign \
                    records 0..6, records 6 and 7 are whole but unsigned, and the file stops \
                    in the middle of record 8; no trailer",
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            stream_id: 1,
            segment_seq: 3,
            start_pts: 66_000,
            wallclock_ms: wall(66_000),
            prev: Prev::Of("v2-chain-2"),
            recipients: &[1, 2],
            gaps: Vec::new(),
            records: p_frames(66_000, 9, true),
            end: End::CutOff,
            checkpoint_ms: 100,
            seed: 0x43,
            padding: Padding::Off,
        },
        Spec {
            name: "v2-gaps-5",
            about: "sixth segment of stream 1, AES-256-GCM: its header declares segment 3 \
                    crashed, segment 4 lost in a second crash (reserved, never written) and \
                    frames dropped under load; the two adjacent crash ranges join, so it \
                    names v2-chain-2 (segment 2) as its predecessor; the camera shut down \
                    after it (trailer end_of_stream)",
            suite: SframeSuite::Aes256GcmSha512,
            codec: Codec::H264,
            stream_id: 1,
            segment_seq: 5,
            start_pts: 120_000,
            wallclock_ms: wall(120_000),
            prev: Prev::Of("v2-chain-2"),
            recipients: &[1, 2],
            gaps: vec![
                Gap {
                    reason: GapReason::Crash,
                    lost_segments: Some((3, 3)),
                    frames: 0,
                    from_pts: 66_000,
                    to_pts: 93_000,
                },
                Gap {
                    reason: GapReason::Crash,
                    lost_segments: Some((4, 4)),
                    frames: 0,
                    from_pts: 93_000,
                    to_pts: 111_000,
                },
                Gap {
                    reason: GapReason::DroppedFrames,
                    lost_segments: None,
                    frames: 3,
                    from_pts: 111_000,
                    to_pts: 120_000,
                },
            ],
            records: p_frames(120_000, 3, true),
            end: End::Closed(SegmentEnd {
                end_pts: 129_000,
                reason: CloseReason::Shutdown,
            }),
            checkpoint_ms: 100,
            seed: 0x45,
            padding: Padding::Off,
        },
        Spec {
            name: "v2-kid9-ctr300",
            about: "segment 9 of stream 2, AES-256-GCM, H.265, 300 records: the SFrame KID \
                    (9) needs a one-byte field and record 256 onwards a two-byte CTR; a \
                    checkpoint every second of video; its predecessor is not among the \
                    vectors; the source ended (trailer end_of_stream)",
            suite: SframeSuite::Aes256GcmSha512,
            codec: Codec::H265,
            stream_id: 2,
            segment_seq: 9,
            start_pts: 900_000,
            wallclock_ms: base_wallclock + 3_600_000,
            prev: Prev::Fixed([0x5a; 32]),
            recipients: &[2],
            gaps: Vec::new(),
            records: h265_frames(900_000, 299),
            end: End::Closed(SegmentEnd {
                end_pts: 900_000 + 299 * 3000,
                reason: CloseReason::EndOfStream,
            }),
            checkpoint_ms: 1000,
            seed: 0x49,
            padding: Padding::Off,
        },
        Spec {
            name: "v2-padded-6",
            about: "first segment of stream 3 with size padding (extension 0x0002, scheme 1): \
                    video payloads of 9, 256, 257, 700 and 2100 bytes are sealed padded to \
                    the buckets 256, 256, 320, 768 and 2560, each followed by the pad length; \
                    the final record is not padded",
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            stream_id: 3,
            segment_seq: 0,
            start_pts: 0,
            wallclock_ms: base_wallclock + 7_200_000,
            prev: Prev::First,
            recipients: &[1],
            gaps: Vec::new(),
            records: padded_records(),
            end: End::Closed(SegmentEnd {
                end_pts: 15_000,
                reason: CloseReason::Keyframe,
            }),
            checkpoint_ms: 1000,
            seed: 0x46,
            padding: Padding::Buckets,
        },
    ]
}

/// An IDR and four P frames whose sizes sit below, on and just above bucket boundaries.
fn padded_records() -> Vec<Rec> {
    [9usize, 256, 257, 700, 2100]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let key = i == 0;
            let mut data = if key {
                vec![0x00, 0x00, 0x01, 0x65, 0x88]
            } else {
                vec![0x00, 0x00, 0x01, 0x41, 0x9a]
            };
            data.extend((0..len - 5).map(|j| (j as u8).wrapping_mul(31) ^ i as u8 | 1));
            (i as u64 * 3000, key, false, data)
        })
        .collect()
}

/// The bucket a payload is padded to (FORMAT.md §3.1), found by walking the ladder
/// `m·2^e` (m = 4..=7, from 256 up) rather than by the library's bit arithmetic.
fn spec_bucket(len: usize) -> usize {
    (6..)
        .flat_map(|e| (4..8).map(move |m| m << e))
        .find(|&b| b >= len)
        .expect("a bucket")
}

/// The AEAD plaintext of a padded video record: payload, zero padding, pad length (u32).
fn spec_padded(payload: &[u8]) -> Vec<u8> {
    let pad = spec_bucket(payload.len()) - payload.len();
    let mut out = payload.to_vec();
    out.resize(payload.len() + pad, 0);
    out.extend_from_slice(&(pad as u32).to_be_bytes());
    out
}

/// SPS, PPS and an IDR slice, then eleven P slices, 30 fps.
fn chain0_records() -> Vec<Rec> {
    let idr = hex::decode(
        "0000000167640028acd940780227e5c0440000030004000003009c3c60c658\
         0000000168ebe3cb22c0\
         0000016588840033fffee1ff2e0a4c5cfb1c0b27a1bd92e4bbc34ba6a8a5",
    )
    .expect("hex");
    let mut records = vec![(0, true, false, idr)];
    records.extend(p_frames(3000, 11, false));
    records
}

/// An IDR NAL unit larger than the chunk limit, split over three records, then P slices.
fn chain1_records() -> Vec<Rec> {
    let nal: Vec<u8> = [0x00, 0x00, 0x01, 0x65]
        .into_iter()
        .chain((0..52u8).map(|i| i.wrapping_mul(29) ^ 0x5c))
        .collect();
    let mut records = vec![
        (36_000, true, false, nal[..24].to_vec()),
        (36_000, true, true, nal[24..48].to_vec()),
        (36_000, true, true, nal[48..].to_vec()),
    ];
    records.extend(p_frames(39_000, 5, false));
    records
}

/// `n` H.264 frames from `pts`, 3000 ticks apart; the first an IDR when `keyframe_first`.
fn p_frames(pts: u64, n: u64, keyframe_first: bool) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let key = keyframe_first && i == 0;
            let mut data = if key {
                vec![0x00, 0x00, 0x01, 0x65, 0x88]
            } else {
                vec![0x00, 0x00, 0x01, 0x41, 0x9a]
            };
            data.extend((0..8 + (i % 5) as u8).map(|j| (pts / 3000) as u8 ^ j.wrapping_mul(37)));
            (pts + i * 3000, key, false, data)
        })
        .collect()
}

/// `n` small H.265 frames: an IDR_W_RADL every 30, TRAIL_R otherwise.
fn h265_frames(pts: u64, n: u64) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let key = i % 30 == 0;
            let mut data = if key {
                vec![0x00, 0x00, 0x01, 0x26, 0x01]
            } else {
                vec![0x00, 0x00, 0x01, 0x02, 0x01]
            };
            data.extend_from_slice(&(i as u16).to_be_bytes());
            data.extend((0..(i % 7) as u8).map(|j| j ^ 0xa5));
            (pts + i * 3000, key, false, data)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Sealing a vector with the library, and reading it back independently.

/// One built vector.
struct Built {
    name: &'static str,
    bytes: Vec<u8>,
    json: Value,
    header_hash: Digest32,
}

fn build(spec: &Spec, earlier: &[Built]) -> Built {
    let camera = camera(CAMERA_SEED);
    let recipients: Vec<([u8; 32], [u8; 32])> =
        spec.recipients.iter().map(|&s| recipient(s)).collect();
    let keys: Vec<RecipientKey<'_>> = recipients
        .iter()
        .map(|(_, pk)| x25519_recipient(pk))
        .collect();
    let prev_header_hash = match spec.prev {
        Prev::First => [0; 32],
        Prev::Of(name) => {
            earlier
                .iter()
                .find(|b| b.name == name)
                .expect("an earlier vector")
                .header_hash
        }
        Prev::Fixed(hash) => hash,
    };
    let params = SegmentParams {
        suite: spec.suite,
        codec: spec.codec,
        stream_id: spec.stream_id,
        segment_seq: spec.segment_seq,
        start_pts: spec.start_pts,
        wallclock_ms: spec.wallclock_ms,
        prev_header_hash,
        recipients: &keys,
        gaps: &spec.gaps,
        padding: spec.padding,
    };
    let policy = CheckpointPolicy::every_ms(spec.checkpoint_ms);
    let mut sealed = Vec::new();
    {
        let mut w = SegmentWriter::create(
            &mut sealed,
            &params,
            &camera,
            &Randomness::FixedForTests([spec.seed; 32]),
        )
        .unwrap()
        .with_checkpoints(policy);
        for (pts, key, cont, data) in &spec.records {
            w.append(*pts, *key, *cont, data).unwrap();
        }
        if let End::Closed(end) = spec.end {
            w.finish(end).unwrap();
        }
        // A writer dropped without `finish` leaves what a crash leaves.
    }
    let reading = read_independently(spec, &sealed, &recipients);
    // A cut-off vector stops in the middle of its last record.
    let (bytes, cut) = match spec.end {
        End::Closed(_) => (sealed.clone(), None),
        End::CutOff => {
            let last = reading.records.last().expect("records");
            let at = last.offset + last.len / 2;
            (
                sealed[..at].to_vec(),
                Some(json!({
                    "at": at,
                    "partial_record": last.index,
                    "partial_record_len": last.len,
                    "partial_record_bytes_present": at - last.offset,
                    "whole_records": last.index,
                    "signed_records": reading.checkpoints.last().map_or(0, |c| c.0),
                })),
            )
        }
    };
    let json = describe(spec, &camera, &recipients, &bytes, &reading, cut, policy);
    Built {
        name: spec.name,
        bytes,
        json,
        header_hash: reading.header_hash,
    }
}

/// What an independent reader finds in a sealed (uncut) vector.
struct Reading {
    header: Header,
    header_len: usize,
    header_hash: Digest32,
    mac_key: [u8; 32],
    base_key: [u8; 32],
    ikm_e: Vec<[u8; 32]>,
    sframe_key: Vec<u8>,
    sframe_salt: [u8; 12],
    digest_initial: Digest32,
    records: Vec<RecordReading>,
    /// (record_count, records_digest, signature, offset) of each checkpoint.
    checkpoints: Vec<(u64, Digest32, [u8; 64], usize)>,
    /// (flags, record_count, records_digest, signature, offset) of the trailer.
    trailer: Option<(u8, u64, Digest32, [u8; 64], usize)>,
}

struct RecordReading {
    index: u64,
    offset: usize,
    len: usize,
    flags: u8,
    pts: u64,
    sframe_header: Vec<u8>,
    nonce: [u8; 12],
    plaintext: Vec<u8>,
    /// The AEAD plaintext of a padded record.
    padded: Option<Vec<u8>>,
    record_digest: Digest32,
    records_digest: Digest32,
}

/// Reads a sealed vector back from the spec, checking every value against the inputs.
fn read_independently(spec: &Spec, bytes: &[u8], recipients: &[([u8; 32], [u8; 32])]) -> Reading {
    let name = spec.name;
    let camera = camera(CAMERA_SEED);
    let camera_key = camera.verifying_key();
    let Ok(Parsed::Complete(header, header_len)) = Header::parse(bytes) else {
        panic!("{name}: header does not parse");
    };
    assert_eq!(
        header.encode().unwrap(),
        bytes[..header_len],
        "{name}: header re-encodes"
    );
    assert_eq!(header.suite, spec.suite);
    assert_eq!(header.codec, spec.codec);
    assert_eq!(header.camera_key, camera_key.to_bytes());
    let padding_ext: &[u8] = match spec.padding {
        Padding::Buckets => &[0x00, 0x02, 0x00, 0x01, 0x01],
        Padding::Off => &[],
    };
    assert_eq!(
        header.extensions,
        [padding_ext, &encode_gap_extensions(&spec.gaps)].concat()
    );
    assert_eq!(header.gaps(), spec.gaps);
    assert_eq!(header.padding(), spec.padding);

    // Key wrapping: HPKE base mode to each recipient with the published ikmE.
    let (base_key, ikm_e) = fixed_test_randomness([spec.seed; 32], recipients.len());
    let info = hpke_info(&header.camera_key, spec.stream_id, spec.segment_seq);
    let mut want_info = b"camseal v2 segment key\0".to_vec();
    want_info.extend_from_slice(&header.camera_key);
    want_info.extend_from_slice(&spec.stream_id.to_be_bytes());
    want_info.extend_from_slice(&spec.segment_seq.to_be_bytes());
    assert_eq!(info, want_info, "{name}: HPKE info");
    assert_eq!(header.stanzas.len(), recipients.len());
    for ((stanza, (sk, pk)), ikm) in header.stanzas.iter().zip(recipients).zip(&ikm_e) {
        assert_eq!(stanza.key_id, Sha256::digest(pk)[..8]);
        assert_eq!(stanza.key_id, key_id(pk));
        assert_eq!(
            (stanza.kem, stanza.kdf, stanza.aead),
            (0x0020, 0x0001, 0x0001)
        );
        let (enc, wrapped) = hpke_seal(pk, &info, b"", &base_key, ikm).unwrap();
        assert_eq!((&stanza.enc, &stanza.wrapped_key), (&enc, &wrapped));
        let opened = hpke_open(sk, &stanza.enc, &info, b"", &stanza.wrapped_key).unwrap();
        assert_eq!(opened[..], base_key);
    }

    // Header MAC, hash and signature.
    let mut mac_key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&[]), &base_key)
        .expand(b"camseal v2 header mac", &mut mac_key)
        .unwrap();
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key).unwrap();
    mac.update(&bytes[..header_len - 96]);
    assert_eq!(mac.finalize().into_bytes()[..], header.mac, "{name}: MAC");
    let header_hash: Digest32 = Sha256::digest(&bytes[..header_len - 64]).into();
    assert_eq!(header_hash, header.hash());
    let message = [&b"camseal v2 segment header\0"[..], &header_hash].concat();
    assert_eq!(message, header_message(&header_hash));
    camera_key
        .verify_strict(
            &message,
            &ed25519_dalek::Signature::from_bytes(&header.signature),
        )
        .unwrap();

    // SFrame keys (RFC 9605 §4.4.2) and the records.
    let (sframe_key, sframe_salt) = sframe_keys(spec.suite, spec.segment_seq, &base_key);
    let aead = camseal_kernels::Aead::new(spec.suite.aead(), &sframe_key).unwrap();
    let digest_initial = blake3_of(&[b"camseal v2 records digest\0", &header_hash]);
    let mut running = digest_initial;
    let mut lib_digest = RecordsDigest::new(&header_hash);
    assert_eq!(lib_digest.value(), digest_initial);
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    let mut trailer = None;
    let mut pos = header_len;
    let final_record = match spec.end {
        End::Closed(end) => Some((end.end_pts, RecordFlags::FINAL, end.encode().to_vec())),
        End::CutOff => None,
    };
    let mut inputs = spec
        .records
        .iter()
        .map(|(pts, key, cont, data)| (*pts, RecordFlags::video(*key, *cont).bits(), data.clone()))
        .chain(final_record);
    while pos < bytes.len() {
        let Ok(Parsed::Complete(item, used)) = parse_item(&bytes[pos..]) else {
            panic!("{name}: item at {pos} does not parse");
        };
        let encoded = &bytes[pos..pos + used];
        match item {
            Item::Record(_) => {
                let index = records.len() as u64;
                let (pts, flags, plaintext) = inputs.next().expect("an input for each record");
                assert_eq!(be32(&encoded[..4]) as usize, used - 4);
                assert_eq!(encoded[4], flags);
                assert_eq!(be64(&encoded[5..13]), pts);
                let mut sframe_header = Vec::new();
                SframeHeader {
                    kid: spec.segment_seq,
                    ctr: index,
                }
                .encode(&mut sframe_header);
                let body = &encoded[13..];
                assert_eq!(
                    body[..sframe_header.len()],
                    sframe_header,
                    "{name}: record {index}"
                );
                let nonce = sframe_nonce(&sframe_salt, index);
                let aad = [
                    &sframe_header[..],
                    &header_hash,
                    &pts.to_be_bytes(),
                    &[flags],
                ]
                .concat();
                let ct = &body[sframe_header.len()..body.len() - 16];
                let tag: [u8; 16] = body[body.len() - 16..].try_into().unwrap();
                let mut opened = vec![0u8; ct.len()];
                aead.open_to(&nonce, &aad, ct, &tag, &mut opened)
                    .unwrap_or_else(|_| panic!("{name}: record {index} opens"));
                let padded = (spec.padding == Padding::Buckets && flags & RecordFlags::FINAL == 0)
                    .then(|| spec_padded(&plaintext));
                assert_eq!(
                    opened,
                    *padded.as_ref().unwrap_or(&plaintext),
                    "{name}: record {index} plaintext"
                );
                let record_digest = blake3_of(&[encoded]);
                running = blake3_of(&[&running, &record_digest]);
                lib_digest.push(&record_digest);
                assert_eq!(lib_digest.value(), running);
                records.push(RecordReading {
                    index,
                    offset: pos,
                    len: used,
                    flags,
                    pts,
                    sframe_header,
                    nonce,
                    plaintext,
                    padded,
                    record_digest,
                    records_digest: running,
                });
            }
            Item::Checkpoint(c) => {
                assert_eq!(encoded[..4], [0xff, 0xff, 0xff, 0xfe]);
                assert_eq!(
                    c.record_count,
                    records.len() as u64,
                    "{name}: checkpoint count"
                );
                assert_eq!(c.records_digest, running, "{name}: checkpoint digest");
                let message = [
                    &b"camseal v2 segment checkpoint\0"[..],
                    &header_hash,
                    &c.record_count.to_be_bytes(),
                    &c.records_digest,
                ]
                .concat();
                assert_eq!(
                    message,
                    checkpoint_message(&header_hash, c.record_count, &c.records_digest)
                );
                camera_key
                    .verify_strict(
                        &message,
                        &ed25519_dalek::Signature::from_bytes(&c.signature),
                    )
                    .unwrap();
                checkpoints.push((c.record_count, c.records_digest, c.signature, pos));
            }
            Item::Trailer(t) => {
                assert_eq!(pos + used, bytes.len(), "{name}: nothing after the trailer");
                assert_eq!(encoded[..4], [0xff; 4]);
                assert_eq!(t.record_count, records.len() as u64);
                assert_eq!(t.records_digest, running);
                let end_of_stream = match spec.end {
                    End::Closed(end) => end.reason.ends_stream(),
                    End::CutOff => unreachable!("a cut-off vector has no trailer"),
                };
                assert_eq!(t.flags, TrailerFlags::new(end_of_stream));
                let message = [
                    &b"camseal v2 segment trailer\0"[..],
                    &header_hash,
                    &[t.flags.bits()],
                    &t.record_count.to_be_bytes(),
                    &t.records_digest,
                ]
                .concat();
                assert_eq!(
                    message,
                    trailer_message(&header_hash, t.flags, t.record_count, &t.records_digest)
                );
                camera_key
                    .verify_strict(
                        &message,
                        &ed25519_dalek::Signature::from_bytes(&t.signature),
                    )
                    .unwrap();
                trailer = Some((
                    t.flags.bits(),
                    t.record_count,
                    t.records_digest,
                    t.signature,
                    pos,
                ));
            }
        }
        pos += used;
    }
    assert!(inputs.next().is_none(), "{name}: every input was sealed");
    Reading {
        header,
        header_len,
        header_hash,
        mac_key,
        base_key,
        ikm_e,
        sframe_key,
        sframe_salt,
        digest_initial,
        records,
        checkpoints,
        trailer,
    }
}

fn describe(
    spec: &Spec,
    camera: &SigningKey,
    recipients: &[([u8; 32], [u8; 32])],
    bytes: &[u8],
    r: &Reading,
    cut: Option<Value>,
    policy: CheckpointPolicy,
) -> Value {
    let h = &r.header;
    let cut_at = cut
        .as_ref()
        .and_then(|c| c["at"].as_u64())
        .map(|a| a as usize);
    let stanzas: Vec<Value> = h
        .stanzas
        .iter()
        .zip(&r.ikm_e)
        .map(|(s, ikm)| {
            json!({
                "kem": s.kem,
                "kdf": s.kdf,
                "aead": s.aead,
                "key_id": hex::encode(s.key_id),
                "hpke_ikm_e": hex::encode(ikm),
                "enc": hex::encode(&s.enc),
                "wrapped_key": hex::encode(&s.wrapped_key),
            })
        })
        .collect();
    let records: Vec<Value> = r
        .records
        .iter()
        .map(|rec| {
            let flags = RecordFlags::from_bits(rec.flags).unwrap();
            let mut v = json!({
                "index": rec.index,
                "offset": rec.offset,
                "len": rec.len,
                "in_file": if cut_at.is_some_and(|at| rec.offset + rec.len > at) { "partial" } else { "whole" },
                "pts": rec.pts,
                "flags": rec.flags,
                "keyframe": flags.keyframe(),
                "continuation": flags.continuation(),
                "final": flags.is_final(),
                "plaintext": hex::encode(&rec.plaintext),
                "sframe_header": hex::encode(&rec.sframe_header),
                "nonce": hex::encode(rec.nonce),
                "record_digest": hex::encode(rec.record_digest),
                "records_digest": hex::encode(rec.records_digest),
            });
            // Only padded vectors carry the padding's values, so that the others stay as
            // they were.
            if let Some(padded) = &rec.padded {
                let bucket = padded.len() - 4;
                v["bucket"] = json!(bucket);
                v["pad"] = json!(bucket - rec.plaintext.len());
                v["padded_plaintext"] = json!(hex::encode(padded));
            }
            v
        })
        .collect();
    let checkpoints: Vec<Value> = r
        .checkpoints
        .iter()
        .map(|(count, digest, signature, offset)| {
            json!({
                "offset": offset,
                "record_count": count,
                "records_digest": hex::encode(digest),
                "signature": hex::encode(signature),
            })
        })
        .collect();
    let trailer = r.trailer.map(|(flags, count, digest, signature, offset)| {
        json!({
            "offset": offset,
            "flags": flags,
            "end_of_stream": flags & TrailerFlags::END_OF_STREAM != 0,
            "record_count": count,
            "records_digest": hex::encode(digest),
            "signature": hex::encode(signature),
        })
    });
    let gaps: Vec<Value> = spec
        .gaps
        .iter()
        .map(|g| {
            json!({
                "reason": g.reason.code(),
                "reason_name": g.reason.name(),
                "first_seq": g.lost_segments.map(|(a, _)| a),
                "last_seq": g.lost_segments.map(|(_, b)| b),
                "frames": g.frames,
                "from_pts": g.from_pts,
                "to_pts": g.to_pts,
            })
        })
        .collect();
    let mut v = json!({
        "name": spec.name,
        "about": spec.about,
        "format_version": 2,
        "file": format!("{}.cseg", spec.name),
        "file_len": bytes.len(),
        "file_sha256": hex::encode(Sha256::digest(bytes)),
        "camera": {
            "ed25519_seed": hex::encode(camera.to_bytes()),
            "ed25519_public": hex::encode(camera.verifying_key().to_bytes()),
            "camera_id": h.camera_id(),
        },
        "recipients": recipients.iter().map(|(sk, pk)| json!({
            "x25519_secret": hex::encode(sk),
            "x25519_public": hex::encode(pk),
            "key_id": hex::encode(key_id(pk)),
        })).collect::<Vec<_>>(),
        "randomness": {
            "seed": hex::encode([spec.seed; 32]),
            "segment_base_key": hex::encode(r.base_key),
            "hpke_ikm_e": r.ikm_e.iter().map(hex::encode).collect::<Vec<_>>(),
        },
        "header": {
            "suite": spec.suite.id(),
            "codec": match spec.codec { Codec::H264 => 1, Codec::H265 => 2 },
            "stream_id": spec.stream_id,
            "segment_seq": spec.segment_seq,
            "start_pts": spec.start_pts,
            "wallclock_ms": spec.wallclock_ms,
            "prev_header_hash": hex::encode(h.prev_header_hash),
            "gaps": gaps,
            "extensions": hex::encode(&h.extensions),
            "hpke_info": hex::encode(hpke_info(&h.camera_key, h.stream_id, h.segment_seq)),
            "stanzas": stanzas,
            "mac_key": hex::encode(r.mac_key),
            "mac": hex::encode(h.mac),
            "hash": hex::encode(r.header_hash),
            "signed_message": hex::encode(header_message(&r.header_hash)),
            "signature": hex::encode(h.signature),
            "len": r.header_len,
        },
        "sframe": {
            "kid": spec.segment_seq,
            "key": hex::encode(&r.sframe_key),
            "salt": hex::encode(r.sframe_salt),
        },
        "checkpoint_policy": {
            "interval_ticks": policy.interval_ticks,
            "max_unsigned_bytes": policy.max_unsigned_bytes,
        },
        "records_digest_initial": hex::encode(r.digest_initial),
        "records": records,
        "checkpoints": checkpoints,
        "trailer": trailer,
        "end": match spec.end {
            End::Closed(end) => json!({
                "end_pts": end.end_pts,
                "close_reason": end.reason.code(),
                "close_reason_name": end.reason.name(),
            }),
            End::CutOff => Value::Null,
        },
        "cut": cut,
    });
    if spec.padding == Padding::Buckets {
        v["header"]["padding"] = json!({"scheme": 1, "name": spec.padding.name()});
    }
    v
}

/// Every vector, built in order (a chain names earlier vectors' header hashes).
fn build_all() -> Vec<Built> {
    let mut built: Vec<Built> = Vec::new();
    for spec in specs() {
        let b = build(&spec, &built);
        built.push(b);
    }
    built
}

/// The directory of the committed vectors; with `CAMSEAL_REGEN_VECTORS=1`, first rewrites
/// them (once, whichever test gets here first).
fn vector_dir() -> PathBuf {
    static REGEN: std::sync::Once = std::sync::Once::new();
    let dir = root().join("docs/vectors");
    if regen() {
        REGEN.call_once(|| {
            for b in build_all() {
                std::fs::write(dir.join(format!("{}.cseg", b.name)), &b.bytes).unwrap();
                std::fs::write(dir.join(format!("{}.json", b.name)), json_text(&b.json)).unwrap();
            }
        });
    }
    dir
}

fn json_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
fn segment_vectors_reproduce_exactly() {
    let dir = vector_dir();
    let built = build_all();
    for b in &built {
        let text = json_text(&b.json);
        let (bin, meta) = (
            dir.join(format!("{}.cseg", b.name)),
            dir.join(format!("{}.json", b.name)),
        );
        let want = std::fs::read(&bin).unwrap_or_else(|e| {
            panic!("{}: {e} (CAMSEAL_REGEN_VECTORS=1 writes it)", bin.display())
        });
        assert!(
            b.bytes == want,
            "{} changed: the format or the writer is no longer reproducible",
            bin.display()
        );
        assert_eq!(
            std::fs::read_to_string(&meta).unwrap(),
            text,
            "{} changed",
            meta.display()
        );
    }
    // Nothing else in the directory: no stale vector of an older format. The `xwing-`
    // vectors are checked by `xwing_vectors.rs`.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name.trim_end_matches(".cseg").trim_end_matches(".json");
        assert!(
            name == "README.md"
                || name.starts_with("xwing-")
                || built.iter().any(|b| b.name == stem),
            "docs/vectors/{name} is not a vector this test checks"
        );
    }
}

#[test]
fn vectors_open_verify_and_inspect_with_the_library() {
    let dir = vector_dir();
    let camera_key = camera(CAMERA_SEED).verifying_key().to_bytes();
    for spec in specs() {
        let bytes = std::fs::read(dir.join(format!("{}.cseg", spec.name))).unwrap();
        let video: Vec<u8> = spec.records.iter().flat_map(|r| r.3.clone()).collect();
        let report = inspect(&bytes, Some(&camera_key));
        let h = report.header.as_ref().expect("header parses");
        assert!(h.signature_valid && h.camera_matches == Some(true));
        assert!(report.checkpoints.iter().all(|c| c.ok()), "{}", spec.name);
        match spec.end {
            End::Closed(end) => {
                assert!(report.ok(), "{}: {:?}", spec.name, report.problems);
                for &seed in spec.recipients {
                    let (plain, verified) = open_all(&bytes, &recipient(seed).0).unwrap();
                    assert_eq!(plain, video, "{}", spec.name);
                    assert_eq!(verified.end, Some(end));
                    assert_eq!(verified.end_of_stream, end.reason.ends_stream());
                }
                let verified = verify_all(&bytes).unwrap();
                assert_eq!(verified.record_count, spec.records.len() as u64 + 1);
                assert_eq!(report.signed_records, verified.record_count);
                assert_eq!(
                    report.trailer.as_ref().map(|t| t.end_of_stream),
                    Some(verified.end_of_stream)
                );
            }
            End::CutOff => {
                assert!(matches!(
                    verify_all(&bytes),
                    Err(SegmentError::Truncated(_))
                ));
                assert!(matches!(
                    report.first_problem().map(|p| &p.error),
                    Some(SegmentError::Truncated(_))
                ));
                assert!(report.trailer.is_none());
                assert_eq!((report.records.count, report.signed_records), (8, 6));
            }
        }
    }
    let kid9 = std::fs::read(dir.join("v2-kid9-ctr300.cseg")).unwrap();
    let report = inspect(&kid9, None);
    assert_eq!(report.records.count, 300);
    // Sanity of what the vector claims to exercise: a one-byte KID field and two-byte CTRs.
    let mut last = Vec::new();
    SframeHeader { kid: 9, ctr: 299 }.encode(&mut last);
    assert_eq!(last, [0x89, 0x09, 0x01, 0x2b]);
    let tail = &kid9[kid9.len() - 4..];
    assert!(
        kid9.windows(4).any(|w| w == last),
        "record 299's SFrame header is in the file"
    );
    assert_ne!(tail, &last[..]);
}

#[test]
fn the_stream_1_vectors_form_one_window_with_a_declared_crash() {
    let dir = vector_dir();
    let paths: Vec<PathBuf> = [
        "v2-chain-0",
        "v2-chain-1",
        "v2-chain-2",
        "v2-cutoff-3",
        "v2-gaps-5",
    ]
    .iter()
    .map(|n| dir.join(format!("{n}.cseg")))
    .collect();
    let camera_key = camera(CAMERA_SEED).verifying_key().to_bytes();
    let files = load_headers(&paths, Some(&camera_key)).unwrap();
    let (results, chain) = verify_footage(&files);
    footage_verdict(&results, &chain).unwrap();
    let reports: Vec<SegmentReport> = results.into_iter().map(Result::unwrap).collect();
    let statuses: Vec<(u64, SegmentStatus, bool)> = reports
        .iter()
        .map(|r| (r.seq, r.status, r.declared_crashed))
        .collect();
    let whole = SegmentStatus::Complete {
        end_of_stream: false,
    };
    assert_eq!(
        statuses,
        [
            (0, whole, false),
            (1, whole, false),
            (2, whole, false),
            (3, SegmentStatus::CutOff { dropped: 2 }, true),
            (
                5,
                SegmentStatus::Complete {
                    end_of_stream: true
                },
                false
            ),
        ]
    );
    // Decrypting the cut-off segment releases only what its checkpoints signed.
    let mut released = Vec::new();
    let report = read_segment(&files[3], Some(&recipient(2).0.opening_keys()), |b| {
        released.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    let signed: Vec<u8> = p_frames(66_000, 6, true)
        .into_iter()
        .flat_map(|r| r.3)
        .collect();
    assert_eq!((report.records, released), (6, signed));
}

// ---------------------------------------------------------------------------------------
// The negative testkit: one file per case, `expect:` with a key, `expect-verify:` without.

/// Seals a segment item by item, independently of the writer, so that each case can break
/// exactly one rule and sign everything else correctly.
struct Crafter {
    camera: SigningKey,
    suite: SframeSuite,
    seq: u64,
    header_hash: Digest32,
    header_len: usize,
    base_key: [u8; 32],
    out: Vec<u8>,
    digest: RecordsDigest,
}

impl Crafter {
    /// A segment of stream 0 for recipient 1, with `tweak` applied to its header before the
    /// header is MACed and signed.
    fn new(seq: u64, tweak: impl FnOnce(&mut Header)) -> Crafter {
        let camera = camera(CAMERA_SEED);
        let (_, pk) = recipient(1);
        let keys = [x25519_recipient(&pk)];
        let params = SegmentParams {
            segment_seq: seq,
            wallclock_ms: 1_700_000_000_000,
            prev_header_hash: if seq == 0 { [0; 32] } else { [0x33; 32] },
            ..segment_params(&keys)
        };
        let seed = [9; 32];
        let sealer =
            SegmentSealer::new(&params, &camera, &Randomness::FixedForTests(seed)).unwrap();
        let mut header = sealer.header().clone();
        tweak(&mut header);
        let (base_key, _) = fixed_test_randomness(seed, 1);
        let mut mac_key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&[]), &base_key)
            .expand(b"camseal v2 header mac", &mut mac_key)
            .unwrap();
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key).unwrap();
        mac.update(&header.encode_unmaced().unwrap());
        header.mac = mac.finalize().into_bytes().into();
        let header_hash = header.hash();
        header.signature = camera.sign(&header_message(&header_hash)).to_bytes();
        let out = header.encode().unwrap();
        Crafter {
            camera,
            suite: header.suite,
            seq,
            header_hash,
            header_len: out.len(),
            base_key,
            out,
            digest: RecordsDigest::new(&header_hash),
        }
    }

    fn plain() -> Crafter {
        Crafter::new(1, |_| {})
    }

    /// Seals the next record (CTR = records so far) with a minimal SFrame header.
    fn record(&mut self, flags: RecordFlags, plaintext: &[u8]) -> &mut Crafter {
        let mut sframe_header = Vec::new();
        SframeHeader {
            kid: self.seq,
            ctr: self.digest.count(),
        }
        .encode(&mut sframe_header);
        self.record_raw(self.seq, &sframe_header, flags, plaintext)
    }

    /// Seals the next record with the given SFrame header bytes, under the key of `kid`.
    fn record_raw(
        &mut self,
        kid: u64,
        sframe_header: &[u8],
        flags: RecordFlags,
        plaintext: &[u8],
    ) -> &mut Crafter {
        let ctr = self.digest.count();
        let pts = ctr * 3000;
        let (key, salt) = sframe_keys(self.suite, kid, &self.base_key);
        let aead = camseal_kernels::Aead::new(self.suite.aead(), &key).unwrap();
        let aad = [
            sframe_header,
            &self.header_hash,
            &pts.to_be_bytes(),
            &[flags.bits()],
        ]
        .concat();
        let mut ct = vec![0u8; plaintext.len()];
        let tag = aead
            .seal_to(&sframe_nonce(&salt, ctr), &aad, plaintext, &mut ct)
            .unwrap();
        let body_len = 1 + 8 + sframe_header.len() + ct.len() + tag.len();
        let record = [
            &(body_len as u32).to_be_bytes()[..],
            &[flags.bits()],
            &pts.to_be_bytes(),
            sframe_header,
            &ct,
            &tag,
        ]
        .concat();
        self.digest.push(&blake3_of(&[&record]));
        self.out.extend_from_slice(&record);
        self
    }

    /// A correct checkpoint over the records so far.
    fn checkpoint(&mut self) -> &mut Crafter {
        self.checkpoint_signed(self.digest.count(), self.digest.value())
    }

    /// A checkpoint that claims `count` and `digest`, validly signed.
    fn checkpoint_signed(&mut self, count: u64, digest: Digest32) -> &mut Crafter {
        let signature = self
            .camera
            .sign(&checkpoint_message(&self.header_hash, count, &digest));
        self.out.extend_from_slice(&[0xff, 0xff, 0xff, 0xfe]);
        self.out.extend_from_slice(&count.to_be_bytes());
        self.out.extend_from_slice(&digest);
        self.out.extend_from_slice(&signature.to_bytes());
        self
    }

    /// The last checkpoint and the trailer, as the writer ends a segment.
    fn finish(&mut self) -> &mut Crafter {
        self.checkpoint();
        self.trailer_signed(self.digest.count())
    }

    /// A trailer that claims `count` records (and the right digest), validly signed.
    fn trailer_signed(&mut self, count: u64) -> &mut Crafter {
        let flags = TrailerFlags::new(false);
        let digest = self.digest.value();
        let signature =
            self.camera
                .sign(&trailer_message(&self.header_hash, flags, count, &digest));
        self.out.extend_from_slice(&[0xff; 4]);
        self.out.push(flags.bits());
        self.out.extend_from_slice(&count.to_be_bytes());
        self.out.extend_from_slice(&digest);
        self.out.extend_from_slice(&signature.to_bytes());
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

fn video(keyframe: bool) -> RecordFlags {
    RecordFlags::video(keyframe, false)
}

fn end_summary() -> Vec<u8> {
    SegmentEnd {
        end_pts: 12_000,
        reason: CloseReason::Keyframe,
    }
    .encode()
    .to_vec()
}

/// `good`: three video records with a checkpoint after the second, the final record, the
/// last checkpoint and the trailer.
fn good() -> Crafter {
    let mut c = Crafter::plain();
    c.record(video(true), b"one")
        .record(video(false), b"two")
        .checkpoint()
        .record(video(false), b"three")
        .record(RecordFlags::final_record(), &end_summary())
        .finish();
    c
}

struct Case {
    name: &'static str,
    expect: &'static str,
    expect_verify: &'static str,
    comment: &'static str,
    bytes: Vec<u8>,
}

fn testkit_cases() -> Vec<Case> {
    let f = RecordFlags::final_record();
    let good_bytes = good().bytes();
    let p = parts(&good_bytes);
    let (rec, cps, trailer) = (&p.records, &p.checkpoints, &p.trailer);
    let piece = |r: &std::ops::Range<usize>| &good_bytes[r.clone()];
    let case = |name, expect, expect_verify, comment, bytes| Case {
        name,
        expect,
        expect_verify,
        comment,
        bytes,
    };
    let mut bad_tag = good_bytes.clone();
    bad_tag[rec[2].end - 1] ^= 0x01;
    let reordered = [
        &good_bytes[..p.header],
        piece(&rec[0]),
        piece(&rec[2]),
        piece(&cps[0]),
        piece(&rec[1]),
        &good_bytes[rec[3].start..],
    ]
    .concat();
    let mut flipped_checkpoint = good_bytes.clone();
    flipped_checkpoint[cps[0].end - 1] ^= 0x01;
    let forged = {
        let mut c = good();
        let other = camera(CAMERA_SEED + 1);
        let signature = other.sign(&header_message(&c.header_hash)).to_bytes();
        let at = c.header_len - 64;
        c.out[at..c.header_len].copy_from_slice(&signature);
        c.bytes()
    };
    let non_minimal = {
        let mut c = Crafter::plain();
        // KID 1 in an explicit one-byte field (X = 1, K = 0) instead of inline; CTR 1 inline.
        c.record(video(true), b"one")
            .record_raw(1, &[0x81, 0x01], video(false), b"two")
            .record(f, &end_summary())
            .finish();
        c.bytes()
    };
    let other_segment = {
        let mut c = Crafter::plain();
        let mut header = Vec::new();
        SframeHeader { kid: 2, ctr: 1 }.encode(&mut header);
        c.record(video(true), b"one")
            .record_raw(2, &header, video(false), b"two")
            .record(f, &end_summary())
            .finish();
        c.bytes()
    };
    let gap_self = {
        let mut c = Crafter::new(1, |h| {
            h.extensions = encode_gap_extensions(&[Gap {
                reason: GapReason::Crash,
                lost_segments: Some((1, 1)),
                frames: 0,
                from_pts: 0,
                to_pts: 3000,
            }]);
        });
        c.record(video(true), b"one")
            .record(f, &end_summary())
            .finish();
        c.bytes()
    };
    let duplicate_key_id = {
        let mut c = Crafter::new(1, |h| {
            let mut twin = h.stanzas[0].clone();
            // Another wrapping of the same key for the same recipient key id.
            twin.enc[0] ^= 0x01;
            h.stanzas.push(twin);
        });
        c.record(video(true), b"one")
            .record(f, &end_summary())
            .finish();
        c.bytes()
    };
    vec![
        case(
            "good",
            "ok",
            "ok",
            "a valid segment: three video records (a checkpoint after the second), the final record, the last checkpoint and the trailer",
            good_bytes.clone(),
        ),
        case(
            "truncated",
            "truncated",
            "truncated",
            "cut in the middle of the third record, after the first checkpoint",
            good_bytes[..rec[2].start + 10].to_vec(),
        ),
        case(
            "truncated_before_trailer",
            "truncated",
            "truncated",
            "every record and the last checkpoint present, the trailer missing",
            good_bytes[..trailer.start].to_vec(),
        ),
        case(
            "no_final",
            "no-final",
            "no-final",
            "records, checkpoints and a signed trailer, but no record flagged final",
            {
                let mut c = Crafter::plain();
                c.record(video(true), b"one")
                    .record(video(false), b"two")
                    .finish();
                c.bytes()
            },
        ),
        case(
            "two_final",
            "record-after-final",
            "record-after-final",
            "two records flagged final",
            {
                let mut c = Crafter::plain();
                c.record(video(true), b"one")
                    .record(f, &end_summary())
                    .record(f, &end_summary())
                    .finish();
                c.bytes()
            },
        ),
        case(
            "empty_final",
            "empty-final",
            "empty-final",
            "the final record has an empty plaintext (its size gives it away without a key)",
            {
                let mut c = Crafter::plain();
                c.record(video(true), b"one").record(f, b"").finish();
                c.bytes()
            },
        ),
        case(
            "bad_tag_record_2",
            "record-tampered",
            "checkpoint-tampered",
            "the tag of record 2 has one bit flipped: a key holder finds the bad tag, a reader without a key the records digest of the last checkpoint",
            bad_tag,
        ),
        case(
            "reordered",
            "out-of-order",
            "out-of-order",
            "records 1 and 2 swapped (the checkpoint between them left in place)",
            reordered,
        ),
        case(
            "trailing_garbage",
            "trailing-data",
            "trailing-data",
            "bytes after the trailer",
            [&good_bytes[..], b"garbage"].concat(),
        ),
        case(
            "count_mismatch",
            "trailer-tampered",
            "trailer-tampered",
            "trailer signed with a record count one too high",
            {
                let mut c = Crafter::plain();
                c.record(video(true), b"one")
                    .record(f, &end_summary())
                    .checkpoint();
                c.trailer_signed(3);
                c.bytes()
            },
        ),
        case(
            "forged_header_signature",
            "bad-header-signature",
            "bad-header-signature",
            "the header names camera 7's key but is signed by another key (records, checkpoints and trailer are camera 7's)",
            forged,
        ),
        case(
            "checkpoint_wrong_count",
            "checkpoint-tampered",
            "checkpoint-tampered",
            "a validly signed checkpoint that claims 3 records after 2 (with their right digest)",
            {
                let mut c = Crafter::plain();
                c.record(video(true), b"one").record(video(false), b"two");
                c.checkpoint_signed(3, c.digest.value());
                c.record(f, &end_summary()).finish();
                c.bytes()
            },
        ),
        case(
            "checkpoint_wrong_digest",
            "checkpoint-tampered",
            "checkpoint-tampered",
            "a validly signed checkpoint over 2 records with the records digest after 1",
            {
                let mut c = Crafter::plain();
                c.record(video(true), b"one");
                let after_one = c.digest.value();
                c.record(video(false), b"two")
                    .checkpoint_signed(2, after_one);
                c.record(f, &end_summary()).finish();
                c.bytes()
            },
        ),
        case(
            "checkpoint_signature_flipped",
            "bad-signature",
            "bad-signature",
            "the first checkpoint's signature has one bit flipped",
            flipped_checkpoint,
        ),
        case(
            "non_minimal_sframe_header",
            "malformed",
            "malformed",
            "record 1's SFrame header encodes KID 1 in an explicit one-byte field (81 01) instead of inline (11); its tag, the checkpoint and the trailer are valid over those bytes",
            non_minimal,
        ),
        case(
            "record_from_another_segment",
            "wrong-segment",
            "wrong-segment",
            "record 1 carries KID 2 (sealed under segment 2's key) in segment 1",
            other_segment,
        ),
        case(
            "gap_names_itself",
            "malformed",
            "malformed",
            "segment 1's header (MACed and signed) declares segment 1 itself lost in a crash",
            gap_self,
        ),
        case(
            "duplicate_key_id",
            "malformed",
            "malformed",
            "two X25519 stanzas (MACed and signed) carry the same key id",
            duplicate_key_id,
        ),
        case(
            "padded_good",
            "ok",
            "ok",
            "a valid padded segment (extension 0002 0001 01): records 0 and 1 carry 'one' and 'two' padded to the 256-byte bucket, then the pad length 253 (00 00 00 fd); the final record is not padded",
            padded(|_| {}),
        ),
        case(
            "padding_beyond_record",
            "malformed",
            "ok",
            "record 1's padded plaintext (a 256-byte bucket) declares a pad of 1000 bytes, beyond the record; its tag and the camera's signatures are valid, so only a reader with the key sees it",
            padded(|p| p[256..].copy_from_slice(&1000u32.to_be_bytes())),
        ),
        case(
            "padding_not_zero",
            "malformed",
            "ok",
            "record 1's padding has a nonzero byte (validly sealed and signed)",
            padded(|p| p[200] = 0x01),
        ),
        case(
            "padded_size_off_bucket",
            "malformed",
            "malformed",
            "record 1's sealed plaintext is 300 bytes and a zero pad length: 300 is no bucket, which a reader without the key sees from the record's size",
            padded(|p| {
                p.clear();
                p.extend_from_slice(&[0x41; 300]);
                p.extend_from_slice(&[0; 4]);
            }),
        ),
        case(
            "padding_unknown_scheme",
            "malformed",
            "malformed",
            "the header (MACed and signed) announces padding scheme 2, which does not exist",
            {
                let mut c = Crafter::new(1, |h| h.extensions = vec![0x00, 0x02, 0x00, 0x01, 0x02]);
                c.record(video(true), b"one")
                    .record(f, &end_summary())
                    .finish();
                c.bytes()
            },
        ),
    ]
}

/// A padded segment (the padding extension in its header) of two video records, 'one' and
/// 'two', each padded as FORMAT.md §3.1 says, with `tweak` applied to record 1's padded
/// plaintext before it is sealed; then the final record, the checkpoint and the trailer.
fn padded(tweak: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut c = Crafter::new(1, |h| {
        h.extensions = Padding::Buckets.extension().unwrap().to_vec();
    });
    let mut two = spec_padded(b"two");
    tweak(&mut two);
    c.record(video(true), &spec_padded(b"one"))
        .record(video(false), &two)
        .record(RecordFlags::final_record(), &end_summary())
        .finish();
    c.bytes()
}

/// Cases whose bytes are not generated by this build: kept as committed.
const STATIC_CASES: &[&str] = &["v1_segment"];

fn kind(e: &SegmentError) -> &'static str {
    match e {
        SegmentError::BadHeaderSignature => "bad-header-signature",
        SegmentError::BadSignature => "bad-signature",
        SegmentError::CheckpointTampered(_) => "checkpoint-tampered",
        SegmentError::EmptyFinal => "empty-final",
        SegmentError::HeaderTampered => "header-tampered",
        SegmentError::Malformed(_) => "malformed",
        SegmentError::NoFinal => "no-final",
        SegmentError::NotARecipient => "not-a-recipient",
        SegmentError::NotASegment => "not-a-segment",
        SegmentError::OutOfOrder { .. } => "out-of-order",
        SegmentError::RecordAfterFinal => "record-after-final",
        SegmentError::RecordTampered { .. } => "record-tampered",
        SegmentError::TrailerTampered(_) => "trailer-tampered",
        SegmentError::TrailingData => "trailing-data",
        SegmentError::Truncated(_) => "truncated",
        SegmentError::UnsupportedVersion(_) => "unsupported-version",
        SegmentError::WrongSegment { .. } => "wrong-segment",
        _ => "other",
    }
}

#[test]
fn testkit_cases_give_their_expected_errors() {
    let dir = root().join("pipeline/tests/testkit");
    let cases = testkit_cases();
    if regen() {
        for c in &cases {
            std::fs::write(dir.join(c.name), testkit_file_bytes(c)).unwrap();
        }
    }
    let (secret, _) = recipient(1);
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let data = std::fs::read(&path).unwrap();
        let (fields, bytes) = testkit_file(&data, &path);
        let field = |key: &str| {
            fields
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("{}: no `{key}` line", path.display()))
        };
        let (expect, expect_verify) = (field("expect: "), field("expect-verify: "));
        field("comment: ");
        if let Some(case) = cases.iter().find(|c| c.name == name) {
            assert!(
                testkit_file_bytes(case) == data,
                "{} is not what this build generates (CAMSEAL_REGEN_VECTORS=1 rewrites it)",
                path.display()
            );
        } else {
            assert!(
                STATIC_CASES.contains(&name.as_str()),
                "unknown testkit file {}",
                path.display()
            );
        }
        let with_key = match open_all(bytes, &secret) {
            Ok(_) => "ok",
            Err(e) => kind(&e),
        };
        assert_eq!(with_key, expect, "{} (with a key)", path.display());
        let without_key = match verify_all(bytes) {
            Ok(_) => "ok",
            Err(e) => kind(&e),
        };
        assert_eq!(
            without_key,
            expect_verify,
            "{} (without a key)",
            path.display()
        );
        // `inspect` reaches the same verdict as a reader without a key, and never panics.
        let report = inspect(bytes, None);
        let inspected = report.first_problem().map_or("ok", |p| kind(&p.error));
        assert_eq!(inspected, expect_verify, "{} (inspect)", path.display());
        seen.push(name);
    }
    seen.sort();
    let mut want: Vec<String> = cases
        .iter()
        .map(|c| c.name.to_owned())
        .chain(STATIC_CASES.iter().map(|s| s.to_string()))
        .collect();
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn a_key_wrapped_ahead_of_time_gives_the_same_header_and_only_fits_its_segment() {
    use camseal::segment::write::WrappedSegmentKey;
    let camera_key = camera(CAMERA_SEED);
    let camera_pub = camera_key.verifying_key().to_bytes();
    let recipients = [recipient(1), recipient(2)];
    let keys: Vec<RecipientKey<'_>> = recipients
        .iter()
        .map(|(_, pk)| x25519_recipient(pk))
        .collect();
    let randomness = Randomness::FixedForTests([3; 32]);
    let params = SegmentParams {
        codec: Codec::H265,
        stream_id: 2,
        segment_seq: 41,
        start_pts: 777,
        wallclock_ms: 5,
        prev_header_hash: [0x11; 32],
        ..segment_params(&keys)
    };
    let wrap = |suite, stream, seq, recipients: &[RecipientKey<'_>], camera: &[u8; 32]| {
        WrappedSegmentKey::new(suite, stream, seq, recipients, camera, &randomness).unwrap()
    };
    let suite = SframeSuite::Aes128GcmSha256;

    let inline = SegmentSealer::new(&params, &camera_key, &randomness).unwrap();
    let ahead =
        SegmentSealer::with_key(&params, &camera_key, wrap(suite, 2, 41, &keys, &camera_pub))
            .unwrap();
    assert_eq!(ahead.header_bytes(), inline.header_bytes());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    inline
        .seal_record(0, 777, RecordFlags::video(true, false), b"frame", &mut a)
        .unwrap();
    ahead
        .seal_record(0, 777, RecordFlags::video(true, false), b"frame", &mut b)
        .unwrap();
    assert_eq!(a, b);

    let other_camera = camera(CAMERA_SEED + 1).verifying_key().to_bytes();
    let mismatches = [
        ("sequence", wrap(suite, 2, 42, &keys, &camera_pub)),
        ("stream", wrap(suite, 3, 41, &keys, &camera_pub)),
        (
            "suite",
            wrap(SframeSuite::Aes256GcmSha512, 2, 41, &keys, &camera_pub),
        ),
        ("recipients", wrap(suite, 2, 41, &keys[..1], &camera_pub)),
        (
            "recipient order",
            wrap(suite, 2, 41, &[keys[1], keys[0]], &camera_pub),
        ),
        ("camera", wrap(suite, 2, 41, &keys, &other_camera)),
    ];
    for (what, key) in mismatches {
        match SegmentSealer::with_key(&params, &camera_key, key) {
            Err(SegmentError::Wrap(_)) => {}
            Ok(_) => panic!("a key wrapped for another {what} was accepted"),
            Err(e) => panic!("another {what}: unexpected error {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn regen() -> bool {
    std::env::var_os("CAMSEAL_REGEN_VECTORS").is_some_and(|v| v == "1")
}

/// A testkit file: `expect:` (read with recipient 1's key), `expect-verify:` (read without
/// a key), `comment:`, a blank line, then the raw segment bytes.
fn testkit_file_bytes(c: &Case) -> Vec<u8> {
    let mut file = format!(
        "expect: {}\nexpect-verify: {}\ncomment: {}\n\n",
        c.expect, c.expect_verify, c.comment
    )
    .into_bytes();
    file.extend_from_slice(&c.bytes);
    file
}

/// Splits a testkit file into its header lines and the segment bytes after the blank line.
fn testkit_file<'a>(data: &'a [u8], path: &Path) -> (&'a str, &'a [u8]) {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or_else(|| panic!("{}: header ends with a blank line", path.display()));
    let fields = std::str::from_utf8(&data[..split]).expect("header is text");
    (fields, &data[split + 2..])
}

/// `sframe_key` and `sframe_salt` for `kid` (RFC 9605 §4.4.2), written here from the RFC.
fn sframe_keys(suite: SframeSuite, kid: u64, base_key: &[u8]) -> (Vec<u8>, [u8; 12]) {
    let label = |prefix: &[u8]| [prefix, &kid.to_be_bytes(), &suite.id().to_be_bytes()].concat();
    let (key_label, salt_label) = (
        label(b"SFrame 1.0 Secret key "),
        label(b"SFrame 1.0 Secret salt "),
    );
    let mut salt = [0u8; 12];
    match suite {
        SframeSuite::Aes128GcmSha256 => {
            let mut key = vec![0u8; 16];
            let hk = Hkdf::<Sha256>::new(Some(&[]), base_key);
            hk.expand(&key_label, &mut key).unwrap();
            hk.expand(&salt_label, &mut salt).unwrap();
            (key, salt)
        }
        SframeSuite::Aes256GcmSha512 => {
            let mut key = vec![0u8; 32];
            let hk = Hkdf::<Sha512>::new(Some(&[]), base_key);
            hk.expand(&key_label, &mut key).unwrap();
            hk.expand(&salt_label, &mut salt).unwrap();
            (key, salt)
        }
    }
}

/// `sframe_salt XOR CTR` (CTR as a 12-byte big-endian integer).
fn sframe_nonce(salt: &[u8; 12], ctr: u64) -> [u8; 12] {
    let mut nonce = *salt;
    for (n, c) in nonce[4..].iter_mut().zip(ctr.to_be_bytes()) {
        *n ^= c;
    }
    nonce
}

fn blake3_of(parts: &[&[u8]]) -> Digest32 {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().unwrap())
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().unwrap())
}
