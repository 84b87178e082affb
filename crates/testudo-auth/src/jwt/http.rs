//! A small blocking HTTP/1.1 GET client for JWKS documents, over plain TCP or rustls (ring
//! provider, Mozilla's roots from `webpki-roots` unless the caller gives its own).
//!
//! **Invariants:**
//! - One fetch, redirects included, ends by its deadline: every socket read and write is
//!   armed with the time left, and TLS is driven one record read at a time so a server that
//!   drips bytes cannot stretch it.
//! - At most `MAX_JWKS_BYTES` of body are accepted (by `Content-Length`, chunked or
//!   until-close framing); anything larger is an error, never a truncated document.
//! - Redirects stay on their scheme (https never becomes http, nor the reverse), at most
//!   `max_redirects` of them, and each hop passes the same address policy.
//! - Unless `allow_private_addresses`, only public unicast addresses are contacted (no
//!   loopback, private, link-local — cloud metadata — or unique-local ranges), checked on the
//!   resolved address that is then connected to, so DNS cannot swap it afterwards.
//! - URLs with user info, control characters or spaces are refused, so nothing a URI holds
//!   can inject a header line.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::fetch::unavailable;
use super::{JwksFetcher, JwtError, MAX_JWKS_BYTES};

/// Longest URI we fetch.
const MAX_URI_LEN: usize = 2048;
/// Longest response head (status line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Bytes read off the wire at most: a full body plus chunk framing.
const MAX_RESPONSE_BYTES: usize = MAX_JWKS_BYTES + 64 * 1024;

/// How the HTTP fetcher behaves. The defaults suit a server reachable from the internet.
#[derive(Debug, Clone)]
pub struct HttpFetchConfig {
    /// Fetch `http://` URIs (only `https://` otherwise). For tests and closed networks.
    pub allow_http: bool,
    /// Contact loopback, private, link-local and unique-local addresses. Needed for an
    /// identity provider inside the operator's network; off by default because an access
    /// provider's `jwks_uri` is chosen by a database administrator, not by the operator.
    pub allow_private_addresses: bool,
    /// Time allowed to open one TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole fetch, redirects included.
    pub timeout: Duration,
    /// Redirects followed at most (same scheme only).
    pub max_redirects: u8,
}

impl Default for HttpFetchConfig {
    fn default() -> Self {
        HttpFetchConfig {
            allow_http: false,
            allow_private_addresses: false,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_redirects: 3,
        }
    }
}

/// Fetches `http://` and `https://` JWKS URIs. Blocks the calling thread for at most
/// `HttpFetchConfig::timeout` plus name resolution (which the system resolver bounds).
#[derive(Clone)]
pub struct HttpJwksFetcher {
    config: HttpFetchConfig,
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for HttpJwksFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpJwksFetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpJwksFetcher {
    /// A fetcher that trusts Mozilla's root certificates.
    pub fn new(config: HttpFetchConfig) -> Result<HttpJwksFetcher, JwtError> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        HttpJwksFetcher::with_roots(config, roots)
    }

    /// A fetcher that trusts exactly `roots` (an operator's private CA, or a test CA).
    pub fn with_roots(
        config: HttpFetchConfig,
        roots: RootCertStore,
    ) -> Result<HttpJwksFetcher, JwtError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| unavailable("TLS configuration failed"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpJwksFetcher {
            config,
            tls: Arc::new(tls),
        })
    }

    pub fn config(&self) -> &HttpFetchConfig {
        &self.config
    }

    fn get(&self, url: &Url, deadline: Instant) -> Result<Response, JwtError> {
        let tcp = self.connect(url, deadline)?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: testudo-jwks\r\n\
             Accept: application/jwk-set+json, application/json\r\n\
             Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
            url.path,
            url.host_header()
        );
        if url.tls {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|_| unavailable("invalid TLS server name"))?;
            let conn = ClientConnection::new(Arc::clone(&self.tls), name)
                .map_err(|_| unavailable("TLS setup failed"))?;
            exchange(
                &mut TlsTransport { conn, tcp },
                request.as_bytes(),
                deadline,
            )
        } else {
            exchange(&mut PlainTransport(tcp), request.as_bytes(), deadline)
        }
    }

    fn connect(&self, url: &Url, deadline: Instant) -> Result<TcpStream, JwtError> {
        let addresses: Vec<SocketAddr> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|_| unavailable("could not resolve the JWKS host"))?
            .collect();
        let allowed: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|a| self.config.allow_private_addresses || is_public(a.ip()))
            .collect();
        if allowed.is_empty() {
            return Err(unavailable("the JWKS host has no permitted address"));
        }
        for address in allowed {
            let left = time_left(deadline)?;
            let limit = left.min(self.config.connect_timeout);
            if let Ok(stream) = TcpStream::connect_timeout(&address, limit) {
                // Latency matters more than packet count for one small request.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
        }
        Err(unavailable("could not connect to the JWKS host"))
    }
}

