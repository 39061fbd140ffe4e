//! One safe wrapper per MPP call. Arguments are inputs only; each wrapper maps the return
//! codes that mean something for that call to a variant of its own error type and keeps the
//! raw code ([`Code`]) for the rest. No `unsafe` here: the C calls are in `sys.rs`.

use std::ffi::CStr;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use rockchip_mpp_sys::{self as ffi, LoadError, Mpp, MppRet};

pub(crate) use super::sys::{
    Buffer, Cfg, Context, Frame, FrameInfo, Group, OutputPacket, PacketLease,
};
use crate::Codec;

/// A raw MPP return code, shown with its name from `mpp_err.h` when it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code(pub i32);

impl Code {
    /// The `MPP_RET` name of the code, if it is one of the documented ones.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            ffi::MPP_OK => "MPP_OK",
            ffi::MPP_NOK => "MPP_NOK",
            ffi::MPP_ERR_UNKNOW => "MPP_ERR_UNKNOW",
            ffi::MPP_ERR_NULL_PTR => "MPP_ERR_NULL_PTR",
            ffi::MPP_ERR_MALLOC => "MPP_ERR_MALLOC",
            ffi::MPP_ERR_VALUE => "MPP_ERR_VALUE",
            ffi::MPP_ERR_TIMEOUT => "MPP_ERR_TIMEOUT",
            ffi::MPP_ERR_PERM => "MPP_ERR_PERM",
            ffi::MPP_ERR_INIT => "MPP_ERR_INIT",
            ffi::MPP_ERR_NOMEM => "MPP_ERR_NOMEM",
            ffi::MPP_ERR_VPUHW => "MPP_ERR_VPUHW",
            ffi::MPP_EOS_STREAM_REACHED => "MPP_EOS_STREAM_REACHED",
            ffi::MPP_ERR_BUFFER_FULL => "MPP_ERR_BUFFER_FULL",
            _ => return None,
        })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "MPP error {}", self.0),
        }
    }
}

/// How long an MPP input or output call may wait, passed as the `i32` MPP actually reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeout(i32);

impl Timeout {
    /// Wait as long as it takes.
    pub const BLOCK: Timeout = Timeout(ffi::MPP_POLL_BLOCK);
    /// Never wait.
    pub const NON_BLOCK: Timeout = Timeout(ffi::MPP_POLL_NON_BLOCK);

    /// Wait up to `ms` milliseconds, clamped to MPP's 1..=8000.
    pub fn millis(ms: u32) -> Timeout {
        let ms = i32::try_from(ms).unwrap_or(ffi::MPP_POLL_MAX);
        Timeout(ms.clamp(1, ffi::MPP_POLL_MAX))
    }

    /// The value passed to MPP.
    pub fn raw(self) -> i32 {
        self.0
    }
}

/// `mpp_create` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// MPP could not create a context.
    #[error("mpp_create failed: {0}")]
    Failed(Code),
}

/// `mpp_init` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// MPP refused to open an encoder; on a board this usually means no `/dev/mpp_service`
    /// (not a Rockchip vendor kernel) or no permission to open it.
    #[error(
        "MPP could not open a {codec} encoder: {code} (is /dev/mpp_service present and accessible?)"
    )]
    Refused {
        /// The codec asked for.
        codec: Codec,
        /// MPP's return code.
        code: Code,
    },
}

/// A `control` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// MPP rejected the command or its parameter.
    #[error("MPP {command} failed: {code}")]
    Failed {
        /// The command, by its `rk_mpi_cmd.h` name.
        command: &'static str,
        /// MPP's return code.
        code: Code,
    },
}

/// An `mpp_enc_cfg_*` call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CfgError {
    /// `mpp_enc_cfg_init` failed.
    #[error("mpp_enc_cfg_init failed: {0}")]
    Init(Code),
    /// This MPP does not know the key (too old a release, or a typo).
    #[error("MPP does not accept the encoder setting {key:?}: {code}")]
    UnknownKey {
        /// The key.
        key: &'static str,
        /// MPP's return code (`MPP_NOK` for an unknown key).
        code: Code,
    },
}

