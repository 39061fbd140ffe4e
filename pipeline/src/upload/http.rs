//! `http(s)://` sinks: a PUT of each segment under a base URL, or to a URL made from a
//! template (for presigned URLs), and the HTTP plumbing the S3 sink shares.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ureq::Agent;

use super::net::{self, TlsOptions};
use super::{BodyDigest, ListFilter, MAX_OBJECT_BYTES, NetConfig, Sink, UploadError, early};
use crate::spool::SegmentId;
use crate::spool::policy::head_object_key;

/// Plain HTTP(S) PUT.
///
/// Authentication is `Authorization: Bearer TOKEN`, the token read (again before each
/// request, so a rotated token is picked up) from the file named by `#token-file=PATH` or
/// the environment variable named by `#token-env=NAME` at the end of the URL (the fragment
/// is never sent), else from `CAMSEAL_HTTP_TOKEN_FILE` or `CAMSEAL_HTTP_TOKEN`. A URL with
/// `user:password@` is refused: it would be printed in every log line and in the status.
///
/// TLS options in the fragment too, as on an `s3:` sink: `#ca=FILE` (trust only these PEM
/// roots instead of the system store), `#cert=FILE[&key=FILE]` (a client certificate).
///
/// - Base form, `http://host/base`: segment objects are PUT to
///   `http://host/base/<camera id>/<stream>/<seq, 12 digits>.cseg`, the stream head to
///   `http://host/base/<camera id>/<stream>/head`.
/// - Template form: a URL holding `{key}` (the object key above), or any of `{camera}`,
///   `{stream}`, `{seq}` (12 digits), for example a presigning service's
///   `https://gw.example/put?object={key}` or a prepared bucket URL. Only a template with
///   `{key}` can name the stream head.
pub struct HttpSink {
    url: String,
    template: bool,
    agent: Agent,
    token: Option<TokenSource>,
    notices: std::sync::Mutex<Vec<String>>,
}

/// Where the bearer token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TokenSource {
    File(std::path::PathBuf),
    Env(String),
}

impl TokenSource {
    fn read(&self, sink: &str) -> Result<String, UploadError> {
        let token = match self {
            TokenSource::File(p) => std::fs::read_to_string(p).map_err(|e| {
                UploadError::Config(format!(
                    "{sink}: cannot read the bearer token file {}: {e}",
                    p.display()
                ))
            })?,
            TokenSource::Env(v) => std::env::var(v).map_err(|_| {
                UploadError::Config(format!("{sink}: the bearer token variable {v} is not set"))
            })?,
        };
        let token = token.trim().to_string();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UploadError::Config(format!(
                "{sink}: the bearer token is empty or not printable ASCII"
            )));
        }
        Ok(token)
    }
}

