//! One open fake encoder: formats, controls, buffer queues, and the encode step.

use std::collections::VecDeque;

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder as H264Encoder, EncoderConfig, FrameRate, IntraFramePeriod,
};
use openh264::formats::YUVBuffer;

use crate::abi::*;
use crate::faults::Faults;
use crate::profile::Profile;
use crate::sys;

/// An errno for the ioctl to return.
pub(crate) type Errno = i32;

/// One plane of a buffer: a memfd for MMAP, or what was queued for DMABUF.
#[derive(Debug, Default)]
pub(crate) struct PlaneMem {
    /// The memfd backing an MMAP plane (closed with the device).
    pub memfd: Option<i32>,
    pub length: u32,
    /// The `mem_offset` cookie `mmap` is called with.
    pub cookie: u32,
    pub bytesused: u32,
    pub data_offset: u32,
    /// DMABUF: the fd queued.
    pub dmabuf: Option<i32>,
}

#[derive(Debug, Default)]
pub(crate) struct Buf {
    pub planes: Vec<PlaneMem>,
    pub flags: u32,
    pub tv: (i64, i64),
    pub sequence: u32,
    pub queued: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub memory: u32,
    pub bufs: Vec<Buf>,
    pub streaming: bool,
    /// Indices queued by the application, in order.
    pub queued: VecDeque<usize>,
    /// Indices done by the "hardware", in the order DQBUF returns them.
    pub done: VecDeque<usize>,
    pub sequence: u32,
}

/// A raw or coded format as set.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fmt {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    /// Per memory plane: (bytesperline, sizeimage).
    pub planes: [(u32, u32); 3],
    pub num_planes: u32,
}

/// A packet waiting for a CAPTURE buffer.
struct Piece {
    data: Vec<u8>,
    tv: (i64, i64),
    flags: u32,
}

pub(crate) struct Device {
    pub profile: Profile,
    faults: Faults,
    pub output: Queue,
    pub capture: Queue,
    pub out_fmt: Fmt,
    pub cap_fmt: Fmt,
    pub interval: (u32, u32),
    header_mode: i32,
    repeat_headers: bool,
    gop: u32,
    bitrate: u32,
    force_key: bool,
    encoder: Option<H264Encoder>,
    headers_sent: bool,
    backlog: VecDeque<Piece>,
    frames: u64,
    delivered: u64,
    draining: bool,
    last_done: bool,
    last_tv: Option<(i64, i64)>,
    next_cookie: u32,
}

impl Device {
    pub(crate) fn new(profile: Profile, faults: Faults) -> Device {
        let (w, h) = (640, 480);
        let mut dev = Device {
            profile,
            faults,
            output: Queue::default(),
            capture: Queue::default(),
            out_fmt: Fmt::default(),
            cap_fmt: Fmt::default(),
            interval: (1, 30),
            header_mode: profile.header_modes().0,
            repeat_headers: false,
            gop: 30,
            bitrate: 2_000_000,
            force_key: false,
            encoder: None,
            headers_sent: false,
            backlog: VecDeque::new(),
            frames: 0,
            delivered: 0,
            draining: false,
            last_done: false,
            last_tv: None,
            next_cookie: 0,
        };
        dev.cap_fmt = dev.coded_fmt(w, h, 0);
        dev.out_fmt = dev.raw_fmt(w, h, profile.raw_formats()[0]);
        dev
    }

    pub(crate) fn capture_type(&self) -> u32 {
        if self.profile.mplane() {
            BUF_TYPE_VIDEO_CAPTURE_MPLANE
        } else {
            BUF_TYPE_VIDEO_CAPTURE
        }
    }

    pub(crate) fn output_type(&self) -> u32 {
        if self.profile.mplane() {
            BUF_TYPE_VIDEO_OUTPUT_MPLANE
        } else {
            BUF_TYPE_VIDEO_OUTPUT
        }
    }

    /// The queue for `buf_type`, or `EINVAL` for a type this device does not have.
    pub(crate) fn queue(&mut self, buf_type: u32) -> Result<&mut Queue, Errno> {
        if buf_type == self.capture_type() {
            Ok(&mut self.capture)
        } else if buf_type == self.output_type() {
            Ok(&mut self.output)
        } else {
            Err(libc::EINVAL)
        }
    }

