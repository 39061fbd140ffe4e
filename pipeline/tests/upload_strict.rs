//! The uploader against the strict S3 server in `strict_s3/` (in-process, no external
//! server, so these always run): write-once verified uploads under Object Lock, overwrite
//! refusal, error classes by S3 code, `Retry-After`, per-segment backoff, early refusals,
//! a refusal forgotten after a success, clock skew through `faketime`, listing loops, the
//! GCS namespace, `start-after`, the download cap, and credentials kept out of logs and
//! the spool.

mod cli;
mod strict_s3;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli::*;
use strict_s3::{ACCESS_KEY, BUCKET, Config, CountingProxy, Fault, Rule, SECRET_KEY, StrictS3};

/// `camseal ARGS` with the strict server's credentials and nothing from the environment.
fn cmd(args: &[&str]) -> Command {
    let mut c = command(args);
    c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3");
    for proxy in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        // The system trust store is the distribution's unless a test names one.
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        c.env_remove(proxy);
    }
    c
}

/// Runs `c` to its end, failing the test (instead of hanging) after `limit`.
fn output_within(mut c: Command, limit: Duration) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, limit)
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "camseal did not finish within {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

const LIMIT: Duration = Duration::from_secs(90);

fn fill_spool(setup: &Setup, home: &Path, spool: &Path, seconds: &str, extra: &[&str]) {
    let mut args = vec![
        "run",
        "--home",
        s(home),
        "--source",
        "soft",
        "--duration",
        seconds,
        "--spool",
        s(spool),
    ];
    if !extra.contains(&"--segment-seconds") {
        args.extend_from_slice(&["--segment-seconds", "0.5"]);
    }
    args.extend_from_slice(extra);
    let _ = setup;
    succeeded(&camseal(&args), "run into the spool");
}

fn pending(spool: &Path) -> serde_json::Value {
    let (out, _) = succeeded(
        &camseal(&["status", "--spool", s(spool), "--json"]),
        "status",
    );
    serde_json::from_str(&out).unwrap()
}

fn queued(spool: &Path) -> u64 {
    pending(spool)["pending_segments"].as_u64().unwrap()
}

fn upload_once(url: &str, spool: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["upload", "--spool", s(spool), "--sink", url, "--once"];
    args.extend_from_slice(extra);
    output_within(cmd(&args), LIMIT)
}

const FAST_RETRY: [&str; 4] = ["--retry-base-delay", "0.02", "--retry-max-delay", "0.1"];

fn fetch(url: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["fetch", "--sink", url, "--out", s(out)];
    args.extend_from_slice(extra);
    output_within(cmd(&args), LIMIT)
}

#[test]
fn object_lock_bucket_gets_verified_write_once_uploads() {
    let server = StrictS3::start(Config {
        object_lock: true,
        ..Config::default()
    });
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "2", &[]);
    let n = queued(&spool);
    assert!(n >= 2);
    let url = format!(
        "{}&retain-days=30&lock-mode=COMPLIANCE&storage-class=STANDARD_IA&sse=aws:kms&sse-kms-key-id=camseal-key",
        server.url("lock")
    );
    succeeded(
        &upload_once(&url, &spool, &[]),
        "upload to an Object Lock bucket",
    );
    assert_eq!(queued(&spool), 0);
    assert_eq!(server.segment_keys().len() as u64, n);
    for seen in server
        .seen()
        .iter()
        .filter(|r| r.method == "PUT" && r.key.ends_with(".cseg"))
    {
        for h in [
            "content-md5",
            "x-amz-checksum-sha256",
            "x-amz-object-lock-retain-until-date",
        ] {
            assert!(seen.headers.contains_key(h), "{h} missing: {seen:?}");
        }
        assert_eq!(
            seen.headers.get("if-none-match").map(String::as_str),
            Some("*")
        );
        assert_eq!(
            seen.headers
                .get("x-amz-object-lock-mode")
                .map(String::as_str),
            Some("COMPLIANCE")
        );
        for (h, v) in [
            ("x-amz-storage-class", "STANDARD_IA"),
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-aws-kms-key-id", "camseal-key"),
        ] {
            assert_eq!(seen.headers.get(h).map(String::as_str), Some(v), "{h}");
        }
    }
    let got = setup.path("got");
    succeeded(&fetch(&server.url("lock"), &got, &[]), "fetch");
    assert_eq!(segments(&got).len() as u64, n);
    setup.decrypt_ok(&[&got], &[]);
}

