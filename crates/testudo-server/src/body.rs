//! Reading a request body under a hard size limit and a time limit.
//!
//! **Invariants:** never buffers more than `limit` bytes (a larger `Content-Length` is refused
//! before reading anything, a body that grows past the limit is abandoned at the first frame
//! that crosses it); never waits for a slow client longer than the configured timeout.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;

use crate::error::ProtocolError;

/// Reads the whole body. An empty body is reported as "No request body provided".
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ProtocolError>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ProtocolError::request_size_exceeded(limit));
    }
    let collected = match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_elapsed) => {
            return Err(ProtocolError::invalid_request(
                "Timed out reading the request body",
            ));
        }
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ProtocolError::request_size_exceeded(limit));
        }
        Ok(Err(err)) => return Err(ProtocolError::invalid_body(err)),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if collected.is_empty() {
        return Err(ProtocolError::invalid_request("No request body provided"));
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProtocolCode;
    use http_body_util::{Empty, Full};

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_body_within_the_limit_is_returned_whole() {
        let body = Full::new(Bytes::from_static(b"{\"query\":\"1\"}"));
        let bytes = read_body(&HeaderMap::new(), body, 64, SECOND)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"{\"query\":\"1\"}");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let body = Full::new(Bytes::from(vec![b' '; 65]));
        let err = read_body(&HeaderMap::new(), body, 64, SECOND)
            .await
            .unwrap_err();
        assert_eq!(err.code, ProtocolCode::RequestSizeExceeded);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, "1000000".parse().unwrap());
        let err = read_body(&headers, Empty::<Bytes>::new(), 64, SECOND)
            .await
            .unwrap_err();
        assert_eq!(err.code, ProtocolCode::RequestSizeExceeded);
    }

    #[tokio::test]
    async fn an_empty_body_is_missing() {
        let err = read_body(&HeaderMap::new(), Empty::<Bytes>::new(), 64, SECOND)
            .await
            .unwrap_err();
        assert_eq!(err.message, "No request body provided");
    }
}
