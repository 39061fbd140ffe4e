//! Where sealed segment bytes go: the seam between the engine and storage.
//!
//! The engine writes a segment's bytes (header, records in order, trailer) to a
//! [`SegmentOutput`] that a [`SegmentSink`] opened for it, then hands the output to its
//! publisher thread, which calls [`SegmentOutput::publish`] to make the segment durable and
//! visible. [`DirSink`] writes files into a directory (`NAME.cseg.part`, fsync, rename); a
//! spool with quotas and an uploader can implement the same two traits.
//!
//! Outputs receive slices of the engine's pooled record buffers. An output that copies them
//! in user space (as [`MemorySink`] does) reports it to its [`CopyMeter`], so the bench can
//! show bytes copied per video byte.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What a sink is told about the segment it opens an output for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The camera id (FORMAT.md §7).
    pub camera_id: String,
    /// Stream number.
    pub stream_id: u32,
    /// Segment sequence number.
    pub seq: u64,
    /// The segment's file name, `<camera id>-s<stream>-<seq>.cseg`.
    pub name: String,
}

/// Opens one output per segment. Runs on the stream's thread.
pub trait SegmentSink: Send {
    /// An output for the segment `info` describes.
    fn open(&mut self, info: &SegmentInfo) -> io::Result<Box<dyn SegmentOutput>>;

    /// Losses the sink itself knows of (a spool's crash and quota gaps), to be declared,
    /// signed, in the header of the segment just opened. Called right after `open`.
    fn gaps(&mut self, _info: &SegmentInfo) -> Vec<crate::segment::Gap> {
        Vec::new()
    }
}

/// One segment being written. `write` runs on whichever engine thread appends the records
/// (in order), `publish` on the engine's publisher thread.
pub trait SegmentOutput: Send {
    /// Appends bytes: the header first, then each record, then the trailer.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Makes the finished segment durable and visible; returns where it is.
    fn publish(self: Box<Self>) -> io::Result<PathBuf>;
}

/// Counts video bytes copied in user space (outside the AEAD's one write of ciphertext).
/// Cheap to clone; clones share the count.
#[derive(Clone, Debug, Default)]
pub struct CopyMeter(Arc<AtomicU64>);

impl CopyMeter {
    /// A meter at zero.
    pub fn new() -> CopyMeter {
        CopyMeter::default()
    }

    /// Records `bytes` copied.
    pub fn add(&self, bytes: usize) {
        self.0.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes copied so far.
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Writes segments as files into a directory.
///
/// Each segment is written unbuffered to `NAME.cseg.part` (every record goes from the pooled
/// buffer straight to `write(2)`: no user-space copy), then published by fsyncing it,
/// renaming it to `NAME.cseg` and fsyncing the directory. Only sealed bytes reach the disk.
#[derive(Clone, Debug)]
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    /// A sink into `dir`, created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<DirSink> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(DirSink { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl SegmentSink for DirSink {
    fn open(&mut self, info: &SegmentInfo) -> io::Result<Box<dyn SegmentOutput>> {
        let final_path = self.dir.join(&info.name);
        if final_path.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists; refusing to overwrite a sealed segment",
                    final_path.display()
                ),
            ));
        }
        let part_path = self.dir.join(format!("{}.part", info.name));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part_path)
            .map_err(|e| with_path(&part_path, e))?;
        Ok(Box::new(DirOutput {
            file,
            dir: self.dir.clone(),
            part_path,
            final_path,
        }))
    }
}

struct DirOutput {
    file: File,
    dir: PathBuf,
    part_path: PathBuf,
    final_path: PathBuf,
}

impl SegmentOutput for DirOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| with_path(&self.part_path, e))
    }

    fn publish(self: Box<Self>) -> io::Result<PathBuf> {
        let DirOutput {
            file,
            dir,
            part_path,
            final_path,
        } = *self;
        file.sync_all().map_err(|e| with_path(&part_path, e))?;
        drop(file);
        fs::rename(&part_path, &final_path).map_err(|e| with_path(&final_path, e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| with_path(&dir, e))?;
        Ok(final_path)
    }
}

/// Keeps published segments in memory, in publication order (tests and benches). Copies
/// every byte it is given, and says so to its [`CopyMeter`].
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    segments: Arc<Mutex<Vec<NamedSegment>>>,
    meter: CopyMeter,
}

/// A published segment in a [`MemorySink`]: (file name, bytes).
pub type NamedSegment = (String, Vec<u8>);

impl MemorySink {
    /// An empty sink reporting its copies to `meter`.
    pub fn new(meter: CopyMeter) -> MemorySink {
        MemorySink {
            segments: Arc::default(),
            meter,
        }
    }

    /// The segments published so far: (file name, bytes).
    pub fn segments(&self) -> Vec<NamedSegment> {
        self.segments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl SegmentSink for MemorySink {
    fn open(&mut self, info: &SegmentInfo) -> io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(MemoryOutput {
            name: info.name.clone(),
            bytes: Vec::new(),
            sink: self.clone(),
        }))
    }
}

struct MemoryOutput {
    name: String,
    bytes: Vec<u8>,
    sink: MemorySink,
}

impl SegmentOutput for MemoryOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sink.meter.add(bytes.len());
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn publish(self: Box<Self>) -> io::Result<PathBuf> {
        let path = PathBuf::from(&self.name);
        self.sink
            .segments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.name, self.bytes));
        Ok(path)
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
