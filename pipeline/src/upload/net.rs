//! How a sink's connections are made: which roots of trust and which client certificate
//! its TLS uses (`ca=`, `cert=`, `key=`), and which proxy of the environment it goes
//! through. The choices are pure functions of the options and the environment, kept apart
//! from the agent that applies them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;

use ureq::Agent;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::{NetConfig, UploadError, early};

/// The TLS options of a sink, as given in its URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `ca=FILE`: trust only the PEM certificates in FILE.
    pub ca: Option<PathBuf>,
    /// `cert=FILE`: present this PEM certificate chain (a private key may follow it).
    pub cert: Option<PathBuf>,
    /// `key=FILE`: the PEM private key of `cert` (default: the key inside the `cert` file).
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    /// Takes `name=value` if `name` is a TLS option; returns false if it is not one.
    pub fn accept(&mut self, name: &str, value: &str) -> bool {
        let slot = match name {
            "ca" => &mut self.ca,
            "cert" => &mut self.cert,
            "key" => &mut self.key,
            _ => return false,
        };
        *slot = Some(PathBuf::from(value));
        true
    }
}

/// Where a connection's roots of trust come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustSource {
    /// The certificates of a `ca=FILE` option, and nothing else.
    CaFile(PathBuf),
    /// The system store: `SSL_CERT_FILE` and `SSL_CERT_DIR` when either is set, else the
    /// distribution's bundle (found the way OpenSSL finds it).
    System,
    /// The Mozilla roots compiled into the binary: the system store held no certificate
    /// (a camera image without one).
    CompiledIn,
}

