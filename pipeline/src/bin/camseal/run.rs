//! `camseal run`: seal a source into segment files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use camseal::engine::{
    DirSink, Engine, EngineConfig, SegmentSink, StreamConfig, StreamEvent, StreamStats, WallClock,
};
use camseal::fsutil::{FileLock, try_lock};
use camseal::home::CameraHome;
use camseal::nal::Codec;
use camseal::recorder::{ChainState, SegmentPolicy};
use camseal::seal::SframeSuite;
use camseal::segment::write::{CheckpointPolicy, Randomness};
use camseal::segment::{CloseReason, Gap, GapReason};
use camseal::spool::{QuotaPolicy, Spool, SpoolConfig, SpoolSink};
use camseal_hal::pipe::{PipeOptions, PipeSource};
use camseal_hal::replay::{FileOptions, FileSource};
use camseal_hal::soft::{SoftConfig, SoftSource, parse_soft_spec};
use camseal_hal::{Encoder, FrameRate, PTS_HZ};

use crate::cli::RunArgs;
use crate::error::Usage;

/// What a finished recording amounts to.
pub struct RunSummary {
    pub stats: StreamStats,
    /// Time spent recording and sealing, not counting the wait for uploads after it.
    pub elapsed: Duration,
    /// Where the segments are now, in words: the spool, the sinks they were uploaded to,
    /// or the `--out` folder.
    pub place: String,
    pub interrupted: bool,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let summary = record(&args, &stop, true, &mut |_| {})?;
    print_summary(&summary);
    Ok(ExitCode::SUCCESS)
}