    /// The coded format: the size asked for; the CAPTURE buffer size the driver picks.
    pub(crate) fn coded_fmt(&self, width: u32, height: u32, asked: u32) -> Fmt {
        let (width, height) = (width.clamp(32, 4096), height.clamp(32, 4096));
        let size = match self.profile {
            // bcm2835: DEF_COMP_BUF_SIZE_* by size (768 KiB above 720p, 512 KiB below),
            // or more if asked.
            Profile::Bcm2835 => {
                let def = if width * height > 1280 * 720 {
                    768 << 10
                } else {
                    512 << 10
                };
                asked.max(def)
            }
            // venus: its own estimate, rounded up to 4 KiB.
            Profile::VenusOld => self
                .profile
                .round_size(asked.max(width * height * 3 / 4).max(64 << 10)),
            // MediaTek: what was asked, at least its minimum.
            Profile::Mediatek => asked.max(width * height * 3 / 4).max(64 << 10),
        };
        Fmt {
            width,
            height,
            pixelformat: PIX_FMT_H264,
            planes: [(0, size), (0, 0), (0, 0)],
            num_planes: 1,
        }
    }

    /// The raw format the driver settles on for `pixelformat` at `width`x`height`.
    pub(crate) fn raw_fmt(&self, width: u32, height: u32, pixelformat: u32) -> Fmt {
        let offered = self.profile.raw_formats();
        // Drivers adjust an unknown format to their first one (try_fmt).
        let pixelformat = if offered.contains(&pixelformat) {
            pixelformat
        } else {
            offered[0]
        };
        let (bpl_align, h_align) = self.profile.raw_align();
        let (width, height) = (width.clamp(32, 4096), height.clamp(32, 4096));
        let bpl = width.div_ceil(bpl_align) * bpl_align;
        let rows = height.div_ceil(h_align) * h_align;
        let luma = bpl * rows;
        let chroma = bpl * rows / 2;
        // mtk_video_formats_output: NV12M/NV21M in 2 memory planes, YUV420M/YVU420M in 3.
        // The 3-plane ones are offered and sized, not encoded from (camseal asks NV12M).
        let (planes, num_planes) = match pixelformat {
            PIX_FMT_NV12M | PIX_FMT_NV21M => ([(bpl, luma), (bpl, chroma), (0, 0)], 2),
            PIX_FMT_YUV420M | PIX_FMT_YVU420M => (
                [(bpl, luma), (bpl / 2, chroma / 2), (bpl / 2, chroma / 2)],
                3,
            ),
            _ => (
                [
                    (bpl, self.profile.round_size(luma + chroma)),
                    (0, 0),
                    (0, 0),
                ],
                1,
            ),
        };
        Fmt {
            width,
            height: rows,
            pixelformat,
            planes,
            num_planes,
        }
    }

    pub(crate) fn set_control(&mut self, id: u32, value: i32) -> Result<(), Errno> {
        if !self.profile.has_control(id) {
            return Err(libc::EINVAL);
        }
        match id {
            CID_HEADER_MODE => {
                let (_, joined_ok) = self.profile.header_modes();
                if value == HEADER_MODE_JOINED && !joined_ok {
                    // v4l2-ctrls: a value in the menu's skip mask is EINVAL.
                    return Err(libc::EINVAL);
                }
                if !(0..=1).contains(&value) {
                    return Err(libc::ERANGE);
                }
                self.header_mode = value;
            }
            CID_REPEAT_SEQ_HEADER | CID_PREPEND_SPSPPS_TO_IDR => self.repeat_headers = value != 0,
            CID_FORCE_KEY_FRAME => self.force_key = true,
            CID_GOP_SIZE | CID_H264_I_PERIOD if value > 0 => self.gop = value as u32,
            CID_BITRATE if value > 0 => self.bitrate = value as u32,
            CID_B_FRAMES if value != 0 => return Err(libc::ERANGE),
            _ => {}
        }
        Ok(())
    }

    /// Allocates `count` buffers on `buf_type` (`count` 0 frees them).
    pub(crate) fn reqbufs(&mut self, buf_type: u32, memory: u32, count: u32) -> Result<u32, Errno> {
        if memory != MEMORY_MMAP && memory != MEMORY_DMABUF {
            return Err(libc::EINVAL);
        }
        let is_capture = buf_type == self.capture_type();
        let fmt = if is_capture {
            self.cap_fmt
        } else {
            self.out_fmt
        };
        let mut cookie = self.next_cookie;
        let q = self.queue(buf_type)?;
        if q.streaming {
            return Err(libc::EBUSY);
        }
        free_queue(q);
        q.memory = memory;
        let count = count.min(32);
        for _ in 0..count {
            let mut buf = Buf::default();
            for p in 0..fmt.num_planes as usize {
                let length = fmt.planes[p].1;
                let mut plane = PlaneMem {
                    length,
                    ..PlaneMem::default()
                };
                if memory == MEMORY_MMAP {
                    plane.memfd = Some(sys::memfd(length as usize)?);
                    // Distinct page-aligned cookies, like vb2's `mem_offset`.
                    plane.cookie = cookie;
                    cookie += length.div_ceil(4096) * 4096;
                }
                buf.planes.push(plane);
            }
            q.bufs.push(buf);
        }
        self.next_cookie = cookie;
        Ok(count)
    }

