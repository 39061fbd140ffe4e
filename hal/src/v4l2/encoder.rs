//! The stateful V4L2 memory-to-memory encoder (`dev-encoder.rst`): raw frames on the OUTPUT
//! queue, the bitstream on the CAPTURE queue.
//!
//! [`M2mEncoder`] is the protocol: coded format on CAPTURE first, then the raw format and
//! frame interval on OUTPUT, then buffers and streaming; frames are matched to packets by the
//! timestamp the driver copies from OUTPUT to CAPTURE; `V4L2_ENC_CMD_STOP` drains until a
//! buffer flagged `V4L2_BUF_FLAG_LAST`. It works for any coded format (the QEMU test drives
//! vicodec's FWHT). [`V4l2M2mSource`] puts an H.264/H.265 encoder behind the crate's
//! [`Encoder`] trait.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ioctl::{
    self, BUF_FLAG_ERROR, BUF_FLAG_KEYFRAME, BUF_FLAG_LAST, BUF_TYPE_VIDEO_CAPTURE,
    BUF_TYPE_VIDEO_CAPTURE_MPLANE, BUF_TYPE_VIDEO_OUTPUT, BUF_TYPE_VIDEO_OUTPUT_MPLANE,
    CAP_STREAMING, CAP_VIDEO_M2M, CAP_VIDEO_M2M_MPLANE, Device, DqbufError, Format, MEMORY_DMABUF,
    MEMORY_MMAP, PIX_FMT_NV12, PIX_FMT_NV12M,
};
use super::merge::{HeaderMerge, Merged};
use super::queue::{CaptureLease, CaptureQueue, OutputQueue};
use super::{CodedFormat, V4l2Error};
use crate::input::FrameSource;
use crate::{
    Codec, Encoder, EncoderConfig, FrameMemory, FrameRate, HalError, Loss, Packet, RawFrame,
};

/// Settings of an [`M2mEncoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct M2mConfig {
    /// The bitstream format on CAPTURE.
    pub coded: CodedFormat,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frame rate of the raw frames.
    pub fps: FrameRate,
    /// Target bitrate (bits per second); drivers without the control ignore it.
    pub bitrate: u32,
    /// Keyframe interval in frames; drivers without the control ignore it.
    pub gop: u32,
    /// Buffers per queue.
    pub buffers: u32,
}

impl M2mConfig {
    /// `coded` at `width`x`height`, 2 Mbit/s, one keyframe per second, 4 buffers per queue.
    pub fn new(coded: CodedFormat, width: u32, height: u32, fps: FrameRate) -> M2mConfig {
        M2mConfig {
            coded,
            width,
            height,
            fps,
            bitrate: crate::DEFAULT_BITRATE,
            gop: fps.whole_frames_per_second(),
            buffers: DEFAULT_BUFFERS,
        }
    }
}

/// Counters of an [`M2mEncoder`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct M2mStats {
    /// Frames queued on OUTPUT.
    pub frames_in: u64,
    /// Of those, queued as DMA-bufs (no copy).
    pub frames_dmabuf: u64,
    /// CAPTURE buffers with data.
    pub packets: u64,
    /// CAPTURE buffers the driver flagged `KEYFRAME`.
    pub keyframe_flags: u64,
    /// Controls the driver refused (it lacks them); the encoder runs with its defaults.
    pub unsupported_controls: u64,
    /// Polls that timed out.
    pub timeouts: u64,
    /// CAPTURE buffers the driver flagged `V4L2_BUF_FLAG_ERROR` (each a lost picture).
    pub error_buffers: u64,
    /// Packets that came out in another order than their frames went in.
    pub reordered: u64,
    /// The frame interval the driver settled on (`VIDIOC_S_PARM`), when it answered, as
    /// (numerator, denominator) seconds per frame.
    pub frame_interval: Option<(u32, u32)>,
    /// The driver refused the crop to the picture size (`VIDIOC_S_SELECTION`): it encodes
    /// the aligned size, padding included.
    pub crop_refused: bool,
    /// `VIDIOC_ENCODER_CMD` is missing (`ENOTTY`, old venus): drained by waiting for every
    /// queued frame instead.
    pub drained_without_stop: bool,
}

/// One encoded CAPTURE buffer, read in place; queued again when dropped.
pub struct EncodedBuffer {
    lease: CaptureLease,
    /// The timestamp of the frame it came from (the frame's `pts`).
    pub pts: u64,
    /// The driver set `V4L2_BUF_FLAG_KEYFRAME` (many encoders, vicodec among them, never do).
    pub keyframe_flag: bool,
    /// The driver set `V4L2_BUF_FLAG_LAST`: nothing follows.
    pub last: bool,
    /// The driver's sequence number.
    pub sequence: u32,
}

