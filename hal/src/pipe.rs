//! The pipe source: an Annex-B H.264 / H.265 stream read from standard input or a FIFO as
//! it arrives, so that camseal can sit behind an encoder process (`ffmpeg ... -f h264 - |`,
//! `gst-launch-1.0 ... ! fdsink |`, `rpicam-vid -o - |`).
//!
//! A pipe cannot be mapped, so its bytes must be copied once, by `read(2)`, into memory of
//! ours. That copy is the only one: the bytes go into a large read buffer, and each access
//! unit is handed out as a [`Packet`] that shares a slice of that buffer (no second copy).
//! Access units are cut exactly as [`crate::replay`] cuts a file, so a stream piped in gives
//! the same packets, byte for byte, as the same stream replayed from a file.
//!
//! An access unit ends where the next one begins, so the last one in the buffer is held back
//! until the next access unit's first NAL unit has arrived whole (or the pipe ends). When the
//! buffer is full, it is reused in place if no packet still holds any of it; otherwise a
//! fresh buffer is taken and the partial access unit at its end is moved there: that move is
//! the second copy a pipe can force, and it is counted too ([`Packet::copied_bytes`]).
//!
//! Timestamps follow the frame rate (options, else SPS timing, else 30 fps) and the order
//! of arrival, as for a file. A pipe is never paced: frames come when the writer sends them.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;

use crate::{Codec, Encoder, EncoderConfig, FrameRate, HalError, Packet, RawFrame};

/// How to read a pipe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeOptions {
    /// The codec; by default sniffed from the first parameter set in the stream.
    pub codec: Option<Codec>,
    /// The frame rate, overriding the SPS timing information (and the 30 fps fallback).
    pub fps: Option<FrameRate>,
    /// Stop after this much video, measured by timestamps.
    pub max_duration: Option<Duration>,
}

/// An Annex-B stream read from a pipe. See the [module docs](self).
pub struct PipeSource {
    name: PathBuf,
    reader: Box<dyn Read + Send>,
    buf: BytesMut,
    codec: Codec,
    frame_rate: FrameRate,
    frame_limit: Option<u64>,
    /// Complete access units cut from the front of `buf`: (length, keyframe).
    ready: VecDeque<(usize, bool)>,
    /// Bytes copied (read, or moved to a fresh buffer) not yet attributed to a packet.
    unattributed_copies: usize,
    eof: bool,
    frame_index: u64,
    finished: bool,
}

impl PipeSource {
    /// Reads standard input.
    pub fn stdin(options: PipeOptions) -> Result<PipeSource, HalError> {
        PipeSource::new(Box::new(io::stdin()), "standard input", options)
    }

    /// Reads `reader` (a FIFO, a character device, any stream); `name` is what errors call
    /// it.
    ///
    /// Blocks until the stream's first picture has arrived (or the stream ended), because
    /// the codec and frame rate come from the parameter sets before it. Errors as
    /// [`crate::FileSource::open`]: [`HalError::EmptyStream`], [`HalError::NotAnnexB`],
    /// [`HalError::UnknownCodec`], [`HalError::NoParameterSets`], and [`HalError::Io`].
    pub fn new(
        reader: Box<dyn Read + Send>,
        name: impl AsRef<Path>,
        options: PipeOptions,
    ) -> Result<PipeSource, HalError> {
        let mut source = PipeSource {
            name: name.as_ref().to_path_buf(),
            reader,
            buf: BytesMut::with_capacity(BUFFER_BYTES),
            codec: options.codec.unwrap_or(Codec::H264),
            frame_rate: DEFAULT_FRAME_RATE,
            frame_limit: None,
            ready: VecDeque::new(),
            unattributed_copies: 0,
            eof: false,
            frame_index: 0,
            finished: false,
        };
        // Read the stream's head: everything up to its first picture, so that the parameter
        // sets (codec, frame rate) are all in.
        let codec = loop {
            let whole = source.whole_nal_units();
            let head = &source.buf[..whole];
            let codec = options.codec.or_else(|| camseal_nal::sniff_codec(head));
            if let Some(codec) = codec
                && let Some(first) = first_picture_or_parameter_set(codec, head)
            {
                if !first {
                    return Err(HalError::NoParameterSets {
                        path: source.name.clone(),
                        codec,
                    });
                }
                if has_picture(codec, head) {
                    break codec;
                }
            }
            if source.eof {
                return source.head_error(codec);
            }
            if source.buf.len() > MAX_HEAD_BYTES {
                return Err(HalError::NoParameterSets {
                    path: source.name.clone(),
                    codec: codec.unwrap_or(Codec::H264),
                });
            }
            source.fill()?;
        };
        let whole = source.whole_nal_units();
        source.codec = codec;
        source.frame_rate = options
            .fps
            .or_else(|| {
                let (num, den) = camseal_nal::frame_rate(codec, &source.buf[..whole])?;
                FrameRate::new(num, den)
            })
            .unwrap_or(DEFAULT_FRAME_RATE);
        source.frame_limit = options
            .max_duration
            .map(|d| source.frame_rate.frames_within(d));
        Ok(source)
    }

