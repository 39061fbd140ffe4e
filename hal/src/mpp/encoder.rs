//! The MPP encoder as a typestate: `MppEncoder<Configuring>` → [`configure`] →
//! `MppEncoder<Ready>` → [`start`] → `MppEncoder<Encoding>` → [`stop`] → `MppEncoder<Ready>`.
//!
//! Only an encoding encoder takes frames and gives packets, and only a configured one can
//! start, so the call orders MPP needs (init before config, config before frames, reset before
//! reconfiguring mid-stream) cannot be got wrong.
//!
//! [`configure`]: MppEncoder::configure
//! [`start`]: MppEncoder::start
//! [`stop`]: MppEncoder::stop

use std::collections::VecDeque;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::sync::Arc;

use rockchip_mpp_sys::{self as ffi, Mpp};

use super::api::{self, Buffer, Context, Frame, FrameInfo, Group, PacketLease, Timeout};
use super::{MppError, MppStats};
use crate::{Codec, EncoderConfig, FrameMemory, Loss, Packet, Profile, RawFrame};

/// Typestate: created and initialised, not configured yet.
#[derive(Debug)]
pub struct Configuring;
/// Typestate: configured, no frame in flight.
#[derive(Debug)]
pub struct Ready;
/// Typestate: taking frames and giving packets.
#[derive(Debug)]
pub struct Encoding;

/// A frame [`MppEncoder::submit`] could not queue, handed back with the reason.
#[derive(Debug)]
pub struct Rejected {
    /// The frame, with its buffer lease.
    pub frame: RawFrame,
    /// Why it was not queued.
    pub error: MppError,
}

/// An MPP hardware encoder in state `S`.
pub struct MppEncoder<S> {
    inner: Inner,
    _state: PhantomData<S>,
}

/// Field order is drop order: frames in flight and the buffer group go before the context
/// is destroyed, and the library is unloaded last.
struct Inner {
    in_flight: VecDeque<InFlight>,
    /// Where mapped frames are copied to and packets are encoded into (DRM | CACHABLE);
    /// created on first use.
    group: Option<Arc<Group>>,
    codec: Codec,
    config: Option<EncoderConfig>,
    /// Strides the encoder is configured for: (bytes per row, rows of luma).
    strides: (u32, u32),
    eos_sent: bool,
    finished: bool,
    /// Pictures lost (empty packets) since the last [`MppEncoder::take_loss`].
    loss: Option<Loss>,
    stats: MppStats,
    ctx: Arc<Context>,
    lib: Arc<Mpp>,
}

/// A frame MPP is working on. Field order is drop order: the MPP frame (which references the
/// buffer) first, then our buffer reference, then the caller's lease, so an imported DMA-buf's
/// fd stays open until MPP has let go of it.
struct InFlight {
    frame: Frame,
    _buffer: Option<Buffer>,
    _raw: Option<RawFrame>,
    pts: u64,
    /// The address of the output packet MPP encodes this frame into (ours, given to MPP).
    output: Option<usize>,
    /// Its put timed out after MPP queued it: the encoder may still be reading it, so it
    /// stays here until its packet comes out, whatever else happens.
    held: bool,
}

impl MppEncoder<Configuring> {
    /// Loads MPP (see [`rockchip_mpp_sys::Mpp::load`]), creates a context and initialises it
    /// as a `codec` encoder, with `timeout` for both input and output calls.
    ///
    /// `timeout` must not be [`Timeout::NON_BLOCK`]: as the input timeout at `mpp_init` that
    /// selects MPP's async mode, whose ownership rules this encoder does not follow.
    pub fn open(codec: Codec, timeout: Timeout) -> Result<MppEncoder<Configuring>, MppError> {
        check_sync_timeout(timeout)?;
        let lib = api::load()?;
        MppEncoder::with_library(lib, codec, timeout)
    }

    /// As [`open`](MppEncoder::open), with a library already loaded.
    pub fn with_library(
        lib: Arc<Mpp>,
        codec: Codec,
        timeout: Timeout,
    ) -> Result<MppEncoder<Configuring>, MppError> {
        check_sync_timeout(timeout)?;
        let ctx = api::create(&lib)?;
        // Timeouts are set before mpp_init, as MPP's own tools do. A blocking or positive
        // input timeout there keeps MPP in sync mode (`Mpp::init`, mpp/mpp.cpp).
        api::set_input_timeout(&ctx, timeout)?;
        api::set_output_timeout(&ctx, timeout)?;
        api::init_encoder(&ctx, codec)?;
        Ok(MppEncoder {
            inner: Inner {
                lib,
                ctx,
                codec,
                config: None,
                strides: (0, 0),
                group: None,
                in_flight: VecDeque::new(),
                eos_sent: false,
                finished: false,
                loss: None,
                stats: MppStats::default(),
            },
            _state: PhantomData,
        })
    }

