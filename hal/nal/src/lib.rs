//! Pure H.264 / H.265 Annex-B parsing for camseal.
//!
//! What this crate does **not** do: no I/O, no allocation, no decoding of slice data beyond
//! the first bits of a slice header, and no support for multi-layer (SVC / MVC / SHVC)
//! streams beyond keeping their extra NAL units inside the base layer's access units. It only
//! finds NAL units and access units in a byte slice and classifies them, so the pipeline can
//! cut a stream into NAL-aligned chunks and recognise keyframes.
//!
//! Layers, from bytes up:
//! - [`nal_units`]: start-code scanning; yields [`NalUnit`]s whose spans partition the input.
//! - [`classify`]: reads a NAL header (and the first slice-header bit or exp-Golomb field)
//!   into a [`NalInfo`].
//! - [`access_units`]: groups NAL units into [`AccessUnit`]s (one coded picture each, with
//!   the parameter sets and SEI that precede it).
//! - [`sniff_codec`], [`frame_rate`]: stream-level facts read from parameter sets, using an
//!   RBSP bit reader that removes emulation-prevention bytes.
//!
//! Every function here takes arbitrary bytes and never panics on them.

mod access_unit;
mod annexb;
mod header;
mod poc;
mod rbsp;
mod sps;

use core::fmt;
use core::str::FromStr;

pub use access_unit::{AccessUnit, AccessUnits, access_units};
pub use annexb::{NalUnit, NalUnits, nal_units};
pub use header::{NalInfo, classify};
pub use poc::{PictureOrder, PocReader};
pub use sps::frame_rate;

/// A video coding format whose Annex-B byte streams this crate understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// ITU-T H.264 / MPEG-4 AVC.
    H264,
    /// ITU-T H.265 / HEVC.
    H265,
}

impl Codec {
    /// The short lowercase name: `"h264"` or `"h265"`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }

    /// The codec usually stored in a raw Annex-B file with this extension (given without the
    /// dot, any case): `h264`/`264` for H.264, `h265`/`265`/`hevc` for H.265.
    pub fn from_extension(ext: &str) -> Option<Codec> {
        const H264: [&str; 2] = ["h264", "264"];
        const H265: [&str; 3] = ["h265", "265", "hevc"];
        if H264.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
            Some(Codec::H264)
        } else if H265.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
            Some(Codec::H265)
        } else {
            None
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = ParseCodecError;

    /// Accepts `h264`, `avc`, `h265` and `hevc`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("h264") || s.eq_ignore_ascii_case("avc") {
            Ok(Codec::H264)
        } else if s.eq_ignore_ascii_case("h265") || s.eq_ignore_ascii_case("hevc") {
            Ok(Codec::H265)
        } else {
            Err(ParseCodecError { input: s.into() })
        }
    }
}

/// The error returned when a string names no codec this crate knows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {input:?} (expected h264 or h265)")]
pub struct ParseCodecError {
    input: Box<str>,
}

/// Guesses the codec of an Annex-B stream from its first parameter set.
///
/// The NAL header bytes of H.264 SPS/PPS (types 7, 8, with a non-zero `nal_ref_idc`) and of
/// H.265 VPS/SPS/PPS (types 32..=34, layer 0) never coincide, so the first NAL unit that looks
/// like either decides. Returns `None` if no parameter set is found. Random bytes can still
/// look like a parameter set: this is a guess for picking a parser, not a validation.
pub fn sniff_codec(buf: &[u8]) -> Option<Codec> {
    nal_units(buf).find_map(|nal| {
        if header::looks_like_h264_parameter_set(nal.payload) {
            Some(Codec::H264)
        } else if header::looks_like_h265_parameter_set(nal.payload) {
            Some(Codec::H265)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_round_trip() {
        for codec in [Codec::H264, Codec::H265] {
            assert_eq!(codec.name().parse::<Codec>(), Ok(codec));
            assert_eq!(codec.to_string(), codec.name());
            assert_eq!(Codec::from_extension(codec.name()), Some(codec));
        }
    }

    #[test]
    fn codec_from_str_aliases_and_errors() {
        assert_eq!("HEVC".parse::<Codec>(), Ok(Codec::H265));
        assert_eq!("Avc".parse::<Codec>(), Ok(Codec::H264));
        let err = "vp9".parse::<Codec>().unwrap_err();
        assert!(err.to_string().contains("vp9"), "{err}");
        assert!("".parse::<Codec>().is_err());
        assert!("h264 ".parse::<Codec>().is_err());
    }

    #[test]
    fn codec_from_extension() {
        assert_eq!(Codec::from_extension("264"), Some(Codec::H264));
        assert_eq!(Codec::from_extension("H264"), Some(Codec::H264));
        assert_eq!(Codec::from_extension("265"), Some(Codec::H265));
        assert_eq!(Codec::from_extension("Hevc"), Some(Codec::H265));
        assert_eq!(Codec::from_extension("h265"), Some(Codec::H265));
        assert_eq!(Codec::from_extension(".h264"), None);
        assert_eq!(Codec::from_extension("mp4"), None);
        assert_eq!(Codec::from_extension(""), None);
    }

    #[test]
    fn sniff_codec_from_parameter_sets() {
        // H.264: SPS (0x67, profile 66) after a 4-byte start code.
        assert_eq!(
            sniff_codec(&[0, 0, 0, 1, 0x67, 66, 0, 30, 0xf4]),
            Some(Codec::H264)
        );
        // H.264 PPS alone.
        assert_eq!(
            sniff_codec(&[0, 0, 1, 0x68, 0xce, 0x38, 0x80]),
            Some(Codec::H264)
        );
        // H.265: VPS header 0x40 0x01.
        assert_eq!(
            sniff_codec(&[0, 0, 0, 1, 0x40, 0x01, 0x0c, 0x01]),
            Some(Codec::H265)
        );
        // H.265 SPS after an AUD (0x46 0x01), which decides nothing by itself.
        assert_eq!(
            sniff_codec(&[0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x42, 0x01, 0x01, 0x01]),
            Some(Codec::H265)
        );
        // Slices only, no parameter set.
        assert_eq!(sniff_codec(&[0, 0, 1, 0x65, 0x88, 0x84]), None);
        // H.264 SPS with nal_ref_idc 0 is not allowed.
        assert_eq!(sniff_codec(&[0, 0, 1, 0x07, 66, 0, 30]), None);
        assert_eq!(sniff_codec(&[]), None);
        assert_eq!(sniff_codec(&[1, 2, 3]), None);
    }
}
