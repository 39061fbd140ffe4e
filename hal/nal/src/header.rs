//! NAL unit headers: type, VCL or not, keyframe, first slice of a picture.

use crate::Codec;
use crate::rbsp::BitReader;

/// What [`classify`] learned from a NAL unit's header and first slice-header field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NalInfo {
    /// `nal_unit_type`: 5 bits in H.264, 6 bits in H.265.
    pub nal_type: u8,
    /// A coded slice (H.264 types 1..=5; H.265 types 0..=31).
    pub is_vcl: bool,
    /// A parameter set: H.264 SPS (7), PPS (8), SPS extension (13), subset SPS (15); H.265
    /// VPS (32), SPS (33), PPS (34).
    pub is_parameter_set: bool,
    /// A slice of a random-access picture: H.264 IDR (5); H.265 IRAP (16..=21: BLA, IDR, CRA).
    pub is_keyframe: bool,
    /// A slice that begins a picture: `first_mb_in_slice == 0` in H.264 (types 1, 2, 5;
    /// data partitions B and C carry no such field and report `false`), or
    /// `first_slice_segment_in_pic_flag` in H.265. `false` for non-VCL units and for slices
    /// too short to hold the field.
    pub first_slice_of_picture: bool,
}

/// Reads a NAL unit's header. `payload` starts at the header byte(s), as in
/// [`NalUnit::payload`](crate::NalUnit::payload).
///
/// Returns `None` if the header is malformed: too short (1 byte for H.264, 2 for H.265),
/// `forbidden_zero_bit` set, or (H.265) `nuh_temporal_id_plus1` zero.
pub fn classify(codec: Codec, payload: &[u8]) -> Option<NalInfo> {
    match codec {
        Codec::H264 => classify_h264(payload),
        Codec::H265 => classify_h265(payload),
    }
}

fn classify_h264(payload: &[u8]) -> Option<NalInfo> {
    let &header = payload.first()?;
    if header & FORBIDDEN_ZERO_BIT != 0 {
        return None;
    }
    let nal_type = header & 0x1f;
    let is_vcl = matches!(nal_type, 1..=5);
    let first_slice_of_picture = matches!(nal_type, 1 | 2 | 5)
        && BitReader::new(&payload[1..])
            .ue()
            .is_ok_and(|first_mb| first_mb == 0);
    Some(NalInfo {
        nal_type,
        is_vcl,
        is_parameter_set: matches!(nal_type, 7 | 8 | 13 | 15),
        is_keyframe: nal_type == 5,
        first_slice_of_picture,
    })
}

fn classify_h265(payload: &[u8]) -> Option<NalInfo> {
    let [h0, h1, rest @ ..] = payload else {
        return None;
    };
    if h0 & FORBIDDEN_ZERO_BIT != 0 || h1 & 0x07 == 0 {
        return None;
    }
    let nal_type = (h0 >> 1) & 0x3f;
    let is_vcl = nal_type < 32;
    Some(NalInfo {
        nal_type,
        is_vcl,
        is_parameter_set: matches!(nal_type, 32..=34),
        is_keyframe: matches!(nal_type, 16..=21),
        first_slice_of_picture: is_vcl && rest.first().is_some_and(|b| b & 0x80 != 0),
    })
}

/// An H.264 SPS or PPS header: type 7 or 8 with `nal_ref_idc != 0` (required for parameter
/// sets), and for an SPS a known `profile_idc`.
pub(crate) fn looks_like_h264_parameter_set(payload: &[u8]) -> bool {
    match payload {
        [h, profile, _, _, ..] if *h & 0x9f == 7 && *h & 0x60 != 0 => {
            H264_PROFILES.contains(profile)
        }
        [h, _, ..] => *h & 0x9f == 8 && *h & 0x60 != 0,
        _ => false,
    }
}

/// An H.265 VPS, SPS or PPS header in layer 0 with a valid temporal id.
pub(crate) fn looks_like_h265_parameter_set(payload: &[u8]) -> bool {
    match payload {
        [h0, h1, _, ..] => {
            h0 & 0x81 == 0
                && matches!((h0 >> 1) & 0x3f, 32..=34)
                && h1 & 0xf8 == 0
                && h1 & 0x07 != 0
        }
        _ => false,
    }
}

const FORBIDDEN_ZERO_BIT: u8 = 0x80;

