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

    /// Where the stream head of `camera_id`'s stream `stream_id` goes (`segment::head`):
    /// the engine replaces it after each segment it publishes. `None` (the default): the
    /// sink keeps no head.
    fn head_output(&self, _camera_id: &str, _stream_id: u32) -> Option<Box<dyn HeadOutput>> {
        None
    }
}

/// Keeps a stream's latest signed head. `store` runs on the engine's publisher thread, after
/// the segment the head names is published (durable and visible).
pub trait HeadOutput: Send + Sync {
    /// Replaces the stored head with `head`, durably.
    fn store(&self, head: &[u8]) -> io::Result<()>;
}

/// A head kept in a file: written to a temporary file (`fsutil`), fsynced, renamed over
/// `NAME`, and the directory fsynced, so a reader sees the old head or the new one, never half of one.
pub struct HeadFile {
    path: PathBuf,
    after: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl HeadFile {
    /// A head at `path`; `after` runs after each store (an uploader's wake-up).
    pub fn new(path: PathBuf, after: Option<Arc<dyn Fn() + Send + Sync>>) -> HeadFile {
        HeadFile { path, after }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl HeadOutput for HeadFile {
    fn store(&self, head: &[u8]) -> io::Result<()> {
        crate::fsutil::write_atomic(&self.path, head, crate::fsutil::PUBLIC)
            .map_err(|e| with_path(&self.path, e))?;
        if let Some(after) = &self.after {
            after();
        }
        Ok(())
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
/// Each segment is written unbuffered to `NAME.cseg.part` (created as `fsutil` creates every
/// file; every record goes from the pooled
/// buffer straight to `write(2)`: no user-space copy), then published by fsyncing it,
/// renaming it to `NAME.cseg` and fsyncing the directory. Only sealed bytes reach the disk.
/// After each segment, the stream head `<camera id>-s<stream>.head` is replaced
/// ([`HeadFile`]).
#[derive(Clone, Debug)]
pub struct DirSink {
    dir: PathBuf,
    /// Losses found by [`DirSink::recover`], for the next segment's header.
    gaps: Vec<crate::segment::Gap>,
}

/// What [`DirSink::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirRecovery {
    /// Segments that were whole (the crash hit between trailer and rename): published.
    pub completed: Vec<PathBuf>,
    /// Segments cut short by the crash: kept as `.cseg` with their valid prefix, and
    /// declared crashed (signed) in the next segment's header.
    pub salvaged: Vec<PathBuf>,
    /// `.part` files that held no record worth keeping: removed.
    pub discarded: Vec<PathBuf>,
    /// The gaps the next segment's header will declare.
    pub gaps: Vec<crate::segment::Gap>,
    /// `chain` changed and must be stored.
    pub chain_changed: bool,
}

impl DirSink {
    /// A sink into `dir`, created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<DirSink> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(DirSink {
            dir,
            gaps: Vec::new(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Recovers what a crash left of one camera stream in the directory, with the spool's
    /// rules (`Spool::recover`, `spool::policy`): a whole `.part` is published, a cut-off one
    /// is cut back to its valid prefix, published as `.cseg` and declared crashed in the
    /// next segment's header (the gaps this sink hands the engine), and the chain state
    /// moves past it. Call before the engine opens the stream.
    pub fn recover(
        &mut self,
        camera_key: &[u8; 32],
        stream: u32,
        chain: &mut crate::recorder::ChainState,
    ) -> io::Result<DirRecovery> {
        use crate::spool::policy::{crash_gaps, scan_prefix};
        let prefix = format!("{}-s{stream}-", crate::segment::camera_id(camera_key));
        // A `.part` that a crash caught before its rename into place holds nothing.
        for entry in fs::read_dir(&self.dir)?.flatten() {
            let name = entry.file_name();
            let stale = name
                .to_str()
                .and_then(crate::fsutil::temp_target)
                .is_some_and(|t| t.starts_with(&prefix) && t.ends_with(".cseg.part"));
            if stale {
                fs::remove_file(entry.path()).map_err(|e| with_path(&entry.path(), e))?;
            }
        }
        let mut parts: Vec<(u64, PathBuf)> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?;
                let seq = name.strip_prefix(&prefix)?.strip_suffix(".cseg.part")?;
                // Only files this sink made: a link planted here is never read or written.
                if !path.symlink_metadata().ok()?.is_file() {
                    return None;
                }
                crate::spool::policy::parse_seq(seq).map(|seq| (seq, path.clone()))
            })
            .collect();
        parts.sort();
        let mut recovery = DirRecovery::default();
        // The last segment salvaged here and the header hash its crash run links back to.
        let mut crash_run: Option<(u64, [u8; 32])> = None;
        for (seq, part) in parts {
            let final_path = part.with_extension("");
            let bytes = fs::read(&part).map_err(|e| with_path(&part, e))?;
            let scan = scan_prefix(&bytes);
            let header = match &scan.header {
                Some(h) if h.camera_key == *camera_key && h.segment_seq == seq => h,
                Some(_) => continue,
                None => {
                    fs::remove_file(&part).map_err(|e| with_path(&part, e))?;
                    recovery.discarded.push(part);
                    continue;
                }
            };
            if final_path.exists() {
                // Never overwrite a published segment; leave the stray for a person.
                continue;
            }
            // No number follows u64::MAX: such a file cannot be recovered into a chain.
            let after = seq.checked_add(1).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: sequence number {seq} is the last there is; the stream cannot continue after it",
                        part.display()
                    ),
                )
            })?;
            if let Some(header_hash) = scan.complete {
                publish_file(&part, &final_path, &self.dir)?;
                if chain.next_seq <= after {
                    *chain = crate::recorder::ChainState {
                        next_seq: after,
                        prev_header_hash: header_hash,
                    };
                    recovery.chain_changed = true;
                }
                crash_run = None;
                recovery.completed.push(final_path);
                continue;
            }
            if scan.records == 0 && seq >= chain.next_seq {
                // Opened but never reserved: the number is used again, and what its header
                // declared is declared by the next one.
                merge(&mut recovery.gaps, &header.gaps());
                fs::remove_file(&part).map_err(|e| with_path(&part, e))?;
                recovery.discarded.push(part);
                continue;
            }
            let file = OpenOptions::new()
                .write(true)
                .open(&part)
                .map_err(|e| with_path(&part, e))?;
            file.set_len(scan.valid_len as u64)
                .map_err(|e| with_path(&part, e))?;
            drop(file);
            publish_file(&part, &final_path, &self.dir)?;
            merge(
                &mut recovery.gaps,
                &crash_gaps(&header.gaps(), seq, scan.last_pts),
            );
            // As in `Spool::recover`: when the segment before this one crashed too (a power
            // cut while one segment is being published and the next is open), this header
            // names that crashed segment, and the run links back to the first one's
            // predecessor, as the joined crash gaps declare (FORMAT.md §6.1).
            let run_prev = match crash_run {
                Some((last, prev)) if last.checked_add(1) == Some(seq) => prev,
                _ => header.prev_header_hash,
            };
            crash_run = Some((seq, run_prev));
            if chain.next_seq <= seq || chain.prev_header_hash != run_prev {
                chain.next_seq = chain.next_seq.max(after);
                chain.prev_header_hash = run_prev;
                recovery.chain_changed = true;
            }
            recovery.salvaged.push(final_path);
        }
        self.gaps.clone_from(&recovery.gaps);
        Ok(recovery)
    }
}