    /// The memfd behind an mmap cookie.
    pub(crate) fn memfd_at(&self, cookie: u32) -> Option<(i32, u32)> {
        [&self.capture, &self.output]
            .into_iter()
            .flat_map(|q| &q.bufs)
            .flat_map(|b| &b.planes)
            .find(|p| p.memfd.is_some() && p.cookie == cookie)
            .and_then(|p| p.memfd.map(|fd| (fd, p.length)))
    }

    /// A frame queued on OUTPUT: checks the timestamp's rate, then encodes.
    pub(crate) fn queued_output(&mut self, index: usize) -> Result<(), Errno> {
        let tv = self.output.bufs[index].tv;
        if let Some(prev) = self.last_tv {
            check_timestamp_rate(prev, tv, self.interval);
        }
        self.last_tv = Some(tv);
        self.run();
        Ok(())
    }

    /// Runs jobs as v4l2-mem2mem schedules them (v4l2_m2m_try_schedule): one OUTPUT frame
    /// per job, and only while both queues stream and a CAPTURE buffer is queued, so an
    /// OUTPUT buffer comes back only once there was room for its packet.
    pub(crate) fn run(&mut self) {
        if !(self.output.streaming && self.capture.streaming) {
            return;
        }
        loop {
            // A `reorder:N` fault models a second job finishing first (multi-core encoders):
            // the frame after the N-th is encoded before the N-th is delivered.
            let second_job = self.faults.reorder_at(self.delivered + 1)
                && self.backlog.len() == 1
                && !self.output.queued.is_empty();
            if !second_job {
                self.deliver();
                if !self.backlog.is_empty() || self.capture.queued.is_empty() {
                    return;
                }
            }
            let Some(index) = self.output.queued.pop_front() else {
                return;
            };
            self.encode(index);
            let buf = &mut self.output.bufs[index];
            buf.queued = false;
            self.output.done.push_back(index);
        }
    }

    fn encode(&mut self, index: usize) {
        self.frames += 1;
        let tv = self.output.bufs[index].tv;
        if self.faults.error_at(self.frames) {
            // A per-frame encode failure: the CAPTURE buffer comes back flagged ERROR with
            // the frame's timestamp, and the encoder goes on (dev-encoder.rst).
            self.backlog.push_back(Piece {
                data: Vec::new(),
                tv,
                flags: BUF_FLAG_ERROR,
            });
            return;
        }
        let Some(frame) = self.read_frame(index) else {
            self.backlog.push_back(Piece {
                data: Vec::new(),
                tv,
                flags: BUF_FLAG_ERROR,
            });
            return;
        };
        let (w, h) = (self.cap_fmt.width as usize, self.cap_fmt.height as usize);
        if self.encoder.is_none() {
            let (num, den) = self.interval;
            let fps = if num == 0 {
                30.0
            } else {
                den as f32 / num as f32
            };
            let config = EncoderConfig::new()
                .skip_frames(false)
                .bitrate(BitRate::from_bps(self.bitrate))
                .max_frame_rate(FrameRate::from_hz(fps))
                .intra_frame_period(IntraFramePeriod::from_num_frames(self.gop))
                .num_threads(1);
            match H264Encoder::with_api_config(OpenH264API::from_source(), config) {
                Ok(e) => self.encoder = Some(e),
                Err(e) => {
                    eprintln!("fake-v4l2: openh264: {e}");
                    return;
                }
            }
        } else if std::mem::take(&mut self.force_key)
            && let Some(e) = self.encoder.as_mut()
        {
            e.force_intra_frame();
        }
        let yuv = YUVBuffer::from_vec(frame, w, h);
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        let data = match encoder.encode(&yuv) {
            Ok(bits) => bits.to_vec(),
            Err(e) => {
                eprintln!("fake-v4l2: openh264: {e}");
                return;
            }
        };
        if std::env::var_os("FAKE_V4L2_TRACE").is_some() {
            eprintln!(
                "fake-v4l2: encoded frame {} into {} bytes",
                self.frames,
                data.len()
            );
        }
        self.shape(data, tv);
    }

