//! Decode times and composition offsets for an MP4 track, from the pts the camera signed.
//!
//! Pure: no files. Records are in decode order and carry presentation timestamps (90 kHz),
//! which go backwards where a stream has B-frames. MP4 has no per-sample timestamp: a
//! sample's decode time is the sum of the durations before it, and its presentation time is
//! that plus a composition offset (`ctts`). So decode times have to be derived:
//!
//! - Within a segment (which begins at a keyframe), the decode times are the segment's pts
//!   sorted, all moved back by one delay `D`, the largest amount by which a sample's sorted
//!   pts exceeds its own pts over the whole export. Sorted, they never go backwards; moved
//!   back by `D`, none comes after its own pts (so `dts <= pts` and every offset is `>= 0`).
//! - Presentation then starts at `D` instead of 0; an edit list (`media_time = D`) takes
//!   that lead-in away again.
//! - Segments follow each other. One whose pts start before the previous one ended (a
//!   camera whose clock was reset) is moved later, to the previous end, and counted, so that
//!   decode times still only go forward.

/// One segment's samples, in decode order, and where it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentTimes {
    /// The pts (90 kHz) of each sample, in decode order.
    pub pts: Vec<u64>,
    /// The pts just past the segment's last frame (its signed end summary), if known: a
    /// segment cut off before its end has none.
    pub end_pts: Option<u64>,
}

/// The MP4 timing of a whole export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// Per sample, in decode order: its duration (the distance to the next decode time).
    pub durations: Vec<u32>,
    /// Per sample: presentation time minus decode time, `>= 0`.
    pub offsets: Vec<u32>,
    /// The delay `D` that the edit list skips (the first frame's composition time).
    pub lead_in: u32,
    /// How long the export plays: from the first frame to the end of the last segment.
    pub presentation: u64,
    /// How many segments began before the previous one ended and were moved later.
    pub moved_segments: usize,
}

/// Why a timeline cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// There is no sample at all.
    #[error("no video frame to export")]
    Empty,
    /// A distance does not fit an MP4 32-bit field (more than 13 hours at 90 kHz).
    #[error("a pause of more than 13 hours between two frames does not fit an MP4 sample")]
    TooLong,
}

/// Derives the MP4 timing of `segments`, in order (see the module documentation).
pub fn timeline(segments: &[SegmentTimes]) -> Result<Timeline, TimelineError> {
    let total: usize = segments.iter().map(|s| s.pts.len()).sum();
    if total == 0 {
        return Err(TimelineError::Empty);
    }
    let nominal = nominal_frame(segments);
    // Per segment: pts sorted, and the shift that places the segment after the previous one.
    let mut decode: Vec<u64> = Vec::with_capacity(total);
    let mut shifted_pts: Vec<u64> = Vec::with_capacity(total);
    let mut lead_in = 0u64;
    let mut moved_segments = 0;
    let mut previous_end: Option<u64> = None;
    let mut end = 0u64;
    for segment in segments.iter().filter(|s| !s.pts.is_empty()) {
        let mut sorted = segment.pts.clone();
        sorted.sort_unstable();
        let first = sorted[0];
        let last = sorted[sorted.len() - 1];
        let seg_end = segment
            .end_pts
            .filter(|&e| e > last)
            .unwrap_or(last.saturating_add(nominal));
        // Work on a timeline where this segment begins no earlier than the previous end.
        let shift = match previous_end {
            Some(prev) if first < prev => {
                moved_segments += 1;
                prev - first
            }
            _ => 0,
        };
        for (&p, &s) in segment.pts.iter().zip(&sorted) {
            lead_in = lead_in.max(s.saturating_sub(p));
            decode.push(s + shift);
            shifted_pts.push(p + shift);
        }
        end = seg_end + shift;
        previous_end = Some(end);
    }
    let base = decode[0];
    let mut durations = Vec::with_capacity(total);
    for pair in decode.windows(2) {
        durations.push(fit(pair[1] - pair[0])?);
    }
    // The last sample lasts until the end, counted in media time (which runs `D` ahead).
    let last_decode = decode[total - 1];
    durations.push(fit((end + lead_in).saturating_sub(last_decode).max(1))?);
    let offsets = shifted_pts
        .iter()
        .zip(&decode)
        .map(|(&p, &d)| fit(p + lead_in - d))
        .collect::<Result<Vec<u32>, _>>()?;
    let first_presented = shifted_pts.iter().copied().min().unwrap_or(base);
    Ok(Timeline {
        durations,
        offsets,
        lead_in: fit(lead_in + first_presented - base)?,
        presentation: end - first_presented,
        moved_segments,
    })
}

/// The usual distance between two frames in presentation order (the median), for a segment
/// whose end is not known: 1/30 s when no segment has two frames.
fn nominal_frame(segments: &[SegmentTimes]) -> u64 {
    let mut deltas: Vec<u64> = Vec::new();
    for segment in segments {
        let mut sorted = segment.pts.clone();
        sorted.sort_unstable();
        deltas.extend(sorted.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0));
    }
    if deltas.is_empty() {
        return DEFAULT_FRAME;
    }
    deltas.sort_unstable();
    deltas[deltas.len() / 2]
}

