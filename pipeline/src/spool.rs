//! The spool: a directory where sealed segments wait for upload, crash-safe.
//!
//! What is durable when (see `docs/UPLOAD.md`):
//! - A segment is opened by writing its header to a temporary file under a random name
//!   (`fsutil`: created exclusively, never through a planted link), fsyncing it, renaming it
//!   to `NAME.cseg.open` and fsyncing the directory. An open file therefore always starts
//!   with a whole header.
//! - Each record is appended with one `write(2)` of the whole encoded record, straight to
//!   the file (no user-space buffer that could split one), and the file is fsynced at most
//!   every [`SpoolConfig::sync_interval`]. After a crash the file is a valid header followed
//!   by whole records, except that a write cut short by the crash can leave a torn last
//!   record; [`Spool::recover`] cuts the file back to its last whole record before anything
//!   reads it.
//! - Closing appends the trailer; the engine stores its chain state; then the spool fsyncs,
//!   renames to `NAME.cseg` and fsyncs the directory. Only then is the segment offered for
//!   upload. The chain state must never lag a closed segment (recovery examines only open
//!   files); it may run ahead of one, since recovery checks every open file against it.
//! - After a crash, [`Spool::recover`] finishes segments that were whole, turns the others
//!   into `NAME.incomplete.cseg` (uploaded under the same object key, for salvage), and
//!   queues a signed crash gap for the next segment's header.
//! - A full spool drops the oldest segments not yet uploaded (or refuses new ones); every
//!   drop is counted, logged and queued as a signed spool-quota gap.
//! - After each segment, the engine replaces the stream's signed head,
//!   `<camera id>-s<stream>.head` (`.part`, fsync, rename, fsync directory). The uploader
//!   sends it once no segment it names is still waiting.
//!
//! Only sealed bytes pass through the spool: its writer is handed encoded headers, records
//! and trailers by the segment writer, never plaintext.
//!
//! The pure decisions (names, keys, quota, prefix scan, which gaps to declare) are in
//! [`policy`].

pub mod policy;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use policy::{EntryKind, QuotaPolicy, SegmentId};

use crate::engine::{HeadFile, HeadOutput, SegmentInfo, SegmentOutput, SegmentSink};
use crate::recorder::ChainState;
use crate::segment::{Gap, GapReason, HeaderParser, Parsed, camera_id};

/// How a spool behaves.
#[derive(Clone)]
pub struct SpoolConfig {
    /// Most bytes the spool may hold (closed, incomplete and open segments together).
    pub max_bytes: Option<u64>,
    /// What happens when it is full.
    pub policy: QuotaPolicy,
    /// How often an open segment is fsynced while records are appended (`None`: only at
    /// close). Bounds what a power cut loses of the open segment.
    pub sync_interval: Option<Duration>,
    /// Where drops and recoveries are logged (by default a `tracing` warning, target
    /// `camseal::spool`).
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Default for SpoolConfig {
    fn default() -> SpoolConfig {
        SpoolConfig {
            max_bytes: None,
            policy: QuotaPolicy::DropOldest,
            sync_interval: Some(Duration::from_secs(1)),
            log: Arc::new(|line| tracing::warn!(target: "camseal::spool", "{line}")),
        }
    }
}

/// A segment waiting for upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSegment {
    /// Which segment.
    pub id: SegmentId,
    /// Its file in the spool.
    pub path: PathBuf,
    /// Recovered after a crash: a valid prefix without a trailer.
    pub incomplete: bool,
    /// Size.
    pub bytes: u64,
    /// When it was closed (file modification time).
    pub modified: SystemTime,
}

/// What [`Spool::recover`] found and did for one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Open segments that were whole (the crash hit between their trailer and their
    /// rename); now closed and queued.
    pub completed: Vec<SegmentId>,
    /// Crashed segments, cut back to their valid prefix and queued as incomplete, with
    /// the number of whole records each kept.
    pub salvaged: Vec<(SegmentId, u64)>,
    /// Files removed because they held no footage (a header that was never reserved).
    pub discarded: Vec<PathBuf>,
    /// Gaps now queued for the next segment's header (crash gaps and re-declared ones).
    pub gaps: Vec<Gap>,
    /// The chain state was changed and must be stored.
    pub chain_changed: bool,
}

/// Counters kept in the spool's `state/` directory, for `camseal status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Segments dropped because the spool was full.
    pub dropped_segments: u64,
    /// Their bytes.
    pub dropped_bytes: u64,
    /// Segments uploaded (to every sink) and removed.
    pub uploaded_segments: u64,
    /// Their bytes.
    pub uploaded_bytes: u64,
    /// Failed upload attempts.
    pub upload_failures: u64,
    /// The last upload error, if any.
    pub last_error: Option<String>,
    /// When it happened, Unix milliseconds.
    pub last_error_ms: u64,
}

