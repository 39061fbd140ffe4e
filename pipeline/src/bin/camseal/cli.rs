//! Command-line definitions (clap derive). Parsing only: no behaviour lives here.

use std::path::PathBuf;

use camseal::engine::Overload;
use clap::{Args, Parser, Subcommand};

/// camseal: end-to-end encrypted video for security cameras.
///
/// Seals an H.264/H.265 stream into signed, encrypted segments that only enrolled viewers
/// can open, and verifies and decrypts them again.
#[derive(Debug, Parser)]
#[command(name = "camseal", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Viewer account: keys, recovery backup, recipient lists.
    #[command(subcommand)]
    Viewer(ViewerCommand),
    /// Camera identity and trusted recipient list.
    #[command(subcommand)]
    Camera(CameraCommand),
    /// Seal a stream into encrypted, signed segments.
    Run(Box<RunArgs>),
    /// Verify and decrypt segments back into the original Annex-B stream.
    Decrypt(DecryptArgs),
    /// Check signatures, hash chain and completeness without any decryption key.
    Verify(VerifyArgs),
    /// Show what segment files hold, without any key: header, recipients, gaps, records,
    /// checkpoints, trailer, and each camera signature's verdict.
    Inspect(InspectArgs),
    /// Set up a throwaway viewer and camera, seal ~10 s of test video, decrypt and verify it.
    Demo(DemoArgs),
    /// Measure throughput on this machine (no cargo needed).
    Bench(BenchArgs),
    /// Upload the segments waiting in a spool to one or more sinks (the uploader as a
    /// separate service).
    Upload(UploadArgs),
    /// Download segments from a sink, for `decrypt` and `verify`.
    Fetch(FetchArgs),
    /// Show what a spool holds: pending segments and bytes, the oldest one's age, failures
    /// and drops.
    Status(StatusArgs),
}

#[derive(Debug, Subcommand)]
pub enum ViewerCommand {
    /// Create the account keys, a recovery backup, and print the recovery passphrase once.
    Init(ViewerInitArgs),
    /// Restore the account on another device from its backup and recovery passphrase.
    Restore(ViewerRestoreArgs),
    /// Write a recipient list signed by the account, one version higher than the last.
    Recipients(ViewerRecipientsArgs),
    /// The cameras whose footage `decrypt` accepts: add, list, remove.
    #[command(subcommand)]
    Cameras(ViewerCamerasCommand),
    /// Pair with a camera in setup mode (`camera setup`) using its setup code: send it a new
    /// signed recipient list over a channel keyed by the code, and pin its key.
    Pair(ViewerPairArgs),
}

#[derive(Debug, Args)]
pub struct ViewerPairArgs {
    /// Viewer home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The camera's address, as `camera setup` printed it.
    #[arg(long, value_name = "ADDR:PORT")]
    pub camera: String,
    /// The 8-digit setup code the camera shows.
    #[arg(long, value_name = "CODE")]
    pub code: String,
    /// A name for the camera (default: its camera id).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Seconds to wait for the camera at each step.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ViewerInitArgs {
    /// Viewer home directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
}

#[derive(Debug, Args)]
pub struct ViewerRestoreArgs {
    /// Viewer home directory to restore into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The `account.backup` file written by `viewer init`.
    #[arg(long, value_name = "FILE")]
    pub backup: PathBuf,
    /// Read the recovery passphrase from this file instead of standard input.
    #[arg(long, value_name = "F")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ViewerRecipientsArgs {
    /// Viewer home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Where to write the signed recipient list.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ViewerCamerasCommand {
    /// Pin a camera's public key (camera.pub): `decrypt` then accepts its footage without
    /// `--camera`. Adding a pinned camera again only renames it (with --name).
    Add(ViewerCamerasAddArgs),
    /// Print the pinned cameras, one per line: camera id, then name.
    List(ViewerCamerasListArgs),
    /// Unpin a camera: `decrypt` refuses its footage from then on.
    Remove(ViewerCamerasRemoveArgs),
}

