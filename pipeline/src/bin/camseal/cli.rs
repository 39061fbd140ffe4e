//! Command-line definitions (clap derive). Parsing only: no behaviour lives here.

use std::path::PathBuf;

use camseal::engine::Overload;
use camseal::segment::padding::Padding;
use clap::{Args, Parser, Subcommand};

use crate::numeric;

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
    /// List what segments hold, without any key: per camera and stream, the sequence
    /// numbers (and holes) and the signed recording times.
    Ls(LsArgs),
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
    /// Watch a camera's live view (`run --live`): verify and decrypt the sealed records as
    /// they come, write the video as Annex-B.
    Live(LiveArgs),
    /// Serve a local web page that plays recorded and live footage, verified and decrypted
    /// in the browser (docs/VIEWER.md).
    View(ViewArgs),
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
    /// The devices on this account's recipient list: name, key id, key type, and the list
    /// version that added each.
    Devices(ViewerDevicesArgs),
    /// Add another device's public key (`devices/NAME.pub` of a `viewer init --device-only`
    /// home) and sign a new recipient list version naming it.
    Enroll(ViewerEnrollArgs),
    /// Remove a device and sign a new recipient list version without it (strictly higher).
    /// Publish it (`viewer publish`) so cameras stop sealing to the device.
    Revoke(ViewerRevokeArgs),
    /// Upload the newest signed recipient list to a sink as `control/<camera id>/recipients`
    /// for each pinned camera; cameras polling the sink apply it from their next segment.
    Publish(ViewerPublishArgs),
    /// Let a third party open chosen segments, and nothing else: re-wrap their keys to the
    /// third party's device key, signed by the account (`decrypt --share` opens them).
    Share(ViewerShareArgs),
}