/// Creating an `MppFrame` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// `mpp_frame_init` failed.
    #[error("mpp_frame_init failed: {0}")]
    Init(Code),
    /// The output packet could not be put in the frame's meta.
    #[error("mpp_meta_set_packet failed: {0}")]
    Meta(Code),
}

/// `encode_put_frame` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PutFrameError {
    /// The input queue is full; the same frame can be put again later.
    #[error("the MPP encoder's input queue is full: {0}")]
    Busy(Code),
    /// MPP rejected the frame or the hardware failed.
    #[error("encode_put_frame failed: {0}")]
    Failed(Code),
}

/// `encode_get_packet` failed or had nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetPacketError {
    /// No packet within the output timeout (`MPP_ERR_TIMEOUT`, or `MPP_OK` with no packet).
    #[error("no packet from MPP within the timeout: {0}")]
    NotReady(Code),
    /// The call failed.
    #[error("encode_get_packet failed: {0}")]
    Failed(Code),
}

/// A buffer or buffer-group call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BufferError {
    /// `mpp_buffer_get` failed.
    #[error("MPP could not allocate a {size}-byte buffer: {code}")]
    Alloc {
        /// Bytes asked for.
        size: usize,
        /// MPP's return code.
        code: Code,
    },
    /// `mpp_buffer_group_get` failed.
    #[error("MPP could not create a buffer group: {0}")]
    Group(Code),
    /// `mpp_buffer_import` refused the DMA-buf.
    #[error("MPP could not import a {size}-byte DMA-buf: {code}")]
    Import {
        /// The buffer size given.
        size: usize,
        /// MPP's return code.
        code: Code,
    },
    /// `mpp_buffer_get_ptr` or a cache sync failed.
    #[error("MPP could not map or sync a buffer: {0}")]
    Map(Code),
    /// `mpp_packet_init_with_buffer` failed.
    #[error("MPP could not make a packet over a buffer: {0}")]
    Packet(Code),
}

/// Opens the MPP library (see [`Mpp::load`]).
pub(crate) fn load() -> Result<Arc<Mpp>, LoadError> {
    Mpp::load().map(Arc::new)
}

/// `mpp_create`.
pub(crate) fn create(lib: &Arc<Mpp>) -> Result<Arc<Context>, CreateError> {
    Context::create(lib)
        .map(Arc::new)
        .map_err(|c| CreateError::Failed(Code(c)))
}

/// `mpp_init(ctx, MPP_CTX_ENC, coding)`.
pub(crate) fn init_encoder(ctx: &Context, codec: Codec) -> Result<(), InitError> {
    let coding = match codec {
        Codec::H264 => ffi::MPP_VIDEO_CODING_AVC,
        Codec::H265 => ffi::MPP_VIDEO_CODING_HEVC,
    };
    check(ctx.init(ffi::MPP_CTX_ENC, coding)).map_err(|code| InitError::Refused { codec, code })
}

/// `control(MPP_SET_INPUT_TIMEOUT, &i32)`.
pub(crate) fn set_input_timeout(ctx: &Context, timeout: Timeout) -> Result<(), ControlError> {
    control(
        ctx.control_int(ffi::MPP_SET_INPUT_TIMEOUT, timeout.raw()),
        "MPP_SET_INPUT_TIMEOUT",
    )
}

/// `control(MPP_SET_OUTPUT_TIMEOUT, &i32)`.
pub(crate) fn set_output_timeout(ctx: &Context, timeout: Timeout) -> Result<(), ControlError> {
    control(
        ctx.control_int(ffi::MPP_SET_OUTPUT_TIMEOUT, timeout.raw()),
        "MPP_SET_OUTPUT_TIMEOUT",
    )
}

/// `control(MPP_ENC_SET_HEADER_MODE, &MPP_ENC_HEADER_MODE_EACH_IDR)`: parameter sets on
/// every IDR, so every segment starts a decoder on its own.
pub(crate) fn set_header_mode_each_idr(ctx: &Context) -> Result<(), ControlError> {
    control(
        ctx.control_int(
            ffi::MPP_ENC_SET_HEADER_MODE,
            ffi::MPP_ENC_HEADER_MODE_EACH_IDR,
        ),
        "MPP_ENC_SET_HEADER_MODE",
    )
}

