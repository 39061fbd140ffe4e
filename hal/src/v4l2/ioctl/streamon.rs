//! `VIDIOC_STREAMON` / `VIDIOC_STREAMOFF`.

use std::os::fd::BorrowedFd;

use super::{IoctlError, ioctl, iow};

pub(crate) fn streamon(fd: BorrowedFd<'_>, buf_type: u32) -> Result<(), IoctlError> {
    let mut t = buf_type as i32;
    // SAFETY: the argument is an int, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_STREAMON", VIDIOC_STREAMON, &mut t) }
}

/// Stops a queue; every queued buffer is returned to the application (dequeued state).
pub(crate) fn streamoff(fd: BorrowedFd<'_>, buf_type: u32) -> Result<(), IoctlError> {
    let mut t = buf_type as i32;
    // SAFETY: the argument is an int, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_STREAMOFF", VIDIOC_STREAMOFF, &mut t) }
}

const VIDIOC_STREAMON: u64 = iow(18, std::mem::size_of::<i32>());
const VIDIOC_STREAMOFF: u64 = iow(19, std::mem::size_of::<i32>());
const _: () = assert!(VIDIOC_STREAMOFF == 0x4004_5613);
