//! MP4 export of decrypted footage (`camseal decrypt --format mp4`).
//!
//! The boxes are the `shiguredo_mp4` crate's: its muxer builds the sample tables (with
//! `ctts` for composition offsets), and its bitstream helpers build the `avc1`/`hvc1`
//! sample entries (`avcC`/`hvcC`) from the stream's parameter sets. This module only turns
//! records into samples:
//!
//! - An access unit is the run of records with the same pts (FORMAT.md: all records of one
//!   access unit carry its pts); a `continuation` record never starts one.
//! - Its Annex-B NAL units become 4-byte length-prefixed ones. Parameter sets leave the
//!   samples for the sample entry (`avc1`/`hvc1` keep them out of band); when they change,
//!   the following samples get a new sample entry.
//! - Timing is [`timeline`](mod@timeline)'s, from the signed pts: decode times derived so that they only
//!   go forward and never pass a frame's pts, composition offsets for B-frames, and an edit
//!   list so the first frame plays at 0.
//!
//! Sample data is written as it comes; the sample table (a few bytes per frame) is kept in
//! memory and written at the end, after the data (`moov` last).

pub mod timeline;

use std::io::{self, Seek, SeekFrom, Write};
use std::num::NonZeroU32;

use shiguredo_mp4::boxes::{EdtsBox, ElstBox, ElstEntry, SampleEntry};
use shiguredo_mp4::mux::{Mp4FileMuxer, Mp4FileMuxerOptions, Sample};
use shiguredo_mp4::{Encode, FixedPointNumber, TrackKind, bitstream};

use crate::footage::ReleasedRecord;
use crate::nal::{Codec, classify, nal_units};
pub use timeline::{SegmentTimes, Timeline, TimelineError, timeline};

/// Why an MP4 export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Mp4Error {
    /// Writing the output failed.
    #[error("cannot write the MP4 file: {0}")]
    Io(#[from] io::Error),
    /// The muxer refused the samples or could not encode a box.
    #[error("MP4 muxer: {0}")]
    Mux(String),
    /// A picture came before any parameter set, or the parameter sets do not parse.
    #[error("cannot describe the video for MP4: {0}")]
    ParameterSets(String),
    /// The timing cannot be written.
    #[error(transparent)]
    Timeline(#[from] TimelineError),
}

/// What [`Mp4Writer::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4Summary {
    /// Samples (frames) in the track.
    pub frames: u64,
    /// Presentation length, 90 kHz.
    pub duration: u64,
    /// Segments moved later because their pts began before the previous segment ended.
    pub moved_segments: usize,
}

/// Writes one video track to `out` from decrypted records.
pub struct Mp4Writer<W: Write + Seek> {
    out: W,
    codec: Codec,
    muxer: Mp4FileMuxer,
    position: u64,
    unit: Vec<u8>,
    unit_pts: Option<u64>,
    unit_keyframe: bool,
    samples: Vec<PendingSample>,
    entries: Vec<SampleEntry>,
    params: Vec<Vec<u8>>,
    segments: Vec<SegmentTimes>,
    segment_open: bool,
    scratch: Vec<u8>,
}

impl<W: Write + Seek> Mp4Writer<W> {
    /// Starts the file at `out`'s current position (which must be its start).
    pub fn new(mut out: W, codec: Codec) -> Result<Self, Mp4Error> {
        let muxer = Mp4FileMuxer::with_options(Mp4FileMuxerOptions {
            // A fixed time: the same footage exports to the same bytes.
            creation_timestamp: std::time::Duration::ZERO,
            ..Default::default()
        })
        .map_err(mux)?;
        let head = muxer.initial_boxes_bytes();
        out.write_all(head)?;
        let position = head.len() as u64;
        Ok(Mp4Writer {
            out,
            codec,
            muxer,
            position,
            unit: Vec::new(),
            unit_pts: None,
            unit_keyframe: false,
            samples: Vec::new(),
            entries: Vec::new(),
            params: Vec::new(),
            segments: Vec::new(),
            segment_open: false,
            scratch: Vec::new(),
        })
    }

