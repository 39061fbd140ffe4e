//! `VIDIOC_ENCODER_CMD`.

use std::os::fd::BorrowedFd;

use super::{Errno, IoctlError, ioctl, iowr};

/// Why the stop command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EncoderCmdError {
    /// The driver has no encoder commands (`ENOTTY`): not a stateful encoder.
    #[error("the device does not take encoder commands")]
    Unsupported,
    /// The call failed.
    #[error(transparent)]
    Failed(IoctlError),
}

/// `struct v4l2_encoder_cmd` (40 bytes).
#[repr(C)]
struct RawEncoderCmd {
    cmd: u32,
    flags: u32,
    raw: [u32; 8],
}

/// `V4L2_ENC_CMD_STOP`: finish the frames queued so far, then mark the last CAPTURE buffer
/// with `V4L2_BUF_FLAG_LAST`.
pub(crate) fn encoder_stop(fd: BorrowedFd<'_>) -> Result<(), EncoderCmdError> {
    let mut raw = RawEncoderCmd {
        cmd: ENC_CMD_STOP,
        flags: 0,
        raw: [0; 8],
    };
    // SAFETY: `raw` is a live v4l2_encoder_cmd, as the request encodes.
    match unsafe { ioctl(fd, "VIDIOC_ENCODER_CMD", VIDIOC_ENCODER_CMD, &mut raw) } {
        Ok(()) => Ok(()),
        Err(IoctlError {
            errno: Errno(libc::ENOTTY),
            ..
        }) => Err(EncoderCmdError::Unsupported),
        Err(e) => Err(EncoderCmdError::Failed(e)),
    }
}

const ENC_CMD_STOP: u32 = 1;
const VIDIOC_ENCODER_CMD: u64 = iowr(77, std::mem::size_of::<RawEncoderCmd>());
const _: () = assert!(VIDIOC_ENCODER_CMD == 0xc028_564d);
