//! Encoder sources for camseal: where encoded H.264 / H.265 access units come from.
//!
//! What this crate does **not** do: it never encrypts, chunks or stores video, and it does not
//! parse bitstreams itself beyond asking `camseal-nal` where access units and keyframes are.
//! It hands out encoded access units as [`Packet`]s and nothing else.
//!
//! Layers:
//! - [`Encoder`]: the one trait every source implements, shaped for memory-to-memory hardware
//!   encoders (Rockchip MPP, V4L2 M2M) as well as sources that produce packets on their own
//!   (UVC cameras, a recording, a software encoder).
//! - [`Packet`]: one encoded access unit as a lease on the backend's memory, and
//!   [`RawFrame`]: one raw picture handed to a memory-to-memory encoder.
//! - [`FrameSource`]: raw pictures for memory-to-memory encoders ([`TestPattern`], or a V4L2
//!   capture node whose buffers are lent as DMA-bufs).
//! - Backends: [`replay`] (an Annex-B file, mapped and cut into access units without copying),
//!   [`pipe`] (an Annex-B stream from standard input or a FIFO, copied once as a pipe forces),
//!   [`soft`] (openh264 over a synthetic moving test pattern), [`mpp`] (Rockchip MPP, loaded
//!   at run time) and [`v4l2`] (V4L2 M2M encoders and H.264 cameras). [`open_hardware_source`]
//!   opens the hardware ones from a command-line spec.
//!
//! Timestamps are 90 kHz ticks ([`PTS_HZ`]), the MPEG clock every container and RTP profile
//! for H.264/H.265 uses.
//!
//! `unsafe` is denied crate-wide and allowed only in the `sys` modules and the V4L2 ioctls:
//! `replay/sys.rs` (mapping a file), `soft/sys.rs` (one raw openh264 option call),
//! `mpp/sys.rs` (MPP handles over the `rockchip-mpp-sys` table) and `v4l2/ioctl/`.

#![deny(unsafe_code)]

mod frame;
pub mod input;
pub mod mpp;
mod packet;
pub mod pipe;
pub mod replay;
pub mod soft;
pub mod v4l2;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use camseal_nal::Codec;

pub use frame::{DmaBuf, FrameBuffer, FrameMemory, PixelFormat, Plane, RawFrame};
pub use input::{FrameSource, TestPattern};
pub use mpp::{MppError, MppSource};
pub use packet::{LentMemory, Packet};
pub use pipe::{PipeOptions, PipeSource};
pub use replay::{FileOptions, FileSource};
pub use soft::{DEFAULT_SOFT_SPEC, SoftConfig, SoftSource, parse_soft_spec};
pub use v4l2::V4l2Error;

/// A source of encoded access units.
///
/// The contract every backend keeps:
/// - each [`Packet`] is exactly one access unit in Annex-B form (start codes included);
/// - `pts` is strictly increasing from packet to packet, in 90 kHz ticks;
/// - `keyframe` is set when the access unit holds an IDR / IRAP picture;
/// - `Ok(None)` from [`next_packet`](Encoder::next_packet) means the stream has ended, and
///   every later call returns `Ok(None)` too.
///
/// Packets are leases: several may be alive at once, on other threads, and dropping one gives
/// its memory back to the backend.
pub trait Encoder: Send {
    /// The codec of the packets this source produces.
    fn codec(&self) -> Codec;

    /// The nominal frame rate, which the `pts` of successive pictures follow.
    fn frame_rate(&self) -> FrameRate;

    /// Applies an encoder configuration.
    ///
    /// Hardware encoders program the encoder. A software source re-creates its encoder; a
    /// replayed file can change nothing, so it only checks that the configuration matches the
    /// recording and otherwise returns [`HalError::InvalidConfig`].
    fn configure(&mut self, config: &EncoderConfig) -> Result<(), HalError>;

    /// Hands one raw picture to a memory-to-memory encoder.
    ///
    /// The encoder keeps the frame (and so its buffer) until the hardware has read it. Sources
    /// that produce their own pictures return [`HalError::Unsupported`].
    fn submit(&mut self, frame: RawFrame) -> Result<(), HalError>;

    /// The next encoded access unit, or `None` at the end of the stream.
    fn next_packet(&mut self) -> Result<Option<Packet>, HalError>;

