//! `VIDIOC_EXPBUF`: a DMA-buf fd for one plane of an MMAP buffer.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use super::{IoctlError, ioctl, iowr};

/// `struct v4l2_exportbuffer` (64 bytes).
#[repr(C)]
struct RawExportBuffer {
    type_: u32,
    index: u32,
    plane: u32,
    flags: u32,
    fd: i32,
    reserved: [u32; 11],
}

pub(crate) fn expbuf(
    fd: BorrowedFd<'_>,
    buf_type: u32,
    index: u32,
    plane: u32,
) -> Result<OwnedFd, IoctlError> {
    let mut raw = RawExportBuffer {
        type_: buf_type,
        index,
        plane,
        flags: (libc::O_CLOEXEC | libc::O_RDWR) as u32,
        fd: -1,
        reserved: [0; 11],
    };
    // SAFETY: `raw` is a live v4l2_exportbuffer, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_EXPBUF", VIDIOC_EXPBUF, &mut raw)? };
    if raw.fd < 0 {
        return Err(IoctlError {
            call: "VIDIOC_EXPBUF",
            errno: super::Errno(libc::EBADF),
        });
    }
    // SAFETY: on success the kernel installed a new descriptor in `raw.fd`, owned by nobody
    // else; wrapping it makes this the one owner that closes it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw.fd) })
}

const VIDIOC_EXPBUF: u64 = iowr(16, std::mem::size_of::<RawExportBuffer>());
const _: () = assert!(VIDIOC_EXPBUF == 0xc040_5610);