impl SegmentSink for DirSink {
    fn gaps(&mut self, _info: &SegmentInfo) -> Vec<crate::segment::Gap> {
        std::mem::take(&mut self.gaps)
    }

    fn head_output(&self, camera_id: &str, stream_id: u32) -> Option<Box<dyn HeadOutput>> {
        let name = crate::segment::head::file_name(camera_id, stream_id);
        Some(Box::new(HeadFile::new(self.dir.join(name), None)))
    }

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
        // Created under a random name and renamed to `.part` at once (`fsutil`): a link
        // planted at the `.part` name is replaced, never written through.
        let file = crate::fsutil::TempFile::for_target(&part_path, crate::fsutil::PUBLIC)
            .and_then(|tmp| tmp.persist(&part_path))
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
        drop(file);
        publish_file(&part_path, &final_path, &dir)?;
        Ok(final_path)
    }
}

/// fsyncs `part`, renames it to `final_path` and fsyncs `dir`.
fn publish_file(part: &Path, final_path: &Path, dir: &Path) -> io::Result<()> {
    File::options()
        .write(true)
        .open(part)
        .and_then(|f| f.sync_all())
        .map_err(|e| with_path(part, e))?;
    fs::rename(part, final_path).map_err(|e| with_path(final_path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| with_path(dir, e))
}

fn merge(into: &mut Vec<crate::segment::Gap>, new: &[crate::segment::Gap]) {
    for g in new {
        if !into.contains(g) {
            into.push(*g);
        }
    }
}

/// Drops every segment: the engine seals, hashes and signs as usual, and the bytes go
/// nowhere (`camseal bench --discard`: the engine measured without a file system). Copies
/// nothing, keeps no head; `publish` returns the segment's file name.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardSink;

impl SegmentSink for DiscardSink {
    fn open(&mut self, info: &SegmentInfo) -> io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(DiscardOutput {
            name: PathBuf::from(&info.name),
        }))
    }
}

struct DiscardOutput {
    name: PathBuf,
}

impl SegmentOutput for DiscardOutput {
    fn write(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn publish(self: Box<Self>) -> io::Result<PathBuf> {
        Ok(self.name)
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
