//! SIGTERM and SIGINT sent to `camseal run --realtime` mid-stream: the open segment is sealed
//! (close reason "shutdown"), the run exits 0, no `.part` file is left, and everything that
//! was sealed verifies and decrypts to a prefix of the source.

mod cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use camseal::nal::{Codec, access_units};
use camseal::segment::CloseReason;
use cli::{Setup, dir_names, fixture, s, segment_end, segments, succeeded};

#[test]
fn sigterm_seals_the_open_segment() {
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    file_source_stopped_by(&setup, &f.source(), &f.bytes(), "TERM");
}

#[test]
fn sigint_seals_the_open_segment() {
    let setup = Setup::new();
    let f = fixture("h265-main");
    file_source_stopped_by(&setup, &f.source(), &f.bytes(), "INT");
}

#[test]
fn sigterm_stops_the_soft_source() {
    let setup = Setup::new();
    let out = setup.path("soft");
    let stopped = stop_mid_stream(
        &setup,
        &["--source", "soft:320x240@15", "--duration", "30"],
        &out,
        "TERM",
    );
    let segs = check_sealed(&setup, &out, &stopped);
    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    let frames = access_units(Codec::H264, &plain).count() as u64;
    assert!(frames > 0);
    let reported = frames_reported(&stopped.stdout);
    assert_eq!(
        frames, reported,
        "access units decrypted vs frames `run` reported"
    );
    // Far fewer than the 450 frames of 30 s: the signal stopped it.
    assert!(frames < 450, "{frames} frames");
    assert!(segs.len() > stopped.before.len());
}

/// What a stopped run left.
struct Stopped {
    stdout: String,
    /// Segments that existed when the signal was sent.
    before: Vec<PathBuf>,
}

/// Runs a file source at real time, stops it with `signal`, and checks the result against
/// the source `input`.
fn file_source_stopped_by(setup: &Setup, source: &str, input: &[u8], signal: &str) {
    let out = setup.path(&format!("out-{signal}"));
    let stopped = stop_mid_stream(setup, &["--source", source], &out, signal);
    check_sealed(setup, &out, &stopped);

    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    assert!(!plain.is_empty());
    assert!(
        input.starts_with(&plain),
        "decrypted output is not a prefix of the source"
    );
    assert!(
        plain.len() < input.len(),
        "the signal did not stop the stream early"
    );
    // It covers every segment sealed before the signal, and more (the shutdown segment).
    let before: Vec<&Path> = stopped.before.iter().map(PathBuf::as_path).collect();
    let sealed_before = if before.is_empty() {
        Vec::new()
    } else {
        setup.decrypt_ok(&before, &[]).0
    };
    assert!(
        plain.len() > sealed_before.len(),
        "nothing after the segments sealed before the signal"
    );
    assert!(plain.starts_with(&sealed_before));
}

/// Starts `run --realtime`, waits until a segment exists (or 1.2 s), sends `signal`, and
/// checks that the run ends with status 0 and says it was stopped.
fn stop_mid_stream(setup: &Setup, source_args: &[&str], out: &Path, signal: &str) -> Stopped {
    let mut args = vec!["run", "--home", s(&setup.camera), "--out", s(out)];
    args.extend_from_slice(source_args);
    args.extend(["--realtime", "--segment-seconds", "0.5"]);
    let mut child = cli::command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let sealed_one = || out.is_dir() && !segments(out).is_empty();
    while started.elapsed() < Duration::from_millis(1200) && !sealed_one() {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let some frames into the next segment.
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        child.try_wait().unwrap().is_none(),
        "run ended before the signal"
    );
    let before = segments(out);
    let kill = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = succeeded(&output, &format!("run stopped by SIG{signal}"));
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("stopped by signal"), "{stdout}");
    assert!(stderr.contains("shutdown"), "{stderr}");
    Stopped { stdout, before }
}

/// No `.part` file, every segment verifies, the chain holds, the last segment closed for
/// shutdown and no other did. Returns the segments.
fn check_sealed(setup: &Setup, out: &Path, stopped: &Stopped) -> Vec<PathBuf> {
    let names = dir_names(out);
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".cseg") || n.ends_with(".head")),
        "unexpected files left: {names:?}"
    );
    let segs = segments(out);
    assert!(!segs.is_empty());
    for b in &stopped.before {
        assert!(segs.contains(b), "{} disappeared", b.display());
    }
    let (report, _) = succeeded(&setup.verify(&[out]), "verify");
    assert_eq!(
        report.lines().filter(|l| l.starts_with("OK ")).count(),
        segs.len(),
        "{report}"
    );
    assert!(report.contains("chain: OK"), "{report}");
    let secret = setup.viewer_secrets();
    let (last, earlier) = segs.split_last().unwrap();
    assert_eq!(segment_end(last, &secret).reason, CloseReason::Shutdown);
    for seg in earlier {
        let reason = segment_end(seg, &secret).reason;
        assert_ne!(reason, CloseReason::Shutdown, "{}", seg.display());
    }
    segs
}

/// The frame count in `run`'s summary line ("stopped by signal: N frames, ...").
fn frames_reported(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("stopped by signal"))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    let after = line.split_once(": ").unwrap().1;
    after.split_whitespace().next().unwrap().parse().unwrap()
}