/// A summary of the spool, for `camseal status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolStatus {
    /// Closed and incomplete segments waiting for upload.
    pub pending: usize,
    /// Their bytes.
    pub pending_bytes: u64,
    /// How many of them are incomplete (crash tails).
    pub incomplete: usize,
    /// Age of the oldest pending segment.
    pub oldest_age: Option<Duration>,
    /// Segments being written (or left open by a crash not yet recovered).
    pub open: usize,
    /// Their bytes.
    pub open_bytes: u64,
    /// Drop and upload counters.
    pub counters: Counters,
}

/// A spool directory. Cheap to clone; clones share state (the recorder and the upload
/// threads of one process use one).
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

impl Spool {
    /// Opens (creating if needed) the spool at `dir`.
    pub fn open(dir: impl Into<PathBuf>, config: SpoolConfig) -> Result<Spool, SpoolError> {
        let dir = dir.into();
        fs::create_dir_all(dir.join(STATE_DIR)).map_err(|e| SpoolError::io(&dir, e))?;
        let spool = Spool {
            inner: Arc::new(Inner {
                dir,
                config,
                state: Mutex::new(State::default()),
            }),
        };
        let used = spool.scan()?.used;
        spool.state().used = used;
        Ok(spool)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The configuration.
    pub fn config(&self) -> &SpoolConfig {
        &self.inner.config
    }

    /// Recovers one camera stream after a crash (call before recording it). See the
    /// [module docs](self). `chain` is the stream's chain state; store it if
    /// [`Recovery::chain_changed`].
    pub fn recover(
        &self,
        camera_key: &[u8; 32],
        stream: u32,
        chain: &mut ChainState,
    ) -> Result<Recovery, SpoolError> {
        let cam = camera_id(camera_key);
        let mut recovery = Recovery::default();
        let mut gaps = self.load_gaps(&cam, stream)?;
        let hwm = self.load_hwm(&cam, stream)?;
        let mut highest_file: Option<u64> = None;
        let mut last_crash: Option<Gap> = None;
        // The last segment salvaged here and the header hash its crash run links back to.
        let mut crash_run: Option<(u64, [u8; 32])> = None;
        let mut open = Vec::new();
        for (id, kind, path, _) in self.entries()? {
            if id.camera_id != cam || id.stream != stream {
                continue;
            }
            match kind {
                EntryKind::Temp => {
                    // A header that never became an open segment: nothing was reserved
                    // or recorded under it.
                    remove_file(&path)?;
                    recovery.discarded.push(path);
                }
                EntryKind::Open => open.push((id, path)),
                EntryKind::Closed | EntryKind::Incomplete => {}
            }
        }
        open.sort();
        for (id, path) in open {
            let bytes = fs::read(&path).map_err(|e| SpoolError::io(&path, e))?;
            let scan = policy::scan_prefix(&bytes);
            let Some(header) = &scan.header else {
                remove_file(&path)?;
                recovery.discarded.push(path);
                continue;
            };
            if header.camera_key != *camera_key || header.segment_seq != id.seq {
                self.log(&format!(
                    "{} does not hold the segment its name says; left alone",
                    path.display()
                ));
                continue;
            }
            highest_file = highest_file.max(Some(id.seq));
            // No number follows u64::MAX: such a file cannot be recovered into a chain.
            let after = id
                .seq
                .checked_add(1)
                .ok_or_else(|| SpoolError::SequenceExhausted(path.clone()))?;
            if let Some(digest) = scan.complete {
                let closed = self.path_of(&id, EntryKind::Closed);
                fsync_file(&path)?;
                rename(&path, &closed)?;
                sync_dir(self.dir())?;
                if chain.next_seq <= after {
                    *chain = ChainState {
                        next_seq: after,
                        prev_header_hash: digest,
                    };
                    recovery.chain_changed = true;
                }
                crash_run = None;
                self.log(&format!("segment {id} was whole; queued for upload"));
                recovery.completed.push(id);
                continue;
            }
            if scan.records == 0 && id.seq >= chain.next_seq {
                // Opened but never reserved: the sequence number will be used again, and
                // whatever the header carried must be declared by the next one.
                merge_gaps(&mut gaps, &header.gaps());
                remove_file(&path)?;
                recovery.discarded.push(path);
                continue;
            }
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| SpoolError::io(&path, e))?;
            file.set_len(scan.valid_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| SpoolError::io(&path, e))?;
            drop(file);
            rename(&path, &self.path_of(&id, EntryKind::Incomplete))?;
            sync_dir(self.dir())?;
            let declared = policy::crash_gaps(&header.gaps(), id.seq, scan.last_pts);
            merge_gaps(&mut gaps, &declared);
            last_crash = declared.last().copied();
            // The next segment names the crashed one's predecessor, whose header hash the
            // crashed header holds (the chain state may already name the crashed segment
            // itself if its trailer was written but never made durable). When the segment
            // before it crashed too (a power cut can leave two open: the next one is opened
            // while the previous one is still being published), its header names that
            // crashed segment; the run links back to the first one's predecessor, as the
            // joined crash gaps declare (FORMAT.md §6.1).
            let run_prev = match crash_run {
                Some((last, prev)) if last.checked_add(1) == Some(id.seq) => prev,
                _ => header.prev_header_hash,
            };
            crash_run = Some((id.seq, run_prev));
            if chain.next_seq <= id.seq || chain.prev_header_hash != run_prev {
                chain.next_seq = chain.next_seq.max(after);
                chain.prev_header_hash = run_prev;
                recovery.chain_changed = true;
            }
            self.log(&format!(
                "segment {id} was cut short by a crash: kept its {} whole records ({} of {} bytes) for upload as incomplete; the next segment records the crash",
                scan.records,
                scan.valid_len,
                bytes.len()
            ));
            recovery.salvaged.push((id, scan.records));
        }
        // Sequence numbers reserved in the chain state whose segment never reached the spool
        // (a crash between reserving and opening) are lost too.
        let known = hwm.max(highest_file);
        if let (Some(known), Some(last)) = (known, chain.next_seq.checked_sub(1))
            && known < last
        {
            let extended = last_crash
                .filter(|c| c.lost_segments.is_some_and(|(_, l)| l == known))
                .and_then(|c| gaps.iter().position(|g| *g == c));
            match extended {
                Some(i) => {
                    if let Some((first, _)) = gaps[i].lost_segments {
                        gaps[i].lost_segments = Some((first, last));
                    }
                }
                None => merge_gaps(
                    &mut gaps,
                    &[Gap {
                        reason: GapReason::Crash,
                        lost_segments: Some((known + 1, last)),
                        frames: 0,
                        from_pts: 0,
                        to_pts: 0,
                    }],
                ),
            }
            self.log(&format!(
                "segments {}..={last} of {cam} stream {stream} were reserved but never written (crash); the next segment records the loss",
                known + 1
            ));
        }
        if let Some(last) = chain.next_seq.checked_sub(1)
            && hwm.is_none_or(|h| h < last)
        {
            self.store_hwm(&cam, stream, last)?;
        }
        self.store_gaps(&cam, stream, &gaps)?;
        recovery.gaps = gaps.clone();
        self.state().gaps.insert((cam, stream), gaps);
        Ok(recovery)
    }

