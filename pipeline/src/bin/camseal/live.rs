//! The live view's transport: the WebSocket server of `run --live` and the `camseal live`
//! client. What goes over it, and how a viewer checks it, is `camseal::live`'s.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use camseal::home::ViewerHome;
use camseal::live::{DEFAULT_QUEUE, LiveHub, LiveReader};
use tungstenite::Message;

use crate::cli::LiveArgs;
use crate::error::Usage;

/// How long a connecting client has for its WebSocket handshake, and a send may block: a
/// stuck peer costs a thread for this long, never the camera.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once (handshaking or watching): more are closed at once, so that
/// whoever can reach the port cannot make the camera start threads without bound.
const MAX_VIEWERS: usize = 32;

/// Parses `--live ADDR`: one address, never the unspecified one (which would listen on
/// every interface the camera has).
pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| Usage(format!("--live {text}: not HOST:PORT ({e})")))?;
    let addr = addrs
        .next()
        .ok_or_else(|| Usage(format!("--live {text}: names no address")))?;
    if addr.ip().is_unspecified() {
        return Err(Usage(format!(
            "--live {text}: listening on every interface is refused; name one address (127.0.0.1 for this machine)"
        ))
        .into());
    }
    Ok(addr)
}

/// The running server: stops accepting and disconnects viewers when dropped.
pub struct LiveServer {
    hub: LiveHub,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Viewer threads still running.
    serving: Arc<AtomicUsize>,
}

impl LiveServer {
    /// Listens on `addr` and serves `hub` to every WebSocket client that connects.
    pub fn start(addr: SocketAddr, hub: LiveHub) -> Result<LiveServer> {
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("cannot listen for the live view on {addr}"))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept_hub = hub.clone();
        let accept_stop = Arc::clone(&stop);
        let serving = Arc::new(AtomicUsize::new(0));
        let accept_serving = Arc::clone(&serving);
        std::thread::Builder::new()
            .name("live-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if accept_stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    if accept_serving.load(Ordering::SeqCst) >= MAX_VIEWERS {
                        tracing::warn!(
                            "live view: {MAX_VIEWERS} viewers already; a connection was refused"
                        );
                        continue;
                    }
                    let hub = accept_hub.clone();
                    let serving = Arc::clone(&accept_serving);
                    serving.fetch_add(1, Ordering::SeqCst);
                    let spawned = std::thread::Builder::new()
                        .name("live-viewer".into())
                        .spawn(move || {
                            serve(conn, &hub);
                            serving.fetch_sub(1, Ordering::SeqCst);
                        });
                    if let Err(e) = spawned {
                        accept_serving.fetch_sub(1, Ordering::SeqCst);
                        tracing::warn!("live view: cannot serve a viewer: {e}");
                    }
                }
            })?;
        Ok(LiveServer {
            hub,
            addr,
            stop,
            serving,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        let stats = self.hub.stats();
        self.hub.close();
        // Lets each viewer thread send what is queued (the last trailer) and a close frame,
        // so that a viewer sees the end of the stream rather than a reset connection.
        let waited = Instant::now();
        while self.serving.load(Ordering::SeqCst) > 0 && waited.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if stats.dropped_slow > 0 {
            tracing::warn!(
                "live view: {} viewers were disconnected for falling behind",
                stats.dropped_slow
            );
        }
    }
}

/// One viewer: the handshake, then the hub's messages until either side stops.
fn serve(conn: TcpStream, hub: &LiveHub) {
    let peer = conn.peer_addr().ok();
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let mut ws = match tungstenite::accept(conn) {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!("live view: handshake with {peer:?} failed: {e}");
            return;
        }
    };
    tracing::info!("live view: viewer {peer:?} connected");
    let rx = hub.subscribe(DEFAULT_QUEUE);
    for msg in rx.iter() {
        if let Err(e) = ws.send(Message::Binary(msg.to_vec().into())) {
            tracing::info!("live view: viewer {peer:?} gone: {e}");
            return;
        }
    }
    // The hub dropped this viewer (it fell behind) or the run ended.
    let _ = ws.close(None);
    let _ = ws.flush();
    tracing::info!("live view: viewer {peer:?} disconnected");
}

/// `camseal live`.
pub fn live(args: LiveArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let secrets = crate::decrypt::opening_keys(&home)?;
    let cameras: Vec<[u8; 32]> = home
        .trusted_cameras()?
        .iter()
        .map(|c| c.public.ed25519)
        .collect();
    if cameras.is_empty() {
        bail!(
            "the viewer home {} pins no camera: `camseal viewer cameras add` first",
            args.home.display()
        );
    }
    let url = url::Url::parse(&args.url).map_err(|e| Usage(format!("--url {}: {e}", args.url)))?;
    if url.scheme() != "ws" {
        return Err(Usage(format!(
            "--url {}: only ws:// is supported (the footage is end-to-end encrypted; TLS to a relay is the relay's)",
            args.url
        ))
        .into());
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port().unwrap_or(80);
    let conn = TcpStream::connect((host, port))
        .with_context(|| format!("cannot connect to {}", args.url))?;
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    // Short reads, so that `--seconds` is noticed on a quiet stream.
    conn.set_read_timeout(Some(Duration::from_millis(500)))?;
    let (mut ws, _) = tungstenite::client(args.url.as_str(), conn)
        .with_context(|| format!("WebSocket handshake with {} failed", args.url))?;
    let mut out = BufWriter::new(
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?,
    );
    let mut reader = LiveReader::new(secrets, cameras);
    let mut frames = 0u64;
    let mut keyframes = 0u64;
    let mut started = false;
    let ended = loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break "time is up";
        }
        if args.frames.is_some_and(|n| frames >= n) {
            break "frames done";
        }
        let msg = match ws.read() {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) => break "the camera closed the live view",
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                break "the camera closed the live view";
            }
            Err(e) => {
                out.flush()?;
                return Err(anyhow::Error::new(e).context("the live view broke off"));
            }
        };
        let released = match reader.feed(&msg) {
            Ok(r) => r,
            Err(e) => {
                out.flush()?;
                eprintln!(
                    "live: {frames} verified frames written to {} before the failure",
                    args.out.display()
                );
                return Err(anyhow::Error::new(e)
                    .context("live view refused: the footage failed verification; nothing after it was played"));
            }
        };
        for frame in released {
            if !started && !frame.keyframe {
                // Cannot happen with a camseal camera (a viewer starts at a keyframe);
                // a decoder could not use it anyway.
                continue;
            }
            started = true;
            out.write_all(&frame.data)?;
            frames += 1;
            keyframes += u64::from(frame.keyframe);
            if args.frames.is_some_and(|n| frames >= n) {
                break;
            }
        }
    };
    out.flush()?;
    let _ = ws.close(None);
    println!(
        "live: {frames} verified frames ({keyframes} keyframes) from {} segments into {}: {ended}",
        reader.segments(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
