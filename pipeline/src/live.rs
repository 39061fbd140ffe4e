//! Live view: the sealed bytes of a stream, sent to viewers as they are written
//! (`docs/PROTOCOL.md` §12).
//!
//! Camera side: [`LiveSink`] wraps the engine's [`SegmentSink`](crate::engine::SegmentSink) and hands every header,
//! record, checkpoint and trailer to a [`LiveHub`] as it is written, unchanged: the same
//! bytes as in the segment files, no second encryption and no plaintext. The hub fans them
//! out to subscribers through bounded queues that never block the camera: a subscriber whose
//! queue is full is dropped and counted. A subscriber that joins mid-segment gets the open
//! segment's header and a *resume* message, then the records from the next keyframe on.
//!
//! Viewer side: [`LiveReader`] is sans-I/O: it is fed messages and returns access units,
//! decrypted and covered by a camera signature (a checkpoint or the trailer).
//!
//! The WebSocket transport is the binary's (`camseal run --live`, `camseal live`).

#[cfg(feature = "native")]
mod hub;
#[cfg(feature = "native")]
pub use hub::*;

use crate::keys::RecipientSecret;
use crate::segment::read::{Opener, check_camera};
use crate::segment::{Digest32, Header, Item, Parsed, SegmentError, parse_item};

/// Message type: a segment header, exactly as in the segment file.
pub const MSG_HEADER: u8 = 0x01;
/// Message type: where a late joiner resumes in the open segment: `record_index` (8, big
/// endian) and the records digest of the records before it (32).
pub const MSG_RESUME: u8 = 0x02;
/// Message type: one record, exactly as in the segment file.
pub const MSG_RECORD: u8 = 0x03;
/// Message type: one checkpoint, exactly as in the segment file.
pub const MSG_CHECKPOINT: u8 = 0x04;
/// Message type: the trailer, exactly as in the segment file.
pub const MSG_TRAILER: u8 = 0x05;

/// Why the live reader stopped.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A message that is not one of the protocol's, or out of place.
    #[error("live stream: {0}")]
    Protocol(&'static str),
    /// The header is signed by a camera the viewer does not pin.
    #[error("live stream: camera {0} is not pinned in the viewer home")]
    UntrustedCamera(String),
    /// The footage failed a check: tampered, malformed, not for us.
    #[error(transparent)]
    Segment(#[from] SegmentError),
}

/// One access unit (frame), decrypted and covered by a camera signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveFrame {
    /// Segment sequence number.
    pub segment_seq: u64,
    /// pts, 90 kHz.
    pub pts: u64,
    /// Whether it is a keyframe.
    pub keyframe: bool,
    /// Annex-B bytes.
    pub data: Vec<u8>,
}

/// The viewer side of the live protocol, without I/O: [`LiveReader::feed`] each message in
/// order; it returns the frames that the camera's signatures now cover.
pub struct LiveReader {
    secrets: Vec<RecipientSecret>,
    cameras: Vec<[u8; 32]>,
    segment: Option<LiveSegment>,
    segments: u64,
}

struct LiveSegment {
    seq: u64,
    opener: Opener,
    /// No record yet: a resume message may still come.
    fresh: bool,
    /// Frames decrypted but not yet covered by a signature, with the record count after each.
    held: Vec<(LiveFrame, u64)>,
}

impl LiveReader {
    /// A reader that opens segment keys with `secrets` and believes only headers signed by
    /// one of `cameras` (Ed25519 public keys).
    pub fn new(secrets: Vec<RecipientSecret>, cameras: Vec<[u8; 32]>) -> LiveReader {
        LiveReader {
            secrets,
            cameras,
            segment: None,
            segments: 0,
        }
    }

    /// Segments whose header verified so far.
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Processes one message; returns the frames it released. An error is final: the
    /// stream can no longer be trusted.
    pub fn feed(&mut self, msg: &[u8]) -> Result<Vec<LiveFrame>, LiveError> {
        let Some((&kind, payload)) = msg.split_first() else {
            return Err(LiveError::Protocol("empty message"));
        };
        match kind {
            MSG_HEADER => self.header(payload).map(|()| Vec::new()),
            MSG_RESUME => self.resume(payload).map(|()| Vec::new()),
            MSG_RECORD | MSG_CHECKPOINT | MSG_TRAILER => self.item(kind, payload),
            _ => Err(LiveError::Protocol("unknown message type")),
        }
    }