    /// Bytes at the front of `buf` that are whole NAL units: up to the start of the last NAL
    /// unit, which may still be arriving (everything once the pipe has ended).
    fn whole_nal_units(&self) -> usize {
        if self.eof {
            return self.buf.len();
        }
        camseal_nal::nal_units(&self.buf)
            .last()
            .map_or(0, |last| last.span.start)
    }

    /// The error for a stream that ended before its first picture.
    fn head_error(&self, codec: Option<Codec>) -> Result<PipeSource, HalError> {
        let path = self.name.clone();
        Err(if self.buf.is_empty() {
            HalError::EmptyStream { path }
        } else if camseal_nal::nal_units(&self.buf).all(|nal| nal.payload.is_empty()) {
            HalError::NotAnnexB { path }
        } else if let Some(codec) = codec {
            HalError::NoParameterSets { path, codec }
        } else {
            HalError::UnknownCodec { path }
        })
    }

    /// Reads once from the pipe (what it has, up to `READ_BYTES`) into `buf`; sets `eof` at
    /// its end.
    fn fill(&mut self) -> Result<(), HalError> {
        let held = self.buf.len();
        if self.buf.capacity() - held < READ_BYTES {
            let before = self.buf.as_ptr();
            if self.buf.try_reclaim(READ_BYTES) {
                // Reclaimed in place; the partial access unit may have moved to the front.
                if self.buf.as_ptr() != before {
                    self.unattributed_copies += held;
                }
            } else {
                // Packets still hold the old buffer: the partial access unit moves.
                let mut fresh = BytesMut::with_capacity(BUFFER_BYTES.max(2 * held + READ_BYTES));
                fresh.extend_from_slice(&self.buf);
                self.unattributed_copies += held;
                self.buf = fresh;
            }
        }
        // Within capacity: no reallocation, only zeroing the bytes `read` may fill.
        self.buf.resize(held + READ_BYTES, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[held..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.buf.truncate(held);
                    return Err(HalError::Io {
                        path: self.name.clone(),
                        source,
                    });
                }
            }
        };
        self.buf.truncate(held + n);
        self.unattributed_copies += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Cuts the complete access units at the front of `buf` into `ready`.
    fn cut(&mut self) {
        let whole = self.whole_nal_units();
        let mut units = camseal_nal::access_units(self.codec, &self.buf[..whole]).peekable();
        let mut offset = self.ready.iter().map(|(len, _)| len).sum::<usize>();
        while let Some(au) = units.next() {
            // The last one may go on in NAL units not yet arrived, unless the pipe ended.
            if units.peek().is_none() && !self.eof {
                break;
            }
            if au.span.end <= offset {
                continue;
            }
            self.ready.push_back((au.span.end - offset, au.keyframe));
            offset = au.span.end;
        }
    }
}

impl Encoder for PipeSource {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn frame_rate(&self) -> FrameRate {
        self.frame_rate
    }

    /// A pipe cannot be re-encoded: accepts only its own codec and frame rate.
    fn configure(&mut self, config: &EncoderConfig) -> Result<(), HalError> {
        if config.codec != self.codec || config.fps != self.frame_rate {
            return Err(HalError::InvalidConfig(format!(
                "{} carries {} at {}; it cannot be read as {} at {}",
                self.name.display(),
                self.codec,
                self.frame_rate,
                config.codec,
                config.fps
            )));
        }
        Ok(())
    }

    fn submit(&mut self, _frame: RawFrame) -> Result<(), HalError> {
        Err(HalError::Unsupported("submitting raw frames to a pipe"))
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
        if self.ready.is_empty() {
            // What already arrived first: waiting on the pipe for more would hold back
            // frames that are complete.
            self.cut();
        }
        while self.ready.is_empty() {
            if self.eof {
                self.cut();
                if self.ready.is_empty() {
                    self.finished = true;
                    return Ok(None);
                }
                break;
            }
            self.fill()?;
            self.cut();
        }
        let Some((len, keyframe)) = self.ready.pop_front() else {
            self.finished = true;
            return Ok(None);
        };
        let bytes = self.buf.split_to(len).freeze();
        // Copies are attributed as they happen: the bytes read so far (some of them belong to
        // later packets) and any partial unit moved. Summed over the stream, that is exactly
        // what the pipe forced.
        let copied = std::mem::take(&mut self.unattributed_copies);
        let pts = self.frame_rate.pts(self.frame_index);
        self.frame_index += 1;
        Ok(Some(Packet::shared(
            self.codec, pts, keyframe, bytes, copied,
        )))
    }

    fn force_keyframe(&mut self) -> Result<(), HalError> {
        Err(HalError::Unsupported(
            "forcing a keyframe in a piped stream",
        ))
    }

    fn drain(&mut self) -> Result<(), HalError> {
        self.finished = true;
        Ok(())
    }
}