    /// Asks for the next picture to be a keyframe (IDR), with its parameter sets.
    fn force_keyframe(&mut self) -> Result<(), HalError>;

    /// Ends the input: packets already encoded are still returned by
    /// [`next_packet`](Encoder::next_packet), then it returns `None`.
    fn drain(&mut self) -> Result<(), HalError>;

    /// Pictures the source lost since the last call, or `None`.
    ///
    /// Hardware loses pictures now and then without the stream ending: MPP hands out an
    /// empty packet after a hardware fault, a V4L2 driver flags a CAPTURE buffer
    /// `V4L2_BUF_FLAG_ERROR`, a UVC camera delivers a corrupt frame. A backend then keeps
    /// going, asks for a keyframe, and reports the loss here instead of failing.
    ///
    /// Callers ask after every [`next_packet`](Encoder::next_packet) (also after it returned
    /// `None`): a loss reported then happened before the packet that call returned. Packets
    /// after a loss may still refer to the lost pictures until the next keyframe; the caller
    /// (the pipeline) skips them and records the whole run as one gap.
    fn take_loss(&mut self) -> Option<Loss> {
        None
    }
}

/// Pictures a source lost without the stream ending (see [`Encoder::take_loss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Loss {
    /// How many pictures were lost (at least 1).
    pub frames: u64,
    /// pts of the first lost picture, in 90 kHz ticks.
    pub from_pts: u64,
    /// pts just past the last lost picture (the pts of the picture after the loss when the
    /// backend knows it).
    pub to_pts: u64,
}

impl Loss {
    /// Folds a later loss into this one: the frames add up and the span covers both.
    pub fn merge(&mut self, later: Loss) {
        self.frames = self.frames.saturating_add(later.frames);
        self.from_pts = self.from_pts.min(later.from_pts);
        self.to_pts = self.to_pts.max(later.to_pts);
    }
}

/// The settings a caller asks an encoder for.
///
/// Build one with [`EncoderConfig::new`] and adjust the public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncoderConfig {
    /// Output codec.
    pub codec: Codec,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frame rate of the input pictures.
    pub fps: FrameRate,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// Keyframe interval in frames (a GOP); 0 lets the encoder choose.
    pub gop: u32,
    /// Codec profile; `None` lets the encoder choose.
    pub profile: Option<Profile>,
}

impl EncoderConfig {
    /// A configuration with a 2 Mbit/s target and one keyframe per second.
    pub fn new(codec: Codec, width: u32, height: u32, fps: FrameRate) -> EncoderConfig {
        EncoderConfig {
            codec,
            width,
            height,
            fps,
            bitrate: DEFAULT_BITRATE,
            gop: fps.whole_frames_per_second(),
            profile: None,
        }
    }
}

/// A codec profile an encoder can be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// H.264 (Constrained) Baseline.
    Baseline,
    /// H.264 High.
    High,
    /// H.264 Main, or H.265 Main.
    Main,
}

/// A frame rate as an exact fraction, `num / den` frames per second (30000/1001 for NTSC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameRate {
    num: u32,
    den: u32,
}

impl FrameRate {
    /// `num / den` frames per second; `None` when either is zero.
    pub const fn new(num: u32, den: u32) -> Option<FrameRate> {
        if num == 0 || den == 0 {
            None
        } else {
            Some(FrameRate { num, den })
        }
    }

    /// A whole number of frames per second; `None` for zero.
    pub const fn from_fps(fps: u32) -> Option<FrameRate> {
        FrameRate::new(fps, 1)
    }

    /// The exact fraction nearest to `fps` frames per second, as a command line gives it.
    ///
    /// Whole rates stay whole, the NTSC rates (29.97, 59.94, 23.976) become `n*1000/1001`, and
    /// anything else is kept to a thousandth. `None` for values that are not finite, not
    /// positive, or above 1000.
    pub fn from_f64(fps: f64) -> Option<FrameRate> {
        if !fps.is_finite() || fps <= 0.0 || fps > MAX_FPS_F64 {
            return None;
        }
        let whole = fps.round();
        if (fps - whole).abs() < 1e-6 {
            // In range (checked above), so the cast is exact.
            return FrameRate::from_fps(whole as u32);
        }
        let ntsc = (fps * 1.001).round();
        if (fps - ntsc * 1000.0 / 1001.0).abs() < 1e-3 {
            return FrameRate::new(ntsc as u32 * 1000, 1001);
        }
        let milli = (fps * 1000.0).round() as u32;
        let g = gcd(milli, 1000);
        FrameRate::new(milli / g, 1000 / g)
    }

