//! Connections to the target and one request on them: `POST <path>` with the headers a Fauna
//! driver sends, the whole response body read.
//!
//! HTTP/1.1 connections are keep-alive (hyper's default) and carry one request at a time;
//! an h2c connection's [`Connection`] may be cloned to run several streams on it.
//!
//! **Invariants:** only `http://` targets (this tool measures cleartext loopback); a target
//! outside the loopback range is refused unless explicitly allowed; no response is trusted
//! beyond its status and its bytes.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// The query endpoint of the Fauna v10 protocol.
pub const QUERY_PATH: &str = "/query/1";

/// The query timeout the JavaScript and Python drivers send by default.
const DRIVER_QUERY_TIMEOUT_MS: &str = "5000";

/// The query timeout of setup queries: seeding a few thousand documents in one transaction
/// on a busy machine can take longer than a driver's default (this is Fauna's own default).
const SETUP_QUERY_TIMEOUT_MS: &str = "120000";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid URL '{0}': expected http://host:port")]
    Url(String),
    #[error("could not resolve '{0}': {1}")]
    Resolve(String, String),
    #[error(
        "refusing to send load to {0}, which is not a loopback address (pass --allow-non-loopback if the machine is yours)"
    )]
    NotLoopback(SocketAddr),
    #[error("could not connect to {0}: {1}")]
    Connect(SocketAddr, String),
    #[error("HTTP handshake failed: {0}")]
    Handshake(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("invalid header value for {0}")]
    Header(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "h1",
            Protocol::Http2 => "h2c",
        }
    }
}

/// Where requests go and the fixed headers they carry.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    host: HeaderValue,
    /// HTTP/2 needs the absolute form (scheme and authority become pseudo-headers); HTTP/1.1
    /// sends the origin form with a `Host` header, as browsers and drivers do.
    query_uri: Uri,
    authorization: HeaderValue,
}

impl Target {
    pub async fn resolve(
        url: &str,
        protocol: Protocol,
        secret: &str,
        allow_non_loopback: bool,
    ) -> Result<Target, ClientError> {
        let uri: Uri = url.parse().map_err(|_| ClientError::Url(url.to_owned()))?;
        if uri.scheme_str() != Some("http") {
            return Err(ClientError::Url(url.to_owned()));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Url(url.to_owned()))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .map_err(|err| ClientError::Resolve(authority.to_string(), err.to_string()))?
            .next()
            .ok_or_else(|| ClientError::Resolve(authority.to_string(), "no address".to_owned()))?;
        if !allow_non_loopback && !addr.ip().is_loopback() {
            return Err(ClientError::NotLoopback(addr));
        }
        let query_uri = match protocol {
            Protocol::Http1 => Uri::from_static(QUERY_PATH),
            Protocol::Http2 => format!("http://{authority}{QUERY_PATH}")
                .parse()
                .map_err(|_| ClientError::Url(url.to_owned()))?,
        };
        Ok(Target {
            addr,
            protocol,
            host: HeaderValue::from_str(authority.as_str())
                .map_err(|_| ClientError::Header("Host"))?,
            query_uri,
            authorization: HeaderValue::from_str(&format!("Bearer {secret}"))
                .map_err(|_| ClientError::Header("Authorization"))?,
        })
    }

    /// A `POST /query/1` with the headers of a Fauna driver asking for the tagged format.
    pub fn query_request(&self, body: Bytes) -> Result<Request<Full<Bytes>>, ClientError> {
        self.request_with_timeout(body, DRIVER_QUERY_TIMEOUT_MS)
    }

    /// [`Target::query_request`] with a longer query timeout, for setup (seeding) queries.
    pub fn setup_request(&self, body: Bytes) -> Result<Request<Full<Bytes>>, ClientError> {
        self.request_with_timeout(body, SETUP_QUERY_TIMEOUT_MS)
    }

