//! What the element decides without touching GStreamer: codec from caps, timestamps.

use camseal::nal::Codec;
use camseal::recorder::PTS_HZ;

/// The codec of a caps structure name (`video/x-h264`, `video/x-h265`).
pub fn codec_for_caps_name(name: &str) -> Option<Codec> {
    match name {
        "video/x-h264" => Some(Codec::H264),
        "video/x-h265" => Some(Codec::H265),
        _ => None,
    }
}

/// A GStreamer timestamp (nanoseconds) in camseal's 90 kHz ticks, rounded down.
pub fn pts_ticks(nanoseconds: u64) -> u64 {
    // u128: 90 000 × u64::MAX ns does not fit in 64 bits; the quotient always does.
    (u128::from(nanoseconds) * u128::from(PTS_HZ) / 1_000_000_000) as u64
}

/// The duration of one frame in 90 kHz ticks for a caps `framerate` of `num/den` frames a
/// second; `None` for a variable (0/1) or nonsensical rate.
pub fn frame_ticks(num: i32, den: i32) -> Option<u64> {
    if num <= 0 || den <= 0 {
        return None;
    }
    let ticks = PTS_HZ * den as u64 / num as u64;
    (ticks > 0).then_some(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_of_the_template_caps() {
        assert_eq!(codec_for_caps_name("video/x-h264"), Some(Codec::H264));
        assert_eq!(codec_for_caps_name("video/x-h265"), Some(Codec::H265));
        assert_eq!(codec_for_caps_name("video/x-vp9"), None);
    }

    #[test]
    fn timestamps_in_90khz() {
        assert_eq!(pts_ticks(0), 0);
        assert_eq!(pts_ticks(1_000_000_000), 90_000);
        // One frame at 30000/1001 fps: 33 366 666 ns is 3002.99 ticks.
        assert_eq!(pts_ticks(33_366_666), 3002);
        assert_eq!(pts_ticks(u64::MAX), 1_660_206_966_633_859);
    }

    #[test]
    fn frame_durations() {
        assert_eq!(frame_ticks(30, 1), Some(3000));
        assert_eq!(frame_ticks(30000, 1001), Some(3003));
        assert_eq!(frame_ticks(25, 1), Some(3600));
        assert_eq!(frame_ticks(0, 1), None);
        assert_eq!(frame_ticks(-1, 1), None);
        assert_eq!(frame_ticks(1, 0), None);
        assert_eq!(frame_ticks(1_000_000, 1), None);
    }
}
