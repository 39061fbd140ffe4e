//! V4L2 buffer queues, with buffer ownership in the types (STYLE rule 10).
//!
//! - [`CaptureQueue`]: MMAP buffers the device fills (encoded packets, camera frames). A
//!   dequeued buffer is a [`CaptureLease`]; dropping the lease queues the buffer again (or
//!   frees it if the queue has stopped), from whichever thread drops it.
//! - [`OutputQueue`]: buffers the application fills (raw frames into an M2M encoder), as MMAP
//!   (frames are copied in) or DMABUF (a frame's DMA-buf is queued as is, and the frame's
//!   lease is kept until the device hands the buffer back). A frame that cannot be queued is
//!   handed back with the error.
//!
//! Every buffer is in one [`BufState`].

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::V4l2Error;
use super::ioctl::{
    self, BufferInfo, Device, DqbufError, Format, MEMORY_DMABUF, MEMORY_MMAP, Mapping, QueueBuffer,
};
use crate::{FrameMemory, RawFrame};

/// Where a buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BufState {
    /// Held by the application (a lease is alive).
    Dequeued,
    /// Being filled by the application before queuing.
    Filling,
    /// Owned by the application, unused.
    Free,
    /// Owned by the device.
    Queued,
}

/// A queue of MMAP buffers the device fills.
pub(crate) struct CaptureQueue {
    shared: Arc<CaptureShared>,
}

struct CaptureShared {
    device: Arc<Device>,
    buf_type: u32,
    /// Per buffer: its mapped planes.
    maps: Vec<Vec<Arc<Mapping>>>,
    /// Per buffer: its first plane exported as a DMA-buf, when asked for.
    exported: Vec<Option<Arc<OwnedFd>>>,
    state: Mutex<CaptureState>,
}

struct CaptureState {
    slots: Vec<BufState>,
    streaming: bool,
}