#[test]
fn a_reset_chain_cannot_overwrite_stored_evidence() {
    let server = StrictS3::start(Config::default());
    let setup = Setup::new();
    // The same camera, twice from the same chain state: the second run reuses the
    // sequence numbers (a reset chain state, or a stolen key) with other bytes.
    let twin = setup.path("twin-home");
    copy_dir(&setup.camera, &twin);
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1.5", &[]);
    let url = server.url("reset");
    succeeded(&upload_once(&url, &spool, &[]), "first upload");
    let before = server.state().objects.clone();
    let spool2 = setup.path("spool2");
    fill_spool(&setup, &twin, &spool2, "1.5", &[]);
    let n2 = queued(&spool2);
    let out = upload_once(&url, &spool2, &[]);
    let err = failed(&out, 1, "upload over existing evidence");
    let (_, log) = texts(&out);
    assert!(log.contains("CONFLICT"), "{log}");
    assert!(err.contains("CONFLICT") || err.contains("refused"), "{err}");
    // Nothing was replaced, and the conflicting segments are kept.
    let after = server.state().objects.clone();
    for (k, o) in &before {
        assert_eq!(after[k].data, o.data, "{k} was overwritten");
    }
    assert_eq!(queued(&spool2), n2);
}

#[test]
fn a_retried_upload_whose_answer_was_lost_counts_as_done() {
    let server = StrictS3::start(Config::default());
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let n = queued(&spool);
    let copy = setup.path("spool-copy");
    copy_dir(&spool, &copy);
    let url = server.url("lost");
    succeeded(&upload_once(&url, &spool, &[]), "first upload");
    // The same segments again (the spool copy survived, as after a lost answer).
    let out = upload_once(&url, &copy, &[]);
    let (_, log) = succeeded(&out, "repeat upload");
    assert!(
        log.contains("already stored with the same checksum"),
        "{log}"
    );
    assert_eq!(queued(&copy), 0);
    let heads = server
        .seen()
        .iter()
        .filter(|r| r.method == "HEAD" && r.key.ends_with(".cseg"))
        .count() as u64;
    assert!(heads >= n, "{heads} HEADs for {n} segments");
}

#[test]
fn request_timeout_400_is_retried_and_retry_after_is_honoured() {
    let server = StrictS3::start(Config::default());
    server.add_rule(Rule::new(
        "PUT",
        Fault::Error(400, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.", None),
    ));
    server.add_rule(Rule::new(
        "PUT",
        Fault::Error(503, "SlowDown", "Please reduce your request rate.", Some(2)),
    ));
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let mut args = vec!["--upload-concurrency", "1"];
    args.extend_from_slice(&FAST_RETRY);
    let (_, log) = succeeded(&upload_once(&server.url("codes"), &spool, &args), "upload");
    assert!(log.contains("RequestTimeout"), "{log}");
    assert_eq!(queued(&spool), 0);
    // Nothing was sent during the 2 s the SlowDown asked for.
    let seen = server.seen();
    let slow = seen.iter().position(|r| r.code == "SlowDown").unwrap();
    let next = seen[slow + 1..].iter().find(|r| r.method == "PUT").unwrap();
    let gap = next.at.duration_since(seen[slow].at);
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
}

#[test]
fn one_failing_segment_does_not_hold_back_the_others() {
    let server = StrictS3::start(Config::default());
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "2", &[]);
    let n = queued(&spool) as usize;
    // The oldest segment fails until every other one is stored.
    server.add_rule(Rule {
        method: "PUT",
        key_contains: Some("/000000000000.cseg".into()),
        times: None,
        until_stored: Some(n - 1),
        fault: Fault::Error(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
            None,
        ),
    });
    let args = [
        "--upload-concurrency",
        "1",
        "--retry-base-delay",
        "0.5",
        "--retry-max-delay",
        "0.5",
    ];
    succeeded(&upload_once(&server.url("perseg"), &spool, &args), "upload");
    assert_eq!(server.segment_keys().len(), n);
}

#[test]
fn an_early_refusal_is_a_permanent_403_not_a_retried_broken_pipe() {
    // A small receive window, as across a real uplink: a body sent without waiting for the
    // answer is still being written when the server refuses it.
    let server = StrictS3::start(Config {
        small_receive_buffer: true,
        ..Config::default()
    });
    server.add_rule(Rule {
        method: "PUT",
        key_contains: None,
        times: None,
        until_stored: None,
        fault: Fault::Early(403, "AccessDenied", "Access Denied"),
    });
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(
        &setup,
        &setup.camera,
        &spool,
        "4",
        // Larger than the client's largest socket send buffer (4 MB on Linux).
        &["--bitrate", "16000000", "--segment-seconds", "4"],
    );
    let n = queued(&spool);
    let out = upload_once(&server.url("early"), &spool, &FAST_RETRY);
    let err = failed(&out, 1, "upload to a refusing server");
    assert!(err.contains("403"), "{err}");
    let status = pending(&spool);
    assert_eq!(status["pending_segments"].as_u64(), Some(n));
    assert!(
        status["last_error"].as_str().unwrap().contains("403"),
        "{status}"
    );
}