/// Seals `args.source` into `args.out` until the source ends or `stop` is set.
///
/// `inspect` sees every access unit as it is sealed (the demo hashes the input with it).
pub fn record(
    args: &RunArgs,
    stop: &AtomicBool,
    progress: bool,
    inspect: &mut dyn FnMut(&[u8]),
) -> Result<RunSummary> {
    if !(args.segment_seconds.is_finite() && args.segment_seconds > 0.0) {
        bail!("--segment-seconds must be a positive number of seconds");
    }
    if args.max_chunk == 0 || args.max_chunk > camseal::segment::MAX_RECORD_PLAINTEXT {
        bail!("--max-chunk must be between 1 and 16777216 bytes");
    }
    let duration = match args.duration {
        Some(d) if !(d.is_finite() && d > 0.0) => {
            bail!("--duration must be a positive number of seconds")
        }
        Some(d) => Some(Duration::from_secs_f64(d)),
        None => None,
    };
    // A spool when asked for one, or implied by --sink; otherwise --out writes directly.
    let spool_dir = args
        .spool
        .clone()
        .or_else(|| (!args.sink.is_empty()).then(|| args.home.join("spool")));
    if spool_dir.is_none() && args.out.is_none() {
        bail!(Usage(
            "give --out DIR, or --sink URL (with --spool DIR, default HOME/spool)".to_owned()
        ));
    }
    let policy: QuotaPolicy = args.spool_policy.parse().map_err(|e: String| anyhow!(e))?;
    let overload = args.overload;
    if spool_dir.is_none() && args.spool_max_bytes.is_some() {
        bail!(Usage(
            "--spool-max-bytes needs --spool or --sink".to_owned()
        ));
    }
    if !(args.upload_grace.is_finite() && args.upload_grace >= 0.0) {
        bail!("--upload-grace must be a number of seconds");
    }
    let suite: SframeSuite = args.suite.parse()?;
    let home = CameraHome::open(&args.home)?;
    let camera = home.camera()?;
    // One recorder per stream: a second one would reserve the same sequence numbers from the
    // chain state and recover (truncate) the first one's open segment as a crash's.
    let _stream_lock = lock_stream(&args.home, args.stream, &camera.public().id())?;
    let list = home.trusted_recipients()?.ok_or_else(|| {
        anyhow!(
            "no trusted recipients in {}: install a signed list with `camseal camera trust --home {} LIST_FILE`",
            args.home.display(),
            args.home.display()
        )
    })?;
    let mut source = open_source(args, duration)?;
    let frame_rate = source.frame_rate();
    tracing::debug!(
        camera = %camera.public().id(),
        stream = args.stream,
        source = %args.source,
        "recording starts"
    );
    let (recipients, unwrappable) = list.wrappable();
    for r in unwrappable {
        eprintln!(
            "warning: recipient {:?} uses key type 0x{:04x}, which this camera cannot wrap to; it will NOT be able to watch",
            r.label, r.kem
        );
    }
    if recipients.is_empty() {
        bail!("no recipient on the trusted list has a key type this camera supports");
    }
    let workers = match args.workers {
        Some(0) => bail!("--workers must be at least 1"),
        Some(w) => w,
        None => default_workers(),
    };
    let mut engine_config = EngineConfig::new(workers);
    engine_config.max_chunk = args.max_chunk;
    let engine = Engine::new(engine_config)?;
    let config = StreamConfig {
        camera: camera.signing_key(),
        recipients,
        suite,
        codec: source.codec(),
        stream_id: args.stream,
        policy: SegmentPolicy::with_target(Duration::from_secs_f64(args.segment_seconds)),
        frame_ticks: frame_rate.pts(1).max(1),
        chain_path: Some(
            args.home
                .join("streams")
                .join(format!("{}.chain", args.stream)),
        ),
        randomness: Randomness::Os,
        wallclock: WallClock::System,
        overload,
        checkpoints: CheckpointPolicy::every_ms(args.checkpoint_ms),
        padding: args.padding,
    };
    let chain_path = args
        .home
        .join("streams")
        .join(format!("{}.chain", args.stream));
    let mut uploading = None;
    let mut spool = None;
    let (sink, out_dir): (Box<dyn SegmentSink>, PathBuf) = match (&spool_dir, &args.out) {
        (Some(dir), out) => {
            let s = Spool::open(
                dir,
                SpoolConfig {
                    max_bytes: args.spool_max_bytes,
                    policy,
                    ..SpoolConfig::default()
                },
            )
            .with_context(|| format!("cannot open the spool {}", dir.display()))?;
            // Before the engine reserves a sequence number: finish or salvage what a crash
            // left open, and queue the crash gap for the first header.
            let mut chain = ChainState::load(&chain_path)?;
            let recovery = s.recover(&camera.public().ed25519, args.stream, &mut chain)?;
            if recovery.chain_changed {
                chain.store(&chain_path)?;
            }
            let mut sinks = args.sink.clone();
            if let Some(out) = out {
                sinks.push(format!("dir:{}", out.display()));
            }
            let notify: Option<Arc<dyn Fn() + Send + Sync>> = if sinks.is_empty() {
                None
            } else {
                let uploader = crate::upload::make_uploader(&s, &sinks, &args.upload)?;
                let handle = uploader.spawn();
                uploading = Some(handle);
                Some(Arc::new(move || uploader.notify()))
            };
            spool = Some(s.clone());
            (Box::new(SpoolSink::new(s, notify)), dir.clone())
        }
        (None, Some(out)) => {
            let mut sink = DirSink::new(out)
                .with_context(|| format!("cannot record into {}", out.display()))?;
            // As the spool does: finish or salvage what a crash left open, and declare the
            // crash (signed) in the first header.
            let mut chain = ChainState::load(&chain_path)?;
            let recovery = sink
                .recover(&camera.public().ed25519, args.stream, &mut chain)
                .with_context(|| format!("cannot recover {} after a crash", out.display()))?;
            if recovery.chain_changed {
                chain.store(&chain_path)?;
            }
            for path in &recovery.salvaged {
                eprintln!(
                    "{} was cut short by a crash: kept its valid prefix; the next segment declares the crash",
                    path.display()
                );
            }
            (Box::new(sink), out.clone())
        }
        (None, None) => bail!("nowhere to record"),
    };
    // Listening before the first segment opens, so a viewer that connects at once gets it.
    let (sink, _live) = match args.live.as_deref() {
        Some(addr) => {
            let hub = camseal::live::LiveHub::new();
            let server =
                crate::live::LiveServer::start(crate::live::parse_addr(addr)?, hub.clone())?;
            eprintln!("live view: ws://{}", server.addr());
            let sink: Box<dyn SegmentSink> = Box::new(camseal::live::LiveSink::new(sink, hub));
            (sink, Some(server))
        }
        None => (sink, None),
    };
    let mut stream = engine
        .open_stream(config, sink)
        .with_context(|| format!("cannot record into {}", out_dir.display()))?;
    let control_url = match args.control.as_deref() {
        Some("none") => None,
        Some(url) => Some(url),
        None => args.sink.first().map(String::as_str),
    };
    let poller = match control_url {
        Some(url) => Some(crate::control::Poller::start(
            url,
            &crate::upload::net_config(args.upload.connect_timeout, args.upload.io_timeout)?,
            home.clone(),
            camera.public().id(),
            Duration::from_secs_f64(args.control_interval),
        )?),
        None => None,
    };
    // Under stop-recording, frames refused by a full spool: (frames, first pts, last pts).
    let mut refused: Option<(u64, u64, u64)> = None;
    let started = Instant::now();
    let mut interrupted = false;
    // A file source paces itself; a pipe comes at its writer's pace.
    let pace_here = args.realtime && !args.source.starts_with("file:") && args.source != "stdin";
    let mut first_pts: Option<u64> = None;
    let mut keyframes = KeyframeRequests::default();
    let report = |events: Vec<StreamEvent>| {
        for event in events {
            match event {
                StreamEvent::Published(c) if progress => eprintln!(
                    "sealed segment {} ({} frames, {} bytes, {}) -> {}",
                    c.seq,
                    c.frames,
                    c.bytes,
                    c.reason.name(),
                    c.path.display()
                ),
                StreamEvent::Dropped {
                    reason: GapReason::SourceLoss,
                    frames,
                    from_pts,
                    to_pts,
                } => eprintln!(
                    "warning: the source lost {frames} frames (pts {from_pts}..{to_pts}, up to the next keyframe); recorded as a gap, recording goes on"
                ),
                StreamEvent::Dropped {
                    frames,
                    from_pts,
                    to_pts,
                    ..
                } => eprintln!(
                    "warning: dropped {frames} frames (pts {from_pts}..{to_pts}); recorded as a gap"
                ),
                StreamEvent::Published(_) => {}
            }
        }
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let next = source.next_packet()?;
        if let Some(loss) = source.take_loss() {
            stream.lost(loss);
            keyframes.ask(source.as_mut());
        }
        if stream.wants_keyframe() {
            keyframes.ask_once(source.as_mut());
        } else {
            keyframes.segment_closed();
        }
        let Some(packet) = next else {
            break;
        };
        let dequeued = Instant::now();
        if pace_here {
            // The software encoder runs as fast as it can; hold each frame until its time.
            let due = Duration::from_nanos(
                (u128::from(packet.pts - first_pts.get_or_insert(packet.pts).to_owned())
                    * 1_000_000_000
                    / u128::from(PTS_HZ)) as u64,
            );
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        inspect(packet.data());
        if let (Some((frames, from, _)), Some(spool)) = (refused, &spool) {
            // Resume at a keyframe once uploads made room, declaring what was not recorded.
            if packet.keyframe && spool.has_room()? {
                spool.queue_gap(
                    stream.camera_id(),
                    args.stream,
                    Gap::spool_quota(frames, from, packet.pts),
                )?;
                eprintln!("spool has room again: recording resumes after {frames} frames");
                refused = None;
            } else {
                refused = Some((frames + 1, from, packet.pts));
                continue;
            }
        }
        if let Some(recipients) = poller.as_ref().and_then(crate::control::Poller::take) {
            let from = stream.set_recipients(recipients)?;
            eprintln!("control: the new recipient list applies from segment {from}");
        }
        let pts = packet.pts;
        match stream.push(packet, dequeued) {
            Ok(_) => {}
            Err(e) if camseal::spool::is_full(&e) => {
                eprintln!(
                    "QUOTA: {e}: not recording until uploads make room (the loss is recorded as a gap)"
                );
                refused = Some((1, pts, pts));
            }
            Err(e) => return Err(e.into()),
        }
        report(stream.take_events());
    }
    if let Some(poller) = poller {
        poller.stop();
    }
    if let (Some((frames, from, to)), Some(spool)) = (refused, &spool) {
        // Still refused at the end: the next recording declares what was not recorded.
        spool.queue_gap(
            stream.camera_id(),
            args.stream,
            Gap::spool_quota(frames, from, to),
        )?;
    }
    let reason = if interrupted {
        CloseReason::Shutdown
    } else {
        CloseReason::EndOfStream
    };
    stream.flush(reason)?;
    report(stream.take_events());
    let stats = stream.finish(reason)?;
    let elapsed = started.elapsed();
    engine.shutdown();
    if let Some(handle) = uploading {
        let grace = Duration::from_secs_f64(args.upload_grace);
        let uploader = handle.uploader().clone();
        let r = handle.finish(grace);
        // A refusal counts only if nothing succeeded on that sink since.
        let failure = uploader.permanent_failure();
        if progress {
            eprintln!(
                "uploaded {} segments ({} bytes), {} failed attempts",
                r.uploaded, r.bytes, r.failures
            );
        }
        if let Some((sink, message)) = failure {
            eprintln!(
                "error: uploads to {sink} are refused ({message}); the segments are kept in the spool"
            );
        }
    }
    let mut place = out_dir.display().to_string();
    if let Some(spool) = &spool {
        let left = spool.pending().map(|p| p.len()).unwrap_or(0);
        let mut sinks = args.sink.clone();
        if let Some(out) = &args.out {
            sinks.push(format!("dir:{}", out.display()));
        }
        place = match (sinks.is_empty(), left) {
            (true, _) => format!("the spool {}", out_dir.display()),
            (false, 0) => sinks.join(", "),
            (false, left) => format!(
                "{} ({left} segments still wait in the spool {})",
                sinks.join(", "),
                out_dir.display()
            ),
        };
        if left > 0 && progress {
            eprintln!(
                "{left} segments wait in the spool {} (`camseal upload --spool {} --sink URL` sends them)",
                out_dir.display(),
                out_dir.display()
            );
        }
    }
    if stats.frames == 0 {
        bail!("the source produced no frames");
    }
    Ok(RunSummary {
        stats,
        elapsed,
        place,
        interrupted,
    })
}

/// Locks `HOME/streams/<stream>.lock` for this process, or says who records the stream.
fn lock_stream(home: &Path, stream: u32, camera_id: &str) -> Result<FileLock> {
    let dir = home.join("streams");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{stream}.lock"));
    try_lock(&path).with_context(|| {
        format!("stream {stream} of camera {camera_id} is already being recorded (one `camseal run` per stream)")
    })
}

/// One seal worker per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn open_source(args: &RunArgs, duration: Option<Duration>) -> Result<Box<dyn Encoder>> {
    let fps = match args.fps {
        Some(f) => Some(
            FrameRate::from_f64(f)
                .ok_or_else(|| anyhow!("--fps {f} is not a usable frame rate"))?,
        ),
        None => None,
    };
    let codec: Option<Codec> = match &args.codec {
        Some(c) => Some(c.parse().map_err(|e| anyhow!("--codec: {e}"))?),
        None => None,
    };
    let mut hardware = camseal_hal::SourceOptions::default();
    hardware.codec = codec;
    hardware.bitrate = Some(args.bitrate);
    hardware.duration = duration;
    hardware.input = args.input.clone();
    if let Some(source) = camseal_hal::open_hardware_source(&args.source, &hardware)? {
        return Ok(source);
    }
    if args.input.is_some() {
        bail!(Usage(
            "--input applies to the rkmpp and v4l2-m2m sources only".to_owned()
        ));
    }
    if let Some(pipe) = open_pipe(&args.source, codec, fps, duration)? {
        return Ok(pipe);
    }
    if let Some(path) = args.source.strip_prefix("file:") {
        let mut options = FileOptions::default();
        options.codec = codec;
        options.fps = fps;
        options.realtime = args.realtime;
        options.max_duration = duration;
        return Ok(Box::new(FileSource::open(path, options)?));
    }
    if args.source == "soft" || args.source.starts_with("soft:") {
        if codec.is_some_and(|c| c != Codec::H264) {
            bail!(Usage("the soft source encodes H.264 only".to_owned()));
        }
        let (width, height, rate) = match args.source.strip_prefix("soft:") {
            Some(spec) => parse_soft_spec(spec)?,
            None => DEFAULT_SOFT,
        };
        let mut config = SoftConfig::new(width, height, rate);
        config.bitrate = args.bitrate;
        config.duration = Some(duration.unwrap_or(Duration::from_secs(10)));
        return Ok(Box::new(SoftSource::new(config)?));
    }
    bail!(Usage(format!(
        "unknown source {:?}: use file:PATH, stdin, soft[:WxH@FPS], rkmpp[:WxH@FPS], v4l2-m2m:/dev/videoN or v4l2:/dev/videoN",
        args.source
    )))
}