impl CaptureShared {
    fn lock(&self) -> MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CaptureQueue {
    /// Allocates and maps `count` MMAP buffers (the driver may give more or fewer), and
    /// exports each as a DMA-buf if `export`.
    pub(crate) fn new(
        device: Arc<Device>,
        buf_type: u32,
        count: u32,
        export: bool,
    ) -> Result<CaptureQueue, V4l2Error> {
        let fd = device.as_fd();
        let n = ioctl::reqbufs(fd, buf_type, MEMORY_MMAP, count)?;
        if n == 0 {
            return Err(V4l2Error::NoBuffers {
                device: device.path().to_path_buf(),
            });
        }
        let mut maps = Vec::new();
        let mut exported = Vec::new();
        for index in 0..n {
            let info = ioctl::querybuf(fd, buf_type, MEMORY_MMAP, index)?;
            let mut planes = Vec::new();
            for &(_, length, offset) in &info.planes[..info.num_planes] {
                planes.push(Arc::new(Mapping::new(fd, offset, length as usize)?));
            }
            maps.push(planes);
            exported.push(if export {
                Some(Arc::new(ioctl::expbuf(fd, buf_type, index, 0)?))
            } else {
                None
            });
        }
        Ok(CaptureQueue {
            shared: Arc::new(CaptureShared {
                device,
                buf_type,
                maps,
                exported,
                state: Mutex::new(CaptureState {
                    slots: vec![BufState::Free; n as usize],
                    streaming: false,
                }),
            }),
        })
    }

    /// Number of buffers.
    pub(crate) fn len(&self) -> usize {
        self.shared.maps.len()
    }

    /// Queues every free buffer and starts streaming.
    pub(crate) fn start(&self) -> Result<(), V4l2Error> {
        let fd = self.shared.device.as_fd();
        let mut state = self.shared.lock();
        for (index, slot) in state.slots.iter_mut().enumerate() {
            if *slot == BufState::Free {
                queue_capture(fd, self.shared.buf_type, index as u32)?;
                *slot = BufState::Queued;
            }
        }
        ioctl::streamon(fd, self.shared.buf_type)?;
        state.streaming = true;
        Ok(())
    }

    /// Stops streaming; buffers the device held become free, leases stay valid.
    pub(crate) fn stop(&self) -> Result<(), V4l2Error> {
        let mut state = self.shared.lock();
        if !state.streaming {
            return Ok(());
        }
        state.streaming = false;
        for slot in state.slots.iter_mut() {
            if *slot == BufState::Queued {
                *slot = BufState::Free;
            }
        }
        ioctl::streamoff(self.shared.device.as_fd(), self.shared.buf_type)?;
        Ok(())
    }

    /// A filled buffer, if one is ready.
    pub(crate) fn dequeue(&self) -> Result<Option<(BufferInfo, CaptureLease)>, DqbufError> {
        let fd = self.shared.device.as_fd();
        let info = match ioctl::dqbuf(fd, self.shared.buf_type, MEMORY_MMAP) {
            Ok(info) => info,
            Err(DqbufError::NotReady) => return Ok(None),
            Err(e) => return Err(e),
        };
        let index = info.index as usize;
        let Some(planes) = self.shared.maps.get(index) else {
            return Err(DqbufError::Failed(ioctl::IoctlError {
                call: "VIDIOC_DQBUF",
                errno: ioctl::Errno(libc::EINVAL),
            }));
        };
        if let Some(slot) = self.shared.lock().slots.get_mut(index) {
            *slot = BufState::Dequeued;
        }
        let bytesused = info.planes[0].0 as usize;
        let lease = CaptureLease {
            map: Arc::clone(&planes[0]),
            dmabuf: self.shared.exported[index].clone(),
            bytesused,
            // The payload starts at `data_offset` (venus puts its bitstream there); an offset
            // past the payload (a driver bug) gives an empty buffer rather than a panic.
            start: (info.data_offsets[0] as usize).min(bytesused),
            index: info.index,
            shared: Arc::clone(&self.shared),
        };
        Ok(Some((info, lease)))
    }

    /// How many buffers the device holds.
    pub(crate) fn queued(&self) -> usize {
        self.shared
            .lock()
            .slots
            .iter()
            .filter(|s| **s == BufState::Queued)
            .count()
    }
}

impl Drop for CaptureQueue {
    fn drop(&mut self) {
        // Leases may outlive the queue; they only need the shared part, which stays. Nothing
        // to report the error to from Drop.
        let _ = self.stop();
    }
}

/// A dequeued capture buffer, read in place; queued again when dropped.
pub(crate) struct CaptureLease {
    shared: Arc<CaptureShared>,
    map: Arc<Mapping>,
    dmabuf: Option<Arc<OwnedFd>>,
    bytesused: usize,
    /// `data_offset`: where the payload starts in the plane.
    start: usize,
    index: u32,
}

impl CaptureLease {
    /// The bytes the device wrote: `[data_offset, bytesused)` of the plane (`bytesused`
    /// counts from the start of the plane, offset included, per `v4l2_plane`).
    pub(crate) fn bytes(&self) -> &[u8] {
        // The buffer is dequeued while this lease lives (see `Mapping::bytes`).
        let all = self.map.bytes(self.bytesused);
        all.get(self.start..).unwrap_or_default()
    }

    /// The whole buffer as a DMA-buf (for queues created with `export`), and its size.
    pub(crate) fn dmabuf(&self) -> Option<(BorrowedFd<'_>, usize)> {
        self.dmabuf.as_ref().map(|fd| (fd.as_fd(), self.map.len()))
    }

    /// The raw fd number of the exported DMA-buf, for logs and tests.
    pub(crate) fn dmabuf_raw(&self) -> Option<i32> {
        self.dmabuf.as_ref().map(|fd| fd.as_raw_fd())
    }
}

impl Drop for CaptureLease {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let index = self.index as usize;
        let next = if state.streaming
            && queue_capture(self.shared.device.as_fd(), self.shared.buf_type, self.index).is_ok()
        {
            BufState::Queued
        } else {
            // Stopped (or the device is gone): the buffer simply becomes free.
            BufState::Free
        };
        if let Some(slot) = state.slots.get_mut(index) {
            *slot = next;
        }
    }
}