impl HttpSink {
    /// A sink for `url` (`http://` or `https://`).
    pub fn new(url: &str, net: &NetConfig) -> Result<HttpSink, UploadError> {
        let (url, fragment) = url.split_once('#').unwrap_or((url, ""));
        let parsed = url::Url::parse(url)
            .map_err(|e| UploadError::Config(format!("bad sink URL {}: {e}", redact_url(url))))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UploadError::Config(format!(
                "the sink URL {} holds credentials (user:password@), which would be printed in logs and the status: refused; give a bearer token with #token-file=PATH or #token-env=NAME",
                redact_url(url)
            )));
        }
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(UploadError::Config(format!(
                "bad sink URL {}: expected http(s)://HOST/...",
                redact_url(url)
            )));
        }
        let mut token = None;
        let mut tls = TlsOptions::default();
        for option in fragment.split('&').filter(|o| !o.is_empty()) {
            token = Some(match option.split_once('=') {
                Some(("token-file", p)) if !p.is_empty() => TokenSource::File(p.into()),
                Some(("token-env", v)) if !v.is_empty() => TokenSource::Env(v.into()),
                Some((k, v)) if !v.is_empty() && tls.accept(k, v) => continue,
                _ => {
                    return Err(UploadError::Config(format!(
                        "sink URL option #{option}: expected token-file=PATH, token-env=NAME, ca=FILE, cert=FILE or key=FILE"
                    )));
                }
            });
        }
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let token = token
            .or_else(|| env("CAMSEAL_HTTP_TOKEN_FILE").map(|p| TokenSource::File(p.into())))
            .or_else(|| {
                env("CAMSEAL_HTTP_TOKEN").map(|_| TokenSource::Env("CAMSEAL_HTTP_TOKEN".into()))
            });
        let template = TEMPLATE_FIELDS.iter().any(|f| url.contains(f));
        let (agent, notice) = net::agent(net, &tls, &parsed)?;
        let sink = HttpSink {
            url: url.trim_end_matches('/').to_string(),
            template,
            agent,
            token,
            notices: std::sync::Mutex::new(notice.into_iter().collect()),
        };
        // A missing token is a configuration error now, not a refusal later.
        sink.auth()?;
        Ok(sink)
    }

    /// The `Authorization` header, if the sink has a token.
    fn auth(&self) -> Result<Vec<(&'static str, String)>, UploadError> {
        Ok(match &self.token {
            Some(t) => vec![("authorization", format!("Bearer {}", t.read(&self.name())?))],
            None => Vec::new(),
        })
    }

    fn object_url(&self, id: &SegmentId) -> String {
        if self.template {
            self.url
                .replace("{key}", &id.object_key(""))
                .replace("{camera}", &id.camera_id)
                .replace("{stream}", &id.stream.to_string())
                .replace("{seq}", &format!("{:012}", id.seq))
        } else {
            format!("{}/{}", self.url, id.object_key(""))
        }
    }
}

impl Sink for HttpSink {
    fn name(&self) -> String {
        // Presigned templates may carry credentials in the query string.
        match self.url.split_once('?') {
            Some((base, _)) => format!("{base}?..."),
            None => self.url.clone(),
        }
    }

    fn put(
        &self,
        id: &SegmentId,
        body: &mut dyn Read,
        len: u64,
        digest: &BodyDigest,
    ) -> Result<(), UploadError> {
        let mut headers = self.auth()?;
        headers.push(("content-md5", digest.content_md5()));
        match put(
            &self.agent,
            &self.object_url(id),
            &headers,
            body,
            len,
            &self.name(),
            None,
        )? {
            PutOutcome::Stored(stored) => match stored.etag {
                // A plain server's ETag is often the MD5: when it looks like one, it must
                // be ours.
                Some(etag) if is_md5_hex(&etag) && etag != digest.md5_hex() => {
                    Err(UploadError::Conflict {
                        sink: self.name(),
                        key: id.object_key(""),
                        message: format!(
                            "the server stored ETag {etag}, not the segment's MD5 {}",
                            digest.md5_hex()
                        ),
                    })
                }
                _ => Ok(()),
            },
            PutOutcome::Exists => Err(UploadError::Conflict {
                sink: self.name(),
                key: id.object_key(""),
                message: "the server refused the upload as a precondition failure (412)".into(),
            }),
        }
    }

    fn list(&self, _filter: &ListFilter) -> Result<Vec<SegmentId>, UploadError> {
        Err(UploadError::Unsupported(
            "an http(s) sink cannot list its objects; fetch from the s3: or dir: sink behind it",
        ))
    }

    fn get(&self, id: &SegmentId, out: &mut dyn Write) -> Result<u64, UploadError> {
        get(
            &self.agent,
            &self.object_url(id),
            &self.auth()?,
            out,
            MAX_OBJECT_BYTES,
            &self.name(),
            None,
        )
    }

    fn put_head(&self, camera_id: &str, stream: u32, head: &[u8]) -> Result<(), UploadError> {
        let url = self.head_url(camera_id, stream)?;
        let mut body = head;
        let mut headers = self.auth()?;
        headers.push(("content-md5", BodyDigest::of(head).content_md5()));
        put(
            &self.agent,
            &url,
            &headers,
            &mut body,
            head.len() as u64,
            &self.name(),
            None,
        )
        .map(|_| ())
    }

