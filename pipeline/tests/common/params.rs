//! The one builder for the segment parameters that tests and benches seal with. The tests
//! reach it through `common`; `forgery.rs` and `benches/benches/pipeline.rs` include this
//! file by path, so that none of them spells out a whole `SegmentParams` again.

#![allow(dead_code)]

use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::write::{HPKE_KEM_X25519, RecipientKey, SegmentParams};

/// One X25519 recipient.
pub fn x25519_recipient(public_key: &[u8]) -> RecipientKey<'_> {
    RecipientKey {
        kem: HPKE_KEM_X25519,
        public_key,
    }
}

/// Segment 0 of stream 0, sealed to `recipients`: AES-128-GCM, H.264, pts 0, wall clock 0,
/// the first of its stream (zero predecessor hash), no gaps, no size padding. Change what a test needs with
/// `SegmentParams { segment_seq: 3, ..segment_params(&keys) }`.
pub fn segment_params<'a>(recipients: &'a [RecipientKey<'a>]) -> SegmentParams<'a> {
    SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        stream_id: 0,
        segment_seq: 0,
        start_pts: 0,
        wallclock_ms: 0,
        prev_header_hash: [0; 32],
        recipients,
        gaps: &[],
        padding: camseal::segment::padding::Padding::Off,
    }
}
