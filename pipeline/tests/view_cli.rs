//! `camseal view` attacked from outside (docs/VIEWER.md): the key endpoint answers only with
//! this run's token and the expected Host (no DNS rebinding), file names cannot climb out of
//! the web root or the segment directory, and the page is served only on loopback unless
//! `--allow-remote`. The browser side is scripts/test-web.sh's.

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
    let mut child = cli::command(&[
        "view",
        "--home",
        s(&setup.viewer),
        "--listen",
        "127.0.0.1:0",
        "--web-root",
        s(web),
        "--segments",
        s(segs),
    ])
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
    let web = setup.path("web");
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(web.join("index.html"), "<!doctype html>page").unwrap();
    std::fs::write(web.join("pkg/camseal_web_bg.wasm"), b"\0asm").unwrap();
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
