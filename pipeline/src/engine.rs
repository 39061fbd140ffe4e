//! The sealing engine: many streams, one pool of seal workers, records in order.
//!
//! ```text
//! source thread ──packet (lease)──► Stream::push: policy, chunker, one job per chunk
//!   ──► shared job queues (one per stream, served round robin) ──► N seal workers
//!   ──► per-stream reorder (by record order): "appended"
//!   ──► per-stream segment writer thread: RecordAppender (records hash) + SegmentOutput::write
//!   ──► publisher thread: chain state, SegmentOutput::publish (fsync, rename), stream head
//! ```
//!
//! - **Zero copy.** A job holds the packet (a lease on the encoder's memory) and a range of
//!   it. The worker reads that plaintext once, in the AEAD call, which writes the record
//!   once into a buffer from a bounded pool; the record goes from that buffer to the output
//!   ([`DirSink`]: straight to `write(2)`), and the buffer returns to the pool. The packet
//!   is dropped, and its buffer handed back to the encoder, when its last chunk is sealed.
//! - **Order.** A worker that finishes a record puts it into its stream's reorder map and
//!   moves every record that is now next in order to the stream's segment writer. Output
//!   bytes do not depend on the number of workers.
//! - **Latency.** The records hash (SHA-256 over every record, several times the cost of
//!   AES-GCM per byte) and the `write(2)` run on the stream's own writer thread, after the
//!   record's place is fixed, so the source thread, which seals a frame's last chunk itself,
//!   hands a frame over without crossing a thread and without waiting for the hash. For a
//!   frame cut into several chunks, the source thread also seals its own chunks that no
//!   worker has taken yet, instead of waiting for a worker to wake up.
//! - **Bounds.** Every job holds a pool buffer until its record is written, so the pool's
//!   capacity bounds queued jobs, sealed-but-unwritten records and (with the one packet a
//!   source thread holds) the packets alive. When the pool is empty, [`Stream::push`] waits ([`Overload::Block`]) or
//!   drops frames up to the next keyframe ([`Overload::DropFrames`]), which is counted and
//!   recorded as a signed gap in the next segment's header.
//! - **Segments.** A segment closes by [`SegmentPolicy`]. The next segment's header names the
//!   previous one's *header* hash (format v2), known since that segment opened, so a keyframe
//!   that opens a segment does not wait for the previous trailer: the previous segment's
//!   final record and the new header take their places in the stream's order, and the
//!   writer signs the trailer, writes the new header and goes on. fsync and rename happen
//!   later, on the publisher thread.

mod handoff;
mod pool;
mod sched;
mod sink;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use camseal_hal::{Loss, Packet};
use crossbeam_channel::{Receiver, Sender};
use ed25519_dalek::SigningKey;

use crate::chunk::{Chunk, chunk_access_unit};
use crate::decodable::{Admitted, SegmentStarts};
use crate::nal::Codec;
use crate::recorder::{ChainState, RecorderError, SegmentPolicy, segment_file_name};
use crate::seal::SframeSuite;
use crate::segment::head::StreamHead;
use crate::segment::padding::Padding;
use crate::segment::write::{
    CheckpointPolicy, Randomness, RecipientKey, RecordAppender, SegmentParams, SegmentSealer,
    SegmentSummary, WrappedSegmentKey,
};
use crate::segment::{
    CloseReason, Digest32, Gap, GapReason, MAX_RECORD_PLAINTEXT, RecordFlags, SegmentEnd,
    SegmentError, camera_id, first_crashed_before, record_digest,
};
use handoff::Estimates;
use pool::{BufferPool, PooledBuf};
use sched::{Job, Scheduler};

pub use handoff::HandOffCosts;
pub use sink::{
    CopyMeter, DirSink, DiscardSink, HeadFile, HeadOutput, MemorySink, SegmentInfo, SegmentOutput,
    SegmentSink,
};
pub use stats::{Stage, StageLatencies};

/// How the shared part of the engine is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Seal worker threads (at least 1).
    pub workers: usize,
    /// Record buffers in the pool: the bound on records in flight over all streams.
    pub buffers: usize,
    /// Largest record plaintext (1 ..= 16 MiB); larger access units are split at NAL
    /// boundaries.
    pub max_chunk: usize,
    /// The source thread seals the last chunk of each access unit itself (and appends it
    /// when it is next in order) instead of queuing it for a worker. A one-chunk frame,
    /// the common case, then crosses no thread: no wake-up latency. The workers still take
    /// every other chunk.
    pub caller_seals: bool,
    /// With `caller_seals`, which frames of several chunks are split over the workers.
    pub hand_off: HandOff,
}

/// Which frames of several chunks a source thread hands to the seal workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HandOff {
    /// Every one (tests of the parallel path, and comparisons).
    Always,
    /// Those whose sealing costs more than a worker's wake-up, both measured
    /// ([`HandOffCosts`]); the others are sealed on the source thread.
    #[default]
    Measured,
}

impl EngineConfig {
    /// `workers` workers, 64 KiB chunks, and 16 buffers per worker (at least 32).
    pub fn new(workers: usize) -> EngineConfig {
        let workers = workers.max(1);
        EngineConfig {
            workers,
            buffers: (workers * 16).max(32),
            max_chunk: DEFAULT_MAX_CHUNK,
            caller_seals: true,
            hand_off: HandOff::Measured,
        }
    }

    /// The most memory the record buffers can take, in bytes.
    pub fn buffer_bytes(&self) -> usize {
        self.buffers.saturating_mul(record_buf_len(self.max_chunk))
    }
}

/// What [`Stream::push`] does when no record buffer is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overload {
    /// Wait for one: the source stalls, nothing is lost.
    #[default]
    Block,
    /// Drop the frame and every following frame up to the next keyframe that fits; the
    /// loss is counted, reported as a [`StreamEvent::Dropped`], and written as a signed
    /// [`GapReason::DroppedFrames`] gap into the header of the next segment (which starts
    /// at that keyframe).
    DropFrames,
}

impl Overload {
    /// The name used on the command line and in configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Overload::Block => "block",
            Overload::DropFrames => "drop-frames",
        }
    }
}

impl std::str::FromStr for Overload {
    type Err = String;

    fn from_str(s: &str) -> Result<Overload, String> {
        match s {
            "block" => Ok(Overload::Block),
            "drop-frames" => Ok(Overload::DropFrames),
            other => Err(format!(
                "unknown overload policy {other:?}: use block or drop-frames"
            )),
        }
    }
}

/// The wall clock written into segment headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WallClock {
    /// A fixed value, in Unix milliseconds (reproducibility tests).
    Fixed(u64),
    /// The system clock.
    #[default]
    System,
}