    /// Programs size, strides, NV12 input, rate control, GOP and profile, header mode
    /// EACH_IDR, and no SEI.
    pub fn configure(mut self, config: &EncoderConfig) -> Result<MppEncoder<Ready>, MppError> {
        self.inner.apply(config, None)?;
        api::set_header_mode_each_idr(&self.inner.ctx)?;
        api::disable_sei(&self.inner.ctx)?;
        Ok(self.into_state())
    }
}

impl MppEncoder<Ready> {
    /// Applies a new configuration (the codec cannot change: it was fixed by `mpp_init`).
    pub fn reconfigure(&mut self, config: &EncoderConfig) -> Result<(), MppError> {
        self.inner.apply(config, None)
    }

    /// Starts taking frames.
    pub fn start(mut self) -> MppEncoder<Encoding> {
        self.inner.eos_sent = false;
        self.inner.finished = false;
        self.into_state()
    }
}

impl MppEncoder<Encoding> {
    /// Queues one raw frame. MPP keeps the frame (and its buffer lease) until the packet made
    /// from it comes out; on failure the frame is handed back with the error.
    ///
    /// A DMA-buf frame is imported without a copy when its planes sit where MPP expects them
    /// (luma at offset 0, chroma right after `stride * rows`, one stride for both), switching
    /// the configured strides if needed; a mapped frame is copied into a buffer from an
    /// internal group.
    pub fn submit(&mut self, frame: RawFrame) -> Result<(), Box<Rejected>> {
        self.inner
            .submit(frame)
            .map_err(|(frame, error)| Box::new(Rejected { frame, error }))
    }

    /// Tells MPP no more frames follow; the remaining packets, then end of stream, come out.
    pub fn drain(&mut self) -> Result<(), MppError> {
        self.inner.send_eos()
    }

    /// Waits (up to the output timeout) for the next packet.
    ///
    /// `Ok(None)` means the stream ended (MPP's EOS, then [`finished`](Self::finished) is
    /// true) or MPP returned an empty packet: that picture is lost (see
    /// [`take_loss`](Self::take_loss)) and the next call goes on. `Err(MppError::NotReady)` means the
    /// timeout passed without a packet; the call can be repeated.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, MppError> {
        self.inner.next_packet()
    }

    /// Frames queued whose packets have not come out yet.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.len()
    }

    /// Whether the end of stream has been reached.
    pub fn finished(&self) -> bool {
        self.inner.finished
    }

    /// Whether [`drain`](MppEncoder::drain) was called (or the stream ended).
    pub fn draining(&self) -> bool {
        self.inner.eos_sent || self.inner.finished
    }

    /// Whether another frame can be queued now. After a put timed out, MPP's one sync-mode
    /// input task is still out with that frame, and a further put could time out before or
    /// after taking the new frame with the same `MPP_NOK`; so nothing more is put until the
    /// held frame's packet has come out.
    pub fn can_put(&self) -> bool {
        !self.inner.in_flight.iter().any(|f| f.held)
    }

    /// Pictures lost since the last call: MPP returned an empty packet without EOS (a
    /// hardware error), after which it forces an IDR and goes on.
    pub fn take_loss(&mut self) -> Option<Loss> {
        self.inner.loss.take()
    }

    /// Discards the packets of frames in flight, resets MPP and returns to `Ready`.
    ///
    /// In sync mode a frame's packet is already encoded when its put returns, and MPP's
    /// reset only forces the next frame to an IDR (`mpp_enc_reset_v2`), so the packets are
    /// taken out and dropped first: none of them can come out after a reconfigure.
    pub fn stop(mut self) -> Result<MppEncoder<Ready>, MppError> {
        self.inner.discard_in_flight();
        api::reset(&self.inner.ctx)?;
        self.inner.release_in_flight();
        Ok(self.into_state())
    }
}

impl<S> MppEncoder<S> {
    /// Asks for the next frame to be an IDR (with its parameter sets).
    pub fn force_idr(&mut self) -> Result<(), MppError> {
        api::request_idr(&self.inner.ctx)?;
        Ok(())
    }

    /// The codec the encoder was opened for.
    pub fn codec(&self) -> Codec {
        self.inner.codec
    }

    /// Counters of what went through the encoder.
    pub fn stats(&self) -> &MppStats {
        &self.inner.stats
    }

    /// The configuration in effect, once configured.
    pub fn config(&self) -> Option<&EncoderConfig> {
        self.inner.config.as_ref()
    }

    fn into_state<T>(self) -> MppEncoder<T> {
        MppEncoder {
            inner: self.inner,
            _state: PhantomData,
        }
    }
}

