//! `s3://BUCKET/PREFIX?endpoint=URL&region=R`: S3-compatible object storage, requests
//! signed with SigV4 (presigned by `rusty-s3`, sent by `ureq`).
//!
//! Every segment is written once and verified: the PUT carries `Content-MD5`,
//! `x-amz-checksum-sha256` and `If-None-Match: *`; it counts as done only when the service
//! confirms the checksum (in its answer, or by a HEAD), and an object already under the key
//! is never replaced.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusty_s3::actions::{GetObject, HeadObject, ListObjectsV2, PutObject, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use ureq::Agent;

use super::http::{self, Clock, PutOutcome, Stored};
use super::listing::parse_list_page;
use super::net::{self, TlsOptions};
use super::{BodyDigest, ListFilter, MAX_OBJECT_BYTES, NetConfig, Sink, UploadError};
use crate::spool::SegmentId;
use crate::spool::policy::head_object_key;

/// An S3 bucket (AWS, MinIO, Garage, Ceph RGW, R2, B2, GCS's XML API, ...).
///
/// URL: `s3://BUCKET[/PREFIX][?endpoint=URL][&region=R][&style=path|virtual]
/// [&profile=P][&credentials=FILE][&retain-days=N&lock-mode=GOVERNANCE|COMPLIANCE]
/// [&storage-class=C][&sse=aws:kms[&sse-kms-key-id=K]][&ca=FILE][&cert=FILE[&key=FILE]]`.
///
/// - Endpoint: `endpoint=`, else `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, else AWS's
///   regional endpoint. Region: `region=`, else `AWS_REGION` or `AWS_DEFAULT_REGION`, else
///   `us-east-1`.
/// - TLS: the system store (the compiled-in Mozilla roots when it is empty), or only the
///   PEM certificates of `ca=FILE` (a private CA); `cert=FILE` and `key=FILE`: a client
///   certificate (mutual TLS).
/// - Addressing: virtual-host style on AWS's own endpoint, path style on any other, and
///   path style for a bucket name with dots (its virtual host would not match AWS's
///   wildcard certificate); `style=` overrides.
/// - Credentials, first found wins: a `profile=` or `credentials=` in the URL (the named
///   profile of the credentials file); the environment (`AWS_ACCESS_KEY_ID`,
///   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the credentials file
///   (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile `AWS_PROFILE` or
///   `default`). They are read again from the same source when the service says a token
///   expired.
pub struct S3Sink {
    bucket: Bucket,
    prefix: String,
    credentials: Mutex<Credentials>,
    source: CredentialSource,
    agent: Agent,
    display: String,
    clock: Clock,
    options: PutOptions,
    notices: Mutex<Vec<String>>,
}

/// Where the credentials came from, to read them again.
#[derive(Clone, Debug)]
struct CredentialSource {
    profile: Option<String>,
    file: Option<PathBuf>,
}

/// Per-sink options of each segment PUT.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PutOptions {
    /// Object Lock: (mode, days).
    retention: Option<(String, u32)>,
    storage_class: Option<String>,
    /// `aws:kms` and an optional key id.
    sse: Option<(String, Option<String>)>,
}

