//! Format v2's promises attacked as an outsider would, through the real binary: forgeries
//! built from public data only (`camera.pub`, the recipients' public keys, segment files as
//! a cloud holds them), and one built by a viewer who holds the segment key. None of them
//! may end with exit 0, and no forged byte may reach the output.
//!
//! Exit codes: 3 tampered, 4 truncated, 6 chain broken, 7 wrong camera.

mod cli;
#[path = "common/params.rs"]
mod params;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use camseal::seal::SframeKey;
use camseal::segment::read::{hpke_open, hpke_open_xwing};
use camseal::segment::write::{CheckpointPolicy, Randomness, SegmentParams, SegmentWriter};
use camseal::segment::{
    CloseReason, Gap, GapReason, Header, Parsed, RecordFlags, SegmentEnd, hpke_info,
    record_metadata,
};
use cli::{Layout, Setup, camseal, dir_names, s, segments, succeeded, texts};
use params::{segment_params, x25519_recipient};

const TAMPERED: i32 = 3;
const TRUNCATED: i32 = 4;
const CHAIN_BROKEN: i32 = 6;
const WRONG_CAMERA: i32 = 7;

/// A stream of at least `n` one-second segments from the soft encoder.
fn stream(setup: &Setup, name: &str, n: usize) -> (PathBuf, Vec<PathBuf>) {
    let out = setup.path(name);
    let duration = (n + 1).to_string();
    let segs = setup.seal(
        "soft:160x120@10",
        &out,
        &["--duration", &duration, "--segment-seconds", "1"],
    );
    assert!(segs.len() >= n, "only {} segments", segs.len());
    (out, segs)
}

fn header_of(path: &Path) -> (Header, usize) {
    let bytes = fs::read(path).unwrap();
    match Header::parse(&bytes).unwrap() {
        Parsed::Complete(h, used) => (h, used),
        Parsed::Needed(_) => panic!("no whole header in {}", path.display()),
    }
}