    /// Opens segment `id` for writing. Returns the writer and the gaps that the segment's
    /// header must carry (losses queued for this stream); they stay queued until the
    /// header is durable.
    ///
    /// Under [`QuotaPolicy::StopRecording`] a full spool refuses with [`SpoolError::Full`].
    pub fn begin(&self, id: SegmentId) -> Result<(SpoolWriter, Vec<Gap>), SpoolError> {
        if self.inner.config.policy == QuotaPolicy::StopRecording
            && !policy::may_open(self.state().used, self.inner.config.max_bytes)
        {
            // Uploads in another process may have made room: count again.
            let used = self.scan()?.used;
            self.state().used = used;
            if !policy::may_open(used, self.inner.config.max_bytes) {
                return Err(SpoolError::Full {
                    used,
                    max: self.inner.config.max_bytes.unwrap_or(0),
                });
            }
        }
        let gaps = self.queued_gaps(&id.camera_id, id.stream)?;
        let writer = SpoolWriter {
            spool: self.clone(),
            open_path: self.path_of(&id, EntryKind::Open),
            id,
            file: None,
            gaps_carried: gaps.clone(),
            bytes: 0,
            last_sync: Instant::now(),
        };
        Ok((writer, gaps))
    }

    /// Whether a new segment may be opened now (always, without a quota or under
    /// `drop-oldest`). Counts the spool again, since uploads may have made room.
    pub fn has_room(&self) -> Result<bool, SpoolError> {
        if self.inner.config.policy == QuotaPolicy::DropOldest {
            return Ok(true);
        }
        let used = self.scan()?.used;
        self.state().used = used;
        Ok(policy::may_open(used, self.inner.config.max_bytes))
    }

