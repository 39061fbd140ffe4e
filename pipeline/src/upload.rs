//! The uploader: moves sealed segments from the [spool](crate::spool) to one or more sinks.
//!
//! - [`Sink`] is where segments go: [`s3::S3Sink`] (`s3://`), [`http::HttpSink`]
//!   (`http(s)://`, base URL or presigned template) and [`dir::DirSink`] (`dir:PATH`);
//!   [`open_sink`] parses a sink URL.
//! - [`Uploader`] runs the loop on its own threads, so it never blocks sealing: oldest
//!   segment first, several at a time, exponential backoff with full jitter per sink,
//!   timeouts on connect and on each read and write, an optional shared bandwidth cap.
//!   Errors are classified: 4xx answers (bad credentials, missing bucket) are permanent
//!   and logged loudly, 5xx answers and transport failures are retried. A segment leaves
//!   the spool only once every sink has it. After the segments, each stream's signed head
//!   (`segment::head`) is sent too, replacing the sink's previous one.
//! - [`backoff`] holds the pure timing decisions; [`net`] what a sink's connections trust
//!   (system store, `ca=`, client certificate) and which proxy they take; [`early`] makes
//!   a refusal the server answers mid-body surface as that answer.
//!
//! Segments are sealed: the uploader only moves ciphertext, and never needs a key.

pub mod backoff;
pub mod dir;
pub mod early;
pub mod http;
pub mod listing;
pub mod net;
pub mod s3;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use self::backoff::{Backoff, TokenBucket};
use crate::segment::head::{self, StreamHead};
use crate::spool::{PendingSegment, SegmentId, Spool, SpoolError};

/// Where sealed segments go.
pub trait Sink: Send + Sync {
    /// A description for logs, without secrets.
    fn name(&self) -> String;
    /// Stores `len` bytes from `body`, whose digests are `digest`, as segment `id`, and
    /// returns only once the service has confirmed it holds exactly these bytes. An object
    /// already under the key is never replaced: if it holds the same bytes (a retry after a
    /// lost answer) the upload counts as done; otherwise it is an [`UploadError::Conflict`].
    fn put(
        &self,
        id: &SegmentId,
        body: &mut dyn Read,
        len: u64,
        digest: &BodyDigest,
    ) -> Result<(), UploadError>;
    /// The segments stored, filtered, sorted by camera, stream and seq.
    fn list(&self, filter: &ListFilter) -> Result<Vec<SegmentId>, UploadError>;
    /// Copies segment `id` into `out`; returns its length.
    fn get(&self, id: &SegmentId, out: &mut dyn Write) -> Result<u64, UploadError>;
    /// The first `len` bytes of segment `id` (all of it if shorter): enough to read its
    /// signed header without downloading its video. The default downloads the whole
    /// segment and keeps the start; sinks that can read a range override it.
    fn get_prefix(&self, id: &SegmentId, len: u64) -> Result<Vec<u8>, UploadError> {
        let mut bytes = Vec::new();
        self.get(id, &mut bytes)?;
        bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(bytes)
    }
    /// Stores the stream head (`segment::head`) of `camera_id`'s stream `stream`, next to
    /// its segments, replacing the previous one. The default: [`UploadError::Unsupported`].
    fn put_head(&self, _camera_id: &str, _stream: u32, _head: &[u8]) -> Result<(), UploadError> {
        Err(UploadError::Unsupported(
            "this sink does not store stream heads",
        ))
    }
    /// The stored stream head of `camera_id`'s stream `stream`, `None` if there is none.
    fn get_head(&self, _camera_id: &str, _stream: u32) -> Result<Option<Vec<u8>>, UploadError> {
        Ok(None)
    }
    /// Stores the control object of `camera_id` (`control::object_key`), replacing the
    /// previous one. The default: [`UploadError::Unsupported`].
    fn put_control(&self, _camera_id: &str, _object: &[u8]) -> Result<(), UploadError> {
        Err(UploadError::Unsupported(
            "this sink does not store control objects",
        ))
    }
    /// The stored control object of `camera_id`, `None` if there is none.
    fn get_control(&self, _camera_id: &str) -> Result<Option<Vec<u8>>, UploadError> {
        Err(UploadError::Unsupported(
            "this sink does not store control objects",
        ))
    }
    /// Things worth a log line that are not failures (a clock correction), taken once.
    fn take_notices(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The digests of an upload's body, computed from the spool file before it is sent: the
/// service checks them against what it received, and reports them back as proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyDigest {
    /// MD5 (`Content-MD5`, and the ETag of a plain single-part S3 upload).
    pub md5: [u8; 16],
    /// SHA-256 (`x-amz-checksum-sha256`).
    pub sha256: [u8; 32],
}

impl BodyDigest {
    /// The digests of `bytes`.
    pub fn of(bytes: &[u8]) -> BodyDigest {
        let mut r = bytes;
        BodyDigest::read(&mut r).unwrap_or_else(|_| unreachable!("reading a slice cannot fail"))
    }