    /// Splits openh264's access unit into what the driver would put in CAPTURE buffers.
    fn shape(&mut self, data: Vec<u8>, tv: (i64, i64)) {
        let (headers, pictures, idr) = split_headers(&data);
        let send_headers = !headers.is_empty() && (!self.headers_sent || self.repeat_headers);
        let key = if idr { BUF_FLAG_KEYFRAME } else { 0 };
        // MediaTek encodes the sequence header into a buffer of its own on the first job
        // (mtk_venc_encode_header), whatever the header mode.
        let separate = self.header_mode == HEADER_MODE_SEPARATE
            || (self.profile == Profile::Mediatek && !self.headers_sent);
        if send_headers {
            self.headers_sent = true;
            if separate {
                self.backlog.push_back(Piece {
                    data: headers,
                    tv,
                    flags: 0,
                });
                self.backlog.push_back(Piece {
                    data: pictures,
                    tv,
                    flags: key,
                });
            } else {
                let mut joined = headers;
                joined.extend_from_slice(&pictures);
                self.backlog.push_back(Piece {
                    data: joined,
                    tv,
                    flags: key,
                });
            }
        } else {
            self.backlog.push_back(Piece {
                data: pictures,
                tv,
                flags: key,
            });
        }
    }

    /// Moves pieces into queued CAPTURE buffers; after a drain, marks the last one.
    fn deliver(&mut self) {
        if std::env::var_os("FAKE_V4L2_TRACE").is_some() {
            eprintln!(
                "fake-v4l2: deliver: backlog {} capture queued {} streaming {}",
                self.backlog.len(),
                self.capture.queued.len(),
                self.capture.streaming
            );
        }
        if !self.capture.streaming {
            return;
        }
        loop {
            if self.backlog.is_empty() {
                if self.draining && self.output.queued.is_empty() && !self.last_done {
                    // dev-encoder.rst: after the last frame, a CAPTURE buffer flagged LAST
                    // (empty here, as vb2's v4l2_m2m_last_buffer_done gives).
                    let Some(index) = self.capture.queued.pop_front() else {
                        return;
                    };
                    self.last_done = true;
                    let buf = &mut self.capture.bufs[index];
                    buf.flags = BUF_FLAG_LAST;
                    for p in &mut buf.planes {
                        p.bytesused = 0;
                        p.data_offset = 0;
                    }
                    self.finish_capture(index);
                }
                return;
            }
            if self.capture.queued.is_empty() {
                return;
            }
            self.delivered += 1;
            if self.faults.reorder_at(self.delivered) && self.backlog.len() >= 2 {
                // Another packet finished first: dev-encoder.rst allows CAPTURE buffers to
                // come back in another order than the frames went in.
                self.backlog.swap(0, 1);
            }
            let Some(piece) = self.backlog.pop_front() else {
                return;
            };
            let Some(index) = self.capture.queued.pop_front() else {
                return;
            };
            let offset = self.profile.data_offset();
            let buf = &mut self.capture.bufs[index];
            buf.tv = piece.tv;
            buf.flags = piece.flags;
            let plane = &mut buf.planes[0];
            let fits = offset as usize + piece.data.len() <= plane.length as usize;
            if piece.flags & BUF_FLAG_ERROR != 0 || !fits {
                // Too small a buffer is an error per buffer too (venus, bcm2835).
                buf.flags |= BUF_FLAG_ERROR;
                plane.bytesused = 0;
                plane.data_offset = 0;
            } else {
                if let Some(fd) = plane.memfd {
                    sys::write_at(fd, offset as usize, &piece.data);
                }
                plane.data_offset = offset;
                plane.bytesused = offset + piece.data.len() as u32;
            }
            if self.draining && self.output.queued.is_empty() && self.backlog.is_empty() {
                // The last packet of a drain carries LAST itself (bcm2835, MediaTek).
                self.capture.bufs[index].flags |= BUF_FLAG_LAST;
                self.last_done = true;
            }
            self.finish_capture(index);
        }
    }

    fn finish_capture(&mut self, index: usize) {
        let seq = self.capture.sequence;
        self.capture.sequence += 1;
        let buf = &mut self.capture.bufs[index];
        buf.sequence = seq;
        buf.queued = false;
        self.capture.done.push_back(index);
    }

    /// `V4L2_ENC_CMD_STOP`.
    pub(crate) fn stop(&mut self) -> Result<(), Errno> {
        if !self.profile.has_encoder_cmd() {
            return Err(libc::ENOTTY);
        }
        self.draining = true;
        self.run();
        Ok(())
    }

