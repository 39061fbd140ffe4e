//! `camseal fetch --since/--until` by signed recording time (and by seq, the older meaning
//! of a bare integer, and `--since-seq/--until-seq`), from a directory sink and from the
//! local S3 server; and a bad TIME on `decrypt`, `verify` and `fetch` is a usage error (exit
//! 2) before any footage is read.
//!
//! The S3 part needs the server `scripts/test.sh` starts (`CAMSEAL_TEST_S3_ENDPOINT`); without
//! it that part is skipped with a note, except under `CI=true`, where it fails.

mod cli;

use std::fs;
use std::path::Path;
use std::process::Command;

use camseal::segment::{Header, Parsed};
use cli::{Setup, camseal, command, s, segments, succeeded};

/// The signed open time (Unix ms) of each segment in `dir`, in seq order.
fn open_times(dir: &Path) -> Vec<u64> {
    segments(dir)
        .iter()
        .map(|p| match Header::parse(&fs::read(p).unwrap()).unwrap() {
            Parsed::Complete(h, _) => h.wallclock_ms,
            Parsed::Needed(_) => panic!("{} has no whole header", p.display()),
        })
        .collect()
}

fn rfc3339(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .unwrap()
        .to_string()
}

/// The seqs fetched into `dir`, from their names.
fn seqs(dir: &Path) -> Vec<u64> {
    segments(dir)
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap();
            name.rsplit('-').next().unwrap().parse().unwrap()
        })
        .collect()
}

/// Fetches from `sink` with `extra` into a fresh folder; returns the seqs fetched.
fn fetched(setup: &Setup, env: &dyn Fn(&mut Command), sink: &str, extra: &[&str]) -> Vec<u64> {
    let out = tempfile::tempdir_in(setup.dir.path()).unwrap();
    let mut args = vec!["fetch", "--sink", sink, "--out", s(out.path())];
    args.extend_from_slice(extra);
    let mut c = command(&args);
    env(&mut c);
    succeeded(&c.output().unwrap(), &format!("fetch {extra:?}"));
    seqs(out.path())
}

/// Every way of choosing footage, against one sink holding seqs 0..n of one stream whose
/// open times are `opens`.
fn check_selection(setup: &Setup, env: &dyn Fn(&mut Command), sink: &str, opens: &[u64]) {
    let n = opens.len() as u64;
    let all: Vec<u64> = (0..n).collect();
    assert_eq!(fetched(setup, env, sink, &[]), all);
    // Segment 3 is being recorded at `since`, segment 5 opens exactly at `until`.
    let since = rfc3339(opens[3] + (opens[4] - opens[3]) / 2);
    let until = rfc3339(opens[5]);
    assert_eq!(
        fetched(setup, env, sink, &["--since", &since, "--until", &until]),
        vec![3, 4, 5]
    );
    assert_eq!(
        fetched(setup, env, sink, &["--since", &since]),
        (3..n).collect::<Vec<_>>()
    );
    assert_eq!(
        fetched(setup, env, sink, &["--until", &until]),
        vec![0, 1, 2, 3, 4, 5]
    );
    // Relative times: all of it was recorded within the last day, none of it before.
    assert_eq!(fetched(setup, env, sink, &["--since", "-1d"]), all);
    assert_eq!(
        fetched(setup, env, sink, &["--until", "-1d"]),
        Vec::<u64>::new()
    );
    // A bare integer is a sequence number, as it always was; the explicit spellings too.
    assert_eq!(
        fetched(setup, env, sink, &["--since", "2", "--until", "4"]),
        vec![2, 3, 4]
    );
    assert_eq!(
        fetched(setup, env, sink, &["--since-seq", "6"]),
        (6..n).collect::<Vec<_>>()
    );
    assert_eq!(
        fetched(
            setup,
            env,
            sink,
            &["--until-seq", "1", "--since", &rfc3339(opens[0])]
        ),
        vec![0, 1]
    );
}

