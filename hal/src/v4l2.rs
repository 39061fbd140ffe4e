//! The `v4l2` sources: V4L2 stateful memory-to-memory encoders (`--source
//! v4l2-m2m:/dev/videoN`, e.g. the Raspberry Pi 4's bcm2835-codec), cameras that output H.264
//! themselves (`--source v4l2:/dev/videoN`, UVC), and raw capture nodes as encoder input
//! (`--input v4l2:/dev/videoN`).
//!
//! Layers (STYLE rule 9):
//! - `ioctl/`: hand-written `videodev2.h` structs and one wrapper per ioctl (the only
//!   `unsafe`), with layouts asserted at compile time.
//! - `queue.rs`: buffer queues whose types carry ownership: dequeued capture buffers are
//!   leases that requeue on drop, OUTPUT buffers keep a DMA-buf frame's lease until the
//!   device returns them.
//! - `encoder.rs` ([`M2mEncoder`], [`V4l2M2mSource`]) and `capture.rs`
//!   ([`V4l2CaptureSource`], [`V4l2FrameSource`]).
//!
//! Tested against the kernel's own drivers (vivid, vicodec) in a QEMU guest by
//! `scripts/test-v4l2-qemu.sh`; vicodec encodes FWHT rather than H.264, so that test covers
//! the V4L2 machinery and buffer ownership, while NAL handling is tested elsewhere.

mod capture;
mod encoder;
mod ioctl;
mod merge;
mod queue;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use capture::{V4l2CaptureSource, V4l2FrameSource};
pub use encoder::{EncodedBuffer, M2mConfig, M2mEncoder, M2mStats, V4l2M2mSource};
pub use ioctl::{Errno, IoctlError};

use crate::input::FrameSource;
use crate::{Codec, Encoder, FrameRate, HalError, SourceOptions};