    fn get_head(&self, camera_id: &str, stream: u32) -> Result<Option<Vec<u8>>, UploadError> {
        get_small(
            &self.agent,
            &self.head_url(camera_id, stream)?,
            &self.auth()?,
            &self.name(),
            None,
        )
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn put_control(&self, camera_id: &str, object: &[u8]) -> Result<(), UploadError> {
        let url = self.control_url(camera_id)?;
        let mut body = object;
        let mut headers = self.auth()?;
        headers.push(("content-md5", BodyDigest::of(object).content_md5()));
        put(
            &self.agent,
            &url,
            &headers,
            &mut body,
            object.len() as u64,
            &self.name(),
            None,
        )
        .map(|_| ())
    }

    fn get_control(&self, camera_id: &str) -> Result<Option<Vec<u8>>, UploadError> {
        get_small(
            &self.agent,
            &self.control_url(camera_id)?,
            &self.auth()?,
            &self.name(),
            None,
        )
    }
}

impl HttpSink {
    /// The control object's URL: `BASE/control/<camera id>/recipients`, or a template with
    /// `{key}` filled with that key.
    fn control_url(&self, camera_id: &str) -> Result<String, UploadError> {
        let key = crate::control::object_key("", camera_id);
        if !self.template {
            return Ok(format!("{}/{key}", self.url));
        }
        if !self.url.contains("{key}") {
            return Err(UploadError::Unsupported(
                "an http(s) template without {key} cannot name the control object",
            ));
        }
        Ok(self
            .url
            .replace("{key}", &key)
            .replace("{camera}", camera_id)
            .replace("{stream}", "control")
            .replace("{seq}", "recipients"))
    }

    /// The stream head's URL: `BASE/<camera id>/<stream>/head`, or a template with `{key}`
    /// filled with that key (and `{seq}` with `head`). A template without `{key}` names
    /// segments only.
    fn head_url(&self, camera_id: &str, stream: u32) -> Result<String, UploadError> {
        let key = head_object_key("", camera_id, stream);
        if !self.template {
            return Ok(format!("{}/{key}", self.url));
        }
        if !self.url.contains("{key}") {
            return Err(UploadError::Unsupported(
                "an http(s) template without {key} cannot name the stream head",
            ));
        }
        Ok(self
            .url
            .replace("{key}", &key)
            .replace("{camera}", camera_id)
            .replace("{stream}", &stream.to_string())
            .replace("{seq}", "head"))
    }
}

/// `url` with any `user:password@` and query string replaced, for messages.
pub(super) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Unparseable: keep only the scheme, which cannot hold a secret.
        return format!("{}://...", url.split("://").next().unwrap_or("?"));
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("REDACTED");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        parsed.set_query(Some("..."));
    }
    parsed.to_string()
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The camera's clock error, learnt from the `Date` header of the server's answers: the
/// server's time minus the camera's, in seconds. A camera without a battery-backed clock
/// boots at a wrong time, and presigned requests signed with it are refused as expired or
/// not yet valid; signing with the server's time fixes that before NTP does.
#[derive(Debug, Default)]
pub(super) struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// The current offset (0 when it is too small to matter).
    pub(super) fn offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// The time to sign with: the camera's clock corrected by the offset.
    pub(super) fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        now.checked_add(SignedDuration::from_secs(self.offset()))
            .unwrap_or(now)
    }

    /// Learns the offset from a response's `Date` header. Returns the new offset when it
    /// changed by more than [`SKEW_TOLERANCE`].
    pub(super) fn observe(&self, date: Option<&str>) -> Option<i64> {
        let server = parse_http_date(date?)?;
        let measured = server.as_second() - Timestamp::now().as_second();
        // Date has one-second resolution and the answer took time to arrive: small
        // differences are noise.
        let offset = if measured.abs() > SKEW_TOLERANCE {
            measured
        } else {
            0
        };
        let old = self.offset.swap(offset, Ordering::Relaxed);
        ((old - offset).abs() > SKEW_TOLERANCE).then_some(offset)
    }
}

/// An HTTP `Date` (RFC 9110 IMF-fixdate, as servers send it).
pub(super) fn parse_http_date(text: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text.trim())
        .ok()
}