#[test]
fn a_refusal_is_forgotten_once_uploads_work_again() {
    let server = StrictS3::start(Config::default());
    server.add_rule(Rule::new(
        "PUT",
        Fault::Error(403, "AccessDenied", "Access Denied", None),
    ));
    let setup = Setup::new();
    let spool = setup.path("spool");
    let out = output_within(
        cmd(&[
            "run",
            "--home",
            s(&setup.camera),
            "--source",
            "soft",
            "--duration",
            "2",
            "--segment-seconds",
            "0.5",
            "--spool",
            s(&spool),
            "--sink",
            &server.url("sticky"),
            "--retry-base-delay",
            "0.05",
            "--retry-max-delay",
            "0.2",
            "--upload-grace",
            "60",
        ]),
        LIMIT,
    );
    let (_, log) = succeeded(&out, "run after one refusal");
    assert!(
        log.contains("PERMANENT FAILURE"),
        "the 403 was not seen:\n{log}"
    );
    assert!(!log.contains("are refused"), "{log}");
    assert_eq!(queued(&spool), 0);
}

#[test]
fn a_listing_that_repeats_its_token_stops() {
    let server = StrictS3::start(Config {
        page_size: 1,
        repeat_token: true,
        ..Config::default()
    });
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1.5", &[]);
    succeeded(&upload_once(&server.url("loop"), &spool, &[]), "upload");
    let out = fetch(&server.url("loop"), &setup.path("got"), &[]);
    let err = failed(&out, 1, "fetch from a looping listing");
    assert!(err.contains("continuation token"), "{err}");
}

#[test]
fn gcs_listing_pages_and_since_uses_start_after() {
    let server = StrictS3::start(Config {
        gcs_namespace: true,
        page_size: 2,
        ..Config::default()
    });
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "2.5", &[]);
    let n = queued(&spool);
    let url = server.url("gcs");
    succeeded(&upload_once(&url, &spool, &[]), "upload");
    let got = setup.path("got");
    succeeded(&fetch(&url, &got, &[]), "fetch from a GCS-style listing");
    assert_eq!(segments(&got).len() as u64, n);
    setup.decrypt_ok(&[&got], &[]);
    let camera = server.segment_keys()[0]
        .split('/')
        .nth(1)
        .unwrap()
        .to_string();
    let since = setup.path("since");
    let before = server.seen().len();
    succeeded(
        &fetch(
            &url,
            &since,
            &["--camera", &camera, "--stream", "0", "--since", "3"],
        ),
        "fetch --since",
    );
    assert_eq!(segments(&since).len() as u64, n - 3);
    let lists: Vec<_> = server.seen()[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains_key("list-type"))
        .cloned()
        .collect();
    assert_eq!(
        lists[0].query.get("start-after").map(String::as_str),
        Some(format!("gcs/{camera}/0/000000000002.cseg").as_str()),
        "{lists:?}"
    );
}

#[test]
fn a_download_larger_than_the_cap_is_refused() {
    let server = StrictS3::start(Config::default());
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let url = server.url("huge");
    succeeded(&upload_once(&url, &spool, &[]), "upload");
    server.add_rule(Rule {
        method: "GET",
        key_contains: Some(".cseg".into()),
        times: None,
        until_stored: None,
        fault: Fault::HugeBody,
    });
    let out = fetch(&url, &setup.path("got"), &[]);
    let err = one_line_error(&out, "fetch of a huge object");
    let (_, log) = texts(&out);
    assert!(log.contains("larger than"), "{err}\n{log}");
}

/// `faketime` (Debian's package), or None with a note.
fn faketime() -> Option<&'static str> {
    let ok = Command::new("faketime")
        .args(["-f", "+0", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "faketime is missing (scripts/install-deps.sh installs it)"
        );
        eprintln!("SKIPPED: faketime is not installed (scripts/install-deps.sh installs it)");
        return None;
    }
    Some("faketime")
}

fn skewed_upload(offset: &str, expect: &[&str]) {
    let Some(faketime) = faketime() else { return };
    let server = StrictS3::start(Config::default());
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let mut c = cmd(&["--version"]);
    let mut args = vec![
        "-f".to_string(),
        offset.to_string(),
        env!("CARGO_BIN_EXE_camseal").to_string(),
    ];
    for a in [
        "upload",
        "--spool",
        s(&spool),
        "--sink",
        &server.url("skew"),
        "--once",
    ]
    .iter()
    .chain(FAST_RETRY.iter())
    {
        args.push(a.to_string());
    }
    c = {
        let mut f = Command::new(faketime);
        f.args(&args).stdin(Stdio::null());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => f.env(k, v),
                None => f.env_remove(k),
            };
        }
        f.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        f
    };
    let out = output_within(c, LIMIT);
    let (_, log) = succeeded(&out, "upload from a skewed clock");
    assert!(
        expect.iter().any(|e| log.contains(e)),
        "no skew report among {expect:?}:\n{log}"
    );
    assert!(!log.contains("check the credentials"), "{log}");
    assert_eq!(queued(&spool), 0);
}