/// The viewer's X25519 public key: public data (it is on the signed recipient list).
fn viewer_public(setup: &Setup) -> [u8; 32] {
    let secret = setup.viewer_secret();
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

/// Copies `segs` (by index) into a new directory.
fn case(setup: &Setup, name: &str, segs: &[PathBuf], keep: impl Fn(usize) -> bool) -> PathBuf {
    let dir = setup.path(name);
    fs::create_dir_all(&dir).unwrap();
    for (i, p) in segs.iter().enumerate() {
        if keep(i) {
            fs::copy(p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn verify_code(setup: &Setup, inputs: &[&Path], extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["verify", "--camera", s(&setup.camera_pub)];
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(|p| s(p)));
    let out = camseal(&args);
    let (stdout, stderr) = texts(&out);
    (out.status.code(), format!("{stdout}{stderr}"))
}

/// Decrypts; returns the exit code, the output (if any file was left) and all text.
fn decrypt_code(
    setup: &Setup,
    inputs: &[&Path],
    extra: &[&str],
) -> (Option<i32>, Option<Vec<u8>>, String) {
    let out_dir = tempfile::tempdir_in(setup.dir.path()).unwrap();
    let out_file = out_dir.path().join("out.264");
    let out = setup.decrypt(&out_file, inputs, extra);
    let (stdout, stderr) = texts(&out);
    (
        out.status.code(),
        fs::read(&out_file).ok(),
        format!("{stdout}{stderr}"),
    )
}

#[test]
fn a_forged_gap_from_public_data_is_never_believed() {
    let setup = Setup::new();
    let (_, segs) = stream(&setup, "real", 7);
    // The cloud deletes segments 3..=5 and plants a header-only "segment 5" that declares
    // 3..=4 crashed, made from segment 2's public header: its camera key, its signature.
    let dir = case(&setup, "forged-gap", &segs, |i| !(3..=5).contains(&i));
    let (real2, _) = header_of(&segs[2]);
    let mut forged = real2.clone();
    forged.segment_seq = 5;
    forged.prev_header_hash = real2.hash();
    forged.extensions = camseal::segment::encode_gap_extensions(&[Gap {
        reason: GapReason::Crash,
        lost_segments: Some((3, 4)),
        frames: 0,
        from_pts: 0,
        to_pts: 0,
    }]);
    let name = segs[5].file_name().unwrap();
    fs::write(dir.join(name), forged.encode().unwrap()).unwrap();
    let (code, text) = verify_code(&setup, &[&dir], &[]);
    assert_eq!(code, Some(TAMPERED), "{text}");
    assert!(text.contains("header signature"), "{text}");
    let (code, out, text) = decrypt_code(&setup, &[&dir], &["--allow-incomplete"]);
    assert_eq!(code, Some(TAMPERED), "{text}");
    assert!(out.is_none(), "decrypt left output behind");

    // Without the planted file, the hole is a broken chain, not a crash.
    fs::remove_file(dir.join(name)).unwrap();
    let (code, text) = verify_code(&setup, &[&dir], &[]);
    assert_eq!(code, Some(CHAIN_BROKEN), "{text}");
    assert!(text.contains("segment 3 is missing"), "{text}");
}

#[test]
fn a_tail_forged_by_a_stranger_is_refused() {
    let setup = Setup::new();
    let (_, segs) = stream(&setup, "real", 3);
    let (last, _) = header_of(segs.last().unwrap());
    // A stranger knows the recipients' public keys and the camera's public key. They seal
    // "salvaged" footage under a segment key of their choice, as the next segment.
    let recipient = viewer_public(&setup);
    let keys = [x25519_recipient(&recipient)];
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
    let params = SegmentParams {
        stream_id: last.stream_id,
        segment_seq: last.segment_seq + 1,
        start_pts: last.start_pts + 90_000,
        wallclock_ms: last.wallclock_ms + 1000,
        prev_header_hash: last.hash(),
        ..segment_params(&keys)
    };
    let mut w = SegmentWriter::create(Vec::new(), &params, &attacker, &Randomness::Os)
        .unwrap()
        .with_checkpoints(CheckpointPolicy::every_ms(1));
    for i in 0..5u64 {
        let forged = format!("FORGED-FRAME-{i:04}-").repeat(40);
        w.append(
            params.start_pts + i * 9000,
            i == 0,
            false,
            forged.as_bytes(),
        )
        .unwrap();
    }
    let (mut bytes, _) = w
        .finish(SegmentEnd {
            end_pts: params.start_pts + 45_000,
            reason: CloseReason::Keyframe,
        })
        .unwrap();
    bytes.truncate(bytes.len() - 300); // "cut off by a crash"
    let name = format!(
        "{}-s{}-{:012}.cseg",
        last.camera_id(),
        last.stream_id,
        params.segment_seq
    );

    // Signed with the attacker's own key: not the pinned camera.
    let dir = case(&setup, "stranger-own-key", &segs, |_| true);
    fs::write(dir.join(&name), &bytes).unwrap();
    let (code, out, text) = decrypt_code(&setup, &[&dir], &["--allow-incomplete"]);
    assert_eq!(code, Some(WRONG_CAMERA), "{text}");
    assert!(out.is_none());
    let (code, text) = verify_code(&setup, &[&dir], &[]);
    assert_eq!(code, Some(WRONG_CAMERA), "{text}");

    // Claiming the real camera's key: its header signature does not verify.
    bytes[9..41].copy_from_slice(&last.camera_key);
    let dir = case(&setup, "stranger-camera-key", &segs, |_| true);
    fs::write(dir.join(&name), &bytes).unwrap();
    for extra in [&[][..], &["--allow-incomplete"][..]] {
        let (code, out, text) = decrypt_code(&setup, &[&dir], extra);
        assert_eq!(code, Some(TAMPERED), "{text}");
        assert!(text.contains("header signature"), "{text}");
        assert!(out.is_none());
    }
    let (code, text) = verify_code(&setup, &[&dir], &[]);
    assert_eq!(code, Some(TAMPERED), "{text}");
}

#[test]
fn a_tail_forged_by_a_key_holder_past_the_last_checkpoint_is_never_output() {
    let setup = Setup::new();
    let out = setup.path("real");
    // Checkpoints every 200 ms of video, so a cut keeps most of the segment.
    let segs = setup.seal(
        "soft:160x120@10",
        &out,
        &[
            "--duration",
            "4",
            "--segment-seconds",
            "2",
            "--checkpoint-ms",
            "200",
        ],
    );
    assert!(segs.len() >= 2);
    let last = segs.last().unwrap();
    let bytes = fs::read(last).unwrap();
    let layout = Layout::of(&bytes);
    assert!(layout.checkpoints.len() >= 3, "{:?}", layout.checkpoints);
    // Cut right after the second checkpoint: what it covers stays signed.
    let (cp_range, signed) = layout.checkpoints[1].clone();
    let header = layout.header.clone();

    // The viewer unwraps the segment key, as any recipient can, and seals frames of its
    // own choosing as the records that follow, with correct counters and metadata.
    let [xwing, x25519] = setup.viewer_secrets();
    let stanza = &header.stanzas[0];
    let info = hpke_info(&header.camera_key, header.stream_id, header.segment_seq);
    let base = match camseal::keys::KemKind::from_id(stanza.kem) {
        Some(camseal::keys::KemKind::XWing) => {
            hpke_open_xwing(xwing.secret(), &stanza.enc, &info, b"", &stanza.wrapped_key)
        }
        _ => hpke_open(
            x25519.secret(),
            &stanza.enc,
            &info,
            b"",
            &stanza.wrapped_key,
        ),
    }
    .unwrap();
    let key = SframeKey::derive(header.suite, header.segment_seq, &base).unwrap();
    let forged_text = "FORGED-BY-A-KEY-HOLDER-".repeat(30);
    let seal_forged = |index: u64, pts: u64, keyframe: bool| -> Vec<u8> {
        let flags = RecordFlags::video(keyframe, false);
        let mut record = vec![0u8; 4];
        record.push(flags.bits());
        record.extend_from_slice(&pts.to_be_bytes());
        let metadata = record_metadata(&header.hash(), pts, flags);
        key.seal_append(index, &metadata, forged_text.as_bytes(), &mut record)
            .unwrap();
        let len = (record.len() - 4) as u32;
        record[..4].copy_from_slice(&len.to_be_bytes());
        record
    };
    let mut forged = bytes[..cp_range.end].to_vec();
    let last_pts = layout.pts[signed as usize - 1];
    for i in 0..4u64 {
        forged.extend(seal_forged(signed + i, last_pts + (i + 1) * 9000, i == 0));
    }
    let dir = case(&setup, "key-holder", &segs, |i| i + 1 < segs.len());
    fs::write(dir.join(last.file_name().unwrap()), &forged).unwrap();

    // Strict readers: truncated. Salvage: only the signed prefix, loudly, and still exit 4.
    let (code, text) = verify_code(&setup, &[&dir], &[]);
    assert_eq!(code, Some(TRUNCATED), "{text}");
    let (code, out, text) = decrypt_code(&setup, &[&dir], &[]);
    assert_eq!(code, Some(TRUNCATED), "{text}");
    assert!(out.is_none());
    let (code, out, text) = decrypt_code(&setup, &[&dir], &["--allow-incomplete"]);
    assert_eq!(code, Some(TRUNCATED), "{text}");
    assert!(text.contains("DROPPED 4 records"), "{text}");
    let out = out.expect("the signed prefix is written");
    assert!(
        !out.windows(22).any(|w| w == &forged_text.as_bytes()[..22]),
        "a forged record reached the output"
    );
    // What was released is exactly the genuine signed prefix.
    let (_, genuine, _) = decrypt_code(&setup, &[&out_dir_of(&setup, &segs)], &[]);
    let genuine = genuine.unwrap();
    assert!(genuine.starts_with(&out) && out.len() < genuine.len());

    // Put in place of a record that a checkpoint covers, the forgery breaks that
    // checkpoint, for a viewer and for a third party alike.
    let victim = layout.records[signed as usize - 1].clone();
    let mut inside = bytes[..victim.start].to_vec();
    inside.extend(seal_forged(signed - 1, last_pts, false));
    inside.extend_from_slice(&bytes[victim.end..]);
    let dir = case(&setup, "key-holder-inside", &segs, |i| i + 1 < segs.len());
    fs::write(dir.join(last.file_name().unwrap()), &inside).unwrap();
    let (code, out, text) = decrypt_code(&setup, &[&dir], &["--allow-incomplete"]);
    assert_eq!(code, Some(TAMPERED), "{text}");
    assert!(text.contains("checkpoint is tampered"), "{text}");
    assert!(out.is_none());
    let (code, text) = verify_code(&setup, &[&dir], &[]);
    assert_eq!(code, Some(TAMPERED), "{text}");
}

/// A directory holding all of `segs` (the genuine stream).
fn out_dir_of(setup: &Setup, segs: &[PathBuf]) -> PathBuf {
    case(setup, "genuine", segs, |_| true)
}

#[test]
fn missing_first_or_last_segments_are_visible() {
    let setup = Setup::new();
    let (_, segs) = stream(&setup, "real", 6);
    let n = segs.len();
    let all = case(&setup, "all", &segs, |_| true);
    let (code, text) = verify_code(&setup, &[&all], &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ended clean"), "{text}");

    // The first three removed: the stream does not start where it must.
    let tail = case(&setup, "no-start", &segs, |i| i >= 3);
    let (code, text) = verify_code(&setup, &[&tail], &[]);
    assert_eq!(code, Some(CHAIN_BROKEN), "{text}");
    assert!(text.contains("--from-seq 3"), "{text}");
    let (code, out, text) = decrypt_code(&setup, &[&tail], &[]);
    assert_eq!(code, Some(CHAIN_BROKEN), "{text}");
    assert!(out.is_none());
    // Asked for a window, it is one, and says so.
    let (code, text) = verify_code(&setup, &[&tail], &["--from-seq", "3"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("window from seq 3"), "{text}");
    let (code, _, text) = decrypt_code(&setup, &[&tail], &["--from-seq", "3"]);
    assert_eq!(code, Some(0), "{text}");

    // The last two removed: the rest verifies, but the stream did not end cleanly.
    let head = case(&setup, "no-end", &segs, |i| i + 2 < n);
    let (code, text) = verify_code(&setup, &[&head], &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ended open"), "{text}");
    let json = setup.path("verdict.json");
    let (code, _) = verify_code(&setup, &[&head], &["--json", s(&json)]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    for key in [
        "camera",
        "stream",
        "first_seq",
        "last_seq",
        "first_time",
        "last_time",
        "ended",
        "segments",
        "gaps",
        "result",
    ] {
        assert!(v.get(key).is_some(), "{key} missing from {v}");
    }
    assert_eq!(v["ended"], "open");
    assert_eq!(v["first_seq"], 0);
    assert_eq!(v["last_seq"], (n - 3) as u64);

    // With the camera-signed stream head beside them, the withheld end is a broken chain.
    let real = segs[0].parent().unwrap();
    let head = fs::read_dir(real)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "head"))
        .expect("run writes a stream head");
    let with_head = case(&setup, "no-end-head", &segs, |i| i + 2 < n);
    fs::copy(&head, with_head.join(head.file_name().unwrap())).unwrap();
    let (code, text) = verify_code(&setup, &[&with_head], &[]);
    assert_eq!(code, Some(CHAIN_BROKEN), "{text}");
    assert!(text.contains("stream head"), "{text}");
}

#[test]
fn kill_9_in_out_mode_then_restart_is_a_declared_crash() {
    let setup = Setup::new();
    let out = setup.path("out");
    let mut child = cli::command(&[
        "run",
        "--home",
        s(&setup.camera),
        "--out",
        s(&out),
        "--source",
        "soft:160x120@10",
        "--realtime",
        "--segment-seconds",
        "1",
        "--checkpoint-ms",
        "200",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) && (!out.is_dir() || segments(&out).len() < 2)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Well into the next segment, past a checkpoint or two.
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "run ended early");
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    assert!(
        dir_names(&out).iter().any(|n| n.ends_with(".part")),
        "the crash left no open segment: {:?}",
        dir_names(&out)
    );

    // The restarted camera recovers the open segment and declares the crash, signed.
    let run = setup.run(
        "soft:160x120@10",
        &out,
        &["--duration", "2", "--segment-seconds", "1"],
    );
    let (_, stderr) = succeeded(&run, "restart after kill -9");
    assert!(stderr.contains("cut short by a crash"), "{stderr}");
    assert!(
        dir_names(&out)
            .iter()
            .all(|n| n.ends_with(".cseg") || n.ends_with(".head")),
        "{:?}",
        dir_names(&out)
    );
    let (code, text) = verify_code(&setup, &[&out], &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("CRASHED"), "{text}");
    assert!(text.contains("gap (crash)"), "{text}");
    let (code, _, text) = decrypt_code(&setup, &[&out], &[]);
    assert_eq!(code, Some(0), "{text}");
}
