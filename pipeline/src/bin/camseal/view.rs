//! `camseal view`: a small local web server for the browser viewer (docs/VIEWER.md).
//!
//! It serves the page's static files, the viewer's keys, the sealed segment bytes, and a
//! same-origin relay of a camera's live WebSocket. It never decrypts or verifies anything:
//! the page does, with the WebAssembly build of the reader core (pipeline/web). What it
//! guards is the key endpoint: loopback only unless told, a random token per run that every
//! API request must carry, and a Host check so that a DNS-rebinding page of another origin
//! cannot read it.

use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use camseal::home::ViewerHome;
use camseal::upload::{ListFilter, Sink, open_sink};
use subtle::ConstantTimeEq;
use tungstenite::Message;

use crate::cli::ViewArgs;
use crate::error::Usage;

/// How long a client has to send its request, and a send may block.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// The longest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// The largest segment file served (a segment is a few seconds of video).
const MAX_SEGMENT: u64 = 1 << 30;

/// Where recorded segments come from.
enum Recorded {
    None,
    Dir(PathBuf),
    Sink(Box<dyn Sink>),
}

struct Server {
    token: String,
    /// The Host header values accepted (`127.0.0.1:PORT`, `localhost:PORT`...).
    hosts: Vec<String>,
    web_root: PathBuf,
    /// `/api/keys`' JSON body.
    keys_json: String,
    recorded: Recorded,
    live: Option<String>,
}