/// Records 8 one-second segments (a fresh stream per call).
fn record(setup: &Setup, out: &Path, stream: &str, extra: &[&str]) -> Vec<u64> {
    let mut args = vec![
        "run",
        "--home",
        s(&setup.camera),
        "--source",
        "soft:320x240@30",
        "--duration",
        "8",
        "--segment-seconds",
        "1",
        "--stream",
        stream,
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    succeeded(&camseal(&args), "run");
    let opens = open_times(out);
    assert_eq!(opens.len(), 8, "{} segments", opens.len());
    assert!(
        opens.windows(2).all(|w| w[0] < w[1]),
        "open times {opens:?}"
    );
    opens
}

#[test]
fn fetch_selects_by_signed_time_or_seq_from_a_directory_sink() {
    let setup = Setup::new();
    let segs = setup.path("segs");
    let opens = record(&setup, &segs, "0", &[]);
    let sink = format!("dir:{}", s(&segs));
    check_selection(&setup, &|_| {}, &sink, &opens);
    // Both spellings of one bound at once is a usage error.
    let out = camseal(&[
        "fetch",
        "--sink",
        &sink,
        "--out",
        "x",
        "--since",
        "2",
        "--since-seq",
        "3",
    ]);
    let stderr = usage_error(&out, "fetch --since with --since-seq");
    assert!(stderr.contains("--since-seq"), "{stderr}");
}

#[test]
fn fetch_selects_by_signed_time_from_s3() {
    let Some(s3) = cli::TestS3::from_env("fetch_selects_by_signed_time_from_s3") else {
        return;
    };
    let prefix = cli::TestS3::fresh_prefix("fetch-time");
    let url = s3.url(&prefix);
    let env = |c: &mut Command| {
        s3.credentials(c);
    };
    let setup = Setup::new();
    let segs = setup.path("segs");
    let spool = setup.path("spool");
    // Recorded into a spool, uploaded to S3 and (for the times) to a folder.
    let mut args = vec![
        "run",
        "--home",
        s(&setup.camera),
        "--source",
        "soft:320x240@30",
        "--duration",
        "8",
        "--segment-seconds",
        "1",
        "--spool",
        s(&spool),
        "--sink",
        &url,
        "--out",
        s(&segs),
        "--upload-grace",
        "60",
    ];
    let mut c = command(&args);
    env(&mut c);
    succeeded(&c.output().unwrap(), "run with an S3 sink");
    args.clear();
    let opens = open_times(&segs);
    assert_eq!(opens.len(), 8);
    assert!(
        opens.windows(2).all(|w| w[0] < w[1]),
        "open times {opens:?}"
    );
    check_selection(&setup, &env, &url, &opens);

    // Through a proxy that watches the traffic: the times come from ranged GETs of the
    // segments' heads, a few per stream (binary search), and only the chosen segments are
    // downloaded whole.
    let watch = Watch::start(s3.endpoint.trim_start_matches("http://"));
    let proxied = format!(
        "s3://{}/{prefix}?endpoint=http://{}&region=us-east-1",
        s3.bucket, watch.addr
    );
    let (since, until) = (
        rfc3339(opens[3] + (opens[4] - opens[3]) / 2),
        rfc3339(opens[5]),
    );
    assert_eq!(
        fetched(
            &setup,
            &env,
            &proxied,
            &["--since", &since, "--until", &until]
        ),
        vec![3, 4, 5]
    );
    let seen = watch.seen();
    let ranged = seen
        .iter()
        .filter(|l| l.starts_with("range: bytes=0-"))
        .count();
    let partial = seen
        .iter()
        .filter(|l| l.starts_with("HTTP/1.1 206"))
        .count();
    let whole = seen
        .iter()
        .filter(|l| l.starts_with("HTTP/1.1 200"))
        .count();
    assert!(
        (2..=8).contains(&ranged),
        "{ranged} header reads for 8 segments: {seen:?}"
    );
    assert_eq!(partial, ranged, "{seen:?}");
    // The listing, and the three segments.
    assert_eq!(whole, 1 + 3, "{seen:?}");
}

/// A loopback TCP proxy to `upstream` that notes each request's `range:` header and each
/// response's status line.
struct Watch {
    addr: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watch {
    fn start(upstream: &str) -> Watch {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = TcpStream::connect(&upstream).unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let log = log.clone();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 16];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            // Heads and status lines arrive at the start of a read here (one
                            // request at a time per connection), which is all this needs.
                            let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                            let mut log = log.lock().unwrap();
                            for line in text.split("\r\n") {
                                if line.starts_with("http/1.1 ") || line.starts_with("range: ") {
                                    let line = line.replacen("http/1.1", "HTTP/1.1", 1);
                                    log.push(line);
                                }
                            }
                            drop(log);
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Watch { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn a_bad_time_is_a_usage_error_before_any_footage_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // None of these exist: a command that got as far as reading them would say so.
    let missing = dir.path().join("missing");
    let m = s(&missing);
    for (what, args) in [
        (
            "decrypt",
            vec![
                "decrypt",
                "--home",
                m,
                "--out",
                m,
                "--since",
                "yesterday-ish",
                m,
            ],
        ),
        (
            "verify",
            vec!["verify", "--camera", m, "--until", "yesterday-ish", m],
        ),
        (
            "fetch",
            vec![
                "fetch",
                "--sink",
                "dir:/nonexistent",
                "--out",
                m,
                "--since",
                "yesterday-ish",
            ],
        ),
        (
            "fetch --until",
            vec![
                "fetch",
                "--sink",
                "dir:/nonexistent",
                "--out",
                m,
                "--until",
                "2026-13-01T00:00:00Z",
            ],
        ),
    ] {
        let stderr = usage_error(&camseal(&args), what);
        assert!(stderr.contains("is not a time"), "{what}: {stderr}");
        assert!(
            !stderr.contains("missing"),
            "{what} read its inputs: {stderr}"
        );
    }
    assert!(!missing.exists());
}

/// Asserts exit status 2 (usage) with an `error:`; returns standard error.
fn usage_error(out: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    stderr
}
