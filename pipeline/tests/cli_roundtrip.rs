//! `camseal run` then `camseal decrypt`, as the real binary: the output is byte-identical to
//! the input for every committed fixture and for the `soft` source, `verify` accepts what
//! `run` wrote, a second run continues the hash chain, and no 16-byte window of any NAL
//! payload appears in the sealed files.

mod cli;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use camseal::nal::{Codec, access_units};
use camseal::seal::SframeSuite;
use cli::{Fixture, Layout, Setup, fixture, fixtures, leaked_windows, s, succeeded, windows_of};

#[test]
fn every_fixture_round_trips_with_default_and_small_chunks() {
    let setup = Setup::new();
    // Each output directory holds a whole stream of its own (a window from segment 0).
    let mut stream = 0u32;
    for f in fixtures() {
        let input = f.bytes();
        // Each segment then spans about one keyframe interval.
        let segment_seconds = format!("{:.3}", f.seconds() / f64::from(f.keyframes.max(1)));
        for max_chunk in [None, Some(1000)] {
            let what = format!("{} (max chunk {max_chunk:?})", f.name);
            let out = setup.path(&format!("{}-{}", f.name, max_chunk.unwrap_or(0)));
            stream += 1;
            let stream_arg = stream.to_string();
            let mut extra = vec![
                "--segment-seconds",
                &segment_seconds,
                "--stream",
                &stream_arg,
            ];
            let chunk_arg = max_chunk.map(|c| c.to_string());
            if let Some(c) = &chunk_arg {
                extra.extend(["--max-chunk", c]);
            }
            let segs = setup.seal(&f.source(), &out, &extra);
            if f.keyframes >= 2 {
                assert!(segs.len() >= 2, "{what}: only {} segment(s)", segs.len());
            }
            assert!(!segs.is_empty(), "{what}: no segments");

            let layouts: Vec<Layout> = segs.iter().map(|p| Layout::of_file(p)).collect();
            check_headers(&layouts, &f, &what);
            let continuations = layouts
                .iter()
                .flat_map(|l| &l.flags)
                .filter(|fl| fl.continuation())
                .count();
            if max_chunk.is_some() || f.name.contains("3840x2160") {
                // Small chunks split every large NAL unit; the 4K IDR slices exceed 64 KiB.
                assert!(continuations > 0, "{what}: no NAL unit was split");
            }

            let (plain, _) = setup.decrypt_ok(&[&out], &[]);
            assert!(
                plain == input,
                "{what}: decrypted stream differs from the input"
            );
            assert_verify_ok(&setup, &out, segs.len(), &what);
            assert_no_leak(&input, &segs, &what);
        }
    }
}

#[test]
fn soft_source_round_trips() {
    let setup = Setup::new();
    let out = setup.path("soft");
    let segs = setup.seal(
        "soft:320x240@15",
        &out,
        &["--duration", "3", "--segment-seconds", "1"],
    );
    assert!(segs.len() >= 2, "only {} segment(s)", segs.len());
    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    assert_verify_ok(&setup, &out, segs.len(), "soft");

    // The soft stream is not on disk: check that what came back is 3 s of 15 fps H.264 ...
    let aus: Vec<_> = access_units(Codec::H264, &plain).collect();
    assert_eq!(aus.len(), 45, "access units in the decrypted soft stream");
    let keyframes = aus.iter().filter(|a| a.keyframe).count();
    assert!(keyframes >= segs.len(), "{keyframes} keyframes");
    assert!(plain.starts_with(&[0, 0, 0, 1]) || plain.starts_with(&[0, 0, 1]));
    let decrypted = setup.path("soft.h264");
    fs::write(&decrypted, &plain).unwrap();
    if let Some(frames) = ffprobe_frames(&decrypted) {
        assert_eq!(frames, 45, "ffprobe frame count");
    }
    assert_no_leak(&plain, &segs, "soft");

    // ... and that sealing it again as a file round-trips byte for byte.
    let again = setup.path("soft-again");
    let segs = setup.seal(
        &format!("file:{}", decrypted.display()),
        &again,
        &["--segment-seconds", "1", "--stream", "1"],
    );
    assert!(segs.len() >= 2);
    let (plain_again, _) = setup.decrypt_ok(&[&again], &[]);
    assert!(plain_again == plain, "re-sealed soft stream differs");
}