    /// Queues a loss to be declared in the next header of `camera_id`'s `stream`.
    pub fn queue_gap(&self, camera_id: &str, stream: u32, gap: Gap) -> Result<(), SpoolError> {
        let mut gaps = self.queued_gaps(camera_id, stream)?;
        merge_gaps(&mut gaps, &[gap]);
        self.store_gaps(camera_id, stream, &gaps)?;
        self.state()
            .gaps
            .insert((camera_id.to_string(), stream), gaps);
        Ok(())
    }

    /// Segments waiting for upload, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingSegment>, SpoolError> {
        let mut out: Vec<PendingSegment> = self
            .entries()?
            .into_iter()
            .filter(|(_, kind, _, _)| matches!(kind, EntryKind::Closed | EntryKind::Incomplete))
            .map(|(id, kind, path, meta)| PendingSegment {
                id,
                path,
                incomplete: kind == EntryKind::Incomplete,
                bytes: meta.len(),
                modified: meta.modified().unwrap_or(UNIX_EPOCH),
            })
            .collect();
        out.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        Ok(out)
    }

    /// Whether sink `sink_id` already has `segment` (only tracked with several sinks).
    pub fn is_acked(&self, segment: &PendingSegment, sink_id: &str) -> bool {
        self.ack_path(segment, sink_id).exists()
    }

    /// Records that sink `sink_id` has `segment`. Not fsynced: losing the mark only means
    /// an idempotent upload is repeated.
    pub fn ack(&self, segment: &PendingSegment, sink_id: &str) -> Result<(), SpoolError> {
        let path = self.ack_path(segment, sink_id);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| SpoolError::io(dir, e))?;
        }
        crate::fsutil::write_atomic(&path, b"", crate::fsutil::PUBLIC)
            .map_err(|e| SpoolError::io(&path, e))
    }

    /// Removes an uploaded segment and its marks, and counts it.
    pub fn remove(&self, segment: &PendingSegment) -> Result<(), SpoolError> {
        match fs::remove_file(&segment.path) {
            Ok(()) => {}
            // Dropped by the quota, or removed by another uploader.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SpoolError::io(&segment.path, e)),
        }
        let acks = self.dir().join(ACK_DIR);
        if let Ok(sinks) = fs::read_dir(&acks) {
            let name = file_name(&segment.path);
            for sink in sinks.flatten() {
                let _ = fs::remove_file(sink.path().join(&name));
            }
        }
        {
            let mut state = self.state();
            state.used = state.used.saturating_sub(segment.bytes);
        }
        self.update_counters(UPLOAD_COUNTERS, |c| {
            c.uploaded_segments += 1;
            c.uploaded_bytes += segment.bytes;
        })
    }

    /// Counts a failed upload attempt and remembers its message.
    pub fn note_failure(&self, message: &str) -> Result<(), SpoolError> {
        self.update_counters(UPLOAD_COUNTERS, |c| {
            c.upload_failures += 1;
            c.last_error = Some(message.replace('\n', " "));
            c.last_error_ms = unix_ms();
        })
    }

    /// Counts a failed upload attempt whose message adds nothing to the last one.
    pub fn count_failure(&self) -> Result<(), SpoolError> {
        self.update_counters(UPLOAD_COUNTERS, |c| c.upload_failures += 1)
    }

    /// Pending segments and bytes, the oldest one's age, open segments, and counters.
    pub fn status(&self) -> Result<SpoolStatus, SpoolError> {
        let pending = self.pending()?;
        let mut open = 0;
        let mut open_bytes = 0;
        for (_, kind, _, meta) in self.entries()? {
            if kind == EntryKind::Open {
                open += 1;
                open_bytes += meta.len();
            }
        }
        let uploads = self.read_counters(UPLOAD_COUNTERS)?;
        let drops = self.read_counters(DROP_COUNTERS)?;
        Ok(SpoolStatus {
            pending: pending.len(),
            pending_bytes: pending.iter().map(|p| p.bytes).sum(),
            incomplete: pending.iter().filter(|p| p.incomplete).count(),
            oldest_age: pending
                .first()
                .and_then(|p| SystemTime::now().duration_since(p.modified).ok()),
            open,
            open_bytes,
            counters: Counters {
                dropped_segments: drops.dropped_segments,
                dropped_bytes: drops.dropped_bytes,
                ..uploads
            },
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters behind; keep going.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn log(&self, line: &str) {
        (self.inner.config.log)(line);
    }

    fn path_of(&self, id: &SegmentId, kind: EntryKind) -> PathBuf {
        self.dir().join(id.spool_name(kind))
    }

    fn ack_path(&self, segment: &PendingSegment, sink_id: &str) -> PathBuf {
        self.dir()
            .join(ACK_DIR)
            .join(sink_id)
            .join(file_name(&segment.path))
    }

    /// Every file the spool made, with its metadata.
    fn entries(&self) -> Result<Vec<Entry>, SpoolError> {
        let dir = self.dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| SpoolError::io(dir, e))? {
            let entry = entry.map_err(|e| SpoolError::io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_str();
            // A temporary file (`fsutil`) left by a crash counts as the header it was to be.
            let parsed = name.and_then(policy::parse_spool_name).or_else(|| {
                let (id, _) = policy::parse_spool_name(name.and_then(crate::fsutil::temp_target)?)?;
                Some((id, EntryKind::Temp))
            });
            let Some((id, kind)) = parsed else {
                continue;
            };
            // A file removed between listing and stat (an upload finishing) is skipped.
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                out.push((id, kind, entry.path(), meta));
            }
        }
        Ok(out)
    }

    fn scan(&self) -> Result<Scan, SpoolError> {
        let mut scan = Scan::default();
        for (_, kind, path, meta) in self.entries()? {
            scan.used += meta.len();
            if matches!(kind, EntryKind::Closed | EntryKind::Incomplete) {
                scan.droppable
                    .push((meta.modified().unwrap_or(UNIX_EPOCH), path, meta.len()));
            }
        }
        scan.droppable.sort();
        Ok(scan)
    }

    /// Called as an open segment grows: under `drop-oldest`, deletes the oldest pending
    /// segments until the spool fits its quota again.
    fn account(&self, added: u64) -> Result<(), SpoolError> {
        let Some(max) = self.inner.config.max_bytes else {
            return Ok(());
        };
        {
            let mut state = self.state();
            state.used += added;
            if state.used <= max || self.inner.config.policy != QuotaPolicy::DropOldest {
                return Ok(());
            }
            // Over quota with nothing left to drop (only open segments), every record would
            // rescan the directory: once a second, or after another sixteenth of the quota,
            // is enough.
            if state
                .last_rescan
                .is_some_and(|t| t.elapsed() < RESCAN_INTERVAL)
                && state.used < state.used_at_rescan.saturating_add((max / 16).max(1))
            {
                return Ok(());
            }
        }
        let scan = self.scan()?;
        let sizes: Vec<u64> = scan.droppable.iter().map(|d| d.2).collect();
        let n = policy::plan_drops(scan.used, max, &sizes);
        let mut used = scan.used;
        for (_, path, bytes) in scan.droppable.into_iter().take(n) {
            self.drop_segment(&path, bytes, used, max)?;
            used = used.saturating_sub(bytes);
        }
        let mut state = self.state();
        state.used = used;
        state.last_rescan = Some(Instant::now());
        state.used_at_rescan = used;
        Ok(())
    }

    fn drop_segment(&self, path: &Path, bytes: u64, used: u64, max: u64) -> Result<(), SpoolError> {
        let name = file_name(path);
        let Some((id, _)) = policy::parse_spool_name(&name) else {
            return Ok(());
        };
        let (from_pts, to_pts, carried) = read_span(path).unwrap_or((0, 0, Vec::new()));
        match fs::remove_file(path) {
            Ok(()) => {}
            // Uploaded meanwhile: nothing was lost.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SpoolError::io(path, e)),
        }
        sync_dir(self.dir())?;
        self.update_counters(DROP_COUNTERS, |c| {
            c.dropped_segments += 1;
            c.dropped_bytes += bytes;
        })?;
        self.log(&format!(
            "QUOTA: spool holds {used} bytes, more than --spool-max-bytes {max}: dropped segment {id} ({bytes} bytes) before it was uploaded; the next segment of its stream records the loss"
        ));
        // Losses this segment's header declared would be lost with it: declare them again.
        for gap in carried {
            self.queue_gap(&id.camera_id, id.stream, gap)?;
        }
        self.queue_gap(
            &id.camera_id,
            id.stream,
            Gap {
                reason: GapReason::SpoolQuota,
                lost_segments: Some((id.seq, id.seq)),
                frames: 0,
                from_pts,
                to_pts,
            },
        )
    }

    fn queued_gaps(&self, camera_id: &str, stream: u32) -> Result<Vec<Gap>, SpoolError> {
        let key = (camera_id.to_string(), stream);
        if let Some(g) = self.state().gaps.get(&key) {
            return Ok(g.clone());
        }
        let gaps = self.load_gaps(camera_id, stream)?;
        self.state().gaps.insert(key, gaps.clone());
        Ok(gaps)
    }

    /// Forgets queued gaps that a durable header now carries.
    fn delivered(&self, camera_id: &str, stream: u32, carried: &[Gap]) -> Result<(), SpoolError> {
        let mut gaps = self.queued_gaps(camera_id, stream)?;
        gaps.retain(|g| !carried.contains(g));
        self.store_gaps(camera_id, stream, &gaps)?;
        self.state()
            .gaps
            .insert((camera_id.to_string(), stream), gaps);
        Ok(())
    }

    fn hwm_path(&self, camera_id: &str, stream: u32) -> PathBuf {
        self.dir()
            .join(STATE_DIR)
            .join(format!("opened-{camera_id}-s{stream}"))
    }

    /// The highest sequence number of the stream whose open file was ever created here.
    fn load_hwm(&self, camera_id: &str, stream: u32) -> Result<Option<u64>, SpoolError> {
        let path = self.hwm_path(camera_id, stream);
        match fs::read_to_string(&path) {
            Ok(t) => t
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| SpoolError::Corrupt(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SpoolError::io(&path, e)),
        }
    }

    fn store_hwm(&self, camera_id: &str, stream: u32, seq: u64) -> Result<(), SpoolError> {
        write_atomic(
            &self.hwm_path(camera_id, stream),
            format!("{seq}\n").as_bytes(),
        )
    }

    fn gaps_path(&self, camera_id: &str, stream: u32) -> PathBuf {
        self.dir()
            .join(STATE_DIR)
            .join(format!("gaps-{camera_id}-s{stream}"))
    }

    fn load_gaps(&self, camera_id: &str, stream: u32) -> Result<Vec<Gap>, SpoolError> {
        let path = self.gaps_path(camera_id, stream);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SpoolError::io(&path, e)),
        };
        let mut gaps = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let gap = hex::decode(line)
                .ok()
                .and_then(|b| Gap::parse(&b).ok())
                .ok_or_else(|| SpoolError::Corrupt(path.clone()))?;
            gaps.push(gap);
        }
        Ok(gaps)
    }

    fn store_gaps(&self, camera_id: &str, stream: u32, gaps: &[Gap]) -> Result<(), SpoolError> {
        let path = self.gaps_path(camera_id, stream);
        if gaps.is_empty() {
            return match fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.dir().join(STATE_DIR)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(SpoolError::io(&path, e)),
            };
        }
        let text: String = gaps
            .iter()
            .map(|g| format!("{}\n", hex::encode(g.encode())))
            .collect();
        write_atomic(&path, text.as_bytes())
    }

    fn read_counters(&self, name: &str) -> Result<Counters, SpoolError> {
        let path = self.dir().join(STATE_DIR).join(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Counters::default()),
            Err(e) => return Err(SpoolError::io(&path, e)),
        };
        Ok(parse_counters(&text))
    }

    fn update_counters(&self, name: &str, f: impl FnOnce(&mut Counters)) -> Result<(), SpoolError> {
        // One lock for the read-modify-write within this process; another process updating
        // the same file at the same instant can lose one increment, which only affects
        // the report.
        let _guard = self.state();
        let mut c = self.read_counters(name)?;
        f(&mut c);
        write_atomic(
            &self.dir().join(STATE_DIR).join(name),
            encode_counters(&c).as_bytes(),
        )
    }
}