    /// Takes released plaintext and the records it is (see
    /// [`read_segment_records`](crate::footage::read_segment_records)). A `final` record
    /// ends the segment.
    pub fn push(&mut self, bytes: &[u8], records: &[ReleasedRecord]) -> Result<(), Mp4Error> {
        let mut at = 0usize;
        for record in records {
            let data = bytes.get(at..at + record.len).ok_or_else(|| {
                Mp4Error::Mux("released records longer than their bytes".to_owned())
            })?;
            at += record.len;
            if record.flags.is_final() {
                self.end_segment(Some(record.pts))?;
                continue;
            }
            let starts_unit = !record.flags.continuation()
                && (!self.segment_open || self.unit_pts != Some(record.pts));
            if starts_unit {
                self.flush_unit()?;
                self.open_segment();
                self.unit_pts = Some(record.pts);
                self.unit_keyframe = record.flags.keyframe();
            }
            self.unit.extend_from_slice(data);
        }
        Ok(())
    }

    /// Ends the current segment (a no-op if its final record already did). `end_pts` is
    /// where its last frame ends, if known.
    pub fn end_segment(&mut self, end_pts: Option<u64>) -> Result<(), Mp4Error> {
        self.flush_unit()?;
        if self.segment_open {
            if let Some(segment) = self.segments.last_mut() {
                segment.end_pts = end_pts;
            }
            self.segment_open = false;
        }
        self.unit_pts = None;
        Ok(())
    }

    /// Writes the sample tables and returns the output, complete.
    pub fn finish(mut self) -> Result<(W, Mp4Summary), Mp4Error> {
        self.end_segment(None)?;
        let timing = timeline(&self.segments)?;
        let timescale = NonZeroU32::new(TIMESCALE).ok_or(Mp4Error::Mux("timescale".into()))?;
        let mut offset = self.position - self.samples.iter().map(|s| s.size).sum::<u64>();
        for (i, s) in self.samples.iter().enumerate() {
            let sample = Sample {
                track_kind: TrackKind::Video,
                sample_entry: s.entry.map(|e| self.entries[e].clone()),
                keyframe: s.keyframe,
                timescale,
                duration: timing.durations[i],
                composition_time_offset: Some(i64::from(timing.offsets[i])),
                data_offset: offset,
                data_size: usize::try_from(s.size).map_err(|_| mux("sample too large"))?,
            };
            self.muxer.append_sample(&sample).map_err(mux)?;
            offset += s.size;
        }
        let finalized = self.muxer.finalize().map_err(mux)?;
        let moov_at = self.position;
        let mut moov = finalized.moov_box().clone();
        for (at, bytes) in finalized.offset_and_bytes_pairs() {
            if at == moov_at {
                continue;
            }
            self.out.seek(SeekFrom::Start(at))?;
            self.out.write_all(bytes)?;
        }
        // The edit list: play from the first frame's composition time (the reorder delay),
        // for as long as the footage lasts. The muxer writes none, so it is added here.
        let movie_scale = u64::from(moov.mvhd_box.timescale.get());
        let edit = timing.presentation * movie_scale / u64::from(TIMESCALE);
        moov.mvhd_box.duration = edit;
        for trak in &mut moov.trak_boxes {
            trak.tkhd_box.duration = edit;
            trak.edts_box = Some(EdtsBox {
                elst_box: Some(ElstBox {
                    entries: vec![ElstEntry {
                        edit_duration: edit,
                        media_time: i64::from(timing.lead_in),
                        media_rate: FixedPointNumber::new(1, 0),
                    }],
                }),
                unknown_boxes: Vec::new(),
            });
        }
        // `moov` is the last box, so it may grow by the edit list.
        let moov_bytes = moov.encode_to_vec().map_err(mux)?;
        self.out.seek(SeekFrom::Start(moov_at))?;
        self.out.write_all(&moov_bytes)?;
        self.out.flush()?;
        let summary = Mp4Summary {
            frames: self.samples.len() as u64,
            duration: timing.presentation,
            moved_segments: timing.moved_segments,
        };
        Ok((self.out, summary))
    }