impl EncodedBuffer {
    /// The encoded bytes.
    pub fn data(&self) -> &[u8] {
        self.lease.bytes()
    }
}

impl std::fmt::Debug for EncodedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedBuffer")
            .field("pts", &self.pts)
            .field("len", &self.data().len())
            .field("keyframe_flag", &self.keyframe_flag)
            .field("last", &self.last)
            .field("sequence", &self.sequence)
            .finish()
    }
}

/// A stateful V4L2 encoder session: coded format on CAPTURE, NV12 on OUTPUT, packets matched
/// to frames by timestamp, drained with `V4L2_ENC_CMD_STOP` until `LAST`.
pub struct M2mEncoder {
    capture: CaptureQueue,
    output: Option<OutputQueue>,
    device: Arc<Device>,
    output_type: u32,
    output_format: Format,
    buffers: u32,
    /// Timestamps of frames queued whose packets have not all come out, oldest first.
    pending: VecDeque<u64>,
    draining: bool,
    /// Draining without `V4L2_ENC_CMD_STOP`: finished once every queued frame came out.
    drain_by_count: bool,
    finished: bool,
    /// Ticks of one frame, to span a lost picture.
    frame_ticks: u64,
    /// The timestamp of the last buffer with data.
    last_pts: Option<u64>,
    /// Pictures lost since the last [`take_loss`](M2mEncoder::take_loss).
    loss: Option<Loss>,
    stats: M2mStats,
}

impl M2mEncoder {
    /// Opens `path`, checks it is a streaming M2M device, and negotiates `config`: coded
    /// format on CAPTURE, NV12 on OUTPUT, frame interval, and (best effort) bitrate, GOP and
    /// parameter sets on every IDR.
    pub fn open(path: &Path, config: &M2mConfig) -> Result<M2mEncoder, V4l2Error> {
        let device = Arc::new(super::open_device(path)?);
        let fd = device.as_fd();
        let cap = ioctl::querycap(fd)?;
        let (capture_type, output_type) = if cap.caps & CAP_VIDEO_M2M_MPLANE != 0 {
            (BUF_TYPE_VIDEO_CAPTURE_MPLANE, BUF_TYPE_VIDEO_OUTPUT_MPLANE)
        } else if cap.caps & CAP_VIDEO_M2M != 0 {
            (BUF_TYPE_VIDEO_CAPTURE, BUF_TYPE_VIDEO_OUTPUT)
        } else {
            return Err(V4l2Error::NotA {
                device: path.to_path_buf(),
                card: cap.card,
                what: "memory-to-memory encoder",
            });
        };
        if cap.caps & CAP_STREAMING == 0 {
            return Err(V4l2Error::NotA {
                device: path.to_path_buf(),
                card: cap.card,
                what: "streaming device",
            });
        }
        let coded = config.coded.fourcc();
        if !ioctl::enum_fmt(fd, capture_type).contains(&coded) {
            return Err(V4l2Error::Format {
                device: path.to_path_buf(),
                message: format!(
                    "{} ({}) does not encode {}",
                    cap.card,
                    cap.driver,
                    ioctl::fourcc_name(coded)
                ),
            });
        }
        // The coded format goes first: it decides which raw formats OUTPUT offers.
        let wanted = Format {
            width: config.width,
            height: config.height,
            pixelformat: coded,
            planes: [(0, coded_size_hint(config)), (0, 0), (0, 0), (0, 0)],
            num_planes: 1,
        };
        ioctl::s_fmt(fd, capture_type, &wanted)?;
        // NV12 in one plane where offered (bcm2835-codec, venus, vicodec); else NV12M,
        // luma and chroma in planes of their own (MediaTek offers only NV12M, NV21M, YUV420M
        // and YVU420M; MFC only NV12M). Drivers that cannot enumerate get NV12 asked for.
        let offered = ioctl::enum_fmt(fd, output_type);
        let (pixelformat, num_planes) = if offered.contains(&PIX_FMT_NV12) || offered.is_empty() {
            (PIX_FMT_NV12, 1)
        } else if offered.contains(&PIX_FMT_NV12M) && output_type == BUF_TYPE_VIDEO_OUTPUT_MPLANE {
            (PIX_FMT_NV12M, 2)
        } else {
            let names: Vec<String> = offered.iter().map(|&f| ioctl::fourcc_name(f)).collect();
            return Err(V4l2Error::Format {
                device: path.to_path_buf(),
                message: format!(
                    "{} takes neither NV12 nor NV12M on OUTPUT (it offers {})",
                    cap.card,
                    names.join(", ")
                ),
            });
        };
        let raw = Format {
            width: config.width,
            height: config.height,
            pixelformat,
            num_planes,
            ..Format::default()
        };
        let output_format = ioctl::s_fmt(fd, output_type, &raw)?;
        // Encoders align the coded size (vicodec and most hardware to 16 rows); the visible
        // size is then the crop rectangle. More than one macroblock row or column of padding
        // would be some other size altogether.
        let aligned = |got: u32, want: u32| got >= want && got - want < MAX_ALIGN_PADDING;
        if output_format.pixelformat != pixelformat
            || output_format.num_planes != num_planes
            || !aligned(output_format.width, config.width)
            || !aligned(output_format.height, config.height)
        {
            return Err(V4l2Error::Format {
                device: path.to_path_buf(),
                message: format!(
                    "asked for {} {}x{} on OUTPUT, the driver chose {} {}x{}",
                    ioctl::fourcc_name(pixelformat),
                    config.width,
                    config.height,
                    ioctl::fourcc_name(output_format.pixelformat),
                    output_format.width,
                    output_format.height
                ),
            });
        }
        let mut stats = M2mStats::default();
        if (output_format.width, output_format.height) != (config.width, config.height) {
            // Drivers without the selection API encode the padding too; the stream is still
            // valid, only larger, so this is recorded rather than fatal.
            let single = if output_type == BUF_TYPE_VIDEO_OUTPUT_MPLANE {
                BUF_TYPE_VIDEO_OUTPUT
            } else {
                output_type
            };
            stats.crop_refused = !matches!(
                ioctl::s_crop(fd, single, config.width, config.height),
                Ok((w, h)) if (w, h) == (config.width, config.height)
            );
        }
        // The frame interval is the inverse of the rate. Drivers use it for rate control
        // (venus computes its bit budget from it), so what they settled on is kept.
        stats.frame_interval = ioctl::s_parm(fd, output_type, config.fps.den(), config.fps.num())
            .ok()
            .filter(|&(num, den)| num != 0 && den != 0);
        for (id, value) in controls(config) {
            if ioctl::s_ctrl(fd, id, value).is_err() {
                stats.unsupported_controls += 1;
            }
        }
        let capture = CaptureQueue::new(Arc::clone(&device), capture_type, config.buffers, false)?;
        capture.start()?;
        Ok(M2mEncoder {
            capture,
            output: None,
            device,
            output_type,
            output_format,
            buffers: config.buffers,
            pending: VecDeque::new(),
            draining: false,
            drain_by_count: false,
            finished: false,
            frame_ticks: config.fps.pts(1).max(1),
            last_pts: None,
            loss: None,
            stats,
        })
    }

