//! The viewer's logic without the browser: keys, opening a recorded segment, following a
//! live stream. Everything here is plain Rust, unit-tested natively; `lib.rs` only wraps it
//! for JavaScript.
//!
//! A recorded segment is read the way a live stream is: its header, then each record,
//! checkpoint and trailer, fed in file order to [`LiveReader`], which releases a frame only
//! once a camera signature covers it. So the browser plays nothing that the camera did not
//! sign, and one rule set checks both recorded and live footage.

use camseal::keys::RecipientSecret;
use camseal::live::{
    LiveError, LiveFrame, LiveReader, MSG_CHECKPOINT, MSG_HEADER, MSG_RECORD, MSG_TRAILER,
};
use camseal::nal::Codec;
use camseal::segment::{Header, Item, Parsed, SegmentError, parse_item};
use camseal_nal::nal_units;

/// Why footage was refused.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A key or camera the page was given is malformed.
    #[error("bad key material: {0}")]
    Key(String),
    /// The footage failed verification or decryption (tampered, not for this viewer, not
    /// from a pinned camera).
    #[error(transparent)]
    Footage(#[from] LiveError),
    /// The bytes are not a segment.
    #[error("not a camseal segment: {0}")]
    Segment(#[from] SegmentError),
}

/// The viewer's keys: the secrets that open segment keys and the cameras it believes.
#[derive(Default)]
pub struct Keys {
    secrets: Vec<RecipientSecret>,
    cameras: Vec<[u8; 32]>,
}

impl Keys {
    /// No keys yet.
    pub fn new() -> Keys {
        Keys::default()
    }

    /// Adds a device key, as the text of a `device.key` file.
    pub fn add_secret(&mut self, text: &str) -> Result<(), ViewError> {
        let secret = RecipientSecret::from_text(text).map_err(|e| ViewError::Key(e.to_string()))?;
        self.secrets.push(secret);
        Ok(())
    }

    /// Pins a camera by its Ed25519 public key (64 hex digits).
    pub fn add_camera(&mut self, hex_key: &str) -> Result<(), ViewError> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_key.trim(), &mut key)
            .map_err(|e| ViewError::Key(format!("camera key {hex_key:?}: {e}")))?;
        self.cameras.push(key);
        Ok(())
    }

    /// A reader that uses these keys.
    pub fn reader(&self) -> LiveReader {
        LiveReader::new(self.secrets.clone(), self.cameras.clone())
    }
}

/// A recorded segment, opened: its frames that a camera signature covers.
#[derive(Debug)]
pub struct Clip {
    /// The header's codec.
    pub codec: Codec,
    /// The segment's sequence number.
    pub segment_seq: u64,
    /// Whether the trailer was there and valid (otherwise only the signed prefix is here).
    pub complete: bool,
    /// The frames, in order.
    pub frames: Vec<LiveFrame>,
}

/// Verifies and decrypts a whole segment file. Any failed check is an error: no frame of a
/// segment that does not verify is handed out, not even those before the fault, so that the
/// page never plays part of a tampered segment as if it were good.
pub fn open_segment(keys: &Keys, bytes: &[u8]) -> Result<Clip, ViewError> {
    let (header, mut at) = match Header::parse(bytes)? {
        Parsed::Complete(h, used) => (h, used),
        Parsed::Needed(_) => {
            return Err(ViewError::Footage(LiveError::Protocol(
                "the file ends inside the header",
            )));
        }
    };
    let mut reader = keys.reader();
    let mut frames = reader.feed(&message(MSG_HEADER, &bytes[..at]))?;
    let mut complete = false;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let (kind, used) = match parse_item(rest)? {
            Parsed::Complete(Item::Record(_), used) => (MSG_RECORD, used),
            Parsed::Complete(Item::Checkpoint(_), used) => (MSG_CHECKPOINT, used),
            Parsed::Complete(Item::Trailer(_), used) => (MSG_TRAILER, used),
            // Cut off inside an item (a camera that lost power): the signed prefix stands.
            Parsed::Needed(_) => break,
        };
        frames.extend(reader.feed(&message(kind, &rest[..used]))?);
        at += used;
        if kind == MSG_TRAILER {
            complete = true;
            break;
        }
    }
    if complete && at != bytes.len() {
        return Err(ViewError::Footage(LiveError::Protocol(
            "bytes after the trailer",
        )));
    }
    Ok(Clip {
        codec: header.codec,
        segment_seq: header.segment_seq,
        complete,
        frames,
    })
}

fn message(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(1 + payload.len());
    m.push(kind);
    m.extend_from_slice(payload);
    m
}

/// A live stream being followed: the reader, and the codec of the open segment.
pub struct Live {
    reader: LiveReader,
    codec: Option<Codec>,
    failed: bool,
}

impl Live {
    /// Follows a stream with `keys`.
    pub fn new(keys: &Keys) -> Live {
        Live {
            reader: keys.reader(),
            codec: None,
            failed: false,
        }
    }

    /// One WebSocket message; the frames it released. After an error every later message
    /// is refused too: the stream can no longer be trusted.
    pub fn feed(&mut self, msg: &[u8]) -> Result<Vec<LiveFrame>, ViewError> {
        if self.failed {
            return Err(ViewError::Footage(LiveError::Protocol(
                "the stream already failed verification",
            )));
        }
        let out = self.reader.feed(msg);
        match out {
            Ok(frames) => {
                if msg.first() == Some(&MSG_HEADER)
                    && let Ok(Parsed::Complete(h, _)) = Header::parse(&msg[1..])
                {
                    self.codec = Some(h.codec);
                }
                Ok(frames)
            }
            Err(e) => {
                self.failed = true;
                Err(e.into())
            }
        }
    }

    /// The codec of the segment whose header came last.
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }
}

/// The WebCodecs codec string for a keyframe: `avc1.PPCCLL` from the H.264 SPS (profile,
/// constraint flags, level); for H.265 the Main profile string (the browser says whether it
/// decodes it). `None` if an H.264 keyframe holds no SPS.
pub fn codec_string(codec: Codec, keyframe: &[u8]) -> Option<String> {
    match codec {
        Codec::H264 => nal_units(keyframe)
            .map(|n| n.payload)
            .find(|p| p.len() >= 4 && p[0] & 0x1f == 7)
            .map(|sps| format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3])),
        Codec::H265 => Some("hvc1.1.6.L93.B0".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_string_reads_the_sps() {
        // SPS: baseline (66 = 0x42), constraints 0xc0, level 3.0 (0x1e), after an AUD.
        let au = [
            0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xaa,
        ];
        assert_eq!(
            codec_string(Codec::H264, &au).as_deref(),
            Some("avc1.42c01e")
        );
        assert_eq!(codec_string(Codec::H264, &[0, 0, 1, 0x65, 0x88]), None);
    }

    #[test]
    fn bad_keys_are_refused() {
        let mut keys = Keys::new();
        assert!(keys.add_secret("not a key").is_err());
        assert!(keys.add_camera("zz").is_err());
        assert!(keys.add_camera(&"ab".repeat(32)).is_ok());
    }

    #[test]
    fn garbage_is_not_a_segment() {
        let keys = Keys::new();
        assert!(open_segment(&keys, b"").is_err());
        assert!(open_segment(&keys, &[0x55; 200]).is_err());
    }
}
