//! Every segment decodes on its own: the parameter sets and keyframes rule, as pure logic the
//! engine applies to each access unit before it is sealed.
//!
//! A viewer may fetch any one segment from the cloud and play it. That works only if the
//! segment begins with the parameter sets (H.264 SPS and PPS; H.265 VPS, SPS and PPS)
//! followed by a keyframe. Encoders do not all promise that:
//! - some send the parameter sets once, at the start, as a buffer of their own (V4L2
//!   `HEADER_MODE_SEPARATE`, the default on older Qualcomm venus firmware, which has no
//!   "repeat headers" control), so every later IDR lacks them;
//! - some send them as a separate buffer before every IDR (MediaTek, UVC cameras), with the
//!   IDR's timestamp but not its keyframe flag, which would make a header-only "frame";
//! - a camera stream may start between keyframes.
//!
//! So the engine never trusts the source for this. [`SegmentStarts`] carries a header-only
//! packet into the next picture, remembers the latest complete parameter sets, and prepends
//! them to a keyframe that begins a segment without its own. The engine itself never begins a
//! segment at a non-keyframe (it skips such pictures and declares them as a gap).
//!
//! Cost: a packet whose first NAL unit is a slice is classified from its first few bytes,
//! with no scan. Keyframes and packets that begin with SEI or parameter sets are scanned
//! once (a `memchr` pass). Bytes are copied only when a header-only packet is merged into
//! the next one, or parameter sets are prepended at a segment start: at most one picture per
//! segment for encoders that do not repeat their headers.

use camseal_nal::{Codec, classify, nal_units};

/// What [`SegmentStarts::admit`] made of one access unit.
#[derive(Debug, PartialEq, Eq)]
pub enum Admitted {
    /// The packet holds no picture (only parameter sets, SEI, delimiters): it was kept and
    /// goes in front of the next picture.
    Held,
    /// The packet is a picture and goes on as it is.
    Unchanged,
    /// The packet is a picture, and goes on as these bytes: the header-only packets held
    /// before it, then its own bytes.
    Merged(Vec<u8>),
}

/// The parameter-set state of one stream; see the module documentation.
#[derive(Debug)]
pub struct SegmentStarts {
    codec: Codec,
    /// The latest parameter sets, each NAL unit with a 4-byte start code, in stream order.
    sets: Vec<ParameterSet>,
    /// Bytes of header-only packets waiting for the next picture.
    held: Vec<u8>,
}

#[derive(Debug)]
struct ParameterSet {
    nal_type: u8,
    bytes: Vec<u8>,
}