impl Inner {
    /// Writes `config` (with `strides`, or the aligned defaults) into MPP.
    fn apply(
        &mut self,
        config: &EncoderConfig,
        strides: Option<(u32, u32)>,
    ) -> Result<(), MppError> {
        if config.codec != self.codec {
            return Err(MppError::Config(format!(
                "the encoder was opened for {}, not {}",
                self.codec, config.codec
            )));
        }
        check_size(config.width, config.height)?;
        let (hor, ver) = strides.unwrap_or((
            align(config.width, STRIDE_ALIGN),
            align(config.height, STRIDE_ALIGN),
        ));
        let ctx = &self.ctx;
        let mut cfg = api::cfg_new(&self.lib)?;
        api::get_cfg(ctx, &mut cfg)?;
        let s32 = |cfg: &mut api::Cfg, key: &'static CStr, value: u32| {
            let value = i32::try_from(value)
                .map_err(|_| MppError::Config(format!("{key:?} = {value} is too large")))?;
            api::cfg_set_s32(cfg, key, value).map_err(MppError::from)
        };
        s32(&mut cfg, c"prep:width", config.width)?;
        s32(&mut cfg, c"prep:height", config.height)?;
        s32(&mut cfg, c"prep:hor_stride", hor)?;
        s32(&mut cfg, c"prep:ver_stride", ver)?;
        api::cfg_set_s32(&mut cfg, c"prep:format", ffi::MPP_FMT_YUV420SP)?;

        // Constant bitrate within ±1/16, as MPP's own test does for CBR: a camera's uplink
        // wants a predictable rate more than constant quality.
        api::cfg_set_s32(&mut cfg, c"rc:mode", ffi::MPP_ENC_RC_MODE_CBR)?;
        let bps = config.bitrate.clamp(MIN_BPS, MAX_BPS);
        s32(&mut cfg, c"rc:bps_target", bps)?;
        s32(&mut cfg, c"rc:bps_max", bps / 16 * 17)?;
        s32(&mut cfg, c"rc:bps_min", bps / 16 * 15)?;
        let (num, den) = (config.fps.num(), config.fps.den());
        api::cfg_set_s32(&mut cfg, c"rc:fps_in_flex", 0)?;
        s32(&mut cfg, c"rc:fps_in_num", num)?;
        api::cfg_set_s32(&mut cfg, c"rc:fps_out_flex", 0)?;
        s32(&mut cfg, c"rc:fps_out_num", num)?;
        // Releases 1.0.0–1.0.4 (what boards package) spell the denominators `denorm`; HEAD
        // since 02a35cb8 (2024-03-05) spells them `denom` and keeps `denorm` as an alias of
        // the same field. Set the spelling every known version takes, and fall back to the
        // new one for a future MPP that drops the alias.
        for (old, new) in [
            (c"rc:fps_in_denorm", c"rc:fps_in_denom"),
            (c"rc:fps_out_denorm", c"rc:fps_out_denom"),
        ] {
            if s32(&mut cfg, old, den).is_err() {
                s32(&mut cfg, new, den)?;
            }
        }
        let gop = if config.gop == 0 {
            config.fps.whole_frames_per_second()
        } else {
            config.gop
        };
        s32(&mut cfg, c"rc:gop", gop)?;
        // Every frame must come out: a dropped picture is a hole in the evidence.
        api::cfg_set_u32(&mut cfg, c"rc:drop_mode", 0)?;

