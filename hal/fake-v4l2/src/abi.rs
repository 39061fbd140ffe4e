//! `linux/videodev2.h` transcribed again, independently of `camseal-hal`'s `ioctl.rs`: the
//! backend and this stand-in agree only if both match the header, so a wrong offset on
//! either side shows up as a failing test. LP64 only (the stand-in runs on the build host).

/// `struct v4l2_capability`.
#[repr(C)]
pub(crate) struct Capability {
    pub driver: [u8; 16],
    pub card: [u8; 32],
    pub bus_info: [u8; 32],
    pub version: u32,
    pub capabilities: u32,
    pub device_caps: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_fmtdesc`.
#[repr(C)]
pub(crate) struct FmtDesc {
    pub index: u32,
    pub type_: u32,
    pub flags: u32,
    pub description: [u8; 32],
    pub pixelformat: u32,
    pub mbus_code: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_format`: the type, then (aligned to 8, since `v4l2_window` holds pointers)
/// a 200-byte union read as bytes: `v4l2_pix_format` or the packed `v4l2_pix_format_mplane`.
#[repr(C)]
pub(crate) struct Format {
    pub type_: u32,
    _pad: u32,
    pub fmt: [u8; 200],
    _align: [u64; 0],
}

/// `v4l2_pix_format` / `v4l2_pix_format_mplane` field offsets inside the union.
pub(crate) mod pix {
    pub const WIDTH: usize = 0;
    pub const HEIGHT: usize = 4;
    pub const PIXELFORMAT: usize = 8;
    pub const FIELD: usize = 12;
    /// Single-planar: bytesperline, sizeimage.
    pub const BYTESPERLINE: usize = 16;
    pub const SIZEIMAGE: usize = 20;
    /// Multi-planar: `plane_fmt[i]` (20 bytes: sizeimage, bytesperline, 6 reserved u16)
    /// from offset 20, and `num_planes` (u8) at 180.
    pub const MP_PLANE: usize = 20;
    pub const MP_PLANE_SIZE: usize = 20;
    pub const MP_NUM_PLANES: usize = 180;
}

/// `struct v4l2_requestbuffers`.
#[repr(C)]
pub(crate) struct RequestBuffers {
    pub count: u32,
    pub type_: u32,
    pub memory: u32,
    pub capabilities: u32,
    pub flags: u8,
    pub reserved: [u8; 3],
}

/// `struct v4l2_buffer` (the C compiler pads after `field` and at the end; so does repr(C)).
#[repr(C)]
pub(crate) struct Buffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    pub tv_sec: i64,
    pub tv_usec: i64,
    pub timecode: [u32; 4],
    pub sequence: u32,
    pub memory: u32,
    /// `offset` / `userptr` / `planes` / `fd`.
    pub m: u64,
    pub length: u32,
    pub reserved2: u32,
    pub request_fd: i32,
}

/// `struct v4l2_plane`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Plane {
    pub bytesused: u32,
    pub length: u32,
    /// `mem_offset` / `userptr` / `fd`.
    pub m: u64,
    pub data_offset: u32,
    pub reserved: [u32; 11],
}

/// `struct v4l2_control`.
#[repr(C)]
pub(crate) struct Control {
    pub id: u32,
    pub value: i32,
}

/// `struct v4l2_encoder_cmd`.
#[repr(C)]
pub(crate) struct EncoderCmd {
    pub cmd: u32,
    pub flags: u32,
    pub raw: [u32; 8],
}

/// `struct v4l2_streamparm`: type, then `v4l2_outputparm` {capability, outputmode,
/// timeperframe {numerator, denominator}, ...} in a 200-byte union.
#[repr(C)]
pub(crate) struct StreamParm {
    pub type_: u32,
    pub capability: u32,
    pub mode: u32,
    pub numerator: u32,
    pub denominator: u32,
    pub rest: [u32; 46],
}

/// `struct v4l2_selection`.
#[repr(C)]
pub(crate) struct Selection {
    pub type_: u32,
    pub target: u32,
    pub flags: u32,
    pub left: i32,
    pub top: i32,
    pub width: u32,
    pub height: u32,
    pub reserved: [u32; 9],
}

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'V' as u64) << 8) | nr
}

use std::mem::size_of;
pub(crate) const VIDIOC_QUERYCAP: u64 = ioc(2, 0, size_of::<Capability>());
pub(crate) const VIDIOC_ENUM_FMT: u64 = ioc(3, 2, size_of::<FmtDesc>());
pub(crate) const VIDIOC_G_FMT: u64 = ioc(3, 4, size_of::<Format>());
pub(crate) const VIDIOC_S_FMT: u64 = ioc(3, 5, size_of::<Format>());
pub(crate) const VIDIOC_REQBUFS: u64 = ioc(3, 8, size_of::<RequestBuffers>());
pub(crate) const VIDIOC_QUERYBUF: u64 = ioc(3, 9, size_of::<Buffer>());
pub(crate) const VIDIOC_QBUF: u64 = ioc(3, 15, size_of::<Buffer>());
pub(crate) const VIDIOC_EXPBUF: u64 = ioc(3, 16, 64);
pub(crate) const VIDIOC_DQBUF: u64 = ioc(3, 17, size_of::<Buffer>());
pub(crate) const VIDIOC_STREAMON: u64 = ioc(1, 18, size_of::<i32>());
pub(crate) const VIDIOC_STREAMOFF: u64 = ioc(1, 19, size_of::<i32>());
pub(crate) const VIDIOC_G_PARM: u64 = ioc(3, 21, size_of::<StreamParm>());
pub(crate) const VIDIOC_S_PARM: u64 = ioc(3, 22, size_of::<StreamParm>());
pub(crate) const VIDIOC_G_CTRL: u64 = ioc(3, 27, size_of::<Control>());
pub(crate) const VIDIOC_S_CTRL: u64 = ioc(3, 28, size_of::<Control>());
pub(crate) const VIDIOC_ENCODER_CMD: u64 = ioc(3, 77, size_of::<EncoderCmd>());
pub(crate) const VIDIOC_S_SELECTION: u64 = ioc(3, 95, size_of::<Selection>());