impl SegmentStarts {
    /// No parameter sets known yet.
    pub fn new(codec: Codec) -> SegmentStarts {
        SegmentStarts {
            codec,
            sets: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Looks at one access unit as the source delivered it.
    ///
    /// Parameter sets found in keyframes and header-only packets are remembered. A packet
    /// with no picture in it is held (up to [`MAX_HELD`] bytes; beyond that the oldest held
    /// bytes are given up, since a stream that sends megabytes without a picture is broken
    /// anyway).
    pub fn admit(&mut self, data: &[u8], keyframe: bool) -> Admitted {
        let scan = keyframe || !self.starts_with_slice(data);
        if scan {
            let has_picture = self.remember_sets(data);
            if !has_picture {
                if self.held.len() + data.len() > MAX_HELD {
                    self.held.clear();
                }
                if data.len() <= MAX_HELD {
                    self.held.extend_from_slice(data);
                }
                return Admitted::Held;
            }
        }
        if self.held.is_empty() {
            return Admitted::Unchanged;
        }
        let mut merged = std::mem::take(&mut self.held);
        merged.extend_from_slice(data);
        Admitted::Merged(merged)
    }

    /// Bytes held from header-only packets that no picture followed (at the end of a
    /// stream). They are given up: a decoder needs nothing from them.
    pub fn held_bytes(&self) -> usize {
        self.held.len()
    }

    /// `data` (a keyframe that begins a segment) with the remembered parameter sets in front,
    /// if it lacks any of the kinds its codec needs and some are known; `None` when it can
    /// go as it is.
    ///
    /// The remembered sets go after a leading access-unit delimiter, which must stay first.
    /// A set the keyframe does carry follows the remembered one, so the keyframe's own wins.
    pub fn complete(&self, data: &[u8]) -> Option<Vec<u8>> {
        if self.sets.is_empty() {
            return None;
        }
        let mut present = [false; 3];
        let mut delimiter_end = None;
        for (i, nal) in nal_units(data).enumerate() {
            let Some(info) = classify(self.codec, nal.payload) else {
                continue;
            };
            if i == 0 && info.nal_type == self.delimiter_type() {
                delimiter_end = Some(nal.span.end);
            }
            if let Some(k) = self.required_index(info.nal_type) {
                present[k] = true;
            }
            if info.is_vcl {
                break;
            }
        }
        let needed = self.required_count();
        if present[..needed].iter().all(|&p| p) {
            return None;
        }
        let split = delimiter_end.unwrap_or(0);
        let sets_len: usize = self.sets.iter().map(|s| s.bytes.len()).sum();
        let mut out = Vec::with_capacity(sets_len + data.len());
        out.extend_from_slice(&data[..split]);
        for set in &self.sets {
            out.extend_from_slice(&set.bytes);
        }
        out.extend_from_slice(&data[split..]);
        Some(out)
    }

    /// Whether the first NAL unit (after an access-unit delimiter) is a coded slice, read
    /// from the first bytes only.
    fn starts_with_slice(&self, data: &[u8]) -> bool {
        let Some(first) = header_after_start_code(data) else {
            return false;
        };
        let Some(info) = classify(self.codec, &data[first..]) else {
            return false;
        };
        if info.is_vcl {
            return true;
        }
        if info.nal_type != self.delimiter_type() {
            return false;
        }
        // An access-unit delimiter is 2 (H.264) or 3 (H.265) bytes plus trailing bits: the
        // next start code is within a few bytes.
        let window = &data[first..data.len().min(first + AUD_WINDOW)];
        let Some(next) = window
            .windows(3)
            .position(|w| w == [0, 0, 1])
            .map(|p| first + p + 3)
        else {
            return false;
        };
        classify(self.codec, &data[next..]).is_some_and(|info| info.is_vcl)
    }

    /// Remembers the parameter sets in `data`; returns whether it holds a coded slice.
    ///
    /// A packet carrying every kind its codec needs replaces what was remembered, so sets
    /// that the encoder stopped using go away. One carrying only some kinds replaces the
    /// remembered ones of those kinds.
    fn remember_sets(&mut self, data: &[u8]) -> bool {
        let mut found: Vec<ParameterSet> = Vec::new();
        let mut has_picture = false;
        for nal in nal_units(data) {
            let Some(info) = classify(self.codec, nal.payload) else {
                continue;
            };
            has_picture |= info.is_vcl;
            if self.required_index(info.nal_type).is_some() && !nal.payload.is_empty() {
                let mut bytes = Vec::with_capacity(nal.payload.len() + 4);
                bytes.extend_from_slice(&[0, 0, 0, 1]);
                bytes.extend_from_slice(nal.payload);
                found.push(ParameterSet {
                    nal_type: info.nal_type,
                    bytes,
                });
            }
        }
        if found.is_empty() {
            return has_picture;
        }
        let needed = self.required_count();
        let mut kinds = [false; 3];
        for set in &found {
            if let Some(k) = self.required_index(set.nal_type) {
                kinds[k] = true;
            }
        }
        if kinds[..needed].iter().all(|&k| k) {
            self.sets = found;
        } else {
            self.sets
                .retain(|old| !found.iter().any(|f| f.nal_type == old.nal_type));
            self.sets.extend(found);
            let codec = self.codec;
            self.sets
                .sort_by_key(|s| required_index(codec, s.nal_type).unwrap_or(usize::MAX));
        }
        has_picture
    }

    fn required_index(&self, nal_type: u8) -> Option<usize> {
        required_index(self.codec, nal_type)
    }

    fn required_count(&self) -> usize {
        match self.codec {
            Codec::H264 => 2,
            Codec::H265 => 3,
        }
    }

    fn delimiter_type(&self) -> u8 {
        match self.codec {
            Codec::H264 => H264_AUD,
            Codec::H265 => H265_AUD,
        }
    }
}

/// Where a parameter-set kind goes in decode order (VPS, SPS, PPS), if it is one a decoder
/// needs to start.
fn required_index(codec: Codec, nal_type: u8) -> Option<usize> {
    match (codec, nal_type) {
        (Codec::H264, H264_SPS) => Some(0),
        (Codec::H264, H264_PPS) => Some(1),
        (Codec::H265, H265_VPS) => Some(0),
        (Codec::H265, H265_SPS) => Some(1),
        (Codec::H265, H265_PPS) => Some(2),
        _ => None,
    }
}

/// Where the first NAL header starts, if `data` opens with a start code.
fn header_after_start_code(data: &[u8]) -> Option<usize> {
    match data {
        [0, 0, 1, ..] => Some(3),
        [0, 0, 0, 1, ..] => Some(4),
        _ => None,
    }
}

/// The most bytes of header-only packets held for the next picture.
pub const MAX_HELD: usize = 1 << 20;

const AUD_WINDOW: usize = 16;
const H264_SPS: u8 = 7;
const H264_PPS: u8 = 8;
const H264_AUD: u8 = 9;
const H265_VPS: u8 = 32;
const H265_SPS: u8 = 33;
const H265_PPS: u8 = 34;
const H265_AUD: u8 = 35;

#[cfg(test)]
mod tests {
    use super::*;

    fn nal(header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1];
        v.extend_from_slice(header);
        v.extend_from_slice(body);
        v
    }

    // H.264 NAL headers with nal_ref_idc 3 (and 0 for the delimiter).
    fn sps(tag: u8) -> Vec<u8> {
        nal(&[0x67], &[0x42, 0x00, 0x1f, tag])
    }
    fn pps(tag: u8) -> Vec<u8> {
        nal(&[0x68], &[0xce, tag])
    }
    fn idr() -> Vec<u8> {
        // first_mb_in_slice = 0 (ue '1').
        nal(&[0x65], &[0x88, 0x84, 0x21])
    }
    fn p_slice() -> Vec<u8> {
        nal(&[0x41], &[0x9a, 0x02, 0x03])
    }
    fn aud() -> Vec<u8> {
        nal(&[0x09], &[0xf0])
    }
    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn a_keyframe_with_its_own_sets_goes_as_it_is() {
        let mut starts = SegmentStarts::new(Codec::H264);
        let key = cat(&[sps(1), pps(1), idr()]);
        assert_eq!(starts.admit(&key, true), Admitted::Unchanged);
        assert_eq!(starts.complete(&key), None);
    }

    #[test]
    fn a_keyframe_without_sets_gets_the_remembered_ones() {
        let mut starts = SegmentStarts::new(Codec::H264);
        assert_eq!(
            starts.admit(&cat(&[sps(1), pps(1), idr()]), true),
            Admitted::Unchanged
        );
        assert_eq!(starts.admit(&p_slice(), false), Admitted::Unchanged);
        let bare = idr();
        assert_eq!(starts.admit(&bare, true), Admitted::Unchanged);
        assert_eq!(starts.complete(&bare), Some(cat(&[sps(1), pps(1), idr()])));
    }

    #[test]
    fn nothing_is_prepended_before_any_sets_were_seen() {
        let starts = SegmentStarts::new(Codec::H264);
        assert_eq!(starts.complete(&idr()), None);
    }

    #[test]
    fn header_only_packets_ride_with_the_next_picture() {
        let mut starts = SegmentStarts::new(Codec::H264);
        let headers = cat(&[sps(2), pps(2)]);
        assert_eq!(starts.admit(&headers, false), Admitted::Held);
        assert_eq!(starts.held_bytes(), headers.len());
        let merged = starts.admit(&idr(), true);
        assert_eq!(merged, Admitted::Merged(cat(&[sps(2), pps(2), idr()])));
        assert_eq!(starts.held_bytes(), 0);
        // And they are remembered for later segment starts.
        assert_eq!(starts.complete(&idr()), Some(cat(&[sps(2), pps(2), idr()])));
    }

    #[test]
    fn sets_go_after_a_leading_delimiter() {
        let mut starts = SegmentStarts::new(Codec::H264);
        starts.admit(&cat(&[sps(1), pps(1), idr()]), true);
        let key = cat(&[aud(), idr()]);
        assert_eq!(
            starts.complete(&key),
            Some(cat(&[aud(), sps(1), pps(1), idr()]))
        );
        // A delimiter then a slice is recognised as a picture without a scan.
        assert!(starts.starts_with_slice(&cat(&[aud(), p_slice()])));
        assert!(!starts.starts_with_slice(&cat(&[aud(), sps(1)])));
    }

    #[test]
    fn a_partial_update_replaces_only_its_kind() {
        let mut starts = SegmentStarts::new(Codec::H264);
        starts.admit(&cat(&[sps(1), pps(1), idr()]), true);
        // A keyframe bringing a new PPS but no SPS.
        let key = cat(&[pps(9), idr()]);
        assert_eq!(starts.admit(&key, true), Admitted::Unchanged);
        assert_eq!(
            starts.complete(&key),
            Some(cat(&[sps(1), pps(9), pps(9), idr()]))
        );
        // A complete set replaces everything.
        starts.admit(&cat(&[sps(3), pps(3), idr()]), true);
        assert_eq!(starts.complete(&idr()), Some(cat(&[sps(3), pps(3), idr()])));
    }

    #[test]
    fn h265_needs_vps_sps_and_pps() {
        let mut starts = SegmentStarts::new(Codec::H265);
        let vps = nal(&[0x40, 0x01], &[0x0c]);
        let sps = nal(&[0x42, 0x01], &[0x01]);
        let pps = nal(&[0x44, 0x01], &[0xc1]);
        // IDR_W_RADL (19), first_slice_segment_in_pic_flag set.
        let idr = nal(&[0x26, 0x01], &[0xaf]);
        let headers = cat(&[vps.clone(), sps.clone(), pps.clone()]);
        assert_eq!(starts.admit(&headers, false), Admitted::Held);
        assert!(matches!(starts.admit(&idr, true), Admitted::Merged(_)));
        // SPS and PPS alone are not enough for H.265.
        let partial = cat(&[sps.clone(), pps.clone(), idr.clone()]);
        assert_eq!(
            starts.complete(&partial),
            Some(cat(&[vps, sps.clone(), pps.clone(), sps, pps, idr]))
        );
    }

    #[test]
    fn garbage_never_panics_and_is_bounded() {
        let mut starts = SegmentStarts::new(Codec::H264);
        for data in [
            &[][..],
            &[0],
            &[0, 0, 1],
            &[0, 0, 0, 1, 0x80],
            &[1, 2, 3, 4, 5],
        ] {
            let _ = starts.admit(data, true);
            let _ = starts.admit(data, false);
            let _ = starts.complete(data);
        }
        let big_headers = cat(&[sps(1), vec![7; MAX_HELD]]);
        for _ in 0..3 {
            assert_eq!(starts.admit(&big_headers, false), Admitted::Held);
            assert!(starts.held_bytes() <= MAX_HELD);
        }
    }
}