impl JwksFetcher for HttpJwksFetcher {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, JwtError> {
        let deadline = Instant::now() + self.config.timeout;
        let mut url = Url::parse(uri)?;
        if !url.tls && !self.config.allow_http {
            return Err(unavailable("plain http JWKS URIs are disabled"));
        }
        for _ in 0..=self.config.max_redirects {
            let response = self.get(&url, deadline)?;
            match response.status {
                200 => return Ok(response.body),
                301 | 302 | 303 | 307 | 308 => {
                    let location = response
                        .location
                        .ok_or_else(|| unavailable("redirect without a Location"))?;
                    let next = url.join(&location)?;
                    if next.tls != url.tls {
                        return Err(unavailable("redirect to another scheme"));
                    }
                    url = next;
                }
                status => {
                    return Err(JwtError::JwksUnavailable(format!(
                        "the JWKS host answered HTTP {status}"
                    )));
                }
            }
        }
        Err(unavailable("too many redirects"))
    }
}

fn time_left(deadline: Instant) -> Result<Duration, JwtError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(unavailable("timed out"))
    } else {
        Ok(left)
    }
}

/// Bounds the next socket operation by the time left.
fn arm(tcp: &TcpStream, deadline: Instant) -> Result<(), JwtError> {
    let left = Some(time_left(deadline)?);
    tcp.set_read_timeout(left)
        .and_then(|()| tcp.set_write_timeout(left))
        .map_err(|_| unavailable("socket error"))
}

fn io_error(error: &io::Error) -> JwtError {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => unavailable("timed out"),
        _ => unavailable("connection failed"),
    }
}

/// A connection that sends bytes and receives them a bounded step at a time.
trait Transport {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), JwtError>;
    /// Some bytes into `buf`; 0 at the end of the stream.
    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, JwtError>;
}

struct PlainTransport(TcpStream);

impl Transport for PlainTransport {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), JwtError> {
        arm(&self.0, deadline)?;
        self.0.write_all(bytes).map_err(|e| io_error(&e))
    }

    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, JwtError> {
        loop {
            arm(&self.0, deadline)?;
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other.map_err(|e| io_error(&e)),
            }
        }
    }
}

struct TlsTransport {
    conn: ClientConnection,
    tcp: TcpStream,
}

impl TlsTransport {
    fn flush(&mut self, deadline: Instant) -> Result<(), JwtError> {
        while self.conn.wants_write() {
            arm(&self.tcp, deadline)?;
            self.conn
                .write_tls(&mut self.tcp)
                .map_err(|e| io_error(&e))?;
        }
        Ok(())
    }
}

impl Transport for TlsTransport {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), JwtError> {
        // Buffered until the handshake completes, then encrypted by `flush`.
        self.conn
            .writer()
            .write_all(bytes)
            .map_err(|_| unavailable("TLS write failed"))?;
        self.flush(deadline)
    }

    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, JwtError> {
        loop {
            self.flush(deadline)?;
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: the HTTP framing decides if anything is missing.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(_) => return Err(unavailable("TLS read failed")),
            }
            arm(&self.tcp, deadline)?;
            match self.conn.read_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&e)),
            }
            self.conn
                .process_new_packets()
                .map_err(|e| JwtError::JwksUnavailable(format!("TLS: {e}")))?;
        }
    }
}

fn exchange(
    transport: &mut impl Transport,
    request: &[u8],
    deadline: Instant,
) -> Result<Response, JwtError> {
    transport.send(request, deadline)?;
    let mut received = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = transport.receive(&mut chunk, deadline)?;
        let eof = n == 0;
        received.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if received.len() > MAX_RESPONSE_BYTES {
            return Err(unavailable("JWKS response larger than 1 MiB"));
        }
        if let Some(response) = parse_response(&received, eof)? {
            return Ok(response);
        }
        if eof {
            return Err(unavailable("connection closed early"));
        }
    }
}

/// The parts of a response the fetcher needs.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    location: Option<String>,
    /// Only read for 200; empty otherwise.
    body: Vec<u8>,
}