    /// Numerator of the rate.
    pub const fn num(self) -> u32 {
        self.num
    }

    /// Denominator of the rate.
    pub const fn den(self) -> u32 {
        self.den
    }

    /// The presentation time of frame `index`, in 90 kHz ticks (rounded down).
    pub const fn pts(self, index: u64) -> u64 {
        let ticks = index as u128 * PTS_HZ as u128 * self.den as u128 / self.num as u128;
        // Saturate instead of wrapping: u64 ticks last 6.5 million years at 90 kHz.
        if ticks > u64::MAX as u128 {
            u64::MAX
        } else {
            ticks as u64
        }
    }

    /// The wall-clock offset of frame `index` from frame 0.
    pub fn time_of(self, index: u64) -> Duration {
        let nanos = index as u128 * NANOS_PER_SEC * self.den as u128 / self.num as u128;
        duration_from_nanos(nanos)
    }

    /// How many frames start before `duration` has elapsed: frames `0..n` have
    /// `time_of(i) < duration`.
    pub fn frames_within(self, duration: Duration) -> u64 {
        let scaled = duration.as_nanos() * self.num as u128;
        let per = NANOS_PER_SEC * self.den as u128;
        let frames = scaled.div_ceil(per);
        u64::try_from(frames).unwrap_or(u64::MAX)
    }

    /// The rate rounded to a whole number of frames per second, at least 1.
    pub const fn whole_frames_per_second(self) -> u32 {
        let fps = (self.num + self.den / 2) / self.den;
        if fps == 0 { 1 } else { fps }
    }

    /// The rate as a float, for encoders that take one.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{} fps", self.num)
        } else {
            write!(f, "{}/{} fps", self.num, self.den)
        }
    }
}

/// Errors from encoder sources. Each message is one line; causes are chained via `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HalError {
    /// A memory-to-memory encoder was asked for a packet with no frame queued and no input
    /// attached: submit a frame first.
    #[error("{0} has no frame queued: submit a raw frame before asking for a packet")]
    NoInput(&'static str),
    /// The Rockchip MPP backend failed (including: the library is not installed).
    #[error(transparent)]
    Mpp(#[from] MppError),
    /// A V4L2 source failed (including: the device node does not exist).
    #[error(transparent)]
    V4l2(#[from] V4l2Error),
    /// The stream file has no bytes.
    #[error("file {} is empty", path.display())]
    EmptyStream {
        /// The file.
        path: PathBuf,
    },
    /// The software encoder (openh264) reported an error.
    #[error("software H.264 encoder failed: {0}")]
    Encoder(String),
    /// An encoder configuration or source option is out of range or not supported.
    #[error("invalid encoder configuration: {0}")]
    InvalidConfig(String),
    /// Reading or mapping a file failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The stream has pictures but no parameter sets before the first one, so no decoder could
    /// start from it (or the codec is wrong).
    #[error(
        "file {} has no {codec} parameter sets before its first picture (is it really {codec}?)",
        path.display()
    )]
    NoParameterSets {
        /// The file.
        path: PathBuf,
        /// The codec the file was read as.
        codec: Codec,
    },
    /// The path is a directory or a device, not a regular file.
    #[error("{} is not a regular file (a directory?)", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file has no Annex-B start code at all.
    #[error("file {} does not look like an H.264/H.265 Annex-B stream", path.display())]
    NotAnnexB {
        /// The file.
        path: PathBuf,
    },
    /// Neither the options, the file name nor the content tell which codec a stream is.
    #[error(
        "cannot tell whether {} is H.264 or H.265; name it .h264/.h265 or give the codec explicitly",
        path.display()
    )]
    UnknownCodec {
        /// The file.
        path: PathBuf,
    },
    /// The operation makes no sense for this source.
    #[error("{0} is not supported by this source")]
    Unsupported(&'static str),
}