    fn request_with_timeout(
        &self,
        body: Bytes,
        timeout_ms: &'static str,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.query_uri.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("x-format", HeaderValue::from_static("tagged"))
            .header("x-query-timeout-ms", HeaderValue::from_static(timeout_ms));
        if self.protocol == Protocol::Http1 {
            builder = builder.header(HOST, self.host.clone());
        }
        builder
            .body(Full::new(body))
            .map_err(|err| ClientError::Request(err.to_string()))
    }
}

/// A response: its status and its whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// One open connection (HTTP/1.1), or a handle on one (h2c, shareable per stream).
#[derive(Debug)]
pub enum Connection {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Connection {
    /// Opens a connection; the task driving it ends when every handle is dropped or the
    /// server closes it.
    pub async fn open(target: &Target) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(target.addr)
            .await
            .map_err(|err| ClientError::Connect(target.addr, err.to_string()))?;
        // Drivers disable Nagle too; without it small requests wait for delayed ACKs.
        stream
            .set_nodelay(true)
            .map_err(|err| ClientError::Connect(target.addr, err.to_string()))?;
        let io = TokioIo::new(stream);
        match target.protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io)
                    .await
                    .map_err(|err| ClientError::Handshake(err.to_string()))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Connection::Http1(sender))
            }
            Protocol::Http2 => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|err| ClientError::Handshake(err.to_string()))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Connection::Http2(sender))
            }
        }
    }

    /// Another handle on the same h2c connection, for one more concurrent stream; `None`
    /// for HTTP/1.1, which carries one request at a time.
    pub fn share(&self) -> Option<Connection> {
        match self {
            Connection::Http1(_) => None,
            Connection::Http2(sender) => Some(Connection::Http2(sender.clone())),
        }
    }

    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        let response = match self {
            Connection::Http1(sender) => {
                sender
                    .ready()
                    .await
                    .map_err(|err| ClientError::Request(err.to_string()))?;
                sender.send_request(request).await
            }
            Connection::Http2(sender) => {
                sender
                    .ready()
                    .await
                    .map_err(|err| ClientError::Request(err.to_string()))?;
                sender.send_request(request).await
            }
        }
        .map_err(|err| ClientError::Request(err.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| ClientError::Request(err.to_string()))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http1_requests_use_the_origin_form_and_a_host_header() {
        let target = Target::resolve("http://127.0.0.1:9", Protocol::Http1, "secret", false)
            .await
            .unwrap();
        let request = target.query_request(Bytes::from_static(b"{}")).unwrap();
        assert_eq!(request.uri(), "/query/1");
        assert_eq!(request.headers()[HOST], "127.0.0.1:9");
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer secret");
        assert_eq!(request.headers()["x-format"], "tagged");
        assert_eq!(request.headers()["x-query-timeout-ms"], "5000");
        let setup = target.setup_request(Bytes::new()).unwrap();
        assert_eq!(setup.headers()["x-query-timeout-ms"], "120000");
    }

    #[tokio::test]
    async fn http2_requests_use_the_absolute_form() {
        let target = Target::resolve("http://127.0.0.1:9", Protocol::Http2, "s3", false)
            .await
            .unwrap();
        let request = target.query_request(Bytes::new()).unwrap();
        assert_eq!(request.uri(), "http://127.0.0.1:9/query/1");
        assert!(request.headers().get(HOST).is_none());
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer s3");
    }

    #[tokio::test]
    async fn targets_outside_loopback_are_refused_unless_allowed() {
        let refused = Target::resolve("http://192.0.2.1:8443", Protocol::Http1, "s", false).await;
        assert!(matches!(refused, Err(ClientError::NotLoopback(_))));
        let allowed = Target::resolve("http://192.0.2.1:8443", Protocol::Http1, "s", true).await;
        assert!(allowed.is_ok());
    }

    #[tokio::test]
    async fn only_plain_http_urls_are_accepted() {
        for url in ["https://127.0.0.1:8443", "127.0.0.1:8443", "not a url"] {
            let result = Target::resolve(url, Protocol::Http1, "s", false).await;
            assert!(matches!(result, Err(ClientError::Url(_))), "{url}");
        }
    }
}