fn queue_capture(fd: BorrowedFd<'_>, buf_type: u32, index: u32) -> Result<(), ioctl::IoctlError> {
    let q = QueueBuffer {
        index,
        memory: MEMORY_MMAP,
        num_planes: 1,
        ..QueueBuffer::default()
    };
    ioctl::qbuf(fd, buf_type, &q)
}

/// The raw-frame queue of an M2M encoder.
pub(crate) struct OutputQueue {
    device: Arc<Device>,
    buf_type: u32,
    memory: u32,
    format: Format,
    slots: Vec<OutSlot>,
    streaming: bool,
}

/// One OUTPUT buffer. Field order is drop order: the frame lease (whose DMA-buf the device
/// may reference) goes after nothing else needs it.
struct OutSlot {
    state: BufState,
    /// MMAP: one mapping per memory plane (two for NV12M).
    maps: Vec<Mapping>,
    /// DMABUF: the fd last queued in this slot. vb2 keeps a buffer's import while the same
    /// DMA-buf comes back to the same index, and re-imports (map, pin, cache maintenance)
    /// when it changes, so a frame goes to the slot that last held its buffer.
    last_fd: Option<i32>,
    held: Option<RawFrame>,
}

impl OutputQueue {
    /// `count` buffers of `memory` (MMAP or DMABUF) for frames in `format`.
    pub(crate) fn new(
        device: Arc<Device>,
        buf_type: u32,
        memory: u32,
        count: u32,
        format: Format,
    ) -> Result<OutputQueue, V4l2Error> {
        let fd = device.as_fd();
        let n = ioctl::reqbufs(fd, buf_type, memory, count)?;
        if n == 0 {
            return Err(V4l2Error::NoBuffers {
                device: device.path().to_path_buf(),
            });
        }
        let mut slots = Vec::new();
        for index in 0..n {
            let mut maps = Vec::new();
            if memory == MEMORY_MMAP {
                let info = ioctl::querybuf(fd, buf_type, memory, index)?;
                for &(_, length, offset) in &info.planes[..info.num_planes.min(format.num_planes)] {
                    maps.push(Mapping::new(fd, offset, length as usize)?);
                }
            }
            slots.push(OutSlot {
                state: BufState::Free,
                maps,
                last_fd: None,
                held: None,
            });
        }
        Ok(OutputQueue {
            device,
            buf_type,
            memory,
            format,
            slots,
            streaming: false,
        })
    }

    pub(crate) fn memory(&self) -> u32 {
        self.memory
    }

    pub(crate) fn start(&mut self) -> Result<(), V4l2Error> {
        ioctl::streamon(self.device.as_fd(), self.buf_type)?;
        self.streaming = true;
        Ok(())
    }

    /// Stops the queue; the device gives every buffer back, so held frames are released.
    pub(crate) fn stop(&mut self) -> Result<(), V4l2Error> {
        if !self.streaming {
            return Ok(());
        }
        self.streaming = false;
        let result = ioctl::streamoff(self.device.as_fd(), self.buf_type);
        for slot in &mut self.slots {
            slot.state = BufState::Free;
            slot.held = None;
        }
        result.map_err(V4l2Error::from)
    }

    /// A free slot: the one that last held DMA-buf `fd` if free, else one that never held a
    /// DMA-buf, else any free one.
    fn pick_slot(&self, fd: Option<i32>) -> Option<usize> {
        let free = |s: &&OutSlot| s.state == BufState::Free;
        let position =
            |pred: &dyn Fn(&OutSlot) -> bool| self.slots.iter().position(|s| free(&s) && pred(s));
        fd.and_then(|fd| position(&|s| s.last_fd == Some(fd)))
            .or_else(|| position(&|s| s.last_fd.is_none()))
            .or_else(|| position(&|_| true))
    }

    /// The negotiated format as planes.
    fn layout(&self) -> Layout {
        let n = self.format.num_planes.clamp(1, 2);
        Layout {
            height: self.format.height,
            planes: self.format.planes[..n]
                .iter()
                .map(|&(bpl, size)| LayoutPlane { bpl, size })
                .collect(),
        }
    }

    /// Whether a buffer is free to take a frame.
    pub(crate) fn has_free(&self) -> bool {
        self.slots.iter().any(|s| s.state == BufState::Free)
    }