/// Writes one segment into the spool. Implements [`Write`]: give it to
/// [`SegmentWriter`](crate::segment::write::SegmentWriter), which writes the header, then
/// each record and finally the trailer, each with one `write_all` call.
///
/// The first `write_all` (the header) creates the open file durably; each later one is one
/// `write(2)` of a whole record straight to the file. Dropping the writer without
/// [`commit`](Self::commit) leaves the open file for [`Spool::recover`], as a crash would.
pub struct SpoolWriter {
    spool: Spool,
    id: SegmentId,
    open_path: PathBuf,
    file: Option<File>,
    gaps_carried: Vec<Gap>,
    bytes: u64,
    last_sync: Instant,
}

impl SpoolWriter {
    /// Which segment.
    pub fn id(&self) -> &SegmentId {
        &self.id
    }

    /// Bytes written.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Closes the segment once the trailer is written: fsyncs it, runs `before_publish`,
    /// renames it for upload and fsyncs the directory. A caller that has not stored its
    /// chain state yet stores it in `before_publish`: never after the rename (see the
    /// [module docs](self)). The engine stores it before calling this.
    pub fn commit<E>(
        self,
        before_publish: impl FnOnce() -> Result<(), E>,
    ) -> Result<PendingSegment, CommitError<E>> {
        let file = self
            .file
            .as_ref()
            .ok_or(CommitError::Spool(SpoolError::NothingWritten))?;
        file.sync_all()
            .map_err(|e| CommitError::Spool(SpoolError::io(&self.open_path, e)))?;
        before_publish().map_err(CommitError::Before)?;
        let closed = self.spool.path_of(&self.id, EntryKind::Closed);
        rename(&self.open_path, &closed).map_err(CommitError::Spool)?;
        sync_dir(self.spool.dir()).map_err(CommitError::Spool)?;
        let modified = fs::metadata(&closed)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        Ok(PendingSegment {
            id: self.id.clone(),
            path: closed,
            incomplete: false,
            bytes: self.bytes,
            modified,
        })
    }

