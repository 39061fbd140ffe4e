//! The `soft` source: openh264 encoding a synthetic moving test pattern.
//!
//! This is the source that works on any machine, so that `camseal run` needs no camera. Each
//! frame is drawn in Rust (a scrolling diagonal gradient, scrolling colour bars, a bouncing
//! box, a binary frame counter and light sensor-like noise, so every picture differs from the
//! last and the slices carry real data) and encoded by the openh264 library built from its
//! bundled source. Every packet is one H.264 Annex-B access unit (the output of one encode
//! call); keyframes are IDR pictures and always carry their SPS and PPS.
//!
//! openh264 writes into its own buffer, which the next encode call overwrites, so each packet
//! owns a copy of its bytes (one `Vec` per packet). That copy is cheap next to the encoding.

use std::time::Duration;

use openh264::encoder::{
    BitRate, Encoder as H264Encoder, EncoderConfig as H264Config, FrameRate as H264FrameRate,
    IntraFramePeriod, Profile as H264Profile, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

mod sys;

use crate::{
    Codec, DEFAULT_BITRATE, Encoder, EncoderConfig, FrameRate, HalError, Packet, Profile, RawFrame,
};

/// Settings of the software source. Start from [`SoftConfig::new`] or [`SoftConfig::default`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SoftConfig {
    /// Picture width in pixels: even, 16..=3840.
    pub width: u32,
    /// Picture height in pixels: even, 16..=3840 (the smaller side at most 2160).
    pub height: u32,
    /// Frames per second, 1..=120.
    pub fps: u32,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// Stop after this much video (frames that start before it); `None` runs forever.
    pub duration: Option<Duration>,
    /// Frames from one IDR to the next, at least 1.
    pub keyframe_interval: u32,
}

impl SoftConfig {
    /// `width`x`height` at `fps`, 2 Mbit/s, one keyframe per second, no duration limit.
    pub fn new(width: u32, height: u32, fps: u32) -> SoftConfig {
        SoftConfig {
            width,
            height,
            fps,
            bitrate: DEFAULT_BITRATE,
            duration: None,
            keyframe_interval: fps,
        }
    }

    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<(), HalError> {
        let SoftConfig {
            width,
            height,
            fps,
            bitrate,
            keyframe_interval,
            ..
        } = *self;
        let size_ok = |n: u32| n.is_multiple_of(2) && (MIN_SIDE..=MAX_SIDE).contains(&n);
        if !size_ok(width) || !size_ok(height) || width.min(height) > MAX_SHORT_SIDE {
            return Err(HalError::InvalidConfig(format!(
                "soft encoder size {width}x{height}: width and height must be even, \
                 {MIN_SIDE}..={MAX_SIDE}, and the smaller one at most {MAX_SHORT_SIDE}"
            )));
        }
        if !(1..=MAX_FPS).contains(&fps) {
            return Err(HalError::InvalidConfig(format!(
                "soft encoder frame rate {fps}: must be 1..={MAX_FPS}"
            )));
        }
        if !(MIN_BITRATE..=MAX_BITRATE).contains(&bitrate) {
            return Err(HalError::InvalidConfig(format!(
                "soft encoder bitrate {bitrate} bit/s: must be {MIN_BITRATE}..={MAX_BITRATE}"
            )));
        }
        if keyframe_interval == 0 {
            return Err(HalError::InvalidConfig(
                "soft encoder keyframe interval must be at least 1 frame".into(),
            ));
        }
        Ok(())
    }

    fn frame_rate(&self) -> Result<FrameRate, HalError> {
        FrameRate::from_fps(self.fps).ok_or_else(|| {
            HalError::InvalidConfig(format!(
                "soft encoder frame rate {}: must be 1..={MAX_FPS}",
                self.fps
            ))
        })
    }
}

impl Default for SoftConfig {
    /// [`DEFAULT_SOFT_SPEC`]: 640x360 at 30 fps.
    fn default() -> SoftConfig {
        let (width, height, fps) = DEFAULT_SOFT_SPEC;
        SoftConfig::new(width, height, fps)
    }
}