    /// The raw format the driver settled on (bytes per line, image size).
    pub fn output_format(&self) -> (u32, u32) {
        self.output_format.planes[0]
    }

    /// The coded (aligned) size of OUTPUT frames: a DMA-buf frame's chroma plane starts at
    /// bytes per line times this height.
    pub fn coded_size(&self) -> (u32, u32) {
        (self.output_format.width, self.output_format.height)
    }

    /// Whether a frame can be queued now (an OUTPUT buffer is free, or none exist yet).
    pub fn can_accept(&mut self) -> Result<bool, V4l2Error> {
        if self.draining || self.finished {
            return Ok(false);
        }
        match &mut self.output {
            None => Ok(true),
            Some(out) => {
                out.reclaim()?;
                Ok(out.has_free())
            }
        }
    }

    /// Queues one NV12 frame (the OUTPUT queue is set up on the first frame: DMABUF for a
    /// DMA-buf frame, MMAP with a copy for a mapped one). The frame's `pts` becomes the
    /// buffer timestamp. On failure the frame is handed back.
    pub fn submit(&mut self, frame: RawFrame) -> Result<(), Box<(RawFrame, V4l2Error)>> {
        if self.draining || self.finished {
            return Err(Box::new((
                frame,
                V4l2Error::Unsupported("a frame after drain"),
            )));
        }
        if self.output.is_none() {
            let memory = match frame.memory() {
                FrameMemory::DmaBuf { .. } => MEMORY_DMABUF,
                FrameMemory::Mapped(_) => MEMORY_MMAP,
            };
            let started = OutputQueue::new(
                Arc::clone(&self.device),
                self.output_type,
                memory,
                self.buffers,
                self.output_format,
            )
            .and_then(|mut q| q.start().map(|()| q));
            match started {
                Ok(q) => self.output = Some(q),
                Err(e) => return Err(Box::new((frame, e))),
            }
        }
        let Some(out) = self.output.as_mut() else {
            return Err(Box::new((frame, V4l2Error::Unsupported("no OUTPUT queue"))));
        };
        if let Err(e) = out.reclaim() {
            return Err(Box::new((frame, e)));
        }
        let pts = frame.pts;
        let dmabuf = out.memory() == MEMORY_DMABUF;
        let (sec, usec) = to_timeval(pts);
        out.queue(frame, sec, usec)?;
        self.pending.push_back(pts);
        self.stats.frames_in += 1;
        if dmabuf {
            self.stats.frames_dmabuf += 1;
        }
        Ok(())
    }

