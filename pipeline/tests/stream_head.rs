//! The camera-signed stream head, through the real binary: `run` writes it next to the
//! segments, `verify` checks it (withheld newest segment: exit 6; forged head: exit 3; an
//! old head is reported, not failed), and `upload`/`fetch` carry it through a `dir:` sink.

mod cli;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use camseal::keys::CameraPublic;
use camseal::segment::camera_id;
use camseal::segment::head::{self, StreamHead};
use cli::{camseal, failed, s, succeeded as ok, texts};

#[test]
fn run_writes_a_head_and_verify_catches_a_withheld_segment() {
    let setup = Setup::new("run");
    let out = setup.fresh("out");
    setup.record(&["--out", s(&out)], "3");
    let segments = segments_of(&out);
    assert!(segments.len() >= 3, "{segments:?}");
    let head_path = out.join(head::file_name(&setup.camera_id, 0));
    let head = read_head(&head_path);
    head.verify().expect("the camera's head verifies");
    assert_eq!(head.camera_key, setup.camera_key);
    assert_eq!(head.stream_id, 0);
    assert_eq!(head.seq, newest_seq(&segments));
    assert!(
        head.end_of_stream,
        "the source ended: the last segment ends the stream"
    );
    assert!(head.wallclock_ms > 0);
    let dir_names = names(&out);
    assert!(
        !dir_names.iter().any(|n| n.ends_with(".part")),
        "a temporary file was left: {dir_names:?}"
    );

    // A directory input's head is picked up on its own.
    let (stdout, _) = ok(&setup.verify(&[&out], &[]), "verify the recording");
    let line = head_line(&stdout);
    assert!(line.contains(&format!("seq {}", head.seq)), "{line}");
    assert!(
        line.contains("OK: names the newest given segment"),
        "{line}"
    );
    assert!(line.contains("ago by the camera's clock"), "{line}");

    let (verified, doc) = setup.verify_json(&[&out], &[]);
    ok(&verified, "verify --json with the head");
    assert_eq!(doc["head"]["seq"], head.seq);
    assert_eq!(doc["head"]["result"], "ok");
    let age = doc["head"]["age_seconds"].as_f64().expect("a known age");
    assert!((-5.0..600.0).contains(&age), "age {age}");
    assert_eq!(doc["exit_code"], 0);

    // The cloud withholds the newest segment: the chain that is left is whole...
    let short = setup.fresh("short");
    for seg in &segments[..segments.len() - 1] {
        fs::copy(seg, short.join(seg.file_name().unwrap())).unwrap();
    }
    ok(&setup.verify(&[&short], &[]), "verify without a head");
    // ...but the head says there is more.
    let withheld = setup.verify(&[&short], &["--head", s(&head_path)]);
    let error = failed(&withheld, 6, "verify --head without the newest segment");
    let expected = format!(
        "the stream head says segment {} exists; the newest given is {}",
        head.seq,
        head.seq - 1
    );
    assert!(error.contains(&expected), "{error}");
    let (stdout, _) = texts(&withheld);
    assert!(head_line(&stdout).contains("FAILED"), "{stdout}");
    // The same head found in the directory.
    fs::copy(&head_path, short.join(head_path.file_name().unwrap())).unwrap();
    let (withheld, doc) = setup.verify_json(&[&short], &[]);
    failed(
        &withheld,
        6,
        "verify a directory whose head names a missing segment",
    );
    assert_eq!(doc["head"]["seq"], head.seq);
    assert_eq!(doc["exit_code"], 6);
    assert!(
        doc["head"]["result"]
            .as_str()
            .is_some_and(|r| r.contains(&expected)),
        "{doc}"
    );

    // A head whose signed bytes were changed is refused as tampered, wherever the change is.
    let bytes = fs::read(&head_path).unwrap();
    for (at, what) in [
        (6, "camera key"),
        (45, "seq"),
        (60, "header hash"),
        (85, "record count"),
        (125, "wall clock"),
        (StreamHead::LEN - 1, "signature"),
    ] {
        let mut forged = bytes.clone();
        forged[at] ^= 0x01;
        let path = setup.fresh("forged").join("forged.head");
        fs::write(&path, &forged).unwrap();
        let out = setup.verify(&[&out], &["--head", s(&path)]);
        failed(&out, 3, &format!("verify with a head whose {what} changed"));
    }
    // Nothing a forged head says is reported.
    let forged = setup.fresh("forged").join("forged.head");
    let mut bytes_forged = bytes.clone();
    bytes_forged[45] ^= 0x01;
    fs::write(&forged, &bytes_forged).unwrap();
    let (out_forged, doc) = setup.verify_json(&[&out], &["--head", s(&forged)]);
    failed(&out_forged, 3, "verify --json with a forged head");
    assert!(doc["head"]["seq"].is_null(), "{doc}");
    assert_eq!(doc["exit_code"], 3);
    assert!(
        !texts(&out_forged).0.contains("head: seq"),
        "{}",
        texts(&out_forged).0
    );
    // Another camera's head, however genuine, is not this camera's.
    let other = Setup::new("other");
    let other_out = other.fresh("out");
    other.record(&["--out", s(&other_out)], "1");
    let other_head = other_out.join(head::file_name(&other.camera_id, 0));
    let out_other = setup.verify(&[&out], &["--head", s(&other_head)]);
    let error = failed(&out_other, 7, "verify with another camera's head");
    assert!(error.contains("wrong camera"), "{error}");
    // A file that is not a head is malformed.
    let out_not_head = setup.verify(&[&out], &["--head", s(&segments[0])]);
    failed(&out_not_head, 8, "verify with a segment as the head");

    // A second run continues the stream; the first run's head is now behind: reported (only
    // its age tells that it is stale), not failed.
    let old_head = setup.fresh("old").join("old.head");
    fs::copy(&head_path, &old_head).unwrap();
    setup.record(&["--out", s(&out)], "1");
    let new_head = read_head(&head_path);
    assert!(new_head.seq > head.seq);
    assert_eq!(new_head.seq, newest_seq(&segments_of(&out)));
    let (stdout, _) = ok(
        &setup.verify(&[&out], &["--head", s(&old_head)]),
        "verify with an old head",
    );
    assert!(head_line(&stdout).contains("BEHIND"), "{stdout}");
    ok(&setup.verify(&[&out], &[]), "verify with the new head");
}

