//! The `rkmpp` source: the Rockchip MPP hardware encoders (RK3588's VEPU580 and relatives),
//! H.264 and H.265.
//!
//! Layers (STYLE rule 9):
//! - `sys.rs`: owning handle types over the `rockchip-mpp-sys` function table; the only
//!   `unsafe` of the backend.
//! - `api.rs`: one safe function per C call with its own error type ([`CreateError`],
//!   [`InitError`], [`ControlError`], [`CfgError`], [`PutFrameError`], [`GetPacketError`],
//!   [`BufferError`]), all converting into [`MppError`].
//! - `encoder.rs`: the typestate [`MppEncoder`]`<`[`Configuring`]` | `[`Ready`]` |
//!   `[`Encoding`]`>`.
//!
//! [`MppSource`] puts an encoder behind the crate's [`Encoder`] trait, fed either by the
//! caller's [`submit`](Encoder::submit) calls or by a [`FrameSource`] (a test pattern, or a
//! V4L2 capture node whose DMA-bufs MPP imports without a copy).
//!
//! MPP runs in sync mode (a positive input timeout before `mpp_init`; docs/HARDWARE.md says
//! why): a put returns once its frame is encoded. A put that outlasts the timeout leaves the
//! frame with the encoder, so the frame, its buffer and its DMA-buf lease are kept until its
//! packet comes out. Stopping discards the packets already encoded before MPP's reset, and an
//! empty packet without EOS (a failed encode) is reported through
//! [`take_loss`](Encoder::take_loss) while the stream goes on.
//!
//! The library is opened at run time, so a binary built with this backend runs on boards
//! without MPP and says so in one line when asked for `rkmpp` there.
//!
//! Packets are leases: MPP encodes each frame into a packet over a cachable buffer of ours
//! (`KEY_OUTPUT_PACKET`), the sealer reads the bytes in place, and the CPU access MPP began is
//! ended and `mpp_packet_deinit` runs when the [`Packet`] is dropped. Keyframes are IDR/IRAP slices
//! found in the bitstream; MPP's `KEY_OUTPUT_INTRA` meta is cross-checked against them
//! ([`MppStats`]). Header mode EACH_IDR puts SPS/PPS (and VPS) on every IDR.

mod api;
mod encoder;
mod sys;

use std::time::Duration;

pub use api::{
    BufferError, CfgError, Code, ControlError, CreateError, FrameError, GetPacketError, InitError,
    PutFrameError, Timeout,
};
pub use encoder::{Configuring, Encoding, MppEncoder, Ready, Rejected};
pub use rockchip_mpp_sys::LoadError;

use crate::input::FrameSource;
use crate::{Codec, Encoder, EncoderConfig, FrameRate, HalError, Loss, Packet, RawFrame};