fn fit(ticks: u64) -> Result<u32, TimelineError> {
    u32::try_from(ticks).map_err(|_| TimelineError::TooLong)
}

/// One frame at 30 frames per second, in 90 kHz ticks.
const DEFAULT_FRAME: u64 = 3000;

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 3750; // 24 fps

    /// Decode times, rebuilt from the durations.
    fn decode_times(t: &Timeline) -> Vec<u64> {
        let mut at = 0u64;
        t.durations
            .iter()
            .map(|&d| {
                let here = at;
                at += u64::from(d);
                here
            })
            .collect()
    }

    /// Presentation times after the edit list (decode + offset - lead-in).
    fn presented(t: &Timeline) -> Vec<i64> {
        decode_times(t)
            .iter()
            .zip(&t.offsets)
            .map(|(&d, &o)| d as i64 + i64::from(o) - i64::from(t.lead_in))
            .collect()
    }

    #[test]
    fn b_frames_get_composition_offsets_and_decode_times_stay_ordered() {
        // Decode order I0 P3 B1 B2 P6 B4 B5 (a GOP with two B-frames), pts from 1000 frames on.
        let order = [0u64, 3, 1, 2, 6, 4, 5];
        let pts: Vec<u64> = order.iter().map(|i| (1000 + i) * F).collect();
        let t = timeline(&[SegmentTimes {
            pts,
            end_pts: Some(1007 * F),
        }])
        .unwrap();
        let dts = decode_times(&t);
        assert!(dts.windows(2).all(|w| w[0] < w[1]), "{dts:?}");
        // Every frame is presented at its own pts, relative to the first.
        let want: Vec<i64> = order.iter().map(|&i| (i * F) as i64).collect();
        assert_eq!(presented(&t), want);
        // dts <= pts: offsets are never negative, and the anchors carry the reorder delay.
        assert_eq!(t.lead_in as u64, F);
        assert_eq!(t.offsets[0], F as u32);
        assert_eq!(t.offsets[1], 3 * F as u32);
        assert_eq!(t.offsets[2], 0);
        assert_eq!(t.presentation, 7 * F);
        // The track's media time covers the edit: lead-in plus the presentation.
        let media: u64 = t.durations.iter().map(|&d| u64::from(d)).sum();
        assert_eq!(media, u64::from(t.lead_in) + t.presentation);
    }

    #[test]
    fn frames_in_order_need_no_offset_and_segments_join_end_to_start() {
        let seg = |from: u64, n: u64| SegmentTimes {
            pts: (from..from + n).map(|i| i * 3000).collect(),
            end_pts: Some((from + n) * 3000),
        };
        let t = timeline(&[seg(10, 4), seg(14, 4)]).unwrap();
        assert_eq!(t.lead_in, 0);
        assert!(t.offsets.iter().all(|&o| o == 0));
        assert_eq!(t.durations, vec![3000; 8]);
        assert_eq!(t.presentation, 8 * 3000);
        assert_eq!(t.moved_segments, 0);
    }

    #[test]
    fn a_gap_between_segments_stays_on_the_timeline() {
        let t = timeline(&[
            SegmentTimes {
                pts: vec![0, 3000],
                end_pts: Some(6000),
            },
            SegmentTimes {
                pts: vec![90_000, 93_000],
                end_pts: Some(96_000),
            },
        ])
        .unwrap();
        assert_eq!(presented(&t), vec![0, 3000, 90_000, 93_000]);
        assert_eq!(t.presentation, 96_000);
    }

    #[test]
    fn a_segment_whose_clock_went_back_is_moved_after_the_previous_one() {
        let t = timeline(&[
            SegmentTimes {
                pts: vec![90_000, 93_000],
                end_pts: Some(96_000),
            },
            SegmentTimes {
                pts: vec![0, 3000],
                end_pts: Some(6000),
            },
        ])
        .unwrap();
        assert_eq!(t.moved_segments, 1);
        assert_eq!(presented(&t), vec![0, 3000, 6000, 9000]);
        assert_eq!(t.presentation, 12_000);
    }

    #[test]
    fn a_segment_without_an_end_lasts_one_usual_frame_past_its_last() {
        let t = timeline(&[SegmentTimes {
            pts: vec![0, 3600, 7200],
            end_pts: None,
        }])
        .unwrap();
        assert_eq!(t.durations, vec![3600, 3600, 3600]);
        assert_eq!(t.presentation, 3 * 3600);
    }

    #[test]
    fn nothing_to_export_and_absurd_pauses_are_errors() {
        assert_eq!(timeline(&[]), Err(TimelineError::Empty));
        let t = timeline(&[SegmentTimes {
            pts: vec![0, u64::from(u32::MAX) + 1],
            end_pts: None,
        }]);
        assert_eq!(t, Err(TimelineError::TooLong));
    }
}
