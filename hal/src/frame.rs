//! Raw pictures for memory-to-memory encoders.
//!
//! A [`RawFrame`] describes one picture (format, size, plane layout) and owns a lease on the
//! memory holding it, a [`FrameBuffer`]. The encoder keeps the frame until the hardware has
//! read it; dropping the frame drops the lease, which gives the buffer back to whoever filled
//! it (a capture queue, a pool). The layout is checked against the buffer's length when the
//! frame is built, so a backend never hands hardware an out-of-bounds plane.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::HalError;

/// One raw picture and the lease on its memory.
pub struct RawFrame {
    format: PixelFormat,
    width: u32,
    height: u32,
    planes: [Plane; MAX_PLANES],
    plane_count: usize,
    /// Presentation time in 90 kHz ticks, carried through to the packet.
    pub pts: u64,
    buffer: Box<dyn FrameBuffer>,
}

impl RawFrame {
    /// Describes a picture in `buffer`, checking that every plane lies inside it.
    ///
    /// `planes` must have exactly [`PixelFormat::plane_count`] entries.
    pub fn new(
        format: PixelFormat,
        width: u32,
        height: u32,
        planes: &[Plane],
        pts: u64,
        buffer: Box<dyn FrameBuffer>,
    ) -> Result<RawFrame, HalError> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(HalError::InvalidConfig(format!(
                "a {format} frame needs an even, non-zero size, not {width}x{height}"
            )));
        }
        if planes.len() != format.plane_count() {
            return Err(HalError::InvalidConfig(format!(
                "a {format} frame has {} planes, not {}",
                format.plane_count(),
                planes.len()
            )));
        }
        let len = buffer.memory().len();
        for (i, plane) in planes.iter().enumerate() {
            let (row_bytes, rows) = format.plane_size(i, width, height);
            if plane.stride < row_bytes {
                return Err(HalError::InvalidConfig(format!(
                    "plane {i} of a {width}x{height} {format} frame has stride {} < {row_bytes}",
                    plane.stride
                )));
            }
            // The last row only needs `row_bytes`, not a full stride.
            let end = rows
                .saturating_sub(1)
                .checked_mul(plane.stride)
                .and_then(|n| n.checked_add(row_bytes))
                .and_then(|n| n.checked_add(plane.offset));
            if end.is_none_or(|end| end > len) {
                return Err(HalError::InvalidConfig(format!(
                    "plane {i} of a {width}x{height} {format} frame does not fit in its {len}-byte buffer"
                )));
            }
        }
        let mut all = [Plane::default(); MAX_PLANES];
        all[..planes.len()].copy_from_slice(planes);
        Ok(RawFrame {
            format,
            width,
            height,
            planes: all,
            plane_count: planes.len(),
            pts,
            buffer,
        })
    }

    /// A tightly packed NV12 picture with luma stride `stride`: the Y plane at offset 0 and
    /// the interleaved CbCr plane right after `stride * height` bytes.
    pub fn nv12(
        width: u32,
        height: u32,
        stride: usize,
        pts: u64,
        buffer: Box<dyn FrameBuffer>,
    ) -> Result<RawFrame, HalError> {
        let luma = stride.checked_mul(height as usize).ok_or_else(|| {
            HalError::InvalidConfig(format!("an NV12 frame of {width}x{height} is too large"))
        })?;
        let planes = [
            Plane { offset: 0, stride },
            Plane {
                offset: luma,
                stride,
            },
        ];
        RawFrame::new(PixelFormat::Nv12, width, height, &planes, pts, buffer)
    }

    /// Pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Plane layout within the buffer, one entry per plane of the format.
    pub fn planes(&self) -> &[Plane] {
        &self.planes[..self.plane_count]
    }

    /// The memory holding the picture.
    pub fn memory(&self) -> FrameMemory<'_> {
        self.buffer.memory()
    }

    /// Gives up the frame description and returns the lease, e.g. to recycle the buffer.
    pub fn into_buffer(self) -> Box<dyn FrameBuffer> {
        self.buffer
    }
}

impl fmt::Debug for RawFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawFrame")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("planes", &self.planes())
            .field("pts", &self.pts)
            .field("memory", &self.memory())
            .finish()
    }
}

/// Raw pixel layouts an encoder may accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PixelFormat {
    /// 4:2:0, a Y plane then one interleaved CbCr plane (`MPP_FMT_YUV420SP`, `V4L2_PIX_FMT_NV12`).
    Nv12,
}

impl PixelFormat {
    /// Number of planes in a frame of this format.
    pub const fn plane_count(self) -> usize {
        match self {
            PixelFormat::Nv12 => 2,
        }
    }

    /// Bytes per row and number of rows of plane `plane` at the given picture size.
    fn plane_size(self, plane: usize, width: u32, height: u32) -> (usize, usize) {
        match (self, plane) {
            // Interleaved CbCr: width/2 pairs of bytes per row, height/2 rows.
            (PixelFormat::Nv12, 1) => (width as usize, height as usize / 2),
            (PixelFormat::Nv12, _) => (width as usize, height as usize),
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Nv12 => "NV12",
        })
    }
}

/// Where one plane starts in the buffer and how far apart its rows are, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Plane {
    /// Byte offset of the plane's first row.
    pub offset: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
}

