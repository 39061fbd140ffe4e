//! How the binary creates files, attacked from outside: links planted at the names it used
//! to write through (`run --out`, `run --spool`, `fetch`, `decrypt`, the chain state, stream
//! heads, spool state) must never be followed; plaintext is owner-only; SIGINT and SIGTERM
//! during `decrypt` and `fetch` leave no partial output; and a second `run` on a stream
//! that is being recorded is refused.
//!
//! Nothing here waits for a time: a run is stopped only once the files it was waited for
//! exist, and `decrypt` and `fetch` are held mid-way by a FIFO among their inputs that no
//! one writes, so they cannot finish before the signal.

mod cli;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use camseal::home::CameraHome;
use cli::{Setup, camseal, dir_names, failed, s, segments, succeeded};

const VICTIM: &[u8] = b"an unrelated file that camseal must never write\n";

#[test]
fn run_out_never_writes_through_planted_links() {
    let setup = Setup::new();
    let cam = camera_id(&setup);
    let victim = victim(&setup);
    let out = setup.path("out");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(setup.camera.join("streams")).unwrap();
    // The names the recorder used to write through, planted before it starts.
    let planted = [
        out.join(format!("{cam}-s0.head.part")),
        setup.camera.join("streams/0.tmp"),
    ];
    for p in &planted {
        symlink(&victim, p).unwrap();
    }
    let mut child = spawn_run(&setup, &["--out", s(&out)], 0);
    wait_while_running(&mut child, "the first segment", || {
        !segments(&out).is_empty()
    });
    // Segment `.part` names are planted once recording runs (recovery at start-up removes
    // strays), ahead of the segments still to come.
    let ahead = plant_ahead(&out, &cam, &victim, |seq| {
        format!("{cam}-s0-{seq:012}.cseg.part")
    });
    wait_for("the segments planted ahead", || {
        segments(&out).iter().any(|p| p.ends_with(&ahead))
    });
    let output = stop(&mut child, "TERM");
    succeeded(&output, "run stopped by SIGTERM");
    assert_eq!(
        fs::read(&victim).unwrap(),
        VICTIM,
        "run wrote through a link"
    );
    for seg in segments(&out) {
        assert!(
            fs::symlink_metadata(&seg).unwrap().is_file(),
            "{}",
            seg.display()
        );
    }
    let (report, _) = succeeded(&setup.verify(&[&out]), "verify");
    assert!(report.contains("chain: OK"), "{report}");
}

#[test]
fn run_spool_never_writes_through_planted_links() {
    let setup = Setup::new();
    let cam = camera_id(&setup);
    let victim = victim(&setup);
    let spool = setup.path("spool");
    fs::create_dir_all(spool.join("state")).unwrap();
    fs::create_dir_all(setup.camera.join("streams")).unwrap();
    let planted = [
        spool.join(format!("{cam}-s0.head.part")),
        spool.join(format!("state/opened-{cam}-s0.tmp")),
        setup.camera.join("streams/0.tmp"),
    ];
    for p in &planted {
        symlink(&victim, p).unwrap();
    }
    let mut child = spawn_run(&setup, &["--spool", s(&spool)], 0);
    wait_while_running(&mut child, "the first segment", || {
        !segments(&spool).is_empty()
    });
    let ahead = plant_ahead(&spool, &cam, &victim, |seq| {
        format!("{cam}-s0-{seq:012}.cseg.hdr")
    });
    wait_for("the segments planted ahead", || {
        segments(&spool).iter().any(|p| p.ends_with(&ahead))
    });
    let output = stop(&mut child, "TERM");
    succeeded(&output, "run --spool stopped by SIGTERM");
    assert_eq!(
        fs::read(&victim).unwrap(),
        VICTIM,
        "run --spool wrote through a link"
    );
    let (report, _) = succeeded(&setup.verify(&[&spool]), "verify");
    assert!(report.contains("chain: OK"), "{report}");
}

#[test]
fn fetch_never_writes_through_planted_links() {
    let setup = Setup::new();
    let cam = camera_id(&setup);
    let victim = victim(&setup);
    let sink = setup.path("sink");
    let segs = setup.seal(
        "soft:160x120@10",
        &sink,
        &["--duration", "2", "--segment-seconds", "0.5"],
    );
    assert!(segs.len() >= 2);
    let out = setup.path("fetched");
    fs::create_dir_all(&out).unwrap();
    for seg in &segs {
        let name = seg.file_name().unwrap().to_str().unwrap();
        symlink(&victim, out.join(format!("{name}.part"))).unwrap();
    }
    symlink(&victim, out.join(format!("{cam}-s0.head.part"))).unwrap();
    let sink_url = format!("dir:{}", s(&sink));
    succeeded(
        &camseal(&["fetch", "--sink", &sink_url, "--out", s(&out)]),
        "fetch",
    );
    assert_eq!(
        fs::read(&victim).unwrap(),
        VICTIM,
        "fetch wrote through a link"
    );
    for seg in &segs {
        let got = out.join(seg.file_name().unwrap());
        assert!(fs::symlink_metadata(&got).unwrap().is_file());
        assert_eq!(fs::read(&got).unwrap(), fs::read(seg).unwrap());
    }
}