    fn header(&mut self, payload: &[u8]) -> Result<(), LiveError> {
        let header = match Header::parse(payload)? {
            Parsed::Complete(h, used) if used == payload.len() => h,
            _ => {
                return Err(LiveError::Protocol(
                    "a header message is not one whole header",
                ));
            }
        };
        header.verify_signature()?;
        header.validate()?;
        let camera = self
            .cameras
            .iter()
            .find(|c| **c == header.camera_key)
            .ok_or_else(|| LiveError::UntrustedCamera(header.camera_id()))?;
        check_camera(&header, camera)?;
        let opener = Opener::with_keys(&header, &self.secrets)?;
        self.segment = Some(LiveSegment {
            seq: header.segment_seq,
            opener,
            fresh: true,
            held: Vec::new(),
        });
        self.segments += 1;
        Ok(())
    }

    fn resume(&mut self, payload: &[u8]) -> Result<(), LiveError> {
        let seg = self
            .segment
            .as_mut()
            .filter(|s| s.fresh)
            .ok_or(LiveError::Protocol(
                "a resume message not right after a header",
            ))?;
        let (count, digest) = payload
            .split_first_chunk::<8>()
            .filter(|(_, d)| d.len() == 32)
            .ok_or(LiveError::Protocol("a resume message of the wrong size"))?;
        let mut value: Digest32 = [0; 32];
        value.copy_from_slice(digest);
        // Unsigned, and needs no signature: a checkpoint's signature covers the digest
        // folded on from here, so a false starting point only makes that check fail.
        seg.opener.resume(u64::from_be_bytes(*count), value);
        seg.fresh = false;
        Ok(())
    }

    fn item(&mut self, kind: u8, payload: &[u8]) -> Result<Vec<LiveFrame>, LiveError> {
        let seg = self
            .segment
            .as_mut()
            .ok_or(LiveError::Protocol("a record before any header"))?;
        seg.fresh = false;
        let item = match parse_item(payload)? {
            Parsed::Complete(item, used) if used == payload.len() => item,
            _ => return Err(LiveError::Protocol("a message is not one whole item")),
        };
        match (kind, item) {
            (MSG_RECORD, Item::Record(r)) => {
                let mut out = Vec::new();
                let opened = seg.opener.open(&r, &mut out)?;
                if opened.end.is_none() {
                    let covered = opened.index + 1;
                    match seg.held.last_mut() {
                        Some((f, n)) if f.pts == r.pts && !r.flags.is_final() => {
                            f.data.extend_from_slice(&out);
                            *n = covered;
                        }
                        _ => seg.held.push((
                            LiveFrame {
                                segment_seq: seg.seq,
                                pts: r.pts,
                                keyframe: r.flags.keyframe(),
                                data: out,
                            },
                            covered,
                        )),
                    }
                }
                Ok(Vec::new())
            }
            (MSG_CHECKPOINT, Item::Checkpoint(c)) => {
                let signed = seg.opener.checkpoint(&c)?;
                Ok(release(&mut seg.held, signed))
            }
            (MSG_TRAILER, Item::Trailer(t)) => {
                let Some(seg) = self.segment.take() else {
                    return Err(LiveError::Protocol("a trailer before any header"));
                };
                let LiveSegment {
                    opener, mut held, ..
                } = seg;
                let verified = opener.finish(&t)?;
                Ok(release(&mut held, verified.record_count))
            }
            _ => Err(LiveError::Protocol(
                "a message whose type does not match its bytes",
            )),
        }
    }
}

