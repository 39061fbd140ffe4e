//! `camseal decrypt --allow-gaps`, as the real binary, on gapped footage: every segment
//! that verifies is written, each gap is reported with its segments and signed time span,
//! and the exit status is 0 only when the camera declared every gap (6 otherwise).

mod cli;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use camseal::segment::{Header, Parsed};
use cli::{Setup, dir_names, s, segments, succeeded, texts};

/// Decrypts; returns the exit code, the output file's bytes (if one was left) and stderr.
fn decrypt(
    setup: &Setup,
    inputs: &[&Path],
    extra: &[&str],
) -> (Option<i32>, Option<Vec<u8>>, String) {
    let out_dir = tempfile::tempdir_in(setup.dir.path()).unwrap();
    let out_file = out_dir.path().join("out.264");
    let out = setup.decrypt(&out_file, inputs, extra);
    let (_, stderr) = texts(&out);
    (out.status.code(), fs::read(&out_file).ok(), stderr)
}

/// The plaintext of one segment on its own.
fn plain(setup: &Setup, path: &Path) -> Vec<u8> {
    let seq = header(path).segment_seq.to_string();
    setup.decrypt_ok(&[path], &["--from-seq", &seq]).0
}

fn header(path: &Path) -> Header {
    match Header::parse(&fs::read(path).unwrap()).unwrap() {
        Parsed::Complete(h, _) => h,
        Parsed::Needed(_) => panic!("{} has no whole header", path.display()),
    }
}

/// How `decrypt` prints a signed time.
fn utc(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Moves `path` out of the footage folder.
fn remove(path: &Path) {
    fs::remove_file(path).unwrap();
}

#[test]
fn undeclared_gaps_are_reported_with_their_span_and_exit_6_after_writing_the_rest() {
    let setup = Setup::new();
    let out = setup.path("segs");
    // Paced, so that the signed times follow the video (the soft source is faster than
    // real time otherwise, and the time a frame's pts implies overtakes the clock).
    let segs = setup.seal(
        "soft:160x120@30",
        &out,
        &["--duration", "3", "--segment-seconds", "0.5", "--realtime"],
    );
    assert_eq!(segs.len(), 6, "{segs:?}");
    let plains: Vec<Vec<u8>> = segs.iter().map(|p| plain(&setup, p)).collect();

    // Segments 2 and 3 gone: nothing the camera signed says so.
    remove(&segs[2]);
    remove(&segs[3]);
    let (code, written, stderr) = decrypt(&setup, &[&out], &[]);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(written.is_none(), "without --allow-gaps nothing is written");

    let (code, written, stderr) = decrypt(&setup, &[&out], &["--allow-gaps"]);
    assert_eq!(code, Some(6), "{stderr}");
    let expected = [&plains[0][..], &plains[1], &plains[4], &plains[5]].concat();
    assert!(
        written.as_deref() == Some(&expected[..]),
        "--allow-gaps did not write exactly the segments that remain"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("GAP"))
        .unwrap_or_else(|| panic!("no GAP line in {stderr}"));
    assert!(
        line.starts_with("GAP (NOT declared by the camera): segments 2..=3"),
        "{line}"
    );
    // Verified video resumes at segment 4's signed open time.
    let resumes = utc(header(&segs[4]).wallclock_ms);
    assert!(
        line.contains(&format!("to {resumes}")),
        "{line} (resumes {resumes})"
    );
    let stops = line
        .split(" from ")
        .nth(1)
        .unwrap()
        .split(" to ")
        .next()
        .unwrap();
    assert!(
        stops >= utc(header(&segs[1]).wallclock_ms).as_str() && stops <= resumes.as_str(),
        "{line}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("GAP")).count(),
        1,
        "{stderr}"
    );

    // A segment that fails verification is one more undeclared gap; the rest is written.
    let mut bytes = fs::read(&segs[4]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(&segs[4], bytes).unwrap();
    let (code, written, stderr) = decrypt(&setup, &[&out], &["--allow-gaps"]);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(
        stderr.contains("GAP (NOT declared by the camera): segment 4 fails verification"),
        "{stderr}"
    );
    let written = written.unwrap();
    let head = [&plains[0][..], &plains[1]].concat();
    assert!(written.starts_with(&head) && written.ends_with(&plains[5]));
    assert!(written.len() < expected.len());
}

#[test]
fn gaps_the_camera_declared_exit_0() {
    let setup = Setup::new();
    let out = setup.path("out");
    // A camera killed mid-segment, then restarted: the restart declares the crash, signed.
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
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "run ended early");
    let killed = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap();
    assert!(dir_names(&out).iter().any(|n| n.ends_with(".part")));
    succeeded(
        &setup.run(
            "soft:160x120@10",
            &out,
            &["--duration", "2", "--segment-seconds", "1"],
        ),
        "restart after kill -9",
    );
    let segs = segments(&out);
    // The crashed segment: cut off, and declared so by the next one.
    let crashed: PathBuf = segs
        .iter()
        .find(|p| {
            let seq = header(p).segment_seq;
            segs.iter().any(|q| {
                header(q)
                    .gaps()
                    .iter()
                    .any(|g| g.lost_segments.is_some_and(|(a, z)| (a..=z).contains(&seq)))
            })
        })
        .cloned()
        .expect("no segment is declared crashed");
    let seq = header(&crashed).segment_seq;

    let (code, whole, stderr) = decrypt(&setup, &[&out], &["--allow-gaps"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "GAP (declared by the camera): segment {seq} cut off"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("NOT declared"), "{stderr}");

    // The crashed segment removed: missing, but declared lost. Everything else is written.
    let expected: Vec<u8> = segs
        .iter()
        .filter(|p| **p != crashed)
        .flat_map(|p| plain(&setup, p))
        .collect();
    remove(&crashed);
    let (code, written, stderr) = decrypt(&setup, &[&out], &["--allow-gaps"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "GAP (declared by the camera): segment {seq} missing, declared lost"
        )),
        "{stderr}"
    );
    assert!(written.as_deref() == Some(&expected[..]));
    assert!(expected.len() < whole.unwrap().len());
}
