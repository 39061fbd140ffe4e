//! `VIDIOC_QBUF`.

use std::os::fd::BorrowedFd;

use super::{IoctlError, MAX_PLANES, RawBuffer, RawPlane, ioctl, iowr, is_mplane};

/// What to queue: an index, its memory, and (for OUTPUT) the payload and timestamp.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct QueueBuffer {
    pub index: u32,
    pub memory: u32,
    /// Bytes used per plane (0 for CAPTURE buffers).
    pub bytesused: [u32; MAX_PLANES],
    /// DMA-buf fd and length per plane, for `MEMORY_DMABUF`.
    pub dmabuf: [(i32, u32); MAX_PLANES],
    /// Where each plane's data starts (multi-planar only; `bytesused` includes it).
    pub data_offset: [u32; MAX_PLANES],
    pub num_planes: usize,
    pub tv_sec: i64,
    pub tv_usec: i64,
    pub flags: u32,
}

/// Queues a buffer. For DMABUF the fds must stay open until the buffer is dequeued again.
pub(crate) fn qbuf(fd: BorrowedFd<'_>, buf_type: u32, q: &QueueBuffer) -> Result<(), IoctlError> {
    let mut planes = [RawPlane::default(); MAX_PLANES];
    let n = q.num_planes.clamp(1, MAX_PLANES);
    let mut raw = RawBuffer {
        index: q.index,
        type_: buf_type,
        memory: q.memory,
        flags: q.flags,
        field: super::FIELD_NONE,
        tv_sec: super::narrow(q.tv_sec),
        tv_usec: super::narrow(q.tv_usec),
        ..RawBuffer::default()
    };
    if is_mplane(buf_type) {
        for (i, plane) in planes.iter_mut().take(n).enumerate() {
            plane.bytesused = q.bytesused[i];
            plane.data_offset = q.data_offset[i];
            if q.memory == super::MEMORY_DMABUF {
                plane.m = q.dmabuf[i].0 as u32 as usize;
                plane.length = q.dmabuf[i].1;
            }
        }
        raw.m = planes.as_mut_ptr() as usize;
        raw.length = n as u32;
    } else {
        raw.bytesused = q.bytesused[0];
        if q.memory == super::MEMORY_DMABUF {
            raw.m = q.dmabuf[0].0 as u32 as usize;
            raw.length = q.dmabuf[0].1;
        }
    }
    // SAFETY: `raw` is a live v4l2_buffer; `m.planes` (multi-planar) points at `length` live
    // v4l2_plane structs that outlive the call.
    unsafe { ioctl(fd, "VIDIOC_QBUF", VIDIOC_QBUF, &mut raw) }
}

const VIDIOC_QBUF: u64 = iowr(15, std::mem::size_of::<RawBuffer>());
#[cfg(target_pointer_width = "64")]
const _: () = assert!(VIDIOC_QBUF == 0xc058_560f);
#[cfg(target_pointer_width = "32")]
const _: () = assert!(VIDIOC_QBUF == 0xc044_560f);
