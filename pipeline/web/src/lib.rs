//! camseal's browser viewer core: the reader (verification and decryption) compiled to
//! WebAssembly, for the page that `camseal view` serves (docs/VIEWER.md).
//!
//! The page fetches the viewer's keys and the sealed bytes from its own origin and hands
//! them here; what comes back is only footage that verified: Annex-B access units with
//! their pts, ready for WebCodecs. The logic is in [`core`]; this file only adapts types
//! for JavaScript (numbers as `f64`, errors as `JsError` messages the page shows).

#![forbid(unsafe_code)]

pub mod core;

use camseal::live::LiveFrame;
use camseal::nal::Codec;
use wasm_bindgen::prelude::*;

use crate::core::{Keys, Live, ViewError};

fn js(e: ViewError) -> JsError {
    JsError::new(&e.to_string())
}

/// The viewer's keys, as `camseal view` hands them to the page.
#[wasm_bindgen]
pub struct Viewer {
    keys: Keys,
}

#[wasm_bindgen]
impl Viewer {
    /// No keys yet.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Viewer {
        Viewer { keys: Keys::new() }
    }

    /// Adds a device key (the text of a `device.key` file).
    pub fn add_secret(&mut self, text: &str) -> Result<(), JsError> {
        self.keys.add_secret(text).map_err(js)
    }

    /// Pins a camera (Ed25519 public key, hex).
    pub fn add_camera(&mut self, hex_key: &str) -> Result<(), JsError> {
        self.keys.add_camera(hex_key).map_err(js)
    }

    /// Verifies and decrypts a whole segment file; an error says why it was refused.
    pub fn open_segment(&self, bytes: &[u8]) -> Result<Frames, JsError> {
        let clip = core::open_segment(&self.keys, bytes).map_err(js)?;
        Ok(Frames {
            codec: Some(clip.codec),
            segment_seq: clip.segment_seq,
            complete: clip.complete,
            frames: clip.frames,
        })
    }

    /// Starts following a live stream.
    pub fn live(&self) -> LiveView {
        LiveView {
            live: Live::new(&self.keys),
        }
    }
}

impl Default for Viewer {
    fn default() -> Self {
        Viewer::new()
    }
}

/// Verified frames: a recorded segment's, or those one live message released.
#[wasm_bindgen]
pub struct Frames {
    codec: Option<Codec>,
    segment_seq: u64,
    complete: bool,
    frames: Vec<LiveFrame>,
}

#[wasm_bindgen]
impl Frames {
    /// How many frames.
    pub fn count(&self) -> usize {
        self.frames.len()
    }

    /// The segment's sequence number (a recorded segment's).
    pub fn segment_seq(&self) -> f64 {
        self.segment_seq as f64
    }

    /// Whether a recorded segment had its trailer (else only its signed prefix is here).
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Frame `i`'s timestamp in microseconds (pts is 90 kHz), for `EncodedVideoChunk`.
    pub fn timestamp_us(&self, i: usize) -> f64 {
        self.frames
            .get(i)
            .map_or(0.0, |f| f.pts as f64 * 1e6 / 90_000.0)
    }

    /// Whether frame `i` is a keyframe.
    pub fn keyframe(&self, i: usize) -> bool {
        self.frames.get(i).is_some_and(|f| f.keyframe)
    }

    /// Frame `i`'s Annex-B bytes.
    pub fn data(&self, i: usize) -> Vec<u8> {
        self.frames
            .get(i)
            .map(|f| f.data.clone())
            .unwrap_or_default()
    }

    /// The WebCodecs codec string, from the first keyframe; empty if there is none.
    pub fn codec_string(&self) -> String {
        let Some(codec) = self.codec else {
            return String::new();
        };
        self.frames
            .iter()
            .filter(|f| f.keyframe)
            .find_map(|f| core::codec_string(codec, &f.data))
            .unwrap_or_default()
    }
}

/// A live stream being followed in the page.
#[wasm_bindgen]
pub struct LiveView {
    live: Live,
}

#[wasm_bindgen]
impl LiveView {
    /// One WebSocket message; the frames it released (verified and decrypted). An error is
    /// final.
    pub fn feed(&mut self, msg: &[u8]) -> Result<Frames, JsError> {
        let frames = self.live.feed(msg).map_err(js)?;
        Ok(Frames {
            codec: self.live.codec(),
            segment_seq: frames.first().map_or(0, |f| f.segment_seq),
            complete: false,
            frames,
        })
    }
}