/// `profile_idc` values defined by H.264 (A.2, G.10, H.10, I.10).
const H264_PROFILES: [u8; 16] = [
    44, 66, 77, 83, 86, 88, 100, 110, 118, 122, 128, 134, 135, 138, 139, 244,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn info(codec: Codec, payload: &[u8]) -> NalInfo {
        classify(codec, payload).expect("well-formed header")
    }

    #[test]
    fn h264_types() {
        let sps = info(Codec::H264, &[0x67, 0x42]);
        assert_eq!(sps.nal_type, 7);
        assert!(sps.is_parameter_set && !sps.is_vcl && !sps.is_keyframe);
        assert!(!sps.first_slice_of_picture);
        let pps = info(Codec::H264, &[0x68, 0xce]);
        assert_eq!(pps.nal_type, 8);
        assert!(pps.is_parameter_set);
        // IDR slice, first_mb_in_slice = ue '1' = 0.
        let idr = info(Codec::H264, &[0x65, 0x88]);
        assert_eq!(idr.nal_type, 5);
        assert!(idr.is_vcl && idr.is_keyframe && idr.first_slice_of_picture);
        assert!(!idr.is_parameter_set);
        // Non-IDR slice with first_mb_in_slice = ue '010' = 1.
        let p = info(Codec::H264, &[0x41, 0b0100_0000]);
        assert_eq!(p.nal_type, 1);
        assert!(p.is_vcl && !p.is_keyframe && !p.first_slice_of_picture);
        // first_mb_in_slice = 0 in a non-reference slice.
        assert!(info(Codec::H264, &[0x01, 0x9a]).first_slice_of_picture);
        // first_mb_in_slice behind an emulation-prevention byte: 00 00 03 01 -> 0x000001,
        // 23 leading zeros then 1: a big first_mb, not the first slice.
        assert!(!info(Codec::H264, &[0x41, 0, 0, 3, 1, 0xff, 0xff]).first_slice_of_picture);
        // Data partitions B and C have no first_mb_in_slice.
        assert!(!info(Codec::H264, &[0x03, 0x80]).first_slice_of_picture);
        assert!(info(Codec::H264, &[0x03, 0x80]).is_vcl);
        assert!(info(Codec::H264, &[0x02, 0x80]).first_slice_of_picture);
        for t in [6u8, 9, 10, 11, 12, 14, 19, 20] {
            let i = info(Codec::H264, &[0x60 | t, 0x80]);
            assert_eq!(i.nal_type, t);
            assert!(
                !i.is_vcl && !i.is_keyframe && !i.first_slice_of_picture,
                "type {t}"
            );
        }
        assert!(info(Codec::H264, &[0x6d]).is_parameter_set);
        assert!(info(Codec::H264, &[0x6f]).is_parameter_set);
    }

    #[test]
    fn h264_malformed() {
        assert_eq!(classify(Codec::H264, &[]), None);
        assert_eq!(classify(Codec::H264, &[0xe5, 0x88]), None);
        // A slice with no slice header is well-formed as a header but not a first slice.
        let bare = info(Codec::H264, &[0x65]);
        assert!(bare.is_vcl && bare.is_keyframe && !bare.first_slice_of_picture);
    }

    #[test]
    fn h265_types() {
        let vps = info(Codec::H265, &[0x40, 0x01]);
        assert_eq!(vps.nal_type, 32);
        assert!(vps.is_parameter_set && !vps.is_vcl);
        assert_eq!(info(Codec::H265, &[0x42, 0x01]).nal_type, 33);
        assert_eq!(info(Codec::H265, &[0x44, 0x01]).nal_type, 34);
        assert!(info(Codec::H265, &[0x44, 0x01]).is_parameter_set);
        // IDR_W_RADL (19) with first_slice_segment_in_pic_flag set.
        let idr = info(Codec::H265, &[0x26, 0x01, 0xaf]);
        assert_eq!(idr.nal_type, 19);
        assert!(idr.is_vcl && idr.is_keyframe && idr.first_slice_of_picture);
        // CRA (21), second slice segment.
        let cra = info(Codec::H265, &[0x2a, 0x01, 0x40]);
        assert_eq!(cra.nal_type, 21);
        assert!(cra.is_keyframe && !cra.first_slice_of_picture);
        // TRAIL_R (1) and RASL_N (8) are not keyframes.
        let trail = info(Codec::H265, &[0x02, 0x01, 0x80]);
        assert!(trail.is_vcl && !trail.is_keyframe && trail.first_slice_of_picture);
        assert!(!info(Codec::H265, &[0x10, 0x01, 0x80]).is_keyframe);
        // 22 and 23 are reserved IRAP types: not reported as keyframes.
        assert!(!info(Codec::H265, &[0x2c, 0x01, 0x80]).is_keyframe);
        // Non-VCL with bit 0x80 in the third byte is still not a first slice.
        let sei = info(Codec::H265, &[0x4e, 0x01, 0x80]);
        assert_eq!(sei.nal_type, 39);
        assert!(!sei.is_vcl && !sei.first_slice_of_picture && !sei.is_parameter_set);
        // Temporal sub-layer 2, layer 0.
        assert_eq!(info(Codec::H265, &[0x02, 0x03, 0x80]).nal_type, 1);
    }

    #[test]
    fn h265_malformed() {
        assert_eq!(classify(Codec::H265, &[]), None);
        assert_eq!(classify(Codec::H265, &[0x40]), None);
        assert_eq!(classify(Codec::H265, &[0xc0, 0x01]), None);
        // nuh_temporal_id_plus1 = 0.
        assert_eq!(classify(Codec::H265, &[0x40, 0x00]), None);
        // A slice with no slice header.
        assert!(!info(Codec::H265, &[0x26, 0x01]).first_slice_of_picture);
    }

    #[test]
    fn parameter_set_sniffing_is_disjoint() {
        for h0 in 0..=255u8 {
            for h1 in [0u8, 1, 2, 8, 66, 77, 100] {
                let p = [h0, h1, 0, 30, 0];
                assert!(
                    !(looks_like_h264_parameter_set(&p) && looks_like_h265_parameter_set(&p)),
                    "{p:?}"
                );
            }
        }
        assert!(looks_like_h264_parameter_set(&[0x27, 100, 0, 40]));
        assert!(!looks_like_h264_parameter_set(&[0x27, 99, 0, 40]));
        assert!(!looks_like_h264_parameter_set(&[0x67, 100]));
        assert!(looks_like_h265_parameter_set(&[0x42, 0x01, 0x01]));
        assert!(!looks_like_h265_parameter_set(&[0x42, 0x09, 0x01]));
    }
}
