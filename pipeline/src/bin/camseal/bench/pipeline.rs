//! `camseal bench --source ...`: the whole pipeline, measured per frame.
//!
//! Each stream reads its own copy of the source on its own thread and pushes every packet
//! into one shared [`Engine`]; segments are written to a directory and published (fsync,
//! rename) as in `camseal run` (with `--discard`, sealed, hashed and signed, then dropped).
//! Per frame the engine records the time from dequeue to chunks sealed, records appended and
//! segment durable, and the time in the AEAD call alone.
//!
//! With `--realtime`, each stream thread also measures the platform's floor per frame: after
//! the pacing sleep and before the frame is pushed, one read pass over a buffer of the
//! frame's size that nothing touched since the previous frame (`floor_us`). It is what any
//! code pays to touch that many bytes after a sleep on this machine, camseal or not.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use camseal::engine::{
    CopyMeter, DirSink, DiscardSink, Engine, EngineConfig, HandOffCosts, SegmentSink, Stage,
    StreamConfig, StreamStats, WallClock,
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

use super::sys;
use crate::cli::PipelineBenchArgs;
use crate::error::Usage;
use crate::run::default_workers;

pub fn bench(args: PipelineBenchArgs) -> Result<ExitCode> {
    let source = args.source.clone().unwrap_or_default();
    // --streams, --duration, --segment-seconds, --max-chunk and --workers come only from
    // clap, whose parsers (`numeric`) have checked their ranges.
    let workers = args.workers.unwrap_or_else(default_workers);
    let overload = args.overload;
    let duration = Duration::from_secs_f64(args.duration);
    if (source == "stdin" || source == "file:-") && args.streams != 1 {
        bail!(Usage(
            "standard input feeds one stream: use --streams 1".to_owned()
        ));
    }
    let sources = (0..args.streams)
        .map(|_| open_source(&source, args.realtime, duration))
        .collect::<Result<Vec<_>>>()?;
    // A file source paces itself (`FileOptions::realtime`); the others are paced here.
    let file_source = source.starts_with("file:") || source == "stdin";

    let mut rt = args.rt.then(Rt::default);
    if let Some(rt) = &mut rt {
        rt.note("mlockall(MCL_CURRENT | MCL_FUTURE)", sys::lock_memory());
        if !args.realtime {
            rt.notes.push(RtNote::info(
                "without --realtime, SCHED_FIFO threads that never sleep can starve the \
                 segment writers (the kernel throttles them at 95%)",
            ));
        }
    }
    let (out_dir, keep) = match &args.out {
        _ if args.discard => (None, false),
        Some(dir) => (Some(dir.clone()), true),
        None => (Some(temp_dir()?), false),
    };
    let camera = ed25519_dalek::SigningKey::from_bytes(&random32()?);
    let viewer = x25519_dalek::StaticSecret::from(random32()?);
    let viewer_pub = x25519_dalek::PublicKey::from(&viewer).to_bytes().to_vec();

    let mut engine_config = EngineConfig::new(workers);
    engine_config.max_chunk = args.max_chunk;
    engine_config.caller_seals = !args.no_caller_seals;
    let buffer_bytes = engine_config.buffer_bytes();
    let engine = Engine::new(engine_config)?;
    let hand_off = engine.hand_off_costs();
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
            padding: camseal::segment::padding::Padding::Off,
        };
        let sink: Box<dyn SegmentSink> = match &out_dir {
            Some(dir) => Box::new(
                DirSink::new(dir)
                    .with_context(|| format!("cannot write segments into {}", dir.display()))?,
            ),
            None => Box::new(DiscardSink),
        };
        streams.push((source, engine.open_stream(config, sink)?));
    }
    let cpus = default_workers();
    if let Some(rt) = &mut rt {
        rt.engine_threads(cpus);
    }

    let cpu_before = cpu_time();
    let started = Instant::now();
    let pace = args.realtime && !file_source;
    let floor = args.realtime;
    let rt_on = rt.is_some();
    let results: Vec<Result<Driven>> = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, (source, stream))| {
                let meter = meter.clone();
                scope.spawn(move || {
                    // The source thread sets itself up: SCHED_FIFO and its CPU, counted
                    // from the last one down (the engine's workers count up from 0).
                    let notes = if rt_on {
                        Rt::source_thread(i, cpus)
                    } else {
                        Vec::new()
                    };
                    drive(source, stream, pace, floor, &meter).map(|mut d| {
                        d.rt = notes;
                        d
                    })
                })
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
    let mut floor = floor.then(new_histogram);
    for r in results {
        let driven = r?;
        total.merge(&driven.stats);
        if let (Some(all), Some(mine)) = (&mut floor, &driven.floor) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = all.add(mine);
        }
        if let Some(rt) = &mut rt {
            rt.notes.extend(driven.rt);
        }
    }
    if !keep && let Some(dir) = &out_dir {
        // Only sealed segments of random keys nobody kept: nothing worth keeping.
        let _ = fs::remove_dir_all(dir);
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
        floor: floor.as_ref(),
        hand_off,
        discard: args.discard,
        rt: rt.as_ref(),
    };
    if let Some(rt) = &rt {
        print!("{}", rt.text());
    }
    print!("{}", report.text());
    if let Some(file) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).context("encode the results")?;
        camseal::fsutil::write_atomic(file, (text + "\n").as_bytes(), camseal::fsutil::PUBLIC)
            .with_context(|| format!("write {}", file.display()))?;
    }
    if let Some(file) = &args.hgrm {
        camseal::fsutil::write_atomic(file, hgrm(&total).as_bytes(), camseal::fsutil::PUBLIC)
            .with_context(|| format!("write {}", file.display()))?;
    }
    if let Some(file) = &args.svg {
        let mut svg = String::new();
        plot(&total, floor.as_ref(), &mut svg)?;
        camseal::fsutil::write_atomic(file, svg.as_bytes(), camseal::fsutil::PUBLIC)
            .with_context(|| format!("write {}", file.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What one stream thread brings back.
struct Driven {
    stats: StreamStats,
    /// Per-frame platform floor (`--realtime`), nanoseconds.
    floor: Option<Histogram<u64>>,
    /// What `--rt` applied to this thread.
    rt: Vec<RtNote>,
}

/// Pulls every packet of `source` into `stream`, then finishes it. With `floor`, measures
/// the platform's floor before each frame (see the module docs).
fn drive(
    mut source: Box<dyn Encoder>,
    mut stream: camseal::engine::Stream,
    pace: bool,
    floor: bool,
    meter: &CopyMeter,
) -> Result<Driven> {
    let started = Instant::now();
    let mut first_pts = None;
    let mut keyframes = crate::run::KeyframeRequests::default();
    let mut floor = floor.then(Floor::new);
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
        if let Some(floor) = &mut floor {
            // After the same sleep (here, or inside a paced file source), before the frame.
            floor.measure(packet.len());
        }
        // openh264 encodes into its own buffer; the soft source copies each access unit out
        // of it. A pipe forces one copy by read(2), and a move of the odd partial access unit
        // (file, MPP and V4L2 sources lend their buffers instead).
        meter.add(packet.copied_bytes());
        let dequeued = Instant::now();
        stream.push(packet, dequeued)?;
        stream.take_events();
    }
    Ok(Driven {
        stats: stream.finish(CloseReason::EndOfStream)?,
        floor: floor.map(|f| f.hist),
        rt: Vec::new(),
    })
}

/// The platform's floor: one read pass over a buffer of the frame's size that nothing
/// touched since the previous frame. Not the frame's own memory: the engine reads that, and
/// the floor must not warm it for the engine.
struct Floor {
    buf: Vec<u64>,
    hist: Histogram<u64>,
}

impl Floor {
    fn new() -> Floor {
        Floor {
            // Written once here, so its pages exist: what is timed is touching memory
            // after a sleep, not the page faults of a fresh allocation.
            buf: vec![1; FLOOR_INITIAL_BYTES / 8],
            hist: new_histogram(),
        }
    }

    fn measure(&mut self, bytes: usize) {
        let words = bytes.div_ceil(8).max(1);
        if words > self.buf.len() {
            // A frame larger than any before: the next pass over this size is cold again.
            self.buf.resize(words, 1);
        }
        let started = Instant::now();
        let sum = self.buf[..words]
            .iter()
            .fold(0u64, |acc, w| acc.wrapping_add(*w));
        std::hint::black_box(sum);
        let ns = started.elapsed().as_nanos().clamp(1, u128::from(MAX_NS)) as u64;
        // In range by the clamp above, so recording cannot fail.
        let _ = self.hist.record(ns);
    }
}

/// What `--rt` applied, and what it could not.
#[derive(Default)]
struct Rt {
    notes: Vec<RtNote>,
}

struct RtNote {
    what: String,
    /// `None`: information only.
    result: Option<std::result::Result<(), String>>,
}

impl RtNote {
    fn info(what: &str) -> RtNote {
        RtNote {
            what: what.to_string(),
            result: None,
        }
    }

    fn of(what: String, result: std::io::Result<()>) -> RtNote {
        RtNote {
            what,
            result: Some(result.map_err(|e| e.to_string())),
        }
    }
}

impl Rt {
    fn note(&mut self, what: &str, result: std::io::Result<()>) {
        self.notes.push(RtNote::of(what.to_string(), result));
    }

    /// Seal workers: SCHED_FIFO one below the sources, and worker `j` pinned to CPU
    /// `j % cpus`. The segment writers and the publisher stay under the normal scheduler:
    /// they are not on the path the latency stages measure, and a real-time thread that
    /// writes to disk would only hold a CPU while it waits.
    fn engine_threads(&mut self, cpus: usize) {
        let Ok(tasks) = fs::read_dir("/proc/self/task") else {
            self.notes.push(RtNote::info(
                "no /proc/self/task: the seal workers were left as they are",
            ));
            return;
        };
        let mut workers: Vec<(usize, libc::pid_t)> = tasks
            .filter_map(|t| {
                let t = t.ok()?;
                let tid: libc::pid_t = t.file_name().to_str()?.parse().ok()?;
                let comm = fs::read_to_string(t.path().join("comm")).ok()?;
                let j = comm.trim().strip_prefix("camseal-seal-")?.parse().ok()?;
                Some((j, tid))
            })
            .collect();
        workers.sort();
        for (j, tid) in workers {
            let cpu = j % cpus.max(1);
            self.notes.push(RtNote::of(
                format!("seal worker {j}: SCHED_FIFO {WORKER_PRIORITY}"),
                sys::set_fifo(tid, WORKER_PRIORITY),
            ));
            self.notes.push(RtNote::of(
                format!("seal worker {j}: pinned to CPU {cpu}"),
                sys::pin(tid, cpu),
            ));
        }
    }

    /// The calling thread, source `i`: SCHED_FIFO, pinned from the last CPU down.
    fn source_thread(i: usize, cpus: usize) -> Vec<RtNote> {
        let cpus = cpus.max(1);
        let cpu = cpus - 1 - i % cpus;
        let tid = sys::thread_id();
        vec![
            RtNote::of(
                format!("source {i}: SCHED_FIFO {SOURCE_PRIORITY}"),
                sys::set_fifo(tid, SOURCE_PRIORITY),
            ),
            RtNote::of(
                format!("source {i}: pinned to CPU {cpu}"),
                sys::pin(tid, cpu),
            ),
        ]
    }

    fn text(&self) -> String {
        let mut t = String::new();
        for n in &self.notes {
            let _ = match &n.result {
                Some(Ok(())) => writeln!(t, "--rt: applied: {}", n.what),
                Some(Err(e)) => writeln!(t, "--rt: NOT applied: {}: {e}", n.what),
                None => writeln!(t, "--rt: note: {}", n.what),
            };
        }
        t
    }

    fn json(&self) -> Value {
        Value::Array(
            self.notes
                .iter()
                .map(|n| match &n.result {
                    Some(Ok(())) => json!({ "what": n.what, "applied": true }),
                    Some(Err(e)) => json!({ "what": n.what, "applied": false, "error": e }),
                    None => json!({ "what": n.what }),
                })
                .collect(),
        )
    }
}

fn open_source(spec: &str, realtime: bool, duration: Duration) -> Result<Box<dyn Encoder>> {
    let mut hardware = camseal_hal::SourceOptions::default();
    hardware.duration = Some(duration);
    if let Some(source) = camseal_hal::open_hardware_source(spec, &hardware)? {
        return Ok(source);
    }
    if let Some(pipe) = crate::run::open_pipe(spec, None, None, Some(duration))? {
        return Ok(pipe);
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
    /// The platform floor per frame (`--realtime`).
    floor: Option<&'a Histogram<u64>>,
    hand_off: HandOffCosts,
    discard: bool,
    rt: Option<&'a Rt>,
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
        // Not stages: the engine's own cost per frame, and the platform's floor next to it.
        let extra = [
            ("overhead", Some(s.latency.overhead())),
            ("floor", self.floor),
        ];
        for (name, h) in extra {
            let Some(h) = h else { continue };
            let _ = writeln!(
                t,
                "{:<10} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                name,
                h.len(),
                us(h.value_at_quantile(0.5)),
                us(h.value_at_quantile(0.9)),
                us(h.value_at_quantile(0.99)),
                us(h.value_at_quantile(0.999)),
                us(h.max())
            );
        }
        if self.floor.is_some() {
            let _ = writeln!(
                t,
                "(overhead: appended - kernel of the same frame; floor: one read pass over an \
                 untouched buffer of the frame's size after the same sleep, no camseal code)"
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
            "segment writers (records digest + write): {:.1} MB/s per thread{}",
            self.writer_mb_per_s(),
            if self.discard {
                " (--discard: bytes dropped, no file system)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            t,
            "hand-off: seal {:.3} ns/byte, worker wake-up {:.1} us: frames up to {} bytes are \
             sealed on their source thread",
            self.hand_off.seal_ps_per_byte as f64 / 1e3,
            self.hand_off.wake_ns as f64 / 1e3,
            self.hand_off.inline_max_bytes()
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
            "overhead_us": percentiles_p90(s.latency.overhead()),
            "floor_us": self.floor.map(percentiles_p90),
            "discard": self.discard,
            "hand_off": {
                "seal_ns_per_byte": self.hand_off.seal_ps_per_byte as f64 / 1e3,
                "wake_us": self.hand_off.wake_ns as f64 / 1e3,
                "inline_max_bytes": self.hand_off.inline_max_bytes(),
            },
            "rt": self.rt.map(Rt::json),
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

/// [`percentiles`] and p90: the keys of `overhead_us` and `floor_us`.
fn percentiles_p90(h: &Histogram<u64>) -> Value {
    let mut v = percentiles(h);
    v["p90"] = json!(us(h.value_at_quantile(0.9)));
    v
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
fn plot(stats: &StreamStats, floor: Option<&Histogram<u64>>, svg: &mut String) -> Result<()> {
    use plotters::prelude::*;

    let mut series = Vec::new();
    let mut y_max: f64 = 1.0;
    let mut y_min: f64 = f64::MAX;
    // The stages, then the per-frame overhead and the platform floor beside it.
    let curves = Stage::ALL
        .into_iter()
        .map(|stage| (stage.name(), Some(stats.latency.histogram(stage))))
        .chain([
            ("overhead", Some(stats.latency.overhead())),
            ("floor", floor),
        ]);
    for (name, h) in curves {
        let Some(h) = h else { continue };
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
        series.push((name, points));
    }
    let y_min = if y_min.is_finite() && y_min < y_max {
        y_min / 2.0
    } else {
        0.01
    };
    let root = SVGBackend::with_string(svg, (900, 560)).into_drawing_area();
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
        .y_desc("us since dequeue (kernel: AEAD; overhead: ours; floor: platform)")
        .draw()
        .map_err(err)?;
    let colors = [
        RED,
        BLUE,
        GREEN,
        BLACK,
        MAGENTA,
        CYAN,
        RGBColor(160, 160, 160),
    ];
    for (i, (name, points)) in series.into_iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name)
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

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 1 hour at 3 significant digits, as the engine's: fixed bounds, valid by
    // construction.
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
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

/// An hour, in nanoseconds: the largest time a histogram holds.
const MAX_NS: u64 = 3_600_000_000_000;
/// The floor buffer's first size: more than a 1080p keyframe; it grows for larger frames.
const FLOOR_INITIAL_BYTES: usize = 1 << 20;
/// `--rt`: SCHED_FIFO priorities (1..=99); the source above the seal workers, so a frame's
/// arrival is never queued behind a worker.
const SOURCE_PRIORITY: i32 = 50;
const WORKER_PRIORITY: i32 = 49;