// Sizes from the 6.1 headers on x86-64; request numbers as `v4l2-ctl --log-status` shows.
const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<Capability>() == 104);
    assert!(size_of::<FmtDesc>() == 64);
    assert!(size_of::<Format>() == 208);
    assert!(offset_of!(Format, fmt) == 8);
    assert!(size_of::<RequestBuffers>() == 20);
    assert!(size_of::<Buffer>() == 88);
    assert!(offset_of!(Buffer, tv_sec) == 24);
    assert!(offset_of!(Buffer, sequence) == 56);
    assert!(offset_of!(Buffer, m) == 64);
    assert!(offset_of!(Buffer, request_fd) == 80);
    assert!(size_of::<Plane>() == 64);
    assert!(offset_of!(Plane, data_offset) == 16);
    assert!(size_of::<EncoderCmd>() == 40);
    assert!(size_of::<StreamParm>() == 204);
    assert!(size_of::<Selection>() == 64);
    assert!(VIDIOC_QBUF == 0xc058_560f);
    assert!(VIDIOC_DQBUF == 0xc058_5611);
    assert!(VIDIOC_S_FMT == 0xc0d0_5605);
    assert!(VIDIOC_REQBUFS == 0xc014_5608);
    assert!(VIDIOC_S_CTRL == 0xc008_561c);
    assert!(VIDIOC_ENCODER_CMD == 0xc028_564d);
    assert!(VIDIOC_S_PARM == 0xc0cc_5616);
    assert!(VIDIOC_S_SELECTION == 0xc040_565f);
};

pub(crate) const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
pub(crate) const BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
pub(crate) const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
pub(crate) const BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = 10;
pub(crate) const MEMORY_MMAP: u32 = 1;
pub(crate) const MEMORY_DMABUF: u32 = 4;
pub(crate) const CAP_VIDEO_M2M_MPLANE: u32 = 0x0000_4000;
pub(crate) const CAP_VIDEO_M2M: u32 = 0x0000_8000;
pub(crate) const CAP_STREAMING: u32 = 0x0400_0000;
pub(crate) const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
pub(crate) const BUF_FLAG_MAPPED: u32 = 0x0000_0001;
pub(crate) const BUF_FLAG_QUEUED: u32 = 0x0000_0002;
pub(crate) const BUF_FLAG_DONE: u32 = 0x0000_0004;
pub(crate) const BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
pub(crate) const BUF_FLAG_ERROR: u32 = 0x0000_0040;
pub(crate) const BUF_FLAG_TIMESTAMP_COPY: u32 = 0x0000_4000;
pub(crate) const BUF_FLAG_LAST: u32 = 0x0010_0000;
pub(crate) const ENC_CMD_STOP: u32 = 1;
pub(crate) const SEL_TGT_CROP: u32 = 0;

pub(crate) const fn fourcc(t: &[u8; 4]) -> u32 {
    t[0] as u32 | (t[1] as u32) << 8 | (t[2] as u32) << 16 | (t[3] as u32) << 24
}
pub(crate) const PIX_FMT_H264: u32 = fourcc(b"H264");
pub(crate) const PIX_FMT_NV12: u32 = fourcc(b"NV12");
pub(crate) const PIX_FMT_NV21: u32 = fourcc(b"NV21");
pub(crate) const PIX_FMT_YUV420: u32 = fourcc(b"YU12");
pub(crate) const PIX_FMT_YVU420: u32 = fourcc(b"YV12");
pub(crate) const PIX_FMT_NV12M: u32 = fourcc(b"NM12");
pub(crate) const PIX_FMT_NV21M: u32 = fourcc(b"NM21");
pub(crate) const PIX_FMT_YUV420M: u32 = fourcc(b"YM12");
pub(crate) const PIX_FMT_YVU420M: u32 = fourcc(b"YM21");

const CODEC_BASE: u32 = 0x0099_0900;
pub(crate) const CID_B_FRAMES: u32 = CODEC_BASE + 202;
pub(crate) const CID_GOP_SIZE: u32 = CODEC_BASE + 203;
pub(crate) const CID_BITRATE_MODE: u32 = CODEC_BASE + 206;
pub(crate) const CID_BITRATE: u32 = CODEC_BASE + 207;
pub(crate) const CID_FRAME_RC_ENABLE: u32 = CODEC_BASE + 215;
pub(crate) const CID_HEADER_MODE: u32 = CODEC_BASE + 216;
pub(crate) const CID_REPEAT_SEQ_HEADER: u32 = CODEC_BASE + 226;
pub(crate) const CID_FORCE_KEY_FRAME: u32 = CODEC_BASE + 229;
pub(crate) const CID_H264_I_PERIOD: u32 = CODEC_BASE + 358;
pub(crate) const CID_H264_LEVEL: u32 = CODEC_BASE + 359;
pub(crate) const CID_H264_PROFILE: u32 = CODEC_BASE + 363;
pub(crate) const CID_PREPEND_SPSPPS_TO_IDR: u32 = CODEC_BASE + 644;
pub(crate) const HEADER_MODE_SEPARATE: i32 = 0;
pub(crate) const HEADER_MODE_JOINED: i32 = 1;
