//! A synthetic H.264-shaped stream for the engine tests: access units of chosen sizes made of
//! start codes and NAL units (SPS, PPS and an IDR slice for keyframes), and stream configs.

#![allow(dead_code)]

use camseal::engine::{Overload, StreamConfig, WallClock};
use camseal::nal::Codec;
use camseal::recorder::SegmentPolicy;
use camseal::seal::SframeSuite;
use camseal::segment::write::{CheckpointPolicy, HPKE_KEM_X25519, Randomness};
use camseal_hal::Packet;

/// Frame `i` of a stream: a keyframe every `gop` frames; `size` bytes in all; NAL units of at
/// most `nal_max` bytes (so large frames have several NAL units and split at their
/// boundaries, and a `nal_max` above the chunk size makes continuation records).
pub fn access_unit(i: u64, gop: u64, size: usize, nal_max: usize) -> (bool, Vec<u8>) {
    let keyframe = i.is_multiple_of(gop);
    let mut au = Vec::with_capacity(size + 64);
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0x8c]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    }
    let slice_type = if keyframe { 0x65 } else { 0x41 };
    let mut k = 0u64;
    while au.len() < size {
        au.extend_from_slice(&[0, 0, 0, 1, slice_type]);
        let n = nal_max.min(size.saturating_sub(au.len())).max(1);
        // Never 0x00, so no start code appears inside a payload.
        au.extend((0..n as u64).map(|j| ((i * 131 + k * 17 + j * 7) % 255 + 1) as u8));
        k += 1;
    }
    (keyframe, au)
}

/// Sizes that vary like real video: large keyframes, small and medium other frames.
pub fn frame_size(i: u64, gop: u64, key: usize, other: usize) -> usize {
    if i.is_multiple_of(gop) {
        key
    } else {
        other / 2 + ((i * 7919) % other as u64) as usize
    }
}

/// Packet `i` at 30 fps.
pub fn packet(i: u64, keyframe: bool, data: Vec<u8>) -> Packet {
    Packet::from_vec(Codec::H264, i * 3000, keyframe, data)
}

/// The x25519 public key of the test recipient `seed` (secret: `[seed; 32]`).
pub fn recipient_public(seed: u8) -> Vec<u8> {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([seed; 32]))
        .to_bytes()
        .to_vec()
}

/// A stream config with deterministic keys, clock and randomness; segments of `target_s`.
pub fn stream_config(stream_id: u32, target_s: f64) -> StreamConfig {
    StreamConfig {
        camera: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        recipients: vec![(HPKE_KEM_X25519, recipient_public(1))],
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        stream_id,
        policy: SegmentPolicy::with_target(std::time::Duration::from_secs_f64(target_s)),
        frame_ticks: 3000,
        chain_path: None,
        randomness: Randomness::FixedForTests([stream_id as u8 + 1; 32]),
        wallclock: WallClock::Fixed(1_700_000_000_000),
        overload: Overload::Block,
        checkpoints: CheckpointPolicy::default(),
        padding: camseal::segment::padding::Padding::Off,
    }
}
