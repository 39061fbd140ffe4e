//! Helpers for the end-to-end tests that drive the real `camseal` binary: a viewer and camera
//! set up through the CLI, the committed stream fixtures, and segment inspection through the
//! library.
//!
//! Each `viewer init` runs Argon2id at full cost, so a test sets up once and shares it.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufReader;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use camseal::home::ViewerHome;
use camseal::keys::{OpeningKeys, RecipientSecret};
use camseal::nal::Codec;
use camseal::seal::SframeHeader;
use camseal::segment::read::{Opener, SegmentReader};
use camseal::segment::{Header, Item, RecordFlags, SegmentEnd};
use tempfile::TempDir;
use zeroize::Zeroizing;

/// Runs `camseal` with `args`, no standard input, and collects its output.
pub fn camseal(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

/// A `camseal` command with `args`, ready to spawn.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_camseal"));
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    c
}

/// `run --home HOME --source SOURCE --out OUT`: the start of a `run` argument list, to extend
/// with the flags a test needs.
pub fn run_args<'a>(home: &'a Path, source: &'a str, out: &'a Path) -> Vec<&'a str> {
    vec![
        "run",
        "--home",
        s(home),
        "--source",
        source,
        "--out",
        s(out),
    ]
}

/// A path as `&str` (temporary directories are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Standard output and error as text.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that nothing panicked and that no backtrace was offered.
pub fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint:\n{stderr}"
    );
}

/// Asserts success; returns (stdout, stderr).
pub fn succeeded(out: &Output, what: &str) -> (String, String) {
    let (stdout, stderr) = texts(out);
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstderr: {stderr}\nstdout: {stdout}",
        out.status
    );
    assert_no_panic(&stderr);
    (stdout, stderr)
}

