//! Pure H.264 / H.265 Annex-B parsing for camseal.
//!
//! What this crate does **not** do: no I/O, no allocation on the hot path, no decoding of
//! slice data beyond the first bits of a slice header. It only finds NAL units and access
//! units in a byte slice and classifies them, so the pipeline can cut a stream into
//! NAL-aligned chunks and recognise keyframes.
//!
//! Every function here takes arbitrary bytes and never panics on them.

// API sketch (implemented by the nal work item):
//
// pub enum Codec { H264, H265 }                       // name(), from_extension(), FromStr
// pub struct NalUnit<'a> { pub span: Range<usize>,     // start code .. next start code
//                          pub payload: &'a [u8] }     // header byte(s) onwards, trailing zeros stripped
// pub fn nal_units(buf: &[u8]) -> NalUnits<'_>        // iterator; spans partition `buf` exactly
// pub struct NalInfo { pub nal_type: u8, pub is_vcl: bool, pub is_parameter_set: bool,
//                      pub is_keyframe: bool, pub first_slice_of_picture: bool, ... }
// pub fn classify(codec: Codec, payload: &[u8]) -> Option<NalInfo>
// pub struct AccessUnit { pub span: Range<usize>, pub keyframe: bool, pub nal_count: usize }
// pub fn access_units(codec: Codec, buf: &[u8]) -> AccessUnits<'_>   // spans partition `buf` exactly
// pub fn sniff_codec(buf: &[u8]) -> Option<Codec>
// pub fn frame_rate(codec: Codec, buf: &[u8]) -> Option<(u32, u32)> // from SPS VUI timing, if present
