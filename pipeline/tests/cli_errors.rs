//! Bad input to the real binary never panics: each case gets a one-line `error: ...` (and at
//! most a `hint: ...` line) and a non-zero exit. Also: every command's `--help`.

mod cli;

use std::fs;
use std::path::Path;

use cli::{Setup, camseal, dir_names, fixture, one_line_error, run_args, s, segments, succeeded};

#[test]
fn bad_sources_and_options_are_one_line_errors() {
    let setup = Setup::new();
    let dir = setup.path("inputs");
    fs::create_dir(&dir).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        format!("file:{}", p.display())
    };
    let empty = file("EMPTY.h264", b"");
    let random = file("random.h264", &pseudo_random(5000, 1));
    let random_h265 = file("random.h265", &pseudo_random(5000, 2));
    let random_bin = file("random.bin", &pseudo_random(5000, 3));
    let text = file(
        "notes.txt",
        b"This is a text file, not an H.264 stream.\nSecond line.\n",
    );
    let text_h264 = file("notes.h264", b"hello world, definitely not video\n");
    let start_codes = file(
        "start-codes.h264",
        &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1],
    );
    let missing = format!("file:{}", dir.join("missing.h264").display());
    let a_dir = format!("file:{}", dir.display());

    // (what, source, extra args, a word the message must contain)
    let cases: Vec<(&str, &str, Vec<&str>, &str)> = vec![
        ("empty file", &empty, vec![], "empty"),
        ("random bytes", &random, vec![], "random.h264"),
        ("random bytes, .h265", &random_h265, vec![], "random.h265"),
        (
            "random bytes, no known extension",
            &random_bin,
            vec![],
            "random.bin",
        ),
        (
            "random bytes, --codec h264",
            &random_bin,
            vec!["--codec", "h264"],
            "random.bin",
        ),
        (
            "random bytes, --codec h265",
            &random_bin,
            vec!["--codec", "h265"],
            "random.bin",
        ),
        ("a text file", &text, vec![], "notes.txt"),
        ("a text file named .h264", &text_h264, vec![], "notes.h264"),
        ("start codes only", &start_codes, vec![], "start-codes.h264"),
        ("a missing file", &missing, vec![], "missing.h264"),
        ("unknown source", "bogus", vec![], "bogus"),
        (
            "unknown source scheme",
            "rtsp://camera/stream",
            vec![],
            "rtsp",
        ),
        ("bad soft spec", "soft:big", vec![], "big"),
        ("soft size 0x0", "soft:0x0@15", vec![], "0x0"),
        ("soft odd size", "soft:321x241@15", vec![], "321x241"),
        ("soft 0 fps", "soft:320x240@0", vec![], "frame rate"),
        ("soft as h265", "soft", vec!["--codec", "h265"], "H.264"),
        ("bad codec", &random, vec!["--codec", "vp9"], "vp9"),
        (
            "unknown suite",
            "soft",
            vec!["--suite", "chacha20"],
            "chacha20",
        ),
        // Out-of-range numbers are usage errors (exit 2): tests/cli_numeric.rs.
    ];
    for (i, (what, source, extra, needle)) in cases.into_iter().enumerate() {
        let out = setup.path(&format!("out-{i}"));
        let line = one_line_error(&setup.run(source, &out, &extra), what);
        assert!(line.contains(needle), "{what}: {needle:?} not in {line:?}");
        if out.exists() {
            assert!(segments(&out).is_empty(), "{what}: segments written");
        }
    }

    // An unknown overload policy is a usage error that names the valid ones.
    let out = setup.path("out-overload");
    let result = setup.run("soft", &out, &["--overload", "drop-some"]);
    assert_eq!(result.status.code(), Some(2), "unknown --overload");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("block or drop-frames"), "{stderr}");
    assert!(!out.exists() || segments(&out).is_empty());

    // A directory given as a file source (its message: see the test below).
    let out = setup.path("out-dir-source");
    one_line_error(&setup.run(&a_dir, &out, &[]), "directory as a file source");

    // `run` still works afterwards: nothing above broke the camera's state.
    let f = fixture("h264-baseline");
    let segs = setup.seal(&f.source(), &setup.path("good"), &[]);
    assert!(!segs.is_empty());
}