pub fn view(args: ViewArgs) -> Result<ExitCode> {
    let listen = parse_listen(&args.listen, args.allow_remote)?;
    if let Some(live) = &args.live {
        let url = url::Url::parse(live).map_err(|e| Usage(format!("--live {live}: {e}")))?;
        if url.scheme() != "ws" || url.host_str().is_none() {
            return Err(Usage(format!("--live {live}: not a ws://HOST:PORT URL")).into());
        }
    }
    let web_root = match &args.web_root {
        Some(dir) => dir.clone(),
        None => default_web_root()?,
    };
    for needed in ["index.html", "pkg/camseal_web_bg.wasm"] {
        if !web_root.join(needed).is_file() {
            bail!(
                "the web viewer's files are not in {} (no {needed}): build them with scripts/build-web.sh, or pass --web-root",
                web_root.display()
            );
        }
    }
    let home = ViewerHome::open(&args.home)?;
    let keys_json = keys_json(&home, args.live.is_some())?;
    let recorded = match (&args.segments, &args.sink) {
        (Some(dir), _) => {
            if !dir.is_dir() {
                return Err(Usage(format!("--segments {}: not a directory", dir.display())).into());
            }
            Recorded::Dir(dir.clone())
        }
        (None, Some(url)) => {
            let net = crate::upload::net_config(10.0, 60.0)?;
            Recorded::Sink(
                open_sink(url, &net)
                    .with_context(|| format!("--sink {}", camseal::upload::redact_url(url)))?,
            )
        }
        (None, None) => Recorded::None,
    };
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let mut token = [0u8; 16];
    getrandom::fill(&mut token).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let server = Arc::new(Server {
        token: hex::encode(token),
        hosts: allowed_hosts(addr),
        web_root,
        keys_json,
        recorded,
        live: args.live.clone(),
    });
    let host = match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
    };
    // The one line a user (and scripts/test-web.sh) reads: open this URL.
    println!("view: http://{host}/#token={}", server.token);
    io::stdout().flush()?;
    let serving = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if serving.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            continue;
        }
        serving.fetch_add(1, Ordering::SeqCst);
        let server = Arc::clone(&server);
        let count = Arc::clone(&serving);
        let spawned = std::thread::Builder::new()
            .name("view-conn".into())
            .spawn(move || {
                if let Err(e) = server.serve(conn) {
                    tracing::debug!("view: connection ended: {e}");
                }
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            serving.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--listen ADDR`: one address; loopback unless `allow_remote`; never every interface.
fn parse_listen(text: &str, allow_remote: bool) -> Result<SocketAddr> {
    let addr = text
        .to_socket_addrs()
        .map_err(|e| Usage(format!("--listen {text}: not HOST:PORT ({e})")))?
        .next()
        .ok_or_else(|| Usage(format!("--listen {text}: names no address")))?;
    if addr.ip().is_unspecified() {
        return Err(Usage(format!(
            "--listen {text}: listening on every interface is refused; name one address (127.0.0.1 for this machine)"
        ))
        .into());
    }
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(Usage(format!(
            "--listen {text}: not a loopback address; the page hands out the viewer's keys, so other machines may reach it only with --allow-remote"
        ))
        .into());
    }
    Ok(addr)
}

fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        IpAddr::V4(ip) => format!("{ip}:{port}"),
    }];
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{port}"));
    }
    hosts
}

/// `<dir of the executable>/../share/camseal/web`: `/usr/share/camseal/web` for
/// `/usr/bin/camseal`, `target/share/camseal/web` for `target/debug/camseal`.
fn default_web_root() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the camseal executable")?;
    let bin = exe.parent().context("the executable has no directory")?;
    Ok(bin.join("..").join("share").join("camseal").join("web"))
}

/// The keys the page needs: the secrets that open segment keys (the account's, the
/// device's) as key-file text, the pinned cameras' Ed25519 keys, and whether a live view is
/// relayed.
fn keys_json(home: &ViewerHome, live: bool) -> Result<String> {
    let secrets = crate::decrypt::opening_keys(home)?;
    let cameras: Vec<String> = home
        .trusted_cameras()?
        .iter()
        .map(|c| hex::encode(c.public.ed25519))
        .collect();
    if cameras.is_empty() {
        bail!(
            "the viewer home {} pins no camera: `camseal viewer cameras add` first",
            home.dir().display()
        );
    }
    let secrets: Vec<String> = secrets.iter().map(|s| s.to_text().to_string()).collect();
    Ok(serde_json::json!({ "secrets": secrets, "cameras": cameras, "live": live }).to_string())
}

/// A request's head.
struct Request {
    path: String,
    query: String,
    host: Option<String>,
    websocket: bool,
}

/// The connection's bytes read so far, replayed to tungstenite before the socket's.
struct Replay {
    head: Cursor<Vec<u8>>,
    conn: TcpStream,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        self.conn.read(buf)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

fn read_head(conn: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("request head too long"));
        }
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other("connection closed in the request head"));
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    if first.next()? != "GET" {
        return None;
    }
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut host = None;
    let mut websocket = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("host") {
            host = Some(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("upgrade") {
            websocket = value.eq_ignore_ascii_case("websocket");
        }
    }
    Some(Request {
        path: path.to_owned(),
        query: query.to_owned(),
        host,
        websocket,
    })
}

fn respond(conn: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> io::Result<()> {
    // The page may load nothing from elsewhere and connect nowhere else; the token in its
    // URL goes in no Referer.
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Content-Security-Policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\n\
         Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    conn.flush()
}

fn error(conn: &mut TcpStream, status: &str, why: &str) -> io::Result<()> {
    respond(conn, status, "text/plain; charset=utf-8", why.as_bytes())
}

/// A segment file name as the timeline lists it: a plain name ending in `.cseg`.
fn segment_name_ok(name: &str) -> bool {
    name.ends_with(".cseg")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Server {
    fn serve(&self, mut conn: TcpStream) -> io::Result<()> {
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        let head = read_head(&mut conn)?;
        let Some(req) = parse_head(&head) else {
            return error(&mut conn, "400 Bad Request", "only GET requests are served");
        };
        // DNS rebinding: a page of another origin whose name now resolves to 127.0.0.1
        // sends its own name as Host.
        if !req.host.as_ref().is_some_and(|h| self.hosts.contains(h)) {
            return error(
                &mut conn,
                "421 Misdirected Request",
                "unexpected Host header",
            );
        }
        if let Some(api) = req.path.strip_prefix("/api/") {
            if !self.token_ok(&req.query) {
                return error(&mut conn, "403 Forbidden", "missing or wrong token");
            }
            return self.api(conn, api, &req, head);
        }
        self.static_file(&mut conn, &req.path)
    }

    /// Whether the query carries this run's token (compared in constant time).
    fn token_ok(&self, query: &str) -> bool {
        query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("token="))
            .any(|t| bool::from(t.as_bytes().ct_eq(self.token.as_bytes())))
    }

    fn api(&self, mut conn: TcpStream, api: &str, req: &Request, head: Vec<u8>) -> io::Result<()> {
        match api {
            "keys" => respond(
                &mut conn,
                "200 OK",
                "application/json",
                self.keys_json.as_bytes(),
            ),
            "segments" => match self.list() {
                Ok(names) => {
                    let body = serde_json::json!({ "segments": names }).to_string();
                    respond(&mut conn, "200 OK", "application/json", body.as_bytes())
                }
                Err(e) => error(&mut conn, "502 Bad Gateway", &format!("cannot list: {e:#}")),
            },
            "live" if req.websocket => self.relay(conn, head),
            "live" => error(&mut conn, "400 Bad Request", "a WebSocket endpoint"),
            _ => match api.strip_prefix("segment/") {
                Some(name) if segment_name_ok(name) => match self.segment(name) {
                    Ok(bytes) => respond(&mut conn, "200 OK", "application/octet-stream", &bytes),
                    Err(e) => error(&mut conn, "404 Not Found", &format!("{e:#}")),
                },
                _ => error(&mut conn, "404 Not Found", "no such endpoint"),
            },
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names = match &self.recorded {
            Recorded::None => Vec::new(),
            Recorded::Dir(dir) => {
                let mut names = Vec::new();
                for entry in fs::read_dir(dir)? {
                    let name = entry?.file_name().to_string_lossy().into_owned();
                    if segment_name_ok(&name) {
                        names.push(name);
                    }
                }
                names
            }
            Recorded::Sink(sink) => sink
                .list(&ListFilter::default())?
                .iter()
                .map(|id| id.file_name())
                .filter(|n| segment_name_ok(n))
                .collect(),
        };
        names.sort();
        Ok(names)
    }

    fn segment(&self, name: &str) -> Result<Vec<u8>> {
        match &self.recorded {
            Recorded::None => bail!("no recorded footage is served"),
            Recorded::Dir(dir) => {
                let path = dir.join(name);
                let len = fs::metadata(&path)
                    .with_context(|| format!("no segment {name}"))?
                    .len();
                if len > MAX_SEGMENT {
                    bail!("{name} is too large to serve");
                }
                Ok(fs::read(&path)?)
            }
            Recorded::Sink(sink) => {
                let id = sink
                    .list(&ListFilter::default())?
                    .into_iter()
                    .find(|id| id.file_name() == name)
                    .with_context(|| format!("no segment {name} in the sink"))?;
                let mut out = Vec::new();
                sink.get(&id, &mut out)?;
                Ok(out)
            }
        }
    }

    fn static_file(&self, conn: &mut TcpStream, path: &str) -> io::Result<()> {
        let path = if path == "/" { "/index.html" } else { path };
        if path == "/favicon.ico" {
            // Browsers ask for it unprompted; there is none, and a 404 would log an error.
            return respond(conn, "204 No Content", "image/x-icon", b"");
        }
        let rel = &path[1..];
        let ok = !rel.is_empty()
            && rel.split('/').all(|c| {
                !c.is_empty()
                    && !c.starts_with('.')
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        let kind = match Path::new(rel).extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("wasm") => "application/wasm",
            _ => "",
        };
        if !ok || kind.is_empty() {
            return error(conn, "404 Not Found", "no such file");
        }
        match fs::read(self.web_root.join(rel)) {
            Ok(body) => respond(conn, "200 OK", kind, &body),
            Err(_) => error(conn, "404 Not Found", "no such file"),
        }
    }

    /// Relays the camera's live WebSocket to the page, message for message: the page
    /// connects only to its own origin, and this process never looks inside.
    fn relay(&self, mut conn: TcpStream, head: Vec<u8>) -> io::Result<()> {
        let Some(upstream_url) = &self.live else {
            return error(&mut conn, "404 Not Found", "no --live stream was given");
        };
        let upstream = (|| -> Result<_> {
            let url = url::Url::parse(upstream_url)?;
            let host = url.host_str().unwrap_or_default().to_owned();
            let port = url.port().unwrap_or(80);
            let tcp = TcpStream::connect((host.as_str(), port))?;
            tcp.set_read_timeout(Some(IO_TIMEOUT))?;
            let (ws, _) = tungstenite::client(upstream_url.as_str(), tcp)
                .map_err(|e| anyhow::anyhow!("handshake: {e}"))?;
            Ok(ws)
        })();
        let mut upstream = match upstream {
            Ok(ws) => ws,
            Err(e) => {
                return error(
                    &mut conn,
                    "502 Bad Gateway",
                    &format!("cannot reach the live view {upstream_url}: {e:#}"),
                );
            }
        };
        let replay = Replay {
            head: Cursor::new(head),
            conn,
        };
        let mut page = tungstenite::accept(replay).map_err(io::Error::other)?;
        loop {
            let msg = match upstream.read() {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if page.send(Message::Binary(msg)).is_err() {
                break;
            }
        }
        let _ = page.close(None);
        let _ = page.flush();
        let _ = upstream.close(None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_refuses_what_it_should() {
        assert!(parse_listen("127.0.0.1:0", false).is_ok());
        assert!(parse_listen("[::1]:0", false).is_ok());
        assert!(parse_listen("0.0.0.0:0", true).is_err());
        assert!(parse_listen("192.0.2.1:8080", false).is_err());
        assert!(parse_listen("192.0.2.1:8080", true).is_ok());
    }

    #[test]
    fn names_and_heads() {
        assert!(segment_name_ok("cam-0-000001.cseg"));
        assert!(!segment_name_ok("../x.cseg"));
        assert!(!segment_name_ok(".x.cseg"));
        assert!(!segment_name_ok("x.cseg.part"));
        let r =
            parse_head(b"GET /api/keys?token=ab HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n").unwrap();
        assert_eq!(
            (r.path.as_str(), r.query.as_str(), r.host.as_deref()),
            ("/api/keys", "token=ab", Some("127.0.0.1:9"))
        );
        assert!(parse_head(b"POST / HTTP/1.1\r\n\r\n").is_none());
    }
}
