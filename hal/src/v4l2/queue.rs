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
    map: Option<Mapping>,
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
            let map = if memory == MEMORY_MMAP {
                let info = ioctl::querybuf(fd, buf_type, memory, index)?;
                let (_, length, offset) = info.planes[0];
                Some(Mapping::new(fd, offset, length as usize)?)
            } else {
                None
            };
            slots.push(OutSlot {
                state: BufState::Free,
                map,
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
        let Some(index) = self.slots.iter().position(|s| s.state == BufState::Free) else {
            return Err(Box::new((frame, V4l2Error::Busy)));
        };
        let (bpl, size) = self.format.planes[0];
        let mut q = QueueBuffer {
            index: index as u32,
            memory: self.memory,
            num_planes: 1,
            tv_sec: sec,
            tv_usec: usec,
            ..QueueBuffer::default()
        };
        let slot = &mut self.slots[index];
        slot.state = BufState::Filling;
        let prepared = match (self.memory, frame.memory()) {
            (MEMORY_DMABUF, FrameMemory::DmaBuf { fd, len }) => {
                match check_dmabuf_layout(&frame, bpl, self.format.height) {
                    Ok(()) => {
                        let len = u32::try_from(len).unwrap_or(u32::MAX);
                        q.dmabuf[0] = (fd.as_raw_fd(), len);
                        q.bytesused[0] = size.min(len);
                        Ok(true)
                    }
                    Err(e) => Err(e),
                }
            }
            (MEMORY_MMAP, FrameMemory::Mapped(bytes)) => match slot.map.as_mut() {
                Some(map) => {
                    copy_nv12(
                        &frame,
                        bytes,
                        map.bytes_mut(),
                        bpl as usize,
                        self.format.height,
                    );
                    q.bytesused[0] = size.min(map.len() as u32);
                    Ok(false)
                }
                None => Err(V4l2Error::Unsupported("an OUTPUT buffer without a mapping")),
            },
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
fn check_dmabuf_layout(frame: &RawFrame, bpl: u32, height: u32) -> Result<(), V4l2Error> {
    let planes = frame.planes();
    let bpl = bpl as usize;
    let ok = planes[0].offset == 0
        && planes[0].stride == bpl
        && planes
            .get(1)
            .is_none_or(|c| c.stride == bpl && c.offset == bpl * height as usize);
    if ok {
        Ok(())
    } else {
        Err(V4l2Error::Layout(format!(
            "a DMA-buf frame with planes {planes:?} does not match the encoder's NV12 layout \
             ({bpl} bytes per line, chroma at {})",
            bpl * height as usize
        )))
    }
}

/// Copies an NV12 frame into an OUTPUT buffer laid out with `bpl` bytes per line and chroma
/// after `bpl * height`. Rows that would not fit are skipped rather than panicking.
fn copy_nv12(frame: &RawFrame, src: &[u8], dst: &mut [u8], bpl: usize, height: u32) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let planes = frame.planes();
    let rows = [
        (planes[0], 0usize, h),
        (planes[1], bpl * height as usize, h / 2),
    ];
    for (plane, dst_offset, count) in rows {
        for row in 0..count {
            let from = plane.offset + row * plane.stride;
            let to = dst_offset + row * bpl;
            if let (Some(s), Some(d)) = (src.get(from..from + w), dst.get_mut(to..to + w)) {
                d.copy_from_slice(s);
            }
        }
    }
}
