//! `VIDIOC_QUERYCAP`.

use std::os::fd::BorrowedFd;

use super::{CAP_DEVICE_CAPS, IoctlError, ioctl, ior};

/// What a device says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Capability {
    pub driver: String,
    pub card: String,
    /// The capabilities of this node (`device_caps` when the driver fills it in).
    pub caps: u32,
}

/// `struct v4l2_capability` (104 bytes).
#[repr(C)]
struct RawCapability {
    driver: [u8; 16],
    card: [u8; 32],
    bus_info: [u8; 32],
    version: u32,
    capabilities: u32,
    device_caps: u32,
    reserved: [u32; 3],
}

pub(crate) fn querycap(fd: BorrowedFd<'_>) -> Result<Capability, IoctlError> {
    let mut raw = RawCapability {
        driver: [0; 16],
        card: [0; 32],
        bus_info: [0; 32],
        version: 0,
        capabilities: 0,
        device_caps: 0,
        reserved: [0; 3],
    };
    // SAFETY: `raw` is a live v4l2_capability-sized struct, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_QUERYCAP", VIDIOC_QUERYCAP, &mut raw)? };
    let caps = if raw.capabilities & CAP_DEVICE_CAPS != 0 {
        raw.device_caps
    } else {
        raw.capabilities
    };
    Ok(Capability {
        driver: c_string(&raw.driver),
        card: c_string(&raw.card),
        caps,
    })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

const VIDIOC_QUERYCAP: u64 = ior(0, std::mem::size_of::<RawCapability>());
const _: () = assert!(std::mem::size_of::<RawCapability>() == 104);
