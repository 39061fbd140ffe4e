//! `VIDIOC_QUERYBUF`: where an MMAP buffer's planes are.

use std::os::fd::BorrowedFd;

use super::{BufferInfo, IoctlError, MAX_PLANES, RawBuffer, RawPlane, ioctl, iowr, is_mplane};

pub(crate) fn querybuf(
    fd: BorrowedFd<'_>,
    buf_type: u32,
    memory: u32,
    index: u32,
) -> Result<BufferInfo, IoctlError> {
    let mut planes = [RawPlane::default(); MAX_PLANES];
    let mut raw = RawBuffer {
        index,
        type_: buf_type,
        memory,
        ..RawBuffer::default()
    };
    if is_mplane(buf_type) {
        raw.m = planes.as_mut_ptr() as usize;
        raw.length = MAX_PLANES as u32;
    }
    // SAFETY: `raw` is a live v4l2_buffer; for the multi-planar API its `m.planes` points at
    // `length` live v4l2_plane structs, which outlive the call.
    unsafe { ioctl(fd, "VIDIOC_QUERYBUF", VIDIOC_QUERYBUF, &mut raw)? };
    Ok(BufferInfo::from_raw(&raw, &planes))
}

pub(crate) const VIDIOC_QUERYBUF: u64 = iowr(9, std::mem::size_of::<RawBuffer>());