/// The held frames whose records all lie before `signed`.
fn release(held: &mut Vec<(LiveFrame, u64)>, signed: u64) -> Vec<LiveFrame> {
    let n = held.iter().take_while(|(_, end)| *end <= signed).count();
    held.drain(..n).map(|(f, _)| f).collect()
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use crate::keys::KemKind;
    use crate::nal::Codec;
    use crate::seal::SframeSuite;
    use crate::segment::padding::Padding;
    use crate::segment::write::{
        CheckpointPolicy, HPKE_KEM_X25519, Randomness, RecipientKey, SegmentParams, SegmentWriter,
    };
    use crate::segment::{CloseReason, SegmentEnd};
    use crossbeam_channel::Receiver;

    const FRAMES: u64 = 15;
    /// A keyframe every 5 frames, a checkpoint every 3 (18000 ticks at 6000 per frame).
    const GOP: u64 = 5;

    fn frame(i: u64) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 1, if i.is_multiple_of(GOP) { 0x65 } else { 0x41 }];
        f.extend(std::iter::repeat_n(i as u8, 100 + i as usize));
        f
    }

    /// One segment of `FRAMES` one-record frames; returns it with the viewer's secret and
    /// the camera's public key.
    fn segment() -> (Vec<u8>, RecipientSecret, [u8; 32]) {
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
        (
            bytes,
            RecipientSecret::new(KemKind::X25519, secret),
            camera.verifying_key().to_bytes(),
        )
    }

    /// The segment's items, split as the engine writes them: header, then each item.
    fn writes(bytes: &[u8]) -> Vec<Vec<u8>> {
        let Ok(Parsed::Complete(_, mut at)) = Header::parse(bytes) else {
            panic!("no header");
        };
        let mut out = vec![bytes[..at].to_vec()];
        while at < bytes.len() {
            let Ok(Parsed::Complete(_, used)) = parse_item(&bytes[at..]) else {
                panic!("bad item");
            };
            out.push(bytes[at..at + used].to_vec());
            at += used;
        }
        out
    }

    /// Feeds the segment to a hub; `join` subscribes a viewer after that many writes.
    fn serve(bytes: &[u8], join: usize, capacity: usize) -> (LiveHub, Receiver<Message>) {
        let hub = LiveHub::new();
        let mut rx = None;
        for (i, w) in writes(bytes).iter().enumerate() {
            if i == join {
                rx = Some(hub.subscribe(capacity));
            }
            if i == 0 {
                hub.header(w);
            } else {
                hub.items(w);
            }
        }
        (hub, rx.unwrap())
    }

    #[test]
    fn a_late_viewer_resumes_at_the_next_keyframe_and_every_frame_is_verified() {
        let (bytes, secret, camera) = segment();
        // After the header and 3 records (and a checkpoint): frame 5 is the next keyframe.
        let (_, rx) = serve(&bytes, 5, 1024);
        let msgs: Vec<Message> = rx.try_iter().collect();
        assert_eq!(msgs[0][0], MSG_HEADER);
        assert_eq!(msgs[1][0], MSG_RESUME);
        assert_eq!(u64::from_be_bytes(msgs[1][1..9].try_into().unwrap()), GOP);
        let mut reader = LiveReader::new(vec![secret], vec![camera]);
        let mut frames = Vec::new();
        for m in &msgs {
            frames.extend(reader.feed(m).unwrap());
        }
        let pts: Vec<u64> = frames.iter().map(|f| f.pts).collect();
        let expected: Vec<u64> = (GOP..FRAMES).map(|i| i * 6000).collect();
        assert_eq!(pts, expected);
        assert!(frames[0].keyframe);
        for f in &frames {
            assert_eq!(f.data, frame(f.pts / 6000));
        }
    }

    #[test]
    fn a_false_resume_point_releases_nothing() {
        let (bytes, secret, camera) = segment();
        let (_, rx) = serve(&bytes, 5, 1024);
        let mut msgs: Vec<Vec<u8>> = rx.try_iter().map(|m| m.to_vec()).collect();
        msgs[1][20] ^= 1;
        let mut reader = LiveReader::new(vec![secret], vec![camera]);
        let mut released = 0;
        let mut failed = None;
        for m in &msgs {
            match reader.feed(m) {
                Ok(f) => released += f.len(),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        assert_eq!(released, 0);
        assert!(
            matches!(
                failed,
                Some(LiveError::Segment(SegmentError::CheckpointTampered(_)))
            ),
            "{failed:?}"
        );
    }

    #[test]
    fn an_untrusted_camera_or_a_stranger_is_refused() {
        let (bytes, secret, camera) = segment();
        let (_, rx) = serve(&bytes, 0, 1024);
        let header = rx.try_recv().unwrap();
        let mut other = camera;
        other[0] ^= 1;
        let mut reader = LiveReader::new(vec![secret.clone()], vec![other]);
        assert!(matches!(
            reader.feed(&header),
            Err(LiveError::UntrustedCamera(_))
        ));
        let stranger = RecipientSecret::new(KemKind::X25519, [3; 32]);
        let mut reader = LiveReader::new(vec![stranger], vec![camera]);
        assert!(matches!(
            reader.feed(&header),
            Err(LiveError::Segment(SegmentError::NotARecipient))
        ));
    }

    #[test]
    fn a_viewer_that_falls_behind_is_dropped_without_holding_up_the_camera() {
        let (bytes, _, _) = segment();
        let hub = LiveHub::new();
        let slow = hub.subscribe(4);
        let fast = hub.subscribe(1024);
        for (i, w) in writes(&bytes).iter().enumerate() {
            if i == 0 {
                hub.header(w);
            } else {
                hub.items(w);
            }
        }
        assert_eq!(hub.stats().dropped_slow, 1);
        assert_eq!(hub.subscribers(), 1);
        // The slow one got what fit, then its queue was closed.
        assert_eq!(slow.try_iter().count(), 4);
        assert!(slow.recv().is_err());
        // The other one got everything: header, records, checkpoints, trailer.
        assert_eq!(fast.try_iter().count(), writes(&bytes).len());
    }
}
