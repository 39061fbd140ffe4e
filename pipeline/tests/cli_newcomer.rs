//! What a newcomer following the README meets: `upload --once` that ends, hints that fit the
//! home they were given, summaries that name where the footage is, and exit code 2 for
//! every usage error. Each case drives the real binary.

mod cli;

use std::process::Output;

use cli::{Setup, camseal, s, succeeded, texts};

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited by a signal")
}

#[test]
fn upload_once_ends_at_its_deadline_and_says_what_is_pending() {
    let setup = Setup::new();
    let spool = setup.path("spool");
    succeeded(
        &camseal(&[
            "run",
            "--home",
            s(&setup.camera),
            "--source",
            "soft",
            "--duration",
            "2",
            "--segment-seconds",
            "1",
            "--spool",
            s(&spool),
        ]),
        "run --spool",
    );
    // Port 9 (discard) refuses connections: a sink that is down, retried as transient.
    let out = camseal(&[
        "upload",
        "--spool",
        s(&spool),
        "--sink",
        "http://127.0.0.1:9/up",
        "--once",
        "--deadline",
        "2",
        "--retry-base-delay",
        "0.1",
        "--retry-max-delay",
        "0.2",
    ]);
    let (_, stderr) = texts(&out);
    assert_ne!(
        code(&out),
        0,
        "upload --once past its deadline must fail: {stderr}"
    );
    assert!(stderr.contains("--deadline"), "{stderr}");
    assert!(stderr.contains("still pending"), "{stderr}");
}

#[test]
fn hints_never_suggest_init_over_the_other_kind_of_home() {
    let setup = Setup::new();
    let footage = setup.seal("soft", &setup.path("out"), &["--duration", "1"]);
    let out = camseal(&[
        "decrypt",
        "--home",
        s(&setup.camera),
        "--out",
        s(&setup.path("y.264")),
        s(&footage[0]),
    ]);
    let (_, stderr) = texts(&out);
    assert_ne!(code(&out), 0);
    assert!(
        !stderr.contains("viewer init"),
        "decrypt --home CAMERA: {stderr}"
    );
    assert!(
        stderr.contains("is a camera home, not a viewer home"),
        "{stderr}"
    );

    let out = camseal(&[
        "camera",
        "trust",
        "--home",
        s(&setup.viewer),
        s(&setup.list),
    ]);
    let (_, stderr) = texts(&out);
    assert_ne!(code(&out), 0);
    assert!(
        !stderr.contains("camera init"),
        "camera trust --home VIEWER: {stderr}"
    );
    assert!(
        stderr.contains("is a viewer home, not a camera home"),
        "{stderr}"
    );
}

#[test]
fn trusting_the_same_list_again_is_harmless_and_another_account_says_how_to_move() {
    let setup = Setup::new();
    let (stdout, _) = succeeded(
        &camseal(&[
            "camera",
            "trust",
            "--home",
            s(&setup.camera),
            s(&setup.list),
        ]),
        "camera trust, the same list again",
    );
    assert!(stdout.contains("already installed"), "{stdout}");

    let other = setup.path("viewer2");
    let list2 = setup.path("recipients2.list");
    succeeded(
        &camseal(&["viewer", "init", "--home", s(&other)]),
        "viewer init",
    );
    succeeded(
        &camseal(&[
            "viewer",
            "recipients",
            "--home",
            s(&other),
            "--out",
            s(&list2),
        ]),
        "viewer recipients",
    );
    let out = camseal(&["camera", "trust", "--home", s(&setup.camera), s(&list2)]);
    let (_, stderr) = texts(&out);
    assert_ne!(code(&out), 0);
    assert!(stderr.contains("different account"), "{stderr}");
    assert!(stderr.contains("on purpose"), "{stderr}");
    assert!(stderr.contains("pinned-account"), "{stderr}");
}

#[test]
fn run_summary_names_the_sink_the_segments_went_to() {
    let setup = Setup::new();
    let spool = setup.path("spool");
    let nas = setup.path("nas");
    std::fs::create_dir(&nas).unwrap();
    let sink = format!("dir:{}", nas.display());
    let (stdout, _) = succeeded(
        &camseal(&[
            "run",
            "--home",
            s(&setup.camera),
            "--source",
            "soft",
            "--duration",
            "1",
            "--spool",
            s(&spool),
            "--sink",
            &sink,
        ]),
        "run --spool --sink dir:",
    );
    let done = stdout
        .lines()
        .find(|l| l.starts_with("done:"))
        .expect(&stdout);
    assert!(done.ends_with(&format!("in {sink}")), "{done}");
    assert!(!done.contains(&format!("in {}", spool.display())), "{done}");
}

#[test]
fn usage_errors_exit_2() {
    let setup = Setup::new();
    for (what, args) in [
        ("bench with no arguments", vec!["bench"]),
        (
            "run without --out or --sink",
            vec!["run", "--home", s(&setup.camera), "--source", "soft"],
        ),
        (
            "run with an unknown source",
            vec![
                "run",
                "--home",
                s(&setup.camera),
                "--source",
                "nosuch",
                "--out",
                "x",
            ],
        ),
        (
            "upload --deadline without --once",
            vec![
                "upload",
                "--spool",
                "x",
                "--sink",
                "dir:y",
                "--deadline",
                "3",
            ],
        ),
    ] {
        let out = camseal(&args);
        assert_eq!(code(&out), 2, "{what}: {:?}", texts(&out));
    }
}