/// A lease on the memory of one raw picture.
///
/// Implementations give the memory back (requeue a capture buffer, return it to a pool) when
/// dropped.
pub trait FrameBuffer: Send + 'static {
    /// The memory, as a DMA-buf for hardware to import or as bytes the CPU can read.
    fn memory(&self) -> FrameMemory<'_>;
}

/// The two kinds of memory a raw picture can live in.
#[derive(Clone, Copy, Debug)]
pub enum FrameMemory<'a> {
    /// A DMA-buf of `len` bytes; the encoder imports the fd (MPP `EXT_DMA`, V4L2 `DMABUF`).
    DmaBuf {
        /// The buffer's file descriptor.
        fd: BorrowedFd<'a>,
        /// The buffer's size in bytes.
        len: usize,
    },
    /// Memory mapped into this process.
    Mapped(&'a [u8]),
}

impl FrameMemory<'_> {
    /// Size of the memory in bytes.
    pub fn len(&self) -> usize {
        match self {
            FrameMemory::DmaBuf { len, .. } => *len,
            FrameMemory::Mapped(bytes) => bytes.len(),
        }
    }

    /// Whether the memory is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FrameBuffer for Vec<u8> {
    fn memory(&self) -> FrameMemory<'_> {
        FrameMemory::Mapped(self)
    }
}

/// A DMA-buf owned by the frame: a file descriptor (typically a `dup` of a capture buffer's
/// exported fd) and the buffer's size. Dropping it closes the descriptor.
#[derive(Debug)]
pub struct DmaBuf {
    fd: OwnedFd,
    len: usize,
}

impl DmaBuf {
    /// Wraps a DMA-buf file descriptor of `len` bytes.
    pub fn new(fd: OwnedFd, len: usize) -> DmaBuf {
        DmaBuf { fd, len }
    }
}

impl FrameBuffer for DmaBuf {
    fn memory(&self) -> FrameMemory<'_> {
        FrameMemory::DmaBuf {
            fd: self.fd.as_fd(),
            len: self.len,
        }
    }
}

const MAX_PLANES: usize = 3;

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn nv12_layout_is_checked_against_the_buffer() {
        let (w, h) = (64u32, 32u32);
        let exact = vec![0u8; 64 * 32 * 3 / 2];
        let frame = RawFrame::nv12(w, h, 64, 7, Box::new(exact)).unwrap();
        assert_eq!(
            frame.planes(),
            &[
                Plane {
                    offset: 0,
                    stride: 64
                },
                Plane {
                    offset: 2048,
                    stride: 64
                }
            ]
        );
        assert_eq!(frame.memory().len(), 3072);
        assert_eq!(frame.pts, 7);

        let short = vec![0u8; 64 * 32 * 3 / 2 - 1];
        assert!(matches!(
            RawFrame::nv12(w, h, 64, 0, Box::new(short)),
            Err(HalError::InvalidConfig(_))
        ));
        let narrow = vec![0u8; 1 << 16];
        assert!(RawFrame::nv12(w, h, 63, 0, Box::new(narrow)).is_err());
        assert!(RawFrame::nv12(63, h, 64, 0, Box::new(vec![0u8; 1 << 16])).is_err());
        assert!(RawFrame::nv12(0, 0, 64, 0, Box::new(vec![0u8; 1 << 16])).is_err());
        assert!(RawFrame::nv12(w, h, usize::MAX, 0, Box::new(vec![0u8; 1 << 16])).is_err());
    }

    #[test]
    fn padded_last_row_needs_no_full_stride() {
        // Stride 80 for width 64: the last chroma row ends 16 bytes before a full stride.
        let len = 80 * 32 + 80 * 15 + 64;
        let frame = RawFrame::nv12(64, 32, 80, 0, Box::new(vec![0u8; len]));
        assert!(frame.is_ok());
        assert!(RawFrame::nv12(64, 32, 80, 0, Box::new(vec![0u8; len - 1])).is_err());
    }

    #[test]
    fn wrong_plane_count_is_rejected() {
        let planes = [Plane {
            offset: 0,
            stride: 64,
        }];
        let r = RawFrame::new(
            PixelFormat::Nv12,
            64,
            32,
            &planes,
            0,
            Box::new(vec![0u8; 4096]),
        );
        assert!(matches!(r, Err(HalError::InvalidConfig(_))));
    }

    #[test]
    fn dmabuf_frame_borrows_its_fd_and_drop_returns_the_lease() {
        struct Counted(DmaBuf, Arc<AtomicUsize>);
        impl FrameBuffer for Counted {
            fn memory(&self) -> FrameMemory<'_> {
                self.0.memory()
            }
        }
        impl Drop for Counted {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }

        // Any fd stands in for a DMA-buf here: the frame only carries it.
        let file = tempfile::tempfile().unwrap();
        let raw = file.as_raw_fd();
        let returned = Arc::new(AtomicUsize::new(0));
        let buffer = Counted(DmaBuf::new(OwnedFd::from(file), 4096), returned.clone());
        let frame = RawFrame::nv12(32, 32, 32, 0, Box::new(buffer)).unwrap();
        match frame.memory() {
            FrameMemory::DmaBuf { fd, len } => {
                assert_eq!(fd.as_raw_fd(), raw);
                assert_eq!(len, 4096);
            }
            FrameMemory::Mapped(_) => panic!("expected a DMA-buf"),
        }
        assert_eq!(returned.load(Ordering::SeqCst), 0);
        drop(frame);
        assert_eq!(returned.load(Ordering::SeqCst), 1);
    }
}