    /// Whether DQBUF on CAPTURE should say `EPIPE` (the LAST buffer is out).
    pub(crate) fn capture_finished(&self) -> bool {
        self.last_done && self.capture.done.is_empty()
    }

    /// Stops a queue: the driver returns every buffer.
    pub(crate) fn streamoff(&mut self, buf_type: u32) -> Result<(), Errno> {
        let is_capture = buf_type == self.capture_type();
        let q = self.queue(buf_type)?;
        q.streaming = false;
        q.queued.clear();
        q.done.clear();
        for b in &mut q.bufs {
            b.queued = false;
        }
        if is_capture {
            self.last_done = false;
            self.draining = false;
            self.backlog.clear();
        }
        Ok(())
    }

    /// The OUTPUT frame at `index` as I420 at the coded size, read from its memory.
    fn read_frame(&mut self, index: usize) -> Option<Vec<u8>> {
        let fmt = self.out_fmt;
        let (w, h) = (self.cap_fmt.width as usize, self.cap_fmt.height as usize);
        let contiguous_only = self.profile.contiguous_only();
        let buf = &self.output.bufs[index];
        let mut maps = Vec::new();
        for p in &buf.planes {
            let fd = p.memfd.or(p.dmabuf)?;
            if p.dmabuf.is_some() && contiguous_only && !sys::is_contiguous(fd) {
                return None;
            }
            maps.push((
                sys::read_all(fd, p.length as usize)?,
                p.data_offset as usize,
            ));
        }
        let bpl = fmt.planes[0].0 as usize;
        let (luma, luma_off) = maps.first()?;
        let (chroma, chroma_off) = match maps.get(1) {
            Some((c, off)) => (c, *off),
            // Single plane: chroma after bytesperline * the aligned height.
            None => (luma, bpl * fmt.height as usize),
        };
        let cbpl = fmt.planes[1].0.max(fmt.planes[0].0) as usize;
        let mut out = vec![0u8; w * h * 3 / 2];
        for row in 0..h {
            let from = luma_off + row * bpl;
            out[row * w..(row + 1) * w].copy_from_slice(luma.get(from..from + w)?);
        }
        let (u_at, v_at) = (w * h, w * h + w * h / 4);
        for row in 0..h / 2 {
            let from = chroma_off + row * cbpl;
            let line = chroma.get(from..from + w)?;
            for x in 0..w / 2 {
                out[u_at + row * w / 2 + x] = line[2 * x];
                out[v_at + row * w / 2 + x] = line[2 * x + 1];
            }
        }
        Some(out)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        free_queue(&mut self.capture);
        free_queue(&mut self.output);
    }
}

fn free_queue(q: &mut Queue) {
    for b in q.bufs.drain(..) {
        for p in b.planes {
            if let Some(fd) = p.memfd {
                sys::close(fd);
            }
        }
    }
    q.queued.clear();
    q.done.clear();
}

/// Drivers read the OUTPUT timestamp as wall time (venus hands it to the firmware's rate
/// control, bcm2835 to the VPU in microseconds). A step far from one frame interval means
/// the application's clock is not microseconds, e.g. 90 kHz ticks passed as `tv_usec`.
fn check_timestamp_rate(prev: (i64, i64), now: (i64, i64), interval: (u32, u32)) {
    let us = |t: (i64, i64)| t.0 * 1_000_000 + t.1;
    let step = us(now) - us(prev);
    let (num, den) = interval;
    if den == 0 || step <= 0 {
        return;
    }
    let expected = i64::from(num) * 1_000_000 / i64::from(den);
    if step * 2 < expected || step > expected * 8 {
        eprintln!(
            "fake-v4l2: misuse: OUTPUT timestamps step {step} us, one frame is {expected} us \
             (timestamps are not microseconds?)"
        );
    }
}

/// (parameter-set NAL units, the rest, whether it holds an IDR slice) of an Annex-B access
/// unit, start codes kept.
fn split_headers(data: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let begin = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((begin, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let (mut headers, mut rest, mut idr) = (Vec::new(), Vec::new(), false);
    for (k, &(begin, payload)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |s| s.0);
        let Some(&first) = data.get(payload) else {
            continue;
        };
        let nal = &data[begin..end];
        match first & 0x1f {
            7 | 8 => headers.extend_from_slice(nal),
            t => {
                idr |= t == 5;
                rest.extend_from_slice(nal);
            }
        }
    }
    (headers, rest, idr)
}