    /// The digests of everything `r` yields.
    pub fn read(r: &mut dyn Read) -> io::Result<BodyDigest> {
        use md5::Digest as _;
        let mut md5 = md5::Md5::new();
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            md5.update(&buf[..n]);
            sha.update(&buf[..n]);
        }
        Ok(BodyDigest {
            md5: md5.finalize().into(),
            sha256: sha.finalize().into(),
        })
    }

    /// `Content-MD5`: base64 of the MD5.
    pub fn content_md5(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.md5)
    }

    /// `x-amz-checksum-sha256`: base64 of the SHA-256.
    pub fn checksum_sha256(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.sha256)
    }

    /// The MD5 in lower-case hex (an S3 ETag).
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

/// Which stored segments [`Sink::list`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this camera id.
    pub camera: Option<String>,
    /// Only this stream.
    pub stream: Option<u32>,
    /// Only sequence numbers at or above this.
    pub since: Option<u64>,
}

impl ListFilter {
    /// Whether `id` passes.
    pub fn matches(&self, id: &SegmentId) -> bool {
        self.camera.as_ref().is_none_or(|c| *c == id.camera_id)
            && self.stream.is_none_or(|s| s == id.stream)
            && self.since.is_none_or(|s| id.seq >= s)
    }
}

/// The largest object `fetch` downloads: a server that sends more is refused rather than
/// allowed to fill the viewer's disk.
pub const MAX_OBJECT_BYTES: u64 = 4 << 30;

/// Network timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest stall of one read or write (a slow upload that keeps moving is fine).
    pub io_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            connect_timeout: http::DEFAULT_CONNECT_TIMEOUT,
            io_timeout: http::DEFAULT_IO_TIMEOUT,
        }
    }
}

/// Opens a sink from its URL: `s3://BUCKET/PREFIX?endpoint=URL&region=R`,
/// `http(s)://...` (base URL or template), or `dir:PATH`.
pub fn open_sink(url: &str, net: &NetConfig) -> Result<Box<dyn Sink>, UploadError> {
    if let Some(path) = url.strip_prefix("dir:") {
        return Ok(Box::new(dir::DirSink::new(path)?));
    }
    if url.starts_with("s3://") {
        return Ok(Box::new(s3::S3Sink::new(url, net)?));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Box::new(http::HttpSink::new(url, net)?));
    }
    Err(UploadError::Config(format!(
        "unknown sink {}: use s3://BUCKET/PREFIX?endpoint=URL&region=R, http(s)://URL or dir:PATH",
        redact_url(url)
    )))
}

/// A sink URL fit for messages: any `user:password@` and query string (a presigned
/// template's signature) replaced.
pub fn redact_url(url: &str) -> String {
    if url.starts_with("dir:") {
        return url.to_string();
    }
    http::redact_url(url.split('#').next().unwrap_or(url))
}

/// A stable short id for a sink URL, naming its upload marks in the spool.
pub fn sink_id(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..8])
}

