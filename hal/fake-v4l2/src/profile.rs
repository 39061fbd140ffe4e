//! What differs between the modelled drivers. Each field names the driver code it copies;
//! `docs/HARDWARE.md` (V4L2 stand-in table) has the full mapping.

use crate::abi::*;

/// A modelled encoder driver (`FAKE_V4L2_PROFILE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Raspberry Pi 4 `bcm2835-codec` (staging/vc04_services/bcm2835-codec).
    Bcm2835,
    /// MediaTek `mtk-vcodec-enc` (media/platform/mediatek/vcodec/encoder).
    Mediatek,
    /// Qualcomm venus before `VIDIOC_ENCODER_CMD` and `PREPEND_SPSPPS_TO_IDR` were added.
    VenusOld,
}

impl Profile {
    pub(crate) fn from_env() -> Result<Profile, String> {
        match std::env::var("FAKE_V4L2_PROFILE").as_deref() {
            Err(_) | Ok("bcm2835") => Ok(Profile::Bcm2835),
            Ok("venus-old") => Ok(Profile::VenusOld),
            Ok("mediatek") => Ok(Profile::Mediatek),
            Ok(other) => Err(format!(
                "FAKE_V4L2_PROFILE={other}: expected bcm2835, venus-old or mediatek"
            )),
        }
    }

    pub(crate) fn driver(self) -> &'static str {
        match self {
            Profile::Bcm2835 => "bcm2835-codec",
            Profile::Mediatek => "mtk-vcodec-enc",
            Profile::VenusOld => "qcom-venus",
        }
    }

    /// bcm2835-codec registers a single-planar M2M device (`V4L2_CAP_VIDEO_M2M`); venus and
    /// MediaTek are multi-planar only.
    pub(crate) fn mplane(self) -> bool {
        self != Profile::Bcm2835
    }

    /// Raw formats on OUTPUT, in the driver's enumeration order.
    pub(crate) fn raw_formats(self) -> &'static [u32] {
        match self {
            // bcm2835-codec `supported_formats` (encoder input subset, YUV only here).
            Profile::Bcm2835 => &[PIX_FMT_YUV420, PIX_FMT_YVU420, PIX_FMT_NV12, PIX_FMT_NV21],
            // mtk_vcodec_enc_drv / mtk_video_formats_output: multi-plane only.
            Profile::Mediatek => &[
                PIX_FMT_NV12M,
                PIX_FMT_NV21M,
                PIX_FMT_YUV420M,
                PIX_FMT_YVU420M,
            ],
            // venc.c venc_formats: NV12 (one memory plane) on OUTPUT.
            Profile::VenusOld => &[PIX_FMT_NV12],
        }
    }

    /// (bytes-per-line alignment, height alignment) of raw frames.
    pub(crate) fn raw_align(self) -> (u32, u32) {
        match self {
            // bcm2835: bytesperline aligned to 32, height to 16 (the VPU's macroblocks).
            Profile::Bcm2835 => (32, 16),
            // MediaTek: 16x16 macroblocks.
            Profile::Mediatek => (16, 16),
            // venus (helpers.c venus_helper_get_framesz_raw, NV12): stride 128, scanlines 32.
            Profile::VenusOld => (128, 32),
        }
    }

    /// Rounds a plane size as the driver does: venus to 4 KiB (helpers.c ALIGN(size, SZ_4K)).
    pub(crate) fn round_size(self, size: u32) -> u32 {
        match self {
            Profile::VenusOld => size.div_ceil(4096) * 4096,
            _ => size,
        }
    }

    /// Where the bitstream starts in a CAPTURE plane. venus copies the firmware's buffer
    /// offset into `data_offset` (venc.c buf_done: `vb->planes[0].data_offset`); the value is
    /// the firmware's, this one is just non-zero.
    pub(crate) fn data_offset(self) -> u32 {
        match self {
            Profile::VenusOld => 512,
            _ => 0,
        }
    }

    /// The header mode after open, and whether JOINED may be set.
    pub(crate) fn header_modes(self) -> (i32, bool) {
        match self {
            // bcm2835: JOINED_WITH_1ST_FRAME by default ("V4L2 wishes to have the codec
            // header bytes in the same buffer as the first encoded frame").
            Profile::Bcm2835 => (HEADER_MODE_JOINED, true),
            // MediaTek: SEPARATE by default, both offered; the first CAPTURE buffer holds
            // the header alone (mtk_venc_encode_header).
            Profile::Mediatek => (HEADER_MODE_SEPARATE, true),
            // Old venus: the menu skips JOINED, SEPARATE only.
            Profile::VenusOld => (HEADER_MODE_SEPARATE, false),
        }
    }

    /// `VIDIOC_ENCODER_CMD`: old venus returns `ENOTTY`.
    pub(crate) fn has_encoder_cmd(self) -> bool {
        self != Profile::VenusOld
    }

    /// bcm2835-codec imports DMA-bufs with vb2-dma-contig: only physically contiguous
    /// buffers map.
    pub(crate) fn contiguous_only(self) -> bool {
        self == Profile::Bcm2835
    }

    /// Controls the driver registers (others are `EINVAL`).
    pub(crate) fn has_control(self, id: u32) -> bool {
        let common = [
            CID_B_FRAMES,
            CID_GOP_SIZE,
            CID_BITRATE_MODE,
            CID_BITRATE,
            CID_FORCE_KEY_FRAME,
            CID_H264_I_PERIOD,
            CID_H264_LEVEL,
            CID_H264_PROFILE,
            CID_HEADER_MODE,
        ];
        if common.contains(&id) {
            return true;
        }
        // SPS/PPS on later IDRs only where a control asks for them: bcm2835's
        // REPEAT_SEQ_HEADER (MMAL inline headers). Old venus has neither REPEAT_SEQ_HEADER
        // nor PREPEND_SPSPPS_TO_IDR; MediaTek has no repeat control either.
        match self {
            Profile::Bcm2835 => id == CID_REPEAT_SEQ_HEADER,
            Profile::Mediatek => id == CID_FRAME_RC_ENABLE,
            Profile::VenusOld => id == CID_FRAME_RC_ENABLE,
        }
    }
}
