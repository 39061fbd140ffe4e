//! `camseal bench --source ...`: the whole pipeline, measured per frame.
//!
//! Each stream reads its own copy of the source on its own thread and pushes every packet
//! into one shared [`Engine`]; segments are written to a directory and published (fsync,
//! rename) as in `camseal run`. Per frame the engine records the time from dequeue to chunks
//! sealed, records appended and segment durable, and the time in the AEAD call alone.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use camseal::engine::{
    CopyMeter, DirSink, Engine, EngineConfig, Stage, StreamConfig, StreamStats, WallClock,
};
use camseal::recorder::SegmentPolicy;
use camseal::seal::SframeSuite;
use camseal::segment::CloseReason;
use camseal::segment::write::{CheckpointPolicy, HPKE_KEM_X25519, Randomness};
use camseal_hal::replay::{FileOptions, FileSource};
use camseal_hal::soft::{SoftConfig, SoftSource, parse_soft_spec};
use camseal_hal::{Encoder, PTS_HZ};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::cli::PipelineBenchArgs;
use crate::run::default_workers;

pub fn bench(args: PipelineBenchArgs) -> Result<ExitCode> {
    let source = args.source.clone().unwrap_or_default();
    if args.streams == 0 || args.streams > MAX_STREAMS {
        bail!("--streams must be 1..={MAX_STREAMS}");
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= MAX_DURATION) {
        bail!("--duration must be more than 0 and at most {MAX_DURATION} seconds");
    }
    if !(args.segment_seconds.is_finite() && args.segment_seconds > 0.0) {
        bail!("--segment-seconds must be a positive number of seconds");
    }
    if args.max_chunk == 0 || args.max_chunk > camseal::segment::MAX_RECORD_PLAINTEXT {
        bail!("--max-chunk must be between 1 and 16777216 bytes");
    }
    let workers = match args.workers {
        Some(0) => bail!("--workers must be at least 1"),
        Some(w) => w,
        None => default_workers(),
    };
    let overload = args.overload;
    let duration = Duration::from_secs_f64(args.duration);
    let sources = (0..args.streams)
        .map(|_| open_source(&source, args.realtime, duration))
        .collect::<Result<Vec<_>>>()?;
    // A file source paces itself (`FileOptions::realtime`); the others are paced here.
    let file_source = source.starts_with("file:");

    let (out_dir, keep) = match &args.out {
        Some(dir) => (dir.clone(), true),
        None => (temp_dir()?, false),
    };
    let camera = ed25519_dalek::SigningKey::from_bytes(&random32()?);
    let viewer = x25519_dalek::StaticSecret::from(random32()?);
    let viewer_pub = x25519_dalek::PublicKey::from(&viewer).to_bytes().to_vec();

    let mut engine_config = EngineConfig::new(workers);
    engine_config.max_chunk = args.max_chunk;
    engine_config.caller_seals = !args.no_caller_seals;
    let buffer_bytes = engine_config.buffer_bytes();
    let engine = Engine::new(engine_config)?;
    let meter = CopyMeter::new();
    let mut streams = Vec::with_capacity(sources.len());
    for (id, source) in sources.into_iter().enumerate() {
        let config = StreamConfig {
            camera: camera.clone(),
            recipients: vec![(HPKE_KEM_X25519, viewer_pub.clone())],
            suite: SframeSuite::Aes128GcmSha256,
            codec: source.codec(),
            stream_id: id as u32,
            policy: SegmentPolicy::with_target(Duration::from_secs_f64(args.segment_seconds)),
            frame_ticks: source.frame_rate().pts(1).max(1),
            chain_path: None,
            randomness: Randomness::Os,
            wallclock: WallClock::System,
            overload,
            checkpoints: CheckpointPolicy::default(),
        };
        let sink = DirSink::new(&out_dir)
            .with_context(|| format!("cannot write segments into {}", out_dir.display()))?;
        streams.push((source, engine.open_stream(config, Box::new(sink))?));
    }

    let cpu_before = cpu_time();
    let started = Instant::now();
    let pace = args.realtime && !file_source;
    let results: Vec<Result<StreamStats>> = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .into_iter()
            .map(|(source, stream)| {
                let meter = meter.clone();
                scope.spawn(move || drive(source, stream, pace, &meter))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a stream thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let cpu = cpu_time().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
    engine.shutdown();
    let mut total = StreamStats::default();
    for r in results {
        total.merge(&r?);
    }
    if !keep {
        // Only sealed segments of random keys nobody kept: nothing worth keeping.
        let _ = fs::remove_dir_all(&out_dir);
    }
    if total.frames == 0 {
        bail!("the source produced no frames");
    }

    let report = Report {
        stats: &total,
        elapsed,
        cpu,
        copied: meter.bytes(),
        peak_rss: peak_rss(),
        workers,
        streams: args.streams,
        buffer_bytes,
    };
    print!("{}", report.text());
    if let Some(file) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).context("encode the results")?;
        fs::write(file, text + "\n").with_context(|| format!("write {}", file.display()))?;
    }
    if let Some(file) = &args.hgrm {
        fs::write(file, hgrm(&total)).with_context(|| format!("write {}", file.display()))?;
    }
    if let Some(file) = &args.svg {
        plot(&total, file).with_context(|| format!("write {}", file.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Pulls every packet of `source` into `stream`, then finishes it.
fn drive(
    mut source: Box<dyn Encoder>,
    mut stream: camseal::engine::Stream,
    pace: bool,
    meter: &CopyMeter,
) -> Result<StreamStats> {
    let started = Instant::now();
    let mut first_pts = None;
    let mut keyframes = crate::run::KeyframeRequests::default();
    loop {
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
        let Some(packet) = next else { break };
        if pace {
            let first = *first_pts.get_or_insert(packet.pts);
            let due = Duration::from_nanos(
                ((packet.pts - first) as u128 * 1_000_000_000 / u128::from(PTS_HZ)) as u64,
            );
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if packet.source_copied() {
            // openh264 encodes into its own buffer; the soft source copies each access unit
            // out of it (file, MPP and V4L2 sources lend their buffers instead).
            meter.add(packet.len());
        }
        let dequeued = Instant::now();
        stream.push(packet, dequeued)?;
        stream.take_events();
    }
    Ok(stream.finish(CloseReason::EndOfStream)?)
}

fn open_source(spec: &str, realtime: bool, duration: Duration) -> Result<Box<dyn Encoder>> {
    let mut hardware = camseal_hal::SourceOptions::default();
    hardware.duration = Some(duration);
    if let Some(source) = camseal_hal::open_hardware_source(spec, &hardware)? {
        return Ok(source);
    }
    if let Some(path) = spec.strip_prefix("file:") {
        let mut options = FileOptions::default();
        options.realtime = realtime;
        options.looped = true;
        options.max_duration = Some(duration);
        return Ok(Box::new(FileSource::open(path, options)?));
    }
    if spec == "soft" || spec.starts_with("soft:") {
        let (width, height, fps) = match spec.strip_prefix("soft:") {
            Some(s) => parse_soft_spec(s)?,
            None => (1280, 720, 30),
        };
        let mut config = SoftConfig::new(width, height, fps);
        config.duration = Some(duration);
        return Ok(Box::new(SoftSource::new(config)?));
    }
    bail!("unknown source {spec:?}: use file:PATH, soft[:WxH@FPS] or a hardware source")
}

struct Report<'a> {
    stats: &'a StreamStats,
    elapsed: Duration,
    cpu: Option<Duration>,
    copied: u64,
    peak_rss: Option<u64>,
    workers: usize,
    streams: usize,
    buffer_bytes: usize,
}

impl Report<'_> {
    fn mb_per_s(&self) -> f64 {
        self.stats.video_bytes as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }

    /// Single-thread AEAD throughput on the very chunks sealed: video bytes over the summed
    /// time of the seal calls.
    fn kernel_mb_per_s(&self) -> f64 {
        let h = self.stats.latency.histogram(Stage::Kernel);
        let kernel_secs = h.mean() * h.len() as f64 / 1e9;
        self.stats.video_bytes as f64 / kernel_secs.max(1e-12) / 1e6
    }

    /// Segment writer throughput: video bytes over the time spent adding records to the
    /// records hash (SHA-256) and writing them out.
    fn writer_mb_per_s(&self) -> f64 {
        let secs = self.stats.latency.writer_busy().as_secs_f64();
        self.stats.video_bytes as f64 / secs.max(1e-12) / 1e6
    }

    fn copies_per_byte(&self) -> f64 {
        self.copied as f64 / self.stats.video_bytes.max(1) as f64
    }

    fn text(&self) -> String {
        let s = self.stats;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} stream(s), {} worker(s): {} frames, {} video bytes in {:.2} s: {:.1} MB/s",
            self.streams,
            self.workers,
            s.frames,
            s.video_bytes,
            self.elapsed.as_secs_f64(),
            self.mb_per_s()
        );
        let _ = writeln!(
            t,
            "{:<10} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}   (us per frame, from dequeue)",
            "stage", "frames", "p50", "p90", "p99", "p99.9", "max"
        );
        for stage in Stage::ALL {
            let h = s.latency.histogram(stage);
            let _ = writeln!(
                t,
                "{:<10} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                stage.name(),
                h.len(),
                us(h.value_at_quantile(0.5)),
                us(h.value_at_quantile(0.9)),
                us(h.value_at_quantile(0.99)),
                us(h.value_at_quantile(0.999)),
                us(h.max())
            );
        }
        let appended = s.latency.histogram(Stage::Appended);
        let kernel = s.latency.histogram(Stage::Kernel);
        let _ = writeln!(
            t,
            "pipeline overhead at p99 (appended p99 - kernel p99): {:.1} us",
            us(appended.value_at_quantile(0.99)) - us(kernel.value_at_quantile(0.99))
        );
        let overhead = s.latency.overhead();
        let _ = writeln!(
            t,
            "pipeline overhead per frame (appended - kernel, same frame): p50 {:.1}, p99 {:.1}, p99.9 {:.1} us",
            us(overhead.value_at_quantile(0.5)),
            us(overhead.value_at_quantile(0.99)),
            us(overhead.value_at_quantile(0.999)),
        );
        let _ = writeln!(
            t,
            "kernel alone: {:.1} MB/s per thread; pipeline / ({} x kernel) = {:.2}",
            self.kernel_mb_per_s(),
            self.workers,
            self.mb_per_s() / (self.workers as f64 * self.kernel_mb_per_s())
        );
        let _ = writeln!(
            t,
            "segment writers (records hash + write): {:.1} MB/s per thread",
            self.writer_mb_per_s()
        );
        if let Some(cpu) = self.cpu {
            let _ = writeln!(
                t,
                "CPU time per frame: {:.1} us (whole process, source included)",
                cpu.as_secs_f64() * 1e6 / s.frames.max(1) as f64
            );
        }
        let _ = writeln!(
            t,
            "bytes copied per video byte beyond the AEAD output: {:.3}",
            self.copies_per_byte()
        );
        if s.dropped_frames > 0 {
            let _ = writeln!(t, "dropped frames: {}", s.dropped_frames);
        }
        if s.lost_frames > 0 {
            let _ = writeln!(
                t,
                "frames the source lost (recorded as gaps): {}",
                s.lost_frames
            );
        }
        let _ = writeln!(
            t,
            "peak RSS: {} (record buffers at most {} bytes); {} segments, {} bytes",
            self.peak_rss
                .map_or("unknown".to_string(), |b| format!("{b} bytes")),
            self.buffer_bytes,
            s.segments,
            s.segment_bytes
        );
        t
    }

    fn json(&self) -> Value {
        let s = self.stats;
        let mut stages = serde_json::Map::new();
        for stage in Stage::ALL {
            let h = s.latency.histogram(stage);
            let mut v = percentiles(h);
            v["p90"] = json!(us(h.value_at_quantile(0.9)));
            v["frames"] = json!(h.len());
            stages.insert(stage.name().into(), v);
        }
        json!({
            "frames": s.frames,
            "bytes": s.video_bytes,
            "mb_per_s": self.mb_per_s(),
            "latency_us": percentiles(s.latency.histogram(Stage::Appended)),
            "kernel_us": percentiles(s.latency.histogram(Stage::Kernel)),
            "copied_bytes_per_video_byte": self.copies_per_byte(),
            "peak_rss_bytes": self.peak_rss,
            "streams": self.streams,
            "workers": self.workers,
            "seconds": self.elapsed.as_secs_f64(),
            "kernel_mb_per_s": self.kernel_mb_per_s(),
            "writer_mb_per_s": self.writer_mb_per_s(),
            "overhead_us": percentiles(s.latency.overhead()),
            "cpu_us_per_frame": self.cpu.map(|c| c.as_secs_f64() * 1e6 / s.frames.max(1) as f64),
            "dropped_frames": s.dropped_frames,
            "lost_frames": s.lost_frames,
            "segments": s.segments,
            "stages": stages,
        })
    }
}

fn percentiles(h: &Histogram<u64>) -> Value {
    json!({
        "p50": us(h.value_at_quantile(0.5)),
        "p99": us(h.value_at_quantile(0.99)),
        "p999": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
    })
}

/// Each stage's percentile distribution in the HdrHistogram text format (values in
/// microseconds), one block per stage after a `# stage NAME` line.
fn hgrm(stats: &StreamStats) -> String {
    let mut t = String::new();
    for stage in Stage::ALL {
        let h = stats.latency.histogram(stage);
        let _ = writeln!(t, "# stage {}", stage.name());
        let _ = writeln!(
            t,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        if h.is_empty() {
            let _ = writeln!(t, "#[Total count = 0]\n");
            continue;
        }
        for v in h.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            let inverse = if q < 1.0 {
                format!("{:>14.2}", 1.0 / (1.0 - q))
            } else {
                format!("{:>14}", "inf")
            };
            let _ = writeln!(
                t,
                "{:>12.3} {:>14.12} {:>10} {inverse}",
                us(v.value_iterated_to()),
                q,
                v.count_since_last_iteration()
            );
        }
        let _ = writeln!(
            t,
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
            h.mean() / 1e3,
            h.stdev() / 1e3
        );
        let _ = writeln!(
            t,
            "#[Max     = {:>12.3}, Total count    = {:>12}]",
            us(h.max()),
            h.len()
        );
        let _ = writeln!(
            t,
            "#[Buckets = {:>12}, SubBuckets     = {:>12}]\n",
            h.buckets(),
            h.distinct_values()
        );
    }
    t
}

/// The latency percentile curve of each stage: x is 1/(1-percentile) on a log scale (so
/// 90%, 99%, 99.9% are evenly spaced), y is microseconds on a log scale.
fn plot(stats: &StreamStats, path: &Path) -> Result<()> {
    use plotters::prelude::*;

    let mut series = Vec::new();
    let mut y_max: f64 = 1.0;
    let mut y_min: f64 = f64::MAX;
    for stage in Stage::ALL {
        let h = stats.latency.histogram(stage);
        if h.is_empty() {
            continue;
        }
        let points: Vec<(f64, f64)> = h
            .iter_quantiles(5)
            .map(|v| {
                let q = v.quantile_iterated_to().min(0.99999);
                (1.0 / (1.0 - q), us(v.value_iterated_to()).max(0.01))
            })
            .collect();
        for &(_, y) in &points {
            y_max = y_max.max(y);
            y_min = y_min.min(y);
        }
        series.push((stage, points));
    }
    let y_min = if y_min.is_finite() && y_min < y_max {
        y_min / 2.0
    } else {
        0.01
    };
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("plot: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("camseal per-frame latency by stage", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (1.0f64..100_000.0).log_scale(),
            (y_min..y_max * 2.0).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("1/(1-percentile): 10 = p90, 100 = p99, 1000 = p99.9")
        .y_desc("microseconds since dequeue (kernel: in the AEAD)")
        .draw()
        .map_err(err)?;
    let colors = [RED, BLUE, GREEN, BLACK];
    for (i, (stage, points)) in series.into_iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(stage.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn random32() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow!("OS random number generator: {e}"))?;
    Ok(b)
}

fn temp_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("camseal-bench-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Peak resident set size of this process (`VmHWM`), if the OS says.
fn peak_rss() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User plus system CPU time of this process so far, if the OS says.
fn cpu_time() -> Option<Duration> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // /proc reports clock ticks of USER_HZ, which Linux fixes at 100 for user space.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Most streams one bench runs.
const MAX_STREAMS: usize = 64;
/// Longest `--duration`.
const MAX_DURATION: f64 = 3600.0;
