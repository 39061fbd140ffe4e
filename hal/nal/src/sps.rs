//! Sequence parameter set parsing, as far as the VUI timing information.

use crate::rbsp::{BitReader, Malformed};
use crate::{Codec, classify, nal_units};

/// The frame rate `(numerator, denominator)` in frames per second, reduced to lowest terms,
/// from the VUI timing information of the first SPS in `buf`.
///
/// H.264: `time_scale / (2 * num_units_in_tick)`; H.265: `time_scale / num_units_in_tick`.
/// Returns `None` if there is no SPS, the first SPS has no timing information, it cannot be
/// parsed, or a timing field is zero.
pub fn frame_rate(codec: Codec, buf: &[u8]) -> Option<(u32, u32)> {
    let sps = nal_units(buf).find(|nal| {
        classify(codec, nal.payload).is_some_and(|info| info.nal_type == sps_type(codec))
    })?;
    let timing = match codec {
        Codec::H264 => h264_timing(sps.payload),
        Codec::H265 => h265_timing(sps.payload),
    };
    let Ok(Some(Timing {
        num_units_in_tick,
        time_scale,
    })) = timing
    else {
        return None;
    };
    let ticks_per_frame = match codec {
        // H.264 ticks count fields: a frame lasts two of them.
        Codec::H264 => 2 * u64::from(num_units_in_tick),
        Codec::H265 => u64::from(num_units_in_tick),
    };
    reduce(u64::from(time_scale), ticks_per_frame)
}

