//! Grouping NAL units into access units (one coded picture each).

use core::ops::Range;

use crate::annexb::NalUnits;
use crate::header::{NalInfo, classify};
use crate::{Codec, nal_units};

/// One access unit: a coded picture with the non-VCL NAL units that go with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccessUnit {
    /// Where it lies in the scanned buffer: the union of its NAL units' spans (see
    /// [`NalUnit::span`](crate::NalUnit::span)).
    pub span: Range<usize>,
    /// At least one of its slices is a random-access slice ([`NalInfo::is_keyframe`]).
    pub keyframe: bool,
    /// How many NAL units it holds, counting empty and malformed ones.
    pub nal_count: usize,
}

/// Splits an Annex-B byte stream into access units.
///
/// The spans partition `buf` exactly, like those of [`nal_units`]. A new access unit starts:
/// - at an access unit delimiter (H.264 type 9, H.265 type 35), unless nothing well-formed
///   came before it in the current unit;
/// - at a parameter set, SEI or other prefix NAL unit (H.264 6, 7, 8, 14..=18; H.265 32..=34,
///   39, 41..=44, 48..=55) that follows a slice of the current unit;
/// - at a slice that begins a picture ([`NalInfo::first_slice_of_picture`]) when the
///   current unit already holds a slice.
///
/// So parameter sets and SEI that precede a picture belong to that picture's access unit.
/// Every other NAL unit (later slices of a picture, H.265 suffix SEI, end of sequence or
/// stream, filler, malformed or empty units, bytes before the first start code) stays in the
/// current one. H.264 pictures whose slices arrive out of order (ASO) or with redundant
/// slices are not recognised as one picture; H.265 layers above 0 are not told apart.
pub fn access_units(codec: Codec, buf: &[u8]) -> AccessUnits<'_> {
    AccessUnits {
        codec,
        len: buf.len(),
        nals: nal_units(buf),
        current: None,
    }
}

/// Iterator over the access units of a buffer; see [`access_units`].
#[derive(Clone, Debug)]
pub struct AccessUnits<'a> {
    codec: Codec,
    len: usize,
    nals: NalUnits<'a>,
    current: Option<Pending>,
}

impl Iterator for AccessUnits<'_> {
    type Item = AccessUnit;

    fn next(&mut self) -> Option<AccessUnit> {
        for nal in self.nals.by_ref() {
            let info = classify(self.codec, nal.payload);
            let Some(current) = &mut self.current else {
                self.current = Some(Pending::starting_at(nal.span.start, info));
                continue;
            };
            if current.ends_before(self.codec, info) {
                let done = current.finish(nal.span.start);
                *current = Pending::starting_at(nal.span.start, info);
                return Some(done);
            }
            current.add(info);
        }
        self.current.take().map(|current| current.finish(self.len))
    }
}

impl core::iter::FusedIterator for AccessUnits<'_> {}

/// The access unit being gathered.
#[derive(Clone, Debug)]
struct Pending {
    start: usize,
    keyframe: bool,
    nal_count: usize,
    has_vcl: bool,
    has_well_formed: bool,
}

impl Pending {
    fn starting_at(start: usize, info: Option<NalInfo>) -> Self {
        let mut pending = Pending {
            start,
            keyframe: false,
            nal_count: 0,
            has_vcl: false,
            has_well_formed: false,
        };
        pending.add(info);
        pending
    }

    fn add(&mut self, info: Option<NalInfo>) {
        self.nal_count += 1;
        if let Some(info) = info {
            self.has_well_formed = true;
            self.has_vcl |= info.is_vcl;
            self.keyframe |= info.is_vcl && info.is_keyframe;
        }
    }

    /// Whether a NAL unit with this header starts a new access unit.
    fn ends_before(&self, codec: Codec, info: Option<NalInfo>) -> bool {
        let Some(info) = info else {
            return false;
        };
        let (is_aud, is_prefix) = match codec {
            Codec::H264 => (
                info.nal_type == 9,
                matches!(info.nal_type, 6 | 7 | 8 | 14..=18),
            ),
            Codec::H265 => (
                info.nal_type == 35,
                matches!(info.nal_type, 32..=34 | 39 | 41..=44 | 48..=55),
            ),
        };
        if is_aud {
            self.has_well_formed
        } else if is_prefix {
            self.has_vcl
        } else {
            info.is_vcl && info.first_slice_of_picture && self.has_vcl
        }
    }