/// Whether the first parameter set or picture of `buf` is a parameter set (`Some(true)`), a
/// picture (`Some(false)`), or neither is there yet.
fn first_picture_or_parameter_set(codec: Codec, buf: &[u8]) -> Option<bool> {
    camseal_nal::nal_units(buf).find_map(|nal| match camseal_nal::classify(codec, nal.payload) {
        Some(info) if info.is_parameter_set => Some(true),
        Some(info) if info.is_vcl => Some(false),
        _ => None,
    })
}

fn has_picture(codec: Codec, buf: &[u8]) -> bool {
    camseal_nal::nal_units(buf)
        .any(|nal| camseal_nal::classify(codec, nal.payload).is_some_and(|info| info.is_vcl))
}

/// Frame rate used when neither the options nor the SPS give one.
const DEFAULT_FRAME_RATE: FrameRate = FrameRate { num: 30, den: 1 };

/// The read buffer: large next to an access unit, so the partial one at its end (the only
/// bytes ever moved) is a small share of what passes through.
const BUFFER_BYTES: usize = 4 << 20;

/// The most one `read` asks for.
const READ_BYTES: usize = 256 << 10;

/// A stream whose first picture has not come within this many bytes is not one camseal can
/// start from.
const MAX_HEAD_BYTES: usize = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileOptions, FileSource, SoftConfig, SoftSource};
    use std::io::Write;

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

    /// Hands out its bytes a few at a time, as a slow pipe would.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn packets(source: &mut dyn Encoder) -> Vec<(Vec<u8>, bool, u64, usize)> {
        let mut out = Vec::new();
        while let Some(p) = source.next_packet().unwrap() {
            out.push((p.data().to_vec(), p.keyframe, p.pts, p.copied_bytes()));
        }
        out
    }

    #[test]
    fn same_packets_as_the_file_whatever_the_read_sizes() {
        let stream = soft_stream(40);
        let mut file = tempfile::Builder::new().suffix(".h264").tempfile().unwrap();
        file.write_all(&stream).unwrap();
        let mut replay = FileSource::open(file.path(), FileOptions::default()).unwrap();
        let expected: Vec<_> = packets(&mut replay)
            .into_iter()
            .map(|(d, k, p, _)| (d, k, p))
            .collect();
        assert_eq!(expected.len(), 40);
        for step in [5, 4096, 1 << 20] {
            let reader = Trickle {
                data: stream.clone(),
                at: 0,
                step,
            };
            let mut pipe =
                PipeSource::new(Box::new(reader), "test", PipeOptions::default()).unwrap();
            assert_eq!(pipe.codec(), Codec::H264);
            let got = packets(&mut pipe);
            let copied: usize = got.iter().map(|p| p.3).sum();
            let got: Vec<_> = got.into_iter().map(|(d, k, p, _)| (d, k, p)).collect();
            assert_eq!(got, expected, "read size {step}");
            // Every byte was read once; nothing was moved (the buffer never filled).
            assert_eq!(copied, stream.len(), "read size {step}");
        }
    }

    #[test]
    fn a_full_buffer_moves_only_the_partial_unit_and_counts_it() {
        // More than one buffer's worth, with every packet kept alive (as a slow engine
        // would), so the buffer cannot be reclaimed in place.
        let one = soft_stream(30);
        let mut stream = Vec::new();
        while stream.len() < 2 * BUFFER_BYTES + BUFFER_BYTES / 2 {
            stream.extend_from_slice(&one);
        }
        let reader = Trickle {
            data: stream.clone(),
            at: 0,
            step: READ_BYTES,
        };
        let mut pipe = PipeSource::new(Box::new(reader), "test", PipeOptions::default()).unwrap();
        let mut kept = Vec::new();
        while let Some(p) = pipe.next_packet().unwrap() {
            kept.push(p);
        }
        let joined: Vec<u8> = kept.iter().flat_map(|p| p.data().to_vec()).collect();
        assert_eq!(joined, stream);
        let copied: usize = kept.iter().map(Packet::copied_bytes).sum();
        let largest = kept.iter().map(Packet::len).max().unwrap();
        assert!(copied > stream.len(), "a full buffer forced a move");
        // At most one partial unit per buffer moved.
        assert!(
            copied <= stream.len() + (stream.len() / BUFFER_BYTES + 1) * largest,
            "{copied} bytes copied for {}",
            stream.len()
        );
    }

    #[test]
    fn a_stream_without_a_head_is_refused() {
        let err = |data: Vec<u8>, codec| {
            let reader = Trickle {
                data,
                at: 0,
                step: 5,
            };
            let options = PipeOptions {
                codec,
                ..PipeOptions::default()
            };
            PipeSource::new(Box::new(reader), "test", options)
                .err()
                .unwrap()
        };
        assert!(matches!(err(vec![], None), HalError::EmptyStream { .. }));
        assert!(matches!(
            err(vec![7; 100], None),
            HalError::NotAnnexB { .. }
        ));
        let stream = soft_stream(2);
        assert!(matches!(
            err(stream, Some(Codec::H265)),
            HalError::NoParameterSets { .. }
        ));
    }
}