/// `num / den` in lowest terms, if both are non-zero and fit in `u32`.
fn reduce(num: u64, den: u64) -> Option<(u32, u32)> {
    if num == 0 || den == 0 {
        return None;
    }
    let g = gcd(num, den);
    Some((u32::try_from(num / g).ok()?, u32::try_from(den / g).ok()?))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn sps_type(codec: Codec) -> u8 {
    match codec {
        Codec::H264 => 7,
        Codec::H265 => 33,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timing {
    num_units_in_tick: u32,
    time_scale: u32,
}

/// H.264 7.3.2.1.1 `seq_parameter_set_data` up to E.1.1 `timing_info`.
fn h264_timing(payload: &[u8]) -> Result<Option<Timing>, Malformed> {
    let mut r = BitReader::new(payload.get(1..).ok_or(Malformed)?);
    let profile_idc = r.bits(8)?;
    r.skip(16)?; // constraint flags, reserved bits, level_idc
    r.ue_max(31)?; // seq_parameter_set_id
    if H264_HIGH_PROFILES.contains(&profile_idc) {
        let chroma_format_idc = r.ue_max(3)?;
        if chroma_format_idc == 3 {
            r.skip(1)?; // separate_colour_plane_flag
        }
        r.ue_max(6)?; // bit_depth_luma_minus8
        r.ue_max(6)?; // bit_depth_chroma_minus8
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    h264_skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max(12)?; // log2_max_frame_num_minus4
    match r.ue_max(2)? {
        // pic_order_cnt_type
        0 => {
            r.ue_max(12)?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.skip(1)?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max(255)?;
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    r.ue()?; // pic_width_in_mbs_minus1
    r.ue()?; // pic_height_in_map_units_minus1
    if !r.flag()? {
        // frame_mbs_only_flag == 0
        r.skip(1)?; // mb_adaptive_frame_field_flag
    }
    r.skip(1)?; // direct_8x8_inference_flag
    if r.flag()? {
        // frame_cropping_flag
        for _ in 0..4 {
            r.ue()?;
        }
    }
    if !r.flag()? {
        // vui_parameters_present_flag
        return Ok(None);
    }
    skip_vui_head(&mut r)?;
    read_timing(&mut r)
}

pub(crate) fn h264_skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), Malformed> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// H.265 7.3.2.2.1 `seq_parameter_set_rbsp` up to E.2.1 `vui_timing_info`.
fn h265_timing(payload: &[u8]) -> Result<Option<Timing>, Malformed> {
    let mut r = BitReader::new(payload.get(2..).ok_or(Malformed)?);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    r.skip(1)?; // sps_temporal_id_nesting_flag
    h265_skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    r.ue_max(15)?; // sps_seq_parameter_set_id
    if r.ue_max(3)? == 3 {
        // chroma_format_idc
        r.skip(1)?; // separate_colour_plane_flag
    }
    r.ue()?; // pic_width_in_luma_samples
    r.ue()?; // pic_height_in_luma_samples
    if r.flag()? {
        // conformance_window_flag
        for _ in 0..4 {
            r.ue()?;
        }
    }
    r.ue_max(8)?; // bit_depth_luma_minus8
    r.ue_max(8)?; // bit_depth_chroma_minus8
    let log2_max_poc_lsb = r.ue_max(12)? + 4;
    let ordering_info_for_all = r.flag()?;
    let first = if ordering_info_for_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    for _ in 0..6 {
        // log2_min_luma_coding_block_size_minus3, log2_diff_max_min_luma_coding_block_size,
        // log2_min/diff luma transform block sizes, max_transform_hierarchy_depth_inter/intra
        r.ue()?;
    }
    if r.flag()? && r.flag()? {
        // scaling_list_enabled_flag && sps_scaling_list_data_present_flag
        h265_skip_scaling_list_data(&mut r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.flag()? {
        // pcm_enabled_flag
        r.skip(8)?; // pcm_sample_bit_depth_luma_minus1, pcm_sample_bit_depth_chroma_minus1
        r.ue()?; // log2_min_pcm_luma_coding_block_size_minus3
        r.ue()?; // log2_diff_max_min_pcm_luma_coding_block_size
        r.skip(1)?; // pcm_loop_filter_disabled_flag
    }
    let num_short_term_ref_pic_sets = r.ue_max(64)?;
    h265_skip_short_term_ref_pic_sets(&mut r, num_short_term_ref_pic_sets)?;
    if r.flag()? {
        // long_term_ref_pics_present_flag
        let count = r.ue_max(32)?;
        for _ in 0..count {
            r.skip(log2_max_poc_lsb)?; // lt_ref_pic_poc_lsb_sps
            r.skip(1)?; // used_by_curr_pic_lt_sps_flag
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !r.flag()? {
        // vui_parameters_present_flag
        return Ok(None);
    }
    skip_vui_head(&mut r)?;
    r.skip(3)?; // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
    if r.flag()? {
        // default_display_window_flag
        for _ in 0..4 {
            r.ue()?;
        }
    }
    read_timing(&mut r)
}

pub(crate) fn h265_skip_profile_tier_level(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u32,
) -> Result<(), Malformed> {
    // general_profile_space .. general_level_idc: 2+1+5+32+4+43+1 bits, then 8.
    r.skip(PROFILE_BITS + 8)?;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    let sub_layers = max_sub_layers_minus1 as usize;
    for i in 0..sub_layers {
        profile_present[i] = r.flag()?;
        level_present[i] = r.flag()?;
    }
    if sub_layers > 0 {
        for _ in sub_layers..8 {
            r.skip(2)?; // reserved_zero_2bits
        }
    }
    for i in 0..sub_layers {
        if profile_present[i] {
            r.skip(PROFILE_BITS)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    Ok(())
}

fn h265_skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), Malformed> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _matrix_id in (0..6).step_by(step) {
            if !r.flag()? {
                // scaling_list_pred_mode_flag == 0
                r.ue()?; // scaling_list_pred_matrix_id_delta
            } else {
                let coefs = 64.min(1u32 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefs {
                    r.se()?; // scaling_list_delta_coef
                }
            }
        }
    }
    Ok(())
}

/// 7.3.7 `st_ref_pic_set(i)` for every set in the SPS, where inter-set prediction always
/// refers to the previous set.
fn h265_skip_short_term_ref_pic_sets(r: &mut BitReader<'_>, count: u32) -> Result<(), Malformed> {
    // NumDeltaPocs of the previous set.
    let mut previous_deltas = 0u32;
    for idx in 0..count {
        let inter_prediction = idx != 0 && r.flag()?;
        previous_deltas = if inter_prediction {
            r.skip(1)?; // delta_rps_sign
            r.ue()?; // abs_delta_rps_minus1
            let mut deltas = 0;
            for _ in 0..=previous_deltas {
                let used_by_curr_pic = r.flag()?;
                // use_delta_flag is inferred to be 1 when absent.
                let use_delta = used_by_curr_pic || r.flag()?;
                if use_delta {
                    deltas += 1;
                }
            }
            deltas
        } else {
            let negative = r.ue_max(MAX_DPB)?;
            let positive = r.ue_max(MAX_DPB)?;
            for _ in 0..negative + positive {
                r.ue()?; // delta_poc_s{0,1}_minus1
                r.skip(1)?; // used_by_curr_pic_s{0,1}_flag
            }
            negative + positive
        };
        if previous_deltas > 2 * MAX_DPB {
            return Err(Malformed);
        }
    }
    Ok(())
}

/// The part of the VUI shared by H.264 (E.1.1) and H.265 (E.2.1) before their timing or
/// H.265's extra flags: aspect ratio, overscan, video signal type, chroma location.
fn skip_vui_head(r: &mut BitReader<'_>) -> Result<(), Malformed> {
    if r.flag()? {
        // aspect_ratio_info_present_flag
        if r.bits(8)? == EXTENDED_SAR {
            r.skip(32)?; // sar_width, sar_height
        }
    }
    if r.flag()? {
        // overscan_info_present_flag
        r.skip(1)?;
    }
    if r.flag()? {
        // video_signal_type_present_flag
        r.skip(4)?; // video_format, video_full_range_flag
        if r.flag()? {
            // colour_description_present_flag
            r.skip(24)?;
        }
    }
    if r.flag()? {
        // chroma_loc_info_present_flag
        r.ue()?;
        r.ue()?;
    }
    Ok(())
}

fn read_timing(r: &mut BitReader<'_>) -> Result<Option<Timing>, Malformed> {
    if !r.flag()? {
        // timing_info_present_flag
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    Ok(Some(Timing {
        num_units_in_tick,
        time_scale,
    }))
}

/// `profile_idc` values whose SPS carries chroma format, bit depth and scaling matrices.
pub(crate) const H264_HIGH_PROFILES: [u32; 12] =
    [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];
/// `aspect_ratio_idc` meaning an explicit `sar_width`, `sar_height` follows.
const EXTENDED_SAR: u32 = 255;
/// general/sub-layer profile fields in `profile_tier_level`, without the level byte.
const PROFILE_BITS: u32 = 88;
/// An upper bound on pictures in the decoded picture buffer, to reject absurd counts early.
const MAX_DPB: u32 = 16;

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits MSB first; `finish` adds the RBSP stop bit and emulation prevention.
    #[derive(Default)]
    struct BitWriter {
        bits: Vec<bool>,
    }

    impl BitWriter {
        fn u(&mut self, n: u32, v: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(i < 64 && (v >> i) & 1 == 1);
            }
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let v = u64::from(v) + 1;
            let len = 64 - v.leading_zeros();
            self.u(len - 1, 0).u(len, v)
        }
        fn se(&mut self, v: i32) -> &mut Self {
            let k = if v > 0 { 2 * v - 1 } else { -2 * v };
            self.ue(k as u32)
        }
        fn finish(&mut self, header: &[u8]) -> Vec<u8> {
            self.bits.push(true);
            while !self.bits.len().is_multiple_of(8) {
                self.bits.push(false);
            }
            let raw: Vec<u8> = self
                .bits
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |acc, &b| (acc << 1) | u8::from(b)))
                .collect();
            let mut out = header.to_vec();
            let mut zeros = 0;
            for b in raw {
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                out.push(b);
                zeros = if b == 0 { zeros + 1 } else { 0 };
            }
            out
        }
    }

    fn annexb(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
            .collect()
    }

    /// An H.264 SPS with the given profile, optional scaling lists and POC type 1, and a
    /// VUI holding everything before the timing info.
    fn h264_sps(profile: u8, scaling: bool, poc_type: u32, timing: Option<(u32, u32)>) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.u(8, u64::from(profile)).u(8, 0).u(8, 40).ue(0);
        if H264_HIGH_PROFILES.contains(&u32::from(profile)) {
            w.ue(1).ue(0).ue(0).u(1, 0).u(1, u64::from(scaling));
            if scaling {
                for i in 0..8 {
                    let present = i % 3 == 0;
                    w.u(1, u64::from(present));
                    if present {
                        // A few deltas, then a jump to zero ends the list early.
                        w.se(3).se(-5).se(-6);
                    }
                }
            }
        }
        w.ue(0).ue(poc_type);
        match poc_type {
            0 => {
                w.ue(2);
            }
            1 => {
                w.u(1, 0).se(-2).se(7).ue(3).se(1).se(-1).se(300);
            }
            _ => {}
        }
        w.ue(4)
            .u(1, 0)
            .ue(119)
            .ue(67)
            .u(1, 1)
            .u(1, 1)
            .u(1, 1)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(4);
        w.u(1, 1); // vui
        w.u(1, 1).u(8, 255).u(16, 4).u(16, 3); // extended SAR
        w.u(1, 1).u(1, 0); // overscan
        w.u(1, 1).u(3, 5).u(1, 0).u(1, 1).u(24, 0x010101); // signal type
        w.u(1, 1).ue(1).ue(1); // chroma loc
        match timing {
            Some((tick, scale)) => w
                .u(1, 1)
                .u(32, u64::from(tick))
                .u(32, u64::from(scale))
                .u(1, 1),
            None => w.u(1, 0),
        };
        w.finish(&[0x67])
    }

    #[test]
    fn h264_frame_rate_variants() {
        for profile in [66u8, 77, 100, 244] {
            for scaling in [false, true] {
                for poc_type in 0..3 {
                    let sps = h264_sps(profile, scaling, poc_type, Some((1001, 60000)));
                    let buf = annexb(&[sps]);
                    assert_eq!(
                        frame_rate(Codec::H264, &buf),
                        Some((30000, 1001)),
                        "profile {profile} scaling {scaling} poc {poc_type}"
                    );
                }
            }
        }
        let buf = annexb(&[h264_sps(100, true, 0, Some((1, 50)))]);
        assert_eq!(frame_rate(Codec::H264, &buf), Some((25, 1)));
        let buf = annexb(&[h264_sps(100, false, 0, Some((1, 15)))]);
        assert_eq!(frame_rate(Codec::H264, &buf), Some((15, 2)));
    }

    #[test]
    fn h264_frame_rate_absent_or_broken() {
        let buf = annexb(&[h264_sps(66, false, 0, None)]);
        assert_eq!(frame_rate(Codec::H264, &buf), None);
        let buf = annexb(&[h264_sps(66, false, 0, Some((0, 50)))]);
        assert_eq!(frame_rate(Codec::H264, &buf), None);
        let buf = annexb(&[h264_sps(66, false, 0, Some((1, 0)))]);
        assert_eq!(frame_rate(Codec::H264, &buf), None);
        // Truncated SPS: every prefix is rejected or (if the timing fits) still right.
        let full = h264_sps(100, true, 1, Some((1, 60)));
        for len in 0..full.len() {
            let got = frame_rate(Codec::H264, &annexb(&[full[..len].to_vec()]));
            assert!(got.is_none() || got == Some((30, 1)), "len {len}: {got:?}");
        }
        // Only the first SPS counts.
        let buf = annexb(&[
            h264_sps(66, false, 0, None),
            h264_sps(66, false, 0, Some((1, 50))),
        ]);
        assert_eq!(frame_rate(Codec::H264, &buf), None);
        assert_eq!(frame_rate(Codec::H264, &[]), None);
        // The wrong codec finds no SPS.
        let buf = annexb(&[h264_sps(66, false, 0, Some((1, 50)))]);
        assert_eq!(frame_rate(Codec::H265, &buf), None);
    }

    /// An H.265 SPS exercising sub-layers, scaling lists, PCM, inter-predicted short-term
    /// reference picture sets, long-term pictures and a full VUI.
    fn h265_sps(sub_layers_minus1: u32, timing: Option<(u32, u32)>) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.u(4, 0).u(3, u64::from(sub_layers_minus1)).u(1, 1);
        w.u(88, 0).u(8, 93); // general profile, level
        for i in 0..sub_layers_minus1 {
            w.u(1, u64::from(i % 2 == 0)).u(1, 1);
        }
        if sub_layers_minus1 > 0 {
            for _ in sub_layers_minus1..8 {
                w.u(2, 0);
            }
        }
        for i in 0..sub_layers_minus1 {
            if i % 2 == 0 {
                w.u(88, 0x5a5a);
            }
            w.u(8, 90);
        }
        w.ue(0)
            .ue(1)
            .ue(640)
            .ue(360)
            .u(1, 1)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(4);
        w.ue(0).ue(0).ue(4); // bit depths, log2_max_poc_lsb_minus4 = 4
        w.u(1, 1);
        for _ in 0..=sub_layers_minus1 {
            w.ue(4).ue(2).ue(0);
        }
        w.ue(0).ue(3).ue(0).ue(3).ue(2).ue(2);
        w.u(1, 1).u(1, 1); // scaling lists present
        for size_id in 0..4u32 {
            let step = if size_id == 3 { 3 } else { 1 };
            for matrix_id in (0..6).step_by(step) {
                if matrix_id % 2 == 0 {
                    w.u(1, 0).ue(0);
                } else {
                    w.u(1, 1);
                    if size_id > 1 {
                        w.se(8);
                    }
                    for k in 0..64.min(1u32 << (4 + (size_id << 1))) {
                        w.se(if k % 2 == 0 { 1 } else { -1 });
                    }
                }
            }
        }
        w.u(1, 1).u(1, 1); // amp, sao
        w.u(1, 1).u(4, 7).u(4, 7).ue(0).ue(1).u(1, 0); // pcm
        w.ue(3); // three short-term RPS
        w.ue(2).ue(1).ue(0).u(1, 1).ue(1).u(1, 0).ue(0).u(1, 1); // set 0: 3 deltas
        w.u(1, 1).u(1, 0).ue(0); // set 1 predicted from set 0 (4 entries)
        w.u(1, 1).u(1, 0).u(1, 1).u(1, 0).u(1, 0).u(1, 1); // 3 of 4 used: 3 deltas
        w.u(1, 1).u(1, 1).ue(1); // set 2 predicted from set 1 (4 entries)
        w.u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 1).u(1, 0).u(1, 1);
        w.u(1, 1).ue(2).u(8, 0x12).u(1, 1).u(8, 0x34).u(1, 0); // long-term, 8-bit lsb
        w.u(1, 1).u(1, 1);
        w.u(1, 1); // vui
        w.u(1, 1).u(8, 1); // aspect_ratio_idc 1
        w.u(1, 0); // no overscan info
        w.u(1, 1).u(3, 5).u(1, 1).u(1, 0); // signal type, no colour description
        w.u(1, 0); // no chroma loc
        w.u(1, 0).u(1, 0).u(1, 0);
        w.u(1, 1).ue(0).ue(8).ue(0).ue(4); // default display window
        match timing {
            Some((tick, scale)) => w.u(1, 1).u(32, u64::from(tick)).u(32, u64::from(scale)),
            None => w.u(1, 0),
        };
        w.u(1, 0);
        w.finish(&[0x42, 0x01])
    }

    // Under Miri the every-prefix loop below runs for over ten minutes; the `nal` fuzz target
    // feeds truncated parameter sets to the same parser.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn h265_frame_rate_variants() {
        for sub_layers_minus1 in [0, 1, 2, 6] {
            let vps = vec![0x40, 0x01, 0x0c, 0x01, 0xff, 0xff];
            let buf = annexb(&[vps, h265_sps(sub_layers_minus1, Some((1001, 30000)))]);
            assert_eq!(
                frame_rate(Codec::H265, &buf),
                Some((30000, 1001)),
                "{sub_layers_minus1}"
            );
        }
        let buf = annexb(&[h265_sps(0, Some((1, 25)))]);
        assert_eq!(frame_rate(Codec::H265, &buf), Some((25, 1)));
        let buf = annexb(&[h265_sps(1, Some((2, 25)))]);
        assert_eq!(frame_rate(Codec::H265, &buf), Some((25, 2)));
        let buf = annexb(&[h265_sps(0, None)]);
        assert_eq!(frame_rate(Codec::H265, &buf), None);
        let full = h265_sps(2, Some((1, 24)));
        for len in 0..full.len() {
            let got = frame_rate(Codec::H265, &annexb(&[full[..len].to_vec()]));
            assert!(got.is_none() || got == Some((24, 1)), "len {len}: {got:?}");
        }
    }

    #[test]
    fn reduce_fractions() {
        assert_eq!(reduce(60000, 2002), Some((30000, 1001)));
        assert_eq!(reduce(50, 2), Some((25, 1)));
        assert_eq!(reduce(0, 2), None);
        assert_eq!(reduce(2, 0), None);
        assert_eq!(
            reduce(u64::from(u32::MAX), 2 * u64::from(u32::MAX)),
            Some((1, 2))
        );
        assert_eq!(
            reduce(u64::from(u32::MAX), 2 * u64::from(u32::MAX - 1)),
            None
        );
    }
}