    fn create(&mut self, header: &[u8]) -> io::Result<()> {
        let mut tmp = crate::fsutil::TempFile::for_target(&self.open_path, crate::fsutil::PUBLIC)?;
        tmp.file().write_all(header)?;
        self.file = Some(tmp.persist(&self.open_path)?);
        self.last_sync = Instant::now();
        self.spool
            .store_hwm(&self.id.camera_id, self.id.stream, self.id.seq)
            .map_err(io::Error::other)?;
        self.spool
            .delivered(&self.id.camera_id, self.id.stream, &self.gaps_carried)
            .map_err(io::Error::other)
    }
}

impl Write for SpoolWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.file {
            None => self.create(buf)?,
            Some(file) => {
                // One write(2) per record; a regular file only returns short on a fatal
                // signal or a full disk, and then the loop (or recovery) sorts it out.
                file.write_all(buf)?;
                if let Some(every) = self.spool.inner.config.sync_interval
                    && self.last_sync.elapsed() >= every
                {
                    file.sync_data()?;
                    self.last_sync = Instant::now();
                }
            }
        }
        self.bytes += buf.len() as u64;
        self.spool
            .account(buf.len() as u64)
            .map_err(io::Error::other)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The spool as the engine's [`SegmentSink`]: every segment is staged in the spool, its