impl S3Sink {
    /// Parses an `s3://` URL and finds the credentials.
    pub fn new(url: &str, net: &NetConfig) -> Result<S3Sink, UploadError> {
        let bad = |why: &str| {
            UploadError::Config(format!("bad S3 sink URL {}: {why}", http::redact_url(url)))
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "s3" {
            return Err(bad("expected s3://BUCKET/PREFIX"));
        }
        let name = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no bucket name"))?
            .to_string();
        let prefix = parsed.path().trim_matches('/').to_string();
        let mut endpoint = None;
        let mut region = None;
        let mut style = None;
        let mut profile = None;
        let mut credentials_file = None;
        let mut retain_days = None;
        let mut lock_mode = None;
        let mut options = PutOptions::default();
        let mut sse = None;
        let mut sse_key = None;
        let mut tls = TlsOptions::default();
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "endpoint" => endpoint = Some(v.into_owned()),
                "region" => region = Some(v.into_owned()),
                "style" => style = Some(v.into_owned()),
                "profile" => profile = Some(v.into_owned()),
                "credentials" => credentials_file = Some(PathBuf::from(&*v)),
                "retain-days" => {
                    retain_days = Some(
                        v.parse::<u32>()
                            .ok()
                            .filter(|d| (1..=36500).contains(d))
                            .ok_or_else(|| {
                                bad("retain-days must be a whole number of days, 1 to 36500")
                            })?,
                    );
                }
                "lock-mode" => {
                    let m = v.to_ascii_uppercase();
                    if m != "GOVERNANCE" && m != "COMPLIANCE" {
                        return Err(bad("lock-mode must be GOVERNANCE or COMPLIANCE"));
                    }
                    lock_mode = Some(m);
                }
                "storage-class" => {
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        return Err(bad("storage-class must be a name such as STANDARD_IA"));
                    }
                    options.storage_class = Some(v.into_owned());
                }
                "sse" => {
                    if v != "aws:kms" && v != "aws:kms:dsse" && v != "AES256" {
                        return Err(bad("sse must be aws:kms, aws:kms:dsse or AES256"));
                    }
                    sse = Some(v.into_owned());
                }
                "sse-kms-key-id" => sse_key = Some(v.into_owned()),
                k if tls.accept(k, &v) => {}
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        options.retention = match (lock_mode, retain_days) {
            (Some(m), Some(d)) => Some((m, d)),
            (None, Some(d)) => Some(("GOVERNANCE".to_string(), d)),
            (Some(_), None) => return Err(bad("lock-mode needs retain-days=N")),
            (None, None) => None,
        };
        options.sse = match (sse, sse_key) {
            (Some(s), k) => Some((s, k)),
            (None, Some(_)) => return Err(bad("sse-kms-key-id needs sse=aws:kms")),
            (None, None) => None,
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let region = region
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = endpoint
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        let (endpoint, default_style) = match endpoint {
            Some(e) => (e, UrlStyle::Path),
            // A dotted name as a virtual host does not match *.s3.REGION.amazonaws.com.
            None if name.contains('.') => {
                (format!("https://s3.{region}.amazonaws.com"), UrlStyle::Path)
            }
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let style = match style.as_deref() {
            None => default_style,
            Some("path") => UrlStyle::Path,
            Some("virtual") => UrlStyle::VirtualHost,
            Some(_) => return Err(bad("style must be path or virtual")),
        };
        let endpoint_url =
            url::Url::parse(&endpoint).map_err(|e| bad(&format!("endpoint: {e}")))?;
        if !endpoint_url.username().is_empty() || endpoint_url.password().is_some() {
            return Err(bad("the endpoint must not hold credentials"));
        }
        let bucket = Bucket::new(endpoint_url, style, name.clone(), region.clone())
            .map_err(|e| bad(&e.to_string()))?;
        // The host requests go to (the bucket's virtual host, or the endpoint's) decides
        // the proxy.
        let (agent, notice) = net::agent(net, &tls, &bucket.object_url(""))?;
        let source = CredentialSource {
            profile,
            file: credentials_file,
        };
        let credentials = find_credentials(&source)?;
        Ok(S3Sink {
            bucket,
            display: format!("s3://{name}/{prefix} at {endpoint} ({region})"),
            prefix,
            credentials: Mutex::new(credentials),
            source,
            agent,
            clock: Clock::default(),
            options,
            notices: Mutex::new(notice.into_iter().collect()),
        })
    }

    fn key(&self, id: &SegmentId) -> String {
        id.object_key(&self.prefix)
    }

    fn credentials(&self) -> Credentials {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn notice(&self, line: String) {
        self.notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Signs `action` with the clock corrected by the server's `Date`.
    fn sign<'a>(&self, action: &impl S3Action<'a>) -> String {
        action
            .sign_with_time(PRESIGN_TTL, &self.clock.now())
            .to_string()
    }

    /// Runs `f`, then follows up on what its failure says about the clock and the
    /// credentials.
    fn request<T>(&self, f: impl FnOnce() -> Result<T, UploadError>) -> Result<T, UploadError> {
        let before = self.clock.offset();
        let result = f();
        let after = self.clock.offset();
        if after != before {
            self.notice(format!(
                "{}: {}; signing with the server's time",
                self.display,
                http::describe_skew(after)
            ));
        }
        if let Err(UploadError::Transient { message, .. }) = &result
            && message.contains("temporary credentials expired")
        {
            match find_credentials(&self.source) {
                Ok(c) => {
                    *self.credentials.lock().unwrap_or_else(|p| p.into_inner()) = c;
                    self.notice(format!("{}: credentials reloaded", self.display));
                }
                Err(e) => self.notice(format!(
                    "{}: cannot reload the credentials: {e}",
                    self.display
                )),
            }
        }
        result
    }

    /// PUTs an object with its digests and the sink's options; with `write_once`, only if
    /// nothing is stored under `key` yet. Returns once the service confirmed the checksum.
    fn put_object(
        &self,
        key: &str,
        body: &mut dyn Read,
        len: u64,
        digest: &BodyDigest,
        write_once: bool,
    ) -> Result<(), UploadError> {
        let mut headers: Vec<(&str, String)> = vec![
            ("content-md5", digest.content_md5()),
            ("x-amz-checksum-sha256", digest.checksum_sha256()),
        ];
        if write_once {
            headers.push(("if-none-match", "*".to_string()));
        }
        if let Some((mode, days)) = &self.options.retention {
            let until = self
                .clock
                .now()
                .checked_add(jiff::SignedDuration::from_hours(i64::from(*days) * 24))
                .map_err(|e| UploadError::Config(format!("retain-days: {e}")))?;
            headers.push(("x-amz-object-lock-mode", mode.clone()));
            headers.push((
                "x-amz-object-lock-retain-until-date",
                until.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ));
        }
        if let Some(class) = &self.options.storage_class {
            headers.push(("x-amz-storage-class", class.clone()));
        }
        if let Some((sse, key_id)) = &self.options.sse {
            headers.push(("x-amz-server-side-encryption", sse.clone()));
            if let Some(k) = key_id {
                headers.push(("x-amz-server-side-encryption-aws-kms-key-id", k.clone()));
            }
        }
        let outcome = self.request(|| {
            let credentials = self.credentials();
            let mut action = PutObject::new(&self.bucket, Some(&credentials), key);
            for (k, v) in &headers {
                action.headers_mut().insert(*k, v.as_str());
            }
            let url = self.sign(&action);
            http::put(
                &self.agent,
                &url,
                &headers,
                body,
                len,
                &self.display,
                Some(&self.clock),
            )
        })?;
        match outcome {
            PutOutcome::Stored(stored) => {
                if let Some(verdict) = confirms(&stored, digest) {
                    return verdict.map_err(|why| self.conflict(key, why));
                }
                // The answer proved nothing (an ETag that is not an MD5, e.g. under
                // SSE-KMS): ask for the stored checksum.
                self.confirm_stored(key, digest, false)
            }
            PutOutcome::Exists => self.confirm_stored(key, digest, true),
        }
    }

    /// HEADs `key` and compares its checksum (or MD5 ETag) with `digest`.
    fn confirm_stored(
        &self,
        key: &str,
        digest: &BodyDigest,
        existed: bool,
    ) -> Result<(), UploadError> {
        let headers = [("x-amz-checksum-mode", "ENABLED".to_string())];
        let found = self.request(|| {
            let credentials = self.credentials();
            let mut action = HeadObject::new(&self.bucket, Some(&credentials), key);
            action
                .headers_mut()
                .insert("x-amz-checksum-mode", "ENABLED");
            let url = self.sign(&action);
            http::head(
                &self.agent,
                &url,
                &headers,
                &self.display,
                Some(&self.clock),
            )
        })?;
        let Some((stored, _)) = found else {
            return Err(UploadError::Transient {
                sink: self.display.clone(),
                message: format!("{key}: stored, but not found right after"),
                retry_after: None,
                answered: true,
            });
        };
        match confirms(&stored, digest) {
            Some(Ok(())) => {
                if existed {
                    self.notice(format!(
                        "{}: {key} was already stored with the same checksum (an earlier upload whose answer was lost)",
                        self.display
                    ));
                }
                Ok(())
            }
            Some(Err(why)) => Err(self.conflict(
                key,
                if existed {
                    format!("an object with other bytes is already stored there ({why})")
                } else {
                    why
                },
            )),
            None => Err(self.conflict(
                key,
                "the service confirmed neither the SHA-256 checksum nor the MD5 of what it stored"
                    .to_string(),
            )),
        }
    }

    fn conflict(&self, key: &str, message: String) -> UploadError {
        UploadError::Conflict {
            sink: self.display.clone(),
            key: key.to_string(),
            message,
        }
    }
}

/// Whether an answer proves the object holds `digest`'s bytes: `Some(Ok)` if its
/// `x-amz-checksum-sha256` (or, lacking one, an MD5-shaped ETag) matches, `Some(Err)` if
/// it differs, `None` if it carries neither.
fn confirms(stored: &Stored, digest: &BodyDigest) -> Option<Result<(), String>> {
    if let Some(sum) = &stored.checksum_sha256 {
        let ours = digest.checksum_sha256();
        return Some(if *sum == ours {
            Ok(())
        } else {
            Err(format!("stored SHA-256 {sum}, the segment's is {ours}"))
        });
    }
    let etag = stored.etag.as_deref()?;
    if etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        let ours = digest.md5_hex();
        return Some(if etag.eq_ignore_ascii_case(&ours) {
            Ok(())
        } else {
            Err(format!("stored ETag {etag}, the segment's MD5 is {ours}"))
        });
    }
    None
}

impl Sink for S3Sink {
    fn name(&self) -> String {
        self.display.clone()
    }

    fn put(
        &self,
        id: &SegmentId,
        body: &mut dyn Read,
        len: u64,
        digest: &BodyDigest,
    ) -> Result<(), UploadError> {
        self.put_object(&self.key(id), body, len, digest, true)
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<SegmentId>, UploadError> {
        let mut prefix = self.prefix.clone();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        // Within one stream keys sort by sequence number (12 digits), so `--since` starts
        // the listing there instead of listing the whole stream.
        let mut start_after = None;
        if let Some(cam) = &filter.camera {
            prefix.push_str(cam);
            prefix.push('/');
            if let Some(stream) = filter.stream {
                prefix.push_str(&format!("{stream}/"));
                if let Some(since) = filter.since.filter(|&s| s > 0) {
                    start_after = Some(
                        SegmentId {
                            camera_id: cam.clone(),
                            stream,
                            seq: since - 1,
                        }
                        .object_key(&self.prefix),
                    );
                }
            }
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut empty_pages = 0u32;
        loop {
            let text = self.request(|| {
                let credentials = self.credentials();
                let mut action = ListObjectsV2::new(&self.bucket, Some(&credentials));
                if !prefix.is_empty() {
                    action.with_prefix(prefix.as_str());
                }
                if let Some(s) = &start_after {
                    action.with_start_after(s.as_str());
                }
                if let Some(t) = &token {
                    action.with_continuation_token(t.as_str());
                }
                let url = self.sign(&action);
                http::get_text(&self.agent, &url, &self.display, Some(&self.clock))
            })?;
            let page = parse_list_page(&text)
                .map_err(|e| UploadError::Protocol(format!("{}: {e}", self.display)))?;
            empty_pages = if page.keys.is_empty() {
                empty_pages + 1
            } else {
                0
            };
            out.extend(
                page.keys
                    .iter()
                    .filter_map(|k| SegmentId::from_object_key(&self.prefix, k))
                    .filter(|id| filter.matches(id)),
            );
            match page.next_token {
                Some(t) => {
                    if !seen.insert(t.clone()) {
                        return Err(UploadError::Protocol(format!(
                            "{}: the listing repeated a continuation token; stopped instead of looping",
                            self.display
                        )));
                    }
                    if empty_pages > MAX_EMPTY_PAGES {
                        return Err(UploadError::Protocol(format!(
                            "{}: the listing sent {empty_pages} empty pages in a row; stopped",
                            self.display
                        )));
                    }
                    token = Some(t);
                }
                None if page.truncated => {
                    return Err(UploadError::Protocol(format!(
                        "{}: the listing is truncated but gives no continuation token",
                        self.display
                    )));
                }
                None => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn put_head(&self, camera_id: &str, stream: u32, head: &[u8]) -> Result<(), UploadError> {
        let key = head_object_key(&self.prefix, camera_id, stream);
        let mut body = head;
        // The head is replaced on purpose (it names the newest segment).
        self.put_object(
            &key,
            &mut body,
            head.len() as u64,
            &BodyDigest::of(head),
            false,
        )
    }

    fn get_head(&self, camera_id: &str, stream: u32) -> Result<Option<Vec<u8>>, UploadError> {
        let key = head_object_key(&self.prefix, camera_id, stream);
        self.request(|| {
            let credentials = self.credentials();
            let url = self.sign(&GetObject::new(&self.bucket, Some(&credentials), &key));
            http::get_small(&self.agent, &url, &[], &self.display, Some(&self.clock))
        })
    }

    fn put_control(&self, camera_id: &str, object: &[u8]) -> Result<(), UploadError> {
        let key = crate::control::object_key(&self.prefix, camera_id);
        let mut body = object;
        // Replaced on purpose: the camera decides whether a newer list is acceptable.
        self.put_object(
            &key,
            &mut body,
            object.len() as u64,
            &BodyDigest::of(object),
            false,
        )
    }

    fn get_control(&self, camera_id: &str) -> Result<Option<Vec<u8>>, UploadError> {
        let key = crate::control::object_key(&self.prefix, camera_id);
        self.request(|| {
            let credentials = self.credentials();
            let url = self.sign(&GetObject::new(&self.bucket, Some(&credentials), &key));
            http::get_small(&self.agent, &url, &[], &self.display, Some(&self.clock))
        })
    }

    fn get(&self, id: &SegmentId, out: &mut dyn Write) -> Result<u64, UploadError> {
        let key = self.key(id);
        self.request(|| {
            let credentials = self.credentials();
            let url = self.sign(&GetObject::new(&self.bucket, Some(&credentials), &key));
            http::get(
                &self.agent,
                &url,
                &[],
                out,
                MAX_OBJECT_BYTES,
                &self.display,
                Some(&self.clock),
            )
        })
    }

    /// A ranged GET (`Range: bytes=0-N`); a server that ignores the range sends the whole
    /// object, of which the start is kept.
    fn get_prefix(&self, id: &SegmentId, len: u64) -> Result<Vec<u8>, UploadError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let key = self.key(id);
        let mut bytes = Vec::new();
        self.request(|| {
            bytes.clear();
            let credentials = self.credentials();
            let url = self.sign(&GetObject::new(&self.bucket, Some(&credentials), &key));
            http::get(
                &self.agent,
                &url,
                &[("range", format!("bytes=0-{}", len - 1))],
                &mut bytes,
                MAX_OBJECT_BYTES,
                &self.display,
                Some(&self.clock),
            )
        })?;
        bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(bytes)
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Empty pages with a continuation token tolerated in a row before the listing is called
/// broken.
const MAX_EMPTY_PAGES: u32 = 64;

fn find_credentials(source: &CredentialSource) -> Result<Credentials, UploadError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let explicit = source.profile.is_some() || source.file.is_some();
    if !explicit
        && let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(match env("AWS_SESSION_TOKEN") {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        });
    }
    let path = match &source.file {
        Some(p) => p.clone(),
        None => match env("AWS_SHARED_CREDENTIALS_FILE") {
            Some(p) => PathBuf::from(p),
            None => match env("HOME") {
                Some(h) => Path::new(&h).join(".aws").join("credentials"),
                None => return Err(no_credentials("HOME is not set")),
            },
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| no_credentials(&format!("cannot read {}: {e}", path.display())))?;
    let profile = source
        .profile
        .clone()
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let (key, secret, token) = parse_credentials_file(&text, &profile).ok_or_else(|| {
        no_credentials(&format!(
            "{} has no aws_access_key_id and aws_secret_access_key in [{profile}]",
            path.display()
        ))
    })?;
    Ok(match token {
        Some(t) => Credentials::new_with_token(key, secret, t),
        None => Credentials::new(key, secret),
    })
}

/// Reads `[profile]`'s keys from an AWS credentials file (INI).
fn parse_credentials_file(text: &str, profile: &str) -> Option<(String, String, Option<String>)> {
    let mut in_profile = false;
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            in_profile = section == profile || section == format!("profile {profile}");
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some((key?, secret?, token))
}

fn no_credentials(why: &str) -> UploadError {
    UploadError::Config(format!(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a credentials file ({why})"
    ))
}

/// Presigned requests are used at once; a short life limits what a logged URL is worth.
const PRESIGN_TTL: Duration = Duration::from_secs(900);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_profiles() {
        let text = "[default]\naws_access_key_id = AK\naws_secret_access_key=SK\n\n[profile cam]\n# c\naws_access_key_id=K2\naws_secret_access_key = S2\naws_session_token = T\n";
        assert_eq!(
            parse_credentials_file(text, "default"),
            Some(("AK".into(), "SK".into(), None))
        );
        assert_eq!(
            parse_credentials_file(text, "cam"),
            Some(("K2".into(), "S2".into(), Some("T".into())))
        );
        assert_eq!(parse_credentials_file(text, "other"), None);
    }

    #[test]
    fn url_forms() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("c");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id=a\naws_secret_access_key=b\n",
        )
        .unwrap();
        let url = format!(
            "s3://bkt/cams/one?endpoint=http://127.0.0.1:9/&region=eu-west-1&credentials={}",
            creds.display()
        );
        let s = S3Sink::new(&url, &NetConfig::default()).unwrap();
        let id = SegmentId {
            camera_id: "0123456789abcdef".into(),
            stream: 0,
            seq: 3,
        };
        assert_eq!(s.key(&id), "cams/one/0123456789abcdef/0/000000000003.cseg");
        assert_eq!(
            head_object_key(&s.prefix, &id.camera_id, id.stream),
            "cams/one/0123456789abcdef/0/head"
        );
        assert!(s.name().contains("eu-west-1"));
        // A dotted bucket on AWS's endpoint is addressed by path: its virtual host would
        // not match the wildcard certificate.
        let dotted = format!("s3://logs.example.com/p?credentials={}", creds.display());
        let d = S3Sink::new(&dotted, &NetConfig::default()).unwrap();
        let url = d.bucket.object_url("k");
        assert_eq!(url.host_str(), Some("s3.us-east-1.amazonaws.com"), "{url}");
        assert_eq!(url.path(), "/logs.example.com/k");
        let plain = format!("s3://logs/p?credentials={}", creds.display());
        let p = S3Sink::new(&plain, &NetConfig::default()).unwrap();
        let url = p.bucket.object_url("k");
        assert_eq!(
            url.host_str(),
            Some("logs.s3.us-east-1.amazonaws.com"),
            "{url}"
        );
        // Retention needs days; options are checked.
        for bad in [
            "lock-mode=COMPLIANCE",
            "retain-days=0",
            "sse=rot13",
            "storage-class=a b",
        ] {
            let u = format!("s3://b/p?{bad}&credentials={}", creds.display());
            assert!(S3Sink::new(&u, &NetConfig::default()).is_err(), "{bad}");
        }
        assert!(S3Sink::new("s3:///x", &NetConfig::default()).is_err());
        assert!(S3Sink::new("s3://b/p?bogus=1", &NetConfig::default()).is_err());
        let missing = format!(
            "s3://b?endpoint=http://127.0.0.1:9&credentials={}",
            dir.path().join("none").display()
        );
        let err = S3Sink::new(&missing, &NetConfig::default()).err().unwrap();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    }
}
