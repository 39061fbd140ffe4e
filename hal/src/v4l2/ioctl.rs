//! The V4L2 ioctls camseal uses, with hand-written `#[repr(C)]` structs transcribed from
//! `linux/videodev2.h` (layouts checked at compile time against the sizes the 6.1 headers
//! give on LP64 and on 32-bit ARM, ILP32 with the glibc default 32-bit `time_t`), one wrapper
//! per call in `ioctl/`. All of the V4L2 backend's `unsafe` is in this directory.
//!
//! Pointer-sized members (`unsigned long`, pointers, `struct timeval`) use the C types, so
//! the structs and the request numbers (which encode the struct size) follow the target.
//! Only little-endian targets are supported: unions are read through their low bytes.

#![allow(unsafe_code)]

mod ctrl;
mod dqbuf;
mod encoder_cmd;
mod expbuf;
mod fmt;
mod mmap;
mod parm;
mod poll;
mod qbuf;
mod querybuf;
mod querycap;
mod reqbufs;
mod selection;
mod streamon;

use std::fmt as stdfmt;
use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub(crate) use ctrl::s_ctrl;
pub(crate) use dqbuf::{DqbufError, dqbuf};
pub(crate) use encoder_cmd::{EncoderCmdError, encoder_stop};
pub(crate) use expbuf::expbuf;
pub(crate) use fmt::{Format, enum_fmt, g_fmt, s_fmt};
pub(crate) use mmap::Mapping;
pub(crate) use parm::s_parm;
pub(crate) use poll::poll;
pub(crate) use qbuf::{QueueBuffer, qbuf};
pub(crate) use querybuf::querybuf;
pub(crate) use querycap::querycap;
pub(crate) use reqbufs::reqbufs;
pub(crate) use selection::s_crop;
pub(crate) use streamon::{streamoff, streamon};

#[cfg(not(target_endian = "little"))]
compile_error!("the V4L2 unions here are read through their low bytes: little-endian only");

