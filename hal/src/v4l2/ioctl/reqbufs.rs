//! `VIDIOC_REQBUFS`.

use std::os::fd::BorrowedFd;

use super::{IoctlError, ioctl, iowr};

/// `struct v4l2_requestbuffers` (20 bytes).
#[repr(C)]
struct RawRequestBuffers {
    count: u32,
    type_: u32,
    memory: u32,
    capabilities: u32,
    flags: u8,
    reserved: [u8; 3],
}

/// Asks for `count` buffers of `memory` kind (0 frees them); returns how many were allocated.
pub(crate) fn reqbufs(
    fd: BorrowedFd<'_>,
    buf_type: u32,
    memory: u32,
    count: u32,
) -> Result<u32, IoctlError> {
    let mut raw = RawRequestBuffers {
        count,
        type_: buf_type,
        memory,
        capabilities: 0,
        flags: 0,
        reserved: [0; 3],
    };
    // SAFETY: `raw` is a live v4l2_requestbuffers, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_REQBUFS", VIDIOC_REQBUFS, &mut raw)? };
    Ok(raw.count)
}

const VIDIOC_REQBUFS: u64 = iowr(8, std::mem::size_of::<RawRequestBuffers>());
const _: () = assert!(VIDIOC_REQBUFS == 0xc014_5608);