        let coding = match self.codec {
            Codec::H264 => ffi::MPP_VIDEO_CODING_AVC,
            Codec::H265 => ffi::MPP_VIDEO_CODING_HEVC,
        };
        api::cfg_set_s32(&mut cfg, c"codec:type", coding)?;
        match self.codec {
            Codec::H264 => {
                let profile = config.profile.unwrap_or(Profile::High);
                let (idc, cabac, t8x8) = match profile {
                    Profile::Baseline => (66, 0, 0),
                    Profile::Main => (77, 1, 0),
                    Profile::High => (100, 1, 1),
                };
                api::cfg_set_s32(&mut cfg, c"h264:profile", idc)?;
                api::cfg_set_s32(&mut cfg, c"h264:level", h264_level(config))?;
                api::cfg_set_s32(&mut cfg, c"h264:cabac_en", cabac)?;
                api::cfg_set_s32(&mut cfg, c"h264:cabac_idc", 0)?;
                api::cfg_set_s32(&mut cfg, c"h264:trans8x8", t8x8)?;
            }
            Codec::H265 => {
                if config.profile.is_some_and(|p| p != Profile::Main) {
                    return Err(MppError::Config(
                        "the MPP H.265 encoder supports the Main profile only".into(),
                    ));
                }
                api::cfg_set_s32(&mut cfg, c"h265:profile", H265_PROFILE_MAIN)?;
                api::cfg_set_s32(&mut cfg, c"h265:level", h265_level(config))?;
                if config.width > TILE_WIDTH {
                    // Splits wide HEVC pictures into tiles the RK3588's two cores share. Older
                    // MPP releases lack the key; they encode on one core, which is no error.
                    let _ = api::cfg_set_s32(&mut cfg, c"h265:auto_tile", 1);
                }
            }
        }
        api::set_cfg(ctx, &mut cfg)?;
        // Read one value back from the encoder itself (MPP_ENC_GET_CFG copies the encoder's
        // own configuration into a fresh cfg): a library that silently ignored the keys would
        // show here. Reading `cfg` would only return what was just written into it.
        let mut applied = api::cfg_new(&self.lib)?;
        api::get_cfg(ctx, &mut applied)?;
        let width = api::cfg_get_s32(&applied, c"prep:width")?;
        if u32::try_from(width).ok() != Some(config.width) {
            return Err(MppError::Config(format!(
                "MPP reports width {width} after being set to {}",
                config.width
            )));
        }
        self.strides = (hor, ver);
        self.config = Some(config.clone());
        Ok(())
    }

    // The frame goes back to the caller on every error; `MppEncoder::submit` boxes the pair.
    #[allow(clippy::result_large_err)]
    fn submit(&mut self, raw: RawFrame) -> Result<(), (RawFrame, MppError)> {
        if self.eos_sent || self.finished {
            return Err((raw, MppError::Config("frame submitted after drain".into())));
        }
        let Some(config) = self.config.clone() else {
            return Err((
                raw,
                MppError::Config("frame submitted before configure".into()),
            ));
        };
        if (raw.width(), raw.height()) != (config.width, config.height) {
            let e = MppError::Config(format!(
                "a {}x{} frame does not fit the encoder's {}x{}",
                raw.width(),
                raw.height(),
                config.width,
                config.height
            ));
            return Err((raw, e));
        }
        let imported = matches!(raw.memory(), FrameMemory::DmaBuf { .. });
        let buffer = match self.buffer_for(&raw, &config) {
            Ok(b) => b,
            Err(e) => return Err((raw, e)),
        };
        let info = FrameInfo {
            width: config.width,
            height: config.height,
            hor_stride: self.strides.0,
            ver_stride: self.strides.1,
            format: ffi::MPP_FMT_YUV420SP,
            pts: i64::try_from(raw.pts).unwrap_or(i64::MAX),
            eos: false,
        };
        let frame = match api::frame_new(&self.lib, &info, Some(&buffer)) {
            Ok(f) => f,
            Err(e) => return Err((raw, e.into())),
        };
        let output = match self.output_packet(&config) {
            Ok(o) => o,
            Err(e) => return Err((raw, e)),
        };
        if let Err(e) = api::set_output_packet(&frame, &output) {
            return Err((raw, e.into()));
        }
        if self.in_flight.iter().any(|f| f.held) {
            return Err((
                raw,
                MppError::PutFrame(api::PutFrameError::Busy(api::Code(ffi::MPP_NOK))),
            ));
        }
        let mut held = false;
        match api::put_frame(&self.ctx, &frame) {
            Ok(()) => {}
            // Sync mode: `Mpp::put_frame` returns its poll's MPP_NOK when the encode of a
            // frame it already queued outlasts the input timeout. The encoder still reads the
            // frame and its buffer, and its packet comes out later: keep everything.
            Err(api::PutFrameError::Busy(_)) => {
                held = true;
                self.stats.put_timeouts += 1;
            }
            Err(e) => {
                // MPP did not take the frame, nor its output packet.
                drop(frame);
                drop(output);
                drop(buffer);
                return Err((raw, e.into()));
            }
        }
        let output = Some(output.into_mpp());
        self.stats.frames_in += 1;
        let pts = raw.pts;
        self.in_flight.push_back(InFlight {
            frame,
            _buffer: Some(buffer),
            // A copied frame's bytes are in MPP's buffer: its lease goes back at once. An
            // imported one stays with MPP until its packet comes out.
            _raw: imported.then_some(raw),
            pts,
            output,
            held,
        });
        Ok(())
    }

    /// The MPP buffer a frame is read from: its DMA-buf imported in place, or a copy.
    fn buffer_for(&mut self, raw: &RawFrame, config: &EncoderConfig) -> Result<Buffer, MppError> {
        match raw.memory() {
            FrameMemory::DmaBuf { fd, len } => {
                let strides = dmabuf_strides(raw)?;
                if strides != self.strides {
                    self.apply(config, Some(strides))?;
                }
                let buffer = api::buffer_import(&self.lib, fd, len)?;
                self.stats.frames_imported += 1;
                Ok(buffer)
            }
            FrameMemory::Mapped(bytes) => {
                let buffer = self.copy_in(raw, bytes)?;
                self.stats.frames_copied += 1;
                Ok(buffer)
            }
        }
    }

    /// The internal DRM | CACHABLE group, created on first use.
    fn group(&mut self) -> Result<Arc<Group>, MppError> {
        Ok(match &self.group {
            Some(g) => Arc::clone(g),
            None => {
                let g = api::group_internal(&self.lib)?;
                self.group = Some(Arc::clone(&g));
                g
            }
        })
    }

    /// A packet for MPP to encode the next frame into, over a buffer from the CACHABLE group
    /// so the NAL scan and the sealer read cached memory. MPP's own packet group for encoders
    /// is plain ION (`Mpp::init`, mpp/mpp.cpp); a caller's packet in the frame's
    /// `KEY_OUTPUT_PACKET` replaces it (`mpp_enc_check_frm_pkt`). Sized as MPP sizes its own
    /// (`mpp_enc_check_pkt_buf`: 16-aligned width × height for H.264 and H.265).
    fn output_packet(&mut self, config: &EncoderConfig) -> Result<api::OutputPacket, MppError> {
        let size = align(config.width, STRIDE_ALIGN) as usize
            * align(config.height, STRIDE_ALIGN) as usize;
        let group = self.group()?;
        let buffer = api::buffer_alloc(&group, size)?;
        // The packet holds its own reference on the buffer; ours goes at the end of scope.
        Ok(api::output_packet(&buffer)?)
    }

    /// Copies a mapped NV12 frame into a buffer from the internal group, in the configured
    /// layout.
    fn copy_in(&mut self, raw: &RawFrame, bytes: &[u8]) -> Result<Buffer, MppError> {
        let (hor, ver) = (self.strides.0 as usize, self.strides.1 as usize);
        let size = hor * ver * 3 / 2;
        let group = self.group()?;
        let mut buffer = api::buffer_alloc(&group, size)?;
        let (w, h) = (raw.width() as usize, raw.height() as usize);
        let planes = raw.planes();
        let (luma, chroma) = (planes[0], planes[1]);
        api::buffer_write(&mut buffer, |dst| {
            let (dst_luma, dst_chroma) = dst.split_at_mut(hor * ver);
            copy_plane(bytes, luma.offset, luma.stride, dst_luma, hor, w, h);
            copy_plane(
                bytes,
                chroma.offset,
                chroma.stride,
                dst_chroma,
                hor,
                w,
                h / 2,
            );
        })?;
        Ok(buffer)
    }

    fn send_eos(&mut self) -> Result<(), MppError> {
        if self.eos_sent || self.finished {
            return Ok(());
        }
        let info = FrameInfo {
            eos: true,
            ..FrameInfo::default()
        };
        let frame = api::frame_new(&self.lib, &info, None)?;
        api::put_frame(&self.ctx, &frame)?;
        self.eos_sent = true;
        self.in_flight.push_back(InFlight {
            frame,
            _buffer: None,
            _raw: None,
            pts: u64::MAX,
            output: None,
            held: false,
        });
        Ok(())
    }

    /// One `encode_get_packet`: `Ok(None)` at the end of the stream, or after an empty packet
    /// without EOS (recorded as a loss).
    fn next_packet(&mut self) -> Result<Option<Packet>, MppError> {
        if self.finished {
            return Ok(None);
        }
        let mut lease = match api::get_packet(&self.ctx) {
            Ok(lease) => lease,
            Err(e @ api::GetPacketError::NotReady(_)) => {
                self.stats.timeouts += 1;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let eos = lease.eos();
        let source = self.take_in_flight(&mut lease);
        if lease.bytes().is_empty() {
            if eos {
                self.finish();
            } else {
                self.lost(source, lease.pts())?;
            }
            return Ok(None);
        }
        let pts = match source {
            Some(pts) if pts != u64::MAX => pts,
            // No matching frame (should not happen): fall back to MPP's own pts.
            _ => u64::try_from(lease.pts()).unwrap_or(0),
        };
        let keyframe = self.check_keyframe(&lease);
        self.stats.packets += 1;
        if eos {
            // The last packet carries the EOS flag itself.
            self.finish();
        }
        Ok(Some(Packet::leased(
            self.codec,
            pts,
            keyframe,
            Box::new(MppPacket(lease)),
        )))
    }

    /// Removes the in-flight entry the packet came from (by its output packet, else by
    /// `KEY_INPUT_FRAME`, else the oldest) and returns its pts; dropping it gives the frame's lease back.
    fn take_in_flight(&mut self, lease: &mut PacketLease) -> Option<u64> {
        let own = self
            .in_flight
            .iter()
            .position(|f| f.output == Some(lease.address()));
        if own.is_some() {
            // One of our cachable packets: MPP began the CPU's read access on it.
            lease.end_cpu_access_on_drop();
        }
        let index = own
            .or_else(|| {
                let addr = lease.input_frame()?;
                self.in_flight
                    .iter()
                    .position(|f| f.frame.address() == addr)
            })
            .unwrap_or(0);
        self.in_flight.remove(index).map(|f| f.pts)
    }

    /// Keyframe = an IDR/IRAP slice in the bitstream; `KEY_OUTPUT_INTRA` is counted when it
    /// disagrees. A keyframe without parameter sets would break "every segment decodes on its
    /// own", so that is counted too.
    fn check_keyframe(&mut self, lease: &PacketLease) -> bool {
        let (mut keyframe, mut has_sps) = (false, false);
        for nal in camseal_nal::nal_units(lease.bytes()) {
            if let Some(info) = camseal_nal::classify(self.codec, nal.payload) {
                keyframe |= info.is_vcl && info.is_keyframe;
                has_sps |= info.is_parameter_set;
            }
        }
        if keyframe {
            self.stats.keyframes += 1;
            if !has_sps {
                self.stats.keyframes_without_headers += 1;
            }
        }
        match lease.intra() {
            Some(intra) if intra != keyframe => self.stats.intra_meta_mismatches += 1,
            Some(_) => {}
            None => self.stats.intra_meta_missing += 1,
        }
        keyframe
    }

    /// Records the picture of an empty packet without EOS as lost. MPP sends one when an
    /// encode failed, and then forces the next frame to an IDR itself (mpp_enc_impl.cpp,
    /// "enc failed force idr!"); asking for one as well costs nothing (the request only sets
    /// the same flag) and covers a release that does not.
    fn lost(&mut self, source: Option<u64>, packet_pts: i64) -> Result<(), MppError> {
        let from_pts = match source {
            Some(pts) if pts != u64::MAX => pts,
            _ => u64::try_from(packet_pts).unwrap_or(0),
        };
        let duration = self.config.as_ref().map_or(0, |c| {
            90_000 * u64::from(c.fps.den()) / u64::from(c.fps.num()).max(1)
        });
        let loss = Loss {
            frames: 1,
            from_pts,
            to_pts: from_pts.saturating_add(duration),
        };
        match &mut self.loss {
            Some(l) => l.merge(loss),
            None => self.loss = Some(loss),
        }
        self.stats.lost += 1;
        api::request_idr(&self.ctx)?;
        Ok(())
    }

    /// Takes out and drops the packets of the frames in flight, so none comes out after a
    /// reset. Stops at the first call without a packet (nothing more was encoded) or at EOS.
    fn discard_in_flight(&mut self) {
        while !self.finished && self.in_flight.iter().any(|f| f.pts != u64::MAX) {
            match api::get_packet(&self.ctx) {
                Ok(mut lease) => {
                    if lease.eos() {
                        self.finish();
                    }
                    self.take_in_flight(&mut lease);
                }
                Err(_) => break,
            }
        }
    }

    /// Lets go of the frames in flight after a reset. A frame whose put timed out and whose
    /// packet never came may still be read by the encoder: it is leaked rather than freed
    /// (a leak beats the hardware reading recycled memory).
    fn release_in_flight(&mut self) {
        for f in self.in_flight.drain(..) {
            if f.held {
                std::mem::forget(f);
            }
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        // MPP has let go of every frame once it signals EOS.
        self.in_flight.clear();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.in_flight.is_empty() {
            // MPP may still be reading the frames: make it drop them before their buffers and
            // leases go. Nothing to report the error to from Drop.
            let _ = api::reset(&self.ctx);
            self.release_in_flight();
        }
    }
}

/// Packet memory: the MPP packet itself, deinit when the last reader drops it.
struct MppPacket(PacketLease);

impl crate::packet::PacketMemory for MppPacket {
    fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    fn kind(&self) -> &'static str {
        "mpp"
    }
}

/// Strides of a DMA-buf NV12 frame MPP can read in place: (bytes per row, luma rows).
fn dmabuf_strides(raw: &RawFrame) -> Result<(u32, u32), MppError> {
    let planes = raw.planes();
    let (luma, chroma) = (planes[0], planes[1]);
    let stride = luma.stride;
    let ok = luma.offset == 0
        && chroma.stride == stride
        && stride > 0
        && chroma.offset.is_multiple_of(stride)
        && chroma.offset / stride >= raw.height() as usize;
    let hor = u32::try_from(stride).ok();
    let ver = u32::try_from(chroma.offset / stride.max(1)).ok();
    match (ok, hor, ver) {
        (true, Some(hor), Some(ver)) if hor.is_multiple_of(DMABUF_STRIDE_ALIGN) => Ok((hor, ver)),
        _ => Err(MppError::Config(format!(
            "a DMA-buf frame with planes {planes:?} is not laid out as MPP reads NV12 \
             (luma at 0, chroma at stride x rows, stride a multiple of {DMABUF_STRIDE_ALIGN})"
        ))),
    }
}

/// Copies `rows` rows of `width` bytes from `src` (at `offset`, `stride` apart) into `dst`
/// (`dst_stride` apart). The frame's layout was checked against its buffer when it was built,
/// and `dst` holds at least `rows * dst_stride` bytes, so every row is in bounds; `get`
/// keeps a bad layout from panicking all the same.
fn copy_plane(
    src: &[u8],
    offset: usize,
    stride: usize,
    dst: &mut [u8],
    dst_stride: usize,
    width: usize,
    rows: usize,
) {
    for row in 0..rows {
        let from = offset + row * stride;
        let to = row * dst_stride;
        if let (Some(s), Some(d)) = (src.get(from..from + width), dst.get_mut(to..to + width)) {
            d.copy_from_slice(s);
        }
    }
}

/// Refuses the one timeout that would put MPP in async mode (docs/HARDWARE.md, "Encoder
/// mode"): there a put of a full queue is `MPP_NOK` with the frame not taken, and a failed
/// encode's empty packet does not name its frame, so this encoder's sync-mode ownership
/// rules would free frames MPP still holds.
fn check_sync_timeout(timeout: Timeout) -> Result<(), MppError> {
    if timeout == Timeout::NON_BLOCK {
        return Err(MppError::Config(
            "a non-blocking timeout would put MPP in async mode, which this encoder does not \
             drive; use a positive timeout or Timeout::BLOCK"
                .into(),
        ));
    }
    Ok(())
}

fn check_size(width: u32, height: u32) -> Result<(), MppError> {
    if !(MIN_SIDE..=MAX_SIDE).contains(&width)
        || !(MIN_SIDE..=MAX_SIDE).contains(&height)
        || !width.is_multiple_of(2)
        || !height.is_multiple_of(2)
    {
        return Err(MppError::Config(format!(
            "size {width}x{height}: sides must be even, {MIN_SIDE}..={MAX_SIDE}"
        )));
    }
    Ok(())
}

/// The lowest H.264 level whose macroblock rate and frame size cover the stream (Table A-1).
fn h264_level(config: &EncoderConfig) -> i32 {
    let mbs = u64::from(config.width.div_ceil(16)) * u64::from(config.height.div_ceil(16));
    let rate = mbs * u64::from(config.fps.num()).div_ceil(u64::from(config.fps.den()));
    let level = H264_LEVELS
        .iter()
        .find(|(_, max_rate, max_frame)| rate <= *max_rate && mbs <= *max_frame)
        .map_or(62, |(level, _, _)| *level);
    // Level 4.0 caps High at 25 Mbit/s; 4.1 allows 62.5.
    if level == 40 && config.bitrate > 20_000_000 {
        41
    } else {
        level
    }
}

/// `general_level_idc` (30 × level) of the lowest H.265 level covering the stream (Table A.8).
fn h265_level(config: &EncoderConfig) -> i32 {
    let samples = u64::from(config.width) * u64::from(config.height);
    let rate = samples * u64::from(config.fps.num()).div_ceil(u64::from(config.fps.den()));
    H265_LEVELS
        .iter()
        .find(|(_, max_rate, max_frame)| rate <= *max_rate && samples <= *max_frame)
        .map_or(186, |(level, _, _)| *level)
}

fn align(n: u32, to: u32) -> u32 {
    n.div_ceil(to) * to
}

/// (level_idc, max macroblocks per second, max frame size in macroblocks).
const H264_LEVELS: [(i32, u64, u64); 11] = [
    (30, 40_500, 1_620),
    (31, 108_000, 3_600),
    (32, 216_000, 5_120),
    (40, 245_760, 8_192),
    (42, 522_240, 8_704),
    (50, 589_824, 22_080),
    (51, 983_040, 36_864),
    (52, 2_073_600, 36_864),
    (60, 4_177_920, 139_264),
    (61, 8_355_840, 139_264),
    (62, 16_711_680, 139_264),
];
/// (general_level_idc, max luma samples per second, max luma picture size).
const H265_LEVELS: [(i32, u64, u64); 8] = [
    (93, 33_177_600, 983_040),
    (120, 66_846_720, 2_228_224),
    (123, 133_693_440, 2_228_224),
    (150, 267_386_880, 8_912_896),
    (153, 534_773_760, 8_912_896),
    (156, 1_069_547_520, 8_912_896),
    (180, 1_069_547_520, 35_651_584),
    (183, 2_139_095_040, 35_651_584),
];
const H265_PROFILE_MAIN: i32 = 1;
/// Pictures wider than this use HEVC tiles.
const TILE_WIDTH: u32 = 1920;
const STRIDE_ALIGN: u32 = 16;
/// Row alignment camseal asks of DMA-buf NV12 input. This is camseal's own choice (V4L2
/// capture drivers align at least this much), not a check MPP makes.
const DMABUF_STRIDE_ALIGN: u32 = 8;
const MIN_SIDE: u32 = 16;
const MAX_SIDE: u32 = 8192;
const MIN_BPS: u32 = 16_000;
/// MPP refuses any of `rc:bps_target`, `rc:bps_max`, `rc:bps_min` at or above 200 MiB
/// (`MPP_ENC_MAX_BPS`, inc/rk_venc_rc.h; checked in mpp_enc_impl.cpp). With `bps_max` at
/// 17/16 of the target, the target must stay below this.
const MAX_BPS: u32 = ((200 << 20) - 1) / 17 * 16;
// The rate-control window (target ±1/16) stays strictly inside MPP's (1 KiB, 200 MiB).
const _: () = assert!(MAX_BPS / 16 * 17 < 200 << 20 && MIN_BPS / 16 * 15 > 1 << 10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameRate;

    fn config(w: u32, h: u32, fps: u32) -> EncoderConfig {
        EncoderConfig::new(Codec::H264, w, h, FrameRate::from_fps(fps).unwrap())
    }

    #[test]
    fn levels_cover_the_stream() {
        assert_eq!(h264_level(&config(640, 360, 30)), 30);
        assert_eq!(h264_level(&config(1280, 720, 30)), 31);
        assert_eq!(h264_level(&config(1920, 1080, 30)), 40);
        assert_eq!(h264_level(&config(1920, 1080, 60)), 42);
        assert_eq!(h264_level(&config(3840, 2160, 30)), 51);
        assert_eq!(h264_level(&config(7680, 4320, 30)), 60);
        let mut fast = config(1920, 1080, 30);
        fast.bitrate = 40_000_000;
        assert_eq!(h264_level(&fast), 41);
        assert_eq!(h265_level(&config(1920, 1080, 30)), 120);
        assert_eq!(h265_level(&config(3840, 2160, 30)), 150);
        assert_eq!(h265_level(&config(3840, 2160, 60)), 153);
    }

    #[test]
    fn only_sync_mode_timeouts_are_taken() {
        assert!(check_sync_timeout(Timeout::NON_BLOCK).is_err());
        assert!(check_sync_timeout(Timeout::BLOCK).is_ok());
        assert!(check_sync_timeout(Timeout::millis(0)).is_ok());
        assert!(check_sync_timeout(Timeout::millis(1000)).is_ok());
    }

    #[test]
    fn copy_plane_honours_both_strides() {
        let src: Vec<u8> = (0..40).collect();
        let mut dst = vec![0u8; 24];
        copy_plane(&src, 2, 10, &mut dst, 8, 4, 3);
        assert_eq!(&dst[0..4], &[2, 3, 4, 5]);
        assert_eq!(&dst[8..12], &[12, 13, 14, 15]);
        assert_eq!(&dst[16..20], &[22, 23, 24, 25]);
        assert_eq!(&dst[4..8], &[0; 4]);
        // Out-of-range rows are skipped, not a panic.
        copy_plane(&src, 35, 10, &mut dst, 8, 4, 3);
    }

    #[test]
    fn dmabuf_layouts_must_match_what_mpp_reads() {
        use crate::{DmaBuf, PixelFormat, Plane};
        let file = tempfile::tempfile().unwrap();
        let make = |planes: [Plane; 2]| {
            let file = file.try_clone().unwrap();
            let buf = DmaBuf::new(std::os::fd::OwnedFd::from(file), 1 << 20);
            RawFrame::new(PixelFormat::Nv12, 64, 30, &planes, 0, Box::new(buf)).unwrap()
        };
        let p = |offset, stride| Plane { offset, stride };
        assert_eq!(
            dmabuf_strides(&make([p(0, 64), p(64 * 32, 64)])).unwrap(),
            (64, 32)
        );
        assert!(dmabuf_strides(&make([p(0, 64), p(64 * 30 + 8, 64)])).is_err());
        assert!(dmabuf_strides(&make([p(64, 64), p(64 * 32, 64)])).is_err());
        assert!(dmabuf_strides(&make([p(0, 68), p(68 * 32, 68)])).is_err());
        assert!(dmabuf_strides(&make([p(0, 64), p(64 * 32, 128)])).is_err());
    }
}