    fn open_segment(&mut self) {
        if !self.segment_open {
            self.segments.push(SegmentTimes {
                pts: Vec::new(),
                end_pts: None,
            });
            self.segment_open = true;
        }
    }

    /// Writes the access unit gathered so far as one sample.
    fn flush_unit(&mut self) -> Result<(), Mp4Error> {
        let Some(pts) = self.unit_pts.take() else {
            return Ok(());
        };
        self.scratch.clear();
        let mut params: Vec<Vec<u8>> = Vec::new();
        for nal in nal_units(&self.unit) {
            let payload = nal.payload;
            if payload.is_empty() {
                continue;
            }
            let is_config = classify(self.codec, payload)
                .is_some_and(|info| config_nal(self.codec, info.nal_type));
            if is_config {
                if !params.iter().any(|p| p == payload) {
                    params.push(payload.to_vec());
                }
                continue;
            }
            let len = u32::try_from(payload.len()).map_err(|_| mux("NAL unit over 4 GiB"))?;
            self.scratch.extend_from_slice(&len.to_be_bytes());
            self.scratch.extend_from_slice(payload);
        }
        self.unit.clear();
        let mut entry = None;
        if !params.is_empty() && params != self.params {
            self.entries.push(sample_entry(self.codec, &params)?);
            entry = Some(self.entries.len() - 1);
            self.params = params;
        }
        if self.entries.is_empty() {
            return Err(Mp4Error::ParameterSets(
                "a picture comes before any parameter set".to_owned(),
            ));
        }
        self.out.write_all(&self.scratch)?;
        let size = self.scratch.len() as u64;
        self.position += size;
        self.samples.push(PendingSample {
            size,
            keyframe: self.unit_keyframe,
            entry,
        });
        self.open_segment();
        if let Some(segment) = self.segments.last_mut() {
            segment.pts.push(pts);
        }
        Ok(())
    }
}

struct PendingSample {
    size: u64,
    keyframe: bool,
    /// A new sample entry starts at this sample.
    entry: Option<usize>,
}

/// Parameter sets that go into the sample entry: H.264 SPS and PPS, H.265 VPS, SPS, PPS.
fn config_nal(codec: Codec, nal_type: u8) -> bool {
    match codec {
        Codec::H264 => matches!(nal_type, 7 | 8),
        Codec::H265 => matches!(nal_type, 32..=34),
    }
}

fn sample_entry(codec: Codec, params: &[Vec<u8>]) -> Result<SampleEntry, Mp4Error> {
    let of_type = |t: u8| -> Vec<Vec<u8>> {
        params
            .iter()
            .filter(|p| classify(codec, p).is_some_and(|i| i.nal_type == t))
            .cloned()
            .collect()
    };
    let bad = |e: shiguredo_mp4::Error| Mp4Error::ParameterSets(e.to_string());
    Ok(match codec {
        Codec::H264 => {
            let config = bitstream::h264::H264SampleEntryConfig {
                length_size: bitstream::h264::LengthSize::FourBytes,
            };
            SampleEntry::Avc1(
                bitstream::h264::build_avc1_box(&of_type(7), &of_type(8), &config).map_err(bad)?,
            )
        }
        Codec::H265 => {
            let config = bitstream::h265::H265SampleEntryConfig {
                length_size: bitstream::h265::LengthSize::FourBytes,
                avg_frame_rate: bitstream::h265::H265SampleEntryConfig::AVG_FRAME_RATE_UNSPECIFIED,
                constant_frame_rate: bitstream::h265::H265ConstantFrameRate::Unknown,
            };
            SampleEntry::Hvc1(
                bitstream::h265::build_hvc1_box(&of_type(32), &of_type(33), &of_type(34), &config)
                    .map_err(bad)?,
            )
        }
    })
}

fn mux(e: impl std::fmt::Display) -> Mp4Error {
    Mp4Error::Mux(e.to_string())
}

/// The track's timescale: the segments' pts are 90 kHz.
const TIMESCALE: u32 = 90_000;
