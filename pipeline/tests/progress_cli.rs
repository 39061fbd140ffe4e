//! Progress of `decrypt`, `verify`, `fetch` and `upload --once`, through the real binary:
//! - on a terminal (a pseudo-terminal made by util-linux `script`) a bar is drawn, with the
//!   segments and bytes done and to do, and no plain progress line;
//! - when standard error is not a terminal, plain lines only (no bar, no escape codes, no
//!   carriage returns), the last one saying everything is done;
//! - `--quiet` shows neither, even on a terminal;
//! - progress never goes to standard output (scripts read the commands' summaries there).

mod cli;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use cli::{Setup, fixture, s, succeeded};

#[test]
fn long_commands_draw_a_bar_on_a_terminal_plain_lines_elsewhere_and_nothing_when_quiet() {
    if !script_present() {
        return;
    }
    let setup = Setup::new();
    let fx = fixture("h264-baseline");
    let sink = setup.path("sink");
    fs::create_dir(&sink).unwrap();
    let sink_url = format!("dir:{}", sink.display());
    for mode in [Mode::Terminal, Mode::Plain, Mode::Quiet] {
        // Each mode uploads a spool of its own into the same sink, then works on the sink.
        let spool = setup.path(&format!("spool-{mode:?}"));
        let source = fx.source();
        let run = [
            "run",
            "--home",
            s(&setup.camera),
            "--source",
            &source,
            "--segment-seconds",
            "1",
            "--spool",
            s(&spool),
        ];
        succeeded(&cli::camseal(&run), "run --spool");
        let spooled = count_segments(&spool);
        assert!(spooled >= 3, "need several segments, got {spooled}");

        let upload = [
            "upload",
            "--spool",
            s(&spool),
            "--sink",
            &sink_url,
            "--once",
        ];
        check(mode, "upload", &upload, spooled);

        let fetched = setup.path(&format!("fetched-{mode:?}"));
        let fetch = ["fetch", "--sink", &sink_url, "--out", s(&fetched)];
        let in_sink = count_segments(&sink);
        check(mode, "fetch", &fetch, in_sink);
        // The sink holds every mode's uploads so far: one camera's stream, one chain.
        let verify = ["verify", "--camera", s(&setup.camera_pub), s(&fetched)];
        check(mode, "verify", &verify, in_sink);
        let clip = setup.path(&format!("clip-{mode:?}.264"));
        let decrypt = [
            "decrypt",
            "--home",
            s(&setup.viewer),
            "--out",
            s(&clip),
            s(&fetched),
        ];
        check(mode, "decrypt", &decrypt, in_sink);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// On a pseudo-terminal.
    Terminal,
    /// Standard error is a pipe.
    Plain,
    /// On a pseudo-terminal, with `--quiet`.
    Quiet,
}

/// Runs `camseal ARGS` in `mode` and checks what it shows of its progress over `segments`.
fn check(mode: Mode, verb: &str, args: &[&str], segments: usize) {
    let done = format!("{segments}/{segments} segments");
    let line = format!("progress: {verb} {done}");
    let what = format!("{verb} ({mode:?})");
    match mode {
        Mode::Plain => {
            let out = Command::new(env!("CARGO_BIN_EXE_camseal"))
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let (stdout, stderr) = succeeded(&out, &what);
            let last = stderr
                .lines()
                .rfind(|l| l.starts_with("progress: "))
                .unwrap_or_else(|| panic!("{what}: no progress line:\n{stderr}"));
            assert!(last.starts_with(&line), "{what}: last line {last:?}");
            assert!(last.contains("done in"), "{what}: {last:?}");
            assert!(
                !stderr.contains('\r') && !stderr.contains('\x1b'),
                "{what}: {stderr:?}"
            );
            assert!(!stdout.contains("progress"), "{what}: progress on stdout");
        }
        Mode::Terminal | Mode::Quiet => {
            let mut args = args.to_vec();
            if mode == Mode::Quiet {
                args.push("--quiet");
            }
            let screen = on_terminal(&args, &what);
            let bar = format!("{verb} [");
            if mode == Mode::Terminal {
                assert!(screen.contains(&bar), "{what}: no bar:\n{screen}");
                assert!(
                    screen.contains("#####"),
                    "{what}: the bar never fills:\n{screen}"
                );
                assert!(screen.contains(&done), "{what}: no final count:\n{screen}");
                assert!(screen.contains("done in"), "{what}:\n{screen}");
                assert!(
                    !screen.contains("progress: "),
                    "{what}: a plain line on a terminal"
                );
            } else {
                assert!(
                    !screen.contains(&bar),
                    "{what}: a bar despite --quiet:\n{screen}"
                );
                assert!(!screen.contains("progress: "), "{what}:\n{screen}");
                let count = format!("/{segments} segments");
                assert!(!screen.contains(&count), "{what}:\n{screen}");
            }
        }
    }
}

/// Runs `camseal ARGS` with standard input, output and error on a pseudo-terminal
/// (`script -qec`), asserting success; returns what the terminal received.
fn on_terminal(args: &[&str], what: &str) -> String {
    let mut line = shell_quote(env!("CARGO_BIN_EXE_camseal"));
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed on a terminal:\n{screen}"
    );
    screen
}

fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

fn count_segments(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "cseg")
        })
        .count()
}

/// Whether util-linux `script` is installed. Skipping is allowed only off CI: under
/// `CI=true` a missing tool is a broken set-up, not a pass.
fn script_present() -> bool {
    let present = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return true;
    }
    let ci = std::env::var("CI")
        .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
    assert!(
        !ci,
        "CI is set, so this test may not skip: `script` (util-linux) is not installed"
    );
    eprintln!("SKIPPED: `script` (util-linux) is not installed");
    false
}
