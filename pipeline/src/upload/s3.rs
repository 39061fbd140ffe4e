//! `s3://BUCKET/PREFIX?endpoint=URL&region=R`: S3-compatible object storage, requests
//! signed with SigV4 (presigned by `rusty-s3`, sent by `ureq`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusty_s3::actions::{GetObject, ListObjectsV2, PutObject, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use ureq::Agent;

use super::{ListFilter, NetConfig, Sink, UploadError, http};
use crate::spool::SegmentId;
use crate::spool::policy::head_object_key;

/// An S3 bucket (AWS, MinIO, Garage, Ceph RGW, ...).
///
/// URL: `s3://BUCKET[/PREFIX][?endpoint=URL][&region=R][&style=path|virtual]
/// [&profile=P][&credentials=FILE]`. Without `endpoint`, AWS's regional endpoint with
/// virtual-host style; with it, path style (what self-hosted servers expect).
///
/// Credentials: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`)
/// when set; otherwise the profile (`profile=`, `AWS_PROFILE`, or `default`) of a
/// credentials file (`credentials=`, `AWS_SHARED_CREDENTIALS_FILE`, or
/// `~/.aws/credentials`).
pub struct S3Sink {
    bucket: Bucket,
    prefix: String,
    credentials: Credentials,
    agent: Agent,
    display: String,
}

impl S3Sink {
    /// Parses an `s3://` URL and finds the credentials.
    pub fn new(url: &str, net: &NetConfig) -> Result<S3Sink, UploadError> {
        let bad = |why: &str| UploadError::Config(format!("bad S3 sink URL {url:?}: {why}"));
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
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "endpoint" => endpoint = Some(v.into_owned()),
                "region" => region = Some(v.into_owned()),
                "style" => style = Some(v.into_owned()),
                "profile" => profile = Some(v.into_owned()),
                "credentials" => credentials_file = Some(PathBuf::from(&*v)),
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        let region = region
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        let (endpoint, default_style) = match endpoint {
            Some(e) => (e, UrlStyle::Path),
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
        let bucket = Bucket::new(endpoint_url, style, name.clone(), region.clone())
            .map_err(|e| bad(&e.to_string()))?;
        let credentials = find_credentials(profile.as_deref(), credentials_file.as_deref())?;
        Ok(S3Sink {
            bucket,
            display: format!("s3://{name}/{prefix} at {endpoint} ({region})"),
            prefix,
            credentials,
            agent: http::agent(net),
        })
    }

    fn key(&self, id: &SegmentId) -> String {
        id.object_key(&self.prefix)
    }
}

impl Sink for S3Sink {
    fn name(&self) -> String {
        self.display.clone()
    }

    fn put(&self, id: &SegmentId, body: &mut dyn Read, len: u64) -> Result<(), UploadError> {
        let key = self.key(id);
        let url = PutObject::new(&self.bucket, Some(&self.credentials), &key).sign(PRESIGN_TTL);
        http::put(&self.agent, url.as_str(), body, len, &self.display)
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<SegmentId>, UploadError> {
        let mut prefix = self.prefix.clone();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        if let Some(cam) = &filter.camera {
            prefix.push_str(cam);
            prefix.push('/');
            if let Some(stream) = filter.stream {
                prefix.push_str(&format!("{stream}/"));
            }
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            if !prefix.is_empty() {
                action.with_prefix(prefix.as_str());
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(PRESIGN_TTL);
            let text = http::get_text(&self.agent, url.as_str(), &self.display)?;
            let page = ListObjectsV2::parse_response(&text).map_err(|e| {
                UploadError::Protocol(format!("{}: unreadable listing: {e}", self.display))
            })?;
            out.extend(
                page.contents
                    .iter()
                    .filter_map(|c| SegmentId::from_object_key(&self.prefix, &c.key))
                    .filter(|id| filter.matches(id)),
            );
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    fn put_head(&self, camera_id: &str, stream: u32, head: &[u8]) -> Result<(), UploadError> {
        let key = head_object_key(&self.prefix, camera_id, stream);
        let url = PutObject::new(&self.bucket, Some(&self.credentials), &key).sign(PRESIGN_TTL);
        let mut body = head;
        http::put(
            &self.agent,
            url.as_str(),
            &mut body,
            head.len() as u64,
            &self.display,
        )
    }

    fn get_head(&self, camera_id: &str, stream: u32) -> Result<Option<Vec<u8>>, UploadError> {
        let key = head_object_key(&self.prefix, camera_id, stream);
        let url = GetObject::new(&self.bucket, Some(&self.credentials), &key).sign(PRESIGN_TTL);
        http::get_small(&self.agent, url.as_str(), &self.display)
    }

    fn get(&self, id: &SegmentId, out: &mut dyn Write) -> Result<u64, UploadError> {
        let key = self.key(id);
        let url = GetObject::new(&self.bucket, Some(&self.credentials), &key).sign(PRESIGN_TTL);
        http::get(&self.agent, url.as_str(), out, &self.display)
    }
}

fn find_credentials(
    profile: Option<&str>,
    file: Option<&Path>,
) -> Result<Credentials, UploadError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if file.is_none()
        && let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(match env("AWS_SESSION_TOKEN") {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        });
    }
    let path = match file {
        Some(p) => p.to_path_buf(),
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
    let profile = profile
        .map(str::to_string)
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