    /// Asks the driver to finish the frames queued so far (`V4L2_ENC_CMD_STOP`); packets
    /// keep coming until one flagged `LAST`.
    pub fn drain(&mut self) -> Result<(), V4l2Error> {
        if self.draining || self.finished {
            return Ok(());
        }
        self.draining = true;
        if self.output.is_none() {
            // Nothing was ever encoded: there is nothing to wait for.
            self.finished = true;
            return Ok(());
        }
        match ioctl::encoder_stop(self.device.as_fd()) {
            Ok(()) => Ok(()),
            Err(ioctl::EncoderCmdError::Unsupported) => {
                // Old venus has no VIDIOC_ENCODER_CMD (`ENOTTY`). dev-encoder.rst's drain
                // is then not available; the frames already queued still come out, so wait
                // for each of them and end there, as ffmpeg and GStreamer do for drivers
                // without the command.
                self.drain_by_count = true;
                self.stats.drained_without_stop = true;
                if self.pending.is_empty() {
                    self.finished = true;
                }
                Ok(())
            }
            Err(ioctl::EncoderCmdError::Failed(e)) => Err(e.into()),
        }
    }

    /// Pictures lost since the last call (CAPTURE buffers flagged `V4L2_BUF_FLAG_ERROR`).
    pub fn take_loss(&mut self) -> Option<Loss> {
        self.loss.take()
    }

    /// Asks for the next frame to be a keyframe (`V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`).
    pub fn force_keyframe(&mut self) -> Result<(), V4l2Error> {
        ioctl::s_ctrl(self.device.as_fd(), ioctl::CID_FORCE_KEY_FRAME, 0)?;
        Ok(())
    }