    fn finish(&self, end: usize) -> AccessUnit {
        AccessUnit {
            span: self.start..end,
            keyframe: self.keyframe,
            nal_count: self.nal_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an Annex-B stream from NAL payloads, each after a 4-byte start code.
    fn stream(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        out
    }

    fn summary(codec: Codec, buf: &[u8]) -> Vec<(bool, usize)> {
        let aus: Vec<AccessUnit> = access_units(codec, buf).collect();
        let mut at = 0;
        for au in &aus {
            assert_eq!(au.span.start, at);
            at = au.span.end;
        }
        assert_eq!(at, buf.len());
        aus.iter().map(|au| (au.keyframe, au.nal_count)).collect()
    }

    const H264_SPS: &[u8] = &[0x67, 0x42, 0x00, 0x1e, 0xf4];
    const H264_PPS: &[u8] = &[0x68, 0xce, 0x38, 0x80];
    const H264_SEI: &[u8] = &[0x06, 0x05, 0x01, 0xff, 0x80];
    const H264_AUD: &[u8] = &[0x09, 0xf0];
    const H264_IDR_FIRST: &[u8] = &[0x65, 0x88, 0x84];
    const H264_IDR_SECOND: &[u8] = &[0x65, 0x40, 0x84]; // first_mb_in_slice = 1
    const H264_P_FIRST: &[u8] = &[0x41, 0x9a, 0x02];
    const H264_P_SECOND: &[u8] = &[0x41, 0x42, 0x02];

    #[test]
    fn empty_input_has_no_access_units() {
        assert_eq!(access_units(Codec::H264, &[]).count(), 0);
        assert_eq!(access_units(Codec::H265, &[]).count(), 0);
    }

    #[test]
    fn h264_parameter_sets_join_the_keyframe() {
        let buf = stream(&[
            H264_SPS,
            H264_PPS,
            H264_SEI,
            H264_IDR_FIRST,
            H264_IDR_SECOND,
            H264_P_FIRST,
            H264_P_SECOND,
            H264_SEI,
            H264_P_FIRST,
            H264_SPS,
            H264_PPS,
            H264_IDR_FIRST,
        ]);
        assert_eq!(
            summary(Codec::H264, &buf),
            vec![(true, 5), (false, 2), (false, 2), (true, 3)]
        );
    }

    #[test]
    fn h264_access_unit_delimiters() {
        let buf = stream(&[
            H264_AUD,
            H264_SPS,
            H264_PPS,
            H264_IDR_FIRST,
            H264_AUD,
            H264_P_FIRST,
            H264_P_SECOND,
            H264_AUD,
            H264_SEI,
            H264_P_FIRST,
            &[0x0a], // end of sequence stays
        ]);
        assert_eq!(
            summary(Codec::H264, &buf),
            vec![(true, 4), (false, 3), (false, 4)]
        );
    }

    #[test]
    fn h264_slices_without_first_slice_do_not_split() {
        // A picture cut off at the start: its later slices gather into one unit.
        let buf = stream(&[H264_P_SECOND, H264_P_SECOND, H264_P_FIRST, H264_P_SECOND]);
        assert_eq!(summary(Codec::H264, &buf), vec![(false, 2), (false, 2)]);
    }

    #[test]
    fn garbage_and_malformed_units_stay_in_the_current_unit() {
        let mut buf = vec![0xde, 0xad];
        buf.extend(stream(&[
            H264_AUD,
            H264_IDR_FIRST,
            &[0xff, 0xff],
            &[],
            H264_AUD,
        ]));
        assert_eq!(summary(Codec::H264, &buf), vec![(true, 4), (false, 1)]);
        // No start code at all: one unit.
        assert_eq!(summary(Codec::H264, &[1, 2, 3]), vec![(false, 1)]);
    }

    const H265_VPS: &[u8] = &[0x40, 0x01, 0x0c];
    const H265_SPS: &[u8] = &[0x42, 0x01, 0x01];
    const H265_PPS: &[u8] = &[0x44, 0x01, 0xc1];
    const H265_AUD: &[u8] = &[0x46, 0x01, 0x50];
    const H265_PREFIX_SEI: &[u8] = &[0x4e, 0x01, 0x05];
    const H265_SUFFIX_SEI: &[u8] = &[0x50, 0x01, 0x84];
    const H265_IDR_FIRST: &[u8] = &[0x26, 0x01, 0xaf];
    const H265_IDR_SECOND: &[u8] = &[0x26, 0x01, 0x40];
    const H265_CRA_FIRST: &[u8] = &[0x2a, 0x01, 0xac];
    const H265_TRAIL_FIRST: &[u8] = &[0x02, 0x01, 0xd0];
    const H265_TRAIL_SECOND: &[u8] = &[0x02, 0x01, 0x60];

    #[test]
    fn h265_grouping() {
        let buf = stream(&[
            H265_VPS,
            H265_SPS,
            H265_PPS,
            H265_PREFIX_SEI,
            H265_IDR_FIRST,
            H265_IDR_SECOND,
            H265_SUFFIX_SEI,
            H265_TRAIL_FIRST,
            H265_TRAIL_SECOND,
            H265_PREFIX_SEI,
            H265_TRAIL_FIRST,
            H265_AUD,
            H265_CRA_FIRST,
            &[0x48, 0x01], // end of sequence stays
            H265_AUD,
            H265_VPS,
            H265_SPS,
            H265_PPS,
            H265_IDR_FIRST,
        ]);
        assert_eq!(
            summary(Codec::H265, &buf),
            vec![(true, 7), (false, 2), (false, 2), (true, 3), (true, 5)]
        );
    }

    #[test]
    fn codec_changes_the_reading() {
        // An H.265 stream read as H.264 is grouped differently, but still partitioned.
        let buf = stream(&[
            H265_VPS,
            H265_SPS,
            H265_PPS,
            H265_IDR_FIRST,
            H265_TRAIL_FIRST,
        ]);
        assert_eq!(summary(Codec::H265, &buf), vec![(true, 4), (false, 1)]);
        let as_h264 = summary(Codec::H264, &buf);
        assert!(as_h264.iter().all(|&(key, _)| !key));
    }
}
