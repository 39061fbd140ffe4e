//! Header-only buffers joined to the picture they belong to (issue 11, part B item 2).
//!
//! Encoders in `V4L2_MPEG_VIDEO_HEADER_MODE_SEPARATE` (old venus, MediaTek's first buffer) and
//! UVC cameras that send SPS/PPS as a frame of their own deliver the parameter sets in a
//! buffer without a picture. Alone, that buffer would be a packet with the IDR's pts and no
//! keyframe, and the pipeline would end a segment between the headers and their IDR.
//!
//! Drivers that never repeat the parameter sets (old venus has no REPEAT_SEQ_HEADER nor
//! PREPEND_SPSPPS_TO_IDR; MediaTek sends them once) would leave every later IDR without
//! them, so the last ones seen are kept and put before an IDR that lacks them: every
//! keyframe packet then starts a decoder on its own. Pure logic over byte slices (STYLE
//! rule 7): the caller does the I/O.

use crate::Codec;

/// What to do with a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Merged {
    /// It held no picture: its bytes are kept for the next buffer, which has one.
    Held,
    /// It has a picture and nothing is held: pass it on as it is (no copy).
    Alone,
    /// It has a picture and headers were held, or it is a keyframe without parameter sets:
    /// the headers, then the buffer (one copy, keyframes only).
    Joined(Vec<u8>),
}

/// Holds non-VCL buffers until the next VCL one.
#[derive(Debug)]
pub(crate) struct HeaderMerge {
    codec: Codec,
    held: Vec<u8>,
    /// The parameter-set NAL units last seen, with start codes.
    parameter_sets: Vec<u8>,
}

impl HeaderMerge {
    pub(crate) fn new(codec: Codec) -> HeaderMerge {
        HeaderMerge {
            codec,
            held: Vec::new(),
            parameter_sets: Vec::new(),
        }
    }

    /// Takes one buffer's bytes (Annex B).
    pub(crate) fn push(&mut self, data: &[u8]) -> Merged {
        let (mut has_picture, mut keyframe, mut sets) = (false, false, Vec::new());
        for nal in camseal_nal::nal_units(data) {
            let Some(info) = camseal_nal::classify(self.codec, nal.payload) else {
                continue;
            };
            has_picture |= info.is_vcl;
            keyframe |= info.is_vcl && info.is_keyframe;
            if info.is_parameter_set {
                sets.extend_from_slice(START_CODE);
                sets.extend_from_slice(nal.payload);
            }
        }
        if !sets.is_empty() {
            // A new set replaces the old one (a reconfigured encoder sends new ones); sets
            // split over several buffers (SPS, then PPS) add up until the picture.
            if self.held.is_empty() {
                self.parameter_sets = sets;
            } else {
                self.parameter_sets.extend_from_slice(&sets);
            }
        }
        let has_sets = !self.held.is_empty() || data_has_sets(self.codec, data);
        if !has_picture {
            if self.held.len() + data.len() > MAX_HELD {
                // Header buffers are a few dozen bytes; this many without a picture is not
                // headers. Keep the latest only, so memory stays bounded.
                self.held.clear();
            }
            self.held.extend_from_slice(data);
            return Merged::Held;
        }
        if keyframe && !has_sets && !self.parameter_sets.is_empty() {
            let mut joined = self.parameter_sets.clone();
            joined.extend_from_slice(data);
            return Merged::Joined(joined);
        }
        if self.held.is_empty() {
            return Merged::Alone;
        }
        let mut joined = std::mem::take(&mut self.held);
        joined.extend_from_slice(data);
        Merged::Joined(joined)
    }

    /// Bytes held for the next picture.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}

fn data_has_sets(codec: Codec, data: &[u8]) -> bool {
    camseal_nal::nal_units(data)
        .any(|nal| camseal_nal::classify(codec, nal.payload).is_some_and(|i| i.is_parameter_set))
}

const START_CODE: &[u8] = &[0, 0, 0, 1];

/// More than any set of parameter sets (an H.264 SPS is at most a few hundred bytes).
const MAX_HELD: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda];
    const PPS: &[u8] = &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];
    const IDR: &[u8] = &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00];
    const P: &[u8] = &[0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x00];

    #[test]
    fn separate_headers_go_before_the_next_picture() {
        let mut m = HeaderMerge::new(Codec::H264);
        let headers = [SPS, PPS].concat();
        assert_eq!(m.push(&headers), Merged::Held);
        assert_eq!(m.held(), headers.len());
        assert_eq!(m.push(IDR), Merged::Joined([SPS, PPS, IDR].concat()));
        assert_eq!(m.held(), 0);
        assert_eq!(m.push(P), Merged::Alone);
    }

    #[test]
    fn headers_in_several_buffers_are_all_kept_in_order() {
        let mut m = HeaderMerge::new(Codec::H264);
        assert_eq!(m.push(SPS), Merged::Held);
        assert_eq!(m.push(PPS), Merged::Held);
        assert_eq!(m.push(IDR), Merged::Joined([SPS, PPS, IDR].concat()));
        assert_eq!(m.push(IDR), Merged::Joined([SPS, PPS, IDR].concat()));
    }

    #[test]
    fn joined_buffers_pass_untouched() {
        let mut m = HeaderMerge::new(Codec::H264);
        assert_eq!(m.push(&[SPS, PPS, IDR].concat()), Merged::Alone);
        assert_eq!(m.push(P), Merged::Alone);
    }

    #[test]
    fn hevc_parameter_sets_are_headers_too() {
        let vps = [0, 0, 0, 1, 0x40, 0x01, 0x0c];
        let idr = [0, 0, 0, 1, 0x26, 0x01, 0xaf];
        let mut m = HeaderMerge::new(Codec::H265);
        assert_eq!(m.push(&vps), Merged::Held);
        assert_eq!(m.push(&idr), Merged::Joined([&vps[..], &idr].concat()));
    }

    #[test]
    fn later_idrs_get_the_last_parameter_sets() {
        let mut m = HeaderMerge::new(Codec::H264);
        assert_eq!(m.push(&[SPS, PPS].concat()), Merged::Held);
        assert_eq!(m.push(IDR), Merged::Joined([SPS, PPS, IDR].concat()));
        assert_eq!(m.push(P), Merged::Alone);
        // The driver does not repeat them: they are put back before the next IDR.
        assert_eq!(m.push(IDR), Merged::Joined([SPS, PPS, IDR].concat()));
        // New ones replace the old.
        let sps2 = [0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28];
        assert_eq!(m.push(&[&sps2[..], PPS, IDR].concat()), Merged::Alone);
        assert_eq!(m.push(IDR), Merged::Joined([&sps2[..], PPS, IDR].concat()));
    }

    #[test]
    fn an_idr_before_any_parameter_set_passes_as_it_is() {
        let mut m = HeaderMerge::new(Codec::H264);
        assert_eq!(m.push(IDR), Merged::Alone);
    }

    #[test]
    fn held_bytes_stay_bounded() {
        let mut m = HeaderMerge::new(Codec::H264);
        let junk = vec![0u8; MAX_HELD / 2 + 1];
        for _ in 0..5 {
            assert_eq!(m.push(&junk), Merged::Held);
            assert!(m.held() <= MAX_HELD);
        }
    }
}
