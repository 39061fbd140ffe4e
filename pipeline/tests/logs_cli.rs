//! Logs as a service sees them, through the real binary: `RUST_LOG` and `log_level` decide
//! what is written, `RUST_LOG` winning; when standard error is the journal's stream
//! (`JOURNAL_STREAM` names it, as systemd sets it) each log line starts with the `<N>`
//! priority journald reads, without colours; and library code prints nothing itself.

mod cli;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use cli::{Setup, command, s, succeeded, texts};

/// The event `camseal run` logs at debug level when it starts recording.
const STARTS: &str = "recording starts";

fn run(setup: &Setup, extra: &[&str]) -> Command {
    let out = setup.path("out");
    let mut args = vec![
        "run",
        "--home",
        s(&setup.camera),
        "--source",
        "soft:160x96@10",
        "--duration",
        "0.5",
        "--out",
        s(&out),
    ];
    args.extend_from_slice(extra);
    let mut c = command(&args);
    c.env_remove("RUST_LOG").env_remove("JOURNAL_STREAM");
    c
}

fn stderr_of(mut c: Command, what: &str) -> String {
    succeeded(&c.output().unwrap(), what).1
}

#[test]
fn rust_log_and_log_level_choose_what_is_logged_and_journald_gets_priorities() {
    let setup = Setup::new();
    let config = setup.path("debug.toml");
    fs::write(&config, "log_level = \"debug\"\n").unwrap();
    let config = s(&config);

    let quiet = stderr_of(run(&setup, &[]), "default level");
    assert!(!quiet.contains(STARTS), "info by default:\n{quiet}");

    let mut c = run(&setup, &[]);
    c.env("RUST_LOG", "debug");
    let debug = stderr_of(c, "RUST_LOG=debug");
    let line = debug
        .lines()
        .find(|l| l.contains(STARTS))
        .unwrap_or_else(|| panic!("{debug}"));
    assert!(
        line.contains("DEBUG") && line.contains("stream=0"),
        "{line}"
    );
    assert!(!line.contains('\x1b'), "colours on a pipe: {line:?}");

    let from_file = stderr_of(run(&setup, &["--config", config]), "log_level = debug");
    assert!(from_file.contains(STARTS), "{from_file}");
    let from_flag = stderr_of(
        run(&setup, &["--log-level", "camseal=debug"]),
        "--log-level",
    );
    assert!(from_flag.contains(STARTS), "{from_flag}");

    let mut c = run(&setup, &["--config", config]);
    c.env("RUST_LOG", "info");
    let overridden = stderr_of(c, "RUST_LOG=info over log_level = debug");
    assert!(!overridden.contains(STARTS), "RUST_LOG wins:\n{overridden}");

    // Standard error to a file that JOURNAL_STREAM names: priority prefixes, no timestamps.
    let journal = setup.path("journal");
    let journal_text = journal_run(&setup, &journal, true);
    let line = journal_text
        .lines()
        .find(|l| l.contains(STARTS))
        .unwrap_or_else(|| panic!("{journal_text}"));
    assert!(line.starts_with("<7>camseal::run: "), "{line:?}");
    assert!(!journal_text.contains('\x1b'), "{journal_text:?}");
    assert!(!line.contains("DEBUG"), "{line:?}");

    // The error that ends a failed command is filed as an error.
    let failing = setup.path("failing");
    let file = fs::File::create(&failing).unwrap();
    let named = file.metadata().unwrap();
    let out = command(&[
        "run",
        "--home",
        s(&setup.path("no-camera")),
        "--out",
        s(&setup.path("failing-out")),
    ])
    .env_remove("RUST_LOG")
    .env("JOURNAL_STREAM", format!("{}:{}", named.dev(), named.ino()))
    .stderr(Stdio::from(file))
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = fs::read_to_string(&failing).unwrap();
    assert!(text.starts_with("<3>error: "), "{text:?}");

    // JOURNAL_STREAM inherited but standard error elsewhere: plain lines.
    let plain = journal_run(&setup, &setup.path("elsewhere"), false);
    let line = plain
        .lines()
        .find(|l| l.contains(STARTS))
        .unwrap_or_else(|| panic!("{plain}"));
    assert!(!line.starts_with('<'), "{line:?}");
}

/// A run at debug level with standard error to `path`, and JOURNAL_STREAM naming that file
/// (`matching`) or another one.
fn journal_run(setup: &Setup, path: &Path, matching: bool) -> String {
    let file = fs::File::create(path).unwrap();
    let other = setup.path("other-stream");
    fs::write(&other, "").unwrap();
    let named = if matching {
        file.metadata().unwrap()
    } else {
        fs::metadata(&other).unwrap()
    };
    let mut c = run(setup, &[]);
    c.env("RUST_LOG", "debug")
        .env("JOURNAL_STREAM", format!("{}:{}", named.dev(), named.ino()))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(file));
    let out = c.output().unwrap();
    let (stdout, _) = texts(&out);
    assert!(out.status.success(), "{stdout}");
    fs::read_to_string(path).unwrap()
}

/// Library code logs through `tracing`; only the binary writes to standard output and error.
#[test]
fn library_code_does_not_print() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path == src.join("bin") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if ["eprintln!", "println!", "eprint!", "print!", "dbg!"]
                        .iter()
                        .any(|m| code.contains(m))
                    {
                        offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "print in library code:\n{}",
        offenders.join("\n")
    );
}