/// How the upload loop behaves.
#[derive(Clone)]
pub struct UploaderConfig {
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Retry delays per sink.
    pub backoff: Backoff,
    /// Bandwidth cap shared by all uploads, bytes per second.
    pub max_bytes_per_sec: Option<u64>,
    /// How often an idle uploader looks for new segments (it is also woken by
    /// [`Uploader::notify`]).
    pub poll_interval: Duration,
    /// Where uploads and failures are logged (by default through `tracing`, target
    /// `camseal::upload`: uploads at info level, failures as warnings).
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Default for UploaderConfig {
    fn default() -> UploaderConfig {
        UploaderConfig {
            concurrency: 2,
            backoff: Backoff::default(),
            max_bytes_per_sec: None,
            poll_interval: Duration::from_millis(500),
            log: Arc::new(|line| {
                // The hook carries text only; of its lines, the successes start so.
                if line.starts_with("uploaded ") {
                    tracing::info!(target: "camseal::upload", "{line}");
                } else {
                    tracing::warn!(target: "camseal::upload", "{line}");
                }
            }),
        }
    }
}

/// Whether the loop runs until stopped or until the spool is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keep watching the spool until [`Uploader::stop`].
    Continuous,
    /// Upload everything pending, then return (`camseal upload --once`). Transient
    /// failures are retried; a permanent one ends the run with its error.
    Drain,
}

/// What a run of the loop did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Segments uploaded to every sink and removed from the spool.
    pub uploaded: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Failed attempts.
    pub failures: u64,
}

/// The upload loop over one spool and its sinks. Cheap to clone.
#[derive(Clone)]
pub struct Uploader {
    shared: Arc<Shared>,
}

impl Uploader {
    /// An uploader for `spool`; `sinks` are `(url, sink)` pairs (the URL names the sink's
    /// upload marks in the spool).
    pub fn new(
        spool: Spool,
        sinks: Vec<(String, Box<dyn Sink>)>,
        config: UploaderConfig,
    ) -> Uploader {
        let health = sinks.iter().map(|_| Health::default()).collect();
        let origin = Instant::now();
        let throttle = config.max_bytes_per_sec.map(|rate| {
            Mutex::new(TokenBucket::new(
                rate,
                rate.clamp(1, THROTTLE_CHUNK as u64 * 4),
                0,
            ))
        });
        Uploader {
            shared: Arc::new(Shared {
                spool,
                sinks: sinks
                    .into_iter()
                    .map(|(url, sink)| SinkSlot {
                        id: sink_id(&url),
                        sink,
                    })
                    .collect(),
                config,
                state: Mutex::new(LoopState {
                    in_flight: HashSet::new(),
                    health,
                    segment_health: HashMap::new(),
                    permanent: None,
                    report: UploadReport::default(),
                    done: false,
                }),
                wake: Condvar::new(),
                stop: AtomicBool::new(false),
                throttle,
                origin,
                heads: Mutex::default(),
            }),
        }
    }

    /// Runs the loop on `concurrency` threads until stopped (or, in [`Mode::Drain`], until
    /// the spool is empty). Returns the first permanent error in drain mode.
    pub fn run(&self, mode: Mode) -> Result<UploadReport, UploadError> {
        let workers = self.shared.config.concurrency.max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| worker(&self.shared, mode));
            }
        });
        let state = self.shared.lock();
        match (&state.permanent, mode) {
            (Some(e), Mode::Drain) => Err(UploadError::Permanent {
                sink: e.1.clone(),
                status: e.2,
                message: e.3.clone(),
            }),
            _ => Ok(state.report.clone()),
        }
    }

    /// Runs [`Mode::Continuous`] on background threads.
    pub fn spawn(&self) -> UploaderHandle {
        let me = self.clone();
        UploaderHandle {
            uploader: self.clone(),
            thread: Some(std::thread::spawn(move || me.run(Mode::Continuous))),
        }
    }

    /// Wakes idle workers (a segment was just closed).
    pub fn notify(&self) {
        self.shared.wake.notify_all();
    }

    /// Asks the loop to stop after the uploads in flight.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
    }

    /// Totals so far.
    pub fn report(&self) -> UploadReport {
        self.shared.lock().report.clone()
    }

    /// The last permanent failure, as `(sink, message)`, until that sink next succeeds.
    pub fn permanent_failure(&self) -> Option<(String, String)> {
        self.shared
            .lock()
            .permanent
            .as_ref()
            .map(|(_, s, _, m)| (s.clone(), m.clone()))
    }
}

/// A running background uploader.
pub struct UploaderHandle {
    uploader: Uploader,
    thread: Option<JoinHandle<Result<UploadReport, UploadError>>>,
}

impl UploaderHandle {
    /// The uploader (to [`notify`](Uploader::notify) it).
    pub fn uploader(&self) -> &Uploader {
        &self.uploader
    }