/// One camera stream's settings.
#[derive(Clone)]
pub struct StreamConfig {
    /// The camera's signing key.
    pub camera: SigningKey,
    /// Recipients: (HPKE KEM id, public key).
    pub recipients: Vec<(u16, Vec<u8>)>,
    /// Media cipher suite.
    pub suite: SframeSuite,
    /// Codec of the stream.
    pub codec: Codec,
    /// Stream number within the camera.
    pub stream_id: u32,
    /// When segments close.
    pub policy: SegmentPolicy,
    /// Duration of one frame in 90 kHz ticks (for the end of the last frame).
    pub frame_ticks: u64,
    /// Where the chain state is kept; `None` starts a fresh chain in memory.
    pub chain_path: Option<PathBuf>,
    /// Randomness for segment keys (always `Os` outside tests).
    pub randomness: Randomness,
    /// The clock for segment headers.
    pub wallclock: WallClock,
    /// What to do when the engine is saturated.
    pub overload: Overload,
    /// When the camera signs checkpoints (`--checkpoint-ms`).
    pub checkpoints: CheckpointPolicy,
    /// Whether video records are padded to size buckets (`--padding`).
    pub padding: Padding,
}

/// The outcome of [`Stream::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The frame was dropped by [`Overload::DropFrames`].
    Dropped,
    /// The frame's chunks are queued for sealing.
    Queued,
    /// The packet holds no picture, only parameter sets or SEI: it is kept and sealed in
    /// front of the next picture (see [`crate::decodable`]).
    Held,
    /// The frame was skipped: it cannot be decoded without pictures the source lost (see
    /// [`Stream::lost`]), or no segment is open and it is not a keyframe. The skipped run is
    /// declared as a [`GapReason::SourceLoss`] gap in the next segment.
    Skipped,
}

/// Something a stream reports to its caller (see [`Stream::take_events`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// Frames were dropped or skipped; if a segment followed, its header carries the gap.
    Dropped {
        /// Why: [`GapReason::DroppedFrames`] (the overload policy) or
        /// [`GapReason::SourceLoss`] (the source lost pictures).
        reason: GapReason,
        /// Frames lost.
        frames: u64,
        /// pts of the first lost frame.
        from_pts: u64,
        /// pts of the frame after the loss (or just past the last lost one at the end).
        to_pts: u64,
    },
    /// A segment was published.
    Published(PublishedSegment),
}

/// A segment that was sealed and published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedSegment {
    /// Where it is (for a [`DirSink`], the file).
    pub path: PathBuf,
    /// Its sequence number.
    pub seq: u64,
    /// Access units in it.
    pub frames: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Why it closed.
    pub reason: CloseReason,
}

/// Totals and latencies of one stream (or, merged, of several).
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    /// Access units sealed.
    pub frames: u64,
    /// Video bytes sealed.
    pub video_bytes: u64,
    /// Records sealed (final records included).
    pub records: u64,
    /// Access units dropped by [`Overload::DropFrames`].
    pub dropped_frames: u64,
    /// Pictures the source lost, and pictures skipped because they depended on lost ones
    /// (see [`Stream::lost`]).
    pub lost_frames: u64,
    /// Segments published.
    pub segments: u64,
    /// Segment bytes published.
    pub segment_bytes: u64,
    /// Per-frame latency per stage.
    pub latency: StageLatencies,
}

