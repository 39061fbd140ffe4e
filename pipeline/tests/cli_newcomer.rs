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