    /// The next encoded buffer, waiting up to `timeout`; `Ok(None)` after the `LAST` one.
    /// `Err(V4l2Error::Timeout)` when nothing came in time (the call can be repeated).
    pub fn next_encoded(&mut self, timeout: Duration) -> Result<Option<EncodedBuffer>, V4l2Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.finished {
                return Ok(None);
            }
            if let Some(out) = &mut self.output {
                out.reclaim()?;
            }
            match self.capture.dequeue() {
                Ok(Some((info, lease))) => {
                    if let Some(buffer) = self.accept(info, lease)? {
                        return Ok(Some(buffer));
                    }
                    continue;
                }
                Ok(None) => {}
                Err(DqbufError::Stopped) => {
                    self.finished = true;
                    return Ok(None);
                }
                Err(DqbufError::NotReady) => {}
                Err(DqbufError::Failed(e)) => return Err(e.into()),
            }
            if self.drain_by_count && self.pending.is_empty() {
                self.finished = true;
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stats.timeouts += 1;
                if self.drain_by_count {
                    // Draining without the stop command, and the driver has nothing more:
                    // the frames still counted were dropped by the encoder. End here.
                    self.finished = true;
                    return Ok(None);
                }
                return Err(V4l2Error::Timeout {
                    ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
                });
            }
            let events = ioctl::poll(self.device.as_fd(), millis(left))?;
            if events.error && !events.readable && !events.writable {
                // Nothing queued on a streaming queue, e.g. every CAPTURE buffer is held by
                // a reader: wait a little instead of spinning.
                std::thread::sleep(ERROR_BACKOFF.min(left));
            }
        }
    }

    /// Frames queued whose packets have not come out.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether [`drain`](M2mEncoder::drain) was called.
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Whether the `LAST` buffer has come out.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Counters.
    pub fn stats(&self) -> &M2mStats {
        &self.stats
    }

    /// OUTPUT buffers the driver holds (frames it has not finished reading).
    pub fn output_queued(&self) -> usize {
        self.output.as_ref().map_or(0, OutputQueue::queued)
    }

    /// CAPTURE buffers the driver holds (the rest are with readers).
    pub fn capture_queued(&self) -> usize {
        self.capture.queued()
    }

    /// Turns a dequeued CAPTURE buffer into a packet, or `None` for an empty one.
    fn accept(
        &mut self,
        info: ioctl::BufferInfo,
        lease: CaptureLease,
    ) -> Result<Option<EncodedBuffer>, V4l2Error> {
        let last = info.flags & BUF_FLAG_LAST != 0;
        if last {
            self.finished = true;
        }
        let pts = from_timeval(info.tv_sec, info.tv_usec);
        if info.flags & BUF_FLAG_ERROR != 0 {
            // dev-encoder.rst: an encoding error is per buffer and the stream goes on. The
            // picture is lost; later P-frames may refer to it, so ask for a keyframe and
            // report the loss (the pipeline records it as a signed gap).
            self.stats.error_buffers += 1;
            let from_pts = match self.pending.iter().position(|&p| p == pts) {
                Some(i) => self.pending.remove(i).unwrap_or(pts),
                // Drivers that do not copy the timestamp to an errored buffer: the oldest
                // frame is the one the encoder worked on.
                None => self.pending.pop_front().unwrap_or(pts),
            };
            let lost = Loss {
                frames: 1,
                from_pts,
                to_pts: from_pts.saturating_add(self.frame_ticks),
            };
            match &mut self.loss {
                Some(loss) => loss.merge(lost),
                None => self.loss = Some(lost),
            }
            let _ = self.force_keyframe();
            if last {
                self.pending.clear();
            }
            return Ok(None);
        }
        if info.planes[0].0 <= info.data_offsets[0] {
            // The LAST marker may carry no data; an empty buffer otherwise is just skipped.
            return Ok(None);
        }
        // dev-encoder.rst allows CAPTURE buffers in another order than their frames (B-frames,
        // or a driver finishing buffers out of order), so the frame is looked up, not
        // expected at the front. Frames before it in the list stay: their packet may still
        // come.
        match self.pending.iter().position(|&p| p == pts) {
            Some(0) => {
                self.pending.pop_front();
            }
            Some(i) => {
                self.stats.reordered += 1;
                self.pending.remove(i);
            }
            // A frame may fill several CAPTURE buffers with its timestamp: the sequence
            // header alone, then the picture (HEADER_MODE_SEPARATE on venus and MediaTek).
            None if self.last_pts == Some(pts) => {}
            None => return Err(V4l2Error::TimestampMismatch { pts }),
        }
        self.last_pts = Some(pts);
        // Frames the encoder skipped (rate control may drop input) never produce a packet;
        // keep the list bounded by what can be in flight.
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
        }
        if last {
            self.pending.clear();
        }
        self.stats.packets += 1;
        let keyframe_flag = info.flags & BUF_FLAG_KEYFRAME != 0;
        if keyframe_flag {
            self.stats.keyframe_flags += 1;
        }
        Ok(Some(EncodedBuffer {
            lease,
            pts,
            keyframe_flag,
            last,
            sequence: info.sequence,
        }))
    }
}

impl Drop for M2mEncoder {
    fn drop(&mut self) {
        // OUTPUT first (its DMA-bufs go back to their owners), then CAPTURE (fields drop in
        // order, and CaptureQueue stops itself).
        if let Some(out) = &mut self.output {
            let _ = out.stop();
        }
    }
}

/// An H.264/H.265 V4L2 encoder behind the [`Encoder`] trait, fed by the caller or by a
/// [`FrameSource`].
pub struct V4l2M2mSource {
    encoder: M2mEncoder,
    merge: HeaderMerge,
    codec: Codec,
    fps: FrameRate,
    input: Option<Box<dyn FrameSource>>,
    timeout: Duration,
    waits: u32,
}

impl V4l2M2mSource {
    /// Opens the encoder at `path` for `config` (H.264 or H.265), optionally fed by `input`.
    pub fn open(
        path: &Path,
        config: &EncoderConfig,
        input: Option<Box<dyn FrameSource>>,
    ) -> Result<V4l2M2mSource, HalError> {
        if let Some(input) = &input {
            crate::check_input_size(input.as_ref(), config)?;
        }
        let coded = match config.codec {
            Codec::H264 => CodedFormat::H264,
            Codec::H265 => CodedFormat::Hevc,
        };
        let mut m2m = M2mConfig::new(coded, config.width, config.height, config.fps);
        m2m.bitrate = config.bitrate;
        if config.gop > 0 {
            m2m.gop = config.gop;
        }
        Ok(V4l2M2mSource {
            encoder: M2mEncoder::open(path, &m2m)?,
            merge: HeaderMerge::new(config.codec),
            codec: config.codec,
            fps: config.fps,
            input,
            timeout: DEFAULT_TIMEOUT,
            waits: 0,
        })
    }