    /// Buffers the device holds.
    pub(crate) fn queued(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state == BufState::Queued)
            .count()
    }

    /// Queues `frame` with timestamp `(sec, usec)`; on failure the frame comes back.
    pub(crate) fn queue(
        &mut self,
        frame: RawFrame,
        sec: i64,
        usec: i64,
    ) -> Result<(), Box<(RawFrame, V4l2Error)>> {
        let dmabuf_fd = match frame.memory() {
            FrameMemory::DmaBuf { fd, .. } => Some(fd.as_raw_fd()),
            FrameMemory::Mapped(_) => None,
        };
        let Some(index) = self.pick_slot(dmabuf_fd) else {
            return Err(Box::new((frame, V4l2Error::Busy)));
        };
        let layout = self.layout();
        let planes = layout.planes.len();
        let mut q = QueueBuffer {
            index: index as u32,
            memory: self.memory,
            num_planes: planes,
            tv_sec: sec,
            tv_usec: usec,
            ..QueueBuffer::default()
        };
        let slot = &mut self.slots[index];
        slot.state = BufState::Filling;
        let prepared = match (self.memory, frame.memory()) {
            (MEMORY_DMABUF, FrameMemory::DmaBuf { fd, len }) => {
                match check_dmabuf_layout(&frame, &layout, len) {
                    Ok(()) => {
                        let len = u32::try_from(len).unwrap_or(u32::MAX);
                        // Multi-planar (NV12M) from one DMA-buf: the same fd in each plane,
                        // the chroma plane starting at its offset (`data_offset`, which
                        // `bytesused` includes, per `v4l2_plane`).
                        let frame_planes = frame.planes();
                        for (i, p) in layout.planes.iter().enumerate() {
                            let offset = if i == 0 {
                                0
                            } else {
                                u32::try_from(frame_planes[i].offset).unwrap_or(u32::MAX)
                            };
                            q.dmabuf[i] = (fd.as_raw_fd(), len);
                            q.data_offset[i] = offset;
                            q.bytesused[i] = offset.saturating_add(p.size).min(len);
                        }
                        slot.last_fd = Some(fd.as_raw_fd());
                        Ok(true)
                    }
                    Err(e) => Err(e),
                }
            }
            (MEMORY_MMAP, FrameMemory::Mapped(bytes)) => {
                if slot.maps.len() == planes {
                    copy_nv12(&frame, bytes, &mut slot.maps, &layout);
                    for (i, (p, map)) in layout.planes.iter().zip(&slot.maps).enumerate() {
                        q.bytesused[i] = p.size.min(map.len() as u32);
                    }
                    Ok(false)
                } else {
                    Err(V4l2Error::Unsupported("an OUTPUT buffer without a mapping"))
                }
            }
            (MEMORY_DMABUF, FrameMemory::Mapped(_)) => Err(V4l2Error::Unsupported(
                "a mapped frame on a DMABUF OUTPUT queue",
            )),
            _ => Err(V4l2Error::Unsupported(
                "a DMA-buf frame on an MMAP OUTPUT queue",
            )),
        };
        let keep = match prepared {
            Ok(keep) => keep,
            Err(e) => {
                slot.state = BufState::Free;
                return Err(Box::new((frame, e)));
            }
        };
        if let Err(e) = ioctl::qbuf(self.device.as_fd(), self.buf_type, &q) {
            slot.state = BufState::Free;
            return Err(Box::new((frame, e.into())));
        }
        slot.state = BufState::Queued;
        // A DMA-buf frame stays with the device until DQBUF; a copied one is done.
        slot.held = keep.then_some(frame);
        Ok(())
    }

    /// Takes back every buffer the device has finished with (releasing their frames);
    /// returns how many.
    pub(crate) fn reclaim(&mut self) -> Result<usize, V4l2Error> {
        let mut n = 0;
        loop {
            match ioctl::dqbuf(self.device.as_fd(), self.buf_type, self.memory) {
                Ok(info) => {
                    if let Some(slot) = self.slots.get_mut(info.index as usize) {
                        slot.state = BufState::Free;
                        slot.held = None;
                    }
                    n += 1;
                }
                Err(DqbufError::NotReady | DqbufError::Stopped) => return Ok(n),
                Err(DqbufError::Failed(e)) => return Err(e.into()),
            }
        }
    }
}