/// Asserts a failure with exit code `code` that ends with an `error: ` line, optionally
/// followed by one `hint: ` line (progress lines may come before). Returns the error line.
pub fn failed(out: &Output, code: i32, what: &str) -> String {
    let (stdout, stderr) = texts(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: wrong exit status\nstderr: {stderr}\nstdout: {stdout}"
    );
    assert_no_panic(&stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{what}: no `error: ` line in:\n{stderr}"));
    let rest = &lines[at + 1..];
    assert!(
        rest.is_empty() || (rest.len() == 1 && rest[0].starts_with("hint: ")),
        "{what}: unexpected lines after the error:\n{stderr}"
    );
    lines[at].to_owned()
}

/// Asserts a failure whose whole standard error is one `error: ` line, optionally followed by
/// one `hint: ` line. Returns the error line.
pub fn one_line_error(out: &Output, what: &str) -> String {
    let (stdout, stderr) = texts(out);
    assert!(
        !out.status.success(),
        "{what}: succeeded\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(out.status.code().is_some(), "{what}: killed by a signal");
    assert_no_panic(&stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        matches!(lines.len(), 1 | 2),
        "{what}: not a one-line error:\n{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{what}:\n{stderr}");
    assert!(
        lines[0].len() > "error: ".len() + 10,
        "{what}: empty message"
    );
    if let Some(hint) = lines.get(1) {
        assert!(hint.starts_with("hint: "), "{what}:\n{stderr}");
    }
    lines[0].to_owned()
}

/// A viewer with a signed recipient list, and a camera that trusts it and that the viewer
/// pins (so `decrypt` accepts its footage without `--camera`).
pub struct Setup {
    /// Holds everything; removed on drop.
    pub dir: TempDir,
    /// Viewer home.
    pub viewer: PathBuf,
    /// Camera home.
    pub camera: PathBuf,
    /// The camera's public key file.
    pub camera_pub: PathBuf,
    /// The signed recipient list.
    pub list: PathBuf,
}

impl Setup {
    /// `viewer init`, `viewer recipients`, `camera init`, `camera trust`, `viewer cameras
    /// add`.
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let viewer = dir.path().join("viewer");
        let camera = dir.path().join("camera");
        let list = dir.path().join("recipients.list");
        succeeded(
            &camseal(&["viewer", "init", "--home", s(&viewer)]),
            "viewer init",
        );
        succeeded(
            &camseal(&[
                "viewer",
                "recipients",
                "--home",
                s(&viewer),
                "--out",
                s(&list),
            ]),
            "viewer recipients",
        );
        succeeded(
            &camseal(&["camera", "init", "--home", s(&camera)]),
            "camera init",
        );
        succeeded(
            &camseal(&["camera", "trust", "--home", s(&camera), s(&list)]),
            "camera trust",
        );
        let camera_pub = camera.join("camera.pub");
        assert!(camera_pub.is_file());
        pin_camera(&viewer, &camera_pub);
        Setup {
            dir,
            viewer,
            camera,
            camera_pub,
            list,
        }
    }

    /// A path inside the set-up's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `camseal run --home CAMERA --source SOURCE --out OUT EXTRA...`.
    pub fn run(&self, source: &str, out: &Path, extra: &[&str]) -> Output {
        let mut args = run_args(&self.camera, source, out);
        args.extend_from_slice(extra);
        camseal(&args)
    }

    /// Like [`Setup::run`], asserting success; returns the segment files in `out`.
    pub fn seal(&self, source: &str, out: &Path, extra: &[&str]) -> Vec<PathBuf> {
        succeeded(&self.run(source, out, extra), &format!("run {source}"));
        segments(out)
    }

    /// `camseal decrypt --home VIEWER --out OUT EXTRA... INPUTS...`.
    pub fn decrypt(&self, out: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
        let mut args = vec!["decrypt", "--home", s(&self.viewer), "--out", s(out)];
        args.extend_from_slice(extra);
        args.extend(inputs.iter().map(|p| s(p)));
        camseal(&args)
    }

    /// Decrypts `inputs`, asserting success; returns the plaintext and standard error.
    pub fn decrypt_ok(&self, inputs: &[&Path], extra: &[&str]) -> (Vec<u8>, String) {
        let out_dir = tempfile::tempdir_in(self.dir.path()).unwrap();
        let out = out_dir.path().join("out.264");
        let (_, stderr) = succeeded(&self.decrypt(&out, inputs, extra), "decrypt");
        let bytes = fs::read(&out).unwrap();
        assert_eq!(
            dir_names(out_dir.path()),
            vec!["out.264".to_owned()],
            "decrypt left other files behind"
        );
        (bytes, stderr)
    }

    /// `camseal verify --camera CAMERA_PUB INPUTS...`.
    pub fn verify(&self, inputs: &[&Path]) -> Output {
        let mut args = vec!["verify", "--camera", s(&self.camera_pub)];
        args.extend(inputs.iter().map(|p| s(p)));
        camseal(&args)
    }

    /// The viewer account's two recipient secrets (X-Wing, then X25519), to open segments
    /// through the library: `viewer init` makes the account hybrid, so `run` seals to its
    /// X-Wing key.
    pub fn viewer_secrets(&self) -> [RecipientSecret; 2] {
        ViewerHome::open(&self.viewer)
            .unwrap()
            .account()
            .unwrap()
            .recipient_secrets()
    }

    /// The viewer account's X25519 secret: segments sealed by hand to its X25519 public key
    /// open with it (and `decrypt` tries it too).
    pub fn viewer_secret(&self) -> Zeroizing<[u8; 32]> {
        ViewerHome::open(&self.viewer)
            .unwrap()
            .account()
            .unwrap()
            .x25519_secret()
    }
}

/// `camseal viewer cameras add --home VIEWER CAMERA_PUB`, asserting success: `decrypt` then
/// accepts that camera's footage without `--camera`.
pub fn pin_camera(viewer: &Path, camera_pub: &Path) {
    succeeded(
        &camseal(&[
            "viewer",
            "cameras",
            "add",
            "--home",
            s(viewer),
            s(camera_pub),
        ]),
        "viewer cameras add",
    );
}

/// A committed stream fixture, as listed in `tests/data/streams/MANIFEST`.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// File name.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// Codec per ffprobe.
    pub codec: Codec,
    /// Pictures per ffprobe.
    pub frames: u32,
    /// Keyframes per ffprobe.
    pub keyframes: u32,
    /// Frame rate (numerator, denominator).
    pub fps: (u32, u32),
}