/// queued gaps go into its header, and `on_publish` (the uploader's wake-up) runs after each
/// segment is closed.
pub struct SpoolSink {
    spool: Spool,
    gaps: Vec<Gap>,
    on_publish: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl SpoolSink {
    /// A sink into `spool`; `on_publish` runs after each closed segment.
    pub fn new(spool: Spool, on_publish: Option<Arc<dyn Fn() + Send + Sync>>) -> SpoolSink {
        SpoolSink {
            spool,
            gaps: Vec::new(),
            on_publish,
        }
    }
}

impl SegmentSink for SpoolSink {
    fn open(&mut self, info: &SegmentInfo) -> io::Result<Box<dyn SegmentOutput>> {
        let id = SegmentId {
            camera_id: info.camera_id.clone(),
            stream: info.stream_id,
            seq: info.seq,
        };
        let (writer, gaps) = self.spool.begin(id).map_err(io::Error::other)?;
        self.gaps = gaps;
        Ok(Box::new(SpoolOutput {
            writer,
            on_publish: self.on_publish.clone(),
        }))
    }

    fn gaps(&mut self, _info: &SegmentInfo) -> Vec<Gap> {
        std::mem::take(&mut self.gaps)
    }

    /// The head is kept in the spool next to the segments (`<camera id>-s<stream>.head`);
    /// the uploader sends it once the segments it names are uploaded.
    fn head_output(&self, camera_id: &str, stream_id: u32) -> Option<Box<dyn HeadOutput>> {
        let path = self
            .spool
            .dir()
            .join(crate::segment::head::file_name(camera_id, stream_id));
        Some(Box::new(HeadFile::new(path, self.on_publish.clone())))
    }
}

struct SpoolOutput {
    writer: SpoolWriter,
    on_publish: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl SegmentOutput for SpoolOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    fn publish(self: Box<Self>) -> io::Result<PathBuf> {
        let SpoolOutput { writer, on_publish } = *self;
        let pending = writer
            .commit(|| Ok::<(), io::Error>(()))
            .map_err(io::Error::other)?;
        if let Some(f) = on_publish {
            f();
        }
        Ok(pending.path)
    }
}

/// Whether `e` (or an I/O error inside it) says the spool is full under `stop-recording`.
pub fn is_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if matches!(
            c.downcast_ref::<SpoolError>(),
            Some(SpoolError::Full { .. })
        ) {
            return true;
        }
        if let Some(io) = c.downcast_ref::<io::Error>()
            && io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<SpoolError>())
                .is_some_and(|s| matches!(s, SpoolError::Full { .. }))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A failure to commit: in the spool, or in the caller's `before_publish` step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError<E> {
    /// The spool failed.
    #[error(transparent)]
    Spool(SpoolError),
    /// The caller's step failed; the segment stays open for recovery.
    #[error("{0}")]
    Before(E),
}

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A state file the spool wrote is unreadable.
    #[error("{}: unreadable spool state file", .0.display())]
    Corrupt(PathBuf),
    /// The spool is full and the policy is `stop-recording`.
    #[error("spool is full ({used} of {max} bytes) and the policy is stop-recording")]
    Full {
        /// Bytes in the spool.
        used: u64,
        /// The quota.
        max: u64,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A segment in the spool has sequence number u64::MAX: no segment can follow it.
    #[error(
        "{}: sequence number 18446744073709551615 is the last there is; the stream cannot continue after it",
        .0.display()
    )]
    SequenceExhausted(PathBuf),
    /// Commit before any byte was written.
    #[error("segment committed before its header was written")]
    NothingWritten,
}

