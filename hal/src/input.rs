//! Raw picture sources that feed memory-to-memory encoders: a generated NV12 test pattern,
//! and (in [`crate::v4l2`]) a V4L2 capture node.
//!
//! A [`FrameSource`] hands out [`RawFrame`]s whose buffers are leases: the pattern's buffers
//! come from a small pool and return to it when the encoder drops the frame, so a steady
//! stream allocates nothing after the first few frames, and the number of buffers alive bounds
//! how far the encoder can run ahead.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{FrameBuffer, FrameMemory, FrameRate, HalError, RawFrame};

/// A source of raw pictures for a memory-to-memory encoder.
pub trait FrameSource: Send {
    /// Picture size in pixels, `(width, height)`.
    fn size(&self) -> (u32, u32);

    /// The rate pictures are produced at; frame `n` has `pts = frame_rate().pts(n)`.
    fn frame_rate(&self) -> FrameRate;

    /// The next picture, or `None` when the source has ended.
    fn next_frame(&mut self) -> Result<Option<RawFrame>, HalError>;
}

/// A moving NV12 test pattern drawn into pooled, mapped buffers.
///
/// Luma is a diagonal gradient that scrolls and a bright box that bounces; chroma carries
/// vertical colour bars that scroll the other way. Rows are padded to a 16-byte stride and
/// the luma plane to 16-row alignment, the layout hardware encoders prefer, so a backend can
/// often copy a frame in one piece.
pub struct TestPattern {
    width: u32,
    height: u32,
    stride: usize,
    rows: usize,
    frame_rate: FrameRate,
    limit: Option<u64>,
    index: u64,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl TestPattern {
    /// A `width`x`height` pattern at `frame_rate`; both sides even and at least 16.
    pub fn new(width: u32, height: u32, frame_rate: FrameRate) -> Result<TestPattern, HalError> {
        if width < MIN_SIDE
            || height < MIN_SIDE
            || width > MAX_SIDE
            || height > MAX_SIDE
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
        {
            return Err(HalError::InvalidConfig(format!(
                "test pattern size {width}x{height}: sides must be even, {MIN_SIDE}..={MAX_SIDE}"
            )));
        }
        Ok(TestPattern {
            width,
            height,
            stride: align(width as usize, ALIGN),
            rows: align(height as usize, ALIGN),
            frame_rate,
            limit: None,
            index: 0,
            pool: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Ends the pattern after `duration` of video (the frames that start before it).
    pub fn with_duration(mut self, duration: Duration) -> TestPattern {
        self.limit = Some(self.frame_rate.frames_within(duration));
        self
    }

    /// Bytes between rows (luma and chroma).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Buffers allocated so far and not currently lent out.
    pub fn pooled(&self) -> usize {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn draw(&self, buf: &mut [u8], t: u64) {
        let (w, h, stride) = (self.width as usize, self.height as usize, self.stride);
        // Everything wraps with the phase, so a huge `t` only shifts the picture.
        let phase = (t % 4096) as usize;
        let (luma, chroma) = buf.split_at_mut(stride * self.rows);
        for (row, line) in luma.chunks_exact_mut(stride).take(h).enumerate() {
            let base = ((row + 2 * phase) & 0xff) as u8;
            for (col, px) in line[..w].iter_mut().enumerate() {
                *px = base.wrapping_add((col / 4) as u8);
            }
        }
        let side = (h / 4).max(2) & !1;
        let x = bounce(t.wrapping_mul(5), w.saturating_sub(side)) & !1;
        let y = bounce(t.wrapping_mul(3), h.saturating_sub(side)) & !1;
        for line in luma.chunks_exact_mut(stride).skip(y).take(side) {
            if let Some(span) = line.get_mut(x..x + side) {
                span.fill(235);
            }
        }
        let bar = (w / 8).max(2);
        for line in chroma.chunks_exact_mut(stride).take(h / 2) {
            for (pair, px) in line[..w].chunks_exact_mut(2).enumerate() {
                let (u, v) = BARS[((pair * 2 + w - phase % w) / bar) % BARS.len()];
                px[0] = u;
                px[1] = v;
            }
        }
    }
}

impl FrameSource for TestPattern {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn frame_rate(&self) -> FrameRate {
        self.frame_rate
    }

    fn next_frame(&mut self) -> Result<Option<RawFrame>, HalError> {
        if self.limit.is_some_and(|limit| self.index >= limit) {
            return Ok(None);
        }
        let len = self.stride * self.rows * 3 / 2;
        let mut data = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .filter(|b| b.len() == len)
            .unwrap_or_else(|| vec![0; len]);
        let t = self.index;
        self.draw(&mut data, t);
        self.index += 1;
        let buffer = Pooled {
            data,
            home: Arc::clone(&self.pool),
        };
        let luma = self.stride * self.rows;
        let planes = [
            crate::Plane {
                offset: 0,
                stride: self.stride,
            },
            crate::Plane {
                offset: luma,
                stride: self.stride,
            },
        ];
        RawFrame::new(
            crate::PixelFormat::Nv12,
            self.width,
            self.height,
            &planes,
            self.frame_rate.pts(t),
            Box::new(buffer),
        )
        .map(Some)
    }
}

/// A pattern buffer on loan; it goes back to the pool when the frame is dropped.
struct Pooled {
    data: Vec<u8>,
    home: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FrameBuffer for Pooled {
    fn memory(&self) -> FrameMemory<'_> {
        FrameMemory::Mapped(&self.data)
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        let mut pool = self.home.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < MAX_POOLED {
            pool.push(data);
        }
    }
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
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

/// (Cb, Cr) of the colour bars.
const BARS: [(u8, u8); 6] = [
    (128, 128),
    (16, 146),
    (166, 16),
    (54, 34),
    (202, 222),
    (240, 110),
];
const ALIGN: usize = 16;
const MIN_SIDE: u32 = 16;
const MAX_SIDE: u32 = 8192;
/// Buffers kept for reuse; more than an encoder keeps in flight.
const MAX_POOLED: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_padded_nv12_and_buffers_return_to_the_pool() {
        let mut p = TestPattern::new(100, 50, FrameRate::from_fps(30).unwrap()).unwrap();
        assert_eq!(p.stride(), 112);
        let a = p.next_frame().unwrap().unwrap();
        let b = p.next_frame().unwrap().unwrap();
        assert_eq!(a.planes()[1].offset, 112 * 64);
        assert_eq!(a.memory().len(), 112 * 64 * 3 / 2);
        assert_eq!((a.pts, b.pts), (0, 3000));
        let (FrameMemory::Mapped(x), FrameMemory::Mapped(y)) = (a.memory(), b.memory()) else {
            panic!("pattern frames are mapped memory");
        };
        assert_ne!(x, y, "consecutive frames differ");
        assert_eq!(p.pooled(), 0);
        drop(a);
        drop(b);
        assert_eq!(p.pooled(), 2);
        let c = p.next_frame().unwrap().unwrap();
        assert_eq!(p.pooled(), 1, "a pooled buffer was reused");
        drop(c);
    }

    #[test]
    fn duration_limits_the_frames() {
        let fps = FrameRate::from_fps(25).unwrap();
        let mut p = TestPattern::new(32, 32, fps)
            .unwrap()
            .with_duration(Duration::from_millis(200));
        let mut n = 0;
        while p.next_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 5);
    }

    #[test]
    fn odd_or_tiny_sizes_are_rejected_and_huge_times_draw() {
        let fps = FrameRate::from_fps(30).unwrap();
        assert!(TestPattern::new(33, 32, fps).is_err());
        assert!(TestPattern::new(8, 32, fps).is_err());
        let p = TestPattern::new(18, 16, fps).unwrap();
        let mut buf = vec![0u8; p.stride() * 16 * 3 / 2];
        for t in [0, 1, 4095, 4096, u64::MAX] {
            p.draw(&mut buf, t);
        }
    }
}