struct Head {
    status: u16,
    location: Option<String>,
    content_length: Option<usize>,
    chunked: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete response from the bytes received so far, `None` if more are needed.
fn parse_response(received: &[u8], eof: bool) -> Result<Option<Response>, JwtError> {
    let mut rest = received;
    loop {
        let Some(head_len) = find(rest, b"\r\n\r\n") else {
            if rest.len() > MAX_HEAD_BYTES {
                return Err(unavailable("response head too large"));
            }
            return if eof {
                Err(unavailable("connection closed before the response"))
            } else {
                Ok(None)
            };
        };
        if head_len > MAX_HEAD_BYTES {
            return Err(unavailable("response head too large"));
        }
        let head = parse_head(rest.get(..head_len).unwrap_or_default())?;
        let body = rest.get(head_len + 4..).unwrap_or_default();
        if (100..200).contains(&head.status) {
            // An interim response (100 Continue and the like): the real one follows.
            rest = body;
            continue;
        }
        if head.status != 200 {
            return Ok(Some(Response {
                status: head.status,
                location: head.location,
                body: Vec::new(),
            }));
        }
        let complete = if head.chunked {
            dechunk(body)?
        } else if let Some(length) = head.content_length {
            if length > MAX_JWKS_BYTES {
                return Err(unavailable("JWKS response larger than 1 MiB"));
            }
            body.get(..length).map(<[u8]>::to_vec)
        } else if eof {
            Some(body.to_vec())
        } else {
            None
        };
        return match complete {
            Some(body) if body.len() > MAX_JWKS_BYTES => {
                Err(unavailable("JWKS response larger than 1 MiB"))
            }
            Some(body) => Ok(Some(Response {
                status: 200,
                location: None,
                body,
            })),
            None if eof => Err(unavailable("response body cut short")),
            None => Ok(None),
        };
    }
}

fn parse_head(head: &[u8]) -> Result<Head, JwtError> {
    let bad = || unavailable("malformed HTTP response");
    let text = std::str::from_utf8(head).map_err(|_| bad())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or_else(bad)?;
    let mut words = status_line.splitn(3, ' ');
    let version = words.next().ok_or_else(bad)?;
    let code = words.next().ok_or_else(bad)?;
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let status: u16 = code.parse().map_err(|_| bad())?;
    let mut parsed = Head {
        status,
        location: None,
        content_length: None,
        chunked: false,
    };
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = value
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| value.parse().ok())
                .flatten()
                .ok_or_else(bad)?;
            if parsed.content_length.is_some_and(|seen| seen != length) {
                return Err(bad());
            }
            parsed.content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(unavailable("unsupported transfer-encoding"));
            }
            parsed.chunked = true;
        } else if name.eq_ignore_ascii_case("content-encoding") {
            if !value.eq_ignore_ascii_case("identity") {
                return Err(unavailable("unsupported content-encoding"));
            }
        } else if name.eq_ignore_ascii_case("location") {
            parsed.location = Some(value.to_owned());
        }
    }
    Ok(parsed)
}

/// The body of a chunked message, `None` until its last chunk has arrived. Trailers are not
/// needed and not waited for.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, JwtError> {
    let bad = || unavailable("malformed chunked body");
    let mut body = Vec::new();
    loop {
        let Some(line_len) = find(rest, b"\r\n") else {
            return if rest.len() > 1024 {
                Err(bad())
            } else {
                Ok(None)
            };
        };
        let line =
            std::str::from_utf8(rest.get(..line_len).unwrap_or_default()).map_err(|_| bad())?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        if size_text.is_empty() || size_text.len() > 8 {
            return Err(bad());
        }
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        if size == 0 {
            return Ok(Some(body));
        }
        if body.len() + size > MAX_JWKS_BYTES {
            return Err(unavailable("JWKS response larger than 1 MiB"));
        }
        rest = rest.get(line_len + 2..).unwrap_or_default();
        let (Some(data), Some(end)) = (rest.get(..size), rest.get(size..size + 2)) else {
            return Ok(None);
        };
        if end != b"\r\n" {
            return Err(bad());
        }
        body.extend_from_slice(data);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

/// An `http`/`https` URL reduced to what a GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    tls: bool,
    /// Lowercase name or IP literal, without IPv6 brackets.
    host: String,
    port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    path: String,
}