#[derive(Debug, Args)]
pub struct ViewerCamerasAddArgs {
    /// Viewer home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The camera's public key file, written by `camseal camera init`.
    #[arg(value_name = "CAMERA_PUB")]
    pub camera: PathBuf,
    /// A name for the camera (default: its camera id; a pinned camera keeps its name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ViewerCamerasListArgs {
    /// Viewer home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Print a JSON list of {"camera_id", "name", "public"} objects instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ViewerCamerasRemoveArgs {
    /// Viewer home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The camera: its camera id, its name, or its camera.pub file.
    #[arg(value_name = "CAMERA_ID|NAME|CAMERA_PUB")]
    pub camera: String,
}

#[derive(Debug, Subcommand)]
pub enum CameraCommand {
    /// Create the camera identity key and write DIR/camera.pub.
    Init(CameraInitArgs),
    /// Install a signed recipient list (pins the account key on first use).
    Trust(CameraTrustArgs),
    /// Print a setup code and wait for one viewer to pair with it (`viewer pair`); creates
    /// the camera identity if the home has none. Five failed attempts end setup.
    Setup(CameraSetupArgs),
}

#[derive(Debug, Args)]
pub struct CameraSetupArgs {
    /// Camera home directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Address and port to listen on for the viewer (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// Seconds to wait for the viewer at each step of an attempt.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CameraInitArgs {
    /// Camera home directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
}

#[derive(Debug, Args)]
pub struct CameraTrustArgs {
    /// Camera home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Signed recipient list written by `camseal viewer recipients`.
    #[arg(value_name = "LIST_FILE")]
    pub list: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Camera home directory (from `camseal camera init`, with a trusted recipient list).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Video source: `file:PATH` (Annex-B replay), `soft[:WxH@FPS]` (software encoder),
    /// `rkmpp[:WxH@FPS]` (Rockchip MPP hardware encoder), `v4l2-m2m:/dev/videoN[:WxH@FPS]`
    /// (V4L2 hardware encoder) or `v4l2:/dev/videoN` (a camera that outputs H.264).
    #[arg(long, value_name = "SOURCE", default_value = "soft")]
    pub source: String,
    /// Codec: of a `file:` source (by default from the extension, else sniffed), or the one a
    /// hardware encoder produces (default h264).
    #[arg(long, value_name = "h264|h265")]
    pub codec: Option<String>,
    /// Raw frames for a hardware encoder (`rkmpp`, `v4l2-m2m`): `v4l2:/dev/videoN`, a capture
    /// node whose buffers the encoder imports as DMA-bufs. Default: a generated test pattern.
    #[arg(long, value_name = "v4l2:/dev/videoN")]
    pub input: Option<String>,
    /// Directory the sealed segments are written to. With a spool, shorthand for
    /// `--sink dir:DIR`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stage segments in this spool directory and upload them from there (default with
    /// `--sink`: HOME/spool).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Where segments are uploaded: `s3://BUCKET/PREFIX?endpoint=URL&region=R`,
    /// `http(s)://URL` (base URL, or a template with {key}/{camera}/{stream}/{seq}),
    /// or `dir:PATH`. Repeat for several sinks.
    #[arg(long, value_name = "URL")]
    pub sink: Vec<String>,
    /// Most bytes the spool may hold.
    #[arg(long, value_name = "BYTES")]
    pub spool_max_bytes: Option<u64>,
    /// What a full spool does: `drop-oldest` (delete the oldest segments not yet uploaded)
    /// or `stop-recording` (open no new segment until there is room). Either way the loss
    /// is recorded as a signed gap.
    #[arg(long, value_name = "POLICY", default_value = "drop-oldest")]
    pub spool_policy: String,
    /// On exit, wait this long for the spool to drain before leaving the rest for the
    /// next start.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub upload_grace: f64,
    #[command(flatten)]
    pub upload: UploadOpts,
    /// Stop after this many seconds of video (default: a file's end; 10 s for `soft`).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Pace the source at its frame rate instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
    /// Target segment length: a segment closes at the first keyframe after this.
    #[arg(long, value_name = "S", default_value_t = 4.0)]
    pub segment_seconds: f64,
    /// Sign a checkpoint about this often (milliseconds of video): a segment cut off by a
    /// crash is recoverable up to its last checkpoint.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub checkpoint_ms: u64,
    /// Frame rate of a `file:` source when its SPS carries no timing information.
    #[arg(long, value_name = "FPS")]
    pub fps: Option<f64>,
    /// Stream number within this camera (main = 0, sub = 1, ...).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub stream: u32,
    /// Media cipher.
    #[arg(long, value_name = "SUITE", default_value = "aes-128-gcm")]
    pub suite: String,
    /// Largest plaintext per record; larger access units are split at NAL boundaries.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_chunk: usize,
    /// Bitrate of the `soft` and hardware encoders in bits per second.
    #[arg(long, value_name = "BPS", default_value_t = 2_000_000)]
    pub bitrate: u32,
    /// Seal worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// What happens when sealing falls behind the encoder: `block` (the source waits,
    /// nothing is lost) or `drop-frames` (frames up to the next keyframe are dropped, counted,
    /// logged and recorded as a signed gap in the next segment).
    #[arg(long, value_name = "POLICY", default_value = "block", value_parser = parse_overload)]
    pub overload: Overload,
}