#[derive(Debug, Args)]
pub struct ViewerShareArgs {
    /// Viewer home directory (holding the account key; the camera must be pinned).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The third party's device public key (`devices/NAME.pub` of their `viewer init
    /// --device-only` home).
    #[arg(long, value_name = "RECIPIENT_PUB")]
    pub to: PathBuf,
    /// Where to write the share.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The segments to share (files or directories of `.cseg` files), of one stream.
    #[arg(value_name = "SEGMENT", required = true)]
    pub segments: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ViewerDevicesArgs {
    /// Viewer home directory.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ViewerEnrollArgs {
    /// Viewer home directory (holding the account key).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The device's name on the list (letters, digits, '-', '_', '.').
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The device's public key file (`devices/NAME.pub` in its home).
    #[arg(value_name = "DEVICE_PUB")]
    pub device: PathBuf,
}

#[derive(Debug, Args)]
pub struct ViewerRevokeArgs {
    /// Viewer home directory (holding the account key).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The device's name, as `viewer devices` lists it.
    #[arg(value_name = "DEVICE")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct ViewerPublishArgs {
    /// Viewer home directory (holding the account key).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The sink the cameras poll (`s3://...`, `http(s)://...` or `dir:PATH`).
    #[arg(long, value_name = "URL")]
    pub sink: String,
    /// Publish for this pinned camera only (id or name; repeat for several). Default: every
    /// pinned camera.
    #[arg(long, value_name = "CAMERA")]
    pub camera: Vec<String>,
    /// When the sink holds a newer list of this account (signed by another of its homes,
    /// say before a `viewer restore`), sign this home's list again above it and publish
    /// that, instead of refusing. Check the recipients it prints.
    #[arg(long)]
    pub supersede: bool,
    /// Seconds to wait for the sink to connect.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Seconds to wait for the sink at each read or write.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub io_timeout: f64,
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
    /// Make this device's recipient key classic X25519 instead of hybrid post-quantum X-Wing
    /// (X25519 + ML-KEM-768). Only for viewers that cannot open X-Wing stanzas yet.
    #[arg(long)]
    pub classic: bool,
    /// Create only this device's own key, no account: the account holder adds it with
    /// `viewer enroll`, and can later revoke it alone.
    #[arg(long)]
    pub device_only: bool,
    /// The device's name (with --device-only; default: `device-` and its key id).
    #[arg(long, value_name = "NAME", requires = "device_only")]
    pub name: Option<String>,
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
    /// Make this device's recipient key classic X25519 instead of hybrid post-quantum X-Wing
    /// (X25519 + ML-KEM-768). Only for viewers that cannot open X-Wing stanzas yet.
    #[arg(long)]
    pub classic: bool,
    /// This device's name on the recipient list (default: `device-` and its key id).
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
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
    /// Also write the setup code to this file (mode 0600), once the camera listens: for a
    /// script that runs `camera setup` in the background and `viewer pair` after it.
    #[arg(long, value_name = "FILE")]
    pub code_file: Option<PathBuf>,
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
    /// Settings file (TOML, docs/CONFIG.md): each key is one of these flags, without its
    /// dashes and with `_` for `-`. Flags given here win over the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Camera home directory (from `camseal camera init`, with a trusted recipient list).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Video source: `file:PATH` (Annex-B replay; a FIFO is read as a pipe), `stdin` or
    /// `file:-` (Annex-B from standard input, as it arrives), `soft[:WxH@FPS]` (software encoder),
    /// `rkmpp[:WxH@FPS]` (Rockchip MPP hardware encoder), `v4l2-m2m:/dev/videoN[:WxH@FPS]`
    /// (V4L2 hardware encoder) or `v4l2:/dev/videoN` (a camera that outputs H.264).
    #[arg(long, value_name = "SOURCE", default_value = "soft")]
    pub source: String,
    /// Codec: of a `file:` source (by default from the extension, else sniffed), of a pipe
    /// (by default sniffed from its first parameter set), or the one a
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
    #[arg(long, value_name = "BYTES", value_parser = numeric::int(1u64..=u64::MAX))]
    pub spool_max_bytes: Option<u64>,
    /// What a full spool does: `drop-oldest` (delete the oldest segments not yet uploaded)
    /// or `stop-recording` (open no new segment until there is room). Either way the loss
    /// is recorded as a signed gap.
    #[arg(long, value_name = "POLICY", default_value = "drop-oldest")]
    pub spool_policy: String,
    /// On exit, wait this long for the spool to drain before leaving the rest for the
    /// next start.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = numeric::seconds(0.0, false, numeric::MAX_WAIT_SECONDS))]
    pub upload_grace: f64,
    #[command(flatten)]
    pub upload: UploadOpts,
    /// Stop after this many seconds of video (default: a file's end; 10 s for `soft`).
    #[arg(long, value_name = "SECS", value_parser = numeric::seconds(0.0, true, numeric::MAX_RUN_SECONDS))]
    pub duration: Option<f64>,
    /// Pace the source at its frame rate instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
    /// Target segment length: a segment closes at the first keyframe after this.
    #[arg(long, value_name = "S", default_value_t = 4.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_SEGMENT_SECONDS))]
    pub segment_seconds: f64,
    /// Sign a checkpoint about this often (milliseconds of video): a segment cut off by a
    /// crash is recoverable up to its last checkpoint.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub checkpoint_ms: u64,
    /// Frame rate of a `file:` source when its SPS carries no timing information.
    #[arg(long, value_name = "FPS", value_parser = numeric::fps)]
    pub fps: Option<f64>,
    /// Stream number within this camera (main = 0, sub = 1, ...).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub stream: u32,
    /// Media cipher.
    #[arg(long, value_name = "SUITE", default_value = "aes-128-gcm")]
    pub suite: String,
    /// Largest plaintext per record; larger access units are split at NAL boundaries.
    #[arg(long, value_name = "BYTES", default_value_t = 65536, value_parser = numeric::int(1usize..=camseal::segment::MAX_RECORD_PLAINTEXT))]
    pub max_chunk: usize,
    /// Bitrate of the `soft` and hardware encoders in bits per second; `k` and `M` suffixes
    /// (decimal: 2M = 2000000, 1.5M, 800k) are accepted.
    #[arg(long, value_name = "BPS", default_value = "2000000", value_parser = parse_bitrate)]
    pub bitrate: u32,
    /// Seal worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = numeric::int(1usize..=numeric::MAX_THREADS))]
    pub workers: Option<usize>,
    /// What happens when sealing falls behind the encoder: `block` (the source waits,
    /// nothing is lost) or `drop-frames` (frames up to the next keyframe are dropped, counted,
    /// logged and recorded as a signed gap in the next segment).
    #[arg(long, value_name = "POLICY", default_value = "block", value_parser = parse_overload)]
    pub overload: Overload,
    /// Size padding of records: `off`, or `buckets` (each frame's sealed size is rounded up
    /// to one of four sizes per doubling, at least 256 bytes, so record sizes show less of
    /// the motion; costs up to 25 %, 5-12 % on typical streams).
    #[arg(long, value_name = "off|buckets", default_value = "off", value_parser = parse_padding)]
    pub padding: Padding,
    /// Which logs are written to standard error: a level (`error`, `warn`, `info`, `debug`,
    /// `trace`) or `tracing` filter directives (`warn,camseal::upload=debug`). `RUST_LOG`,
    /// when set, wins.
    #[arg(long, value_name = "FILTER", default_value = "info", value_parser = crate::logging::parse_filter)]
    pub log_level: String,
    /// Where to poll for new recipient lists (the `control/<camera id>/recipients` object
    /// that `viewer publish` uploads): a sink URL as for `--sink`, or `none`. Default: the
    /// first `--sink`. A list is applied from the next segment only if the pinned account
    /// signed it for this camera with a higher version.
    #[arg(long, value_name = "URL")]
    pub control: Option<String>,
    /// How often to poll the control channel.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
    pub control_interval: f64,
    /// Serve the live view on this address (`HOST:PORT`, port 0 picks one): a WebSocket that
    /// sends the sealed records as they are written, the same bytes as the segments, to
    /// enrolled viewers (`camseal live`). Off by default; `0.0.0.0` and `::` are refused:
    /// name the one interface to listen on.
    #[arg(long, value_name = "ADDR")]
    pub live: Option<String>,
}

/// How uploads behave (`run` and `upload`).
#[derive(Debug, Args, Clone)]
pub struct UploadOpts {
    /// Uploads in flight at once.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = numeric::int(1usize..=numeric::MAX_UPLOAD_CONCURRENCY))]
    pub upload_concurrency: usize,
    /// Cap on upload bandwidth, shared by all uploads (cameras share the home uplink).
    #[arg(long, value_name = "BYTES", value_parser = numeric::int(1u64..=u64::MAX))]
    pub upload_max_bytes_per_sec: Option<u64>,
    /// Longest wait for a connection.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
    pub connect_timeout: f64,
    /// Longest stall of one network read or write.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
    pub io_timeout: f64,
    /// First retry delay ceiling (exponential backoff with full jitter).
    #[arg(long, value_name = "SECS", default_value_t = 0.5, value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
    pub retry_base_delay: f64,
    /// Largest retry delay.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
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
    /// Upload what is pending, then exit 0 (non-zero on a permanent failure, or when
    /// `--deadline` passes with segments still pending).
    #[arg(long)]
    pub once: bool,
    /// With `--once`: give up after this many seconds (a sink that is down would otherwise
    /// be retried forever), exit non-zero and say what is still pending.
    #[arg(long, value_name = "S", default_value_t = 60.0, requires = "once")]
    pub deadline: f64,
    /// With `--once`: do not show progress on standard error (a bar on a terminal, else a line every few
    /// seconds and a last one).
    #[arg(long)]
    pub quiet: bool,
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
    /// Only footage recorded at or after TIME, by the camera's signed clock: RFC 3339
    /// (2026-12-06T01:00:00Z) or relative (-2h, -30m, -1d). A bare integer is a sequence
    /// number instead (as `--since-seq`).
    #[arg(long, value_name = "TIME|SEQ", allow_hyphen_values = true, value_parser = crate::timesel::seq_or_time_arg, conflicts_with = "since_seq")]
    pub since: Option<crate::timesel::SeqOrTime>,
    /// Only footage recorded at or before TIME (same forms as `--since`; a bare integer is
    /// a sequence number, as `--until-seq`).
    #[arg(long, value_name = "TIME|SEQ", allow_hyphen_values = true, value_parser = crate::timesel::seq_or_time_arg, conflicts_with = "until_seq")]
    pub until: Option<crate::timesel::SeqOrTime>,
    /// Only segments with this sequence number or a later one.
    #[arg(long, value_name = "SEQ")]
    pub since_seq: Option<u64>,
    /// Only segments with this sequence number or an earlier one.
    #[arg(long, value_name = "SEQ")]
    pub until_seq: Option<u64>,
    /// Longest wait for a connection.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
    pub connect_timeout: f64,
    /// Longest stall of one network read or write.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
    pub io_timeout: f64,
    /// Do not show progress on standard error (a bar on a terminal, else a line every few
    /// seconds and a last one).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Viewer home directory holding the keys and the pinned cameras.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// The live view: `ws://HOST:PORT` (a camera's `run --live`, or a relay).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Where the verified video goes (Annex-B).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this many verified frames.
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = numeric::seconds(0.0, true, numeric::MAX_WAIT_SECONDS))]
    pub seconds: Option<f64>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("recorded").args(["segments", "sink"]).multiple(false)))]