#[test]
fn bitrate_takes_k_and_m_suffixes() {
    let setup = Setup::new();
    for rate in ["2M", "1.5M", "800k"] {
        setup.seal(
            "soft",
            &setup.path(&format!("out-{rate}")),
            &["--duration", "0.5", "--bitrate", rate],
        );
    }
    let out = setup.run(
        "soft",
        &setup.path("bad"),
        &["--duration", "0.5", "--bitrate", "2G"],
    );
    assert_eq!(code(&out), 2, "{:?}", texts(&out));
}

#[test]
fn demo_removes_its_keys_and_plaintext_unless_kept() {
    let t = tempfile::tempdir().unwrap();
    let gone = t.path().join("gone");
    let (stdout, _) = succeeded(
        &camseal(&["demo", "--duration", "1", "--dir", s(&gone)]),
        "demo",
    );
    assert!(stdout.contains("--keep"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(&gone)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "demo left {left:?} behind");

    let kept = t.path().join("kept");
    let (stdout, _) = succeeded(
        &camseal(&["demo", "--duration", "1", "--dir", s(&kept), "--keep"]),
        "demo --keep",
    );
    assert!(kept.join("viewer/account.key").is_file(), "{stdout}");
    assert!(kept.join("decrypted.h264").is_file(), "{stdout}");
    assert!(
        stdout.contains(&format!("rm -r {}", kept.display())),
        "{stdout}"
    );
}

/// `viewer restore` on a terminal (a pseudo-terminal made by util-linux `script`): the
/// passphrase typed after the prompt must not come back on the screen.
#[test]
fn viewer_restore_does_not_echo_the_passphrase() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`script` (bsdutils) is missing under CI"
        );
        eprintln!("skipped: `script` (util-linux bsdutils) is not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("viewer");
    let (stdout, _) = succeeded(
        &camseal(&["viewer", "init", "--home", s(&home)]),
        "viewer init",
    );
    let passphrase = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Recovery passphrase"))
        .skip(1)
        .find(|l| !l.trim().is_empty())
        .expect(&stdout)
        .trim()
        .to_owned();
    let backup = t.path().join("account.backup");
    std::fs::copy(home.join("account.backup"), &backup).unwrap();
    let phone = t.path().join("phone");
    let line = format!(
        "{} viewer restore --home {} --backup {}",
        env!("CARGO_BIN_EXE_camseal"),
        s(&phone),
        s(&backup)
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut screen = child.stdout.take().unwrap();
    // Type only once the prompt is up, as a person would: echo is a property of the moment
    // the keys arrive.
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("Recovery passphrase") {
        let n = screen.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let mut keys = child.stdin.take().unwrap();
    keys.write_all(format!("{passphrase}\n").as_bytes())
        .unwrap();
    keys.flush().unwrap();
    screen.read_to_end(&mut seen).unwrap();
    drop(keys);
    let status = child.wait().unwrap();
    let screen = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{screen}");
    assert!(phone.join("account.key").is_file(), "{screen}");
    let first_word = passphrase.split_whitespace().next().unwrap();
    assert!(
        !screen.contains(first_word),
        "the passphrase was echoed: {screen}"
    );
}

/// A folder that holds a camera's main and sub streams: `--stream N` picks one, for both
/// `decrypt` and `verify`, and gives exactly what that stream alone gives.
#[test]
fn stream_chooses_one_stream_from_a_mixed_folder() {
    let setup = Setup::new();
    let main_only = setup.path("main");
    let mixed = setup.path("mixed");
    setup.seal(
        "soft",
        &main_only,
        &["--duration", "2", "--segment-seconds", "1"],
    );
    cli::copy_dir(&main_only, &mixed);
    setup.seal(
        "soft:320x240@15",
        &mixed,
        &["--duration", "2", "--segment-seconds", "1", "--stream", "1"],
    );
    let out = setup.decrypt(&setup.path("x.264"), &[&mixed], &[]);
    let (_, stderr) = texts(&out);
    assert_ne!(code(&out), 0);
    assert!(stderr.contains("--stream"), "{stderr}");

    let (alone, _) = setup.decrypt_ok(&[&main_only], &[]);
    let (chosen, _) = setup.decrypt_ok(&[&mixed], &["--stream", "0"]);
    assert_eq!(alone, chosen, "--stream 0 differs from stream 0 alone");
    let (sub, _) = setup.decrypt_ok(&[&mixed], &["--stream", "1"]);
    assert_ne!(sub, alone);

    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "--camera", s(&setup.camera_pub)];
        args.extend_from_slice(extra);
        args.push(s(&mixed));
        camseal(&args)
    };
    assert_ne!(
        code(&verify(&[])),
        0,
        "verify of a mixed folder without --stream"
    );
    let (stdout, _) = succeeded(&verify(&["--stream", "1"]), "verify --stream 1");
    assert!(stdout.contains("stream 1"), "{stdout}");
    let out = verify(&["--stream", "7"]);
    let (_, stderr) = texts(&out);
    assert_ne!(code(&out), 0);
    assert!(
        stderr.contains("stream 7") && stderr.contains("0, 1"),
        "{stderr}"
    );
}