#[test]
fn decrypt_output_is_owner_only_and_replaces_a_planted_link() {
    let setup = Setup::new();
    let victim = victim(&setup);
    let sealed = setup.path("sealed");
    setup.seal("soft:160x120@10", &sealed, &["--duration", "1"]);
    let out_dir = setup.path("plain");
    fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("out.264");
    symlink(&victim, &out).unwrap();
    succeeded(&setup.decrypt(&out, &[&sealed], &[]), "decrypt");
    assert_eq!(
        fs::read(&victim).unwrap(),
        VICTIM,
        "decrypt wrote through a link"
    );
    let meta = fs::symlink_metadata(&out).unwrap();
    assert!(meta.is_file());
    assert!(meta.len() > 0);
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "plaintext readable by others"
    );
    assert_eq!(dir_names(&out_dir), ["out.264"]);
}

#[test]
fn sigterm_during_decrypt_leaves_no_plaintext() {
    interrupted_decrypt("TERM", libc::SIGTERM, "out.264");
}

#[test]
fn sigterm_during_an_mp4_export_leaves_no_plaintext() {
    interrupted_decrypt("TERM", libc::SIGTERM, "out.mp4");
}

#[test]
fn sigint_during_decrypt_leaves_no_plaintext() {
    interrupted_decrypt("INT", libc::SIGINT, "out.264");
}

#[test]
fn sigterm_during_fetch_leaves_no_partial_download() {
    let setup = Setup::new();
    let sink = setup.path("sink");
    let segs = setup.seal(
        "soft:160x120@10",
        &sink,
        &["--duration", "2", "--segment-seconds", "0.5"],
    );
    assert!(segs.len() >= 2);
    // The last segment becomes a FIFO that gives half its bytes and then nothing.
    let last = segs.last().unwrap();
    let bytes = fs::read(last).unwrap();
    fs::remove_file(last).unwrap();
    mkfifo(last);
    let writer = {
        let last = last.clone();
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().write(true).open(&last).unwrap();
            let _ = f.write_all(&bytes[..bytes.len() / 2]);
            // Held open: the reader waits for the rest.
            f
        })
    };
    let out = setup.path("fetched");
    let sink_url = format!("dir:{}", s(&sink));
    let mut child = cli::command(&["fetch", "--sink", &sink_url, "--out", s(&out)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let last_name = last.file_name().unwrap().to_str().unwrap().to_owned();
    wait_while_running(&mut child, "the download of the FIFO segment", || {
        out.is_dir()
            && dir_names(&out)
                .iter()
                .any(|n| n.contains(&last_name) && n != &last_name)
    });
    let output = stop(&mut child, "TERM");
    let held = writer.join().unwrap();
    drop(held);
    assert_eq!(output.status.signal(), Some(libc::SIGTERM), "{output:?}");
    // Segments fetched whole before the signal stay; nothing of the interrupted one does.
    let names = dir_names(&out);
    assert!(
        names
            .iter()
            .all(|n| !n.contains(&last_name) && !n.starts_with('.')),
        "left behind: {names:?}"
    );
    for seg in &segs[..segs.len() - 1] {
        let name = seg.file_name().unwrap().to_str().unwrap();
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
}

#[test]
fn a_second_run_on_a_stream_is_refused() {
    let setup = Setup::new();
    let first_out = setup.path("first");
    let mut first = spawn_run(&setup, &["--out", s(&first_out)], 0);
    wait_while_running(&mut first, "the first run's first segment", || {
        first_out.is_dir() && !segments(&first_out).is_empty()
    });
    let second_out = setup.path("second");
    let second = setup.run("soft:160x120@10", &second_out, &["--duration", "1"]);
    let line = failed(&second, 9, "a second run on stream 0");
    let lock = setup.camera.join("streams/0.lock");
    assert!(line.contains(s(&lock)), "{line}");
    assert!(line.contains(&format!("process {}", first.id())), "{line}");
    assert!(line.contains("stream 0"), "{line}");
    assert!(
        !second_out.exists() || segments(&second_out).is_empty(),
        "the refused run recorded"
    );
    // Another stream of the same camera is not in the way.
    let other = setup.path("other");
    succeeded(
        &setup.run(
            "soft:160x120@10",
            &other,
            &["--duration", "1", "--stream", "1"],
        ),
        "run on stream 1",
    );
    assert!(!segments(&other).is_empty());
    succeeded(&stop(&mut first, "TERM"), "first run stopped by SIGTERM");
    // Once the first is gone, the stream can be recorded again.
    succeeded(
        &setup.run("soft:160x120@10", &second_out, &["--duration", "1"]),
        "run after the first one ended",
    );
    let (report, _) = succeeded(&setup.verify(&[&first_out, &second_out]), "verify");
    assert!(report.contains("chain: OK"), "{report}");
}

/// `decrypt` with its last segment behind a FIFO that no one writes a second time: it
/// writes the plaintext of the others, then blocks for good. The signal must remove the
/// temporary file, and the process must die of the signal.
fn interrupted_decrypt(name: &str, number: i32, out_name: &str) {
    let setup = Setup::new();
    let sealed = setup.path("sealed");
    let segs = setup.seal(
        "soft:320x240@15",
        &sealed,
        &["--duration", "3", "--segment-seconds", "1"],
    );
    assert!(segs.len() >= 2);
    let last = segs.last().unwrap();
    let bytes = fs::read(last).unwrap();
    let fifo = setup.path("last.cseg");
    mkfifo(&fifo);
    // The header is read once (with --camera, `decrypt` reads the headers one time); the
    // writer is gone when the records are read, so that open blocks.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let _ = f.write_all(&bytes);
        })
    };
    let out_dir = setup.path("plain");
    fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(out_name);
    let mut args = vec![
        "decrypt",
        "--home",
        s(&setup.viewer),
        "--camera",
        s(&setup.camera_pub),
        "--out",
        s(&out),
    ];
    args.extend(segs[..segs.len() - 1].iter().map(|p| s(p)));
    args.push(s(&fifo));
    let mut child = cli::command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_while_running(&mut child, "decrypt's temporary file", || {
        !dir_names(&out_dir).is_empty()
    });
    writer.join().unwrap();
    for n in dir_names(&out_dir) {
        let mode = fs::metadata(out_dir.join(&n)).map(|m| m.permissions().mode() & 0o777);
        // It may be gone already if decrypt failed on its own; if it is there, it is private.
        if let Ok(mode) = mode {
            assert_eq!(
                mode, 0o600,
                "{n}: plaintext readable by others while written"
            );
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "decrypt ended before the signal"
    );
    let output = stop(&mut child, name);
    assert_eq!(output.status.signal(), Some(number), "{output:?}");
    assert_eq!(
        dir_names(&out_dir),
        Vec::<String>::new(),
        "decrypt left plaintext behind"
    );
}