impl Drop for OutputQueue {
    fn drop(&mut self) {
        // STREAMOFF first, so the device lets go of the DMA-bufs before their leases drop.
        let _ = self.stop();
    }
}

/// A DMA-buf frame must sit as the OUTPUT format says: luma at 0 with `bytesperline`, chroma
/// right after `bytesperline * height` with the same stride.
fn check_dmabuf_layout(frame: &RawFrame, layout: &Layout, len: usize) -> Result<(), V4l2Error> {
    let planes = frame.planes();
    let luma = layout.planes[0];
    let strides_match = planes[0].offset == 0
        && planes[0].stride == luma.bpl as usize
        && layout
            .planes
            .get(1)
            .zip(planes.get(1))
            .is_none_or(|(c, f)| f.stride == c.bpl as usize);
    // Single-planar NV12: chroma right after the driver's luma size. NV12M: anywhere after
    // the luma plane (each plane gets its own offset), as long as the whole plane fits.
    let chroma_ok = match (layout.planes.len(), planes.get(1)) {
        (1, Some(c)) => c.offset == luma.bpl as usize * layout.height as usize,
        (_, Some(c)) => c.offset >= luma.size as usize,
        (_, None) => true,
    };
    if !strides_match || !chroma_ok {
        return Err(V4l2Error::Layout(format!(
            "a DMA-buf frame with planes {planes:?} does not match the encoder's layout \
             ({} bytes per line, {} rows)",
            luma.bpl, layout.height
        )));
    }
    // vb2 refuses (EINVAL at QBUF) a plane smaller than the format's `sizeimage`; venus rounds
    // sizeimage up to 4 KiB, so a frame of exactly width*height*3/2 bytes can be too small.
    let end = match (layout.planes.len(), planes.get(1)) {
        (1, _) => luma.size as usize,
        (_, Some(c)) => c.offset + layout.planes[1].size as usize,
        (_, None) => luma.size as usize,
    };
    if len < end {
        return Err(V4l2Error::Layout(format!(
            "a DMA-buf frame of {len} bytes is smaller than the {end} bytes the encoder's \
             format needs (sizeimage); allocate frames of the size the driver reports"
        )));
    }
    Ok(())
}

/// How the driver wants OUTPUT frames: per memory plane, bytes per line and size.
#[derive(Clone, Debug)]
struct Layout {
    height: u32,
    planes: Vec<LayoutPlane>,
}

#[derive(Clone, Copy, Debug)]
struct LayoutPlane {
    bpl: u32,
    size: u32,
}

/// Copies an NV12 frame into an OUTPUT buffer: one plane with chroma after
/// `bpl * height` (NV12), or luma and chroma in planes of their own (NV12M). Rows that would
/// not fit are skipped rather than panicking.
fn copy_nv12(frame: &RawFrame, src: &[u8], dst: &mut [Mapping], layout: &Layout) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let planes = frame.planes();
    let luma_bpl = layout.planes[0].bpl as usize;
    // (source plane, destination plane, offset in it, its bytes per line, rows)
    let rows = match layout.planes.get(1) {
        None => [
            (planes[0], 0, 0usize, luma_bpl, h),
            (
                planes[1],
                0,
                luma_bpl * layout.height as usize,
                luma_bpl,
                h / 2,
            ),
        ],
        Some(chroma) => [
            (planes[0], 0, 0, luma_bpl, h),
            (planes[1], 1, 0, chroma.bpl as usize, h / 2),
        ],
    };
    for (plane, index, dst_offset, bpl, count) in rows {
        let Some(map) = dst.get_mut(index) else {
            continue;
        };
        let dst = map.bytes_mut();
        for row in 0..count {
            let from = plane.offset + row * plane.stride;
            let to = dst_offset + row * bpl;
            if let (Some(s), Some(d)) = (src.get(from..from + w), dst.get_mut(to..to + w)) {
                d.copy_from_slice(s);
            }
        }
    }
}
