//! V4L2 capture nodes: a camera that outputs H.264 itself (UVC), behind the [`Encoder`]
//! trait, and a camera that outputs raw NV12, as a [`FrameSource`] whose frames are the
//! capture buffers exported as DMA-bufs (`VIDIOC_EXPBUF`) for an encoder to import.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::V4l2Error;
use super::ioctl::{
    self, BUF_TYPE_VIDEO_CAPTURE, BUF_TYPE_VIDEO_CAPTURE_MPLANE, CAP_STREAMING, CAP_VIDEO_CAPTURE,
    CAP_VIDEO_CAPTURE_MPLANE, Device, DqbufError, Format, PIX_FMT_H264, PIX_FMT_HEVC, PIX_FMT_NV12,
};
use super::merge::{HeaderMerge, Merged};
use super::queue::{CaptureLease, CaptureQueue};
use crate::input::FrameSource;
use crate::{
    Codec, Encoder, EncoderConfig, FrameBuffer, FrameMemory, FrameRate, HalError, Loss, Packet,
    PixelFormat, Plane, RawFrame,
};

/// A capture node, set up and streaming.
struct Stream {
    queue: CaptureQueue,
    device: Arc<Device>,
    format: Format,
    fps: FrameRate,
}

impl Stream {
    /// Opens `path` as a streaming capture node and negotiates `pixelformat`, at `size` if
    /// given (else the device's current size).
    fn open(
        path: &Path,
        pixelformat: u32,
        size: Option<(u32, u32)>,
        fps: Option<FrameRate>,
        export: bool,
    ) -> Result<Stream, V4l2Error> {
        let device = Arc::new(super::open_device(path)?);
        let fd = device.as_fd();
        let cap = ioctl::querycap(fd)?;
        let buf_type = if cap.caps & CAP_VIDEO_CAPTURE != 0 {
            BUF_TYPE_VIDEO_CAPTURE
        } else if cap.caps & CAP_VIDEO_CAPTURE_MPLANE != 0 {
            BUF_TYPE_VIDEO_CAPTURE_MPLANE
        } else {
            return Err(V4l2Error::NotA {
                device: path.to_path_buf(),
                card: cap.card,
                what: "video capture device",
            });
        };
        if cap.caps & CAP_STREAMING == 0 {
            return Err(V4l2Error::NotA {
                device: path.to_path_buf(),
                card: cap.card,
                what: "streaming device",
            });
        }
        let offered = ioctl::enum_fmt(fd, buf_type);
        if !offered.contains(&pixelformat) {
            let names: Vec<String> = offered.iter().map(|f| ioctl::fourcc_name(*f)).collect();
            return Err(V4l2Error::Format {
                device: path.to_path_buf(),
                message: format!(
                    "{} does not output {} (it offers {})",
                    cap.card,
                    ioctl::fourcc_name(pixelformat),
                    names.join(", ")
                ),
            });
        }
        let current = ioctl::g_fmt(fd, buf_type)?;
        let (width, height) = size.unwrap_or((current.width, current.height));
        let wanted = Format {
            width,
            height,
            pixelformat,
            num_planes: 1,
            ..Format::default()
        };
        let format = ioctl::s_fmt(fd, buf_type, &wanted)?;
        if format.pixelformat != pixelformat || (format.width, format.height) != (width, height) {
            return Err(V4l2Error::Format {
                device: path.to_path_buf(),
                message: format!(
                    "asked for {} {width}x{height}, the device chose {} {}x{}",
                    ioctl::fourcc_name(pixelformat),
                    ioctl::fourcc_name(format.pixelformat),
                    format.width,
                    format.height
                ),
            });
        }
        let fps = match fps {
            Some(fps) => {
                // The interval is the inverse of the rate; keep what the device settles on.
                match ioctl::s_parm(fd, buf_type, fps.den(), fps.num()) {
                    Ok((num, den)) => FrameRate::new(den, num).unwrap_or(fps),
                    Err(_) => fps,
                }
            }
            None => FrameRate::from_fps(DEFAULT_FPS).unwrap_or(fps_30()),
        };
        let queue = CaptureQueue::new(Arc::clone(&device), buf_type, BUFFERS, export)?;
        queue.start()?;
        Ok(Stream {
            queue,
            device,
            format,
            fps,
        })
    }

    /// The next filled buffer, waiting up to `timeout`. Buffers the driver flagged
    /// `V4L2_BUF_FLAG_ERROR` are returned too: the caller decides what a lost frame means.
    fn next(&self, timeout: Duration) -> Result<(ioctl::BufferInfo, CaptureLease), V4l2Error> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.queue.dequeue() {
                Ok(Some(got)) => {
                    return Ok(got);
                }
                Ok(None) | Err(DqbufError::NotReady) => {}
                Err(DqbufError::Stopped) => return Err(V4l2Error::Unsupported("a stopped queue")),
                Err(DqbufError::Failed(e)) => return Err(e.into()),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(V4l2Error::Timeout {
                    ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
                });
            }
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
            let events = ioctl::poll(self.device.as_fd(), ms)?;
            if events.error && !events.readable {
                std::thread::sleep(Duration::from_millis(2).min(left));
            }
        }
    }
}