/// Parses a `WIDTHxHEIGHT@FPS` spec such as `1280x720@30`; `@FPS` may be left out (30 fps).
///
/// The numbers are range-checked like [`SoftConfig::validate`] does.
pub fn parse_soft_spec(s: &str) -> Result<(u32, u32, u32), HalError> {
    let bad = || {
        HalError::InvalidConfig(format!(
            "soft source spec {s:?} is not WIDTHxHEIGHT@FPS (for example 1280x720@30)"
        ))
    };
    let (size, fps) = match s.split_once('@') {
        Some((size, fps)) => (size, fps.parse().map_err(|_| bad())?),
        None => (s, DEFAULT_SOFT_SPEC.2),
    };
    let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
    let width = w.parse().map_err(|_| bad())?;
    let height = h.parse().map_err(|_| bad())?;
    SoftConfig::new(width, height, fps).validate()?;
    Ok((width, height, fps))
}

/// The openh264 encoder over a synthetic test pattern. See the [module docs](self).
pub struct SoftSource {
    config: SoftConfig,
    frame_rate: FrameRate,
    encoder: H264Encoder,
    pattern: Pattern,
    /// Frames that start before `config.duration`; `None` for no limit.
    frame_limit: Option<u64>,
    /// Frames drawn so far: the index of the next one.
    frame_index: u64,
    /// Whether `encoder` has encoded anything yet (openh264 initialises on the first frame).
    encoder_started: bool,
    keyframe_requested: bool,
    /// SPS and PPS (with start codes) of the latest IDR, prepended to an IDR that lacks them.
    parameter_sets: Vec<u8>,
    finished: bool,
}

