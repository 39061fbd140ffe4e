//! `VIDIOC_S_SELECTION`: the visible rectangle inside a coded (aligned) frame.

use std::os::fd::BorrowedFd;

use super::{IoctlError, ioctl, iowr};

/// `struct v4l2_selection` (64 bytes).
#[repr(C)]
struct RawSelection {
    type_: u32,
    target: u32,
    flags: u32,
    left: i32,
    top: i32,
    width: u32,
    height: u32,
    reserved: [u32; 9],
}

/// Sets the crop rectangle (`V4L2_SEL_TGT_CROP`) of `buf_type` to `width`x`height` at 0,0,
/// and returns the size the driver chose (it may adjust it).
/// Single-planar types are used for both APIs: the kernel maps them.
pub(crate) fn s_crop(
    fd: BorrowedFd<'_>,
    buf_type: u32,
    width: u32,
    height: u32,
) -> Result<(u32, u32), IoctlError> {
    let mut raw = RawSelection {
        type_: buf_type,
        target: SEL_TGT_CROP,
        flags: 0,
        left: 0,
        top: 0,
        width,
        height,
        reserved: [0; 9],
    };
    // SAFETY: `raw` is a live v4l2_selection, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_S_SELECTION", VIDIOC_S_SELECTION, &mut raw)? };
    Ok((raw.width, raw.height))
}

const SEL_TGT_CROP: u32 = 0;
const VIDIOC_S_SELECTION: u64 = iowr(95, std::mem::size_of::<RawSelection>());
const _: () = assert!(std::mem::size_of::<RawSelection>() == 64);