pub struct ViewArgs {
    /// Viewer home directory holding the keys and the pinned cameras.
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Where the page is served: `127.0.0.1:PORT` (port 0 picks a free one). Only a
    /// loopback address, unless `--allow-remote`.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Allow a `--listen` address that is not loopback (other machines could then reach
    /// the page, which hands out the viewer's keys to whoever has the printed URL).
    #[arg(long)]
    pub allow_remote: bool,
    /// A live view to relay to the page: `ws://HOST:PORT` (a camera's `run --live`, or a
    /// relay).
    #[arg(long, value_name = "URL")]
    pub live: Option<String>,
    /// A directory of recorded segment files for the timeline.
    #[arg(long, value_name = "DIR")]
    pub segments: Option<PathBuf>,
    /// A sink to list and fetch recorded segments from (as `camseal fetch --sink`).
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,
    /// The page's files (HTML, JavaScript, the WebAssembly core). Default:
    /// `<dir of camseal>/../share/camseal/web`, where scripts/build-web.sh puts them.
    #[arg(long, value_name = "DIR")]
    pub web_root: Option<PathBuf>,
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
    /// Output file: the Annex-B stream, or an MP4 file (`--format mp4`, or a name ending in
    /// `.mp4`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// What to write: `annexb` (the raw stream the camera encoded) or `mp4` (a file any
    /// player opens, with the frames' signed timestamps). Default: `mp4` when `--out` ends
    /// in `.mp4`, else `annexb`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,
    /// Salvage the valid prefix of a crash-truncated last segment (with a warning).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Write every segment that verifies even when others are missing, fail verification
    /// or break the chain, and report each gap (its segments and signed time span). Exits
    /// 0 only if the camera declared every gap (a crash, segments it recorded as lost),
    /// else 6.
    #[arg(long)]
    pub allow_gaps: bool,
    /// Only accept segments signed by this camera (a `camera.pub` file), pinned or not.
    /// Without it, the footage must come from a camera pinned with `viewer cameras add`.
    #[arg(long, value_name = "CAMERA_PUB")]
    pub camera: Option<PathBuf>,
    /// Decrypt a window that starts at this sequence number (by default the stream must
    /// start at its first segment).
    #[arg(long, value_name = "N")]
    pub from_seq: Option<u64>,
    /// Only the segments of this stream (a camera's main and sub streams are numbered from
    /// 0; a folder may hold several): the others are left out after their signatures are
    /// checked.
    #[arg(long, value_name = "N")]
    pub stream: Option<u32>,
    /// Only footage recorded at or after TIME, by the camera's signed clock: RFC 3339
    /// (2026-12-06T01:00:00Z) or relative (-2h, -30m, -1d). The window then starts at the
    /// first segment kept (as `--from-seq` would say).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = crate::timesel::time_arg)]
    pub since: Option<u64>,
    /// Only footage recorded at or before TIME (same forms as `--since`).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = crate::timesel::time_arg)]
    pub until: Option<u64>,
    /// Open the segments with this share (`viewer share`) instead of the home's own
    /// stanzas: only the segments it names open.
    #[arg(long, value_name = "FILE")]
    pub share: Option<PathBuf>,
    /// Segment files, or directories of `.cseg` files, in stream order.
    #[arg(value_name = "SEGMENT_OR_DIR", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Do not show progress on standard error (a bar on a terminal, else a line every few
    /// seconds and a last one).
    #[arg(long)]
    pub quiet: bool,
}