    /// Waits up to `grace` for the spool to empty, then stops the loop and returns its
    /// totals. What is not uploaded stays in the spool for the next run.
    pub fn finish(mut self, grace: Duration) -> UploadReport {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline
            && self.uploader.permanent_failure().is_none()
            && self
                .uploader
                .shared
                .spool
                .pending()
                .is_ok_and(|p| !p.is_empty())
        {
            self.uploader.notify();
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.uploader.permanent_failure().is_none() {
            // The last segment's head is written after the segment: send it too.
            sync_heads(&self.uploader.shared, true);
        }
        self.uploader.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.uploader.report()
    }
}

impl Drop for UploaderHandle {
    fn drop(&mut self) {
        self.uploader.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Errors of sinks and of the upload loop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// A sink URL or its credentials are unusable.
    #[error("{0}")]
    Config(String),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The server refused in a way a retry will not fix (4xx: credentials, permissions,
    /// missing bucket). The segments stay in the spool.
    #[error("{sink}: upload refused ({message}); segments are kept in the spool")]
    Permanent {
        /// The sink.
        sink: String,
        /// The HTTP status (0 for a transport-level refusal such as a TLS error).
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The server's answer could not be understood.
    #[error("{0}")]
    Protocol(String),
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A failure worth retrying: 5xx, S3 codes such as `RequestTimeout` and `SlowDown`,
    /// timeouts, refused or reset connections.
    #[error("{sink}: {message}")]
    Transient {
        /// The sink.
        sink: String,
        /// What happened.
        message: String,
        /// How long the server asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// Whether the server answered (then the failure concerns this request, and only
        /// this segment backs off); without an answer the whole sink is unreachable.
        answered: bool,
    },
    /// The server refused the request's time: the camera's clock is off by `offset` seconds
    /// (server minus camera). Retried with the corrected time; never a credential problem.
    #[error("{sink}: {message}")]
    ClockSkew {
        /// The sink.
        sink: String,
        /// What happened, naming the skew.
        message: String,
        /// Server time minus camera time, in seconds (0 if unknown).
        offset: i64,
    },
    /// An object already stored under the key holds other bytes, or the service did not
    /// confirm the checksum of what it stored. Nothing is overwritten; the segment stays in
    /// the spool.
    #[error(
        "{sink}: CONFLICT at {key}: {message}; nothing was overwritten and the segment is kept in the spool"
    )]
    Conflict {
        /// The sink.
        sink: String,
        /// The object key.
        key: String,
        /// What differs.
        message: String,
    },
    /// The sink cannot do this.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl UploadError {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            UploadError::Transient { .. } | UploadError::Io { .. } | UploadError::ClockSkew { .. }
        )
    }
}