#[test]
fn a_directory_given_as_a_file_source_says_so() {
    let setup = Setup::new();
    let source = format!("file:{}", setup.dir.path().display());
    let out = setup.path("out");
    let line = one_line_error(&setup.run(&source, &out, &[]), "directory as a file source");
    assert!(line.contains(s(setup.dir.path())), "{line}");
    // ENODEV from mmap ("No such device") does not tell the user what is wrong.
    assert!(line.contains("directory"), "{line}");
}

#[test]
fn missing_homes_are_one_line_errors() {
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    let segs_dir = setup.path("segments");
    setup.seal(&f.source(), &segs_dir, &[]);
    let missing = setup.path("no-such-home");
    let a_file = setup.path("a-file");
    fs::write(&a_file, b"not a directory\n").unwrap();
    let out = setup.path("out.264");
    let source = f.source();
    for home in [&missing, &a_file] {
        let h = s(home);
        let cases: Vec<(&str, Vec<&str>)> = vec![
            (
                "run",
                vec![
                    "run",
                    "--home",
                    h,
                    "--source",
                    &source,
                    "--out",
                    s(&segs_dir),
                ],
            ),
            (
                "decrypt",
                vec!["decrypt", "--home", h, "--out", s(&out), s(&segs_dir)],
            ),
            (
                "viewer recipients",
                vec!["viewer", "recipients", "--home", h, "--out", s(&out)],
            ),
            (
                "camera trust",
                vec!["camera", "trust", "--home", h, s(&setup.list)],
            ),
        ];
        for (what, args) in cases {
            let what = format!("{what} with home {h}");
            let line = one_line_error(&camseal(&args), &what);
            assert!(line.contains(h), "{what}: the home is not named: {line}");
        }
        assert!(!out.exists(), "output written");
    }
    assert!(
        !missing.exists(),
        "a missing home was created by a read-only command"
    );

    // The homes of the other kind: a viewer home given to `run` and a camera home to
    // `decrypt`.
    let line = one_line_error(
        &camseal(&run_args(&setup.viewer, &source, &segs_dir)),
        "run with a viewer home",
    );
    assert!(line.contains("camera"), "{line}");
    let line = one_line_error(
        &camseal(&[
            "decrypt",
            "--home",
            s(&setup.camera),
            "--out",
            s(&out),
            s(&segs_dir),
        ]),
        "decrypt with a camera home",
    );
    assert!(line.contains("viewer"), "{line}");
    assert!(!out.exists());

    // Missing or wrong camera key files for `verify` and `decrypt --camera`.
    let missing_pub = setup.path("missing.pub");
    let account_pub = setup.viewer.join("account.pub");
    for camera in [&missing_pub, &a_file, &account_pub] {
        let what = format!("verify --camera {}", camera.display());
        let line = one_line_error(
            &camseal(&["verify", "--camera", s(camera), s(&segs_dir)]),
            &what,
        );
        assert!(line.contains(s(camera)), "{what}: {line}");
        let what = format!("decrypt --camera {}", camera.display());
        let args = [
            "decrypt",
            "--home",
            s(&setup.viewer),
            "--camera",
            s(camera),
            "--out",
            s(&out),
            s(&segs_dir),
        ];
        let line = one_line_error(&camseal(&args), &what);
        assert!(line.contains(s(camera)), "{what}: {line}");
        assert!(!out.exists());
    }
}

#[test]
fn unwritable_places_are_one_line_errors() {
    // Tests may run as root, where permissions do not stop writes: a path below a regular
    // file cannot be created by anyone.
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    let segs_dir = setup.path("segments");
    setup.seal(&f.source(), &segs_dir, &[]);
    let file = setup.path("regular-file");
    fs::write(&file, b"x").unwrap();
    let below = file.join("sub");
    let below_file = below.join("out.264");
    let source = f.source();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "run --out FILE/sub",
            vec![
                "run",
                "--home",
                s(&setup.camera),
                "--source",
                &source,
                "--out",
                s(&below),
            ],
        ),
        (
            "run --out FILE",
            vec![
                "run",
                "--home",
                s(&setup.camera),
                "--source",
                &source,
                "--out",
                s(&file),
            ],
        ),
        (
            "decrypt --out FILE/sub/out.264",
            vec![
                "decrypt",
                "--home",
                s(&setup.viewer),
                "--out",
                s(&below_file),
                s(&segs_dir),
            ],
        ),
        (
            "viewer recipients --out FILE/sub/list",
            vec![
                "viewer",
                "recipients",
                "--home",
                s(&setup.viewer),
                "--out",
                s(&below_file),
            ],
        ),
        (
            "viewer init --home FILE/sub",
            vec!["viewer", "init", "--home", s(&below)],
        ),
        (
            "camera init --home FILE/sub",
            vec!["camera", "init", "--home", s(&below)],
        ),
        (
            "camera init --home FILE",
            vec!["camera", "init", "--home", s(&file)],
        ),
    ];
    for (what, args) in cases {
        let line = one_line_error(&camseal(&args), what);
        assert!(
            line.contains(s(&file)),
            "{what}: the path is not named: {line}"
        );
    }
    assert_eq!(
        fs::read(&file).unwrap(),
        b"x",
        "the regular file was changed"
    );
}