/// What went wrong in the MPP backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MppError {
    /// A buffer call failed.
    #[error(transparent)]
    Buffer(#[from] BufferError),
    /// An encoder setting was refused.
    #[error(transparent)]
    Cfg(#[from] CfgError),
    /// The configuration or input is not something this backend can encode.
    #[error("MPP encoder: {0}")]
    Config(String),
    /// A control command failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// `mpp_create` failed.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// `mpp_frame_init` failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// `encode_get_packet` failed or timed out.
    #[error(transparent)]
    GetPacket(#[from] GetPacketError),
    /// `mpp_init` failed.
    #[error(transparent)]
    Init(#[from] InitError),
    /// The MPP library could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// `encode_put_frame` failed.
    #[error(transparent)]
    PutFrame(#[from] PutFrameError),
    /// No packet came out in several consecutive output timeouts.
    #[error("the MPP encoder produced no packet in {waits} waits of {timeout_ms} ms")]
    Stalled {
        /// Consecutive timeouts.
        waits: u32,
        /// The output timeout.
        timeout_ms: u32,
    },
}

impl MppError {
    /// Whether this is only "no packet within the timeout", after which the call can be
    /// repeated.
    pub fn is_not_ready(&self) -> bool {
        matches!(self, MppError::GetPacket(GetPacketError::NotReady(_)))
    }
}

/// Counters of what went through an MPP encoder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MppStats {
    /// Frames queued.
    pub frames_in: u64,
    /// Frames whose DMA-buf MPP imported without a copy.
    pub frames_imported: u64,
    /// Frames copied into an MPP buffer (mapped memory).
    pub frames_copied: u64,
    /// Packets returned.
    pub packets: u64,
    /// Packets holding an IDR/IRAP picture.
    pub keyframes: u64,
    /// Keyframes without parameter sets (header mode EACH_IDR not honoured).
    pub keyframes_without_headers: u64,
    /// Packets whose `KEY_OUTPUT_INTRA` disagreed with the bitstream.
    pub intra_meta_mismatches: u64,
    /// Packets without `KEY_OUTPUT_INTRA`.
    pub intra_meta_missing: u64,
    /// Output timeouts.
    pub timeouts: u64,
    /// Input timeouts: puts that outlasted the timeout while MPP kept the frame.
    pub put_timeouts: u64,
    /// Pictures lost: empty packets without EOS.
    pub lost: u64,
}

/// How to open an [`MppSource`]. Start from [`MppOptions::new`].
#[non_exhaustive]
pub struct MppOptions {
    /// The encoder configuration (codec, size, rate, bitrate, GOP, profile).
    pub config: EncoderConfig,
    /// Where raw frames come from; `None` for a caller that [`submit`](Encoder::submit)s.
    pub input: Option<Box<dyn FrameSource>>,
    /// How long one input or output call may wait.
    pub timeout: Duration,
    /// Frames kept queued in MPP when self-fed; more overlaps encoding with sealing.
    pub in_flight: usize,
    /// Consecutive output timeouts before the encoder is declared stuck.
    pub max_waits: u32,
}

impl MppOptions {
    /// `config` with no input, a 1 s timeout, 2 frames in flight, 3 waits.
    pub fn new(config: EncoderConfig) -> MppOptions {
        MppOptions {
            config,
            input: None,
            timeout: DEFAULT_TIMEOUT,
            in_flight: DEFAULT_IN_FLIGHT,
            max_waits: DEFAULT_MAX_WAITS,
        }
    }
}

/// An MPP encoder behind the [`Encoder`] trait. See the [module docs](self).
pub struct MppSource {
    state: State,
    input: Option<Box<dyn FrameSource>>,
    config: EncoderConfig,
    in_flight: usize,
    max_waits: u32,
    timeout_ms: u32,
    waits: u32,
}

enum State {
    Closed,
    Encoding(MppEncoder<Encoding>),
    Ready(MppEncoder<Ready>),
}

impl MppSource {
    /// Loads MPP, opens and configures an encoder.
    pub fn open(options: MppOptions) -> Result<MppSource, HalError> {
        let MppOptions {
            config,
            input,
            timeout,
            in_flight,
            max_waits,
        } = options;
        if let Some(input) = &input {
            crate::check_input_size(input.as_ref(), &config)?;
        }
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let encoder = MppEncoder::open(config.codec, Timeout::millis(timeout_ms))?;
        let encoder = encoder.configure(&config)?;
        Ok(MppSource {
            state: State::Ready(encoder),
            input,
            config,
            in_flight: in_flight.max(1),
            max_waits: max_waits.max(1),
            timeout_ms: Timeout::millis(timeout_ms).raw().unsigned_abs(),
            waits: 0,
        })
    }

    /// Counters of what went through the encoder.
    pub fn stats(&self) -> MppStats {
        match &self.state {
            State::Encoding(e) => e.stats().clone(),
            State::Ready(e) => e.stats().clone(),
            State::Closed => MppStats::default(),
        }
    }

    /// The encoder in `Encoding`, starting it if needed; `None` once closed.
    fn encoding(&mut self) -> Option<&mut MppEncoder<Encoding>> {
        if let State::Ready(_) = self.state {
            let State::Ready(ready) = std::mem::replace(&mut self.state, State::Closed) else {
                return None;
            };
            self.state = State::Encoding(ready.start());
        }
        match &mut self.state {
            State::Encoding(e) => Some(e),
            _ => None,
        }
    }

    /// Keeps `in_flight` frames queued from the input; at its end, drains.
    fn feed(&mut self) -> Result<(), HalError> {
        let in_flight = self.in_flight;
        let Some(input) = self.input.as_mut() else {
            return Ok(());
        };
        let State::Encoding(encoder) = &mut self.state else {
            return Ok(());
        };
        while !encoder.draining() && encoder.in_flight() < in_flight && encoder.can_put() {
            match input.next_frame()? {
                Some(frame) => encoder.submit(frame).map_err(|r| r.error)?,
                None => encoder.drain()?,
            }
        }
        Ok(())
    }
}

impl Encoder for MppSource {
    fn codec(&self) -> Codec {
        self.config.codec
    }

    fn frame_rate(&self) -> FrameRate {
        self.config.fps
    }

    /// Stops the encoder if it is running (dropping frames in flight), applies `config` and
    /// leaves it ready; the codec must stay the one it was opened with.
    fn configure(&mut self, config: &EncoderConfig) -> Result<(), HalError> {
        let mut ready = match std::mem::replace(&mut self.state, State::Closed) {
            State::Encoding(e) => e.stop()?,
            State::Ready(r) => r,
            State::Closed => {
                return Err(HalError::InvalidConfig(
                    "the MPP encoder has been drained".into(),
                ));
            }
        };
        let result = ready.reconfigure(config);
        self.state = State::Ready(ready);
        result?;
        self.config = config.clone();
        Ok(())
    }

    fn submit(&mut self, frame: RawFrame) -> Result<(), HalError> {
        let encoder = self
            .encoding()
            .ok_or_else(|| HalError::InvalidConfig("the MPP encoder has been drained".into()))?;
        encoder.submit(frame).map_err(|r| r.error.into())
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, HalError> {
        loop {
            if self.encoding().is_none_or(|e| e.finished()) {
                return Ok(None);
            }
            self.feed()?;
            let Some(encoder) = self.encoding() else {
                return Ok(None);
            };
            if encoder.in_flight() == 0 && !encoder.draining() {
                return Err(HalError::NoInput("the MPP encoder"));
            }
            match encoder.next_packet() {
                // An empty packet: the picture is lost (reported by `take_loss`), the stream
                // goes on.
                Ok(None) if !encoder.finished() => self.waits = 0,
                Ok(packet) => {
                    self.waits = 0;
                    return Ok(packet);
                }
                Err(e) if e.is_not_ready() => {
                    self.waits += 1;
                    if self.waits >= self.max_waits {
                        return Err(MppError::Stalled {
                            waits: self.waits,
                            timeout_ms: self.timeout_ms,
                        }
                        .into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn force_keyframe(&mut self) -> Result<(), HalError> {
        match &mut self.state {
            State::Encoding(e) => e.force_idr()?,
            State::Ready(r) => r.force_idr()?,
            State::Closed => {}
        }
        Ok(())
    }

    fn take_loss(&mut self) -> Option<Loss> {
        match &mut self.state {
            State::Encoding(e) => e.take_loss(),
            State::Ready(_) | State::Closed => None,
        }
    }

    fn drain(&mut self) -> Result<(), HalError> {
        match &mut self.state {
            State::Encoding(e) => e.drain()?,
            // Nothing was ever queued: the stream is simply over.
            State::Ready(_) => self.state = State::Closed,
            State::Closed => {}
        }
        Ok(())
    }
}

/// Opens `rkmpp[:WxH@FPS]` for `camseal run`: an MPP encoder fed by a test pattern.
pub(crate) fn open_spec(
    spec: &str,
    options: &crate::SourceOptions,
) -> Result<Box<dyn Encoder>, HalError> {
    let (width, height, fps) = if spec.is_empty() {
        DEFAULT_SPEC
    } else {
        crate::parse_video_spec(spec)?
    };
    let (config, input) = crate::m2m_setup(width, height, fps, options)?;
    let mut mpp = MppOptions::new(config);
    mpp.input = Some(input);
    Ok(Box::new(MppSource::open(mpp)?))
}

/// `rkmpp` without a spec: 1080p at 30 fps.
const DEFAULT_SPEC: (u32, u32, FrameRate) = (1920, 1080, FrameRate { num: 30, den: 1 });
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
const DEFAULT_IN_FLIGHT: usize = 2;
const DEFAULT_MAX_WAITS: u32 = 3;
