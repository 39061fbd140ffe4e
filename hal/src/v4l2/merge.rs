//! Header-only buffers joined to the picture they belong to (issue 11, part B item 2).
//!
//! Encoders in `V4L2_MPEG_VIDEO_HEADER_MODE_SEPARATE` (old venus, MediaTek's first buffer) and
//! UVC cameras that send SPS/PPS as a frame of their own deliver the parameter sets in a
//! buffer without a picture. Alone, that buffer would be a packet with the IDR's pts and no
//! keyframe, and the pipeline would end a segment between the headers and their IDR. Pure
//! logic over byte slices (STYLE rule 7): the caller does the I/O.

use crate::Codec;

/// What to do with a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Merged {
    /// It held no picture: its bytes are kept for the next buffer, which has one.
    Held,
    /// It has a picture and nothing is held: pass it on as it is (no copy).
    Alone,
    /// It has a picture and headers were held: the headers, then the buffer (one copy, only
    /// for buffers after a header-only one, i.e. keyframes).
    Joined(Vec<u8>),
}

/// Holds non-VCL buffers until the next VCL one.
#[derive(Debug)]
pub(crate) struct HeaderMerge {
    codec: Codec,
    held: Vec<u8>,
}

impl HeaderMerge {
    pub(crate) fn new(codec: Codec) -> HeaderMerge {
        HeaderMerge {
            codec,
            held: Vec::new(),
        }
    }

    /// Takes one buffer's bytes (Annex B).
    pub(crate) fn push(&mut self, data: &[u8]) -> Merged {
        let has_picture = camseal_nal::nal_units(data)
            .any(|nal| camseal_nal::classify(self.codec, nal.payload).is_some_and(|i| i.is_vcl));
        if !has_picture {
            if self.held.len() + data.len() > MAX_HELD {
                // Header buffers are a few dozen bytes; this many without a picture is not
                // headers. Keep the latest only, so memory stays bounded.
                self.held.clear();
            }
            self.held.extend_from_slice(data);
            return Merged::Held;
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
    fn held_bytes_stay_bounded() {
        let mut m = HeaderMerge::new(Codec::H264);
        let junk = vec![0u8; MAX_HELD / 2 + 1];
        for _ in 0..5 {
            assert_eq!(m.push(&junk), Merged::Held);
            assert!(m.held() <= MAX_HELD);
        }
    }
}