/// An `errno` value from a failed ioctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl stdfmt::Display for Errno {
    fn fmt(&self, f: &mut stdfmt::Formatter<'_>) -> stdfmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

/// A V4L2 call that failed, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{call} failed: {errno}")]
pub struct IoctlError {
    /// The ioctl, e.g. `VIDIOC_S_FMT`.
    pub call: &'static str,
    /// The error number.
    pub errno: Errno,
}

/// An open V4L2 device node, non-blocking (DQBUF returns EAGAIN; waits go through poll).
#[derive(Debug)]
pub(crate) struct Device {
    fd: OwnedFd,
    path: PathBuf,
}

impl Device {
    pub(crate) fn open(path: &Path) -> std::io::Result<Device> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Device {
            fd: OwnedFd::from(file),
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Buffer types (`enum v4l2_buf_type`).
pub(crate) const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
pub(crate) const BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
pub(crate) const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
pub(crate) const BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = 10;
/// Memory kinds (`enum v4l2_memory`).
pub(crate) const MEMORY_MMAP: u32 = 1;
pub(crate) const MEMORY_DMABUF: u32 = 4;
/// `enum v4l2_field`: progressive.
pub(crate) const FIELD_NONE: u32 = 1;
/// Capabilities (`V4L2_CAP_*`).
pub(crate) const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
pub(crate) const CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
pub(crate) const CAP_VIDEO_M2M_MPLANE: u32 = 0x0000_4000;
pub(crate) const CAP_VIDEO_M2M: u32 = 0x0000_8000;
pub(crate) const CAP_STREAMING: u32 = 0x0400_0000;
pub(crate) const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
/// Buffer flags (`V4L2_BUF_FLAG_*`).
pub(crate) const BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
pub(crate) const BUF_FLAG_ERROR: u32 = 0x0000_0040;
pub(crate) const BUF_FLAG_LAST: u32 = 0x0010_0000;
/// Pixel formats (fourcc).
pub(crate) const PIX_FMT_NV12: u32 = fourcc(b"NV12");
/// NV12 with luma and chroma in two memory planes (`V4L2_PIX_FMT_NV12M`): the only NV12
/// MediaTek's and Samsung MFC's encoders take.
pub(crate) const PIX_FMT_NV12M: u32 = fourcc(b"NM12");
pub(crate) const PIX_FMT_H264: u32 = fourcc(b"H264");
pub(crate) const PIX_FMT_HEVC: u32 = fourcc(b"HEVC");
pub(crate) const PIX_FMT_FWHT: u32 = fourcc(b"FWHT");
/// Controls (`V4L2_CID_MPEG_VIDEO_*`, codec class base 0x00990900).
pub(crate) const CID_B_FRAMES: u32 = CID_CODEC_BASE + 202;
pub(crate) const CID_GOP_SIZE: u32 = CID_CODEC_BASE + 203;
pub(crate) const CID_BITRATE_MODE: u32 = CID_CODEC_BASE + 206;
pub(crate) const CID_BITRATE: u32 = CID_CODEC_BASE + 207;
pub(crate) const CID_FRAME_RC_ENABLE: u32 = CID_CODEC_BASE + 215;
pub(crate) const CID_HEADER_MODE: u32 = CID_CODEC_BASE + 216;
pub(crate) const CID_REPEAT_SEQ_HEADER: u32 = CID_CODEC_BASE + 226;
pub(crate) const CID_FORCE_KEY_FRAME: u32 = CID_CODEC_BASE + 229;
pub(crate) const CID_H264_I_PERIOD: u32 = CID_CODEC_BASE + 358;
pub(crate) const CID_H264_LEVEL: u32 = CID_CODEC_BASE + 359;
pub(crate) const CID_H264_PROFILE: u32 = CID_CODEC_BASE + 363;
pub(crate) const CID_HEVC_PROFILE: u32 = CID_CODEC_BASE + 615;
pub(crate) const CID_PREPEND_SPSPPS_TO_IDR: u32 = CID_CODEC_BASE + 644;
/// `V4L2_MPEG_VIDEO_BITRATE_MODE_CBR`.
pub(crate) const BITRATE_MODE_CBR: i32 = 1;
/// `V4L2_MPEG_VIDEO_HEADER_MODE_JOINED_WITH_1ST_FRAME`.
pub(crate) const HEADER_MODE_JOINED_WITH_1ST_FRAME: i32 = 1;
/// `V4L2_MPEG_VIDEO_H264_PROFILE_HIGH`.
pub(crate) const H264_PROFILE_HIGH: i32 = 4;
/// `V4L2_MPEG_VIDEO_HEVC_PROFILE_MAIN`.
pub(crate) const HEVC_PROFILE_MAIN: i32 = 0;
const CID_CODEC_BASE: u32 = 0x0099_0900;

/// Packs a V4L2 fourcc.
pub(crate) const fn fourcc(tag: &[u8; 4]) -> u32 {
    tag[0] as u32 | (tag[1] as u32) << 8 | (tag[2] as u32) << 16 | (tag[3] as u32) << 24
}

/// A fourcc as text, e.g. "NV12".
pub(crate) fn fourcc_name(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// `struct v4l2_buffer` (88 bytes on LP64, 68 on 32-bit ARM). `repr(C)` inserts the padding
/// the C compiler does (after `field` and at the end on LP64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawBuffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    /// `struct timeval timestamp`: `time_t` and `suseconds_t` are `long` (32-bit on armv7).
    pub tv_sec: libc::time_t,
    pub tv_usec: libc::suseconds_t,
    pub timecode: [u32; 4],
    pub sequence: u32,
    pub memory: u32,
    /// Union: `offset` (MMAP, low 32 bits), `userptr` (`unsigned long`), `fd` (DMABUF, low
    /// 32 bits) or `planes` pointer (multi-planar): pointer-sized.
    pub m: usize,
    pub length: u32,
    pub reserved2: u32,
    pub request_fd: i32,
}

/// `struct v4l2_plane` (64 bytes on LP64, 60 on 32-bit ARM).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawPlane {
    pub bytesused: u32,
    pub length: u32,
    /// Union: `mem_offset` (MMAP), `userptr` (`unsigned long`) or `fd` (DMABUF): the low 32
    /// bits of a pointer-sized word.
    pub m: usize,
    pub data_offset: u32,
    pub reserved: [u32; 11],
}

/// A buffer as a call fills it in, with its planes for the multi-planar API.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BufferInfo {
    pub index: u32,
    pub flags: u32,
    pub sequence: u32,
    pub tv_sec: i64,
    pub tv_usec: i64,
    /// Per plane (one for single-planar): (bytesused, length, mmap offset).
    pub planes: [(u32, u32, u32); MAX_PLANES],
    /// Per plane: where the payload starts (`data_offset`; 0 for single-planar buffers,
    /// which have no such field). venus writes its bitstream at a non-zero offset.
    pub data_offsets: [u32; MAX_PLANES],
    pub num_planes: usize,
}

pub(crate) const MAX_PLANES: usize = 4;

pub(crate) fn is_mplane(buf_type: u32) -> bool {
    matches!(
        buf_type,
        BUF_TYPE_VIDEO_CAPTURE_MPLANE | BUF_TYPE_VIDEO_OUTPUT_MPLANE
    )
}

impl BufferInfo {
    fn from_raw(raw: &RawBuffer, planes: &[RawPlane]) -> BufferInfo {
        let mut info = BufferInfo {
            index: raw.index,
            flags: raw.flags,
            sequence: raw.sequence,
            tv_sec: widen(raw.tv_sec),
            tv_usec: widen(raw.tv_usec),
            ..BufferInfo::default()
        };
        if is_mplane(raw.type_) {
            let n = (raw.length as usize).min(MAX_PLANES).min(planes.len());
            for (i, p) in planes[..n].iter().enumerate() {
                info.planes[i] = (p.bytesused, p.length, p.m as u32);
                info.data_offsets[i] = p.data_offset;
            }
            info.num_planes = n;
        } else {
            info.planes[0] = (raw.bytesused, raw.length, raw.m as u32);
            info.num_planes = 1;
        }
        info
    }
}

/// A `long` (`time_t`, `suseconds_t`) as `i64`: lossless on every target, and a no-op on
/// LP64, hence the allowance.
#[allow(clippy::useless_conversion)]
pub(crate) fn widen(v: libc::c_long) -> i64 {
    i64::from(v)
}

/// An `i64` as a `long`, saturating where `long` is 32 bits (a no-op on LP64).
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
pub(crate) fn narrow(v: i64) -> libc::c_long {
    libc::c_long::try_from(v).unwrap_or(if v < 0 {
        libc::c_long::MIN
    } else {
        libc::c_long::MAX
    })
}

/// Calls `ioctl(fd, request, arg)`, retrying on EINTR.
///
/// # Safety
/// `arg` must point at a live value of the type `request` encodes (its size is part of the
/// request number), valid for reads and writes.
unsafe fn ioctl<T>(
    fd: BorrowedFd<'_>,
    call: &'static str,
    request: u64,
    arg: *mut T,
) -> Result<(), IoctlError> {
    loop {
        // SAFETY: per the contract, `arg` matches `request`; the fd is open (borrowed).
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
        if ret != -1 {
            return Ok(());
        }
        let errno = Errno::last();
        if errno.0 != libc::EINTR {
            return Err(IoctlError { call, errno });
        }
    }
}

/// `_IOWR('V', nr, size)`.
const fn iowr(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | ((b'V' as u64) << 8) | nr
}

/// `_IOR('V', nr, size)`.
const fn ior(nr: u64, size: usize) -> u64 {
    (2 << 30) | ((size as u64) << 16) | ((b'V' as u64) << 8) | nr
}

/// `_IOW('V', nr, size)`.
const fn iow(nr: u64, size: usize) -> u64 {
    (1 << 30) | ((size as u64) << 16) | ((b'V' as u64) << 8) | nr
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<RawBuffer>() == 88);
    assert!(offset_of!(RawBuffer, tv_sec) == 24);
    assert!(offset_of!(RawBuffer, sequence) == 56);
    assert!(offset_of!(RawBuffer, memory) == 60);
    assert!(offset_of!(RawBuffer, m) == 64);
    assert!(offset_of!(RawBuffer, length) == 72);
    assert!(size_of::<RawPlane>() == 64);
    assert!(offset_of!(RawPlane, m) == 8);
    assert!(offset_of!(RawPlane, data_offset) == 16);
    // Request numbers as the 6.1 headers compute them.
    assert!(iowr(15, size_of::<RawBuffer>()) == 0xc058_560f);
    assert!(iow(18, size_of::<i32>()) == 0x4004_5612);
    assert!(ior(0, 104) == 0x8068_5600);
};