/// `ls` on a folder with two streams, one with a hole: streams, seq ranges, the missing
/// seqs and the signed times, with no key; the times are the headers' signed wallclocks
/// (as `inspect` reads them).
#[test]
fn ls_lists_streams_seq_ranges_and_signed_times_without_keys() {
    let setup = Setup::new();
    let mixed = setup.path("mixed");
    let main = setup.seal(
        "soft",
        &mixed,
        &["--duration", "4", "--segment-seconds", "1"],
    );
    assert!(main.len() >= 4, "{main:?}");
    setup.seal(
        "soft:320x240@15",
        &mixed,
        &["--duration", "1", "--stream", "1"],
    );
    std::fs::remove_file(&main[1]).unwrap();
    let (stdout, _) = succeeded(&camseal(&["ls", s(&mixed)]), "ls");
    let lines: Vec<&str> = stdout.lines().collect();
    let last = main.len() - 1;
    assert!(
        lines[0].contains("stream 0:") && lines[0].contains(&format!("seq 0, 2..={last}")),
        "{stdout}"
    );
    assert!(stdout.contains("missing seq 1..=1"), "{stdout}");
    assert!(stdout.contains("stream 1: 1 segments, seq 0,"), "{stdout}");

    let (json, _) = succeeded(
        &camseal(&["ls", "--json", &format!("dir:{}", mixed.display())]),
        "ls --json",
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let streams = doc.as_array().unwrap();
    assert_eq!(streams.len(), 2, "{json}");
    assert_eq!(
        streams[0]["seq_ranges"],
        serde_json::json!([[0, 0], [2, last]])
    );
    let (inspect, _) = succeeded(&camseal(&["inspect", "--json", s(&main[0])]), "inspect");
    let header: serde_json::Value = serde_json::from_str(inspect.lines().next().unwrap()).unwrap();
    let signed = header["wallclock_ms"]
        .as_u64()
        .or_else(|| header["header"]["wallclock_ms"].as_u64());
    assert!(signed.is_some_and(|ms| ms > 0), "{inspect}");
    assert_eq!(
        streams[0]["first_opened_unix_ms"].as_u64(),
        signed,
        "{json}"
    );
}

/// The signed open time of a segment, RFC 3339, as `inspect` prints it.
fn signed_time(segment: &std::path::Path) -> String {
    let (stdout, _) = succeeded(&camseal(&["inspect", s(segment)]), "inspect");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("wallclock"))
        .expect(&stdout);
    line.split_whitespace().nth(1).expect(line).to_owned()
}

/// `--since`/`--until` select by the camera's signed clock: from the time segment 2 opened,
/// decrypt gives exactly what segments 2.. give with `--from-seq 2`; verify agrees; a
/// window before any footage is an error; a bad TIME is a usage error.
#[test]
fn since_and_until_select_by_signed_recording_time() {
    let setup = Setup::new();
    let dir = setup.path("segs");
    let segs = setup.seal(
        "soft",
        &dir,
        &["--duration", "4", "--segment-seconds", "1", "--realtime"],
    );
    assert!(segs.len() >= 4, "{segs:?}");
    let t2 = signed_time(&segs[2]);
    let t1 = signed_time(&segs[1]);
    assert!(
        t1 < t2,
        "segments opened at the same signed time: {t1} {t2}"
    );
    let tail: Vec<&std::path::Path> = segs[2..].iter().map(|p| p.as_path()).collect();
    let (expected, _) = setup.decrypt_ok(&tail, &["--from-seq", "2"]);
    let (since, _) = setup.decrypt_ok(&[&dir], &["--since", &t2]);
    assert_eq!(since, expected, "--since {t2}");
    let (head, _) = setup.decrypt_ok(&[&dir], &["--until", &t1]);
    let first_two: Vec<&std::path::Path> = segs[..2].iter().map(|p| p.as_path()).collect();
    let (expected_head, _) = setup.decrypt_ok(&first_two, &[]);
    assert_eq!(head, expected_head, "--until {t1}");

    let (stdout, _) = succeeded(
        &camseal(&[
            "verify",
            "--camera",
            s(&setup.camera_pub),
            "--since",
            &t2,
            s(&dir),
        ]),
        "verify --since",
    );
    assert!(stdout.contains("seq 2.."), "{stdout}");
    let out = setup.decrypt(
        &setup.path("x.264"),
        &[&dir],
        &["--until", "1970-01-02T00:00:00Z"],
    );
    assert_eq!(code(&out), 1, "{:?}", texts(&out));
    let out = setup.decrypt(&setup.path("x.264"), &[&dir], &["--since", "yesterday"]);
    assert_eq!(code(&out), 2, "{:?}", texts(&out));
}