/// How uploads behave (`run` and `upload`).
#[derive(Debug, Args, Clone)]
pub struct UploadOpts {
    /// Uploads in flight at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub upload_concurrency: usize,
    /// Cap on upload bandwidth, shared by all uploads (cameras share the home uplink).
    #[arg(long, value_name = "BYTES")]
    pub upload_max_bytes_per_sec: Option<u64>,
    /// Longest wait for a connection.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Longest stall of one network read or write.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub io_timeout: f64,
    /// First retry delay ceiling (exponential backoff with full jitter).
    #[arg(long, value_name = "SECS", default_value_t = 0.5)]
    pub retry_base_delay: f64,
    /// Largest retry delay.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub retry_max_delay: f64,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The spool directory `camseal run --spool` writes to.
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
    /// Where to upload (see `camseal run --help`). Repeat for several sinks.
    #[arg(long, value_name = "URL", required = true)]
    pub sink: Vec<String>,
    /// Upload what is pending, then exit 0 (non-zero on a permanent failure).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub upload: UploadOpts,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The sink to download from (`s3://...` or `dir:PATH`).
    #[arg(long, value_name = "URL")]
    pub sink: String,
    /// Directory to write the segments to (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only this camera id (16 hex digits, as `camseal camera init` prints it).
    #[arg(long, value_name = "ID")]
    pub camera: Option<String>,
    /// Only this stream.
    #[arg(long, value_name = "S")]
    pub stream: Option<u32>,
    /// Only segments with this sequence number or a later one.
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// Longest wait for a connection.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Longest stall of one network read or write.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub io_timeout: f64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The spool directory.
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Viewer home directory holding the account key and the pinned cameras.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Output Annex-B file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Salvage the valid prefix of a crash-truncated last segment (with a warning).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Only accept segments signed by this camera (a `camera.pub` file), pinned or not.
    /// Without it, the footage must come from a camera pinned with `viewer cameras add`.
    #[arg(long, value_name = "CAMERA_PUB")]
    pub camera: Option<PathBuf>,
    /// Decrypt a window that starts at this sequence number (by default the stream must
    /// start at its first segment).
    #[arg(long, value_name = "N")]
    pub from_seq: Option<u64>,
    /// Segment files, or directories of `.cseg` files, in stream order.
    #[arg(value_name = "SEGMENT_OR_DIR", required = true)]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The camera's public key file (`camera.pub`).
    #[arg(long, value_name = "CAMERA_PUB")]
    pub camera: PathBuf,
    /// Check a window that starts at this sequence number (by default the stream must
    /// start at its first segment, and missing earlier segments are a broken chain).
    #[arg(long, value_name = "N")]
    pub from_seq: Option<u64>,
    /// Also write the verdict as JSON to this file (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The stream head the camera signed (`<camera id>-s<stream>.head`): fail if it names
    /// a newer segment than the newest given (withheld) or differs from the one it names.
    /// Without it, a directory input's head file is used when it has one.
    #[arg(long, value_name = "FILE")]
    pub head: Option<PathBuf>,
    /// Segment files, or directories of `.cseg` files.
    #[arg(value_name = "SEGMENT_OR_DIR", required = true)]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Also check that each segment names this camera's key (a `camera.pub` file).
    #[arg(long, value_name = "CAMERA_PUB")]
    pub camera: Option<PathBuf>,
    /// Print one JSON object per file, each on its own line (JSON Lines), instead of text.
    #[arg(long)]
    pub json: bool,
    /// Segment files (a bad or foreign file is reported, never skipped).
    #[arg(value_name = "SEGMENT", required = true)]
    pub segments: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds of test video to seal.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Keep the files here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `camseal bench kernels` times the AEAD alone; `camseal bench --source ...` runs the whole
/// pipeline (source, chunker, seal workers, in-order writer, durable segment files) and
/// reports per-frame latency per stage.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub kind: Option<BenchCommand>,
    #[command(flatten)]
    pub pipeline: PipelineBenchArgs,
}

