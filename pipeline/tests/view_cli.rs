//! `camseal view` attacked from outside (docs/VIEWER.md): the key endpoint answers only with
//! this run's token and the expected Host (no DNS rebinding), file names cannot climb out of
//! the web root or the segment directory, and the page is served only on loopback unless
//! `--allow-remote`. `--sink URL` (a directory and an S3 bucket) serves exactly the sink's
//! segments. The browser side is scripts/test-web.sh's.

mod cli;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cli::{Setup, s};

struct View {
    child: Child,
    addr: String,
    token: String,
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(setup: &Setup, web: &std::path::Path, segs: &std::path::Path) -> View {
    start_with(setup, web, &["--segments", s(segs)], &|_| {})
}

/// `camseal view` with `recorded` (`--segments DIR` or `--sink URL`) and `env` applied.
fn start_with(
    setup: &Setup,
    web: &std::path::Path,
    recorded: &[&str],
    env: &dyn Fn(&mut std::process::Command),
) -> View {
    let mut args = vec![
        "view",
        "--home",
        s(&setup.viewer),
        "--listen",
        "127.0.0.1:0",
        "--web-root",
        s(web),
    ];
    args.extend_from_slice(recorded);
    let mut command = cli::command(&args);
    env(&mut command);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("view printed no URL");
    let rest = line
        .strip_prefix("view: http://")
        .expect("view: http://...");
    let (addr, token) = rest.split_once("/#token=").expect("a token in the URL");
    View {
        child,
        addr: addr.to_owned(),
        token: token.to_owned(),
    }
}

/// One GET with `host` as Host; the status code and body.
fn get(addr: &str, host: &str, target: &str) -> (u16, Vec<u8>) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        c,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    (status, out[end + 4..].to_vec())
}

#[test]
fn the_key_endpoint_needs_the_token_and_the_right_host() {
    let setup = Setup::new();
    let web = fake_web_root(&setup);
    std::fs::write(setup.path("secret.html"), "outside the web root").unwrap();
    let segs = setup.path("segs");
    std::fs::create_dir_all(&segs).unwrap();
    std::fs::write(segs.join("a.cseg"), b"sealed bytes").unwrap();
    let v = start(&setup, &web, &segs);
    let host = v.addr.as_str();
    let t = &v.token;

    // With the token and the right Host: the keys (the device's key text) and segments.
    let (code, body) = get(host, host, &format!("/api/keys?token={t}"));
    assert_eq!(code, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains("\"secrets\"") && body.contains("\"cameras\""),
        "{body}"
    );
    let (code, body) = get(host, host, &format!("/api/segment/a.cseg?token={t}"));
    assert_eq!((code, body.as_slice()), (200, &b"sealed bytes"[..]));
    let port = host.rsplit_once(':').unwrap().1;
    assert_eq!(
        get(
            host,
            &format!("localhost:{port}"),
            &format!("/api/keys?token={t}")
        )
        .0,
        200
    );

    // No token, a wrong one, a prefix of the right one: refused, and no key in the answer.
    let last = if t.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &t[..t.len() - 1]);
    for target in [
        "/api/keys".to_owned(),
        "/api/keys?token=".to_owned(),
        format!("/api/keys?token={wrong}"),
        format!("/api/keys?token={}", &t[..8]),
        format!("/api/segments?tok={t}"),
    ] {
        let (code, body) = get(host, host, &target);
        assert_eq!(code, 403, "{target}");
        assert!(!String::from_utf8_lossy(&body).contains("secrets"));
    }

    // DNS rebinding: the right token but another origin's name as Host.
    for bad_host in [
        "evil.example:80",
        &format!("evil.example:{port}"),
        "127.0.0.1",
    ] {
        let (code, body) = get(host, bad_host, &format!("/api/keys?token={t}"));
        assert_eq!(code, 421, "Host {bad_host}");
        assert!(!String::from_utf8_lossy(&body).contains("secrets"));
    }

    // Paths that climb out, or name files that are not the page's kind.
    for target in [
        "/../secret.html",
        "/%2e%2e/secret.html",
        "/pkg/../../secret.html",
        "/.hidden.js",
    ] {
        assert_eq!(get(host, host, target).0, 404, "{target}");
    }
    for name in ["..%2fsecret.html", "../a.cseg", ".a.cseg", "a.cseg.part"] {
        assert_eq!(
            get(host, host, &format!("/api/segment/{name}?token={t}")).0,
            404,
            "{name}"
        );
    }
    // The page itself needs no token (it holds no secret).
    let (code, body) = get(host, host, "/");
    assert_eq!((code, body.as_slice()), (200, &b"<!doctype html>page"[..]));
}

