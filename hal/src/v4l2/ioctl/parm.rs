//! `VIDIOC_S_PARM`: the frame interval of a queue.

use std::os::fd::BorrowedFd;

use super::{IoctlError, ioctl, iowr};

/// `struct v4l2_streamparm` (204 bytes; `timeperframe` at 12 for both directions).
#[repr(C)]
struct RawStreamParm {
    type_: u32,
    parm: [u32; 50],
}

/// Sets the time per frame to `num / den` seconds; returns what the driver chose.
pub(crate) fn s_parm(
    fd: BorrowedFd<'_>,
    buf_type: u32,
    num: u32,
    den: u32,
) -> Result<(u32, u32), IoctlError> {
    let mut raw = RawStreamParm {
        type_: buf_type,
        parm: [0; 50],
    };
    // capability, mode, then timeperframe {numerator, denominator}.
    raw.parm[2] = num;
    raw.parm[3] = den;
    // SAFETY: `raw` is a live v4l2_streamparm, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_S_PARM", VIDIOC_S_PARM, &mut raw)? };
    Ok((raw.parm[2], raw.parm[3]))
}

const VIDIOC_S_PARM: u64 = iowr(22, std::mem::size_of::<RawStreamParm>());
const _: () = assert!(VIDIOC_S_PARM == 0xc0cc_5616);