/// `control(MPP_ENC_SET_SEI_CFG, &MPP_ENC_SEI_MODE_DISABLE)`. MPP starts in ONE_SEQ mode
/// (`mpp_enc_init_v2`), which puts its version string and rate-control settings in two SEI
/// NAL units before every IDR: bytes of metadata nobody asked to record, as gstmppenc also
/// decides.
pub(crate) fn disable_sei(ctx: &Context) -> Result<(), ControlError> {
    control(
        ctx.control_int(ffi::MPP_ENC_SET_SEI_CFG, ffi::MPP_ENC_SEI_MODE_DISABLE),
        "MPP_ENC_SET_SEI_CFG",
    )
}

/// `control(MPP_ENC_SET_IDR_FRAME, NULL)`.
pub(crate) fn request_idr(ctx: &Context) -> Result<(), ControlError> {
    control(
        ctx.control_none(ffi::MPP_ENC_SET_IDR_FRAME),
        "MPP_ENC_SET_IDR_FRAME",
    )
}

/// `control(MPP_ENC_GET_CFG, cfg)`.
pub(crate) fn get_cfg(ctx: &Context, cfg: &mut Cfg) -> Result<(), ControlError> {
    control(
        ctx.control_cfg(ffi::MPP_ENC_GET_CFG, cfg),
        "MPP_ENC_GET_CFG",
    )
}

/// `control(MPP_ENC_SET_CFG, cfg)`.
pub(crate) fn set_cfg(ctx: &Context, cfg: &mut Cfg) -> Result<(), ControlError> {
    control(
        ctx.control_cfg(ffi::MPP_ENC_SET_CFG, cfg),
        "MPP_ENC_SET_CFG",
    )
}

/// `reset`: drops every queued frame and pending packet.
pub(crate) fn reset(ctx: &Context) -> Result<(), ControlError> {
    control(ctx.reset(), "reset")
}

/// `mpp_enc_cfg_init`.
pub(crate) fn cfg_new(lib: &Arc<Mpp>) -> Result<Cfg, CfgError> {
    Cfg::new(lib).map_err(|c| CfgError::Init(Code(c)))
}

/// `mpp_enc_cfg_set_s32(cfg, key, value)`.
pub(crate) fn cfg_set_s32(cfg: &mut Cfg, key: &'static CStr, value: i32) -> Result<(), CfgError> {
    check(cfg.set_s32(key, value)).map_err(|code| CfgError::UnknownKey {
        key: key_name(key),
        code,
    })
}

/// `mpp_enc_cfg_set_u32(cfg, key, value)`.
pub(crate) fn cfg_set_u32(cfg: &mut Cfg, key: &'static CStr, value: u32) -> Result<(), CfgError> {
    check(cfg.set_u32(key, value)).map_err(|code| CfgError::UnknownKey {
        key: key_name(key),
        code,
    })
}

/// `mpp_enc_cfg_get_s32(cfg, key)`.
pub(crate) fn cfg_get_s32(cfg: &Cfg, key: &'static CStr) -> Result<i32, CfgError> {
    cfg.get_s32(key).map_err(|c| CfgError::UnknownKey {
        key: key_name(key),
        code: Code(c),
    })
}

/// `mpp_frame_init` plus its setters and `mpp_frame_set_buffer`.
pub(crate) fn frame_new(
    lib: &Arc<Mpp>,
    info: &FrameInfo,
    buffer: Option<&Buffer>,
) -> Result<Frame, FrameError> {
    Frame::new(lib, info, buffer).map_err(|c| FrameError::Init(Code(c)))
}

/// `mpp_packet_init_with_buffer` with length 0: a packet MPP encodes into.
pub(crate) fn output_packet(buffer: &Buffer) -> Result<OutputPacket, BufferError> {
    OutputPacket::new(buffer).map_err(|c| BufferError::Packet(Code(c)))
}