struct Shared {
    spool: Spool,
    sinks: Vec<SinkSlot>,
    config: UploaderConfig,
    state: Mutex<LoopState>,
    wake: Condvar,
    stop: AtomicBool,
    throttle: Option<Mutex<TokenBucket>>,
    origin: Instant,
    /// The stream head bytes each sink last got, by (sink index, head file name). Held
    /// while heads are sent, so one thread sends them at a time.
    heads: Mutex<HashMap<(usize, String), Vec<u8>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, LoopState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, line: &str) {
        (self.config.log)(line);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

struct SinkSlot {
    id: String,
    sink: Box<dyn Sink>,
}

struct LoopState {
    in_flight: HashSet<PathBuf>,
    /// Per sink: refusals, and failures that concern the whole sink (no answer at all, or
    /// a `Retry-After`).
    health: Vec<Health>,
    /// Per (segment file, sink): the backoff of failures that concern that one request, so
    /// one bad segment does not hold back the others.
    segment_health: HashMap<(PathBuf, usize), Health>,
    /// (sink index, sink, status, message) of the last permanent failure; cleared by the
    /// next success on that sink.
    permanent: Option<(usize, String, u16, String)>,
    report: UploadReport,
    done: bool,
}

#[derive(Default)]
struct Health {
    failures: u32,
    retry_at: Option<Instant>,
    /// The last failure was a refusal (4xx) and nothing has succeeded since.
    refused: bool,
}

struct Job {
    segment: PendingSegment,
    sinks: Vec<usize>,
}

fn worker(shared: &Shared, mode: Mode) {
    loop {
        if shared.stopped() || shared.lock().done {
            return;
        }
        let pending = match shared.spool.pending() {
            Ok(p) => p,
            Err(e) => {
                shared.log(&format!("cannot list the spool: {e}"));
                idle(shared, None);
                continue;
            }
        };
        match claim(shared, &pending) {
            Claim::Job(job) => {
                process(shared, &job, mode);
                let mut state = shared.lock();
                state.in_flight.remove(&job.segment.path);
                drop(state);
                shared.wake.notify_all();
            }
            Claim::Wait(until) => idle(shared, until),
            Claim::Drained => {
                if mode == Mode::Drain {
                    sync_heads(shared, true);
                    shared.lock().done = true;
                    shared.wake.notify_all();
                    return;
                }
                sync_heads(shared, false);
                idle(shared, None);
            }
        }
    }
}

enum Claim {
    Job(Job),
    /// Work exists but every sink it needs is backing off (until then), or in flight.
    Wait(Option<Instant>),
    /// Nothing pending and nothing in flight.
    Drained,
}

fn claim(shared: &Shared, pending: &[PendingSegment]) -> Claim {
    let now = Instant::now();
    let mut state = shared.lock();
    let mut earliest: Option<Instant> = None;
    let mut waiting = !state.in_flight.is_empty();
    for segment in pending {
        if state.in_flight.contains(&segment.path) {
            continue;
        }
        let mut ready = Vec::new();
        for (i, slot) in shared.sinks.iter().enumerate() {
            if shared.sinks.len() > 1 && shared.spool.is_acked(segment, &slot.id) {
                continue;
            }
            waiting = true;
            let sink_at = state.health[i].retry_at;
            let segment_at = state
                .segment_health
                .get(&(segment.path.clone(), i))
                .and_then(|h| h.retry_at);
            match sink_at.max(segment_at) {
                Some(t) if t > now => earliest = Some(earliest.map_or(t, |e| e.min(t))),
                _ => ready.push(i),
            }
        }
        if !ready.is_empty() {
            state.in_flight.insert(segment.path.clone());
            return Claim::Job(Job {
                segment: segment.clone(),
                sinks: ready,
            });
        }
        if shared.sinks.len() > 1 && !waiting {
            // Every sink has it (a run ended between the last upload and the removal).
            let _ = shared.spool.remove(segment);
        }
    }
    if waiting || !pending.is_empty() {
        Claim::Wait(earliest)
    } else {
        Claim::Drained
    }
}

fn idle(shared: &Shared, until: Option<Instant>) {
    let poll = shared.config.poll_interval;
    let wait = until.map_or(poll, |t| {
        t.saturating_duration_since(Instant::now()).min(poll)
    });
    let state = shared.lock();
    if shared.stopped() || state.done {
        return;
    }
    let _ = shared
        .wake
        .wait_timeout(state, wait.max(Duration::from_millis(1)));
}

fn process(shared: &Shared, job: &Job, mode: Mode) {
    let segment = &job.segment;
    let mut all_ok = true;
    let open = || match std::fs::File::open(&segment.path) {
        Ok(f) => Some(f),
        // Dropped by the quota or removed by another uploader meanwhile.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            forget(shared, segment);
            None
        }
        Err(e) => {
            shared.log(&format!("cannot read {}: {e}", segment.path.display()));
            None
        }
    };
    // The digests come from the spool file itself, before anything is sent: the service
    // checks the body against them and reports them back.
    let Some(mut file) = open() else { return };
    let digest = match BodyDigest::read(&mut file) {
        Ok(d) => d,
        Err(e) => {
            shared.log(&format!("cannot read {}: {e}", segment.path.display()));
            return;
        }
    };
    drop(file);
    for &i in &job.sinks {
        let slot = &shared.sinks[i];
        let Some(file) = open() else { return };
        let mut body = Throttled {
            inner: file,
            shared,
        };
        let started = Instant::now();
        let result = slot
            .sink
            .put(&segment.id, &mut body, segment.bytes, &digest);
        for notice in slot.sink.take_notices() {
            shared.log(&notice);
        }
        match result {
            Ok(()) => {
                {
                    let mut state = shared.lock();
                    state.health[i] = Health::default();
                    state.segment_health.remove(&(segment.path.clone(), i));
                    // A refusal is remembered only until the sink works again.
                    if state.permanent.as_ref().is_some_and(|p| p.0 == i) {
                        state.permanent = None;
                    }
                }
                if shared.sinks.len() > 1
                    && let Err(e) = shared.spool.ack(segment, &slot.id)
                {
                    shared.log(&format!("cannot mark {}: {e}", segment.path.display()));
                }
                shared.log(&format!(
                    "uploaded {}{} ({} bytes, {:.2} s) to {}",
                    segment.id,
                    if segment.incomplete {
                        " [INCOMPLETE: crash tail]"
                    } else {
                        ""
                    },
                    segment.bytes,
                    started.elapsed().as_secs_f64(),
                    slot.sink.name()
                ));
            }
            Err(e) => {
                all_ok = false;
                failed(shared, i, segment, &e, mode);
            }
        }
    }
    if !all_ok {
        return;
    }
    let done_everywhere = shared.sinks.len() == 1
        || shared
            .sinks
            .iter()
            .all(|s| shared.spool.is_acked(segment, &s.id));
    if done_everywhere {
        match shared.spool.remove(segment) {
            Ok(()) => {
                forget(shared, segment);
                {
                    let mut state = shared.lock();
                    state.report.uploaded += 1;
                    state.report.bytes += segment.bytes;
                }
                sync_heads(shared, true);
            }
            Err(e) => shared.log(&format!("cannot remove {}: {e}", segment.path.display())),
        }
    }
}