/// 32-bit ARM with glibc's default 32-bit `time_t`: `long` and pointers are 4 bytes and
/// aligned to 4, so nothing is padded (sizes from `pahole` of the armhf 6.1 headers).
#[cfg(target_pointer_width = "32")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(
        size_of::<libc::time_t>() == 4,
        "64-bit time_t on 32-bit is not supported"
    );
    assert!(size_of::<RawBuffer>() == 68);
    assert!(offset_of!(RawBuffer, tv_sec) == 20);
    assert!(offset_of!(RawBuffer, sequence) == 44);
    assert!(offset_of!(RawBuffer, memory) == 48);
    assert!(offset_of!(RawBuffer, m) == 52);
    assert!(offset_of!(RawBuffer, length) == 56);
    assert!(size_of::<RawPlane>() == 60);
    assert!(offset_of!(RawPlane, m) == 8);
    assert!(offset_of!(RawPlane, data_offset) == 12);
    assert!(iowr(15, size_of::<RawBuffer>()) == 0xc044_560f);
    assert!(iow(18, size_of::<i32>()) == 0x4004_5612);
    assert!(ior(0, 104) == 0x8068_5600);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourccs_round_trip() {
        assert_eq!(PIX_FMT_FWHT, 0x5448_5746);
        assert_eq!(fourcc_name(PIX_FMT_NV12), "NV12");
        assert_eq!(fourcc_name(0x0000_0001), "????");
    }

    #[test]
    fn opening_a_missing_node_is_an_io_error() {
        let e = Device::open(Path::new("/nonexistent/video99")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_regular_file_is_not_a_v4l2_device() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let dev = Device::open(file.path()).unwrap();
        let e = querycap(dev.as_fd()).unwrap_err();
        assert_eq!(e.call, "VIDIOC_QUERYCAP");
        assert_eq!(e.errno, Errno(libc::ENOTTY));
    }
}