#[test]
fn view_listens_only_where_it_may() {
    let setup = Setup::new();
    for (listen, extra) in [
        ("0.0.0.0:0", vec![]),
        ("0.0.0.0:0", vec!["--allow-remote"]),
        ("[::]:0", vec![]),
        ("192.0.2.1:8080", vec![]),
    ] {
        let mut args = vec!["view", "--home", s(&setup.viewer), "--listen", listen];
        args.extend(extra.iter().copied());
        let out = cli::camseal(&args);
        assert!(!out.status.success(), "{listen} {extra:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--listen"), "{err}");
    }
}

/// A stand-in web root: `view` only checks that the page and the WASM are there.
fn fake_web_root(setup: &Setup) -> std::path::PathBuf {
    let web = setup.path("web");
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(web.join("index.html"), "<!doctype html>page").unwrap();
    std::fs::write(web.join("pkg/camseal_web_bg.wasm"), b"\0asm").unwrap();
    web
}

/// The segment names `/api/segments` lists.
fn listed(v: &View) -> Vec<String> {
    let (code, body) = get(
        &v.addr,
        &v.addr,
        &format!("/api/segments?token={}", v.token),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// What `view --sink URL` serves is exactly the sink's segments: every one listed, in name
/// order, and each byte for byte as recorded; a name the sink lacks is a 404.
fn check_served(v: &View, recorded: &std::path::Path) {
    let mut expected = cli::dir_names(recorded);
    expected.retain(|n| n.ends_with(".cseg"));
    expected.sort();
    assert!(expected.len() >= 2, "recorded {expected:?}");
    assert_eq!(listed(v), expected);
    for name in &expected {
        let (code, body) = get(
            &v.addr,
            &v.addr,
            &format!("/api/segment/{name}?token={}", v.token),
        );
        assert_eq!(code, 200, "{name}: {}", String::from_utf8_lossy(&body));
        assert!(
            body == std::fs::read(recorded.join(name)).unwrap(),
            "{name} differs from the recorded segment"
        );
    }
    let missing = expected[0].replacen(".cseg", "0.cseg", 1);
    let (code, _) = get(
        &v.addr,
        &v.addr,
        &format!("/api/segment/{missing}?token={}", v.token),
    );
    assert_eq!(code, 404, "{missing}");
}

#[test]
fn view_serves_recorded_footage_from_a_directory_sink() {
    let setup = Setup::new();
    let web = fake_web_root(&setup);
    let segs = setup.path("segs");
    setup.seal(
        "soft:160x120@15",
        &segs,
        &["--duration", "3", "--segment-seconds", "1"],
    );
    let sink = format!("dir:{}", s(&segs));
    let v = start_with(&setup, &web, &["--sink", &sink], &|_| {});
    check_served(&v, &segs);
}

#[test]
fn view_serves_recorded_footage_from_an_s3_sink() {
    let Some(s3) = cli::TestS3::from_env("view_serves_recorded_footage_from_an_s3_sink") else {
        return;
    };
    let url = s3.url(&cli::TestS3::fresh_prefix("view-sink"));
    let env = |c: &mut std::process::Command| {
        s3.credentials(c);
    };
    let setup = Setup::new();
    let web = fake_web_root(&setup);
    let segs = setup.path("segs");
    let spool = setup.path("spool");
    // Recorded to a folder and, through the spool, to the bucket: the same segments.
    let mut args = cli::run_args(&setup.camera, "soft:160x120@15", &segs);
    args.extend_from_slice(&[
        "--duration",
        "3",
        "--segment-seconds",
        "1",
        "--spool",
        s(&spool),
        "--sink",
        &url,
        "--upload-grace",
        "60",
    ]);
    let mut run = cli::command(&args);
    env(&mut run);
    cli::succeeded(&run.output().unwrap(), "run with an S3 sink");
    let v = start_with(&setup, &web, &["--sink", &url], &env);
    check_served(&v, &segs);
}
