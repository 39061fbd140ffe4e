//! A sealing session for applications that embed camseal and push access units themselves:
//! the C ABI (`camseal-capi`) and media-framework elements are thin shells over it.
//!
//! `camseal run` pulls packets from an [`Encoder`](camseal_hal::Encoder); an embedder
//! already has them (from its own encoder, or as buffers flowing through its media
//! pipeline) and pushes them. A [`Session`] sets up what `run` sets up around the engine,
//! with the same rules: the stream lock of the camera home (one recorder per stream), the
//! trusted recipient list, crash recovery of the output directory or spool, the uploader,
//! and the spool's quota (frames refused by a full spool become a signed gap).
//!
//! Zero copy: the embedder wraps its buffer in a [`Packet::lent`] lease, which the engine
//! reads in place and drops (giving the buffer back) once the packet's last chunk is sealed.
//! [`Session::copy_meter`] counts every video byte copied in user space on the way, by the
//! stream or by the caller (a packet that owns its bytes was copied by whoever made it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camseal_hal::Packet;

use crate::engine::{
    CopyMeter, DirSink, Engine, EngineConfig, EngineError, Overload, Pushed, SegmentSink, Stream,
    StreamConfig, StreamEvent, StreamStats, WallClock,
};
use crate::fsutil::{FileLock, LockError, try_lock};
use crate::home::{CameraHome, HomeError};
use crate::nal::Codec;
use crate::recorder::{ChainState, PTS_HZ, RecorderError, SegmentPolicy};
use crate::seal::SframeSuite;
use crate::segment::padding::Padding;
use crate::segment::write::{CheckpointPolicy, Randomness};
use crate::segment::{CloseReason, Gap};
use crate::spool::{Spool, SpoolConfig, SpoolError, SpoolSink};
use crate::upload::{NetConfig, UploadError, Uploader, UploaderConfig, UploaderHandle};

/// What a [`Session`] records, and where to.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The camera home (`camseal camera init`): its key and trusted recipient list.
    pub home: PathBuf,
    /// The codec of the access units that will be pushed.
    pub codec: Codec,
    /// Stream number within the camera.
    pub stream_id: u32,
    /// Target segment length: a segment closes at the first keyframe after it.
    pub segment_length: Duration,
    /// Seal worker threads (1 ..= 256).
    pub workers: usize,
    /// Write segments straight into this directory (with a spool, they are also copied
    /// there by the uploader, as `camseal run --spool S --out D` does).
    pub out: Option<PathBuf>,
    /// Spool directory; `HOME/spool` when `sinks` is not empty and this is `None`.
    pub spool: Option<PathBuf>,
    /// Upload URLs (`s3://…`, `http(s)://…`, `dir:…`), served from the spool.
    pub sinks: Vec<String>,
    /// Duration of one frame in 90 kHz ticks (where the last frame of a segment ends).
    pub frame_ticks: u64,
    /// What a push does when every record buffer is busy.
    pub overload: Overload,
    /// How long [`Session::close`] waits for pending uploads.
    pub upload_grace: Duration,
}

impl SessionConfig {
    /// Records `codec` with `home`'s camera: 4 s segments, one worker per core, 30 frames a
    /// second, no output chosen yet (set `out`, `spool` or `sinks`).
    pub fn new(home: impl Into<PathBuf>, codec: Codec) -> SessionConfig {
        SessionConfig {
            home: home.into(),
            codec,
            stream_id: 0,
            segment_length: Duration::from_secs(4),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            out: None,
            spool: None,
            sinks: Vec::new(),
            frame_ticks: PTS_HZ / 30,
            overload: Overload::Block,
            upload_grace: Duration::from_secs(10),
        }
    }
}