    /// Counters of the underlying encoder.
    pub fn stats(&self) -> &M2mStats {
        self.encoder.stats()
    }

    fn feed(&mut self) -> Result<(), HalError> {
        let Some(input) = self.input.as_mut() else {
            return Ok(());
        };
        while self.encoder.can_accept()? {
            match input.next_frame()? {
                Some(frame) => self
                    .encoder
                    .submit(frame)
                    .map_err(|b| HalError::from(b.1))?,
                None => self.encoder.drain()?,
            }
        }
        Ok(())
    }
}

impl Encoder for V4l2M2mSource {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn frame_rate(&self) -> FrameRate {
        self.fps
    }

    /// A V4L2 encoder's format is fixed once it streams: only the settings it was opened with
    /// are accepted.
    fn configure(&mut self, config: &EncoderConfig) -> Result<(), HalError> {
        if config.codec != self.codec || config.fps != self.fps {
            return Err(HalError::InvalidConfig(
                "a streaming V4L2 encoder cannot change codec or frame rate; reopen it".into(),
            ));
        }
        Ok(())
    }

    fn submit(&mut self, frame: RawFrame) -> Result<(), HalError> {
        self.encoder.submit(frame).map_err(|b| b.1.into())
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, HalError> {
        loop {
            self.feed()?;
            if self.input.is_none() && self.encoder.in_flight() == 0 && !self.encoder.draining() {
                return Err(HalError::NoInput("the V4L2 encoder"));
            }
            match self.encoder.next_encoded(self.timeout) {
                Ok(Some(buffer)) => {
                    self.waits = 0;
                    let pts = buffer.pts;
                    match self.merge.push(buffer.data()) {
                        // Headers alone (HEADER_MODE_SEPARATE): they go with the next picture.
                        Merged::Held => continue,
                        Merged::Alone => {
                            let keyframe = super::has_keyframe(self.codec, buffer.data());
                            return Ok(Some(Packet::leased(
                                self.codec,
                                pts,
                                keyframe,
                                Box::new(buffer),
                            )));
                        }
                        Merged::Joined(data) => {
                            drop(buffer);
                            let keyframe = super::has_keyframe(self.codec, &data);
                            return Ok(Some(Packet::from_vec(self.codec, pts, keyframe, data)));
                        }
                    }
                }
                Ok(None) => return Ok(None),
                Err(V4l2Error::Timeout { ms }) => {
                    self.waits += 1;
                    if self.waits >= MAX_WAITS {
                        return Err(V4l2Error::Stalled {
                            waits: self.waits,
                            ms,
                        }
                        .into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn force_keyframe(&mut self) -> Result<(), HalError> {
        Ok(self.encoder.force_keyframe()?)
    }

    fn drain(&mut self) -> Result<(), HalError> {
        Ok(self.encoder.drain()?)
    }

    fn take_loss(&mut self) -> Option<Loss> {
        self.encoder.take_loss()
    }
}

impl crate::packet::PacketMemory for EncodedBuffer {
    fn bytes(&self) -> &[u8] {
        self.data()
    }

    fn kind(&self) -> &'static str {
        "v4l2"
    }
}

/// Controls for `config`, set best effort: drivers lack some (vicodec has none of these).
fn controls(config: &M2mConfig) -> Vec<(u32, i32)> {
    let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let mut list = vec![
        (ioctl::CID_BITRATE, clamp(config.bitrate)),
        (ioctl::CID_GOP_SIZE, clamp(config.gop)),
    ];
    if config.coded != CodedFormat::Fwht {
        // Rate control on, at a constant rate: MFC and venus ignore the bitrate unless
        // frame-level rate control is enabled, and an upload link wants a bounded rate.
        list.push((ioctl::CID_FRAME_RC_ENABLE, 1));
        list.push((ioctl::CID_BITRATE_MODE, ioctl::BITRATE_MODE_CBR));
        // No B-frames (ffmpeg and Chromium set this too): packets then come out in input
        // order with increasing pts, which the pipeline needs.
        list.push((ioctl::CID_B_FRAMES, 0));
        // Parameter sets on every IDR, so every segment starts a decoder on its own. HEADER
        // MODE goes first: with JOINED the headers share the IDR's buffer; drivers that keep
        // SEPARATE (old venus) are handled by the header merge.
        list.push((
            ioctl::CID_HEADER_MODE,
            ioctl::HEADER_MODE_JOINED_WITH_1ST_FRAME,
        ));
        list.push((ioctl::CID_PREPEND_SPSPPS_TO_IDR, 1));
        list.push((ioctl::CID_REPEAT_SEQ_HEADER, 1));
    }
    match config.coded {
        CodedFormat::H264 => {
            list.push((ioctl::CID_H264_PROFILE, ioctl::H264_PROFILE_HIGH));
            list.push((
                ioctl::CID_H264_LEVEL,
                h264_level(config.width, config.height, config.fps, config.bitrate),
            ));
            list.push((ioctl::CID_H264_I_PERIOD, clamp(config.gop)));
        }
        CodedFormat::Hevc => {
            list.push((ioctl::CID_HEVC_PROFILE, ioctl::HEVC_PROFILE_MAIN));
        }
        CodedFormat::Fwht => {}
    }
    list
}

/// The lowest H.264 level (the `V4L2_MPEG_VIDEO_H264_LEVEL_*` value) whose limits (ITU-T
/// H.264 Table A-1: frame size and macroblock rate, and the High-profile bit rate) hold
/// `width`x`height` at `fps` and `bitrate`. Drivers otherwise keep their default, which on
/// venus is level 1.0: a 99-macroblock picture, far below any camera.
fn h264_level(width: u32, height: u32, fps: FrameRate, bitrate: u32) -> i32 {
    let mbs = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    // Macroblocks per second, rounded up.
    let mbps = (mbs * u64::from(fps.num())).div_ceil(u64::from(fps.den().max(1)));
    H264_LEVELS
        .iter()
        .find(|&&(_, max_fs, max_mbps, max_kbps)| {
            mbs <= max_fs && mbps <= max_mbps && u64::from(bitrate) <= max_kbps * 1250
        })
        .map_or(H264_LEVELS[H264_LEVELS.len() - 1].0, |l| l.0)
}

/// A CAPTURE size hint: half a raw frame, at least 512 KiB (drivers round it as they need).
fn coded_size_hint(config: &M2mConfig) -> u32 {
    let raw = u64::from(config.width) * u64::from(config.height) * 3 / 2;
    u32::try_from((raw / 2).max(MIN_CODED_BUFFER)).unwrap_or(u32::MAX)
}

/// A 90 kHz `pts` as the `timeval` the driver sees. Drivers read it as wall time: venus hands
/// it to the firmware for rate control, bcm2835-codec passes it to the VPU in microseconds,
/// so it must advance at the real rate (1 s of pts is 1 s of `timeval`). One tick is 11.1 µs,
/// so flooring to microseconds keeps distinct ticks distinct and [`from_timeval`] recovers
/// the exact pts from the copy on CAPTURE.
fn to_timeval(pts: u64) -> (i64, i64) {
    let us = u128::from(pts) * 100 / 9;
    let sec = i64::try_from(us / 1_000_000).unwrap_or(i64::MAX);
    (sec, (us % 1_000_000) as i64)
}

/// The inverse of [`to_timeval`]: microseconds back to 90 kHz ticks, rounding up (the
/// flooring there lost less than one tick).
fn from_timeval(sec: i64, usec: i64) -> u64 {
    let us = u128::from(sec.max(0) as u64) * 1_000_000 + u128::from(usec.clamp(0, 999_999) as u64);
    u64::try_from((us * 9).div_ceil(100)).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1)
}

const DEFAULT_BUFFERS: u32 = 4;
/// Frames that can be waiting for their packet: far more than any driver holds.
const MAX_PENDING: usize = 64;
/// H.264 Table A-1 per level: (V4L2 level value, MaxFS in macroblocks, MaxMBPS, MaxBR in
/// kbit/s for Baseline/Main; High allows 1.25 times that, applied where it is used).
const H264_LEVELS: [(i32, u64, u64, u64); 16] = [
    (0, 99, 1485, 64),                // 1.0
    (2, 396, 3000, 192),              // 1.1
    (3, 396, 6000, 384),              // 1.2
    (4, 396, 11_880, 768),            // 1.3
    (5, 396, 11_880, 2000),           // 2.0
    (6, 792, 19_800, 4000),           // 2.1
    (7, 1620, 20_250, 4000),          // 2.2
    (8, 1620, 40_500, 10_000),        // 3.0
    (9, 3600, 108_000, 14_000),       // 3.1
    (10, 5120, 216_000, 20_000),      // 3.2
    (11, 8192, 245_760, 20_000),      // 4.0
    (12, 8192, 245_760, 50_000),      // 4.1
    (13, 8704, 522_240, 50_000),      // 4.2
    (14, 22_080, 589_824, 135_000),   // 5.0
    (15, 36_864, 983_040, 240_000),   // 5.1
    (16, 36_864, 2_073_600, 240_000), // 5.2
];
/// Padding an encoder may add to each side of the coded size (one 16x16 macroblock, or a
/// 32-pixel HEVC CTB).
const MAX_ALIGN_PADDING: u32 = 32;
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_WAITS: u32 = 3;
const MIN_CODED_BUFFER: u64 = 512 * 1024;
const ERROR_BACKOFF: Duration = Duration::from_millis(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for pts in (0..20_000).chain([999_999, 1_000_000, 90_000 * 3600 * 24, u64::MAX / 200]) {
            let (s, u) = to_timeval(pts);
            assert!((0..1_000_000).contains(&u), "{pts}: usec {u}");
            assert_eq!(from_timeval(s, u), pts, "{pts} -> {s}.{u:06}");
        }
    }

    #[test]
    fn levels_follow_size_rate_and_bitrate() {
        let fps = |n| FrameRate::from_fps(n).unwrap();
        // 1080p30 needs 4.0 (8160 macroblocks); 720p30 3.1; 360p30 3.0.
        assert_eq!(h264_level(1920, 1080, fps(30), 4_000_000), 11);
        assert_eq!(h264_level(1280, 720, fps(30), 2_000_000), 9);
        assert_eq!(h264_level(640, 360, fps(30), 2_000_000), 8);
        // 1080p60 is beyond 4.1's macroblock rate.
        assert_eq!(h264_level(1920, 1080, fps(60), 4_000_000), 13);
        // A high bitrate alone raises the level: 30 Mbit/s is past 4.0's 25 (High).
        assert_eq!(h264_level(1920, 1080, fps(30), 30_000_000), 12);
        // QCIF at 15 fps is the only thing level 1.0 holds.
        assert_eq!(h264_level(176, 144, fps(15), 64_000), 0);
        // Beyond every level: the highest.
        assert_eq!(h264_level(8192, 8192, fps(120), 4_000_000), 16);
    }

    #[test]
    fn controls_ask_for_headers_on_every_idr_and_no_b_frames() {
        let config = M2mConfig::new(
            CodedFormat::H264,
            1280,
            720,
            FrameRate::from_fps(30).unwrap(),
        );
        let list = controls(&config);
        let get = |id| list.iter().find(|c| c.0 == id).map(|c| c.1);
        assert_eq!(get(ioctl::CID_B_FRAMES), Some(0));
        assert_eq!(get(ioctl::CID_HEADER_MODE), Some(1));
        assert_eq!(get(ioctl::CID_REPEAT_SEQ_HEADER), Some(1));
        assert_eq!(get(ioctl::CID_H264_LEVEL), Some(9));
        assert_eq!(get(ioctl::CID_H264_PROFILE), Some(4));
        let fwht = M2mConfig::new(
            CodedFormat::Fwht,
            640,
            360,
            FrameRate::from_fps(30).unwrap(),
        );
        assert!(controls(&fwht).iter().all(|c| c.0 != ioctl::CID_B_FRAMES));
    }

    #[test]
    fn the_driver_sees_real_time() {
        // One second of 90 kHz pts is one second of timeval; one 30 fps frame is 33.3 ms.
        assert_eq!(to_timeval(90_000), (1, 0));
        assert_eq!(to_timeval(3000), (0, 33_333));
        assert_eq!(to_timeval(90_000 * 61 + 45_000), (61, 500_000));
    }

    #[test]
    fn opening_a_missing_encoder_is_one_clear_error() {
        let config = M2mConfig::new(
            CodedFormat::H264,
            640,
            360,
            FrameRate::from_fps(30).unwrap(),
        );
        let e = M2mEncoder::open(Path::new("/dev/nonexistent-video11"), &config)
            .err()
            .unwrap();
        let msg = e.to_string();
        assert!(msg.contains("/dev/nonexistent-video11"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn a_regular_file_is_not_an_encoder() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let config = M2mConfig::new(
            CodedFormat::H264,
            640,
            360,
            FrameRate::from_fps(30).unwrap(),
        );
        let e = M2mEncoder::open(file.path(), &config).err().unwrap();
        assert!(e.to_string().contains("VIDIOC_QUERYCAP"), "{e}");
    }
}