/// A camera that outputs H.264 (or H.265) itself, e.g. a UVC camera: `--source
/// v4l2:/dev/videoN`. Packets are its capture buffers, read in place.
pub struct V4l2CaptureSource {
    stream: Stream,
    codec: Codec,
    limit: Option<u64>,
    frames: u64,
    first_us: Option<i64>,
    last_pts: Option<u64>,
    stopped: bool,
    /// Parameter sets the camera sent in a buffer of their own, kept for the next picture.
    merge: HeaderMerge,
    /// A frame was lost: pictures are skipped (and counted in `loss`) until the next IDR,
    /// since they may refer to the lost one.
    awaiting_idr: bool,
    loss: Option<Loss>,
}

impl V4l2CaptureSource {
    /// Opens `path` for `codec` at `size` (default: the device's current size) and `fps`.
    pub fn open(
        path: &Path,
        codec: Codec,
        size: Option<(u32, u32)>,
        fps: Option<FrameRate>,
        duration: Option<Duration>,
    ) -> Result<V4l2CaptureSource, HalError> {
        let pixelformat = match codec {
            Codec::H264 => PIX_FMT_H264,
            Codec::H265 => PIX_FMT_HEVC,
        };
        let stream = Stream::open(path, pixelformat, size, fps, false)?;
        let limit = duration.map(|d| stream.fps.frames_within(d));
        Ok(V4l2CaptureSource {
            stream,
            codec,
            limit,
            frames: 0,
            first_us: None,
            last_pts: None,
            stopped: false,
            merge: HeaderMerge::new(codec),
            awaiting_idr: false,
            loss: None,
        })
    }

    /// A buffer's pts: camera timestamps (CLOCK_MONOTONIC) relative to the first frame, in
    /// 90 kHz ticks, nudged to stay strictly increasing.
    fn pts_of(&mut self, info: &ioctl::BufferInfo) -> u64 {
        let us = info
            .tv_sec
            .saturating_mul(1_000_000)
            .saturating_add(info.tv_usec);
        let mut pts = if us == 0 {
            // A driver that leaves timestamps empty: fall back to the nominal cadence.
            self.stream.fps.pts(self.frames - 1)
        } else {
            let first = *self.first_us.get_or_insert(us);
            (us.saturating_sub(first).max(0) as u64).saturating_mul(9) / 100
        };
        if let Some(last) = self.last_pts
            && pts <= last
        {
            pts = last + 1;
        }
        self.last_pts = Some(pts);
        pts
    }

    /// Counts one lost picture at `pts`.
    fn lose(&mut self, pts: u64) {
        let lost = Loss {
            frames: 1,
            from_pts: pts,
            to_pts: pts.saturating_add(self.stream.fps.pts(1).max(1)),
        };
        match &mut self.loss {
            Some(loss) => loss.merge(lost),
            None => self.loss = Some(lost),
        }
    }
}

impl Encoder for V4l2CaptureSource {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn frame_rate(&self) -> FrameRate {
        self.stream.fps
    }

    fn configure(&mut self, config: &EncoderConfig) -> Result<(), HalError> {
        if config.codec != self.codec
            || (config.width, config.height)
                != (self.stream.format.width, self.stream.format.height)
        {
            return Err(HalError::InvalidConfig(
                "a streaming camera cannot change codec or size; reopen it".into(),
            ));
        }
        Ok(())
    }

    fn submit(&mut self, _frame: RawFrame) -> Result<(), HalError> {
        Err(HalError::Unsupported("submitting raw frames to a camera"))
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, HalError> {
        if self.stopped || self.limit.is_some_and(|n| self.frames >= n) {
            self.stopped = true;
            return Ok(None);
        }
        loop {
            if self.limit.is_some_and(|n| self.frames >= n) {
                self.stopped = true;
                return Ok(None);
            }
            let (info, lease) = self.stream.next(CAMERA_TIMEOUT)?;
            self.frames += 1;
            let pts = self.pts_of(&info);
            if info.flags & ioctl::BUF_FLAG_ERROR != 0 {
                // uvcvideo flags a frame whose payload was incomplete or corrupt (a lost
                // USB packet). The camera's next P-frames refer to it: wait for an IDR.
                self.lose(pts);
                self.awaiting_idr = true;
                continue;
            }
            let (keyframe, joined) = match self.merge.push(lease.bytes()) {
                // Parameter sets sent as a frame of their own: they go with the next picture.
                Merged::Held => continue,
                Merged::Alone => (super::has_keyframe(self.codec, lease.bytes()), None),
                Merged::Joined(data) => (super::has_keyframe(self.codec, &data), Some(data)),
            };
            if self.awaiting_idr {
                if !keyframe {
                    // Undecodable without the lost frame; part of the same gap. UVC cameras
                    // take no keyframe request here (see docs/HARDWARE.md), so their own GOP
                    // bounds the wait.
                    self.lose(pts);
                    continue;
                }
                self.awaiting_idr = false;
            }
            return Ok(Some(match joined {
                Some(data) => Packet::from_vec(self.codec, pts, keyframe, data),
                None => Packet::leased(self.codec, pts, keyframe, Box::new(CapturedPacket(lease))),
            }));
        }
    }

    fn take_loss(&mut self) -> Option<Loss> {
        self.loss.take()
    }

    fn force_keyframe(&mut self) -> Result<(), HalError> {
        Err(HalError::Unsupported("forcing a keyframe on a camera"))
    }

    fn drain(&mut self) -> Result<(), HalError> {
        self.stopped = true;
        Ok(())
    }
}

struct CapturedPacket(CaptureLease);

impl crate::packet::PacketMemory for CapturedPacket {
    fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    fn kind(&self) -> &'static str {
        "v4l2"
    }
}