/// What went wrong in a V4L2 source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum V4l2Error {
    /// The driver flagged a buffer `V4L2_BUF_FLAG_ERROR` (e.g. the CAPTURE buffer is too small
    /// for the frame).
    #[error("the V4L2 device flagged buffer {sequence} as failed")]
    BufferError {
        /// The buffer's sequence number.
        sequence: u32,
    },
    /// No OUTPUT buffer is free.
    #[error("every V4L2 OUTPUT buffer is queued")]
    Busy,
    /// The device does not offer the format asked for.
    #[error("{}: {message}", device.display())]
    Format {
        /// The device node.
        device: PathBuf,
        /// What was asked and what the device offered.
        message: String,
    },
    /// An ioctl failed.
    #[error(transparent)]
    Ioctl(#[from] IoctlError),
    /// A DMA-buf frame is not laid out as the device reads it.
    #[error("{0}")]
    Layout(String),
    /// `VIDIOC_REQBUFS` gave no buffers.
    #[error("{}: the driver allocated no buffers", device.display())]
    NoBuffers {
        /// The device node.
        device: PathBuf,
    },
    /// The node is not the kind of device asked for.
    #[error("{} ({card}) is not a {what}", device.display())]
    NotA {
        /// The device node.
        device: PathBuf,
        /// The driver's card name.
        card: String,
        /// What it should have been.
        what: &'static str,
    },
    /// The device node could not be opened.
    #[error("cannot open V4L2 device {}: {source}", device.display())]
    Open {
        /// The device node.
        device: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Several consecutive waits brought nothing.
    #[error("the V4L2 device produced nothing in {waits} waits of {ms} ms")]
    Stalled {
        /// Consecutive timeouts.
        waits: u32,
        /// The timeout of each.
        ms: u32,
    },
    /// A CAPTURE buffer's timestamp matches no frame queued on OUTPUT.
    #[error("a V4L2 packet has timestamp {pts}, which matches no queued frame")]
    TimestampMismatch {
        /// The timestamp.
        pts: u64,
    },
    /// Nothing came within the timeout.
    #[error("no V4L2 buffer within {ms} ms")]
    Timeout {
        /// The timeout.
        ms: u32,
    },
    /// The operation does not apply.
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

/// The bitstream format of an M2M encoder's CAPTURE queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodedFormat {
    /// vicodec's FWHT (the kernel's test codec).
    Fwht,
    /// H.264 with start codes (`V4L2_PIX_FMT_H264`).
    H264,
    /// H.265 with start codes (`V4L2_PIX_FMT_HEVC`).
    Hevc,
}

impl CodedFormat {
    fn fourcc(self) -> u32 {
        match self {
            CodedFormat::Fwht => ioctl::PIX_FMT_FWHT,
            CodedFormat::H264 => ioctl::PIX_FMT_H264,
            CodedFormat::Hevc => ioctl::PIX_FMT_HEVC,
        }
    }
}

/// Opens `v4l2-m2m:/dev/videoN[:WxH@FPS]` for `camseal run`.
pub(crate) fn open_m2m_spec(
    rest: &str,
    options: &SourceOptions,
) -> Result<Box<dyn Encoder>, HalError> {
    let (path, spec) = split_device(rest)?;
    let (width, height, fps) = match spec {
        Some(spec) => crate::parse_video_spec(spec)?,
        None => DEFAULT_M2M_SPEC,
    };
    let (config, input) = crate::m2m_setup(width, height, fps, options)?;
    Ok(Box::new(V4l2M2mSource::open(
        Path::new(path),
        &config,
        Some(input),
    )?))
}

/// Opens `v4l2:/dev/videoN[:WxH@FPS]` (a camera that outputs H.264) for `camseal run`.
pub(crate) fn open_capture_spec(
    rest: &str,
    options: &SourceOptions,
) -> Result<Box<dyn Encoder>, HalError> {
    if options.input.is_some() {
        return Err(HalError::InvalidConfig(
            "--input applies to encoders, not to a camera that outputs H.264".into(),
        ));
    }
    let (path, spec) = split_device(rest)?;
    let (size, fps) = match spec {
        Some(spec) => {
            let (w, h, fps) = crate::parse_video_spec(spec)?;
            (Some((w, h)), Some(fps))
        }
        None => (None, None),
    };
    let codec = options.codec.unwrap_or(Codec::H264);
    Ok(Box::new(V4l2CaptureSource::open(
        Path::new(path),
        codec,
        size,
        fps,
        options.duration,
    )?))
}

/// Opens `v4l2:/dev/videoN` as raw NV12 input at the encoder's size.
pub(crate) fn open_frame_input(
    rest: &str,
    width: u32,
    height: u32,
    fps: FrameRate,
    duration: Option<Duration>,
) -> Result<Box<dyn FrameSource>, HalError> {
    let (path, spec) = split_device(rest)?;
    if spec.is_some() {
        return Err(HalError::InvalidConfig(
            "--input takes the size of the encoder; give it on --source".into(),
        ));
    }
    Ok(Box::new(V4l2FrameSource::open(
        Path::new(path),
        width,
        height,
        fps,
        duration,
    )?))
}

/// `/dev/videoN[:spec]` → (path, spec).
fn split_device(rest: &str) -> Result<(&str, Option<&str>), HalError> {
    let (path, spec) = match rest.split_once(':') {
        Some((path, spec)) => (path, Some(spec)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(HalError::InvalidConfig(
            "a V4L2 source needs a device node, e.g. v4l2-m2m:/dev/video11".into(),
        ));
    }
    Ok((path, spec))
}

fn open_device(path: &Path) -> Result<ioctl::Device, V4l2Error> {
    ioctl::Device::open(path).map_err(|source| V4l2Error::Open {
        device: path.to_path_buf(),
        source,
    })
}

/// Whether `data` holds an IDR/IRAP slice.
fn has_keyframe(codec: Codec, data: &[u8]) -> bool {
    camseal_nal::nal_units(data).any(|nal| {
        camseal_nal::classify(codec, nal.payload).is_some_and(|i| i.is_vcl && i.is_keyframe)
    })
}

const DEFAULT_M2M_SPEC: (u32, u32, FrameRate) = (1280, 720, FrameRate { num: 30, den: 1 });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_split() {
        assert_eq!(
            split_device("/dev/video11").unwrap(),
            ("/dev/video11", None)
        );
        assert_eq!(
            split_device("/dev/video11:640x360@30").unwrap(),
            ("/dev/video11", Some("640x360@30"))
        );
        assert!(split_device("").is_err());
        assert!(split_device(":640x360").is_err());
    }

    #[test]
    fn missing_devices_are_one_clear_error() {
        let options = SourceOptions::default();
        for e in [
            open_m2m_spec("/dev/nonexistent-video11", &options).err(),
            open_capture_spec("/dev/nonexistent-video0", &options).err(),
        ] {
            let msg = e.unwrap().to_string();
            assert!(
                msg.starts_with("cannot open V4L2 device /dev/nonexistent"),
                "{msg}"
            );
            assert!(!msg.contains('\n'));
        }
    }
}