#[test]
fn camera_clock_two_hours_behind_uploads_after_correction() {
    skewed_upload(
        "-2h",
        &[
            "camera clock is 2 h 0 min behind the server",
            "camera clock is 1 h 59 min behind the server",
        ],
    );
}

#[test]
fn camera_clock_thirty_minutes_ahead_uploads_after_correction() {
    skewed_upload(
        "+30m",
        &[
            "camera clock is 30 min 0 s ahead of the server",
            "camera clock is 29 min 59 s ahead of the server",
            "camera clock is 30 min 1 s ahead of the server",
        ],
    );
}

#[test]
fn credentials_never_reach_a_log_or_the_spool() {
    // A token the server has expired, then a wrong secret: every failure path prints.
    let server = StrictS3::start(Config {
        expired_tokens: vec!["SESSION-TOKEN-do-not-log-42".into()],
        ..Config::default()
    });
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let url = server.url("secrets");
    let mut logs = String::new();
    for (secret, token) in [
        (SECRET_KEY, Some("SESSION-TOKEN-do-not-log-42")),
        ("wrong-secret-do-not-log-77", None),
    ] {
        let mut c = cmd(&["upload", "--spool", s(&spool), "--sink", &url, "--once"]);
        c.args(FAST_RETRY).env("AWS_SECRET_ACCESS_KEY", secret);
        if let Some(t) = token {
            c.env("AWS_SESSION_TOKEN", t);
        }
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The expired token is retried (it may be reloaded): give it a few rounds.
        std::thread::sleep(Duration::from_secs(2));
        let out = if token.is_some() {
            let mut child = child;
            let _ = child.kill();
            child.wait_with_output().unwrap()
        } else {
            wait_output(child, LIMIT)
        };
        let (o, e) = texts(&out);
        logs.push_str(&o);
        logs.push_str(&e);
    }
    let (status, _) = succeeded(&camseal(&["status", "--spool", s(&spool)]), "status");
    logs.push_str(&status);
    assert!(
        logs.contains("ExpiredToken") && logs.contains("SignatureDoesNotMatch"),
        "{logs}"
    );
    let mut spool_bytes = Vec::new();
    for e in walk(&spool) {
        spool_bytes.extend(fs::read(e).unwrap());
    }
    for secret in [
        SECRET_KEY,
        "SESSION-TOKEN-do-not-log-42",
        "wrong-secret-do-not-log-77",
        "X-Amz-Signature",
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
        assert!(
            !spool_bytes
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} in the spool"
        );
    }
}

#[test]
fn http_sink_refuses_passwords_in_its_url_and_sends_a_bearer_token() {
    let server = StrictS3::start(Config {
        bearer: Some("BEARER-do-not-log-9".into()),
        ..Config::default()
    });
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let n = queued(&spool) as usize;
    let leaky = format!(
        "http://camuser:PASSWORD-do-not-log-5@127.0.0.1:{}/{BUCKET}/http",
        server.port
    );
    let out = upload_once(&leaky, &spool, &FAST_RETRY);
    assert!(!out.status.success(), "a password in the URL was accepted");
    let (o, e) = texts(&out);
    let mut logs = o + &e;
    let token = setup.path("token");
    fs::write(&token, "BEARER-do-not-log-9\n").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/{BUCKET}/http#token-file={}",
        server.port,
        s(&token)
    );
    let (o, e) = succeeded(
        &upload_once(&url, &spool, &[]),
        "upload with a bearer token",
    );
    logs.push_str(&o);
    logs.push_str(&e);
    assert_eq!(queued(&spool), 0);
    assert_eq!(server.segment_keys().len(), n);
    let (status, _) = succeeded(&camseal(&["status", "--spool", s(&spool)]), "status");
    logs.push_str(&status);
    let mut spool_bytes = Vec::new();
    for f in walk(&spool) {
        spool_bytes.extend(fs::read(f).unwrap());
    }
    for secret in ["PASSWORD-do-not-log-5", "BEARER-do-not-log-9"] {
        assert!(!logs.contains(secret), "{secret} printed:\n{logs}");
        assert!(
            !spool_bytes
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} in the spool"
        );
    }
}