#[derive(Debug, Args)]
pub struct PipelineBenchArgs {
    /// Video source: `file:PATH` (looped until --duration, pts increasing) or
    /// `soft[:WxH@FPS]`.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Streams sealed at once, each from its own copy of the source, on one worker pool.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub streams: usize,
    /// Seal worker threads (default: one per core).
    #[arg(long, value_name = "W")]
    pub workers: Option<usize>,
    /// Pace each source at its frame rate instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
    /// Seconds of video per stream.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub duration: f64,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the latency percentile distribution of each stage (HdrHistogram text format).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Draw the latency percentile curve of each stage as an SVG plot.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Largest plaintext per record.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_chunk: usize,
    /// Target segment length in seconds.
    #[arg(long, value_name = "S", default_value_t = 4.0)]
    pub segment_seconds: f64,
    /// Keep the sealed segments in this directory (default: a temporary one, removed).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seal, hash and sign everything, then drop the bytes: the engine without a file
    /// system (no segment is written or kept).
    #[arg(long, conflicts_with = "out")]
    pub discard: bool,
    /// Real-time set-up: SCHED_FIFO for the source and seal threads when permitted,
    /// mlockall, and those threads pinned to CPUs; prints what could and could not be
    /// applied.
    #[arg(long)]
    pub rt: bool,
    /// Queue every chunk to the workers, the last one of a frame included (by default the
    /// source thread seals it itself).
    #[arg(long)]
    pub no_caller_seals: bool,
    /// What happens when sealing falls behind: `block` (the source waits) or `drop-frames`
    /// (counted, and recorded as signed gaps).
    #[arg(long, value_name = "POLICY", default_value = "block", value_parser = parse_overload)]
    pub overload: Overload,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// AES-GCM seal throughput of the kernel the dispatcher picks on this CPU, per suite and
    /// chunk size (64 B .. 1 MiB), alone and with each sealed record then hashed (BLAKE3,
    /// SHA-256).
    Kernels(KernelBenchArgs),
}

#[derive(Debug, Args)]
pub struct KernelBenchArgs {
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seconds of timing per point: suite × size × digest (none, BLAKE3, SHA-256), 42 points.
    #[arg(long, value_name = "S", default_value_t = 0.2)]
    pub seconds: f64,
    /// Seal in place (one buffer, as ring's API does) instead of `seal_to`, the pipeline's
    /// out-of-place call.
    #[arg(long)]
    pub in_place: bool,
}

/// `--overload`: the engine's own names, so the CLI and the library cannot drift apart.
fn parse_overload(s: &str) -> Result<Overload, String> {
    s.parse()
}