#[test]
fn upload_to_a_dir_sink_carries_the_head_and_fetch_brings_it_back() {
    let setup = Setup::new("upload");
    let spool = setup.fresh("spool");
    setup.record(&["--spool", s(&spool)], "2");
    let name = head::file_name(&setup.camera_id, 0);
    let spooled = fs::read(spool.join(&name)).expect("the spool holds the head");
    let head = StreamHead::parse(&spooled).unwrap();
    head.verify().unwrap();

    let cloud = setup.fresh("cloud");
    let sink = format!("dir:{}", s(&cloud));
    ok(
        &camseal(&["upload", "--spool", s(&spool), "--sink", &sink, "--once"]),
        "upload --once",
    );
    assert_eq!(fs::read(cloud.join(&name)).unwrap(), spooled);
    assert_eq!(newest_seq(&segments_of(&cloud)), head.seq);

    let fetched = setup.fresh("fetched");
    let (_, stderr) = ok(
        &camseal(&["fetch", "--sink", &sink, "--out", s(&fetched)]),
        "fetch",
    );
    assert!(stderr.contains("fetched the stream head"), "{stderr}");
    assert_eq!(fs::read(fetched.join(&name)).unwrap(), spooled);
    let (stdout, _) = ok(&setup.verify(&[&fetched], &[]), "verify what was fetched");
    assert!(head_line(&stdout).contains("OK"), "{stdout}");
}

#[test]
fn run_with_a_sink_uploads_the_last_head_before_it_exits() {
    let setup = Setup::new("live");
    let spool = setup.fresh("spool");
    let cloud = setup.fresh("cloud");
    let sink = format!("dir:{}", s(&cloud));
    setup.record(
        &[
            "--spool",
            s(&spool),
            "--sink",
            &sink,
            "--upload-grace",
            "30",
        ],
        "2",
    );
    let name = head::file_name(&setup.camera_id, 0);
    let uploaded = read_head(&cloud.join(&name));
    assert_eq!(uploaded.seq, newest_seq(&segments_of(&cloud)));
    assert!(uploaded.end_of_stream);
    assert_eq!(
        fs::read(cloud.join(&name)).unwrap(),
        fs::read(spool.join(&name)).unwrap()
    );
    ok(&setup.verify(&[&cloud], &[]), "verify the live upload");
}