#[test]
fn a_profile_in_the_url_beats_the_environment_and_expired_tokens_are_reloaded() {
    // The session token the server accepts rotates: the first one expires once a segment is
    // stored, and the credentials file then holds the next one.
    let server = StrictS3::start(Config {
        session_token: Some("TOKEN-1".into()),
        ..Config::default()
    });
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "2", &[]);
    let n = queued(&spool) as usize;
    assert!(n >= 3);
    let creds = setup.path("credentials");
    let write = |token: &str| {
        fs::write(
            &creds,
            format!(
                "[default]\naws_access_key_id=nobody\naws_secret_access_key=nothing\n\n[camera]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\naws_session_token={token}\n"
            ),
        )
        .unwrap();
    };
    write("TOKEN-1");
    let url = format!(
        "{}&profile=camera&credentials={}",
        server.url("rotate"),
        s(&creds)
    );
    // The environment holds other (wrong) keys: the URL's profile must win.
    let mut c = cmd(&[
        "upload",
        "--spool",
        s(&spool),
        "--sink",
        &url,
        "--upload-concurrency",
        "1",
        // Slow, so segments are still waiting when the token expires.
        "--upload-max-bytes-per-sec",
        "100000",
        "--retry-base-delay",
        "0.05",
        "--retry-max-delay",
        "0.2",
    ]);
    c.env("AWS_SECRET_ACCESS_KEY", "env-secret-that-must-lose");
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    while server.segment_keys().is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing uploaded with the URL's profile"
        );
        assert!(child.try_wait().unwrap().is_none(), "the uploader stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    write("TOKEN-2");
    {
        let mut st = server.state();
        st.config.session_token = Some("TOKEN-2".into());
        st.config.expired_tokens = vec!["TOKEN-1".into()];
    }
    while queued(&spool) > 0 {
        assert!(
            Instant::now() < deadline,
            "the uploads did not resume after the token expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(server.segment_keys().len(), n);
    let expired = server
        .seen()
        .iter()
        .filter(|r| r.code == "ExpiredToken")
        .count();
    assert!(expired > 0, "the rotation came after the last upload");
    assert!(log.contains("credentials reloaded"), "{log}");
    assert!(
        !log.contains("TOKEN-1") && !log.contains("TOKEN-2"),
        "{log}"
    );
}

#[test]
fn uploads_go_through_the_proxy_of_the_environment() {
    let server = StrictS3::start(Config::default());
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let n = queued(&spool) as usize;
    // A host that does not resolve: only the proxy can reach it.
    let url =
        format!("s3://{BUCKET}/proxied?endpoint=http://camseal-s3.invalid:9000&region=us-east-1");
    let mut c = cmd(&["upload", "--spool", s(&spool), "--sink", &url, "--once"]);
    c.env("HTTP_PROXY", server.endpoint())
        .env("HTTPS_PROXY", server.endpoint())
        .env("NO_PROXY", "localhost");
    succeeded(&output_within(c, LIMIT), "upload through a proxy");
    assert_eq!(server.segment_keys().len(), n);
    let proxied = server.state().proxied.clone();
    assert!(
        proxied
            .iter()
            .all(|t| t.contains("camseal-s3.invalid:9000"))
            && proxied.len() >= n,
        "{proxied:?}"
    );
}

/// A private CA and a certificate for 127.0.0.1 it signed, made with `openssl`:
/// (CA PEM, server chain PEM, server key PEM).
fn private_ca(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    let (ca_key, ca_pem) = (p("ca.key"), p("ca.pem"));
    ca.extend_from_slice(&[
        "-keyout",
        s(&ca_key),
        "-out",
        s(&ca_pem),
        "-days",
        "2",
        "-subj",
        "/CN=camseal test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&ca);
    let (key, csr, cert, ext) = (
        p("server.key"),
        p("server.csr"),
        p("server.pem"),
        p("ext.cnf"),
    );
    let mut req = vec!["req"];
    req.extend_from_slice(&ec);
    req.extend_from_slice(&[
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&req);
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca_pem),
        "-CAkey",
        s(&ca_key),
        "-CAcreateserial",
        "-out",
        s(&cert),
        "-days",
        "2",
        "-extfile",
        s(&ext),
    ]);
    (ca_pem, cert, key)
}

#[test]
fn a_private_ca_given_with_ca_file_is_trusted_and_a_wrong_one_fails_fast() {
    let setup = Setup::new();
    let (ca, cert, key) = private_ca(setup.dir.path(), "good");
    let (other_ca, _, _) = private_ca(setup.dir.path(), "other");
    let server = StrictS3::start_tls(Config::default(), &cert, &key);
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let n = queued(&spool);
    // Not trusted: the default store (the system's, without this CA), then another
    // private CA. Permanent, named, and `upload --once` ends.
    for url in [
        server.url("tls"),
        format!("{}&ca={}", server.url("tls"), s(&other_ca)),
    ] {
        let out = upload_once(&url, &spool, &FAST_RETRY);
        let err = failed(&out, 1, "upload to an untrusted certificate");
        assert!(err.contains("TLS certificate error"), "{err}");
        assert_eq!(queued(&spool), n);
    }
    let url = format!("{}&ca={}", server.url("tls"), s(&ca));
    succeeded(
        &upload_once(&url, &spool, &[]),
        "upload trusting the private CA",
    );
    assert_eq!(server.segment_keys().len() as u64, n);
}

/// A client certificate (`clientAuth`) named `name`, signed by the CA `private_ca(dir,
/// ca_name)` made: (certificate PEM, key PEM).
fn client_certificate(
    dir: &Path,
    ca_name: &str,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let p = |f: &str| dir.join(format!("{ca_name}-{name}-{f}"));
    let (ca_pem, ca_key) = (
        dir.join(format!("{ca_name}-ca.pem")),
        dir.join(format!("{ca_name}-ca.key")),
    );
    let (key, csr, cert, ext) = (p("key.pem"), p("csr"), p("cert.pem"), p("ext.cnf"));
    fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for args in [
        vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            s(&key),
            "-out",
            s(&csr),
            "-subj",
            "/CN=camera",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            s(&csr),
            "-CA",
            s(&ca_pem),
            "-CAkey",
            s(&ca_key),
            "-CAcreateserial",
            "-out",
            s(&cert),
            "-days",
            "2",
            "-extfile",
            s(&ext),
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (cert, key)
}

#[test]
fn the_system_trust_store_is_trusted_without_ca() {
    let setup = Setup::new();
    let (ca, cert, key) = private_ca(setup.dir.path(), "system");
    let (other_ca, _, _) = private_ca(setup.dir.path(), "notsystem");
    let server = StrictS3::start_tls(Config::default(), &cert, &key);
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let n = queued(&spool);
    let upload = |var: &str, value: &Path| {
        let mut args = vec!["upload", "--spool", s(&spool), "--sink", "", "--once"];
        let url = server.url("system");
        args[4] = &url;
        args.extend_from_slice(&FAST_RETRY);
        let mut c = cmd(&args);
        c.env(var, value);
        output_within(c, LIMIT)
    };
    // A store (SSL_CERT_FILE, as OpenSSL reads it) without the server's CA: refused at
    // once, named, permanent.
    let out = upload("SSL_CERT_FILE", &other_ca);
    let err = failed(&out, 1, "upload under a store without the CA");
    assert!(err.contains("TLS certificate error"), "{err}");
    assert_eq!(queued(&spool), n);
    // An empty store (a camera image without one): the compiled-in roots, said so.
    let store = setup.path("store");
    fs::create_dir(&store).unwrap();
    let out = upload("SSL_CERT_DIR", &store);
    let err = failed(&out, 1, "upload under an empty store");
    assert!(err.contains("TLS certificate error"), "{err}");
    let (_, log) = texts(&out);
    assert!(
        log.contains("holds no certificate; trusting the Mozilla roots compiled into camseal"),
        "{log}"
    );
    // The CA installed in the store directory: trusted without `ca=`.
    fs::copy(&ca, store.join("camseal-test-ca.pem")).unwrap();
    succeeded(
        &upload("SSL_CERT_DIR", &store),
        "upload trusting the system store",
    );
    assert_eq!(server.segment_keys().len() as u64, n);
}

#[test]
fn client_certificates_and_ca_files_on_s3_and_https_sinks() {
    let setup = Setup::new();
    let dir = setup.dir.path();
    let (ca, cert, key) = private_ca(dir, "mtls");
    let (client, client_key) = client_certificate(dir, "mtls", "camera");
    let s3 = StrictS3::start_mtls(Config::default(), &cert, &key, Some(&ca));
    let token = setup.path("token");
    fs::write(&token, "BEARER-mtls-1\n").unwrap();
    let web = StrictS3::start_mtls(
        Config {
            bearer: Some("BEARER-mtls-1".into()),
            ..Config::default()
        },
        &cert,
        &key,
        Some(&ca),
    );
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let n = queued(&spool);
    let copy = setup.path("spool-copy");
    copy_dir(&spool, &copy);
    // Without a client certificate the server ends the handshake: permanent, named.
    let trusted = format!("{}&ca={}", s3.url("mtls"), s(&ca));
    let out = upload_once(&trusted, &spool, &FAST_RETRY);
    let err = failed(&out, 1, "upload without a client certificate");
    assert!(
        err.contains("TLS certificate error") && err.contains("CertificateRequired"),
        "{err}"
    );
    assert_eq!(queued(&spool), n);
    // A key that is not the certificate's: refused when the sink opens.
    let (_, wrong_key) = client_certificate(dir, "mtls", "other");
    let out = upload_once(
        &format!("{trusted}&cert={}&key={}", s(&client), s(&wrong_key)),
        &spool,
        &FAST_RETRY,
    );
    let err = failed(&out, 1, "a client key of another certificate");
    assert!(
        err.contains("cert=") && err.contains("KeyMismatch"),
        "{err}"
    );
    succeeded(
        &upload_once(
            &format!("{trusted}&cert={}&key={}", s(&client), s(&client_key)),
            &spool,
            &[],
        ),
        "upload with a client certificate",
    );
    assert_eq!(s3.segment_keys().len() as u64, n);
    // An https sink: the private CA only with `ca=`, the client certificate and its key in
    // one file.
    let both = setup.path("client-both.pem");
    let mut pem = fs::read(&client).unwrap();
    pem.extend(fs::read(&client_key).unwrap());
    fs::write(&both, pem).unwrap();
    let base = format!("https://127.0.0.1:{}/{BUCKET}/web", web.port);
    let out = upload_once(
        &format!("{base}#token-file={}&cert={}", s(&token), s(&both)),
        &copy,
        &FAST_RETRY,
    );
    let err = failed(&out, 1, "https sink without its CA");
    assert!(err.contains("TLS certificate error"), "{err}");
    succeeded(
        &upload_once(
            &format!(
                "{base}#token-file={}&ca={}&cert={}",
                s(&token),
                s(&ca),
                s(&both)
            ),
            &copy,
            &[],
        ),
        "https sink with ca= and a client certificate",
    );
    assert_eq!(web.segment_keys().len() as u64, n);
}

#[test]
fn no_proxy_and_per_scheme_proxy_variables_are_honoured() {
    let server = StrictS3::start(Config::default());
    // A CONNECT proxy that counts its tunnels (they lead back into it, so what goes through
    // it is stored there, not in `server`).
    let proxy = StrictS3::start(Config::default());
    let setup = Setup::new();
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1", &[]);
    let n = queued(&spool) as usize;
    let copies: Vec<_> = (0..3)
        .map(|i| {
            let c = setup.path(&format!("spool-{i}"));
            copy_dir(&spool, &c);
            c
        })
        .collect();
    let upload = |prefix: &str, spool: &Path, env: &[(&str, String)]| {
        let url = server.url(prefix);
        let mut c = cmd(&["upload", "--spool", s(spool), "--sink", &url, "--once"]);
        for (k, v) in env {
            c.env(k, v);
        }
        succeeded(&output_within(c, LIMIT), prefix);
    };
    let p = proxy.endpoint();
    // HTTPS_PROXY is for https: an http endpoint is reached directly.
    upload("scheme", &copies[0], &[("HTTPS_PROXY", p.clone())]);
    // NO_PROXY as people write it: a space after the comma, and a network.
    upload(
        "noproxy",
        &copies[1],
        &[
            ("HTTP_PROXY", p.clone()),
            ("ALL_PROXY", p.clone()),
            ("NO_PROXY", "camera.lan, 127.0.0.0/8".into()),
        ],
    );
    assert_eq!(proxy.state().proxied, Vec::<String>::new());
    assert_eq!(server.segment_keys().len(), 2 * n);
    // Control: a NO_PROXY that does not name the host leaves HTTP_PROXY in use.
    upload(
        "proxied",
        &copies[2],
        &[
            ("HTTP_PROXY", p.clone()),
            ("NO_PROXY", "camera.lan, 10.0.0.0/8".into()),
        ],
    );
    let proxied = proxy.state().proxied.clone();
    assert!(proxied.len() >= n, "{proxied:?}");
    assert_eq!(server.segment_keys().len(), 2 * n);

    // An https endpoint goes through HTTPS_PROXY (HTTP_PROXY leads nowhere), unless
    // NO_PROXY names it.
    let (ca, cert, key) = private_ca(setup.dir.path(), "proxy");
    let tls = StrictS3::start_tls(Config::default(), &cert, &key);
    let forward = CountingProxy::start();
    let https = |prefix: &str, spool: &Path, no_proxy: Option<&str>| {
        let url = format!("{}&ca={}", tls.url(prefix), s(&ca));
        let mut c = cmd(&["upload", "--spool", s(spool), "--sink", &url, "--once"]);
        c.env("HTTPS_PROXY", forward.url())
            .env("HTTP_PROXY", "http://127.0.0.1:9");
        if let Some(list) = no_proxy {
            c.env("NO_PROXY", list);
        }
        succeeded(&output_within(c, LIMIT), prefix);
    };
    let more: Vec<_> = (0..2)
        .map(|i| {
            let c = setup.path(&format!("spool-tls-{i}"));
            copy_dir(&spool, &c);
            c
        })
        .collect();
    https("via-https-proxy", &more[0], None);
    let through = forward.tunnels();
    assert!(
        through.len() >= n
            && through
                .iter()
                .all(|t| t == &format!("127.0.0.1:{}", tls.port)),
        "{through:?}"
    );
    https("no-proxy-https", &more[1], Some("camera.lan, 127.0.0.1"));
    assert_eq!(
        forward.tunnels().len(),
        through.len(),
        "NO_PROXY was ignored"
    );
    assert_eq!(tls.segment_keys().len(), 2 * n);
}

#[test]
fn a_refusal_answered_mid_body_without_expect_is_its_permanent_4xx() {
    // A small receive window: the refused body is still being written when the answer
    // comes and the connection is reset.
    let config = Config {
        small_receive_buffer: true,
        ..Config::default()
    };
    let setup = Setup::new();
    let (ca, cert, key) = private_ca(setup.dir.path(), "midbody");
    let s3 = StrictS3::start(config.clone());
    let s3_tls = StrictS3::start_tls(config.clone(), &cert, &key);
    // This one keeps the connection open without reading: the write stalls until
    // --io-timeout.
    let stall = StrictS3::start(config.clone());
    let web = StrictS3::start(Config {
        bearer: Some("BEARER-midbody".into()),
        ..config
    });
    let too_large = (413, "EntityTooLarge", "Your proposed upload is too large");
    for server in [&s3, &s3_tls, &web, &stall] {
        let (status, code, message) = too_large;
        server.add_rule(Rule {
            method: "PUT",
            key_contains: None,
            times: None,
            until_stored: None,
            fault: if std::ptr::eq(server, &stall) {
                Fault::MidBodyStall(status, code, message)
            } else {
                Fault::MidBody(status, code, message)
            },
        });
    }
    let spool = setup.path("spool");
    fill_spool(
        &setup,
        &setup.camera,
        &spool,
        "4",
        // Larger than the client's largest socket send buffer (4 MB on Linux).
        &["--bitrate", "16000000", "--segment-seconds", "4"],
    );
    let n = queued(&spool);
    let token = setup.path("token");
    fs::write(&token, "BEARER-midbody").unwrap();
    let web_url = format!(
        "http://127.0.0.1:{}/{BUCKET}/web#token-file={}",
        web.port,
        s(&token)
    );
    let tls_url = format!("{}&ca={}", s3_tls.url("midbody"), s(&ca));
    for (url, server) in [
        (s3.url("midbody"), &s3),
        (tls_url, &s3_tls),
        (web_url, &web),
        (stall.url("midbody"), &stall),
    ] {
        let mut args = vec!["--deadline", "30", "--io-timeout", "1"];
        args.extend_from_slice(&FAST_RETRY);
        let out = upload_once(&url, &spool, &args);
        let err = failed(&out, 1, "upload refused mid-body");
        assert!(err.contains("413") && err.contains("refused"), "{err}");
        assert_eq!(queued(&spool), n);
        assert!(
            pending(&spool)["last_error"]
                .as_str()
                .unwrap()
                .contains("413")
        );
        let seen = server.seen();
        assert!(seen.iter().any(|r| r.code.contains("mid-body")), "{seen:?}");
    }
}

#[test]
fn a_dir_sink_never_overwrites_a_stored_file() {
    let setup = Setup::new();
    let twin = setup.path("twin-home");
    copy_dir(&setup.camera, &twin);
    let spool = setup.path("spool");
    fill_spool(&setup, &setup.camera, &spool, "1.5", &[]);
    let copy = setup.path("spool-copy");
    copy_dir(&spool, &copy);
    let nas = setup.path("nas");
    let url = format!("dir:{}", s(&nas));
    succeeded(&upload_once(&url, &spool, &[]), "first upload");
    let stored: Vec<(std::path::PathBuf, Vec<u8>)> = segments(&nas)
        .into_iter()
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    assert!(!stored.is_empty());
    // The same bytes again (a spool copy that survived its upload): done, not a conflict.
    succeeded(&upload_once(&url, &copy, &[]), "repeat upload");
    assert_eq!(queued(&copy), 0);
    // A reset chain state: the same names, other bytes.
    let spool2 = setup.path("spool2");
    fill_spool(&setup, &twin, &spool2, "1.5", &[]);
    let n2 = queued(&spool2);
    let out = upload_once(&url, &spool2, &[]);
    failed(&out, 1, "upload over stored files");
    let (_, log) = texts(&out);
    assert!(log.contains("CONFLICT"), "{log}");
    for (p, b) in &stored {
        assert_eq!(&fs::read(p).unwrap(), b, "{} was overwritten", p.display());
    }
    assert_eq!(queued(&spool2), n2);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