#[test]
fn decrypt_to_a_directory_fails_without_leaving_plaintext() {
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    let segs_dir = setup.path("segments");
    setup.seal(&f.source(), &segs_dir, &[]);
    let work = setup.path("work");
    let target = work.join("target");
    fs::create_dir_all(&target).unwrap();
    let out = camseal(&[
        "decrypt",
        "--home",
        s(&setup.viewer),
        "--out",
        s(&target),
        s(&segs_dir),
    ]);
    let (_, stderr) = cli::texts(&out);
    assert!(!out.status.success(), "decrypt onto a directory succeeded");
    cli::assert_no_panic(&stderr);
    assert!(stderr.contains("error: "), "{stderr}");
    assert_eq!(
        dir_names(&work),
        vec!["target".to_owned()],
        "decrypt left (plaintext) files behind"
    );
    assert!(dir_names(&target).is_empty());
}

#[test]
fn corrupt_recipient_lists_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let viewer = t.path().join("viewer");
    succeeded(
        &camseal(&["viewer", "init", "--home", s(&viewer)]),
        "viewer init",
    );
    let list = t.path().join("list");
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
    let good = fs::read(&list).unwrap();
    let camera = t.path().join("camera");
    succeeded(
        &camseal(&["camera", "init", "--home", s(&camera)]),
        "camera init",
    );
    let f = fixture("h264-baseline");
    let source = f.source();
    let out = t.path().join("segments");
    let run = || camseal(&run_args(&camera, &source, &out));

    // No list yet: `run` refuses.
    let line = one_line_error(&run(), "run without a trusted list");
    assert!(line.contains("no trusted recipients"), "{line}");
    assert!(!out.exists() || segments(&out).is_empty());

    let bad = t.path().join("bad.list");
    let trust = |bytes: &[u8], what: &str| -> String {
        fs::write(&bad, bytes).unwrap();
        one_line_error(
            &camseal(&["camera", "trust", "--home", s(&camera), s(&bad)]),
            what,
        )
    };
    trust(b"", "an empty list");
    trust(&pseudo_random(300, 9), "garbage");
    trust(b"CSRL garbage after a magic\n", "magic then garbage");
    let mut cuts: Vec<usize> = vec![1, 4, 5, 8, good.len() / 2, good.len() - 64, good.len() - 1];
    cuts.extend((0..good.len()).step_by(7));
    cuts.sort();
    cuts.dedup();
    for cut in cuts {
        trust(
            &good[..cut],
            &format!("list truncated to {cut} of {} bytes", good.len()),
        );
    }
    for at in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut flipped = good.clone();
            flipped[at] ^= bit;
            trust(
                &flipped,
                &format!("list with bit {bit:#04x} of byte {at} flipped"),
            );
        }
    }
    let mut longer = good.clone();
    longer.push(0);
    trust(&longer, "list with a trailing byte");
    let missing = t.path().join("missing.list");
    let line = one_line_error(
        &camseal(&["camera", "trust", "--home", s(&camera), s(&missing)]),
        "a missing list",
    );
    assert!(line.contains(s(&missing)), "{line}");
    one_line_error(
        &camseal(&["camera", "trust", "--home", s(&camera), s(t.path())]),
        "a directory as the list",
    );

    // Nothing was installed: `run` still refuses; the good list then works.
    let line = one_line_error(&run(), "run after refused lists");
    assert!(line.contains("no trusted recipients"), "{line}");
    succeeded(
        &camseal(&["camera", "trust", "--home", s(&camera), s(&list)]),
        "camera trust",
    );
    succeeded(&run(), "run");
    assert!(!segments(&out).is_empty());
}

