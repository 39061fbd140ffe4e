//! `VIDIOC_S_CTRL`.

use std::os::fd::BorrowedFd;

use super::{IoctlError, ioctl, iowr};

/// `struct v4l2_control`.
#[repr(C)]
struct RawControl {
    id: u32,
    value: i32,
}

pub(crate) fn s_ctrl(fd: BorrowedFd<'_>, id: u32, value: i32) -> Result<(), IoctlError> {
    let mut raw = RawControl { id, value };
    // SAFETY: `raw` is a live v4l2_control, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_S_CTRL", VIDIOC_S_CTRL, &mut raw) }
}

const VIDIOC_S_CTRL: u64 = iowr(28, std::mem::size_of::<RawControl>());
const _: () = assert!(VIDIOC_S_CTRL == 0xc008_561c);
