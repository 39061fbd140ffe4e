//! Picture order counts (POC): the order in which pictures are shown, from their slice
//! headers. With B-frames it differs from the order in which they are coded, and a source
//! that replays a recording has to stamp each picture with the time it is shown.
//!
//! Covered: H.264 `pic_order_cnt_type` 0 (what encoders use for B-frames) and 2 (output
//! order is decode order); type 1 is taken as decode order too. H.265 in full for the first
//! slice of a picture. Memory-management resets (H.264 MMCO 5) are not followed.

use crate::Codec;
use crate::annexb::nal_units;
use crate::rbsp::{BitReader, Malformed};
use crate::sps::{H264_HIGH_PROFILES, h264_skip_scaling_list, h265_skip_profile_tier_level};

/// Where one picture stands in presentation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PictureOrder {
    /// Its picture order count: pictures are shown in increasing POC until the next reset.
    pub poc: i64,
    /// It resets the order (an IDR, a BLA or the first CRA): every picture before it is
    /// shown before it and every one after, after.
    pub reset: bool,
}

/// Follows the parameter sets and slice headers of a stream, access unit by access unit.
#[derive(Clone, Debug)]
pub struct PocReader {
    codec: Codec,
    h264: Option<H264Sps>,
    h265_sps: Option<H265Sps>,
    h265_pps: Option<H265Pps>,
    prev_msb: i64,
    prev_lsb: i64,
    /// Pictures since the last reset, for streams whose output order is decode order.
    counter: i64,
    seen_picture: bool,
}

impl PocReader {
    /// A reader for a stream of `codec`.
    pub fn new(codec: Codec) -> PocReader {
        PocReader {
            codec,
            h264: None,
            h265_sps: None,
            h265_pps: None,
            prev_msb: 0,
            prev_lsb: 0,
            counter: 0,
            seen_picture: false,
        }
    }

    /// Reads one access unit (Annex-B bytes, in decode order): its picture's order, or
    /// `None` if it holds no picture, or one whose parameter sets were not seen or whose
    /// slice header is malformed.
    pub fn access_unit(&mut self, unit: &[u8]) -> Option<PictureOrder> {
        let mut order = None;
        for nal in nal_units(unit) {
            let p = nal.payload;
            let found = match self.codec {
                Codec::H264 => self.h264_nal(p),
                Codec::H265 => self.h265_nal(p),
            };
            if order.is_none() {
                order = found;
            }
        }
        if order.is_some() {
            self.seen_picture = true;
        }
        order
    }

    fn h264_nal(&mut self, p: &[u8]) -> Option<PictureOrder> {
        let &header = p.first()?;
        let nal_type = header & 0x1f;
        match nal_type {
            7 => {
                if let Ok(sps) = H264Sps::parse(&p[1..]) {
                    self.h264 = Some(sps);
                }
                None
            }
            1 | 5 => self.h264_slice(p, nal_type == 5, header >> 5 & 3 != 0),
            _ => None,
        }
    }

    fn h264_slice(&mut self, p: &[u8], idr: bool, reference: bool) -> Option<PictureOrder> {
        let sps = self.h264?;
        let mut r = BitReader::new(&p[1..]);
        let lsb = (|| -> Result<Option<i64>, Malformed> {
            if r.ue()? != 0 {
                return Ok(None); // not the first slice of the picture
            }
            r.ue()?; // slice_type
            r.ue()?; // pic_parameter_set_id
            if sps.separate_colour_plane {
                r.skip(2)?;
            }
            r.skip(sps.log2_max_frame_num)?; // frame_num
            if !sps.frame_mbs_only && r.flag()? {
                r.skip(1)?; // bottom_field_flag
            }
            if idr {
                r.ue()?; // idr_pic_id
            }
            Ok(Some(match sps.log2_max_poc_lsb {
                Some(bits) => i64::from(r.bits(bits)?),
                None => -1,
            }))
        })()
        .ok()??;
        if idr {
            self.prev_msb = 0;
            self.prev_lsb = 0;
            self.counter = 0;
        }
        let poc = match sps.log2_max_poc_lsb {
            Some(bits) => {
                let msb = self.msb(lsb, 1i64 << bits);
                if reference {
                    self.prev_msb = msb;
                    self.prev_lsb = lsb;
                }
                msb.saturating_add(lsb)
            }
            None => {
                self.counter = self.counter.saturating_add(1);
                self.counter
            }
        };
        Some(PictureOrder { poc, reset: idr })
    }

    fn h265_nal(&mut self, p: &[u8]) -> Option<PictureOrder> {
        let [h0, h1, rest @ ..] = p else {
            return None;
        };
        let nal_type = (h0 >> 1) & 0x3f;
        let temporal_id = (h1 & 7).checked_sub(1)?;
        match nal_type {
            33 => {
                if let Ok(sps) = H265Sps::parse(rest) {
                    self.h265_sps = Some(sps);
                }
                None
            }
            34 => {
                if let Ok(pps) = H265Pps::parse(rest) {
                    self.h265_pps = Some(pps);
                }
                None
            }
            0..=9 | 16..=21 => self.h265_slice(rest, nal_type, temporal_id),
            _ => None,
        }
    }