impl Fixture {
    /// `file:PATH` for `--source`.
    pub fn source(&self) -> String {
        format!("file:{}", self.path.display())
    }

    /// The stream's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        fs::read(&self.path).unwrap()
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        f64::from(self.frames) * f64::from(self.fps.1) / f64::from(self.fps.0)
    }
}

/// Every fixture in the MANIFEST.
pub fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/streams");
    let manifest = fs::read_to_string(dir.join("MANIFEST")).unwrap();
    let list: Vec<Fixture> = manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "bad MANIFEST line {l:?}");
            let (num, den) = f[4].split_once('/').unwrap();
            Fixture {
                name: f[0].to_owned(),
                path: dir.join(f[0]),
                codec: f[1].parse().unwrap(),
                frames: f[2].parse().unwrap(),
                keyframes: f[3].parse().unwrap(),
                fps: (num.parse().unwrap(), den.parse().unwrap()),
            }
        })
        .collect();
    assert!(list.len() >= 5, "MANIFEST lists too few fixtures");
    list
}

/// The fixture whose name starts with `prefix`.
pub fn fixture(prefix: &str) -> Fixture {
    let mut found: Vec<Fixture> = fixtures()
        .into_iter()
        .filter(|f| f.name.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "fixture {prefix}");
    found.remove(0)
}

/// The `.cseg` files in `dir`, sorted by name (which sorts by sequence number).
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cseg"))
        .collect();
    v.sort();
    v
}

/// The names of every entry in `dir`, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Copies the regular files of `from` (recursively) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Where the parts of an encoded segment lie.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The header.
    pub header: Header,
    /// Header bytes: `0..header_len`.
    pub header_len: usize,
    /// Each record, final one included.
    pub records: Vec<Range<usize>>,
    /// Each record's flags.
    pub flags: Vec<RecordFlags>,
    /// Each record's pts.
    pub pts: Vec<u64>,
    /// Each record's plaintext length (from its size and SFrame header).
    pub plain_len: Vec<usize>,
    /// Each signed checkpoint, and how many records it covers.
    pub checkpoints: Vec<(Range<usize>, u64)>,
    /// The trailer.
    pub trailer: Range<usize>,
}

impl Layout {
    /// Reads the layout of a well-formed segment.
    pub fn of(bytes: &[u8]) -> Layout {
        let mut reader = SegmentReader::new(bytes).unwrap();
        let header = reader.header().clone();
        let header_len = reader.offset() as usize;
        let mut records = Vec::new();
        let mut flags = Vec::new();
        let mut pts = Vec::new();
        let mut plain_len = Vec::new();
        let mut checkpoints = Vec::new();
        loop {
            let start = reader.offset() as usize;
            match reader.next_item().unwrap() {
                Item::Checkpoint(c) => {
                    checkpoints.push((start..reader.offset() as usize, c.record_count));
                }
                Item::Record(r) => {
                    flags.push(r.flags);
                    pts.push(r.pts);
                    let (_, sframe_header_len) = SframeHeader::parse(r.sframe).unwrap();
                    plain_len.push(r.sframe.len() - sframe_header_len - TAG_LEN);
                    let end = reader.offset() as usize;
                    records.push(start..end);
                }
                Item::Trailer(_) => {
                    assert_eq!(reader.offset() as usize, bytes.len());
                    return Layout {
                        header,
                        header_len,
                        records,
                        flags,
                        pts,
                        plain_len,
                        checkpoints,
                        trailer: start..bytes.len(),
                    };
                }
            }
        }
    }

    /// Reads the layout of a segment file.
    pub fn of_file(path: &Path) -> Layout {
        Layout::of(&fs::read(path).unwrap())
    }
}

