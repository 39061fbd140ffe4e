//! `camseal run`: seal a source into segment files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use camseal::engine::{
    DirSink, Engine, EngineConfig, Overload, StreamConfig, StreamEvent, StreamStats, WallClock,
};
use camseal::home::CameraHome;
use camseal::nal::Codec;
use camseal::recorder::SegmentPolicy;
use camseal::seal::SframeSuite;
use camseal::segment::CloseReason;
use camseal::segment::write::Randomness;
use camseal_hal::replay::{FileOptions, FileSource};
use camseal_hal::soft::{SoftConfig, SoftSource, parse_soft_spec};
use camseal_hal::{Encoder, FrameRate, PTS_HZ};

use crate::cli::RunArgs;

/// What a finished recording amounts to.
pub struct RunSummary {
    pub stats: StreamStats,
    pub elapsed: Duration,
    pub out_dir: PathBuf,
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
    let out_dir = args
        .out
        .clone()
        .ok_or_else(|| anyhow!("give --out DIR, or --spool DIR with --sink URL"))?;
    let suite: SframeSuite = args.suite.parse()?;
    let home = CameraHome::open(&args.home)?;
    let camera = home.camera()?;
    let list = home.trusted_recipients()?.ok_or_else(|| {
        anyhow!(
            "no trusted recipients in {}: install a signed list with `camseal camera trust --home {} LIST_FILE`",
            args.home.display(),
            args.home.display()
        )
    })?;
    let mut source = open_source(args, duration)?;
    let frame_rate = source.frame_rate();
    let mut recipients = Vec::new();
    for r in &list.recipients {
        if r.kem == camseal::keys::KEM_X25519_HKDF_SHA256 {
            recipients.push((r.kem, r.public_key.clone()));
        } else {
            eprintln!(
                "warning: recipient {:?} uses key type 0x{:04x}, which this camera cannot wrap to; it will NOT be able to watch",
                r.label, r.kem
            );
        }
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
        overload: Overload::Block,
    };
    let sink = DirSink::new(&out_dir)
        .with_context(|| format!("cannot record into {}", out_dir.display()))?;
    let mut stream = engine
        .open_stream(config, Box::new(sink))
        .with_context(|| format!("cannot record into {}", out_dir.display()))?;
    let started = Instant::now();
    let mut interrupted = false;
    let pace_here = args.realtime && !args.source.starts_with("file:");
    let mut first_pts: Option<u64> = None;
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
                    frames,
                    from_pts,
                    to_pts,
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
        let Some(packet) = source.next_packet()? else {
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
        stream.push(packet, dequeued)?;
        report(stream.take_events());
    }
    let reason = if interrupted {
        CloseReason::Shutdown
    } else {
        CloseReason::EndOfStream
    };
    stream.flush(reason)?;
    report(stream.take_events());
    let stats = stream.finish(reason)?;
    engine.shutdown();
    if stats.frames == 0 {
        bail!("the source produced no frames");
    }
    Ok(RunSummary {
        stats,
        elapsed: started.elapsed(),
        out_dir,
        interrupted,
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
        bail!("--input applies to the rkmpp and v4l2-m2m sources only");
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
            bail!("the soft source encodes H.264 only");
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
    bail!(
        "unknown source {:?}: use file:PATH, soft[:WxH@FPS], rkmpp[:WxH@FPS], v4l2-m2m:/dev/videoN or v4l2:/dev/videoN",
        args.source
    )
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
        s.out_dir.display()
    );
}

const DEFAULT_SOFT: (u32, u32, u32) = (640, 360, 30);