    fn h265_slice(&mut self, body: &[u8], nal_type: u8, temporal_id: u8) -> Option<PictureOrder> {
        let (sps, pps) = (self.h265_sps?, self.h265_pps?);
        let idr = matches!(nal_type, 19 | 20);
        let mut r = BitReader::new(body);
        let lsb = (|| -> Result<Option<i64>, Malformed> {
            if !r.flag()? {
                return Ok(None); // not the first slice segment of the picture
            }
            if (16..=23).contains(&nal_type) {
                r.skip(1)?; // no_output_of_prior_pics_flag
            }
            r.ue()?; // slice_pic_parameter_set_id
            r.skip(pps.num_extra_slice_header_bits)?;
            r.ue()?; // slice_type
            if pps.output_flag_present {
                r.skip(1)?; // pic_output_flag
            }
            if sps.separate_colour_plane {
                r.skip(2)?; // colour_plane_id
            }
            if idr {
                return Ok(Some(0));
            }
            Ok(Some(i64::from(r.bits(sps.log2_max_poc_lsb)?)))
        })()
        .ok()??;
        // IDR, BLA, and a CRA that starts the stream begin a new order (NoRaslOutputFlag).
        let reset = idr || matches!(nal_type, 16..=18) || (nal_type == 21 && !self.seen_picture);
        let msb = if reset {
            0
        } else {
            self.msb(lsb, 1i64 << sps.log2_max_poc_lsb)
        };
        // prevTid0Pic: TemporalId 0, and not a RASL, RADL or sub-layer non-reference picture.
        let sub_layer_non_reference = nal_type <= 14 && nal_type.is_multiple_of(2);
        if temporal_id == 0 && !(6..=9).contains(&nal_type) && !sub_layer_non_reference {
            self.prev_msb = msb;
            self.prev_lsb = lsb;
        }
        Some(PictureOrder {
            poc: msb.saturating_add(lsb),
            reset,
        })
    }

    /// `PicOrderCntMsb` from the previous reference picture's (H.264 8.2.1.1, H.265 8.3.1).
    fn msb(&self, lsb: i64, max: i64) -> i64 {
        // Saturating: a hostile stream could wrap forever; real ones never come close.
        if lsb < self.prev_lsb && self.prev_lsb - lsb >= max / 2 {
            self.prev_msb.saturating_add(max)
        } else if lsb > self.prev_lsb && lsb - self.prev_lsb > max / 2 {
            self.prev_msb.saturating_sub(max)
        } else {
            self.prev_msb
        }
    }
}

/// The H.264 SPS fields a slice header's POC depends on.
#[derive(Clone, Copy, Debug)]
struct H264Sps {
    separate_colour_plane: bool,
    log2_max_frame_num: u32,
    /// `None` unless `pic_order_cnt_type` is 0.
    log2_max_poc_lsb: Option<u32>,
    frame_mbs_only: bool,
}