/// Opens a whole segment with `secret` and returns its end summary.
pub fn segment_end<K: OpeningKeys + ?Sized>(path: &Path, secret: &K) -> SegmentEnd {
    let file = fs::File::open(path).unwrap();
    let mut reader = SegmentReader::new(BufReader::new(file)).unwrap();
    let mut opener = Opener::with_keys(reader.header(), &secret.opening_keys()).unwrap();
    let mut sink = Vec::new();
    loop {
        match reader.next_item().unwrap() {
            Item::Record(r) => {
                sink.clear();
                opener.open(&r, &mut sink).unwrap();
            }
            Item::Checkpoint(c) => {
                opener.checkpoint(&c).unwrap();
            }
            Item::Trailer(t) => return opener.finish(&t).unwrap().end.unwrap(),
        }
    }
}

/// Every 16-byte window of every file in `paths`.
pub fn windows_of(paths: &[PathBuf]) -> WindowSet {
    let mut set = WindowSet::default();
    for p in paths {
        let bytes = fs::read(p).unwrap();
        set.reserve(bytes.len());
        for w in bytes.windows(16) {
            set.insert(window(w));
        }
    }
    set
}

/// How many 16-byte windows of the NAL payloads of `stream` are in `windows` (and how many
/// windows were checked).
pub fn leaked_windows(stream: &[u8], windows: &WindowSet) -> (usize, usize) {
    let mut leaked = 0;
    let mut checked = 0;
    for nal in camseal::nal::nal_units(stream) {
        for w in nal.payload.windows(16) {
            checked += 1;
            if windows.contains(&window(w)) {
                leaked += 1;
            }
        }
    }
    (leaked, checked)
}

/// A set of 16-byte windows. The cheap hash keeps the debug-build tests fast; it only has to
/// spread ciphertext and video windows, not resist an adversary.
pub type WindowSet = HashSet<u128, BuildHasherDefault<FoldHasher>>;

/// Folds a `u128` into a `u64` with one multiply.
#[derive(Default)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u128(&mut self, x: u128) {
        let folded = (x as u64) ^ ((x >> 64) as u64).rotate_left(29);
        self.0 = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (folded >> 31);
    }
}

fn window(w: &[u8]) -> u128 {
    u128::from_le_bytes(w.try_into().unwrap())
}

/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// The local S3 server `scripts/test.sh` starts (`scripts/s3-server.sh`), as the
/// `CAMSEAL_TEST_S3_*` variables name it.
pub struct TestS3 {
    pub endpoint: String,
    pub bucket: String,
    access: String,
    secret: String,
}

impl TestS3 {
    /// The server, or `None` (after saying why on stderr) when none is set. Under `CI=true` a
    /// missing server fails the test instead: CI must not skip it silently.
    pub fn from_env(test: &str) -> Option<TestS3> {
        let Ok(endpoint) = std::env::var("CAMSEAL_TEST_S3_ENDPOINT") else {
            let why = "CAMSEAL_TEST_S3_ENDPOINT is not set (scripts/test.sh starts a local S3 server and sets it)";
            let ci = std::env::var("CI")
                .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
            assert!(!ci, "CI is set, so {test} may not skip: {why}");
            eprintln!("SKIPPED {test}: {why}");
            return None;
        };
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        Some(TestS3 {
            endpoint,
            bucket: var("CAMSEAL_TEST_S3_BUCKET", "camseal-test"),
            access: var("CAMSEAL_TEST_S3_ACCESS_KEY", "camseal-test"),
            secret: var("CAMSEAL_TEST_S3_SECRET_KEY", "camseal-test-secret"),
        })
    }

    /// A fresh prefix, `NAME-PID-NANOS`, so tests sharing the server never see each other's
    /// objects.
    pub fn fresh_prefix(name: &str) -> String {
        format!(
            "{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        )
    }

    /// The `--sink` URL of `prefix` in the bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint={}&region=us-east-1",
            self.bucket, self.endpoint
        )
    }

    /// Gives `command` the server's credentials, and nothing of the user's own AWS set-up.
    pub fn credentials<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
    }
}
