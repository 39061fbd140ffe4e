//! `VIDIOC_DQBUF` on a non-blocking fd.

use std::os::fd::BorrowedFd;

use super::{
    BufferInfo, Errno, IoctlError, MAX_PLANES, RawBuffer, RawPlane, ioctl, iowr, is_mplane,
};

/// Why no buffer was dequeued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DqbufError {
    /// Nothing is ready yet (`EAGAIN`).
    #[error("no buffer ready")]
    NotReady,
    /// The last buffer was already dequeued after a drain (`EPIPE`).
    #[error("the queue has delivered its last buffer")]
    Stopped,
    /// The call failed.
    #[error(transparent)]
    Failed(IoctlError),
}

pub(crate) fn dqbuf(
    fd: BorrowedFd<'_>,
    buf_type: u32,
    memory: u32,
) -> Result<BufferInfo, DqbufError> {
    let mut planes = [RawPlane::default(); MAX_PLANES];
    let mut raw = RawBuffer {
        type_: buf_type,
        memory,
        ..RawBuffer::default()
    };
    if is_mplane(buf_type) {
        raw.m = planes.as_mut_ptr() as usize;
        raw.length = MAX_PLANES as u32;
    }
    // SAFETY: `raw` is a live v4l2_buffer; `m.planes` (multi-planar) points at `length` live
    // v4l2_plane structs that outlive the call.
    match unsafe { ioctl(fd, "VIDIOC_DQBUF", VIDIOC_DQBUF, &mut raw) } {
        Ok(()) => Ok(BufferInfo::from_raw(&raw, &planes)),
        Err(IoctlError {
            errno: Errno(libc::EAGAIN),
            ..
        }) => Err(DqbufError::NotReady),
        Err(IoctlError {
            errno: Errno(libc::EPIPE),
            ..
        }) => Err(DqbufError::Stopped),
        Err(e) => Err(DqbufError::Failed(e)),
    }
}

const VIDIOC_DQBUF: u64 = iowr(17, std::mem::size_of::<RawBuffer>());
#[cfg(target_pointer_width = "64")]
const _: () = assert!(VIDIOC_DQBUF == 0xc058_5611);
#[cfg(target_pointer_width = "32")]
const _: () = assert!(VIDIOC_DQBUF == 0xc044_5611);