/// Drops the per-segment backoff of a segment that left the spool.
fn forget(shared: &Shared, segment: &PendingSegment) {
    shared
        .lock()
        .segment_health
        .retain(|(path, _), _| *path != segment.path);
}

/// Sends each stream head in the spool (`<camera id>-s<stream>.head`) to every sink that
/// does not have these bytes yet, once no segment of its stream up to the one it names is
/// still waiting: a sink never holds a head naming a segment it does not have (unless the
/// quota dropped that segment, which the next header declares). A head that does not parse
/// or verify is not sent. A failed send is retried on the next call (after the next
/// segment, or when the uploader is idle). With `wait`, waits for another thread's round;
/// without, leaves the work to it.
fn sync_heads(shared: &Shared, wait: bool) {
    let mut sent = if wait {
        shared.heads.lock().unwrap_or_else(|p| p.into_inner())
    } else {
        match shared.heads.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        }
    };
    let dir = shared.spool.dir();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let heads: Vec<(String, String, u32)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let (camera, stream) = head::parse_file_name(&name)?;
            Some((name, camera, stream))
        })
        .collect();
    if heads.is_empty() {
        return;
    }
    let Ok(pending) = shared.spool.pending() else {
        return;
    };
    for (name, camera, stream) in heads {
        let Ok(bytes) = std::fs::read(dir.join(&name)) else {
            continue;
        };
        let due: Vec<usize> = (0..shared.sinks.len())
            .filter(|&i| sent.get(&(i, name.clone())) != Some(&bytes))
            .collect();
        if due.is_empty() || sent.get(&(usize::MAX, name.clone())) == Some(&bytes) {
            continue;
        }
        let head = match StreamHead::parse(&bytes).and_then(|h| h.verify().map(|()| h)) {
            Ok(h) if h.camera_id() == camera && h.stream_id == stream => h,
            Ok(_) => {
                shared.log(&format!(
                    "{name}: the stream head names another stream; not sent"
                ));
                sent.insert((usize::MAX, name), bytes);
                continue;
            }
            Err(e) => {
                shared.log(&format!("{name}: not a valid stream head ({e}); not sent"));
                sent.insert((usize::MAX, name), bytes);
                continue;
            }
        };
        let waiting = pending
            .iter()
            .any(|p| p.id.camera_id == camera && p.id.stream == stream && p.id.seq <= head.seq);
        if waiting {
            continue;
        }
        let now = Instant::now();
        for i in due {
            if shared.lock().health[i].retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let sink = &shared.sinks[i].sink;
            match sink.put_head(&camera, stream, &bytes) {
                Ok(()) => {
                    shared.log(&format!(
                        "uploaded the stream head of {camera} stream {stream} (seq {}) to {}",
                        head.seq,
                        sink.name()
                    ));
                    sent.insert((i, name.clone()), bytes.clone());
                }
                // Never retried: this sink keeps segments only.
                Err(UploadError::Unsupported(_)) => {
                    sent.insert((i, name.clone()), bytes.clone());
                }
                Err(e) => shared.log(&format!(
                    "cannot upload the stream head of {camera} stream {stream}: {e}; retrying later"
                )),
            }
        }
    }
}

