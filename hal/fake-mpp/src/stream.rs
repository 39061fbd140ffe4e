//! The Annex-B stream the fake "encodes": read from `FAKE_MPP_STREAM` and cut into access
//! units by `camseal-nal`, one per output packet.

use std::ops::Range;
use std::path::Path;

use camseal_nal::Codec;

/// A recorded stream replayed one access unit per packet.
pub struct Stream {
    /// The file it was read from, for messages.
    pub name: String,
    pub codec: Codec,
    bytes: Vec<u8>,
    units: Vec<Unit>,
    next: usize,
}

struct Unit {
    span: Range<usize>,
    keyframe: bool,
}

impl Stream {
    /// Reads `path`; the codec comes from the extension, else from the first parameter set.
    pub fn open(path: &Path) -> Result<Stream, String> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        let codec = path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(Codec::from_extension)
            .or_else(|| camseal_nal::sniff_codec(&bytes))
            .ok_or_else(|| format!("{name} is not an H.264 or H.265 Annex-B stream"))?;
        let units: Vec<Unit> = camseal_nal::access_units(codec, &bytes)
            .map(|au| Unit {
                span: au.span,
                keyframe: au.keyframe,
            })
            .collect();
        if units.is_empty() {
            return Err(format!("{name} holds no access unit"));
        }
        Ok(Stream {
            name,
            codec,
            bytes,
            units,
            next: 0,
        })
    }

    /// The next access unit and whether it is a keyframe; `None` once all were replayed.
    pub fn next_unit(&mut self) -> Option<(&[u8], bool)> {
        let unit = self.units.get(self.next)?;
        self.next += 1;
        Some((self.bytes.get(unit.span.clone())?, unit.keyframe))
    }

    /// Whether every access unit has been handed out.
    pub fn exhausted(&self) -> bool {
        self.next >= self.units.len()
    }

    /// The parameter sets (VPS/SPS/PPS, with start codes) before the first picture, as
    /// `MPP_ENC_GET_HDR_SYNC` returns them.
    pub fn headers(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in camseal_nal::nal_units(&self.bytes) {
            match camseal_nal::classify(self.codec, nal.payload) {
                Some(info) if info.is_vcl => break,
                Some(info) if info.is_parameter_set => {
                    if let Some(bytes) = self.bytes.get(nal.span) {
                        out.extend_from_slice(bytes);
                    }
                }
                _ => {}
            }
        }
        out
    }
}