#[test]
fn aes_256_gcm_suite_round_trips() {
    let setup = Setup::new();
    let f = fixture("h264-main-cabac");
    let input = f.bytes();
    for (name, suite, expected, stream) in [
        ("aes-128", None, SframeSuite::Aes128GcmSha256, "0"),
        (
            "aes-256",
            Some("aes-256-gcm"),
            SframeSuite::Aes256GcmSha512,
            "1",
        ),
    ] {
        let out = setup.path(name);
        let mut extra = vec!["--segment-seconds", "0.9", "--stream", stream];
        if let Some(suite) = suite {
            extra.extend(["--suite", suite]);
        }
        let segs = setup.seal(&f.source(), &out, &extra);
        assert!(segs.len() >= 2);
        for seg in &segs {
            assert_eq!(Layout::of_file(seg).header.suite, expected, "{name}");
        }
        let (plain, _) = setup.decrypt_ok(&[&out], &[]);
        assert!(plain == input, "{name}: decrypted stream differs");
        assert_verify_ok(&setup, &out, segs.len(), name);
    }
}

#[test]
fn a_second_run_continues_the_chain() {
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    let input = f.bytes();
    let out = setup.path("out");
    // A stream number of its own, so its chain starts at sequence 0.
    let extra = ["--segment-seconds", "0.6", "--stream", "3"];
    let first = setup.seal(&f.source(), &out, &extra);
    let all = setup.seal(&f.source(), &out, &extra);
    assert!(first.len() >= 2);
    assert_eq!(
        all.len(),
        2 * first.len(),
        "second run did not add as many segments"
    );

    let layouts: Vec<Layout> = all.iter().map(|p| Layout::of_file(p)).collect();
    for (i, l) in layouts.iter().enumerate() {
        assert_eq!(
            l.header.segment_seq, i as u64,
            "sequence numbers must continue"
        );
        assert_eq!(l.header.stream_id, 3);
    }
    assert_eq!(layouts[0].header.prev_header_hash, [0; 32]);
    assert_eq!(
        layouts[first.len()].header.prev_header_hash,
        layouts[first.len() - 1].header.hash(),
        "the second run's first segment must link to the first run's last"
    );

    let (plain, stderr) = setup.decrypt_ok(&[&out], &[]);
    assert!(
        plain == [input.clone(), input].concat(),
        "decrypted stream differs"
    );
    assert!(!stderr.contains("note:"), "the chain starts at 0: {stderr}");
    let stdout = assert_verify_ok(&setup, &out, all.len(), "two runs");
    assert!(!stdout.contains("chain starts here"), "{stdout}");
}

/// Headers name the fixture's codec, one camera and stream, and consecutive sequence numbers.
fn check_headers(layouts: &[Layout], f: &Fixture, what: &str) {
    let first = &layouts[0].header;
    for (i, l) in layouts.iter().enumerate() {
        assert_eq!(l.header.codec, f.codec, "{what}");
        assert_eq!(l.header.camera_key, first.camera_key, "{what}");
        assert_eq!(l.header.segment_seq, first.segment_seq + i as u64, "{what}");
        assert_eq!(l.header.suite, SframeSuite::Aes128GcmSha256, "{what}");
        assert!(l.flags.last().unwrap().is_final(), "{what}");
        assert!(
            l.flags[0].keyframe(),
            "{what}: segment {i} does not start at a keyframe"
        );
    }
}

/// `verify` exits 0 and prints one OK line per segment and an OK chain. Returns its output.
fn assert_verify_ok(setup: &Setup, dir: &Path, segments: usize, what: &str) -> String {
    let (stdout, _) = succeeded(&setup.verify(&[dir]), &format!("verify {what}"));
    let ok_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("OK ")).collect();
    assert_eq!(ok_lines.len(), segments, "{what}: OK lines in\n{stdout}");
    for seg in cli::segments(dir) {
        let name = seg.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            ok_lines.iter().filter(|l| l.contains(&name)).count(),
            1,
            "{what}: {name} not reported once:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("chain: OK"), "{what}:\n{stdout}");
    stdout
}

/// No 16-byte window of any NAL payload of `plain` occurs in the segment files; the same
/// check on the plaintext itself must find them all (so the check can fail).
fn assert_no_leak(plain: &[u8], segs: &[PathBuf], what: &str) {
    let sealed = windows_of(segs);
    let (leaked, checked) = leaked_windows(plain, &sealed);
    assert!(checked > 1000, "{what}: only {checked} windows checked");
    assert_eq!(
        leaked, 0,
        "{what}: {leaked} of {checked} payload windows found in the segments"
    );

    let dir = tempfile::tempdir().unwrap();
    let plain_file = dir.path().join("plain");
    fs::write(&plain_file, plain).unwrap();
    let (found, checked_again) = leaked_windows(plain, &windows_of(&[plain_file]));
    assert_eq!(checked_again, checked);
    assert_eq!(
        found, checked,
        "{what}: the leak check misses plaintext windows"
    );
}

/// Frames ffprobe counts in an Annex-B H.264 file; `None` when ffprobe is not installed.
fn ffprobe_frames(path: &Path) -> Option<u64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-f",
            "h264",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            s(path),
        ])
        .output();
    let out = match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        other => other.unwrap(),
    };
    let (stdout, stderr) = cli::texts(&out);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    Some(stdout.trim().parse().unwrap())
}