/// Options for [`open_hardware_source`], from the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceOptions {
    /// Codec for encoders (default H.264).
    pub codec: Option<Codec>,
    /// Target bitrate in bits per second (default [`DEFAULT_BITRATE`]).
    pub bitrate: Option<u32>,
    /// Stop after this much video; by default a source runs until it ends by itself.
    pub duration: Option<Duration>,
    /// Raw input of a memory-to-memory encoder, `v4l2:/dev/videoN`; by default a test
    /// pattern.
    pub input: Option<String>,
}

/// Opens the hardware source `spec` names: `rkmpp[:WxH@FPS]` (Rockchip MPP) or
/// `v4l2-m2m:/dev/videoN[:WxH@FPS]` (a V4L2 encoder), both fed by a test pattern or
/// `options.input`; or `v4l2:/dev/videoN[:WxH@FPS]` (a camera that outputs H.264).
///
/// Returns `Ok(None)` when `spec` names no hardware source, so the caller can try its own
/// kinds (`file:`, `soft`).
pub fn open_hardware_source(
    spec: &str,
    options: &SourceOptions,
) -> Result<Option<Box<dyn Encoder>>, HalError> {
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "rkmpp" => mpp::open_spec(rest, options).map(Some),
        "v4l2-m2m" => v4l2::open_m2m_spec(rest, options).map(Some),
        "v4l2" => v4l2::open_capture_spec(rest, options).map(Some),
        _ => Ok(None),
    }
}

/// Parses `WIDTHxHEIGHT[@FPS]` (`1280x720@30`, `1920x1080@29.97`); 30 fps without `@`.
///
/// Sides must be even and 16..=8192; the frame rate positive and at most 1000.
pub fn parse_video_spec(s: &str) -> Result<(u32, u32, FrameRate), HalError> {
    let bad = || {
        HalError::InvalidConfig(format!(
            "video spec {s:?} is not WIDTHxHEIGHT@FPS (for example 1280x720@30)"
        ))
    };
    let (size, fps) = match s.split_once('@') {
        Some((size, fps)) => {
            let fps: f64 = fps.parse().map_err(|_| bad())?;
            (size, FrameRate::from_f64(fps).ok_or_else(bad)?)
        }
        None => (s, FrameRate { num: 30, den: 1 }),
    };
    let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
    let width: u32 = w.parse().map_err(|_| bad())?;
    let height: u32 = h.parse().map_err(|_| bad())?;
    let side_ok = |n: u32| n.is_multiple_of(2) && (16..=8192).contains(&n);
    if !side_ok(width) || !side_ok(height) {
        return Err(HalError::InvalidConfig(format!(
            "video size {width}x{height}: sides must be even, 16..=8192"
        )));
    }
    Ok((width, height, fps))
}

/// Opens a raw input named on the command line (`v4l2:/dev/videoN`) for a `width`x`height`
/// encoder.
pub(crate) fn open_input(
    spec: &str,
    width: u32,
    height: u32,
    fps: FrameRate,
    duration: Option<Duration>,
) -> Result<Box<dyn FrameSource>, HalError> {
    match spec.strip_prefix("v4l2:") {
        Some(rest) => v4l2::open_frame_input(rest, width, height, fps, duration),
        None => Err(HalError::InvalidConfig(format!(
            "input {spec:?} is not supported: use v4l2:/dev/videoN"
        ))),
    }
}

/// What a memory-to-memory hardware encoder runs with: the codec and bitrate `options` ask
/// for at `width`x`height`, fed by `options.input` or else a test pattern that lasts
/// `options.duration`.
pub(crate) fn m2m_setup(
    width: u32,
    height: u32,
    fps: FrameRate,
    options: &SourceOptions,
) -> Result<(EncoderConfig, Box<dyn FrameSource>), HalError> {
    let mut config = EncoderConfig::new(options.codec.unwrap_or(Codec::H264), width, height, fps);
    if let Some(bitrate) = options.bitrate {
        config.bitrate = bitrate;
    }
    let input: Box<dyn FrameSource> = match &options.input {
        Some(input) => open_input(input, width, height, fps, options.duration)?,
        None => {
            let mut pattern = TestPattern::new(width, height, fps)?;
            if let Some(duration) = options.duration {
                pattern = pattern.with_duration(duration);
            }
            Box::new(pattern)
        }
    };
    Ok((config, input))
}

