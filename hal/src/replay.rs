//! The `file` source: replays a raw Annex-B H.264 / H.265 recording.
//!
//! The file is mapped into memory once and cut into access units by `camseal-nal`; every
//! [`Packet`] borrows its bytes straight from the mapping (no copy), so the packets' data,
//! concatenated, is the file byte for byte. Timestamps follow the stream's frame rate: from the
//! options, else from the SPS timing information, else 30 fps. Replay runs as fast as the
//! consumer pulls, or paced at the frame rate (`realtime`), and can loop over the file with
//! timestamps that keep increasing.
//!
//! Timestamps are given in file order, one frame period apart. For streams with B-frames that
//! order is decode order, so the timestamps are really decode timestamps; camseal only needs
//! them to be increasing and to measure durations.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::Mmap;

use crate::{Codec, Encoder, EncoderConfig, FrameRate, HalError, Packet, RawFrame};

pub(crate) mod sys;

/// How to replay a file. Start from [`FileOptions::default`] and set fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileOptions {
    /// The codec, overriding the file extension and content sniffing.
    pub codec: Option<Codec>,
    /// The frame rate, overriding the SPS timing information (and the 30 fps fallback).
    pub fps: Option<FrameRate>,
    /// Pace packets at the frame rate (frame `n` is returned `n / fps` after frame 0) instead
    /// of as fast as they are asked for.
    pub realtime: bool,
    /// Stop after this much video, measured by timestamps: only frames that start before it.
    pub max_duration: Option<Duration>,
    /// Start over at the end of the file, timestamps still increasing. Without `max_duration`
    /// the stream never ends.
    pub looped: bool,
}

/// An Annex-B file replayed as a stream of access units. See the [module docs](self).
pub struct FileSource {
    path: PathBuf,
    map: Arc<Mmap>,
    codec: Codec,
    frame_rate: FrameRate,
    realtime: bool,
    looped: bool,
    frame_limit: Option<u64>,
    /// Access units found so far; the scan runs ahead in batches (see `BATCH`).
    index: Vec<Unit>,
    /// Where the scan resumes; `map.len()` once the whole file is indexed.
    scanned: usize,
    /// Position in `index` of the next packet.
    cursor: usize,
    /// Follows slice headers during the scan: the pictures' presentation order.
    poc: camseal_nal::PocReader,
    /// Index in `index` of the unit that began the current presentation-order period.
    period_start: usize,
    /// Packets returned so far, over all loops: the next frame index.
    frame_index: u64,
    started: Option<Instant>,
    finished: bool,
}