/// An HTTP agent for connections to `target` (a sink's endpoint): the configured timeouts,
/// no redirects, statuses returned as responses rather than errors, the sink's TLS options,
/// the proxy the environment names for `target` ([`proxy_for`]), and an answer the server
/// sends while the body is still being written surfacing as that answer ([`early`]).
/// With it, a line worth logging once: the system store was empty, so the compiled-in roots
/// are trusted.
pub(super) fn agent(
    net: &NetConfig,
    tls: &TlsOptions,
    target: &url::Url,
) -> Result<(Agent, Option<String>), UploadError> {
    let env = |k: &str| std::env::var(k).ok();
    let https = target.scheme() == "https";
    let (roots, source) = roots(tls.ca.as_deref(), https)?;
    let notice = (https && source == TrustSource::CompiledIn).then(|| {
        "TLS: the system certificate store (SSL_CERT_FILE, SSL_CERT_DIR or the distribution's bundle) holds no certificate; trusting the Mozilla roots compiled into camseal".to_string()
    });
    let mut config = TlsConfig::builder().root_certs(roots);
    if let Some(cert) = &tls.cert {
        config = config.client_cert(Some(client_cert(cert, tls.key.as_deref())?));
    } else if tls.key.is_some() {
        return Err(UploadError::Config(
            "key=FILE needs cert=FILE (the client certificate it belongs to)".into(),
        ));
    }
    let host = target.host_str().unwrap_or_default();
    let port = target.port_or_known_default().unwrap_or(0);
    let proxy = match proxy_for(target.scheme(), host, port, env) {
        Some((var, url)) => {
            let bad = |why: &str| {
                UploadError::Config(format!("{var}={}: {why}", super::redact_url(&url)))
            };
            // Only HTTP CONNECT proxies are built in; a SOCKS one must not be bypassed
            // silently.
            if let Some((scheme, _)) = url.split_once("://")
                && !scheme.eq_ignore_ascii_case("http")
            {
                return Err(bad("only http:// (CONNECT) proxies are supported"));
            }
            Some(ureq::Proxy::new(&url).map_err(|_| bad("not a usable proxy URL"))?)
        }
        None => None,
    };
    let config = Agent::config_builder()
        .tls_config(config.build())
        .timeout_connect(Some(net.connect_timeout))
        .timeout_per_read(Some(net.io_timeout))
        .timeout_per_write(Some(net.io_timeout))
        .timeout_resolve(Some(net.connect_timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(proxy)
        .user_agent(concat!("camseal/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok((early::agent(config), notice))
}

/// The roots to trust: only the certificates of `ca` when given; else, for a TLS
/// connection, the system store, or the compiled-in Mozilla roots when the system store
/// holds none. A plain-HTTP connection needs none (the compiled-in ones are named).
pub fn roots(ca: Option<&Path>, tls: bool) -> Result<(RootCerts, TrustSource), UploadError> {
    if let Some(path) = ca {
        let certs = read_certificates(path, "ca")?;
        return Ok((
            RootCerts::new_with_certs(&certs),
            TrustSource::CaFile(path.to_path_buf()),
        ));
    }
    if !tls {
        return Ok((RootCerts::WebPki, TrustSource::CompiledIn));
    }
    // Unreadable files in the store are skipped, as OpenSSL does: the certificates that
    // did load are the store.
    let system: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if system.is_empty() {
        return Ok((RootCerts::WebPki, TrustSource::CompiledIn));
    }
    Ok((RootCerts::new_with_certs(&system), TrustSource::System))
}

/// The PEM certificates in `path` (an option `option=path`), at least one.
fn read_certificates(path: &Path, option: &str) -> Result<Vec<Certificate<'static>>, UploadError> {
    let (certs, _) = read_pem(path, option)?;
    if certs.is_empty() {
        return Err(UploadError::Config(format!(
            "{option}={}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The certificates and private keys of a PEM file. Errors name the file, never its
/// contents (a key is a secret).
fn read_pem(
    path: &Path,
    option: &str,
) -> Result<(Vec<Certificate<'static>>, Vec<PrivateKey<'static>>), UploadError> {
    let bad = |why: String| UploadError::Config(format!("{option}={}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item.map_err(|_| bad("not valid PEM".into()))? {
            PemItem::Certificate(c) => certs.push(c),
            PemItem::PrivateKey(k) => keys.push(k),
            _ => {}
        }
    }
    Ok((certs, keys))
}

/// The client certificate of `cert=FILE` (a chain, leaf first) and its key from `key=FILE`,
/// else from the `cert` file itself. The key must belong to the certificate: checked here,
/// so a mismatch is a configuration error at start rather than a failed handshake later.
pub fn client_cert(cert: &Path, key: Option<&Path>) -> Result<ClientCert, UploadError> {
    let (chain, mut keys) = read_pem(cert, "cert")?;
    if chain.is_empty() {
        return Err(UploadError::Config(format!(
            "cert={}: no PEM certificate in it",
            cert.display()
        )));
    }
    let (key_file, option) = match key {
        Some(k) => {
            keys = read_pem(k, "key")?.1;
            (k, "key")
        }
        None => (cert, "cert"),
    };
    let mut keys = keys.into_iter();
    let (Some(private), None) = (keys.next(), keys.next()) else {
        return Err(UploadError::Config(format!(
            "{option}={}: expected exactly one PEM private key{}",
            key_file.display(),
            if key.is_none() {
                " after the certificate (or give key=FILE)"
            } else {
                ""
            }
        )));
    };
    let der_chain = chain
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
        .collect();
    let bad_key = |e: String| UploadError::Config(format!("{option}={}: {e}", key_file.display()));
    // The same PEM read again as the DER type rustls checks; names the file, not the key.
    let key_pem = std::fs::read(key_file).map_err(|e| bad_key(e.to_string()))?;
    let der_key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| bad_key("not a usable PEM private key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::sign::CertifiedKey::from_der(der_chain, der_key, &provider).map_err(|e| {
        UploadError::Config(format!(
            "cert={} with its key {}: {e}",
            cert.display(),
            key_file.display()
        ))
    })?;
    Ok(ClientCert::new_with_certs(&chain, private))
}

/// The proxy a connection to `scheme://host:port` goes through, as `(variable, URL)`, from
/// the environment (`env` looks a variable up), following curl's conventions:
///
/// - `https_proxy`/`HTTPS_PROXY` for `https`, `http_proxy`/`HTTP_PROXY` for `http`, else
///   `all_proxy`/`ALL_PROXY`; the lower-case spelling first, an empty value is unset;
/// - none when `no_proxy`/`NO_PROXY` matches the host ([`no_proxy_matches`]).
pub fn proxy_for(
    scheme: &str,
    host: &str,
    port: u16,
    env: impl Fn(&str) -> Option<String>,
) -> Option<(String, String)> {
    let get = |names: &[&str]| {
        names.iter().find_map(|n| {
            env(n)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (n.to_string(), v.trim().to_string()))
        })
    };
    let specific: &[&str] = match scheme {
        "https" => &["https_proxy", "HTTPS_PROXY"],
        "http" => &["http_proxy", "HTTP_PROXY"],
        _ => &[],
    };
    let proxy = get(specific).or_else(|| get(&["all_proxy", "ALL_PROXY"]))?;
    if let Some((_, list)) = get(&["no_proxy", "NO_PROXY"])
        && no_proxy_matches(&list, host, port)
    {
        return None;
    }
    Some(proxy)
}

/// Whether a `NO_PROXY` list names `host` (a name or an IP address, IPv6 with or without
/// brackets) at `port`. Entries are separated by commas or white space:
///
/// - `*` matches every host;
/// - a name matches itself and its subdomains (`example.com` and `.example.com` both match
///   `example.com` and `cam.example.com`; a leading `*.` is read as `.`);
/// - an IP address matches itself, and `ADDRESS/BITS` a network (`10.0.0.0/8`, `fd00::/8`);
/// - `:PORT` after a name or address (`[v6]:PORT` for IPv6) restricts it to that port.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            if let Some((net, bits)) = entry.split_once('/') {
                return match (host_ip, net.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Some(h), Ok(n), Ok(b)) => in_network(h, n, b),
                    _ => false,
                };
            }
            let (name, entry_port) = split_port(&entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            if let (Some(h), Ok(e)) = (host_ip, name.parse::<IpAddr>()) {
                return h == e;
            }
            let name = name
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.');
            !name.is_empty()
                && (host == name
                    || host
                        .strip_suffix(name)
                        .is_some_and(|rest| rest.ends_with('.')))
        })
}

/// `name:port`, `[v6]:port`, `[v6]`, a bare IPv6 address or a name.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return (entry, None);
        };
        return (addr, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        // More than one colon: an IPv6 address without a port.
        Some((name, _)) if name.contains(':') => (entry, None),
        Some((name, p)) => match p.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (entry, None),
        },
        None => (entry, None),
    }
}