impl SpoolError {
    fn io(path: &Path, source: io::Error) -> SpoolError {
        SpoolError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

struct Inner {
    dir: PathBuf,
    config: SpoolConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bytes in the spool, as this process counts them (uploads elsewhere make it high;
    /// a rescan corrects it).
    used: u64,
    last_rescan: Option<Instant>,
    used_at_rescan: u64,
    gaps: HashMap<(String, u32), Vec<Gap>>,
}

#[derive(Default)]
struct Scan {
    used: u64,
    droppable: Vec<(SystemTime, PathBuf, u64)>,
}

type Entry = (SegmentId, EntryKind, PathBuf, fs::Metadata);

fn merge_gaps(into: &mut Vec<Gap>, new: &[Gap]) {
    for g in new {
        if !into.contains(g) {
            into.push(*g);
        }
    }
}

/// The pts span of a closed segment (its start, and the end its final record names, found
/// by walking the records' clear headers without reading their bodies), and the gaps its
/// header declares.
fn read_span(path: &Path) -> Option<(u64, u64, Vec<Gap>)> {
    let mut r = BufReader::new(File::open(path).ok()?);
    let mut buf = Vec::new();
    let mut parser = HeaderParser::new();
    let header = loop {
        match parser.parse(&buf).ok()? {
            Parsed::Complete(h, used) => {
                r.seek(SeekFrom::Start(used as u64)).ok()?;
                break h;
            }
            Parsed::Needed(n) => {
                let have = buf.len();
                buf.resize(n.max(have + 1), 0);
                r.read_exact(&mut buf[have..]).ok()?;
            }
        }
    };
    let mut end = header.start_pts;
    let mut head = [0u8; 13];
    while r.read_exact(&mut head[..4]).is_ok() {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len == u32::MAX || len < 9 {
            break;
        }
        r.read_exact(&mut head[4..]).ok()?;
        let mut pts = [0u8; 8];
        pts.copy_from_slice(&head[5..13]);
        end = u64::from_be_bytes(pts);
        r.seek_relative(i64::from(len) - 9).ok()?;
    }
    Some((header.start_pts, end, header.gaps()))
}

fn parse_counters(text: &str) -> Counters {
    let mut c = Counters::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        let n = v.parse().unwrap_or(0);
        match k {
            "dropped_segments" => c.dropped_segments = n,
            "dropped_bytes" => c.dropped_bytes = n,
            "uploaded_segments" => c.uploaded_segments = n,
            "uploaded_bytes" => c.uploaded_bytes = n,
            "upload_failures" => c.upload_failures = n,
            "last_error_ms" => c.last_error_ms = n,
            "last_error" => c.last_error = Some(v.to_string()),
            _ => {}
        }
    }
    c
}

fn encode_counters(c: &Counters) -> String {
    let mut s = format!(
        "dropped_segments {}\ndropped_bytes {}\nuploaded_segments {}\nuploaded_bytes {}\nupload_failures {}\nlast_error_ms {}\n",
        c.dropped_segments,
        c.dropped_bytes,
        c.uploaded_segments,
        c.uploaded_bytes,
        c.upload_failures,
        c.last_error_ms
    );
    if let Some(e) = &c.last_error {
        s.push_str(&format!("last_error {e}\n"));
    }
    s
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn remove_file(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::io(path, e)),
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), SpoolError> {
    fs::rename(from, to).map_err(|e| SpoolError::io(to, e))
}

fn fsync_file(path: &Path) -> Result<(), SpoolError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| SpoolError::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SpoolError::io(dir, e))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    crate::fsutil::write_atomic(path, bytes, crate::fsutil::PUBLIC)
        .map_err(|e| SpoolError::io(path, e))
}

const STATE_DIR: &str = "state";
const ACK_DIR: &str = "acks";
const DROP_COUNTERS: &str = "drops";
const UPLOAD_COUNTERS: &str = "uploads";
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);