impl Url {
    fn parse(uri: &str) -> Result<Url, JwtError> {
        let bad = || unavailable("invalid JWKS URI");
        if uri.len() > MAX_URI_LEN || !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        let (scheme, rest) = uri.split_once("://").ok_or_else(bad)?;
        let tls = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(unavailable("JWKS URI is not http or https"));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(unavailable("JWKS URI must not carry user info"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (inside, after) = v6.split_once(']').ok_or_else(bad)?;
            inside.parse::<Ipv6Addr>().map_err(|_| bad())?;
            if !after.is_empty() && !after.starts_with(':') {
                return Err(bad());
            }
            (inside, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
        if !host_ok || (!authority.starts_with('[') && host.contains(':')) {
            return Err(bad());
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                port.parse::<u16>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        let path = path.split('#').next().unwrap_or_default();
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Url {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_header())
    }

    /// The URL a redirect's `Location` names, relative to this one.
    fn join(&self, location: &str) -> Result<Url, JwtError> {
        let has_scheme = location
            .split_once(':')
            .is_some_and(|(scheme, _)| !scheme.is_empty() && !scheme.contains(['/', '?', '#']));
        if has_scheme {
            Url::parse(location)
        } else if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.tls { "https" } else { "http" };
            Url::parse(&format!("{scheme}://{rest}"))
        } else if location.starts_with('/') {
            Url::parse(&format!("{}{location}", self.origin()))
        } else {
            let path = self.path.split('?').next().unwrap_or("/");
            let directory = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            Url::parse(&format!("{}{directory}/{location}", self.origin()))
        }
    }
}

/// Is this an address on the public internet (not loopback, private, link-local, shared,
/// documentation, multicast, reserved or unspecified)?
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => {
                let documentation =
                    v6.segments().first() == Some(&0x2001) && v6.segments().get(1) == Some(&0x0db8);
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
                    || documentation)
            }
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let reserved = a >= 240 || a == 0;
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || shared
        || reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_host_port_and_path_and_drop_the_fragment() {
        let url = Url::parse("https://IdP.Example:8443/a/jwks?x=1#frag").unwrap();
        assert_eq!(
            url,
            Url {
                tls: true,
                host: "idp.example".into(),
                port: 8443,
                path: "/a/jwks?x=1".into()
            }
        );
        assert_eq!(url.host_header(), "idp.example:8443");
        let v6 = Url::parse("http://[::1]/jwks").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 80));
        assert_eq!(v6.host_header(), "[::1]");
        assert_eq!(Url::parse("https://idp").unwrap().path, "/");
    }

    #[test]
    fn urls_that_could_smuggle_headers_or_credentials_are_refused() {
        for uri in [
            "https://idp/jw ks",
            "https://idp/jwks\r\nX-Evil: 1",
            "https://user:pw@idp/jwks",
            "https://idp:99999/",
            "https://idp:/",
            "https://:443/",
            "https://a:b:c/",
            "http://[::1]junk/",
            "ftp://idp/jwks",
            "https://idp/é",
            "idp/jwks",
        ] {
            assert!(Url::parse(uri).is_err(), "{uri:?}");
        }
    }

    #[test]
    fn redirect_locations_resolve_against_the_current_url() {
        let base = Url::parse("https://idp:8443/a/b/jwks?v=1").unwrap();
        assert_eq!(base.join("/keys").unwrap().path, "/keys");
        assert_eq!(base.join("keys").unwrap().path, "/a/b/keys");
        assert_eq!(base.join("keys").unwrap().port, 8443);
        let other = base.join("//cdn.example/k").unwrap();
        assert_eq!((other.host.as_str(), other.tls), ("cdn.example", true));
        assert!(!base.join("http://idp/k").unwrap().tls);
    }

    #[test]
    fn only_public_addresses_pass_the_default_policy() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    fn ok(bytes: &[u8], eof: bool) -> Option<Response> {
        parse_response(bytes, eof).unwrap()
    }

    #[test]
    fn a_content_length_body_is_complete_when_all_of_it_arrived() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(ok(full, false).unwrap().body, b"hello");
        assert_eq!(ok(&full[..full.len() - 1], false), None);
        assert!(parse_response(&full[..full.len() - 1], true).is_err());
    }

    #[test]
    fn a_chunked_body_is_joined_and_ends_at_the_zero_chunk() {
        let full = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     3;ext=1\r\n{\"k\r\n2\r\n\":\r\n0\r\n\r\n";
        assert_eq!(ok(full, false).unwrap().body, b"{\"k\":");
        assert_eq!(ok(&full[..60], false), None);
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_response(bad, false).is_err());
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n";
        assert!(parse_response(huge, false).is_err());
    }

    #[test]
    fn a_body_without_framing_ends_at_close() {
        let body = b"HTTP/1.0 200 OK\r\n\r\n{}";
        assert_eq!(ok(body, false), None);
        assert_eq!(ok(body, true).unwrap().body, b"{}");
    }

    #[test]
    fn interim_responses_are_skipped_and_redirects_need_no_body() {
        let interim =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(ok(interim, false).unwrap().body, b"{}");
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: /k\r\n\r\n";
        let response = ok(redirect, false).unwrap();
        assert_eq!(
            (response.status, response.location.as_deref()),
            (302, Some("/k"))
        );
    }

    #[test]
    fn oversized_compressed_or_conflicting_responses_are_refused() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
        ] {
            assert!(parse_response(head.as_bytes(), false).is_err(), "{head:?}");
        }
        assert!(parse_response(&vec![b'a'; MAX_HEAD_BYTES + 1], false).is_err());
    }
}