/// `stdin` or `file:-` (standard input), or `file:PATH` naming a FIFO or another
/// non-seekable stream: read as a pipe, since it cannot be mapped. `None` for anything else.
pub fn open_pipe(
    spec: &str,
    codec: Option<Codec>,
    fps: Option<FrameRate>,
    duration: Option<Duration>,
) -> Result<Option<Box<dyn Encoder>>> {
    let mut options = PipeOptions::default();
    options.codec = codec;
    options.fps = fps;
    options.max_duration = duration;
    if spec == "stdin" || spec == "file:-" {
        return Ok(Some(Box::new(PipeSource::stdin(options)?)));
    }
    let Some(path) = spec.strip_prefix("file:") else {
        return Ok(None);
    };
    // A regular file (also /dev/stdin redirected from one) is mapped; a directory gets the
    // replay's own error.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            let file = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
            Ok(Some(Box::new(PipeSource::new(
                Box::new(file),
                path,
                options,
            )?)))
        }
        _ => Ok(None),
    }
}

fn print_summary(s: &RunSummary) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}: {} frames, {} segments, {} video bytes -> {} sealed bytes in {:.2} s ({:.1} MB/s) in {}",
        if s.interrupted {
            "stopped by signal"
        } else {
            "done"
        },
        s.stats.frames,
        s.stats.segments,
        s.stats.video_bytes,
        s.stats.segment_bytes,
        secs,
        s.stats.video_bytes as f64 / secs / 1e6,
        s.place
    );
    if s.stats.lost_frames > 0 {
        println!(
            "the source lost {} frames; each loss is a signed source-loss gap in the next segment",
            s.stats.lost_frames
        );
    }
}

/// Asks the source for keyframes: after a loss, and once per segment that has reached its
/// target length (so that it closes at a keyframe rather than at its maximum length).
#[derive(Default)]
pub struct KeyframeRequests {
    asked_this_segment: bool,
    warned: bool,
}

impl KeyframeRequests {
    pub fn ask(&mut self, source: &mut dyn Encoder) {
        match source.force_keyframe() {
            // A recording or a camera without the control: the next keyframe comes when it
            // comes.
            Ok(()) | Err(camseal_hal::HalError::Unsupported(_)) => {}
            Err(e) if !self.warned => {
                self.warned = true;
                eprintln!("warning: the source refused a keyframe request: {e}");
            }
            Err(_) => {}
        }
    }

    pub fn ask_once(&mut self, source: &mut dyn Encoder) {
        if !self.asked_this_segment {
            self.asked_this_segment = true;
            self.ask(source);
        }
    }

    pub fn segment_closed(&mut self) {
        self.asked_this_segment = false;
    }
}

const DEFAULT_SOFT: (u32, u32, u32) = (640, 360, 30);
