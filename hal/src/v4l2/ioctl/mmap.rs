//! `mmap` of an MMAP buffer plane.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::{Errno, IoctlError};

/// One mapped plane, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; access goes through
// `&self` / `&mut self` under the queue's ownership rules (see `bytes`).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&self` only reads.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of the buffer at `offset` (from `VIDIOC_QUERYBUF`), read-write.
    pub(crate) fn new(fd: BorrowedFd<'_>, offset: u32, len: usize) -> Result<Mapping, IoctlError> {
        if len == 0 {
            return Err(IoctlError {
                call: "mmap",
                errno: Errno(libc::EINVAL),
            });
        }
        // SAFETY: a fresh shared mapping chosen by the kernel (NULL hint); it aliases no Rust
        // object, and `offset`/`len` come from the driver for this buffer.
        let ptr = unsafe {
            // mmap64: the offset is a `u32` cookie, which a 32-bit `off_t` cannot hold whole.
            libc::mmap64(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                libc::off64_t::from(offset),
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(IoctlError {
                call: "mmap",
                errno: Errno::last(),
            });
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The first `len` bytes (clamped to the mapping).
    ///
    /// The queue only calls this for buffers it holds dequeued: the device writes a buffer
    /// only while it is queued, so the bytes do not change under the borrow.
    pub(crate) fn bytes(&self, len: usize) -> &[u8] {
        // SAFETY: `ptr` maps `self.len` readable bytes for as long as `self` lives, and the
        // length is clamped to it.
        unsafe { std::slice::from_raw_parts(self.ptr, len.min(self.len)) }
    }

    /// The whole mapping, to fill before queuing (the buffer is not queued: see `bytes`).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` maps `self.len` writable bytes; `&mut self` makes this the only
        // borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