/// "camera clock is 2 h 13 min behind the server" for an offset (server minus camera) in
/// seconds.
pub fn describe_skew(offset: i64) -> String {
    let a = offset.unsigned_abs();
    let amount = if a >= 3600 {
        let minutes = (a + 30) / 60;
        format!("{} h {} min", minutes / 60, minutes % 60)
    } else if a >= 60 {
        format!("{} min {} s", a / 60, a % 60)
    } else {
        format!("{a} s")
    };
    let side = if offset >= 0 { "behind" } else { "ahead of" };
    format!("camera clock is {amount} {side} the server")
}

/// What a PUT's answer said.
#[derive(Debug, Default)]
pub(super) struct Stored {
    /// The ETag, without quotes.
    pub etag: Option<String>,
    /// `x-amz-checksum-sha256` as the server computed it (base64).
    pub checksum_sha256: Option<String>,
}

/// How a PUT ended.
#[derive(Debug)]
pub(super) enum PutOutcome {
    /// 2xx.
    Stored(Stored),
    /// 412: `If-None-Match: *` found an object under the key.
    Exists,
}

/// PUTs `len` bytes from `body` to `url` with the extra `headers`. Asks the server with
/// `Expect: 100-continue` before sending the body, so a refusal (403, 413) arrives as an
/// answer instead of as a broken pipe halfway through the body.
pub(super) fn put(
    agent: &Agent,
    url: &str,
    headers: &[(&str, String)],
    body: &mut dyn Read,
    len: u64,
    sink: &str,
    clock: Option<&Clock>,
) -> Result<PutOutcome, UploadError> {
    let mut request = agent
        .put(url)
        .header("content-length", len.to_string())
        .header("content-type", "application/octet-stream");
    if len > 0 {
        request = request.header("expect", "100-continue");
    }
    for (k, v) in headers {
        request = request.header(*k, v.as_str());
    }
    // A server that answers mid-body without waiting for the rest (it ignored the Expect)
    // has its answer read as the response (`early`).
    let mut body = early::Body::new(body, len);
    let response = request
        .send(ureq::SendBody::from_reader(&mut body))
        .map_err(|e| transport(sink, e))?;
    if response.status().as_u16() == 412 {
        observe(clock, &response);
        return Ok(PutOutcome::Exists);
    }
    let response = check(sink, response, clock)?;
    Ok(PutOutcome::Stored(Stored {
        etag: header(&response, "etag").map(|e| e.trim_matches('"').to_string()),
        checksum_sha256: header(&response, "x-amz-checksum-sha256"),
    }))
}

/// HEADs `url`: `None` on 404, else the object's ETag, checksum and length.
pub(super) fn head(
    agent: &Agent,
    url: &str,
    headers: &[(&str, String)],
    sink: &str,
    clock: Option<&Clock>,
) -> Result<Option<(Stored, Option<u64>)>, UploadError> {
    let mut request = agent.head(url);
    for (k, v) in headers {
        request = request.header(*k, v.as_str());
    }
    let response = request.call().map_err(|e| transport(sink, e))?;
    if response.status().as_u16() == 404 {
        observe(clock, &response);
        return Ok(None);
    }
    let response = check(sink, response, clock)?;
    let len = header(&response, "content-length").and_then(|l| l.parse().ok());
    Ok(Some((
        Stored {
            etag: header(&response, "etag").map(|e| e.trim_matches('"').to_string()),
            checksum_sha256: header(&response, "x-amz-checksum-sha256"),
        },
        len,
    )))
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

fn observe(clock: Option<&Clock>, response: &ureq::http::Response<ureq::Body>) -> Option<i64> {
    clock?.observe(header(response, "date").as_deref())
}

/// GETs `url` into `out`, at most `limit` bytes; returns the bytes copied. A server that
/// announces or sends more is refused rather than allowed to fill the disk.
pub(super) fn get(
    agent: &Agent,
    url: &str,
    headers: &[(&str, String)],
    out: &mut dyn Write,
    limit: u64,
    sink: &str,
    clock: Option<&Clock>,
) -> Result<u64, UploadError> {
    let mut request = agent.get(url);
    for (k, v) in headers {
        request = request.header(*k, v.as_str());
    }
    let response = request.call().map_err(|e| transport(sink, e))?;
    let mut response = check(sink, response, clock)?;
    let too_big = || {
        UploadError::Protocol(format!(
            "{sink}: the object is larger than the {limit}-byte limit; not downloaded"
        ))
    };
    if header(&response, "content-length")
        .and_then(|l| l.parse::<u64>().ok())
        .is_some_and(|l| l > limit)
    {
        return Err(too_big());
    }
    let reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut capped = reader.take(limit.saturating_add(1));
    let n = std::io::copy(&mut capped, out).map_err(|e| UploadError::Transient {
        sink: sink.to_string(),
        message: format!("download interrupted: {e}"),
        retry_after: None,
        answered: false,
    })?;
    if n > limit {
        return Err(too_big());
    }
    Ok(n)
}

/// GETs a small object (a stream head) at `url`: `None` on 404.
pub(super) fn get_small(
    agent: &Agent,
    url: &str,
    headers: &[(&str, String)],
    sink: &str,
    clock: Option<&Clock>,
) -> Result<Option<Vec<u8>>, UploadError> {
    let mut request = agent.get(url);
    for (k, v) in headers {
        request = request.header(*k, v.as_str());
    }
    let response = request.call().map_err(|e| transport(sink, e))?;
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    let mut response = check(sink, response, clock)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_TEXT_BODY)
        .read_to_vec()
        .map(Some)
        .map_err(|e| transport(sink, e))
}