/// `decrypt --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The Annex-B byte stream, as the encoder produced it.
    Annexb,
    /// An MP4 file (`avc1`/`hvc1`).
    Mp4,
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
    /// Only the segments of this stream (a camera's main and sub streams are numbered from
    /// 0; a folder may hold several): the others are left out after their signatures are
    /// checked.
    #[arg(long, value_name = "N")]
    pub stream: Option<u32>,
    /// Only footage recorded at or after TIME, by the camera's signed clock: RFC 3339
    /// (2026-12-06T01:00:00Z) or relative (-2h, -30m, -1d). The window then starts at the
    /// first segment kept (as `--from-seq` would say).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = crate::timesel::time_arg)]
    pub since: Option<u64>,
    /// Only footage recorded at or before TIME (same forms as `--since`).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = crate::timesel::time_arg)]
    pub until: Option<u64>,
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
    /// Do not show progress on standard error (a bar on a terminal, else a line every few
    /// seconds and a last one).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print one JSON array (one object per camera and stream) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Segment files, folders of them, or a `dir:PATH` sink.
    #[arg(value_name = "SEGMENT_OR_DIR_OR_SINK", required = true)]
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
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_DEMO_SECONDS))]
    pub duration: f64,
    /// Work here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the keys, segments and decrypted video afterwards (by default the demo removes
    /// what it made: it holds private keys and plaintext).
    #[arg(long)]
    pub keep: bool,
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
    /// Video source: `file:PATH` (looped until --duration, pts increasing), `stdin` (Annex-B
    /// from standard input, one stream, until it ends or --duration) or `soft[:WxH@FPS]`.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Streams sealed at once, each from its own copy of the source, on one worker pool.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = numeric::int(1usize..=numeric::MAX_BENCH_STREAMS))]
    pub streams: usize,
    /// Seal worker threads (default: one per core).
    #[arg(long, value_name = "W", value_parser = numeric::int(1usize..=numeric::MAX_THREADS))]
    pub workers: Option<usize>,
    /// Pace each source at its frame rate instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
    /// Seconds of video per stream.
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_DEMO_SECONDS))]
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
    #[arg(long, value_name = "BYTES", default_value_t = 65536, value_parser = numeric::int(1usize..=camseal::segment::MAX_RECORD_PLAINTEXT))]
    pub max_chunk: usize,
    /// Target segment length in seconds.
    #[arg(long, value_name = "S", default_value_t = 4.0, value_parser = numeric::seconds(0.0, true, numeric::MAX_SEGMENT_SECONDS))]
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
    #[arg(long, value_name = "S", default_value_t = 0.2, value_parser = numeric::seconds(0.0, true, numeric::MAX_KERNEL_BENCH_SECONDS))]
    pub seconds: f64,
    /// Seal in place (one buffer, as ring's API does) instead of `seal_to`, the pipeline's
    /// out-of-place call.
    #[arg(long)]
    pub in_place: bool,
}

