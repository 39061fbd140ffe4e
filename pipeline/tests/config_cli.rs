//! `camseal run --config FILE` (docs/CONFIG.md) through the real binary: a run set up by the
//! file alone, flags that win over the file, and files that are refused before anything is
//! recorded, each refusal naming the file, line and key, with exit code 2.

mod cli;

use std::fs;
use std::path::Path;

use cli::{Setup, command, failed, s, segments, succeeded};

/// A settings file in `dir` holding `text`.
fn settings(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn run(args: &[&str]) -> std::process::Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    command(&all).env_remove("RUST_LOG").output().unwrap()
}

#[test]
fn the_file_alone_runs_a_camera_and_flags_win_over_it() {
    let setup = Setup::new();
    let from_file = setup.path("from-file");
    let from_flag = setup.path("from-flag");
    let file = settings(
        &setup.path(""),
        "camseal.toml",
        &format!(
            "# a camera set up by its file alone\nhome = \"{}\"\nsource = \"soft:160x96@10\"\nout = \"{}\"\nduration = 2\nsegment_seconds = 1\nstream = 7\n",
            s(&setup.camera),
            s(&from_file)
        ),
    );

    let (stdout, _) = succeeded(&run(&["--config", &file]), "run --config");
    assert!(stdout.contains("20 frames"), "{stdout}");
    let written = segments(&from_file);
    assert!(
        written.len() >= 2,
        "segment_seconds = 1 over 2 s: {written:?}"
    );
    // stream = 7 from the file: the chain state of stream 7 exists.
    assert!(setup.camera.join("streams/7.chain").is_file());

    // --out and --duration on the command line win; the rest still comes from the file.
    let (stdout, _) = succeeded(
        &run(&["--config", &file, "--out", s(&from_flag), "--duration", "1"]),
        "run --config with flags",
    );
    assert!(stdout.contains("10 frames"), "--duration 1 wins: {stdout}");
    assert_eq!(
        segments(&from_file).len(),
        written.len(),
        "the file's --out was used"
    );
    assert!(
        !segments(&from_flag).is_empty(),
        "the flag's --out was not used"
    );

    // A switch in the file: realtime = true is --realtime (the run takes about its 1 s).
    let realtime = settings(
        &setup.path(""),
        "realtime.toml",
        &format!(
            "home = \"{}\"\nsource = \"soft:160x96@10\"\nout = \"{}\"\nduration = 1\nrealtime = true\n",
            s(&setup.camera),
            s(&setup.path("realtime"))
        ),
    );
    succeeded(&run(&["--config", &realtime]), "realtime = true");
}

#[test]
fn bad_files_are_refused_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("no-camera-needed");
    let base = format!("home = \"{}\"\nsource = \"soft\"\n", s(&home));
    for (name, text, want) in [
        (
            "unknown.toml",
            format!("{base}\n# a typo\nsegment_second = 2\n"),
            ":5:1: `segment_second`: unknown key",
        ),
        (
            "bad-value.toml",
            format!("{base}segment_seconds = -1\n"),
            ":3:1: `segment_seconds`: invalid value '-1'",
        ),
        (
            "bad-enum.toml",
            format!("{base}padding = \"lots\"\n"),
            ":3:1: `padding`: invalid value 'lots'",
        ),
        (
            "shape.toml",
            format!("{base}realtime = \"yes\"\n"),
            ":3:1: `realtime`: takes true or false",
        ),
        (
            "section.toml",
            format!("{base}[upload]\nio_timeout = 3\n"),
            ":3:1: `upload`: a table is not a setting value",
        ),
        (
            "syntax.toml",
            format!("{base}stream = = 3\n"),
            ":3:10: not valid TOML",
        ),
        (
            "twice.toml",
            format!("{base}source = \"soft\"\n"),
            ":3:1: not valid TOML",
        ),
    ] {
        let file = settings(dir.path(), name, &text);
        let line = failed(&run(&["--config", &file]), 2, name);
        assert!(
            line.starts_with(&format!("error: {file}{want}")),
            "{name}: {line}"
        );
        assert!(!home.exists(), "{name}: something ran");
    }

    let missing = dir.path().join("missing.toml");
    let line = failed(&run(&["--config", s(&missing)]), 2, "missing file");
    assert!(
        line.starts_with(&format!(
            "error: cannot read the settings file {}: ",
            s(&missing)
        )),
        "{line}"
    );

    // A flag that fixes the file's value does not excuse a key the file gets wrong.
    let file = settings(
        dir.path(),
        "wrong.toml",
        &format!("{base}stream = \"main\"\n"),
    );
    let line = failed(
        &run(&["--config", &file, "--stream", "1"]),
        2,
        "flag over bad value",
    );
    assert!(
        line.contains(":3:1: `stream`: invalid value 'main'"),
        "{line}"
    );
}