fn camera_id(setup: &Setup) -> String {
    CameraHome::open(&setup.camera)
        .unwrap()
        .camera()
        .unwrap()
        .public()
        .id()
}

fn victim(setup: &Setup) -> PathBuf {
    let p = setup.path("victim");
    fs::write(&p, VICTIM).unwrap();
    p
}

/// `run --source soft --realtime` on `stream`, recording for up to a minute (it is stopped
/// with a signal long before).
fn spawn_run(setup: &Setup, out_args: &[&str], stream: u32) -> Child {
    let stream = stream.to_string();
    let mut args = vec![
        "run",
        "--home",
        s(&setup.camera),
        "--source",
        "soft:160x120@10",
        "--realtime",
        "--duration",
        "60",
        "--segment-seconds",
        "0.3",
        "--stream",
        &stream,
    ];
    args.extend_from_slice(out_args);
    cli::command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// With a segment in `dir`, plants links to `victim` at `name(seq)` for
/// the next segments; returns the file name of the last segment planted for, once sealed.
fn plant_ahead(dir: &Path, cam: &str, victim: &Path, name: impl Fn(u64) -> String) -> String {
    let newest = segments(dir)
        .last()
        .and_then(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".cseg")?
                .rsplit_once('-')
                .map(|(_, n)| n.to_owned())
        })
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let (from, to) = (newest + 3, newest + 6);
    let mut planted = 0;
    for seq in from..=to {
        // A name the recorder reached already (a slow machine) is skipped.
        match symlink(victim, dir.join(name(seq))) {
            Ok(()) => planted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        planted > 0,
        "the recorder ran past every name before one was planted"
    );
    format!("{cam}-s0-{to:012}.cseg")
}

/// Polls `done` until it holds. The limit only turns a hang into a failure; nothing is
/// measured.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// As [`wait_for`], failing at once if `child` ends first.
fn wait_while_running(child: &mut Child, what: &str, mut done: impl FnMut() -> bool) {
    wait_for(what, || {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("ended ({status}) before {what}:\n{stderr}");
        }
        done()
    });
}

fn stop(child: &mut Child, signal: &str) -> Output {
    let kill = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}