impl StreamStats {
    /// Adds another stream's totals and histograms.
    pub fn merge(&mut self, other: &StreamStats) {
        self.frames += other.frames;
        self.video_bytes += other.video_bytes;
        self.records += other.records;
        self.dropped_frames += other.dropped_frames;
        self.lost_frames += other.lost_frames;
        self.segments += other.segments;
        self.segment_bytes += other.segment_bytes;
        self.latency.merge(&other.latency);
    }
}

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A setting is out of range.
    #[error("invalid engine configuration: {0}")]
    Config(&'static str),
    /// Writing or publishing a segment failed.
    #[error("segment output: {0}")]
    Output(#[from] std::io::Error),
    /// The chain state could not be read or stored.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    /// Sealing failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// An earlier error (already returned) stopped this stream.
    #[error("the stream stopped after an earlier error")]
    Failed,
    /// The engine was shut down while a stream still used it.
    #[error("the engine has stopped")]
    Stopped,
}

/// The shared worker pool. See the [module docs](self).
pub struct Engine {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    publisher: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the workers and the publisher thread.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        if config.workers == 0 || config.workers > MAX_WORKERS {
            return Err(EngineError::Config("workers must be 1..=256"));
        }
        if config.max_chunk == 0 || config.max_chunk > MAX_RECORD_PLAINTEXT {
            return Err(EngineError::Config("max_chunk must be 1..=16 MiB"));
        }
        if config.buffers == 0 {
            return Err(EngineError::Config("buffers must be at least 1"));
        }
        let (publish_tx, publish_rx) = crossbeam_channel::bounded(PUBLISH_QUEUE);
        let shared = Arc::new(Shared {
            sched: Mutex::new(Scheduler::default()),
            stopped: AtomicBool::new(false),
            work: Condvar::new(),
            pool: BufferPool::new(config.buffers, record_buf_len(config.max_chunk)),
            publish_tx,
            max_chunk: config.max_chunk,
            caller_seals: config.caller_seals,
            hand_off: config.hand_off,
            estimates: Estimates::calibrate(),
        });
        let mut workers = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("camseal-seal-{i}"))
                .spawn(move || sched::worker(&shared))
                .map_err(EngineError::Output)?;
            workers.push(handle);
        }
        let publisher = std::thread::Builder::new()
            .name("camseal-publish".into())
            .spawn(move || publisher(publish_rx))
            .map_err(EngineError::Output)?;
        probe_wake_up(&shared);
        Ok(Engine {
            shared,
            workers,
            publisher: Some(publisher),
        })
    }

    /// Opens a stream writing its segments to `sink`. Loads (and, with a chain path,
    /// reserves the next sequence number in) the stream's chain state.
    pub fn open_stream(
        &self,
        config: StreamConfig,
        sink: Box<dyn SegmentSink>,
    ) -> Result<Stream, EngineError> {
        if config.recipients.is_empty() {
            return Err(RecorderError::NoRecipients.into());
        }
        let chain = match &config.chain_path {
            Some(path) => {
                let chain = ChainState::load(path)?;
                // Reserve the first sequence number before writing: if we crash
                // mid-segment, the next run does not reuse it. Later segments are
                // reserved by the publisher together with their predecessor's digest.
                chain.reserve()?.store(path)?;
                chain
            }
            None => ChainState::default(),
        };
        let (write_tx, write_rx) = crossbeam_channel::unbounded();
        let camera_id = camera_id(&config.camera.verifying_key().to_bytes());
        let head = sink
            .head_output(&camera_id, config.stream_id)
            .map(|output| HeadSigner {
                output,
                camera: config.camera.clone(),
                stream_id: config.stream_id,
                wallclock: config.wallclock,
            });
        let shared = Arc::new(StreamShared {
            reorder: Mutex::default(),
            write_tx,
            state: Mutex::default(),
            failed: AtomicBool::new(false),
            changed: Condvar::new(),
            events: Mutex::default(),
            latency: Mutex::default(),
            next_key: Mutex::default(),
            recipients: Mutex::new(config.recipients.clone()),
            head,
        });
        let writer = {
            let stream = Arc::clone(&shared);
            let publish_tx = self.shared.publish_tx.clone();
            let key_recipe = KeyRecipe {
                suite: config.suite,
                stream_id: config.stream_id,
                camera_key: config.camera.verifying_key().to_bytes(),
                randomness: config.randomness.clone(),
            };
            std::thread::Builder::new()
                .name(format!("camseal-write-{}", config.stream_id))
                .spawn(move || segment_writer(&stream, &write_rx, &publish_tx, &key_recipe))
                .map_err(EngineError::Output)?
        };
        let slot = lock(&self.shared.sched).add_stream();
        let starts = SegmentStarts::new(config.codec);
        Ok(Stream {
            engine: Arc::clone(&self.shared),
            shared,
            writer: Some(writer),
            slot,
            camera_id,
            config,
            sink,
            chain,
            open: None,
            pending_gaps: Vec::new(),
            dropping: None,
            starts,
            next_ordinal: 0,
            chunks: Vec::new(),
            reserved: Vec::new(),
            frames: 0,
            video_bytes: 0,
            records: 0,
            dropped_frames: 0,
            lost_frames: 0,
            closed_segments: 0,
            began_any: false,
            copies: CopyMeter::new(),
        })
    }

    /// Largest record plaintext.
    pub fn max_chunk(&self) -> usize {
        self.shared.max_chunk
    }

    /// Record buffers in the pool.
    pub fn buffers(&self) -> usize {
        self.shared.pool.capacity()
    }

    /// The costs that decide whether a frame is sealed on its source thread or split over
    /// the workers, as the engine estimates them now (see [`HandOffCosts`]).
    pub fn hand_off_costs(&self) -> HandOffCosts {
        self.shared.estimates.costs()
    }

    /// Stops the workers and the publisher. Streams still open fail from now on.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        lock(&self.shared.sched).shutdown = true;
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.work.notify_all();
        self.shared.pool.close();
        for w in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = w.join();
        }
        let _ = self.shared.publish_tx.send(PublishMsg::Stop);
        if let Some(p) = self.publisher.take() {
            let _ = p.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One camera stream on an [`Engine`]; used from one source thread.
pub struct Stream {
    engine: Arc<Shared>,
    shared: Arc<StreamShared>,
    /// The stream's segment writer thread.
    writer: Option<JoinHandle<()>>,
    slot: usize,
    camera_id: String,
    config: StreamConfig,
    sink: Box<dyn SegmentSink>,
    chain: ChainState,
    open: Option<OpenSegment>,
    pending_gaps: Vec<Gap>,
    dropping: Option<DropRun>,
    /// Parameter sets and header-only packets, so every segment decodes on its own.
    starts: SegmentStarts,
    next_ordinal: u64,
    /// Scratch: the chunks of the access unit being pushed.
    chunks: Vec<Chunk>,
    /// Scratch: buffers reserved for them.
    reserved: Vec<PooledBuf>,
    frames: u64,
    video_bytes: u64,
    records: u64,
    dropped_frames: u64,
    lost_frames: u64,
    closed_segments: u64,
    /// A segment was opened (its sequence number is used).
    began_any: bool,
    /// Video bytes this stream copied in user space (see [`Stream::copy_meter`]).
    copies: CopyMeter,
}

impl Stream {
    /// Queues one access unit for sealing. `dequeued` is when the packet left the encoder
    /// (the start of its latency measurement).
    ///
    /// Closes the open segment first if the policy says so. Returns once every chunk is
    /// queued (waiting for pool buffers under [`Overload::Block`]); the packet is released
    /// when its last chunk is sealed.
    pub fn push(&mut self, packet: Packet, dequeued: Instant) -> Result<Pushed, EngineError> {
        self.check()?;
        let mut packet = match self.starts.admit(packet.data(), packet.keyframe) {
            Admitted::Held => return Ok(Pushed::Held),
            Admitted::Unchanged => packet,
            Admitted::Merged(bytes) => {
                self.copies.add(bytes.len());
                Packet::from_vec(packet.codec, packet.pts, packet.keyframe, bytes)
            }
        };
        let (pts, keyframe) = (packet.pts, packet.keyframe);
        if packet.data().is_empty() {
            return Ok(Pushed::Queued);
        }
        let skipping = self
            .dropping
            .as_ref()
            .is_some_and(|run| run.reason == GapReason::SourceLoss);
        if !keyframe && (skipping || self.open.is_none()) {
            // No segment may begin here (it would not decode on its own), and after a loss
            // this picture may refer to the lost ones: skip up to the next keyframe.
            let run = self.dropping.get_or_insert(DropRun {
                reason: GapReason::SourceLoss,
                frames: 0,
                from_pts: pts,
                last_pts: pts,
            });
            run.frames += 1;
            run.last_pts = pts;
            if run.reason == GapReason::SourceLoss {
                self.lost_frames += 1;
                return Ok(Pushed::Skipped);
            }
            self.dropped_frames += 1;
            return Ok(Pushed::Dropped);
        }
        self.chunks.clear();
        self.chunks
            .extend(chunk_access_unit(packet.data(), self.engine.max_chunk));
        self.reserved.clear();
        if self.config.overload == Overload::DropFrames {
            let fits = self.chunks.len() > self.engine.pool.capacity()
                || self
                    .engine
                    .pool
                    .try_acquire_n(self.chunks.len(), &mut self.reserved);
            if (self.dropping.is_some() && !keyframe) || !fits {
                self.reserved.clear();
                let run = self.dropping.get_or_insert(DropRun {
                    reason: GapReason::DroppedFrames,
                    frames: 0,
                    from_pts: pts,
                    last_pts: pts,
                });
                run.frames += 1;
                run.last_pts = pts;
                self.dropped_frames += 1;
                return Ok(Pushed::Dropped);
            }
        }
        if keyframe && let Some(run) = self.dropping.take() {
            self.end_drop_run(run, pts);
        }
        if let Some(open) = &self.open {
            let reason = if !self.pending_gaps.is_empty() && keyframe {
                // Put the gap into the very next header, next to the loss.
                Some(CloseReason::Keyframe)
            } else {
                self.config
                    .policy
                    .close_before(open.start_pts, open.bytes, pts, keyframe)
            };
            if let Some(reason) = reason {
                self.close_open(reason, true)?;
            }
        }
        if self.open.is_none() {
            if keyframe && let Some(complete) = self.starts.complete(packet.data()) {
                // A keyframe without its parameter sets would begin a segment that no
                // decoder can start from: put the remembered ones in front.
                self.copies.add(complete.len());
                packet = Packet::from_vec(packet.codec, pts, keyframe, complete);
                self.chunks.clear();
                self.chunks
                    .extend(chunk_access_unit(packet.data(), self.engine.max_chunk));
            }
            self.begin(pts)?;
        }
        let open = self.open.as_mut().ok_or(EngineError::Stopped)?;
        let last = self.chunks.len() - 1;
        let video_bytes = packet.len() as u64;
        // A frame that costs less to seal here than a worker takes to wake up crosses no
        // thread (handoff.rs); a larger one is split over the workers, and this thread
        // seals its last chunk.
        let caller_seals = self.engine.caller_seals;
        let inline = caller_seals
            && (last == 0
                || (self.engine.hand_off == HandOff::Measured
                    && self.engine.estimates.inline(packet.len())));
        let mut reserved = std::mem::take(&mut self.reserved).into_iter();
        if inline {
            // Straight from the lease, with no job, no shared packet and no reference
            // counts: the fewest cache lines touched between dequeue and appended.
            for (i, chunk) in self.chunks.drain(..).enumerate() {
                let buf = match reserved.next() {
                    Some(buf) => buf,
                    None => self.engine.pool.acquire().ok_or(EngineError::Stopped)?,
                };
                let index = open.next_index;
                open.next_index += 1;
                open.bytes += open.sealer.record_len(index, chunk.range.len()) as u64;
                let sealed = sched::seal(
                    &open.sealer,
                    sched::Chunk {
                        ordinal: self.next_ordinal,
                        index,
                        pts,
                        flags: RecordFlags::video(keyframe, chunk.continuation),
                        plaintext: packet.data().get(chunk.range),
                        frame: Some(FrameTag {
                            dequeued,
                            last: i == last,
                        }),
                    },
                    buf,
                    &self.engine.estimates,
                );
                self.next_ordinal += 1;
                self.records += 1;
                // An error stops the stream; the next push or flush reports it (as from a
                // worker).
                match sealed {
                    Ok(sealed) => self.shared.complete(sealed),
                    Err(e) => self.shared.fail(e.into()),
                }
            }
        } else {
            let packet = Arc::new(packet);
            for (i, chunk) in self.chunks.drain(..).enumerate() {
                let buf = match reserved.next() {
                    Some(buf) => buf,
                    None => self.engine.pool.acquire().ok_or(EngineError::Stopped)?,
                };
                let index = open.next_index;
                open.next_index += 1;
                open.bytes += open.sealer.record_len(index, chunk.range.len()) as u64;
                let here = i == last && caller_seals;
                let job = Job {
                    stream: Arc::clone(&self.shared),
                    sealer: Arc::clone(&open.sealer),
                    ordinal: self.next_ordinal,
                    index,
                    pts,
                    flags: RecordFlags::video(keyframe, chunk.continuation),
                    packet: Arc::clone(&packet),
                    range: chunk.range,
                    buf,
                    frame: Some(FrameTag {
                        dequeued,
                        last: i == last,
                    }),
                    queued_at: (!here).then(Instant::now),
                };
                self.next_ordinal += 1;
                self.records += 1;
                if here {
                    sched::run(job, &self.engine.estimates);
                } else {
                    lock(&self.engine.sched).push(self.slot, job);
                    self.engine.work.notify_one();
                }
            }
            if caller_seals {
                // Seal whatever chunks of this stream no worker has taken yet: a worker
                // that is still waking up would otherwise add its wake-up time to the
                // frame's latency.
                loop {
                    let job = lock(&self.engine.sched).pop_from(self.slot);
                    match job {
                        Some(job) => sched::run(job, &self.engine.estimates),
                        None => break,
                    }
                }
            }
        }
        open.frames += 1;
        // The latest frame shown, not decoded: with B-frames the last one decoded is shown
        // before its reference, and the segment ends one frame after the reference.
        open.last_pts = open.last_pts.max(pts);
        self.frames += 1;
        self.video_bytes += video_bytes;
        Ok(Pushed::Queued)
    }

    /// Seals the open segment (if any) with `reason` and waits until its trailer is
    /// written; it is published (made durable) shortly after, on the publisher thread.
    /// (A segment that [`push`](Stream::push) closes at a keyframe is not waited for.)
    pub fn close(&mut self, reason: CloseReason) -> Result<(), EngineError> {
        self.check()?;
        if self.open.is_some() {
            self.close_open(reason, false)?;
        }
        self.wait_for_trailers()
    }

    /// Records a loss; it is written, signed, into the header of the next segment opened.
    pub fn record_gap(&mut self, gap: Gap) {
        self.pending_gaps.push(gap);
    }

    /// Records pictures the source lost (`Encoder::take_loss`), and keeps recording.
    ///
    /// Pictures after the loss may refer to the lost ones, so every one up to the next
    /// keyframe is skipped ([`Pushed::Skipped`]). The loss and the skipped run become one
    /// signed [`GapReason::SourceLoss`] gap in the header of the segment that the keyframe
    /// begins, and a [`StreamEvent::Dropped`]. The caller should ask the source for a
    /// keyframe, so the run stays short.
    pub fn lost(&mut self, loss: Loss) {
        let frame_ticks = self.config.frame_ticks;
        match self.dropping.take() {
            Some(mut run) if run.reason == GapReason::SourceLoss => {
                run.frames = run.frames.saturating_add(loss.frames);
                run.from_pts = run.from_pts.min(loss.from_pts);
                run.last_pts = run.last_pts.max(loss.to_pts.saturating_sub(frame_ticks));
                self.dropping = Some(run);
            }
            other => {
                if let Some(run) = other {
                    // A run dropped under overload ends where the source's loss begins.
                    self.end_drop_run(run, loss.from_pts);
                }
                self.dropping = Some(DropRun {
                    reason: GapReason::SourceLoss,
                    frames: loss.frames,
                    from_pts: loss.from_pts,
                    last_pts: loss.to_pts.saturating_sub(frame_ticks).max(loss.from_pts),
                });
            }
        }
        self.lost_frames = self.lost_frames.saturating_add(loss.frames);
    }

    /// Whether the open segment is past its target length and waits only for a keyframe to
    /// close: a caller whose source takes keyframe requests should make one, so that the
    /// segment does not run into its maximum length and close at a picture that a decoder
    /// cannot start from.
    pub fn wants_keyframe(&self) -> bool {
        self.open.as_ref().is_some_and(|open| {
            open.last_pts.saturating_sub(open.start_pts) >= self.config.policy.target_ticks
        })
    }

    /// Events since the last call: segments published, frames dropped.
    pub fn take_events(&mut self) -> Vec<StreamEvent> {
        std::mem::take(&mut lock(&self.shared.events))
    }

    /// Closes the open segment with `reason` (ending a run of dropped frames first) and waits
    /// until every segment is published.
    pub fn flush(&mut self, reason: CloseReason) -> Result<(), EngineError> {
        if let Some(run) = self.dropping.take() {
            let end = run.last_pts.saturating_add(self.config.frame_ticks);
            self.end_drop_run(run, end);
        }
        self.close(reason)?;
        let mut state = lock(&self.shared.state);
        while state.published < self.closed_segments && !state.failed {
            state = wait(&self.shared.changed, state);
        }
        state.take_error()
    }

    /// [`flush`](Stream::flush)es and returns the stream's totals.
    ///
    /// A stream that never opened a segment gives back the sequence number it reserved when
    /// it was opened: no file, key or nonce used it, and keeping it reserved would make the
    /// next start report a crash that did not happen.
    pub fn finish(mut self, reason: CloseReason) -> Result<StreamStats, EngineError> {
        self.flush(reason)?;
        if !self.began_any
            && let Some(path) = &self.config.chain_path
        {
            self.chain.store(path)?;
        }
        let latency = lock(&self.shared.latency).clone();
        let state = lock(&self.shared.state);
        Ok(StreamStats {
            frames: self.frames,
            video_bytes: self.video_bytes,
            records: self.records,
            dropped_frames: self.dropped_frames,
            lost_frames: self.lost_frames,
            segments: state.published,
            segment_bytes: state.published_bytes,
            latency,
        })
    }

    /// Counts the video bytes the stream itself copies in user space: a picture rebuilt
    /// with the parameter sets held before it, or put in front of it to begin a segment.
    /// Every other byte is read in place, from the packet's lease, by the AEAD. A clone
    /// shares the count (an embedder adds its own copies to it).
    pub fn copy_meter(&self) -> CopyMeter {
        self.copies.clone()
    }

    /// Seals every segment that opens from now on to `recipients` ((HPKE KEM id, public
    /// key) pairs) instead of the ones the stream had; the open segment keeps its own.
    /// Returns the sequence number of the first segment sealed to them. An empty set is
    /// refused: the stream keeps its recipients.
    pub fn set_recipients(&mut self, recipients: Vec<(u16, Vec<u8>)>) -> Result<u64, EngineError> {
        if recipients.is_empty() {
            return Err(RecorderError::NoRecipients.into());
        }
        *lock(&self.shared.recipients) = recipients.clone();
        lock(&self.shared.next_key).take();
        self.config.recipients = recipients;
        Ok(self
            .open
            .as_ref()
            .map_or(self.chain.next_seq, |open| open.seq.saturating_add(1)))
    }

    /// The camera id segment names start with.
    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    /// Where the chain stands (after the last closed segment).
    pub fn chain(&self) -> ChainState {
        self.chain
    }

    /// Runs before every frame, so it reads two flags instead of taking two locks.
    fn check(&self) -> Result<(), EngineError> {
        if self.engine.stopped.load(Ordering::Acquire) {
            return Err(EngineError::Stopped);
        }
        if self.shared.failed.load(Ordering::Acquire) {
            return lock(&self.shared.state).take_error();
        }
        Ok(())
    }

    fn end_drop_run(&mut self, run: DropRun, to_pts: u64) {
        self.pending_gaps.push(Gap {
            reason: run.reason,
            lost_segments: None,
            frames: run.frames,
            from_pts: run.from_pts,
            to_pts,
        });
        lock(&self.shared.events).push(StreamEvent::Dropped {
            reason: run.reason,
            frames: run.frames,
            from_pts: run.from_pts,
            to_pts,
        });
    }

    fn begin(&mut self, start_pts: u64) -> Result<(), EngineError> {
        let seq = self.chain.next_seq;
        // The state after this segment must be storable: the last number is never used.
        self.chain.reserve()?;
        let info = SegmentInfo {
            camera_id: self.camera_id.clone(),
            stream_id: self.config.stream_id,
            seq,
            name: segment_file_name(&self.camera_id, self.config.stream_id, seq),
        };
        self.began_any = true;
        let output = self.sink.open(&info)?;
        let mut gaps = self.pending_gaps.clone();
        gaps.extend(self.sink.gaps(&info));
        if self.chain.prev_header_hash == [0; 32]
            && seq > 0
            && first_crashed_before(&gaps, seq) != 0
        {
            // No segment of this stream was ever finished, yet earlier numbers were
            // reserved (a run killed before its first segment): they are lost in a crash,
            // and this segment starts the stream (FORMAT.md §2.4, §6.1).
            gaps.push(Gap {
                reason: GapReason::Crash,
                lost_segments: Some((0, seq - 1)),
                frames: 0,
                from_pts: start_pts,
                to_pts: start_pts,
            });
        }
        let keys = recipient_keys(&self.config.recipients);
        let params = SegmentParams {
            suite: self.config.suite,
            codec: self.config.codec,
            stream_id: self.config.stream_id,
            segment_seq: seq,
            start_pts,
            wallclock_ms: wallclock_ms(self.config.wallclock),
            prev_header_hash: self.chain.prev_header_hash,
            recipients: &keys,
            gaps: &gaps,
            padding: self.config.padding,
        };
        let camera = &self.config.camera;
        let next_key = lock(&self.shared.next_key).take();
        // A key wrapped before the recipients changed is dropped: the new list applies from
        // this segment on.
        let sealer = match next_key.filter(|k| k.fits(&params, &camera.verifying_key().to_bytes()))
        {
            Some(key) => SegmentSealer::with_key(&params, camera, key)?,
            None => SegmentSealer::new(&params, camera, &self.config.randomness)?,
        };
        let appender = RecordAppender::new(&sealer, camera, self.config.checkpoints);
        let bytes = appender.bytes();
        let segment = SegmentOut {
            header: sealer.header_bytes().to_vec(),
            appender,
            output,
            seq,
            frames: 0,
            dequeued: Vec::new(),
            reason: CloseReason::EndOfStream,
            chain: None,
        };
        // In order with the records: the previous segment's last records may still be
        // sealing, and its trailer still unsigned; this header waits for neither.
        self.shared
            .complete_at(self.next_ordinal, Ordered::Begin(Box::new(segment)));
        self.next_ordinal += 1;
        self.pending_gaps.clear();
        self.open = Some(OpenSegment {
            sealer: Arc::new(sealer),
            seq,
            start_pts,
            last_pts: start_pts,
            next_index: 0,
            bytes,
            frames: 0,
        });
        Ok(())
    }

    /// Seals the final record of the open segment and hands it on, without waiting for the
    /// trailer: the next segment's header names this one's *header* hash (format v2), which
    /// is known since it opened. `continues`: another segment follows at once (so the
    /// publisher reserves its sequence number).
    fn close_open(&mut self, reason: CloseReason, continues: bool) -> Result<(), EngineError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let end = SegmentEnd {
            end_pts: open.last_pts.saturating_add(self.config.frame_ticks),
            reason,
        };
        let chain_after = ChainState {
            // `begin` refused u64::MAX, so `+ 1` fits; the reservation for the segment
            // after it saturates at u64::MAX, which `begin` then refuses.
            next_seq: open.seq.saturating_add(if continues { 2 } else { 1 }),
            prev_header_hash: [0; 32],
        };
        let closing = Closing {
            reason,
            frames: open.frames,
            chain: self
                .config
                .chain_path
                .clone()
                .map(|path| (path, chain_after)),
        };
        let mut buf = self.engine.pool.acquire().ok_or(EngineError::Stopped)?;
        let started = Instant::now();
        let len = open.sealer.seal_record_into(
            open.next_index,
            end.end_pts,
            RecordFlags::final_record(),
            &end.encode(),
            buf.bytes_mut(),
        )?;
        let digest = record_digest(&buf.bytes()[..len]);
        let sealed = Sealed {
            ordinal: self.next_ordinal,
            buf,
            len,
            digest,
            kernel: started.elapsed(),
            sealed_at: Instant::now(),
            frame: None,
            closing: Some(Box::new(closing)),
        };
        self.next_ordinal += 1;
        self.records += 1;
        self.shared.complete(sealed);
        self.closed_segments += 1;
        self.chain = ChainState {
            next_seq: open.seq + 1,
            prev_header_hash: *open.sealer.header_hash(),
        };
        Ok(())
    }

    /// Waits until the writer has signed the trailer of every segment closed so far.
    fn wait_for_trailers(&self) -> Result<(), EngineError> {
        let mut state = lock(&self.shared.state);
        loop {
            state.take_error()?;
            if state.trailers >= self.closed_segments {
                return Ok(());
            }
            state = wait(&self.shared.changed, state);
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // A stream dropped before it opened a segment (its run failed early) gives its
        // reserved sequence number back, as `finish` does: nothing used it, and keeping it
        // would leave a hole that no header declares.
        if !self.began_any
            && let Some(path) = &self.config.chain_path
        {
            let _ = self.chain.store(path);
        }
        // An unfinished segment stays a `.part` (as after a crash); its jobs still drain.
        lock(&self.engine.sched).remove_stream(self.slot);
        // Records sealed after this point find the writer gone and are dropped.
        let _ = self.shared.write_tx.send(WriteMsg::Stop);
        if let Some(writer) = self.writer.take() {
            // A writer that panicked has nothing left to clean up.
            let _ = writer.join();
        }
    }
}

/// The part of the engine every thread sees.
struct Shared {
    sched: Mutex<Scheduler>,
    /// `sched.shutdown`, readable without the lock.
    stopped: AtomicBool,
    work: Condvar,
    pool: BufferPool,
    publish_tx: Sender<PublishMsg>,
    max_chunk: usize,
    caller_seals: bool,
    hand_off: HandOff,
    /// Seal cost per byte and worker wake-up cost: whether a frame is worth handing off.
    estimates: Estimates,
}

/// The part of a stream that workers, its writer and the publisher see.
struct StreamShared {
    reorder: Mutex<Reorder>,
    /// To the stream's segment writer thread.
    write_tx: Sender<WriteMsg>,
    state: Mutex<StreamState>,
    /// `state.failed`, readable without the lock.
    failed: AtomicBool,
    changed: Condvar,
    events: Mutex<Vec<StreamEvent>>,
    /// Every stage but durable is recorded under `reorder` or by the writer; the publisher
    /// adds durable. Never held while waiting for anything else.
    latency: Mutex<StageLatencies>,
    /// The next segment's key, wrapped by the writer thread while it had nothing to do.
    next_key: Mutex<Option<WrappedSegmentKey>>,
    /// The recipients the writer thread wraps the next key to (they change with
    /// [`Stream::set_recipients`]).
    recipients: Mutex<Vec<(u16, Vec<u8>)>>,
    /// Signs and stores the stream head after each published segment (publisher thread).
    head: Option<HeadSigner>,
}

/// What the publisher needs to replace a stream's head.
struct HeadSigner {
    output: Box<dyn HeadOutput>,
    camera: SigningKey,
    stream_id: u32,
    wallclock: WallClock,
}

impl HeadSigner {
    /// Signs and stores the head naming segment `seq`, which `summary` describes.
    fn store(
        &self,
        seq: u64,
        summary: &SegmentSummary,
        end_of_stream: bool,
    ) -> std::io::Result<()> {
        let head = StreamHead::sign(
            &self.camera,
            self.stream_id,
            seq,
            summary,
            end_of_stream,
            wallclock_ms(self.wallclock),
        );
        self.output.store(&head.encode())
    }
}

impl StreamShared {
    /// Takes a sealed record and moves it, and every record after it that is ready, to the
    /// segment writer in order.
    ///
    /// Each record goes on at once, not a whole frame at a time: a frame can have more
    /// chunks than the pool has buffers, and holding its first records back would then wait
    /// for buffers that only their writing frees.
    fn complete(&self, record: Sealed) {
        self.complete_at(record.ordinal, Ordered::Record(record));
    }

    /// Puts `item` at `ordinal` in the stream's order and moves everything now next in
    /// order to the segment writer. A segment's opening (its header) has an ordinal of its
    /// own, so it reaches the writer after the previous segment's final record, whichever
    /// thread gets there first.
    fn complete_at(&self, ordinal: u64, item: Ordered) {
        let mut guard = lock(&self.reorder);
        let reorder = &mut *guard;
        if ordinal != reorder.next {
            reorder.pending.insert(ordinal, item);
            return;
        }
        // The common case (a one-chunk frame sealed where it was pushed) skips the map.
        let mut item = item;
        loop {
            reorder.next += 1;
            if let Ordered::Record(r) = &item
                && let Some(tag) = r.frame
            {
                reorder.frame_kernel += r.kernel;
                reorder.frame_sealed = Some(
                    reorder
                        .frame_sealed
                        .map_or(r.sealed_at, |t| t.max(r.sealed_at)),
                );
                if tag.last {
                    let now = Instant::now();
                    let sealed = reorder.frame_sealed.take().unwrap_or(now);
                    let kernel = std::mem::take(&mut reorder.frame_kernel);
                    let mut latency = lock(&self.latency);
                    latency.record(Stage::Kernel, kernel);
                    latency.record(
                        Stage::Sealed,
                        sealed.saturating_duration_since(tag.dequeued),
                    );
                    let appended = now.saturating_duration_since(tag.dequeued);
                    latency.record(Stage::Appended, appended);
                    latency.record_overhead(appended.saturating_sub(kernel));
                }
            }
            self.send(match item {
                Ordered::Begin(segment) => WriteMsg::Begin(segment),
                Ordered::Record(r) => WriteMsg::Record(r),
            });
            match reorder.pending.remove(&reorder.next) {
                Some(next) => item = next,
                None => return,
            }
        }
    }

    /// Hands `msg` to the segment writer (never blocks: the pool bounds what is queued).
    fn send(&self, msg: WriteMsg) {
        if self.write_tx.send(msg).is_err() {
            self.fail(EngineError::Stopped);
        }
    }

    /// Keeps the first error for the stream's thread, and wakes it.
    fn fail(&self, e: EngineError) {
        let mut state = lock(&self.state);
        if !state.failed {
            state.error = Some(e);
        }
        state.failed = true;
        self.failed.store(true, Ordering::Release);
        self.changed.notify_all();
    }
}

/// What goes to the segment writer in the stream's order.
enum Ordered {
    /// A segment opens: its header.
    Begin(Box<SegmentOut>),
    /// A sealed record.
    Record(Sealed),
}

#[derive(Default)]
struct Reorder {
    pending: BTreeMap<u64, Ordered>,
    next: u64,
    /// Over the frame being appended: kernel time so far and when its last chunk was sealed.
    frame_kernel: std::time::Duration,
    frame_sealed: Option<Instant>,
}

/// What the stream's segment writer is told, in order.
enum WriteMsg {
    /// A new segment: write its header; records follow.
    Begin(Box<SegmentOut>),
    /// The next record in order.
    Record(Sealed),
    /// The stream is gone.
    Stop,
}

/// The stream's segment writer: adds each record to the records hash and writes it out; at
/// the final record, signs the trailer and hands the segment to the publisher.
///
/// Once a segment's header is out, it also wraps the next segment's key (HPKE), so that the
/// keyframe that opens the next segment does not wait for it.
fn segment_writer(
    stream: &Arc<StreamShared>,
    rx: &Receiver<WriteMsg>,
    publish_tx: &Sender<PublishMsg>,
    key_recipe: &KeyRecipe,
) {
    let mut writer = Writer::default();
    while let Ok(msg) = rx.recv() {
        let result = match msg {
            WriteMsg::Begin(mut segment) => {
                let header = std::mem::take(&mut segment.header);
                let written = segment.output.write(&header);
                let next_seq = segment.seq.checked_add(1);
                writer.segment = Some(*segment);
                if let Some(next_seq) = next_seq {
                    // A failure here only means the next segment wraps its key itself (and
                    // reports the error then).
                    let recipients = lock(&stream.recipients).clone();
                    *lock(&stream.next_key) = key_recipe.wrap(next_seq, &recipients).ok();
                }
                written.map_err(EngineError::from)
            }
            WriteMsg::Record(r) => match writer.append(stream, r) {
                Ok(Some(job)) => publish_tx
                    .send(PublishMsg::Publish(job))
                    .map_err(|_| EngineError::Stopped),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            WriteMsg::Stop => return,
        };
        if let Err(e) = result {
            // The segment is abandoned (it stays a `.part`); the stream reports the error.
            writer.segment = None;
            stream.fail(e);
        }
    }
}

/// What a stream's segment keys are wrapped with.
struct KeyRecipe {
    suite: SframeSuite,
    stream_id: u32,
    camera_key: [u8; 32],
    randomness: Randomness,
}

impl KeyRecipe {
    fn wrap(
        &self,
        segment_seq: u64,
        recipients: &[(u16, Vec<u8>)],
    ) -> Result<WrappedSegmentKey, SegmentError> {
        WrappedSegmentKey::new(
            self.suite,
            self.stream_id,
            segment_seq,
            &recipient_keys(recipients),
            &self.camera_key,
            &self.randomness,
        )
    }
}

/// The in-order side of a stream, owned by its writer thread: the open segment's appender
/// and output.
#[derive(Default)]
struct Writer {
    segment: Option<SegmentOut>,
    /// Time spent hashing and writing records since it was last reported.
    busy: std::time::Duration,
}

impl Writer {
    /// Appends one record; for a final record, also the trailer, and returns the segment
    /// for the publisher.
    fn append(
        &mut self,
        stream: &Arc<StreamShared>,
        r: Sealed,
    ) -> Result<Option<Box<PublishJob>>, EngineError> {
        let Some(seg) = self.segment.as_mut() else {
            // The segment failed earlier; its remaining records are discarded.
            return Ok(None);
        };
        let started = Instant::now();
        let bytes = r.buf.bytes().get(..r.len).unwrap_or_default();
        if let Some(checkpoint) = seg.appender.append(bytes, &r.digest)? {
            seg.output.write(&checkpoint)?;
        }
        seg.output.write(bytes)?;
        drop(r.buf);
        self.busy += started.elapsed();
        match r.frame {
            Some(tag) => {
                if tag.last {
                    let now = Instant::now();
                    let mut latency = lock(&stream.latency);
                    latency.record(Stage::Written, now.saturating_duration_since(tag.dequeued));
                    latency.add_writer_busy(std::mem::take(&mut self.busy));
                    seg.dequeued.push(tag.dequeued);
                }
                Ok(None)
            }
            None => {
                // The final record: sign the trailer and hand the segment to the publisher.
                let Some(mut seg) = self.segment.take() else {
                    return Ok(None);
                };
                if let Some(closing) = r.closing {
                    seg.reason = closing.reason;
                    seg.frames = closing.frames;
                    seg.chain = closing.chain;
                }
                let (tail, summary) = seg.appender.finish(seg.reason.ends_stream())?;
                seg.output.write(&tail)?;
                let job = PublishJob {
                    output: seg.output,
                    stream: Arc::clone(stream),
                    summary: summary.clone(),
                    seq: seg.seq,
                    frames: seg.frames,
                    reason: seg.reason,
                    dequeued: seg.dequeued,
                    chain: seg.chain.map(|(path, mut chain)| {
                        chain.prev_header_hash = summary.header_hash;
                        (path, chain)
                    }),
                };
                {
                    let mut state = lock(&stream.state);
                    state.trailers += 1;
                    stream.changed.notify_all();
                }
                Ok(Some(Box::new(job)))
            }
        }
    }
}

#[derive(Default)]
struct StreamState {
    /// Segments whose trailer the writer has signed and written.
    trailers: u64,
    published: u64,
    published_bytes: u64,
    error: Option<EngineError>,
    failed: bool,
}

impl StreamState {
    /// The stream's error, once; [`EngineError::Failed`] after that.
    fn take_error(&mut self) -> Result<(), EngineError> {
        match self.error.take() {
            Some(e) => Err(e),
            None if self.failed => Err(EngineError::Failed),
            None => Ok(()),
        }
    }
}

/// A segment being appended to.
struct SegmentOut {
    /// The header, until the writer has written it.
    header: Vec<u8>,
    appender: RecordAppender,
    output: Box<dyn SegmentOutput>,
    seq: u64,
    frames: u64,
    /// Dequeue times of its frames, for the durable stage.
    dequeued: Vec<Instant>,
    reason: CloseReason,
    /// Chain state to store when it is published (digest filled in at the trailer).
    chain: Option<(PathBuf, ChainState)>,
}

/// The stream thread's view of the open segment.
struct OpenSegment {
    sealer: Arc<SegmentSealer>,
    seq: u64,
    start_pts: u64,
    last_pts: u64,
    next_index: u64,
    /// Header plus every record queued so far (record lengths are known before sealing).
    bytes: u64,
    frames: u64,
}

/// Frames being dropped since `from_pts`.
struct DropRun {
    reason: GapReason,
    frames: u64,
    from_pts: u64,
    last_pts: u64,
}

/// Which frame a record belongs to.
#[derive(Clone, Copy)]
struct FrameTag {
    dequeued: Instant,
    /// The frame's last record.
    last: bool,
}

/// A sealed record waiting for its turn.
struct Sealed {
    ordinal: u64,
    buf: PooledBuf,
    len: usize,
    /// BLAKE3 of the record, computed by whoever sealed it.
    digest: Digest32,
    kernel: std::time::Duration,
    sealed_at: Instant,
    /// `None` for the final record.
    frame: Option<FrameTag>,
    /// For the final record: how its segment closed.
    closing: Option<Box<Closing>>,
}

/// How a segment closed, carried by its final record to the writer (in order, so it can
/// never be applied to another segment).
struct Closing {
    reason: CloseReason,
    frames: u64,
    /// Chain state to store when it is published (digest filled in at the trailer).
    chain: Option<(PathBuf, ChainState)>,
}

enum PublishMsg {
    Publish(Box<PublishJob>),
    Stop,
}

struct PublishJob {
    output: Box<dyn SegmentOutput>,
    stream: Arc<StreamShared>,
    summary: SegmentSummary,
    seq: u64,
    frames: u64,
    reason: CloseReason,
    dequeued: Vec<Instant>,
    chain: Option<(PathBuf, ChainState)>,
}

/// Publishes segments in the order their trailers were written: chain state (which also
/// reserves the next sequence number), then fsync and rename; then replaces the stream head, which
/// names the segment just published (so a head never names a segment that is not durable).
fn publisher(rx: Receiver<PublishMsg>) {
    while let Ok(PublishMsg::Publish(job)) = rx.recv() {
        let PublishJob {
            output,
            stream,
            summary,
            seq,
            frames,
            reason,
            dequeued,
            chain,
        } = *job;
        let result = (|| -> Result<PathBuf, EngineError> {
            // Store the chain first: a crash before the rename leaves a `.part` and a hole,
            // never a reused sequence number or a stale digest.
            if let Some((path, chain)) = &chain {
                chain.store(path)?;
            }
            Ok(output.publish()?)
        })();
        match result {
            Ok(path) => {
                let now = Instant::now();
                {
                    let mut latency = lock(&stream.latency);
                    for d in &dequeued {
                        latency.record(Stage::Durable, now.saturating_duration_since(*d));
                    }
                }
                // Before the segment counts as published: a flushed stream's head is stored.
                let head = match &stream.head {
                    Some(head) => head.store(seq, &summary, reason.ends_stream()),
                    None => Ok(()),
                };
                lock(&stream.events).push(StreamEvent::Published(PublishedSegment {
                    path,
                    seq,
                    frames,
                    bytes: summary.bytes,
                    reason,
                }));
                // The error first, so that a flush that sees the segment published sees it.
                if let Err(e) = head {
                    stream.fail(EngineError::Output(e));
                }
                let mut state = lock(&stream.state);
                state.published += 1;
                state.published_bytes += summary.bytes;
                stream.changed.notify_all();
            }
            Err(e) => stream.fail(e),
        }
    }
}

/// Measures how long a parked worker takes to start a job: a few probes, each after the
/// workers and their cores have been idle a moment, as between two frames. The median
/// becomes the starting wake-up cost of the hand-off rule; real hand-offs refine it.
fn probe_wake_up(shared: &Shared) {
    let mut samples = Vec::with_capacity(WAKE_PROBES);
    for _ in 0..WAKE_PROBES {
        std::thread::sleep(WAKE_PROBE_IDLE);
        let (tx, rx) = crossbeam_channel::bounded(1);
        lock(&shared.sched).probe = Some((Instant::now(), tx));
        shared.work.notify_one();
        if let Ok(d) = rx.recv_timeout(std::time::Duration::from_secs(1)) {
            samples.push(d);
        }
    }
    samples.sort();
    if let Some(median) = samples.get(samples.len() / 2) {
        shared.estimates.set_wake(*median);
    }
}

/// The clock's current value, Unix milliseconds (0 if the system clock is before 1970).
fn wallclock_ms(clock: WallClock) -> u64 {
    match clock {
        WallClock::Fixed(ms) => ms,
        WallClock::System => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait<'a, T>(c: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    c.wait(g).unwrap_or_else(PoisonError::into_inner)
}

/// A stream's recipients, (HPKE KEM id, public key), as the sealer takes them.
fn recipient_keys(recipients: &[(u16, Vec<u8>)]) -> Vec<RecipientKey<'_>> {
    recipients
        .iter()
        .map(|(kem, pk)| RecipientKey {
            kem: *kem,
            public_key: pk,
        })
        .collect()
}

/// Pool buffer size for records of at most `max_chunk` plaintext bytes.
fn record_buf_len(max_chunk: usize) -> usize {
    // Prefix 13, SFrame header at most 17, tag 16; the final record's 9 bytes fit too.
    // Room for size padding whether or not a stream pads: the pool is shared by streams,
    // and the padded size of a 64 KiB chunk is only 4 bytes more (2^16 is a bucket).
    Padding::Buckets.sealed_plaintext_len(max_chunk.max(16)) + RECORD_OVERHEAD
}

const RECORD_OVERHEAD: usize = 13 + crate::seal::MAX_HEADER_LEN + 16;
const DEFAULT_MAX_CHUNK: usize = 64 << 10;
const MAX_WORKERS: usize = 256;
/// Wake-up probes at engine start, and the idle time before each.
const WAKE_PROBES: usize = 5;
const WAKE_PROBE_IDLE: std::time::Duration = std::time::Duration::from_millis(2);
/// Segments waiting for fsync and rename before the appending thread waits.
const PUBLISH_QUEUE: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_names_round_trip() {
        for policy in [Overload::Block, Overload::DropFrames] {
            assert_eq!(policy.name().parse::<Overload>(), Ok(policy));
        }
        let err = "drop".parse::<Overload>().unwrap_err();
        assert!(err.contains("block or drop-frames"), "{err}");
    }

    /// Keeps segments in memory and every head the engine stores, in order.
    struct HeadSink {
        segments: MemorySink,
        heads: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    struct HeadLog(Arc<Mutex<Vec<Vec<u8>>>>);

    impl SegmentSink for HeadSink {
        fn open(&mut self, info: &SegmentInfo) -> std::io::Result<Box<dyn SegmentOutput>> {
            self.segments.open(info)
        }

        fn head_output(&self, _camera_id: &str, _stream_id: u32) -> Option<Box<dyn HeadOutput>> {
            Some(Box::new(HeadLog(Arc::clone(&self.heads))))
        }
    }

    impl HeadOutput for HeadLog {
        fn store(&self, head: &[u8]) -> std::io::Result<()> {
            lock(&self.0).push(head.to_vec());
            Ok(())
        }
    }

    #[test]
    fn each_published_segment_replaces_the_stream_head() {
        use crate::segment::read::SegmentReader;
        use crate::segment::{Item, Parsed, Trailer, parse_item};

        let camera = SigningKey::from_bytes(&[3; 32]);
        let viewer = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9; 32]));
        let config = StreamConfig {
            camera: camera.clone(),
            recipients: vec![(0x0020, viewer.as_bytes().to_vec())],
            suite: SframeSuite::Aes128GcmSha256,
            codec: Codec::H264,
            stream_id: 2,
            policy: SegmentPolicy::with_target(std::time::Duration::from_millis(250)),
            frame_ticks: 9000,
            chain_path: None,
            randomness: Randomness::FixedForTests([1; 32]),
            wallclock: WallClock::Fixed(1_234),
            overload: Overload::Block,
            checkpoints: CheckpointPolicy::default(),
            padding: Padding::Off,
        };
        let segments = MemorySink::default();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let sink = HeadSink {
            segments: segments.clone(),
            heads: Arc::clone(&heads),
        };
        let engine = Engine::new(EngineConfig::new(1)).unwrap();
        let mut stream = engine.open_stream(config, Box::new(sink)).unwrap();
        for i in 0..10u64 {
            let data = vec![0, 0, 0, 1, 0x65, i as u8, 1, 2, 3];
            let packet = Packet::from_vec(Codec::H264, i * 9000, true, data);
            stream.push(packet, Instant::now()).unwrap();
        }
        stream.finish(CloseReason::EndOfStream).unwrap();
        engine.shutdown();

        let segments = segments.segments();
        let heads = lock(&heads).clone();
        assert!(segments.len() >= 3, "{} segments", segments.len());
        assert_eq!(heads.len(), segments.len(), "one head per segment");
        for (i, ((_, bytes), head)) in segments.iter().zip(&heads).enumerate() {
            let head = StreamHead::parse(head).unwrap();
            head.verify().unwrap();
            assert_eq!(head.camera_key, camera.verifying_key().to_bytes());
            assert_eq!((head.stream_id, head.seq), (2, i as u64));
            assert_eq!(head.wallclock_ms, 1_234);
            assert_eq!(head.end_of_stream, i + 1 == segments.len());
            let reader = SegmentReader::new(&bytes[..]).unwrap();
            assert_eq!(head.header_hash, reader.header().hash());
            let tail = &bytes[bytes.len() - Trailer::LEN..];
            let Ok(Parsed::Complete(Item::Trailer(trailer), _)) = parse_item(tail) else {
                panic!("segment {i} does not end with its trailer");
            };
            assert_eq!(head.record_count, trailer.record_count);
            assert_eq!(head.records_digest, trailer.records_digest);
        }
    }
}