/// Raw NV12 frames from a capture node (`--input v4l2:/dev/videoN`), each a capture buffer
/// exported as a DMA-buf and queued again when the encoder drops the frame.
pub struct V4l2FrameSource {
    stream: Stream,
    limit: Option<u64>,
    frames: u64,
}

impl V4l2FrameSource {
    /// Opens `path` for NV12 at `width`x`height` and `fps`.
    pub fn open(
        path: &Path,
        width: u32,
        height: u32,
        fps: FrameRate,
        duration: Option<Duration>,
    ) -> Result<V4l2FrameSource, HalError> {
        let stream = Stream::open(path, PIX_FMT_NV12, Some((width, height)), Some(fps), true)?;
        let limit = duration.map(|d| stream.fps.frames_within(d));
        Ok(V4l2FrameSource {
            stream,
            limit,
            frames: 0,
        })
    }

    /// Bytes per line of the frames.
    pub fn stride(&self) -> u32 {
        self.stream.format.planes[0].0
    }

    /// Buffers the device holds (the rest are with the encoder).
    pub fn queued(&self) -> usize {
        self.stream.queue.queued()
    }

    /// Buffers in the queue.
    pub fn buffers(&self) -> usize {
        self.stream.queue.len()
    }
}

impl FrameSource for V4l2FrameSource {
    fn size(&self) -> (u32, u32) {
        (self.stream.format.width, self.stream.format.height)
    }

    fn frame_rate(&self) -> FrameRate {
        self.stream.fps
    }

    fn next_frame(&mut self) -> Result<Option<RawFrame>, HalError> {
        if self.limit.is_some_and(|n| self.frames >= n) {
            return Ok(None);
        }
        let lease = loop {
            let (info, lease) = self.stream.next(CAMERA_TIMEOUT)?;
            // A corrupt raw frame (the driver says so) is skipped: the encoder gets the next.
            if info.flags & ioctl::BUF_FLAG_ERROR == 0 {
                break lease;
            }
        };
        let (width, height) = self.size();
        let bpl = self.stream.format.planes[0].0 as usize;
        let planes = [
            Plane {
                offset: 0,
                stride: bpl,
            },
            Plane {
                offset: bpl * height as usize,
                stride: bpl,
            },
        ];
        // Regular timestamps from the frame count: an encoder wants an even cadence, and the
        // capture clock's jitter is not worth carrying.
        let pts = self.stream.fps.pts(self.frames);
        self.frames += 1;
        let frame = RawFrame::new(
            PixelFormat::Nv12,
            width,
            height,
            &planes,
            pts,
            Box::new(CapturedFrame(lease)),
        )?;
        Ok(Some(frame))
    }
}

/// A capture buffer lent to an encoder as a DMA-buf.
struct CapturedFrame(CaptureLease);

impl FrameBuffer for CapturedFrame {
    fn memory(&self) -> FrameMemory<'_> {
        match self.0.dmabuf() {
            Some((fd, len)) => FrameMemory::DmaBuf { fd, len },
            // Queues for raw frames are always created with `export`; mapped bytes are the
            // fallback should that change.
            None => FrameMemory::Mapped(self.0.bytes()),
        }
    }
}

impl std::fmt::Debug for CapturedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CapturedFrame(dmabuf fd {:?})", self.0.dmabuf_raw())
    }
}

fn fps_30() -> FrameRate {
    FrameRate { num: 30, den: 1 }
}

/// Capture buffers. Packets and frames are leases of these buffers: while the pipeline
/// seals a packet (and more so a keyframe split across seal workers) its buffer is out of
/// the queue, and uvcvideo silently drops a frame when no buffer is queued. With 4, a
/// keyframe and a few P-frames in flight starved the queue; 8 leaves at least 4 queued
/// under the engine's normal in-flight depth, and costs 8 × `sizeimage` of memory (a UVC
/// H.264 frame is at most the camera's dwMaxVideoFrameSize, typically under 1 MiB).
const BUFFERS: u32 = 8;
const DEFAULT_FPS: u32 = 30;
/// How long a camera may go without a frame before the source gives up.
const CAMERA_TIMEOUT: Duration = Duration::from_secs(5);
