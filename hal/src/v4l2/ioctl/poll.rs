//! `poll(2)` on a device fd.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::{Errno, IoctlError};

/// Which directions are ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PollEvents {
    /// A CAPTURE buffer can be dequeued (`POLLIN`).
    pub readable: bool,
    /// An OUTPUT buffer can be dequeued (`POLLOUT`).
    pub writable: bool,
    /// An error or hang-up (`POLLERR`/`POLLHUP`): e.g. nothing queued on a streaming queue.
    pub error: bool,
}

/// Waits up to `timeout_ms` (-1 forever) for the device; all false on timeout.
pub(crate) fn poll(fd: BorrowedFd<'_>, timeout_ms: i32) -> Result<PollEvents, IoctlError> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLOUT | libc::POLLPRI,
        revents: 0,
    };
    loop {
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n >= 0 {
            break;
        }
        let errno = Errno::last();
        if errno.0 != libc::EINTR {
            return Err(IoctlError {
                call: "poll",
                errno,
            });
        }
    }
    Ok(PollEvents {
        readable: pfd.revents & libc::POLLIN != 0,
        writable: pfd.revents & libc::POLLOUT != 0,
        error: pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0,
    })
}