/// GETs `url` and returns its (small) body as text.
pub(super) fn get_text(
    agent: &Agent,
    url: &str,
    sink: &str,
    clock: Option<&Clock>,
) -> Result<String, UploadError> {
    let response = agent.get(url).call().map_err(|e| transport(sink, e))?;
    let mut response = check(sink, response, clock)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_TEXT_BODY)
        .read_to_string()
        .map_err(|e| transport(sink, e))
}

/// What a failed answer means for the uploader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Worth a retry (after `Retry-After`, if the server sent one).
    Transient,
    /// Retrying will not help: credentials, permissions, a missing bucket, a bad request.
    Permanent,
    /// The request's time was refused: the camera's clock is off.
    ClockSkew,
    /// Temporary credentials ran out: reload them and retry.
    ExpiredCredentials,
}

/// Classifies a failed answer by its S3 error code first (the status alone misleads:
/// S3's `RequestTimeout` is a 400 and `ExpiredToken` a 400 or 403), then by the status
/// when the body holds no code.
pub fn classify(status: u16, code: Option<&str>, message: Option<&str>) -> Class {
    match code {
        Some(
            "RequestTimeout"
            | "SlowDown"
            | "InternalError"
            | "ServiceUnavailable"
            | "OperationAborted"
            | "ConditionalRequestConflict"
            | "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequests"
            | "BadDigest"
            | "IncompleteBody"
            | "XAmzContentSHA256Mismatch"
            | "InvalidDigest",
        ) => return Class::Transient,
        Some("RequestTimeTooSkewed") => return Class::ClockSkew,
        Some("ExpiredToken" | "TokenRefreshRequired" | "RequestExpired") => {
            return Class::ExpiredCredentials;
        }
        Some("AccessDenied") => {
            // A presigned URL signed with a wrong clock: AWS says "Request has expired",
            // others "not yet valid"; neither is a credential problem.
            let m = message.unwrap_or_default().to_ascii_lowercase();
            if m.contains("expired") || m.contains("not yet valid") || m.contains("not valid yet") {
                return Class::ClockSkew;
            }
            return Class::Permanent;
        }
        Some(_) if (400..500).contains(&status) && status != 408 && status != 429 => {
            return Class::Permanent;
        }
        _ => {}
    }
    if status == 408 || status == 429 || status >= 500 {
        Class::Transient
    } else {
        Class::Permanent
    }
}

/// A `Retry-After` value (seconds, or an HTTP date measured against the answer's `Date`),
/// capped at an hour.
pub fn parse_retry_after(value: &str, date: Option<&str>) -> Option<Duration> {
    let value = value.trim();
    let secs = match value.parse::<u64>() {
        Ok(s) => s,
        Err(_) => {
            let at = parse_http_date(value)?;
            let now = date
                .and_then(parse_http_date)
                .unwrap_or_else(Timestamp::now);
            u64::try_from(at.as_second() - now.as_second()).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs.min(3600)))
}