/// Why a session could not open or record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A setting is out of range or missing.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The engine failed (sealing, writing or publishing a segment).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The camera home is missing or unreadable.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// Another recorder holds the stream.
    #[error("the stream is already being recorded (one recorder per stream): {0}")]
    Locked(#[from] LockError),
    /// The camera trusts no recipient it can wrap keys to.
    #[error("{0}")]
    NoRecipients(String),
    /// The output directory could not be prepared.
    #[error("{}: {source}", path.display())]
    Output {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The chain state could not be read or stored.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// An upload sink could not be set up.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// One recording of one camera stream, fed access unit by access unit. See the
/// [module docs](self).
///
/// Used from one thread at a time (it is `Send`, not `Sync`).
pub struct Session {
    // Field order is drop order: the stream before the engine, the lock last.
    stream: Stream,
    engine: Engine,
    uploading: Option<UploaderHandle>,
    spool: Option<Spool>,
    meter: CopyMeter,
    stream_id: u32,
    upload_grace: Duration,
    /// Frames refused by a full spool: (frames, first pts, last pts).
    refused: Option<(u64, u64, u64)>,
    _lock: FileLock,
}

/// What a closed session recorded.
#[derive(Debug)]
pub struct SessionSummary {
    /// Totals of the stream.
    pub stats: StreamStats,
    /// Events not yet taken (the last segment's publication among them).
    pub events: Vec<StreamEvent>,
    /// A sink that refused uploads for good, and its message; the segments stay in the
    /// spool.
    pub upload_failure: Option<(String, String)>,
}

impl Session {
    /// Opens the camera home, recovers what a crash left in the output, and starts the
    /// engine (and the uploader, with sinks).
    pub fn open(config: SessionConfig) -> Result<Session, SessionError> {
        let bad = |m: &str| Err(SessionError::Config(m.to_owned()));
        if config.segment_length.is_zero() {
            return bad("the segment length must be positive");
        }
        if config.workers == 0 || config.workers > MAX_WORKERS {
            return bad("workers must be between 1 and 256");
        }
        if config.frame_ticks == 0 {
            return bad("the frame duration must be positive");
        }
        let spool_dir = config
            .spool
            .clone()
            .or_else(|| (!config.sinks.is_empty()).then(|| config.home.join("spool")));
        if spool_dir.is_none() && config.out.is_none() {
            return bad("give an output directory, a spool or a sink");
        }
        let home = CameraHome::open(&config.home)?;
        let camera = home.camera()?;
        let streams = config.home.join("streams");
        std::fs::create_dir_all(&streams).map_err(|source| SessionError::Output {
            path: streams.clone(),
            source,
        })?;
        // The lock `camseal run` takes: a second recorder would reserve the same sequence
        // numbers and recover (truncate) the first one's open segment as a crash's.
        let lock = try_lock(&streams.join(format!("{}.lock", config.stream_id)))?;
        let list = home.trusted_recipients()?.ok_or_else(|| {
            SessionError::NoRecipients(format!(
                "no trusted recipients in {}: install a signed list with `camseal camera trust`",
                config.home.display()
            ))
        })?;
        // A recipient of a newer key type cannot watch; the list may still carry it.
        let (recipients, _unwrappable) = list.wrappable();
        if recipients.is_empty() {
            return Err(SessionError::NoRecipients(
                "no recipient on the trusted list has a key type this camera supports".into(),
            ));
        }
        let chain_path = streams.join(format!("{}.chain", config.stream_id));
        let camera_key = camera.public().ed25519;
        let mut uploading = None;
        let mut spool = None;
        let sink: Box<dyn SegmentSink> = match (&spool_dir, &config.out) {
            (Some(dir), out) => {
                let s = Spool::open(dir, SpoolConfig::default())?;
                let mut chain = ChainState::load(&chain_path)?;
                if s.recover(&camera_key, config.stream_id, &mut chain)?
                    .chain_changed
                {
                    chain.store(&chain_path)?;
                }
                let mut urls = config.sinks.clone();
                if let Some(out) = out {
                    urls.push(format!("dir:{}", out.display()));
                }
                let mut opened = Vec::new();
                for url in &urls {
                    opened.push((
                        url.clone(),
                        crate::upload::open_sink(url, &NetConfig::default())?,
                    ));
                }
                let notify: Option<Arc<dyn Fn() + Send + Sync>> = if opened.is_empty() {
                    None
                } else {
                    let uploader = Uploader::new(s.clone(), opened, UploaderConfig::default());
                    uploading = Some(uploader.spawn());
                    Some(Arc::new(move || uploader.notify()))
                };
                spool = Some(s.clone());
                Box::new(SpoolSink::new(s, notify))
            }
            (None, Some(out)) => {
                let output = |source| SessionError::Output {
                    path: out.clone(),
                    source,
                };
                let mut sink = DirSink::new(out).map_err(output)?;
                let mut chain = ChainState::load(&chain_path)?;
                if sink
                    .recover(&camera_key, config.stream_id, &mut chain)
                    .map_err(output)?
                    .chain_changed
                {
                    chain.store(&chain_path)?;
                }
                Box::new(sink)
            }
            (None, None) => return bad("give an output directory, a spool or a sink"),
        };
        let engine = Engine::new(EngineConfig::new(config.workers))?;
        let stream = engine.open_stream(
            StreamConfig {
                camera: camera.signing_key(),
                recipients,
                suite: SframeSuite::Aes128GcmSha256,
                codec: config.codec,
                stream_id: config.stream_id,
                policy: SegmentPolicy::with_target(config.segment_length),
                frame_ticks: config.frame_ticks,
                chain_path: Some(chain_path),
                randomness: Randomness::Os,
                wallclock: WallClock::System,
                overload: config.overload,
                checkpoints: CheckpointPolicy::default(),
                padding: Padding::default(),
            },
            sink,
        )?;
        let meter = stream.copy_meter();
        Ok(Session {
            stream,
            engine,
            uploading,
            spool,
            meter,
            stream_id: config.stream_id,
            upload_grace: config.upload_grace,
            refused: None,
            _lock: lock,
        })
    }

    /// Seals one access unit (Annex-B, one picture with the parameter sets and SEI that go
    /// with it). Its `pts` must increase from push to push; `keyframe` marks an IDR / IRAP
    /// picture. The packet is dropped, and its lease released, when it is sealed, or at
    /// once if it is not (held, dropped or skipped: see [`Pushed`]).
    ///
    /// While a full spool (quota policy `stop-recording`) refuses segments, frames are not
    /// recorded; recording resumes at a keyframe once there is room, and the frames missed
    /// are declared, signed, in the next header.
    pub fn push(&mut self, packet: Packet) -> Result<Pushed, SessionError> {
        let dequeued = Instant::now();
        if packet.source_copied() {
            self.meter.add(packet.len());
        }
        if let (Some((frames, from, _)), Some(spool)) = (self.refused, &self.spool) {
            if packet.keyframe && spool.has_room()? {
                spool.queue_gap(
                    self.stream.camera_id(),
                    self.stream_id,
                    Gap::spool_quota(frames, from, packet.pts),
                )?;
                self.refused = None;
            } else {
                self.refused = Some((frames + 1, from, packet.pts));
                return Ok(Pushed::Dropped);
            }
        }
        let pts = packet.pts;
        match self.stream.push(packet, dequeued) {
            Err(e) if crate::spool::is_full(&e) => {
                self.refused = Some((1, pts, pts));
                Ok(Pushed::Dropped)
            }
            other => Ok(other?),
        }
    }

    /// Segments published and frames dropped since the last call.
    pub fn take_events(&mut self) -> Vec<StreamEvent> {
        self.stream.take_events()
    }

    /// Video bytes copied in user space so far (see the [module docs](self)).
    pub fn copy_meter(&self) -> CopyMeter {
        self.meter.clone()
    }

    /// The camera id segment names start with.
    pub fn camera_id(&self) -> &str {
        self.stream.camera_id()
    }

    /// Seals the open segment, waits until every segment is published, stops the engine,
    /// and gives the uploader up to the configured grace to send what is pending.
    pub fn close(self) -> Result<SessionSummary, SessionError> {
        let Session {
            mut stream,
            engine,
            uploading,
            spool,
            refused,
            stream_id,
            upload_grace,
            _lock,
            ..
        } = self;
        if let (Some((frames, from, to)), Some(spool)) = (refused, &spool) {
            spool.queue_gap(
                stream.camera_id(),
                stream_id,
                Gap::spool_quota(frames, from, to),
            )?;
        }
        stream.flush(CloseReason::EndOfStream)?;
        let events = stream.take_events();
        let stats = stream.finish(CloseReason::EndOfStream)?;
        engine.shutdown();
        let upload_failure = uploading.and_then(|handle| {
            let uploader = handle.uploader().clone();
            handle.finish(upload_grace);
            uploader.permanent_failure()
        });
        Ok(SessionSummary {
            stats,
            events,
            upload_failure,
        })
    }
}

const MAX_WORKERS: usize = 256;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use camseal_hal::LentMemory;

    use super::*;
    use crate::keys::RecipientList;
    use crate::keys::{AccountSecret, CameraSecret, KEM_X25519_HKDF_SHA256, Recipient};

    /// A camera home that trusts one account; returns the account.
    pub(crate) fn camera_home(dir: &std::path::Path) -> AccountSecret {
        let home = CameraHome::create(dir).unwrap();
        home.write_camera(&CameraSecret::from_seed([3; 32]))
            .unwrap();
        let account = AccountSecret::from_seed([4; 32]);
        let list = RecipientList {
            version: 1,
            account: account.public().ed25519,
            recipients: vec![Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: account.public().x25519.to_vec(),
                label: "account".into(),
            }],
        };
        home.trust(&list.sign(&account).unwrap()).unwrap();
        account
    }

    struct Borrowed(&'static [u8], Arc<AtomicUsize>);
    impl LentMemory for Borrowed {
        fn bytes(&self) -> &[u8] {
            self.0
        }
    }
    impl Drop for Borrowed {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn frame(keyframe: bool) -> &'static [u8] {
        let mut au = if keyframe {
            vec![
                0, 0, 0, 1, 0x67, 0x42, 0, 0x1e, 0, 0, 0, 1, 0x68, 0xce, 0x38, 0x80,
            ]
        } else {
            Vec::new()
        };
        au.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }, 0x88]);
        au.extend(std::iter::repeat_n(0x5a, 3000));
        Vec::leak(au)
    }

    #[test]
    fn lent_packets_are_sealed_in_place_and_each_released_once() {
        let t = tempfile::tempdir().unwrap();
        camera_home(&t.path().join("home"));
        let mut config = SessionConfig::new(t.path().join("home"), Codec::H264);
        config.out = Some(t.path().join("out"));
        config.segment_length = Duration::from_secs(1);
        config.workers = 2;
        let mut session = Session::open(config).unwrap();
        let released = Arc::new(AtomicUsize::new(0));
        let (key, delta) = (frame(true), frame(false));
        for i in 0..100u64 {
            let data = if i % 25 == 0 { key } else { delta };
            let memory = Borrowed(data, Arc::clone(&released));
            let packet = Packet::lent(Codec::H264, i * 3600, i % 25 == 0, Box::new(memory));
            assert_eq!(session.push(packet).unwrap(), Pushed::Queued);
        }
        let meter = session.copy_meter();
        let summary = session.close().unwrap();
        assert_eq!(released.load(Ordering::SeqCst), 100);
        assert_eq!(summary.stats.frames, 100);
        assert_eq!(summary.stats.segments, 4);
        assert_eq!(meter.bytes(), 0);
        let written = std::fs::read_dir(t.path().join("out")).unwrap().count();
        assert_eq!(written, 4 + 1, "four segments and the stream head");
    }

    #[test]
    fn the_meter_counts_owned_packets_and_rebuilt_pictures() {
        let t = tempfile::tempdir().unwrap();
        camera_home(&t.path().join("home"));
        let mut config = SessionConfig::new(t.path().join("home"), Codec::H264);
        config.out = Some(t.path().join("out"));
        let mut session = Session::open(config).unwrap();
        let key = frame(true);
        session
            .push(Packet::from_vec(Codec::H264, 0, true, key.to_vec()))
            .unwrap();
        assert_eq!(session.copy_meter().bytes(), key.len() as u64);
        // Parameter sets alone are held, then copied in front of the next picture.
        let sets = &key[..16];
        let released = Arc::new(AtomicUsize::new(0));
        let held = Packet::lent(
            Codec::H264,
            3000,
            false,
            Box::new(Borrowed(sets, released.clone())),
        );
        assert_eq!(session.push(held).unwrap(), Pushed::Held);
        assert_eq!(
            released.load(Ordering::SeqCst),
            1,
            "a held packet is released at once"
        );
        let delta = frame(false);
        let next = Packet::lent(
            Codec::H264,
            6000,
            false,
            Box::new(Borrowed(delta, released)),
        );
        session.push(next).unwrap();
        assert_eq!(
            session.copy_meter().bytes(),
            (key.len() + sets.len() + delta.len()) as u64
        );
        session.close().unwrap();
    }

    #[test]
    fn a_second_session_on_the_stream_is_refused_and_bad_settings_are_errors() {
        let t = tempfile::tempdir().unwrap();
        camera_home(&t.path().join("home"));
        let mut config = SessionConfig::new(t.path().join("home"), Codec::H264);
        config.out = Some(t.path().join("out"));
        let first = Session::open(config.clone()).unwrap();
        assert!(matches!(
            Session::open(config.clone()),
            Err(SessionError::Locked(_))
        ));
        first.close().unwrap();
        Session::open(config.clone()).unwrap().close().unwrap();

        let mut no_out = config.clone();
        no_out.out = None;
        assert!(matches!(
            Session::open(no_out),
            Err(SessionError::Config(_))
        ));
        let mut no_workers = config.clone();
        no_workers.workers = 0;
        assert!(matches!(
            Session::open(no_workers),
            Err(SessionError::Config(_))
        ));
        let mut missing = config;
        missing.home = t.path().join("nowhere");
        assert!(matches!(Session::open(missing), Err(SessionError::Home(_))));
    }
}