/// Whether `ip` is in `network/bits` (both of the same family).
fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_entries() {
        let m = no_proxy_matches;
        assert!(m("*", "anything", 1));
        assert!(m("example.com", "example.com", 443));
        assert!(m("example.com", "cam.example.com", 443));
        assert!(m(".example.com", "example.com", 443));
        assert!(m("*.example.com", "a.b.example.com", 443));
        assert!(!m("example.com", "badexample.com", 443));
        assert!(!m("cam.example.com", "example.com", 443));
        assert!(m("other.lan,  127.0.0.1", "127.0.0.1", 80));
        assert!(m("other.lan 10.0.0.0/8", "10.1.2.3", 80));
        assert!(!m("10.0.0.0/8", "11.0.0.1", 80));
        assert!(m("127.0.0.0/8", "127.0.0.1", 80));
        assert!(m("0.0.0.0/0", "192.168.1.1", 80));
        assert!(m("fd00::/8", "[fd12::1]", 80));
        assert!(!m("fd00::/8", "127.0.0.1", 80));
        assert!(m("::1", "[::1]", 80));
        assert!(m("[::1]:9000", "[::1]", 9000));
        assert!(!m("[::1]:9000", "[::1]", 9001));
        assert!(m("minio.lan:9000", "minio.lan", 9000));
        assert!(!m("minio.lan:9000", "minio.lan", 443));
        assert!(m("MinIO.LAN", "minio.lan", 443));
        assert!(m("minio.lan", "MINIO.lan.", 443));
        assert!(!m("", "minio.lan", 443));
        assert!(!m(".", "minio.lan", 443));
        assert!(!m("127.0.0.1", "127.0.0.2", 80));
    }

    #[test]
    fn proxy_by_scheme_then_all() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let only_https = env(&[("HTTPS_PROXY", "http://p:1")]);
        assert_eq!(
            proxy_for("https", "h", 443, only_https),
            Some(("HTTPS_PROXY".into(), "http://p:1".into()))
        );
        assert_eq!(proxy_for("http", "h", 80, only_https), None);
        let both = env(&[
            ("HTTP_PROXY", "http://plain:1"),
            ("ALL_PROXY", "http://all:1"),
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:1"),
        ]);
        assert_eq!(
            proxy_for("http", "h", 80, both).unwrap().1,
            "http://plain:1"
        );
        assert_eq!(
            proxy_for("https", "h", 443, both).unwrap().1,
            "http://lower:1"
        );
        let all = env(&[("ALL_PROXY", "http://all:1"), ("HTTP_PROXY", " ")]);
        assert_eq!(proxy_for("http", "h", 80, all).unwrap().1, "http://all:1");
        let bypass = env(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("no_proxy", "cam.lan"),
            ("NO_PROXY", "other"),
        ]);
        assert_eq!(proxy_for("https", "s3.cam.lan", 443, bypass), None);
        assert!(proxy_for("https", "other", 443, bypass).is_some());
    }

    #[test]
    fn tls_options() {
        let mut o = TlsOptions::default();
        assert!(o.accept("ca", "/a"));
        assert!(o.accept("cert", "/b"));
        assert!(o.accept("key", "/c"));
        assert!(!o.accept("token-file", "/d"));
        assert_eq!(o.key.as_deref(), Some(Path::new("/c")));
        let (_, source) = roots(None, false).unwrap();
        assert_eq!(source, TrustSource::CompiledIn);
        assert!(matches!(
            roots(Some(Path::new("/nonexistent/ca.pem")), true),
            Err(UploadError::Config(_))
        ));
    }
}