impl SoftSource {
    /// Validates `config` and sets up the encoder.
    pub fn new(config: SoftConfig) -> Result<SoftSource, HalError> {
        config.validate()?;
        let frame_rate = config.frame_rate()?;
        let encoder = new_encoder(&config)?;
        Ok(SoftSource {
            frame_limit: config.duration.map(|d| frame_rate.frames_within(d)),
            pattern: Pattern::new(config.width as usize, config.height as usize),
            config,
            frame_rate,
            encoder,
            frame_index: 0,
            encoder_started: false,
            keyframe_requested: false,
            parameter_sets: Vec::new(),
            finished: false,
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> &SoftConfig {
        &self.config
    }

    /// Draws and encodes the next frame; the access unit, or `None` if openh264 skipped it.
    fn encode_next(&mut self) -> Result<Option<Packet>, HalError> {
        let index = self.frame_index;
        self.frame_index += 1;
        self.pattern.draw(index);
        if self.keyframe_requested && self.encoder_started {
            self.encoder.force_intra_frame();
        }
        self.keyframe_requested = false;
        let pts = self.frame_rate.pts(index);
        let bitstream = self
            .encoder
            .encode_at(&self.pattern, Timestamp::from_millis(pts / TICKS_PER_MS))
            .map_err(|e| HalError::Encoder(one_line(&e.to_string())))?;
        self.encoder_started = true;
        let mut data = Vec::new();
        bitstream.write_vec(&mut data);
        if data.is_empty() {
            return Ok(None);
        }
        let (data, keyframe) = self_contained(&mut self.parameter_sets, data);
        Ok(Some(Packet::from_vec(Codec::H264, pts, keyframe, data)))
    }
}

impl Encoder for SoftSource {
    fn codec(&self) -> Codec {
        Codec::H264
    }

    fn frame_rate(&self) -> FrameRate {
        self.frame_rate
    }

    /// Re-creates the encoder with the new size, bitrate and GOP; the next frame is an IDR.
    /// The frame rate can only change before the first packet (timestamps must stay
    /// increasing), the codec must be H.264 and the profile Baseline (all openh264 produces).
    fn configure(&mut self, config: &EncoderConfig) -> Result<(), HalError> {
        if config.codec != Codec::H264 {
            return Err(HalError::InvalidConfig(format!(
                "the soft encoder produces H.264, not {}",
                config.codec
            )));
        }
        if config.profile.is_some_and(|p| p != Profile::Baseline) {
            return Err(HalError::InvalidConfig(
                "the soft encoder produces H.264 Constrained Baseline only".into(),
            ));
        }
        if config.fps.den() != 1 {
            return Err(HalError::InvalidConfig(format!(
                "the soft encoder needs a whole frame rate, not {}",
                config.fps
            )));
        }
        if self.frame_index > 0 && config.fps != self.frame_rate {
            return Err(HalError::InvalidConfig(format!(
                "the soft encoder cannot change its frame rate from {} to {} mid-stream",
                self.frame_rate, config.fps
            )));
        }
        let mut next = self.config.clone();
        next.width = config.width;
        next.height = config.height;
        next.fps = config.fps.num();
        next.bitrate = config.bitrate;
        next.keyframe_interval = if config.gop == 0 {
            next.fps
        } else {
            config.gop
        };
        next.validate()?;
        let frame_rate = next.frame_rate()?;
        self.encoder = new_encoder(&next)?;
        self.encoder_started = false;
        self.pattern = Pattern::new(next.width as usize, next.height as usize);
        self.frame_limit = next.duration.map(|d| frame_rate.frames_within(d));
        self.frame_rate = frame_rate;
        self.config = next;
        Ok(())
    }

    fn submit(&mut self, _frame: RawFrame) -> Result<(), HalError> {
        Err(HalError::Unsupported(
            "submitting raw frames to the soft encoder",
        ))
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, HalError> {
        while !self.finished {
            if self
                .frame_limit
                .is_some_and(|limit| self.frame_index >= limit)
            {
                self.finished = true;
                break;
            }
            // Frame skipping is off, so openh264 should always produce output; should it skip
            // anyway, the next frame follows with a later timestamp.
            if let Some(packet) = self.encode_next()? {
                return Ok(Some(packet));
            }
        }
        Ok(None)
    }

    fn force_keyframe(&mut self) -> Result<(), HalError> {
        self.keyframe_requested = true;
        Ok(())
    }

    fn drain(&mut self) -> Result<(), HalError> {
        // Each encode call returns its whole access unit, so nothing is left inside openh264.
        self.finished = true;
        Ok(())
    }
}

/// Default `soft` source spec, (width, height, fps).
///
/// openh264 built without its x86 assembly (no `nasm` at build time) encodes this pattern at
/// 640x360 at roughly 30-55 fps on one loaded core, but only at 8-23 fps at 1280x720, so the
/// default is 640x360 at 30 fps: real time even in a debug build.
pub const DEFAULT_SOFT_SPEC: (u32, u32, u32) = (640, 360, 30);

fn new_encoder(config: &SoftConfig) -> Result<H264Encoder, HalError> {
    let h264 = H264Config::new()
        .bitrate(BitRate::from_bps(config.bitrate))
        .max_frame_rate(H264FrameRate::from_hz(config.fps as f32))
        .rate_control_mode(RateControlMode::Bitrate)
        .usage_type(UsageType::CameraVideoRealTime)
        .profile(H264Profile::Baseline)
        // Every frame must come out, on time: a camera does not drop pictures to save bits.
        .skip_frames(false)
        // Keyframes exactly every `keyframe_interval` frames, none inserted on "scene cuts".
        .scene_change_detect(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(config.keyframe_interval))
        // One thread: the sealing pipeline needs the other cores.
        .num_threads(1);
    let mut encoder = H264Encoder::with_api_config(OpenH264API::from_source(), h264)
        .map_err(|e| HalError::Encoder(one_line(&e.to_string())))?;
    // Only stderr noise is at stake, so a failure here is not worth failing the source.
    let _ = sys::log_errors_only(&mut encoder);
    Ok(encoder)
}

/// openh264's error text may span lines (it can include a backtrace); keep the first.
fn one_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("unknown error")
        .trim()
        .to_string()
}

/// Makes an IDR access unit self-contained and reports whether `data` holds an IDR.
///
/// An IDR with its own SPS and PPS refreshes `stored`; one without gets `stored` prepended.
/// openh264 repeats SPS/PPS on every IDR (checked by the tests), so this only guards the
/// promise that every keyframe can start a decoder.
fn self_contained(stored: &mut Vec<u8>, data: Vec<u8>) -> (Vec<u8>, bool) {
    let (mut has_idr, mut has_sps, mut has_pps) = (false, false, false);
    for nal in camseal_nal::nal_units(&data) {
        let Some(info) = camseal_nal::classify(Codec::H264, nal.payload) else {
            continue;
        };
        has_idr |= info.is_vcl && info.is_keyframe;
        has_sps |= info.nal_type == NAL_SPS;
        has_pps |= info.nal_type == NAL_PPS;
    }
    if !has_idr {
        return (data, false);
    }
    if has_sps && has_pps {
        stored.clear();
        for nal in camseal_nal::nal_units(&data) {
            let is_header = camseal_nal::classify(Codec::H264, nal.payload)
                .is_some_and(|info| matches!(info.nal_type, NAL_SPS | NAL_PPS));
            if is_header && let Some(bytes) = data.get(nal.span) {
                stored.extend_from_slice(bytes);
            }
        }
        return (data, true);
    }
    let mut with_headers = Vec::with_capacity(stored.len() + data.len());
    with_headers.extend_from_slice(stored);
    with_headers.extend_from_slice(&data);
    (with_headers, true)
}

/// The synthetic picture, in I420 (planar 4:2:0), redrawn for every frame.
struct Pattern {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl Pattern {
    fn new(width: usize, height: usize) -> Pattern {
        Pattern {
            width,
            height,
            y: vec![0; width * height],
            u: vec![0; width / 2 * (height / 2)],
            v: vec![0; width / 2 * (height / 2)],
        }
    }

    /// Draws frame `t`: every element moves with `t`, so consecutive frames always differ.
    fn draw(&mut self, t: u64) {
        let (w, h) = (self.width, self.height);
        // Everything below wraps or is reduced modulo the picture size, so a huge `t` only
        // changes the phase.
        let phase = (t % 1024) as usize;
        let mut noise = Noise::new(t);

        // Luma: a diagonal gradient scrolling right, with faint noise.
        for (row, line) in self.y.chunks_exact_mut(w).enumerate() {
            for (col, px) in line.iter_mut().enumerate() {
                let base = ((col + row / 2 + 3 * phase) & 0xff) as u8;
                *px = base.saturating_sub(4).saturating_add(noise.next_small());
            }
        }
        // Chroma: eight colour bars scrolling left.
        let (cw, ch) = (w / 2, h / 2);
        let bar_width = (cw / BARS.len()).max(1);
        for row in 0..ch {
            for col in 0..cw {
                let bar = ((col + phase) / bar_width) % BARS.len();
                let (u, v) = BARS[bar];
                self.u[row * cw + col] = u;
                self.v[row * cw + col] = v;
            }
        }
        // A box bouncing off the edges, at different speeds in x and y.
        let side = (h / 5).max(2) & !1;
        let x = bounce(t.wrapping_mul(7), w.saturating_sub(side)) & !1;
        let y = bounce(t.wrapping_mul(5), h.saturating_sub(side)) & !1;
        self.fill(x, y, side, side, 210, (90, 240));
        // The frame counter in binary, one cell per bit, along the top edge.
        let cell = (w / (2 * COUNTER_BITS)).clamp(2, 32) & !1;
        for bit in 0..COUNTER_BITS {
            let luma = if (t >> bit) & 1 == 1 { 235 } else { 16 };
            self.fill(bit * cell, 0, cell, cell, luma, (128, 128));
        }
    }

    /// Fills a rectangle (clipped to the picture; even coordinates) with one colour.
    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, luma: u8, chroma: (u8, u8)) {
        let x_end = (x + w).min(self.width);
        let y_end = (y + h).min(self.height);
        for row in y..y_end {
            if let Some(line) = self
                .y
                .get_mut(row * self.width + x..row * self.width + x_end)
            {
                line.fill(luma);
            }
        }
        let cw = self.width / 2;
        for row in y / 2..y_end / 2 {
            let span = row * cw + x / 2..row * cw + x_end / 2;
            if let Some(line) = self.u.get_mut(span.clone()) {
                line.fill(chroma.0);
            }
            if let Some(line) = self.v.get_mut(span) {
                line.fill(chroma.1);
            }
        }
    }
}

impl YUVSource for Pattern {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

/// Position `0..=span` moving one unit per step and reflecting at both ends.
fn bounce(step: u64, span: usize) -> usize {
    if span == 0 {
        return 0;
    }
    let period = 2 * span as u64;
    let p = (step % period) as usize;
    if p <= span { p } else { 2 * span - p }
}

/// xorshift64: cheap, deterministic per frame.
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Noise {
        Noise(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// A value in 0..8.
    fn next_small(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 61) as u8
    }
}

/// (Cb, Cr) of the colour bars, roughly the BT.601 SMPTE bars.
const BARS: [(u8, u8); 8] = [
    (128, 128),
    (16, 146),
    (166, 16),
    (54, 34),
    (202, 222),
    (90, 240),
    (240, 110),
    (128, 128),
];
const COUNTER_BITS: usize = 16;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const TICKS_PER_MS: u64 = 90;
const MIN_SIDE: u32 = 16;
const MAX_SIDE: u32 = 3840;
const MAX_SHORT_SIDE: u32 = 2160;
const MAX_FPS: u32 = 120;
const MIN_BITRATE: u32 = 10_000;
const MAX_BITRATE: u32 = 200_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        assert_eq!(parse_soft_spec("1280x720@30").unwrap(), (1280, 720, 30));
        assert_eq!(parse_soft_spec("640X360@15").unwrap(), (640, 360, 15));
        assert_eq!(parse_soft_spec("320x240").unwrap(), (320, 240, 30));
        for bad in [
            "",
            "x",
            "1280",
            "1280x",
            "x720@30",
            "1280x720@",
            "1280x720@abc",
            "-2x4@1",
            "12 80x720@30",
        ] {
            let e = parse_soft_spec(bad).unwrap_err();
            assert!(matches!(e, HalError::InvalidConfig(_)), "{bad}: {e}");
        }
        // Well-formed but out of range.
        for bad in [
            "1281x720@30",
            "8x8@30",
            "4096x2160@30",
            "1280x720@0",
            "1280x720@121",
            "3840x2162@30",
        ] {
            assert!(parse_soft_spec(bad).is_err(), "{bad}");
        }
        assert!(parse_soft_spec("2160x3840@30").is_ok());
    }

    #[test]
    fn invalid_configs_are_rejected_with_a_clear_message() {
        let mut c = SoftConfig::new(640, 360, 30);
        c.keyframe_interval = 0;
        let msg = SoftSource::new(c).err().unwrap().to_string();
        assert!(msg.contains("keyframe interval"), "{msg}");
        let mut c = SoftConfig::new(640, 360, 30);
        c.bitrate = 0;
        assert!(SoftSource::new(c).is_err());
        let msg = SoftSource::new(SoftConfig::new(641, 360, 30))
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("641x360") && msg.contains("even"), "{msg}");
    }

    #[test]
    fn frames_differ_and_stay_in_bounds() {
        let mut p = Pattern::new(64, 48);
        p.draw(0);
        let first = (p.y.clone(), p.u.clone());
        p.draw(1);
        assert_ne!(first.0, p.y);
        assert_ne!(first.1, p.u);
        // Odd-sized leftovers and huge frame numbers must not panic.
        let mut p = Pattern::new(18, 16);
        for t in [0, 1, 2, 1023, 1024, u64::MAX] {
            p.draw(t);
        }
    }

    #[test]
    fn idr_without_headers_gets_the_stored_ones() {
        let sps: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e];
        let pps: &[u8] = &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];
        let sei: &[u8] = &[0, 0, 0, 1, 0x06, 0x05, 0x01, 0x80];
        let idr: &[u8] = &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00];
        let p: &[u8] = &[0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x00];
        let mut stored = Vec::new();

        let first = [sps, sei, pps, idr].concat();
        assert_eq!(self_contained(&mut stored, first.clone()), (first, true));
        assert_eq!(stored, [sps, pps].concat());

        assert_eq!(self_contained(&mut stored, p.to_vec()), (p.to_vec(), false));
        let bare = [sei, idr].concat();
        assert_eq!(
            self_contained(&mut stored, bare),
            ([sps, pps, sei, idr].concat(), true)
        );
        assert_eq!(
            stored,
            [sps, pps].concat(),
            "prepending leaves the store alone"
        );
    }

    #[test]
    fn bounce_reflects() {
        let path: Vec<usize> = (0..9).map(|s| bounce(s, 3)).collect();
        assert_eq!(path, [0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(bounce(5, 0), 0);
    }
}
