//! The browser core on real segments (natively): a good one opens with every frame; a
//! flipped byte (see below), another viewer's key, an unpinned camera and bytes after the trailer are
//! refused with nothing handed out; a segment cut off keeps only its signed prefix.

use camseal::keys::{KemKind, RecipientSecret};
use camseal::nal::Codec;
use camseal::seal::SframeSuite;
use camseal::segment::padding::Padding;
use camseal::segment::write::{
    CheckpointPolicy, HPKE_KEM_X25519, Randomness, RecipientKey, SegmentParams, SegmentWriter,
};
use camseal::segment::{CloseReason, SegmentEnd};
use camseal_web::core::{Keys, Live, open_segment};

const FRAMES: u64 = 15;
const GOP: u64 = 5;

fn frame(i: u64) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1];
    if i.is_multiple_of(GOP) {
        // An SPS first: baseline, level 3.0.
        f.extend_from_slice(&[0x67, 0x42, 0xc0, 0x1e, 0xaa, 0, 0, 0, 1, 0x65]);
    } else {
        f.push(0x41);
    }
    f.extend(std::iter::repeat_n(i as u8, 100 + i as usize));
    f
}

/// One segment of FRAMES frames (checkpoints every 3 frames), with the viewer's secret and
/// the camera's public key.
fn segment() -> (Vec<u8>, [u8; 32], [u8; 32]) {
    let secret = [9u8; 32];
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
    let keys = [RecipientKey {
        kem: HPKE_KEM_X25519,
        public_key: public.as_bytes(),
    }];
    let camera = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let params = SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        codec: Codec::H264,
        stream_id: 0,
        segment_seq: 4,
        start_pts: 0,
        wallclock_ms: 0,
        prev_header_hash: [5; 32],
        recipients: &keys,
        gaps: &[],
        padding: Padding::Off,
    };
    let mut w = SegmentWriter::create(
        Vec::new(),
        &params,
        &camera,
        &Randomness::FixedForTests([1; 32]),
    )
    .unwrap()
    .with_checkpoints(CheckpointPolicy::every_ms(200));
    for i in 0..FRAMES {
        w.append(i * 6000, i.is_multiple_of(GOP), false, &frame(i))
            .unwrap();
    }
    let (bytes, _) = w
        .finish(SegmentEnd {
            end_pts: FRAMES * 6000,
            reason: CloseReason::EndOfStream,
        })
        .unwrap();
    (bytes, secret, camera.verifying_key().to_bytes())
}

fn keys(secret: [u8; 32], camera: [u8; 32]) -> Keys {
    let mut k = Keys::new();
    k.add_secret(&RecipientSecret::new(KemKind::X25519, secret).to_text())
        .unwrap();
    k.add_camera(&hex(&camera)).unwrap();
    k
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_good_segment_opens_whole() {
    let (bytes, secret, camera) = segment();
    let clip = open_segment(&keys(secret, camera), &bytes).unwrap();
    assert!(clip.complete);
    assert_eq!(clip.segment_seq, 4);
    assert_eq!(clip.frames.len() as u64, FRAMES);
    for (i, f) in clip.frames.iter().enumerate() {
        assert_eq!(f.data, frame(i as u64));
        assert_eq!(f.pts, i as u64 * 6000);
    }
    assert_eq!(
        camseal_web::core::codec_string(clip.codec, &clip.frames[0].data).as_deref(),
        Some("avc1.42c01e")
    );
}

/// A flipped byte is refused, or (where it breaks an item's length, which looks exactly like
/// a file cut off there) yields an incomplete clip of the true frames' signed prefix: never
/// a complete clip, never an altered frame.
#[test]
fn any_flipped_byte_is_refused_or_left_incomplete() {
    let (bytes, secret, camera) = segment();
    let k = keys(secret, camera);
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        if let Ok(clip) = open_segment(&k, &bad) {
            assert!(!clip.complete, "byte {at} flipped and the clip is complete");
            for (i, f) in clip.frames.iter().enumerate() {
                assert_eq!(
                    f.data,
                    frame(i as u64),
                    "byte {at} flipped: frame {i} altered"
                );
            }
        }
    }
}

#[test]
fn wrong_key_unpinned_camera_and_trailing_bytes_are_refused() {
    let (bytes, secret, camera) = segment();
    let wrong_key = open_segment(&keys([8; 32], camera), &bytes).unwrap_err();
    assert!(wrong_key.to_string().contains("recipient"), "{wrong_key}");
    let other_camera = open_segment(&keys(secret, [3; 32]), &bytes).unwrap_err();
    assert!(
        other_camera.to_string().contains("not pinned"),
        "{other_camera}"
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(open_segment(&keys(secret, camera), &longer).is_err());
}

#[test]
fn a_cut_off_segment_keeps_its_signed_prefix_only() {
    let (bytes, secret, camera) = segment();
    let cut = &bytes[..bytes.len() * 2 / 3];
    let clip = open_segment(&keys(secret, camera), cut).unwrap();
    assert!(!clip.complete);
    assert!(!clip.frames.is_empty() && (clip.frames.len() as u64) < FRAMES);
    for (i, f) in clip.frames.iter().enumerate() {
        assert_eq!(f.data, frame(i as u64));
    }
}

#[test]
fn a_live_stream_that_fails_stays_failed() {
    let (bytes, secret, camera) = segment();
    let mut live = Live::new(&keys(secret, camera));
    assert!(live.feed(&[0x7f]).is_err());
    // Even a good header is refused after a failure.
    let mut header = vec![camseal::live::MSG_HEADER];
    let camseal::segment::Parsed::Complete(_, used) =
        camseal::segment::Header::parse(&bytes).unwrap()
    else {
        panic!()
    };
    header.extend_from_slice(&bytes[..used]);
    assert!(live.feed(&header).is_err());
    let mut fresh = Live::new(&keys(secret, camera));
    assert!(fresh.feed(&header).unwrap().is_empty());
    assert_eq!(fresh.codec(), Some(Codec::H264));
}