/// Refuses a raw input whose pictures are not the size the encoder is set to.
pub(crate) fn check_input_size(
    input: &dyn FrameSource,
    config: &EncoderConfig,
) -> Result<(), HalError> {
    if input.size() == (config.width, config.height) {
        return Ok(());
    }
    let (w, h) = input.size();
    Err(HalError::InvalidConfig(format!(
        "the input delivers {w}x{h} frames but the encoder is set to {}x{}",
        config.width, config.height
    )))
}

/// Ticks per second of [`Packet::pts`]: the 90 kHz MPEG clock.
pub const PTS_HZ: u64 = 90_000;

/// Bitrate [`EncoderConfig::new`] and [`SoftConfig::new`] start from.
pub const DEFAULT_BITRATE: u32 = 2_000_000;

fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = nanos / NANOS_PER_SEC;
    let sub = (nanos % NANOS_PER_SEC) as u32;
    match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, sub),
        Err(_) => Duration::MAX,
    }
}

const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

const NANOS_PER_SEC: u128 = 1_000_000_000;
const MAX_FPS_F64: f64 = 1000.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rate_rejects_zero() {
        assert_eq!(FrameRate::new(0, 1), None);
        assert_eq!(FrameRate::new(30, 0), None);
        assert_eq!(FrameRate::from_fps(0), None);
    }

    #[test]
    fn pts_follow_the_rate() {
        let r30 = FrameRate::from_fps(30).unwrap();
        assert_eq!(r30.pts(0), 0);
        assert_eq!(r30.pts(1), 3000);
        assert_eq!(r30.pts(30), 90_000);
        let ntsc = FrameRate::new(30000, 1001).unwrap();
        assert_eq!(ntsc.pts(1), 3003);
        assert_eq!(ntsc.pts(30000), 1001 * 90_000);
        let r25 = FrameRate::from_fps(25).unwrap();
        assert_eq!(r25.time_of(5), Duration::from_millis(200));
        assert_eq!(FrameRate::from_fps(1).unwrap().pts(u64::MAX), u64::MAX);
    }

    #[test]
    fn frames_within_counts_frames_that_start_before_the_limit() {
        let r30 = FrameRate::from_fps(30).unwrap();
        assert_eq!(r30.frames_within(Duration::from_secs(10)), 300);
        assert_eq!(r30.frames_within(Duration::ZERO), 0);
        // 1 ns past frame 0 still includes frame 0 only.
        assert_eq!(r30.frames_within(Duration::from_nanos(1)), 1);
        // 100 ms at 30 fps: frames at 0, 33.3, 66.7 ms.
        assert_eq!(r30.frames_within(Duration::from_millis(100)), 3);
        let ntsc = FrameRate::new(30000, 1001).unwrap();
        assert_eq!(ntsc.frames_within(Duration::from_millis(1001)), 30);
    }

    #[test]
    fn frame_rate_from_f64() {
        assert_eq!(FrameRate::from_f64(30.0), FrameRate::new(30, 1));
        assert_eq!(FrameRate::from_f64(29.97), FrameRate::new(30000, 1001));
        assert_eq!(FrameRate::from_f64(23.976), FrameRate::new(24000, 1001));
        assert_eq!(FrameRate::from_f64(12.5), FrameRate::new(25, 2));
        assert_eq!(FrameRate::from_f64(0.0), None);
        assert_eq!(FrameRate::from_f64(-1.0), None);
        assert_eq!(FrameRate::from_f64(f64::NAN), None);
        assert_eq!(FrameRate::from_f64(1e9), None);
    }

    #[test]
    fn frame_rate_display() {
        assert_eq!(FrameRate::from_fps(30).unwrap().to_string(), "30 fps");
        assert_eq!(
            FrameRate::new(30000, 1001).unwrap().to_string(),
            "30000/1001 fps"
        );
    }

    #[test]
    fn errors_are_one_line() {
        let path = PathBuf::from("/tmp/x.h264");
        let errors = [
            HalError::EmptyStream { path: path.clone() },
            HalError::NotAnnexB { path: path.clone() },
            HalError::UnknownCodec { path: path.clone() },
            HalError::NoParameterSets {
                path: path.clone(),
                codec: Codec::H265,
            },
            HalError::Io {
                path,
                source: std::io::Error::other("boom"),
            },
            HalError::Unsupported("submitting raw frames"),
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(msg.len() > 10, "{msg}");
        }
    }
}
