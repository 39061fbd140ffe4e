//! Helpers shared by the segment tests: fixed keys, a segment builder, and a full reader
//! (format v2: checkpoints included).

#![allow(dead_code)]

use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::read::{Opener, SegmentReader, Verified, Verifier};
use camseal::segment::write::{
    HPKE_KEM_X25519, Randomness, RecipientKey, SegmentParams, SegmentSummary, SegmentWriter,
};
use camseal::segment::{CloseReason, Item, SegmentEnd, SegmentError};

/// A fixed recipient: (secret, public).
pub fn recipient(seed: u8) -> ([u8; 32], [u8; 32]) {
    let secret = [seed; 32];
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
    (secret, public.to_bytes())
}

/// A fixed camera key.
pub fn camera(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

/// One video record to write: (pts, keyframe, continuation, plaintext).
pub type Rec = (u64, bool, bool, Vec<u8>);

/// Writes a segment with deterministic randomness.
pub fn build(
    suite: SframeSuite,
    seq: u64,
    prev: [u8; 32],
    recipients: &[[u8; 32]],
    records: &[Rec],
) -> (Vec<u8>, SegmentSummary) {
    let keys: Vec<RecipientKey<'_>> = recipients
        .iter()
        .map(|pk| RecipientKey {
            kem: HPKE_KEM_X25519,
            public_key: pk,
        })
        .collect();
    let params = SegmentParams {
        suite,
        codec: Codec::H264,
        stream_id: 0,
        segment_seq: seq,
        start_pts: records.first().map_or(0, |r| r.0),
        wallclock_ms: 1_700_000_000_000,
        prev_header_hash: prev,
        recipients: &keys,
        gaps: &[],
        padding: camseal::segment::padding::Padding::Off,
    };
    let mut w = SegmentWriter::create(
        Vec::new(),
        &params,
        &camera(7),
        &Randomness::FixedForTests([seq as u8; 32]),
    )
    .unwrap();
    for (pts, key, cont, data) in records {
        w.append(*pts, *key, *cont, data).unwrap();
    }
    let end = records.last().map_or(0, |r| r.0 + 3000);
    w.finish(SegmentEnd {
        end_pts: end,
        reason: CloseReason::Keyframe,
    })
    .unwrap()
}

/// Opens a whole segment; returns the video plaintext and the verification result.
pub fn open_all(bytes: &[u8], secret: &[u8; 32]) -> Result<(Vec<u8>, Verified), SegmentError> {
    let mut reader = SegmentReader::new(bytes)?;
    let mut opener = Opener::new(reader.header(), secret)?;
    let mut out = Vec::new();
    loop {
        match reader.next_item()? {
            Item::Record(r) => {
                opener.open(&r, &mut out)?;
            }
            Item::Checkpoint(c) => {
                opener.checkpoint(&c)?;
            }
            Item::Trailer(t) => {
                let v = opener.finish(&t)?;
                return Ok((out, v));
            }
        }
    }
}

/// Verifies a whole segment without keys.
pub fn verify_all(bytes: &[u8]) -> Result<Verified, SegmentError> {
    let mut reader = SegmentReader::new(bytes)?;
    let mut verifier = Verifier::new(reader.header());
    loop {
        match reader.next_item()? {
            Item::Record(r) => {
                verifier.observe(&r)?;
            }
            Item::Checkpoint(c) => {
                verifier.checkpoint(&c)?;
            }
            Item::Trailer(t) => return verifier.finish(&t),
        }
    }
}

/// Byte ranges of each part of an encoded segment: header, records, trailer (checkpoints
/// are left out; see [`parts`]).
pub fn layout(bytes: &[u8]) -> (usize, Vec<std::ops::Range<usize>>, std::ops::Range<usize>) {
    let p = parts(bytes);
    (p.header, p.records, p.trailer)
}

/// Byte ranges of every part of a whole encoded segment.
pub struct Parts {
    /// Length of the header.
    pub header: usize,
    /// Each record.
    pub records: Vec<std::ops::Range<usize>>,
    /// Each checkpoint.
    pub checkpoints: Vec<std::ops::Range<usize>>,
    /// The trailer.
    pub trailer: std::ops::Range<usize>,
}

/// Splits a whole, valid segment into its parts.
pub fn parts(bytes: &[u8]) -> Parts {
    let mut reader = SegmentReader::new(bytes).unwrap();
    let header = reader.offset() as usize;
    let (mut records, mut checkpoints) = (Vec::new(), Vec::new());
    loop {
        let start = reader.offset() as usize;
        match reader.next_item().unwrap() {
            Item::Record(_) => records.push(start..reader.offset() as usize),
            Item::Checkpoint(_) => checkpoints.push(start..reader.offset() as usize),
            Item::Trailer(_) => {
                return Parts {
                    header,
                    records,
                    checkpoints,
                    trailer: start..bytes.len(),
                };
            }
        }
    }
}

/// A few records of pseudo-video.
pub fn sample_records(n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let len = 1 + (i * 977) % 5000;
            let data: Vec<u8> = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
            (i as u64 * 3000, i % 4 == 0, i % 5 == 3, data)
        })
        .collect()
}