impl FileSource {
    /// Maps `path` and checks that it is an Annex-B stream a decoder could start from.
    ///
    /// The codec is `options.codec` if given, else the one the extension names (`.h264`,
    /// `.264`, `.h265`, `.265`, `.hevc`), else whatever the first parameter set looks like.
    /// Errors: [`HalError::Io`], [`HalError::EmptyStream`], [`HalError::UnknownCodec`],
    /// [`HalError::NotAnnexB`] (no start code), [`HalError::NoParameterSets`] (a picture comes
    /// before any parameter set of the chosen codec, or there is none at all).
    pub fn open(path: impl AsRef<Path>, options: FileOptions) -> Result<FileSource, HalError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| HalError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        if !metadata.is_file() {
            return Err(HalError::NotAFile { path });
        }
        // An empty file cannot be mapped (mmap rejects length 0), so check first.
        if metadata.len() == 0 {
            return Err(HalError::EmptyStream { path });
        }
        let map = sys::map_read_only(&file).map_err(io)?;
        if map.is_empty() {
            return Err(HalError::EmptyStream { path });
        }
        if camseal_nal::nal_units(&map).all(|nal| nal.payload.is_empty()) {
            return Err(HalError::NotAnnexB { path });
        }
        let codec = match options.codec {
            Some(codec) => codec,
            None => codec_from_extension(&path)
                .or_else(|| camseal_nal::sniff_codec(&map))
                .ok_or_else(|| HalError::UnknownCodec { path: path.clone() })?,
        };
        if !parameter_sets_come_first(codec, &map) {
            return Err(HalError::NoParameterSets { path, codec });
        }
        let frame_rate = options
            .fps
            .or_else(|| {
                let (num, den) = camseal_nal::frame_rate(codec, &map)?;
                FrameRate::new(num, den)
            })
            .unwrap_or(DEFAULT_FRAME_RATE);
        Ok(FileSource {
            path,
            map: Arc::new(map),
            codec,
            frame_rate,
            realtime: options.realtime,
            looped: options.looped,
            frame_limit: options.max_duration.map(|d| frame_rate.frames_within(d)),
            index: Vec::new(),
            scanned: 0,
            cursor: 0,
            poc: camseal_nal::PocReader::new(codec),
            period_start: 0,
            frame_index: 0,
            started: None,
            finished: false,
        })
    }

    /// The replayed file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of the file in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always `false`: empty files are rejected by [`FileSource::open`].
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The next access unit of the file, wrapping around when looping; `None` at the end.
    fn next_unit(&mut self) -> Option<Unit> {
        if self.cursor == self.index.len() {
            self.scan_batch();
        }
        if self.cursor == self.index.len() && self.looped && !self.index.is_empty() {
            self.cursor = 0;
        }
        let unit = self.index.get(self.cursor)?.clone();
        self.cursor += 1;
        Some(unit)
    }

    /// Where the unit at `i` in `index` is shown, counted in frames from the start of the
    /// file: its decode position, moved by B-frame reordering. Pictures are shown in POC
    /// order within a period that a reset (IDR) begins, and a decoder reorders by at most
    /// `REORDER_WINDOW` pictures, so the pictures around `i` decide its rank.
    fn display_position(&mut self, i: usize) -> usize {
        while self.index.len() <= i + REORDER_WINDOW && self.scanned < self.map.len() {
            self.scan_batch();
        }
        let unit = &self.index[i];
        let Some(order) = unit.order else {
            return i;
        };
        let period = unit.period_start;
        let near = i.saturating_sub(REORDER_WINDOW).max(period);
        let shown_before = |u: &Unit| u.order.is_some_and(|o| o.poc < order.poc);
        let earlier = self.index[near..i]
            .iter()
            .filter(|u| shown_before(u))
            .count();
        let later = self.index[i + 1..]
            .iter()
            .take(REORDER_WINDOW)
            .take_while(|u| !u.order.is_some_and(|o| o.reset))
            .filter(|u| shown_before(u))
            .count();
        near + earlier + later
    }

    /// Indexes up to `BATCH` more access units.
    ///
    /// Access-unit boundaries depend only on the NAL units inside a unit, so scanning afresh
    /// from the end of the last unit found continues the same partition of the file. Doing it
    /// in batches keeps `open` from reading the whole file before the first packet.
    fn scan_batch(&mut self) {
        let Some(rest) = self.map.get(self.scanned..) else {
            return;
        };
        let base = self.scanned;
        for au in camseal_nal::access_units(self.codec, rest).take(BATCH) {
            self.scanned = base + au.span.end;
            let order = self.poc.access_unit(&rest[au.span.clone()]);
            if order.is_some_and(|o| o.reset) {
                self.period_start = self.index.len();
            }
            self.index.push(Unit {
                span: base + au.span.start..base + au.span.end,
                keyframe: au.keyframe,
                order,
                period_start: self.period_start,
            });
        }
    }

    /// In realtime mode, waits until frame `index` is due.
    fn pace(&mut self, index: u64) {
        if !self.realtime {
            return;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = started + self.frame_rate.time_of(index);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

impl Encoder for FileSource {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn frame_rate(&self) -> FrameRate {
        self.frame_rate
    }

    /// A recording cannot be re-encoded: accepts a configuration only if its codec and frame
    /// rate match the stream. Size, bitrate, GOP and profile are those of the recording.
    fn configure(&mut self, config: &EncoderConfig) -> Result<(), HalError> {
        if config.codec != self.codec {
            return Err(HalError::InvalidConfig(format!(
                "{} is a {} recording; it cannot be replayed as {}",
                self.path.display(),
                self.codec,
                config.codec
            )));
        }
        if config.fps != self.frame_rate {
            return Err(HalError::InvalidConfig(format!(
                "{} is replayed at {}, not {}; set the frame rate in the file options",
                self.path.display(),
                self.frame_rate,
                config.fps
            )));
        }
        Ok(())
    }

    fn submit(&mut self, _frame: RawFrame) -> Result<(), HalError> {
        Err(HalError::Unsupported(
            "submitting raw frames to a file replay",
        ))
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, HalError> {
        if self.finished
            || self
                .frame_limit
                .is_some_and(|limit| self.frame_index >= limit)
        {
            self.finished = true;
            return Ok(None);
        }
        let Some(unit) = self.next_unit() else {
            self.finished = true;
            return Ok(None);
        };
        let index = self.frame_index;
        self.pace(index);
        self.frame_index += 1;
        // Stamped with the time it is shown: a B-frame's pts is below its reference's.
        let position = self.cursor - 1;
        let shown = self.display_position(position);
        let pts = self.frame_rate.pts(index - position as u64 + shown as u64);
        let packet = Packet::mapped(self.codec, pts, unit.keyframe, self.map.clone(), unit.span);
        // Spans come from scanning this very mapping, so they always lie inside it.
        Ok(packet)
    }

    fn force_keyframe(&mut self) -> Result<(), HalError> {
        Err(HalError::Unsupported("forcing a keyframe in a recording"))
    }

    fn drain(&mut self) -> Result<(), HalError> {
        // Nothing is buffered: the stream simply ends here.
        self.finished = true;
        Ok(())
    }
}

/// One access unit of the file.
#[derive(Clone, Debug)]
struct Unit {
    span: Range<usize>,
    keyframe: bool,
    /// Its picture's presentation order, when the slice header tells.
    order: Option<camseal_nal::PictureOrder>,
    /// Index of the unit that began its presentation-order period.
    period_start: usize,
}

fn codec_from_extension(path: &Path) -> Option<Codec> {
    Codec::from_extension(path.extension()?.to_str()?)
}

/// Whether a parameter set of `codec` comes before the first picture (and there is one).
fn parameter_sets_come_first(codec: Codec, buf: &[u8]) -> bool {
    for nal in camseal_nal::nal_units(buf) {
        match camseal_nal::classify(codec, nal.payload) {
            Some(info) if info.is_parameter_set => return true,
            Some(info) if info.is_vcl => return false,
            _ => {}
        }
    }
    false
}

/// Frame rate used when neither the options nor the SPS give one.
const DEFAULT_FRAME_RATE: FrameRate = FrameRate { num: 30, den: 1 };

/// Access units indexed per scan step.
const BATCH: usize = 64;

/// The most pictures a decoder holds back for reordering (H.264 and H.265 both cap the
/// decoded picture buffer at 16).
const REORDER_WINDOW: usize = 16;

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::{SoftConfig, SoftSource};

    /// `frames` frames of the soft encoder's stream, as one Annex-B buffer.
    fn soft_stream(frames: u64) -> Vec<u8> {
        let mut config = SoftConfig::new(128, 96, 30);
        config.duration = Some(FrameRate::from_fps(30).unwrap().time_of(frames));
        let mut source = SoftSource::new(config).unwrap();
        let mut out = Vec::new();
        while let Some(p) = source.next_packet().unwrap() {
            out.extend_from_slice(p.data());
        }
        out
    }

    fn write_temp(bytes: &[u8], suffix: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file.flush().unwrap();
        file
    }

    #[test]
    fn packets_point_into_the_mapping() {
        let stream = soft_stream(12);
        let file = write_temp(&stream, ".h264");
        let mut source = FileSource::open(file.path(), FileOptions::default()).unwrap();
        let map = source.map.clone();
        let range = map.as_ptr() as usize..map.as_ptr() as usize + map.len();
        let mut packets = Vec::new();
        while let Some(p) = source.next_packet().unwrap() {
            let start = p.data().as_ptr() as usize;
            assert!(
                range.contains(&start),
                "packet data is not inside the mapping"
            );
            assert!(start + p.len() <= range.end);
            packets.push(p);
        }
        assert_eq!(packets.len(), 12);
        // Consecutive packets are adjacent in the mapping: nothing copied, nothing skipped.
        for pair in packets.windows(2) {
            assert_eq!(
                pair[0].data().as_ptr() as usize + pair[0].len(),
                pair[1].data().as_ptr() as usize
            );
        }
        assert_eq!(packets[0].data().as_ptr(), map.as_ptr());
        // The packets keep the mapping alive after the source is gone.
        drop(source);
        drop(map);
        let joined: Vec<u8> = packets
            .iter()
            .flat_map(|p| p.data().iter().copied())
            .collect();
        assert_eq!(joined, stream);
    }

    #[test]
    fn index_is_built_in_batches() {
        let stream = soft_stream(BATCH as u64 + 10);
        let file = write_temp(&stream, ".h264");
        let mut source = FileSource::open(file.path(), FileOptions::default()).unwrap();
        source.next_packet().unwrap().unwrap();
        assert_eq!(source.index.len(), BATCH);
        let mut n = 1;
        while source.next_packet().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, BATCH + 10);
        assert_eq!(source.scanned, stream.len());
    }
}