/// Turns a non-2xx status into an error, classified by [`classify`]. Learns the clock
/// offset from the answer on the way.
fn check(
    sink: &str,
    mut response: ureq::http::Response<ureq::Body>,
    clock: Option<&Clock>,
) -> Result<ureq::http::Response<ureq::Body>, UploadError> {
    let changed = observe(clock, &response);
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let date = header(&response, "date");
    let retry_after =
        header(&response, "retry-after").and_then(|v| parse_retry_after(&v, date.as_deref()));
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_TEXT_BODY)
        .read_to_string()
        .unwrap_or_default();
    let code = xml_field(&text, "Code");
    let class = classify(
        status,
        code.as_deref(),
        xml_field(&text, "Message").as_deref(),
    );
    let mut message = describe_failure(status, &text, class);
    match class {
        Class::Transient | Class::ExpiredCredentials => Err(UploadError::Transient {
            sink: sink.to_string(),
            message,
            retry_after,
            answered: true,
        }),
        Class::ClockSkew => {
            let offset = changed.or_else(|| clock.map(Clock::offset)).unwrap_or(0);
            if offset != 0 {
                message.push_str(&format!(
                    "; {}: signing with the server's time from now on",
                    describe_skew(offset)
                ));
            } else {
                message.push_str("; the request's time was refused: check the camera's clock");
            }
            Err(UploadError::ClockSkew {
                sink: sink.to_string(),
                message,
                offset,
            })
        }
        Class::Permanent => Err(UploadError::Permanent {
            sink: sink.to_string(),
            status,
            message,
        }),
    }
}

/// The text of the first `<tag>` of an S3-style XML body.
fn xml_field(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find("</")? + start;
    Some(body[start..end].trim().to_string())
}

/// `HTTP 403 (SignatureDoesNotMatch: ...)` from an S3-style XML error body when there is
/// one, else the status alone; a credential hint only where credentials are the cause.
fn describe_failure(status: u16, body: &str, class: Class) -> String {
    let mut m = format!("HTTP {status}");
    match (xml_field(body, "Code"), xml_field(body, "Message")) {
        (Some(c), Some(t)) => m.push_str(&format!(" ({c}: {t})")),
        (Some(c), None) => m.push_str(&format!(" ({c})")),
        _ => {}
    }
    let hint = match (status, class) {
        (_, Class::ExpiredCredentials) => "; the temporary credentials expired: reloading them",
        (401 | 403, Class::Permanent) => {
            "; check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the credentials file) and that they may write this bucket"
        }
        (404, _) => "; check the bucket name and the endpoint",
        _ => "",
    };
    m.push_str(hint);
    m
}

/// Transport failures (connect, timeouts, reset connections) are retried; a bad URL or a
/// TLS failure (an untrusted or invalid certificate) is not.
fn transport(sink: &str, e: ureq::Error) -> UploadError {
    if let Some(tls) = tls_failure(&e) {
        return UploadError::Permanent {
            sink: sink.to_string(),
            status: 0,
            message: format!("TLS certificate error: {tls}"),
        };
    }
    let message = e.to_string();
    match e {
        ureq::Error::BadUri(_)
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::TooManyRedirects
        | ureq::Error::RedirectFailed => UploadError::Permanent {
            sink: sink.to_string(),
            status: 0,
            message,
        },
        _ => UploadError::Transient {
            sink: sink.to_string(),
            message,
            retry_after: None,
            answered: false,
        },
    }
}

/// The TLS error inside `e`, if it is one: ureq reports rustls's handshake failures either
/// directly or wrapped in an I/O error.
fn tls_failure(e: &ureq::Error) -> Option<String> {
    match e {
        ureq::Error::Tls(t) => Some(t.to_string()),
        ureq::Error::Rustls(r) => Some(r.to_string()),
        ureq::Error::Io(io) => {
            let inner = io.get_ref()?;
            inner.downcast_ref::<rustls::Error>().map(|r| r.to_string())
        }
        _ => None,
    }
}

const TEMPLATE_FIELDS: [&str; 4] = ["{key}", "{camera}", "{stream}", "{seq}"];
const MAX_TEXT_BODY: u64 = 8 << 20;
/// Clock differences up to this many seconds are measurement noise.
const SKEW_TOLERANCE: i64 = 5;

