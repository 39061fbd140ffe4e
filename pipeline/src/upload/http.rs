//! `http(s)://` sinks: a PUT of each segment under a base URL, or to a URL made from a
//! template (for presigned URLs), and the HTTP plumbing the S3 sink shares.

use std::io::{Read, Write};
use std::time::Duration;

use ureq::Agent;

use super::{ListFilter, NetConfig, Sink, UploadError};
use crate::spool::SegmentId;
use crate::spool::policy::head_object_key;

/// Plain HTTP(S) PUT.
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
}

impl HttpSink {
    /// A sink for `url` (`http://` or `https://`).
    pub fn new(url: &str, net: &NetConfig) -> Result<HttpSink, UploadError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| UploadError::Config(format!("bad sink URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(UploadError::Config(format!(
                "bad sink URL {url:?}: expected http(s)://HOST/..."
            )));
        }
        let template = TEMPLATE_FIELDS.iter().any(|f| url.contains(f));
        Ok(HttpSink {
            url: url.trim_end_matches('/').to_string(),
            template,
            agent: agent(net),
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

    fn put(&self, id: &SegmentId, body: &mut dyn Read, len: u64) -> Result<(), UploadError> {
        put(&self.agent, &self.object_url(id), body, len, &self.name())
    }

    fn list(&self, _filter: &ListFilter) -> Result<Vec<SegmentId>, UploadError> {
        Err(UploadError::Unsupported(
            "an http(s) sink cannot list its objects; fetch from the s3: or dir: sink behind it",
        ))
    }

    fn get(&self, id: &SegmentId, out: &mut dyn Write) -> Result<u64, UploadError> {
        get(&self.agent, &self.object_url(id), out, &self.name())
    }

    fn put_head(&self, camera_id: &str, stream: u32, head: &[u8]) -> Result<(), UploadError> {
        let url = self.head_url(camera_id, stream)?;
        let mut body = head;
        put(
            &self.agent,
            &url,
            &mut body,
            head.len() as u64,
            &self.name(),
        )
    }

    fn get_head(&self, camera_id: &str, stream: u32) -> Result<Option<Vec<u8>>, UploadError> {
        get_small(
            &self.agent,
            &self.head_url(camera_id, stream)?,
            &self.name(),
        )
    }
}

impl HttpSink {
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

/// An HTTP agent with the configured timeouts, no proxy from the environment, no
/// redirects, and statuses returned as responses rather than errors.
pub(super) fn agent(net: &NetConfig) -> Agent {
    Agent::config_builder()
        .timeout_connect(Some(net.connect_timeout))
        .timeout_per_read(Some(net.io_timeout))
        .timeout_per_write(Some(net.io_timeout))
        .timeout_resolve(Some(net.connect_timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("camseal/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// PUTs `len` bytes from `body` to `url`.
pub(super) fn put(
    agent: &Agent,
    url: &str,
    body: &mut dyn Read,
    len: u64,
    sink: &str,
) -> Result<(), UploadError> {
    let response = agent
        .put(url)
        .header("content-length", len.to_string())
        .header("content-type", "application/octet-stream")
        .send(ureq::SendBody::from_reader(body))
        .map_err(|e| transport(sink, e))?;
    check(sink, response).map(|_| ())
}

/// GETs `url` into `out`; returns the bytes copied.
pub(super) fn get(
    agent: &Agent,
    url: &str,
    out: &mut dyn Write,
    sink: &str,
) -> Result<u64, UploadError> {
    let response = agent.get(url).call().map_err(|e| transport(sink, e))?;
    let mut response = check(sink, response)?;
    let mut reader = response.body_mut().as_reader();
    std::io::copy(&mut reader, out).map_err(|e| UploadError::Transient {
        sink: sink.to_string(),
        message: format!("download interrupted: {e}"),
    })
}

/// GETs a small object (a stream head) at `url`: `None` on 404.
pub(super) fn get_small(
    agent: &Agent,
    url: &str,
    sink: &str,
) -> Result<Option<Vec<u8>>, UploadError> {
    let response = agent.get(url).call().map_err(|e| transport(sink, e))?;
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    let mut response = check(sink, response)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_TEXT_BODY)
        .read_to_vec()
        .map(Some)
        .map_err(|e| transport(sink, e))
}

/// GETs `url` and returns its (small) body as text.
pub(super) fn get_text(agent: &Agent, url: &str, sink: &str) -> Result<String, UploadError> {
    let response = agent.get(url).call().map_err(|e| transport(sink, e))?;
    let mut response = check(sink, response)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_TEXT_BODY)
        .read_to_string()
        .map_err(|e| transport(sink, e))
}

/// Turns a non-2xx status into an error, classified: 408 and 429 and 5xx are worth a
/// retry; other 4xx (bad credentials, missing bucket, forbidden) will not fix themselves.
fn check(
    sink: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<ureq::http::Response<ureq::Body>, UploadError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_TEXT_BODY)
        .read_to_string()
        .unwrap_or_default();
    let message = describe_failure(status, &text);
    if status == 408 || status == 429 || status >= 500 {
        Err(UploadError::Transient {
            sink: sink.to_string(),
            message,
        })
    } else {
        Err(UploadError::Permanent {
            sink: sink.to_string(),
            status,
            message,
        })
    }
}

/// `HTTP 403 (SignatureDoesNotMatch: ...)` from an S3-style XML error body when there is
/// one, else the status alone.
fn describe_failure(status: u16, body: &str) -> String {
    let field = |tag: &str| -> Option<String> {
        let open = format!("<{tag}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find("</")? + start;
        Some(body[start..end].trim().to_string())
    };
    let mut m = format!("HTTP {status}");
    match (field("Code"), field("Message")) {
        (Some(c), Some(t)) => m.push_str(&format!(" ({c}: {t})")),
        (Some(c), None) => m.push_str(&format!(" ({c})")),
        _ => {}
    }
    let hint = match status {
        401 | 403 => {
            "; check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the credentials file) and that they may write this bucket"
        }
        404 => "; check the bucket name and the endpoint",
        _ => "",
    };
    m.push_str(hint);
    m
}

/// Transport failures (connect, timeouts, reset connections) are retried; a bad URL or a
/// TLS configuration problem is not.
fn transport(sink: &str, e: ureq::Error) -> UploadError {
    let message = e.to_string();
    match e {
        ureq::Error::BadUri(_)
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::TooManyRedirects
        | ureq::Error::RedirectFailed
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_) => UploadError::Permanent {
            sink: sink.to_string(),
            status: 0,
            message,
        },
        _ => UploadError::Transient {
            sink: sink.to_string(),
            message,
        },
    }
}

const TEMPLATE_FIELDS: [&str; 4] = ["{key}", "{camera}", "{stream}", "{seq}"];
const MAX_TEXT_BODY: u64 = 8 << 20;

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
        let m = describe_failure(403, body);
        assert!(
            m.starts_with("HTTP 403 (InvalidAccessKeyId: no such key)"),
            "{m}"
        );
        assert!(m.contains("AWS_ACCESS_KEY_ID"));
        assert_eq!(describe_failure(500, "oops"), "HTTP 500");
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
