//! A strict S3 server for the uploader tests: std `TcpListener`, a small HTTP/1.1 parser,
//! one thread per connection, one request per connection. It enforces what permissive
//! stand-ins (s3s-fs, moto) let through, as AWS does; docs/UPLOAD.md ("The strict test
//! server") maps each rule to its page in the S3 API reference:
//!
//! - SigV4 presigned query authentication, verified independently of the uploader's signing
//!   crate (HMAC-SHA256 from `hmac`/`sha2`), with the expiry (`X-Amz-Date` +
//!   `X-Amz-Expires`) checked against the server's own clock, and every `x-amz-*` header of
//!   the request required among the signed headers;
//! - `Content-MD5` or an `x-amz-checksum-*` header required on PUT when the bucket has Object
//!   Lock, and both checked against the body (`BadDigest`);
//! - `If-None-Match: *`: 412 `PreconditionFailed` when the key exists;
//! - HEAD returns the stored checksum with `x-amz-checksum-mode: ENABLED`;
//! - scripted failures by S3 error code, with `Retry-After`, and an early answer (before the
//!   body) to a request that asked `Expect: 100-continue`;
//! - ListObjectsV2 with `start-after`, continuation tokens, small pages, and the GCS
//!   namespace on request;
//! - a refusal answered mid-body by a server that ignores `Expect`, and TLS with an
//!   optional required client certificate.
//!
//! [`CountingProxy`] is a plain HTTP `CONNECT` proxy that counts its tunnels.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

pub const ACCESS_KEY: &str = "AKIASTRICTTEST000001";
pub const SECRET_KEY: &str = "strict/secret/key+do-not-log-0123456789";
pub const BUCKET: &str = "strict-bucket";

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// Require `Content-MD5` or an `x-amz-checksum-*` header on every PUT.
    pub object_lock: bool,
    /// Answer listings in the namespace Google Cloud Storage's XML API uses.
    pub gcs_namespace: bool,
    /// Keys per listing page.
    pub page_size: usize,
    /// Always answer a continued listing with the same continuation token (a broken server).
    pub repeat_token: bool,
    /// The session token requests must carry (`X-Amz-Security-Token`), if any.
    pub session_token: Option<String>,
    /// Session tokens that are known but expired (answered 400 `ExpiredToken`).
    pub expired_tokens: Vec<String>,
    /// Act as a plain HTTP upload target instead: no SigV4, but this
    /// `Authorization: Bearer` token is required.
    pub bearer: Option<String>,
    /// Give connections a small receive buffer (a slow uplink's window).
    pub small_receive_buffer: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            object_lock: false,
            gcs_namespace: false,
            page_size: 1000,
            repeat_token: false,
            session_token: None,
            expired_tokens: Vec::new(),
            bearer: None,
            small_receive_buffer: false,
        }
    }
}

/// A scripted failure.
#[derive(Clone, Debug)]
pub enum Fault {
    /// An S3 error answer: status, code, message, optional `Retry-After` seconds.
    Error(u16, &'static str, &'static str, Option<u64>),
    /// An error answered before the body is read (after the headers), then the connection
    /// is closed: what S3 does for a refused request that asked `Expect: 100-continue`.
    Early(u16, &'static str, &'static str),
    /// A GET that announces a huge `Content-Length` and sends a little.
    HugeBody,
    /// An error answered after part of the body (64 KiB) was read, ignoring any `Expect`
    /// (no `100 Continue`, no answer before the body), then the connection is closed with
    /// the rest unread (a reset): what a server or proxy that does not implement
    /// `Expect: 100-continue` does with an upload it refuses.
    MidBody(u16, &'static str, &'static str),
    /// As `MidBody`, but the connection then stays open, unread, for 5 s: the client's
    /// writes stall instead of failing.
    MidBodyStall(u16, &'static str, &'static str),
}

/// When a fault applies.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    /// Only keys containing this.
    pub key_contains: Option<String>,
    /// How many more times (None: as long as `until_stored` allows).
    pub times: Option<usize>,
    /// Only while fewer than this many objects are stored.
    pub until_stored: Option<usize>,
    pub fault: Fault,
}