impl H264Sps {
    /// H.264 7.3.2.1.1, from after the NAL header.
    fn parse(body: &[u8]) -> Result<H264Sps, Malformed> {
        let mut r = BitReader::new(body);
        let profile_idc = r.bits(8)?;
        r.skip(16)?; // constraint flags, reserved bits, level_idc
        r.ue_max(31)?; // seq_parameter_set_id
        let mut separate_colour_plane = false;
        if H264_HIGH_PROFILES.contains(&profile_idc) {
            let chroma_format_idc = r.ue_max(3)?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.flag()?;
            }
            r.ue_max(6)?; // bit_depth_luma_minus8
            r.ue_max(6)?; // bit_depth_chroma_minus8
            r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.flag()? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag()? {
                        h264_skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        let log2_max_frame_num = r.ue_max(12)? + 4;
        let log2_max_poc_lsb = match r.ue_max(2)? {
            0 => Some(r.ue_max(12)? + 4),
            1 => {
                r.skip(1)?; // delta_pic_order_always_zero_flag
                r.se()?; // offset_for_non_ref_pic
                r.se()?; // offset_for_top_to_bottom_field
                for _ in 0..r.ue_max(255)? {
                    r.se()?; // offset_for_ref_frame
                }
                None
            }
            _ => None,
        };
        r.ue()?; // max_num_ref_frames
        r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
        r.ue()?; // pic_width_in_mbs_minus1
        r.ue()?; // pic_height_in_map_units_minus1
        let frame_mbs_only = r.flag()?;
        Ok(H264Sps {
            separate_colour_plane,
            log2_max_frame_num,
            log2_max_poc_lsb,
            frame_mbs_only,
        })
    }
}

/// The H.265 SPS fields a slice header's POC depends on.
#[derive(Clone, Copy, Debug)]
struct H265Sps {
    separate_colour_plane: bool,
    log2_max_poc_lsb: u32,
}

impl H265Sps {
    /// H.265 7.3.2.2.1, from after the NAL header.
    fn parse(body: &[u8]) -> Result<H265Sps, Malformed> {
        let mut r = BitReader::new(body);
        r.skip(4)?; // sps_video_parameter_set_id
        let max_sub_layers_minus1 = r.bits(3)?;
        r.skip(1)?; // sps_temporal_id_nesting_flag
        h265_skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
        r.ue_max(15)?; // sps_seq_parameter_set_id
        let mut separate_colour_plane = false;
        if r.ue_max(3)? == 3 {
            separate_colour_plane = r.flag()?;
        }
        r.ue()?; // pic_width_in_luma_samples
        r.ue()?; // pic_height_in_luma_samples
        if r.flag()? {
            for _ in 0..4 {
                r.ue()?; // conformance window offsets
            }
        }
        r.ue_max(8)?; // bit_depth_luma_minus8
        r.ue_max(8)?; // bit_depth_chroma_minus8
        let log2_max_poc_lsb = r.ue_max(12)? + 4;
        Ok(H265Sps {
            separate_colour_plane,
            log2_max_poc_lsb,
        })
    }
}

/// The H.265 PPS fields the start of a slice header depends on.
#[derive(Clone, Copy, Debug)]
struct H265Pps {
    output_flag_present: bool,
    num_extra_slice_header_bits: u32,
}

impl H265Pps {
    /// H.265 7.3.2.3.1, from after the NAL header.
    fn parse(body: &[u8]) -> Result<H265Pps, Malformed> {
        let mut r = BitReader::new(body);
        r.ue_max(63)?; // pps_pic_parameter_set_id
        r.ue_max(15)?; // pps_seq_parameter_set_id
        r.skip(1)?; // dependent_slice_segments_enabled_flag
        let output_flag_present = r.flag()?;
        let num_extra_slice_header_bits = r.bits(3)?;
        Ok(H265Pps {
            output_flag_present,
            num_extra_slice_header_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// An H.264 SPS (Baseline, POC type 0, 4-bit frame_num and POC lsb) and PPS.
    const H264_SPS_PPS: &[u8] = &[
        0, 0, 0, 1, 0x67, 0x42, 0x00, 0x1e, 0xf4, 0x0a, 0x0f, 0xc8, //
        0, 0, 0, 1, 0x68, 0xce, 0x38, 0x80,
    ];

    /// A picture's first slice: `first_mb 0`, `slice_type 0`, `pps 0`, `frame_num`, then
    /// (IDR) `idr_pic_id 0` and the POC lsb. A B-frame is not a reference (`nal_ref_idc 0`).
    fn h264_slice(idr: bool, b_frame: bool, frame_num: u8, lsb: u8) -> Vec<u8> {
        // ue(0) ue(0) ue(0) = 1 1 1; u4 frame_num; [ue(0) = 1]; u4 lsb; stop bit.
        let mut bits: Vec<u8> = vec![1, 1, 1];
        bits.extend((0..4).rev().map(|i| frame_num >> i & 1));
        if idr {
            bits.push(1);
        }
        bits.extend((0..4).rev().map(|i| lsb >> i & 1));
        bits.push(1);
        while !bits.len().is_multiple_of(8) {
            bits.push(0);
        }
        let header = match (idr, b_frame) {
            (true, _) => 0x65,
            (false, false) => 0x41,
            (false, true) => 0x01,
        };
        let mut out = vec![0, 0, 0, 1, header];
        out.extend(
            bits.chunks(8)
                .map(|c| c.iter().fold(0u8, |b, &x| b << 1 | x)),
        );
        out
    }

    #[test]
    fn h264_poc_type_0_orders_b_frames_and_wraps_the_lsb() {
        let mut reader = PocReader::new(Codec::H264);
        assert_eq!(reader.access_unit(H264_SPS_PPS), None);
        let mut idr = H264_SPS_PPS.to_vec();
        idr.extend(h264_slice(true, false, 0, 0));
        let first = reader.access_unit(&idr).unwrap();
        assert_eq!(
            first,
            PictureOrder {
                poc: 0,
                reset: true
            }
        );
        // P at lsb 6, a B at lsb 2 (shown before it), P at 12, then the lsb wraps past 16
        // (a P at 2 is 18) and a B at 14 after it is still before it (14, not 30).
        let order: Vec<i64> = [(false, 1, 6), (true, 2, 2), (false, 2, 12), (false, 3, 2)]
            .into_iter()
            .chain([(true, 4, 14)])
            .map(|(b, f, lsb)| {
                reader
                    .access_unit(&h264_slice(false, b, f, lsb))
                    .unwrap()
                    .poc
            })
            .collect();
        assert_eq!(order, [6, 2, 12, 18, 14]);
    }

    proptest! {
        // Under Miri proptest's own machinery does not finish in minutes; the unit test
        // above runs the same parser there.
        #[cfg_attr(miri, ignore)]
        #[test]
        fn any_bytes_are_read_without_panicking(
            units in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)
        ) {
            for codec in [Codec::H264, Codec::H265] {
                let mut reader = PocReader::new(codec);
                for unit in &units {
                    let mut bytes = vec![0, 0, 1];
                    bytes.extend_from_slice(unit);
                    reader.access_unit(&bytes);
                    reader.access_unit(unit);
                }
            }
        }
    }
}