/// How long a caller may wait for one connect before calling it a transport failure.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read or write may stall.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_text_names_the_s3_code_and_a_hint() {
        let body = "<Error><Code>InvalidAccessKeyId</Code><Message>no such key</Message></Error>";
        let m = describe_failure(403, body, Class::Permanent);
        assert!(
            m.starts_with("HTTP 403 (InvalidAccessKeyId: no such key)"),
            "{m}"
        );
        assert!(m.contains("AWS_ACCESS_KEY_ID"));
        assert_eq!(describe_failure(500, "oops", Class::Transient), "HTTP 500");
    }

    #[test]
    fn classes_come_from_the_s3_code_before_the_status() {
        assert_eq!(
            classify(400, Some("RequestTimeout"), None),
            Class::Transient
        );
        assert_eq!(classify(503, Some("SlowDown"), None), Class::Transient);
        assert_eq!(
            classify(400, Some("ExpiredToken"), None),
            Class::ExpiredCredentials
        );
        assert_eq!(
            classify(403, Some("RequestTimeTooSkewed"), None),
            Class::ClockSkew
        );
        assert_eq!(
            classify(403, Some("AccessDenied"), Some("Request has expired")),
            Class::ClockSkew
        );
        assert_eq!(
            classify(403, Some("AccessDenied"), Some("Access Denied")),
            Class::Permanent
        );
        assert_eq!(
            classify(403, Some("SignatureDoesNotMatch"), None),
            Class::Permanent
        );
        assert_eq!(
            classify(400, Some("InvalidRequest"), None),
            Class::Permanent
        );
        assert_eq!(classify(502, None, None), Class::Transient);
        assert_eq!(classify(429, None, None), Class::Transient);
        assert_eq!(classify(413, None, None), Class::Permanent);
    }

    #[test]
    fn retry_after_and_skew_texts() {
        assert_eq!(parse_retry_after("7", None), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("99999", None),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Dec 2026 00:00:30 GMT",
                Some("Sun, 06 Dec 2026 00:00:00 GMT")
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", None), None);
        assert_eq!(
            describe_skew(2 * 3600 + 13 * 60),
            "camera clock is 2 h 13 min behind the server"
        );
        assert_eq!(
            describe_skew(-1800),
            "camera clock is 30 min 0 s ahead of the server"
        );
        assert_eq!(describe_skew(7), "camera clock is 7 s behind the server");
        assert_eq!(
            redact_url("https://u:pw@h/x?X-Amz-Signature=s"),
            "https://REDACTED@h/x?..."
        );
    }

    #[test]
    fn template_and_base_urls() {
        let net = NetConfig::default();
        let id = SegmentId {
            camera_id: "0123456789abcdef".into(),
            stream: 1,
            seq: 9,
        };
        let base = HttpSink::new("http://127.0.0.1:1/up/", &net).unwrap();
        assert_eq!(
            base.object_url(&id),
            "http://127.0.0.1:1/up/0123456789abcdef/1/000000000009.cseg"
        );
        let t = HttpSink::new("https://h/p?o={key}&c={camera}&s={stream}&n={seq}", &net).unwrap();
        assert_eq!(
            t.object_url(&id),
            "https://h/p?o=0123456789abcdef/1/000000000009.cseg&c=0123456789abcdef&s=1&n=000000000009"
        );
        assert_eq!(t.name(), "https://h/p?...");
        assert!(HttpSink::new("ftp://h/x", &net).is_err());
        assert_eq!(
            base.head_url("0123456789abcdef", 1).unwrap(),
            "http://127.0.0.1:1/up/0123456789abcdef/1/head"
        );
        assert_eq!(
            t.head_url("0123456789abcdef", 1).unwrap(),
            "https://h/p?o=0123456789abcdef/1/head&c=0123456789abcdef&s=1&n=head"
        );
        let no_key = HttpSink::new("https://h/{camera}/{stream}/{seq}.cseg", &net).unwrap();
        assert!(matches!(
            no_key.head_url("0123456789abcdef", 1),
            Err(UploadError::Unsupported(_))
        ));
    }
}