impl Rule {
    pub fn new(method: &'static str, fault: Fault) -> Rule {
        Rule {
            method,
            key_contains: None,
            times: Some(1),
            until_stored: None,
            fault,
        }
    }
}

/// A stored object.
#[derive(Clone, Debug)]
pub struct Object {
    pub data: Vec<u8>,
    pub md5_hex: String,
    /// The `x-amz-checksum-sha256` it was stored with.
    pub checksum_sha256: Option<String>,
    /// Headers of the PUT that stored it.
    pub headers: BTreeMap<String, String>,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub key: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub status: u16,
    pub code: String,
    pub at: Instant,
}

#[derive(Default)]
pub struct State {
    pub config: Config,
    /// Seconds added to the real clock: the server's idea of now.
    pub clock_offset: i64,
    pub objects: BTreeMap<String, Object>,
    pub rules: Vec<Rule>,
    pub seen: Vec<Seen>,
    /// Targets of requests that reached this server as a proxy.
    pub proxied: Vec<String>,
}

pub struct StrictS3 {
    pub port: u16,
    tls: bool,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StrictS3 {
    pub fn start(config: Config) -> StrictS3 {
        StrictS3::start_with(config, None)
    }

    /// A server speaking HTTPS with the PEM certificate chain and key given.
    pub fn start_tls(
        config: Config,
        chain_pem: &std::path::Path,
        key_pem: &std::path::Path,
    ) -> StrictS3 {
        StrictS3::start_mtls(config, chain_pem, key_pem, None)
    }

    /// As [`start_tls`](Self::start_tls), and with `client_ca`, a TLS server that requires
    /// a client certificate that CA signed (mutual TLS).
    pub fn start_mtls(
        config: Config,
        chain_pem: &std::path::Path,
        key_pem: &std::path::Path,
        client_ca: Option<&std::path::Path>,
    ) -> StrictS3 {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain_pem)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca).unwrap() {
                    roots.add(c.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let tls = builder.with_single_cert(chain, key).unwrap();
        StrictS3::start_with(config, Some(Arc::new(tls)))
    }

    fn start_with(config: Config, tls: Option<Arc<rustls::ServerConfig>>) -> StrictS3 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        if config.small_receive_buffer {
            // Accepted connections inherit it.
            set_int_option(&listener, libc::SO_RCVBUF, 4096);
        }
        let state = Arc::new(Mutex::new(State {
            config,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let is_tls = tls.is_some();
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let state = Arc::clone(&state);
                            let tls = tls.clone();
                            let _ = conn.set_nonblocking(false);
                            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                            std::thread::spawn(move || match tls {
                                None => serve(conn, &state),
                                Some(config) => {
                                    let Ok(server) = rustls::ServerConnection::new(config) else {
                                        return;
                                    };
                                    serve(rustls::StreamOwned::new(server, conn), &state);
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        StrictS3 {
            port,
            tls: is_tls,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A sink URL under `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!(
            "s3://{BUCKET}/{prefix}?endpoint={}&region=us-east-1",
            self.endpoint()
        )
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_rule(&self, rule: Rule) {
        self.state().rules.push(rule);
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// Stored segment objects (keys ending `.cseg`).
    pub fn segment_keys(&self) -> Vec<String> {
        self.state()
            .objects
            .keys()
            .filter(|k| k.ends_with(".cseg"))
            .cloned()
            .collect()
    }
}

impl Drop for StrictS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    code: String,
    /// Send this Content-Length instead of the body's.
    announce: Option<u64>,
}

impl Answer {
    fn ok(body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            body,
            code: String::new(),
            announce: None,
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>strict</RequestId></Error>"
            )
            .into_bytes(),
            code: code.to_string(),
            announce: None,
        }
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Answer {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

fn serve<C: Conn>(conn: C, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn);
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let Some(mut request) = read_head(&mut reader) else {
        return;
    };
    if request.method == "CONNECT" {
        // Acting as the proxy too: the tunnel leads back to this server.
        lock().proxied.push(request.path.clone());
        let _ = reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let Some(inner) = read_head(&mut reader) else {
            return;
        };
        request = inner;
    } else if let Some(rest) = request.path.strip_prefix("http://") {
        // An absolute-form target: a proxied plain-HTTP request.
        lock().proxied.push(request.path.clone());
        request.path = rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string());
    }
    let key = object_key(&request.path);
    let len: usize = request
        .headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let expect = request
        .headers
        .get("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    // Authentication and scripted faults are decided on the headers alone.
    let mut mid_body = false;
    let mut stall = false;
    let early = {
        let mut st = lock();
        let now = server_now(&st);
        let auth = match &st.config.bearer {
            Some(token) => {
                if request.headers.get("authorization") == Some(&format!("Bearer {token}")) {
                    Ok(())
                } else {
                    Err(Answer::error(
                        401,
                        "Unauthorized",
                        "a bearer token is required",
                    ))
                }
            }
            None => authenticate(&request, &st.config, now),
        };
        match auth {
            Err(answer) => Some(answer),
            Ok(()) => pick_fault(&mut st, &request.method, &key).map(|f| match f {
                Fault::Error(status, code, message, retry) => {
                    let mut a = Answer::error(status, code, message);
                    if let Some(r) = retry {
                        a = a.header("retry-after", r.to_string());
                    }
                    a
                }
                Fault::Early(status, code, message) => {
                    let mut a = Answer::error(status, code, message);
                    a.code = format!("{code} (early)");
                    a
                }
                Fault::HugeBody => {
                    let mut a = Answer::ok(vec![0u8; 1024]);
                    a.announce = Some(1 << 40);
                    a
                }
                Fault::MidBodyStall(status, code, message) => {
                    mid_body = true;
                    stall = true;
                    let mut a = Answer::error(status, code, message);
                    a.code = format!("{code} (mid-body)");
                    a
                }
                Fault::MidBody(status, code, message) => {
                    mid_body = true;
                    let mut a = Answer::error(status, code, message);
                    a.code = format!("{code} (mid-body)");
                    a
                }
            }),
        }
    };
    if let Some(answer) = early.as_ref().filter(|_| mid_body) {
        let mut part = vec![0u8; len.min(64 << 10)];
        if reader.read_exact(&mut part).is_err() {
            return;
        }
        record(&mut lock(), &request, &key, answer);
        write_answer(reader.get_mut(), answer, &lock());
        let _ = reader.get_mut().flush();
        if stall {
            std::thread::sleep(Duration::from_secs(5));
        }
        // Dropped with the rest of the body unread: the kernel resets the connection.
        return;
    }
    if let Some(answer) = early {
        // Refused before the body: a client that asked 100-continue has not sent it; one
        // that did not sees its body cut off (the server closes after answering).
        record(&mut lock(), &request, &key, &answer);
        write_answer(reader.get_mut(), &answer, &lock());
        let _ = reader.get_mut().flush();
        if !expect && len > 0 {
            // The body is arriving and will not be read: the connection is reset, as a
            // server that refuses a large upload does (RFC 9112 section 9.6 describes how
            // that reset can destroy the answer at the client).
            reader.get_mut().reset();
        } else {
            reader.get_mut().close_write();
        }
        return;
    }
    if expect && len > 0 {
        let _ = reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let answer = {
        let mut st = lock();
        let answer = handle(&mut st, &request, &key, body);
        record(&mut st, &request, &key, &answer);
        answer
    };
    write_answer(reader.get_mut(), &answer, &lock());
    let _ = reader.get_mut().flush();
}

fn set_int_option(socket: &impl std::os::fd::AsRawFd, option: libc::c_int, value: libc::c_int) {
    // SAFETY: the descriptor is open for the duration of the call, and `value` is a valid
    // int whose size is passed.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A connection the server answers on: plain TCP, or TLS over it.
pub trait Conn: Read + Write {
    /// Ends the sending side (FIN).
    fn close_write(&mut self);
    /// Makes the close a reset (RST).
    fn reset(&mut self);
}

impl Conn for TcpStream {
    fn close_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
    fn reset(&mut self) {
        reset(self);
    }
}

impl Conn for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn close_write(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Write);
    }
    fn reset(&mut self) {
        reset(&self.sock);
    }
}

/// Makes the next close send RST instead of FIN (SO_LINGER with a zero timeout).
fn reset(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open for the duration of the call, and `linger` is a valid
    // `struct linger` whose size is passed.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn record(st: &mut State, request: &Request, key: &str, answer: &Answer) {
    st.seen.push(Seen {
        method: request.method.clone(),
        key: key.to_string(),
        query: request.query.iter().cloned().collect(),
        headers: request.headers.clone(),
        status: answer.status,
        code: answer.code.clone(),
        at: Instant::now(),
    });
}

fn pick_fault(st: &mut State, method: &str, key: &str) -> Option<Fault> {
    let stored = st.objects.len();
    for rule in &mut st.rules {
        if rule.method != method
            || rule
                .key_contains
                .as_ref()
                .is_some_and(|k| !key.contains(k.as_str()))
            || rule.times == Some(0)
            || rule.until_stored.is_some_and(|n| stored >= n)
        {
            continue;
        }
        if let Some(t) = &mut rule.times {
            *t -= 1;
        }
        return Some(rule.fault.clone());
    }
    None
}

fn server_now(st: &State) -> Timestamp {
    Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(st.clock_offset))
        .unwrap()
}

fn read_head(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect();
    Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
    })
}

/// The object key from a path-style `/bucket/key`; empty for the bucket itself.
fn object_key(path: &str) -> String {
    let rest = path.trim_start_matches('/');
    let key = rest.split_once('/').map_or("", |(_, k)| k);
    pct_decode(key)
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SigV4 URI encoding: everything but unreserved characters, and `/` unless `keep_slash`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) || (keep_slash && c == b'/') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Presigned SigV4 (query-string authentication), checked as S3 does.
fn authenticate(r: &Request, config: &Config, now: Timestamp) -> Result<(), Answer> {
    let q: HashMap<&str, &str> = r
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let denied = |m: &str| Answer::error(403, "AccessDenied", m);
    let (Some(alg), Some(cred), Some(date), Some(expires), Some(signed), Some(signature)) = (
        q.get("X-Amz-Algorithm"),
        q.get("X-Amz-Credential"),
        q.get("X-Amz-Date"),
        q.get("X-Amz-Expires"),
        q.get("X-Amz-SignedHeaders"),
        q.get("X-Amz-Signature"),
    ) else {
        return Err(denied(
            "Query-string authentication requires the X-Amz-* parameters",
        ));
    };
    if *alg != "AWS4-HMAC-SHA256" {
        return Err(Answer::error(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let scope: Vec<&str> = cred.split('/').collect();
    if scope.len() != 5 || scope[3] != "s3" || scope[4] != "aws4_request" {
        return Err(Answer::error(
            400,
            "AuthorizationQueryParametersError",
            "bad X-Amz-Credential",
        ));
    }
    if scope[0] != ACCESS_KEY {
        return Err(Answer::error(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ));
    }
    let expires: i64 = expires.parse().map_err(|_| {
        Answer::error(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires should be a number",
        )
    })?;
    if !(1..=604_800).contains(&expires) {
        return Err(Answer::error(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    let signed_at = jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", date)
        .and_then(|t| t.to_datetime())
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|_| {
            Answer::error(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Date must be in the ISO8601 Long Format",
            )
        })?;
    if !date.starts_with(scope[1]) {
        return Err(Answer::error(
            400,
            "AuthorizationQueryParametersError",
            "the credential date does not match X-Amz-Date",
        ));
    }
    // Token checks come before the time checks: S3 reports an expired token as such.
    let token = q.get("X-Amz-Security-Token").copied();
    if let Some(t) = token
        && config.expired_tokens.iter().any(|e| e == t)
    {
        return Err(Answer::error(
            400,
            "ExpiredToken",
            "The provided token has expired.",
        ));
    }
    if config.session_token.as_deref() != token {
        return Err(Answer::error(
            403,
            "InvalidToken",
            "The provided token is malformed or otherwise invalid.",
        ));
    }
    let now_s = now.as_second();
    if signed_at.as_second() > now_s + 15 * 60 {
        return Err(denied("Request is not valid yet"));
    }
    if now_s > signed_at.as_second() + expires {
        return Err(denied("Request has expired"));
    }
    let signed_names: Vec<&str> = signed.split(';').collect();
    if !signed_names.contains(&"host") {
        return Err(denied("host must be a signed header"));
    }
    for name in r.headers.keys() {
        if name.starts_with("x-amz-") && !signed_names.contains(&name.as_str()) {
            return Err(denied(
                "There were headers present in the request which were not signed",
            ));
        }
    }
    let mut canonical_headers = String::new();
    for name in &signed_names {
        let Some(v) = r.headers.get(*name) else {
            return Err(denied("a signed header is missing from the request"));
        };
        let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
        canonical_headers.push_str(&format!("{name}:{v}\n"));
    }
    let mut params: Vec<(String, String)> = r
        .query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    params.sort();
    let canonical_query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\nUNSIGNED-PAYLOAD",
        r.method,
        uri_encode(&pct_decode(&r.path), true),
        canonical_query,
        canonical_headers,
        signed
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/{}/s3/aws4_request\n{}",
        scope[1],
        scope[2],
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k = hmac(format!("AWS4{SECRET_KEY}").as_bytes(), scope[1]);
    let k = hmac(&k, scope[2]);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    if hex::encode(hmac(&k, &string_to_sign)) != *signature {
        return Err(Answer::error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(())
}

fn handle(st: &mut State, r: &Request, key: &str, body: Vec<u8>) -> Answer {
    let bucket = r
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    if bucket != BUCKET {
        return Answer::error(404, "NoSuchBucket", "The specified bucket does not exist");
    }
    match (r.method.as_str(), key.is_empty()) {
        ("PUT", false) => put(st, r, key, body),
        ("HEAD", false) => match st.objects.get(key) {
            None => Answer::error(404, "NoSuchKey", ""),
            Some(o) => {
                let mut a = Answer::ok(Vec::new()).header("etag", format!("\"{}\"", o.md5_hex));
                a.announce = Some(o.data.len() as u64);
                if r.headers.get("x-amz-checksum-mode").map(String::as_str) == Some("ENABLED")
                    && let Some(c) = &o.checksum_sha256
                {
                    a = a.header("x-amz-checksum-sha256", c.clone());
                }
                a
            }
        },
        ("GET", false) => match st.objects.get(key) {
            None => Answer::error(404, "NoSuchKey", "The specified key does not exist."),
            Some(o) => Answer::ok(o.data.clone()).header("etag", format!("\"{}\"", o.md5_hex)),
        },
        ("GET", true) => list(st, r),
        _ => Answer::error(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        ),
    }
}

fn put(st: &mut State, r: &Request, key: &str, body: Vec<u8>) -> Answer {
    let md5 = md5::Md5::digest(&body);
    let sha = Sha256::digest(&body);
    let b64 = base64::engine::general_purpose::STANDARD;
    let content_md5 = r.headers.get("content-md5");
    let checksum = r.headers.get("x-amz-checksum-sha256");
    let any_checksum = r.headers.keys().any(|k| k.starts_with("x-amz-checksum-"));
    if st.config.object_lock && content_md5.is_none() && !any_checksum {
        return Answer::error(
            400,
            "InvalidRequest",
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        );
    }
    if let Some(m) = content_md5 {
        match b64.decode(m) {
            Ok(d) if d.len() == 16 => {
                if d != md5.as_slice() {
                    return Answer::error(
                        400,
                        "BadDigest",
                        "The Content-MD5 you specified did not match what we received.",
                    );
                }
            }
            _ => {
                return Answer::error(
                    400,
                    "InvalidDigest",
                    "The Content-MD5 you specified is not valid.",
                );
            }
        }
    }
    if let Some(c) = checksum
        && *c != b64.encode(sha)
    {
        return Answer::error(
            400,
            "BadDigest",
            "The SHA256 you specified did not match the calculated checksum.",
        );
    }
    if r.headers.get("if-none-match").map(String::as_str) == Some("*")
        && st.objects.contains_key(key)
    {
        return Answer::error(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        );
    }
    let md5_hex = hex::encode(md5);
    st.objects.insert(
        key.to_string(),
        Object {
            data: body,
            md5_hex: md5_hex.clone(),
            checksum_sha256: checksum.cloned(),
            headers: r.headers.clone(),
        },
    );
    let mut a = Answer::ok(Vec::new()).header("etag", format!("\"{md5_hex}\""));
    if let Some(c) = checksum {
        a = a.header("x-amz-checksum-sha256", c.clone());
    }
    a
}

fn list(st: &State, r: &Request) -> Answer {
    let q: HashMap<&str, &str> = r
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if q.get("list-type") != Some(&"2") {
        return Answer::error(400, "InvalidArgument", "only ListObjectsV2 here");
    }
    let prefix = q.get("prefix").copied().unwrap_or("");
    let after = q
        .get("continuation-token")
        .map(|t| t.trim_start_matches("after:").to_string())
        .or_else(|| q.get("start-after").map(|s| s.to_string()));
    let keys: Vec<&String> = st
        .objects
        .keys()
        .filter(|k| k.starts_with(prefix))
        .filter(|k| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
        .collect();
    let page: Vec<&&String> = keys.iter().take(st.config.page_size).collect();
    let truncated =
        keys.len() > page.len() || (st.config.repeat_token && q.contains_key("continuation-token"));
    let ns = if st.config.gcs_namespace {
        "http://doc.s3.amazonaws.com/2006-03-01"
    } else {
        "http://s3.amazonaws.com/doc/2006-03-01/"
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"{ns}\"><Name>{BUCKET}</Name><Prefix>{prefix}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        page.len(),
        st.config.page_size
    );
    for k in &page {
        let o = &st.objects[k.as_str()];
        xml.push_str(&format!(
            "<Contents><Key>{k}</Key><Size>{}</Size><ETag>&quot;{}&quot;</ETag><StorageClass>STANDARD</StorageClass></Contents>",
            o.data.len(),
            o.md5_hex
        ));
    }
    if truncated {
        let token = if st.config.repeat_token {
            "after:loop".to_string()
        } else {
            format!("after:{}", page.last().unwrap())
        };
        xml.push_str(&format!(
            "<NextContinuationToken>{token}</NextContinuationToken>"
        ));
    }
    xml.push_str("</ListBucketResult>");
    Answer::ok(xml.into_bytes()).header("content-type", "application/xml")
}

fn write_answer(w: &mut impl Write, a: &Answer, st: &State) {
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&server_now(st))
        .unwrap();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nDate: {date}\r\nConnection: close\r\n",
        a.status,
        reason(a.status)
    );
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        a.announce.unwrap_or(a.body.len() as u64)
    ));
    let _ = w.write_all(head.as_bytes());
    if a.announce.is_none() || a.status == 200 && !a.body.is_empty() {
        let _ = w.write_all(&a.body);
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Slow Down",
        _ => "Error",
    }
}

/// An HTTP `CONNECT` proxy on loopback that forwards each tunnel to its target and counts
/// the tunnels (by target).
pub struct CountingProxy {
    pub port: u16,
    tunnels: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CountingProxy {
    pub fn start() -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let tunnels = Arc::clone(&tunnels);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let tunnels = Arc::clone(&tunnels);
                            let _ = conn.set_nonblocking(false);
                            std::thread::spawn(move || tunnel(conn, &tunnels));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        CountingProxy {
            port,
            tunnels,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The targets of the tunnels opened so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tunnel(conn: TcpStream, tunnels: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn);
    let Some(request) = read_head(&mut reader) else {
        return;
    };
    let mut client = reader.into_inner();
    if request.method != "CONNECT" {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    tunnels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request.path.clone());
    let Ok(upstream) = TcpStream::connect(&request.path) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (Ok(mut client_r), Ok(mut upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut upstream_w);
        let _ = upstream_w.shutdown(Shutdown::Write);
    });
    let mut upstream_r = upstream;
    let _ = std::io::copy(&mut upstream_r, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
}