/// `mpp_meta_set_packet(mpp_frame_get_meta(frame), KEY_OUTPUT_PACKET, packet)`.
pub(crate) fn set_output_packet(frame: &Frame, packet: &OutputPacket) -> Result<(), FrameError> {
    check(frame.set_output_packet(packet)).map_err(FrameError::Meta)
}

/// `encode_put_frame`.
pub(crate) fn put_frame(ctx: &Context, frame: &Frame) -> Result<(), PutFrameError> {
    match ctx.put_frame(frame) {
        ffi::MPP_OK => Ok(()),
        c @ (ffi::MPP_NOK | ffi::MPP_ERR_BUFFER_FULL | ffi::MPP_ERR_TIMEOUT) => {
            Err(PutFrameError::Busy(Code(c)))
        }
        c => Err(PutFrameError::Failed(Code(c))),
    }
}

/// `encode_get_packet`: a packet, or why there is none. A packet returned alongside an error
/// code is released.
pub(crate) fn get_packet(ctx: &Arc<Context>) -> Result<PacketLease, GetPacketError> {
    match ctx.get_packet() {
        (ffi::MPP_OK, Some(packet)) => Ok(packet),
        (c @ (ffi::MPP_OK | ffi::MPP_ERR_TIMEOUT), _) => Err(GetPacketError::NotReady(Code(c))),
        (c, _) => Err(GetPacketError::Failed(Code(c))),
    }
}

/// `mpp_buffer_group_get_internal(DRM | CACHABLE)`: where frames that are not DMA-bufs are
/// copied to. MPP substitutes the allocator the board has (DMA heap, DRM or ION).
pub(crate) fn group_internal(lib: &Arc<Mpp>) -> Result<Arc<Group>, BufferError> {
    Group::internal(
        lib,
        ffi::MPP_BUFFER_TYPE_DRM | ffi::MPP_BUFFER_FLAGS_CACHABLE,
    )
    .map(Arc::new)
    .map_err(|c| BufferError::Group(Code(c)))
}

/// `mpp_buffer_get(group, size)`.
pub(crate) fn buffer_alloc(group: &Arc<Group>, size: usize) -> Result<Buffer, BufferError> {
    Buffer::alloc(group, size).map_err(|c| BufferError::Alloc {
        size,
        code: Code(c),
    })
}

/// `mpp_buffer_import` of a DMA-buf (`MPP_BUFFER_TYPE_EXT_DMA`).
pub(crate) fn buffer_import(
    lib: &Arc<Mpp>,
    fd: BorrowedFd<'_>,
    size: usize,
) -> Result<Buffer, BufferError> {
    Buffer::import_dmabuf(lib, fd, size).map_err(|c| BufferError::Import {
        size,
        code: Code(c),
    })
}

/// `mpp_buffer_get_ptr` + sync begin/end around `fill`.
pub(crate) fn buffer_write(
    buffer: &mut Buffer,
    fill: impl FnOnce(&mut [u8]),
) -> Result<(), BufferError> {
    buffer
        .write_with(fill)
        .map_err(|c| BufferError::Map(Code(c)))
}

fn check(ret: MppRet) -> Result<(), Code> {
    if ret == ffi::MPP_OK {
        Ok(())
    } else {
        Err(Code(ret))
    }
}

fn control(ret: MppRet, command: &'static str) -> Result<(), ControlError> {
    check(ret).map_err(|code| ControlError::Failed { command, code })
}

fn key_name(key: &'static CStr) -> &'static str {
    key.to_str().unwrap_or("<non-UTF-8 key>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_display_with_their_names() {
        assert_eq!(Code(-8).to_string(), "MPP_ERR_TIMEOUT (-8)");
        assert_eq!(Code(-1).to_string(), "MPP_NOK (-1)");
        assert_eq!(Code(-77).to_string(), "MPP error -77");
    }

    #[test]
    fn timeouts_are_clamped_to_what_mpp_accepts() {
        assert_eq!(Timeout::millis(0).raw(), 1);
        assert_eq!(Timeout::millis(500).raw(), 500);
        assert_eq!(Timeout::millis(u32::MAX).raw(), 8000);
        assert_eq!(Timeout::BLOCK.raw(), -1);
        assert_eq!(Timeout::NON_BLOCK.raw(), 0);
    }
}