/// `--padding`: the library's own names.
fn parse_padding(s: &str) -> Result<Padding, String> {
    s.parse()
}

/// `--overload`: the engine's own names, so the CLI and the library cannot drift apart.
fn parse_overload(s: &str) -> Result<Overload, String> {
    s.parse()
}

/// A bit rate: digits (a decimal fraction allowed before a suffix), then optionally `k`/`K`
/// (10^3) or `m`/`M` (10^6), as encoder tools write it.
pub fn parse_bitrate(text: &str) -> Result<u32, String> {
    let (number, scale) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1_000u64),
        Some((i, 'm' | 'M')) => (&text[..i], 1_000_000u64),
        _ => (text, 1u64),
    };
    let bad = || format!("{text:?} is not a bit rate: write it like 2000000, 2M, 1.5M or 800k");
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (scale == 1 && !fraction.is_empty()) {
        return Err(bad());
    }
    // Exact integer arithmetic: 1.5M is 1500000, never 1499999.
    let mut value: u64 = whole.parse::<u64>().map_err(|_| bad())?;
    value = value.checked_mul(scale).ok_or_else(bad)?;
    let mut unit = scale;
    for digit in fraction.bytes() {
        unit /= 10;
        if unit == 0 {
            return Err(bad());
        }
        value = value
            .checked_add(u64::from(digit - b'0') * unit)
            .ok_or_else(bad)?;
    }
    if value == 0 {
        return Err(format!(
            "{text:?}: a bit rate must be at least 1 bit per second"
        ));
    }
    u32::try_from(value).map_err(|_| format!("{text:?}: at most {} bits per second", u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::parse_bitrate;

    #[test]
    fn bitrates_take_decimal_k_and_m_suffixes() {
        for (text, bps) in [
            ("2000000", 2_000_000),
            ("2M", 2_000_000),
            ("2m", 2_000_000),
            ("1.5M", 1_500_000),
            ("800k", 800_000),
            ("800K", 800_000),
            ("0.5k", 500),
        ] {
            assert_eq!(parse_bitrate(text), Ok(bps), "{text}");
        }
        for bad in [
            "", "M", "2G", "-1", "1.5", "1..5M", "5000M", "0.0001k", "2 M",
        ] {
            assert!(parse_bitrate(bad).is_err(), "{bad} accepted");
        }
    }
}