/// A viewer with a signed recipient list, shared by the tests (each `viewer init` runs
/// Argon2id at full cost). Kept under the target's temporary directory.
struct Viewer {
    root: PathBuf,
    list: PathBuf,
}

fn viewer() -> &'static Viewer {
    static VIEWER: OnceLock<Viewer> = OnceLock::new();
    VIEWER.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("stream-head-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let home = root.join("viewer");
        let list = root.join("recipients.list");
        ok(
            &camseal(&["viewer", "init", "--home", s(&home)]),
            "viewer init",
        );
        ok(
            &camseal(&[
                "viewer",
                "recipients",
                "--home",
                s(&home),
                "--out",
                s(&list),
            ]),
            "viewer recipients",
        );
        Viewer { root, list }
    })
}

/// A camera of its own for one test (its chain starts at segment 0), trusting the viewer.
struct Setup {
    dir: PathBuf,
    camera: PathBuf,
    camera_pub: PathBuf,
    camera_key: [u8; 32],
    camera_id: String,
}

impl Setup {
    fn new(test: &str) -> Setup {
        let viewer = viewer();
        let dir = tempfile::Builder::new()
            .prefix(test)
            .tempdir_in(&viewer.root)
            .unwrap()
            .keep();
        let camera = dir.join("camera");
        ok(
            &camseal(&["camera", "init", "--home", s(&camera)]),
            "camera init",
        );
        ok(
            &camseal(&["camera", "trust", "--home", s(&camera), s(&viewer.list)]),
            "camera trust",
        );
        let camera_pub = camera.join("camera.pub");
        let text = fs::read_to_string(&camera_pub).unwrap();
        let camera_key = CameraPublic::from_text(&text).unwrap().ed25519;
        Setup {
            dir,
            camera,
            camera_pub,
            camera_id: camera_id(&camera_key),
            camera_key,
        }
    }

    /// A new, empty directory.
    fn fresh(&self, name: &str) -> PathBuf {
        tempfile::Builder::new()
            .prefix(name)
            .tempdir_in(&self.dir)
            .unwrap()
            .keep()
    }

    /// Seals `seconds` of the soft source in half-second segments with `where_to`
    /// (`--out DIR`, `--spool DIR`, ...).
    fn record(&self, where_to: &[&str], seconds: &str) {
        let mut args = vec![
            "run",
            "--home",
            s(&self.camera),
            "--source",
            "soft",
            "--duration",
            seconds,
            "--segment-seconds",
            "0.5",
        ];
        args.extend_from_slice(where_to);
        ok(&camseal(&args), "run");
    }

    /// `camseal verify --camera CAMERA_PUB EXTRA... INPUTS...`.
    fn verify(&self, inputs: &[&Path], extra: &[&str]) -> Output {
        let mut args = vec!["verify", "--camera", s(&self.camera_pub)];
        args.extend_from_slice(extra);
        args.extend(inputs.iter().map(|p| s(p)));
        camseal(&args)
    }

    /// `verify ... --json FILE`: the exit status and the JSON verdict.
    fn verify_json(&self, inputs: &[&Path], extra: &[&str]) -> (Output, serde_json::Value) {
        let path = self.fresh("json").join("verdict.json");
        let mut all = vec!["--json", s(&path)];
        all.extend_from_slice(extra);
        let out = self.verify(inputs, &all);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("no verdict ({e})"));
        let doc = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
        (out, doc)
    }
}

/// The `head: ...` line of `verify`'s report.
fn head_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("head: "))
        .unwrap_or_else(|| panic!("no head line in:\n{stdout}"))
}

fn read_head(path: &Path) -> StreamHead {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    StreamHead::parse(&bytes).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `.cseg` files in `dir`, sorted.
fn segments_of(dir: &Path) -> Vec<PathBuf> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".cseg"))
        .map(|n| dir.join(n))
        .collect()
}

/// The sequence number in the newest segment's name (`...-<seq, 12 digits>.cseg`).
fn newest_seq(segments: &[PathBuf]) -> u64 {
    let last = segments.last().expect("segments");
    let name = last.file_name().unwrap().to_str().unwrap();
    let seq = name
        .strip_suffix(".cseg")
        .unwrap()
        .rsplit('-')
        .next()
        .unwrap();
    seq.parse().unwrap()
}