fn failed(shared: &Shared, i: usize, segment: &PendingSegment, e: &UploadError, mode: Mode) {
    let mut state = shared.lock();
    // A server that refuses a PUT often answers before it has read the body and closes the
    // connection, so the uploads still in flight end in a broken pipe. That fallout must not
    // replace the refusal as the error the status shows.
    let fallout_of_refusal = !e.is_permanent() && state.health[i].refused;
    let _ = if fallout_of_refusal {
        shared.spool.count_failure()
    } else {
        shared.spool.note_failure(&e.to_string())
    };
    state.report.failures += 1;
    let backoff = shared.config.backoff;
    if e.is_permanent() {
        let health = &mut state.health[i];
        health.failures = health.failures.saturating_add(1);
        health.refused = true;
        health.retry_at = Some(Instant::now() + backoff.max);
        let (sink, status, message) = match e {
            UploadError::Permanent {
                sink,
                status,
                message,
            } => (sink.clone(), *status, message.clone()),
            other => (shared.sinks[i].sink.name(), 0, other.to_string()),
        };
        state.permanent = Some((i, sink, status, message));
        drop(state);
        shared.log(&format!(
            "PERMANENT FAILURE uploading {}: {e}. Segments are KEPT in the spool {}; fix the sink or its credentials{}",
            segment.id,
            shared.spool.dir().display(),
            match mode {
                Mode::Drain => ".",
                Mode::Continuous => ", retrying slowly meanwhile.",
            }
        ));
        if mode == Mode::Drain {
            shared.stop.store(true, Ordering::SeqCst);
            shared.wake.notify_all();
        }
    } else {
        let now = Instant::now();
        let (retry_after, answered) = match e {
            UploadError::Transient {
                retry_after,
                answered,
                ..
            } => (*retry_after, *answered),
            UploadError::ClockSkew { .. } => (None, true),
            _ => (None, false),
        };
        let segment_health = state
            .segment_health
            .entry((segment.path.clone(), i))
            .or_default();
        segment_health.failures = segment_health.failures.saturating_add(1);
        let attempt = segment_health.failures;
        let mut delay = backoff.delay(attempt, random_u64());
        if let Some(wait) = retry_after {
            delay = delay.max(wait);
        }
        segment_health.retry_at = Some(now + delay);
        let sink_health = &mut state.health[i];
        if let Some(wait) = retry_after {
            // The server asked every request to wait (SlowDown, 503 with Retry-After).
            let until = now + wait;
            sink_health.retry_at = Some(sink_health.retry_at.map_or(until, |t| t.max(until)));
        } else if !answered {
            // No answer at all: the server or the uplink is down for every segment.
            sink_health.failures = sink_health.failures.saturating_add(1);
            let sink_delay = backoff.delay(sink_health.failures, random_u64());
            sink_health.retry_at = Some(now + sink_delay);
        }
        drop(state);
        shared.log(&format!(
            "upload of {} failed (attempt {attempt}): {e}; retrying in {:.2} s",
            segment.id,
            delay.as_secs_f64()
        ));
    }
}

/// Reads a segment file for upload, in slices paced by the shared bandwidth cap.
struct Throttled<'a> {
    inner: std::fs::File,
    shared: &'a Shared,
}

impl Read for Throttled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(bucket) = &self.shared.throttle else {
            return self.inner.read(buf);
        };
        let cap = buf.len().min(THROTTLE_CHUNK);
        let n = self.inner.read(&mut buf[..cap])?;
        let now = self
            .shared
            .origin
            .elapsed()
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64;
        let wait = bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(now, n as u64);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        Ok(n)
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Jitter only spreads retries; if the OS RNG fails, the full ceiling is used.
    if getrandom::fill(&mut b).is_err() {
        return u64::MAX;
    }
    u64::from_le_bytes(b)
}

const THROTTLE_CHUNK: usize = 16 * 1024;