#[test]
fn decrypting_what_is_not_footage_is_a_one_line_error() {
    let setup = Setup::new();
    let dir = setup.path("inputs");
    fs::create_dir(&dir).unwrap();
    let text = dir.join("notes.txt");
    fs::write(&text, b"not a segment\n").unwrap();
    let empty_seg = dir.join("empty.cseg");
    fs::write(&empty_seg, b"").unwrap();
    let random_seg = dir.join("random.cseg");
    fs::write(&random_seg, pseudo_random(4000, 5)).unwrap();
    let header_only = dir.join("magic.cseg");
    fs::write(&header_only, b"CSEG\x01\x00\x04\x01\x00").unwrap();
    let empty_dir = setup.path("empty-dir");
    fs::create_dir(&empty_dir).unwrap();
    let missing = setup.path("missing.cseg");
    let fixture_file = fixture("h264-baseline").path;
    let out_dir = setup.path("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("out.264");

    let cases: Vec<(&str, &Path, &str)> = vec![
        ("a text file", &text, "not a camseal segment"),
        ("an empty .cseg", &empty_seg, "empty.cseg"),
        ("random bytes as .cseg", &random_seg, "random.cseg"),
        ("a magic and nothing else", &header_only, "magic.cseg"),
        ("an empty directory", &empty_dir, "no segment"),
        ("a missing path", &missing, "missing.cseg"),
        ("a video file", &fixture_file, "not a camseal segment"),
    ];
    for (what, input, needle) in cases {
        let line = one_line_error(
            &setup.decrypt(&out, &[input], &[]),
            &format!("decrypt {what}"),
        );
        assert!(line.contains(needle), "decrypt {what}: {line}");
        assert!(
            dir_names(&out_dir).is_empty(),
            "decrypt {what}: output left behind"
        );
        let line = one_line_error(&setup.verify(&[input]), &format!("verify {what}"));
        assert!(line.contains(needle), "verify {what}: {line}");
    }
}

#[test]
fn every_command_has_help() {
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![],
            vec!["viewer", "camera", "run", "decrypt", "verify", "demo"],
        ),
        (
            vec!["viewer"],
            vec!["init", "restore", "recipients", "cameras"],
        ),
        (vec!["viewer", "cameras"], vec!["add", "list", "remove"]),
        (
            vec!["viewer", "cameras", "add"],
            vec!["--home", "--name", "CAMERA_PUB"],
        ),
        (vec!["viewer", "cameras", "list"], vec!["--home", "--json"]),
        (
            vec!["viewer", "cameras", "remove"],
            vec!["--home", "CAMERA_ID|NAME|CAMERA_PUB"],
        ),
        (vec!["viewer", "init"], vec!["--home"]),
        (
            vec!["viewer", "restore"],
            vec!["--home", "--backup", "--passphrase-file"],
        ),
        (vec!["viewer", "recipients"], vec!["--home", "--out"]),
        (vec!["camera"], vec!["init", "trust"]),
        (vec!["camera", "init"], vec!["--home"]),
        (vec!["camera", "trust"], vec!["--home", "LIST_FILE"]),
        (
            vec!["run"],
            vec![
                "--home",
                "--source",
                "--out",
                "--duration",
                "--realtime",
                "--segment-seconds",
                "--codec",
                "--fps",
                "--stream",
                "--suite",
                "--max-chunk",
                "--bitrate",
                "file:PATH",
                "soft",
            ],
        ),
        (
            vec!["decrypt"],
            vec![
                "--home",
                "--out",
                "--allow-incomplete",
                "--camera",
                "SEGMENT_OR_DIR",
            ],
        ),
        (vec!["verify"], vec!["--camera", "SEGMENT_OR_DIR"]),
        (vec!["demo"], vec!["--duration", "--dir"]),
    ];
    for (command, flags) in cases {
        let mut args = command.clone();
        args.push("--help");
        let what = format!("camseal {} --help", command.join(" "));
        let (stdout, stderr) = succeeded(&camseal(&args), &what);
        assert_eq!(stderr, "", "{what}");
        assert!(stdout.contains("Usage: camseal"), "{what}:\n{stdout}");
        for flag in flags {
            assert!(
                stdout.contains(flag),
                "{what}: {flag} not mentioned:\n{stdout}"
            );
        }
    }
    // No command at all is a usage error, not a panic.
    let out = camseal(&[]);
    assert_eq!(out.status.code(), Some(2));
    cli::assert_no_panic(&cli::texts(&out).1);
}

/// Deterministic bytes that are not an Annex-B stream (xorshift).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
