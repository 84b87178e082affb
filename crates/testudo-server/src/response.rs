//! Writing responses: the JSON of query results, query errors and protocol errors, and the
//! headers every response carries.
//!
//! JSON is written straight into a buffer, field by field, in the order Fauna emits it:
//! success `data, summary, txn_ts, stats, query_tags?, schema_version`; query error
//! `error{code, message, constraint_failures?, abort?}, summary, txn_ts, stats, query_tags?,
//! schema_version`; protocol error `error{code, message}, query_tags?`.
//!
//! **Invariants:** no field outside those sets is ever written (the JVM driver rejects
//! unknown fields); `stats` always has exactly its eight keys in Fauna's order; `query_tags`
//! appears only when the client sent tags; responses are never compressed; the
//! `Content-Type` is always `application/json;charset=utf-8`; an internal error's details go
//! to the log, not to the client.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use testudo_engine::{ConstraintFailure, ErrorCode, PathElem, QueryError, QueryResponse, Stats};
use testudo_model::json::{self, Format};

use crate::error::{ProtocolCode, ProtocolError, query_error_status};

/// The body type of every response (boxed so that streaming endpoints can share it).
pub type ResponseBody = BoxBody<Bytes, Infallible>;

pub const JSON_CONTENT_TYPE: &str = "application/json;charset=utf-8";

/// What the client sees instead of an internal error's own message.
const INTERNAL_MESSAGE: &str = "Internal server error";

/// A JSON response with the headers every response carries.
pub fn json_response(
    status: StatusCode,
    body: Vec<u8>,
    traceparent: &str,
) -> Response<ResponseBody> {
    with_headers(status, Full::new(Bytes::from(body)).boxed(), traceparent)
}

/// A response with no body (`HEAD`), otherwise like [`json_response`].
pub fn empty_response(status: StatusCode, traceparent: &str) -> Response<ResponseBody> {
    with_headers(status, Empty::new().boxed(), traceparent)
}

fn with_headers(
    status: StatusCode,
    body: ResponseBody,
    traceparent: &str,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    // `trace::traceparent` only produces header-safe text, so this never skips in practice.
    if let Ok(value) = HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", value);
    }
    response
}

/// A protocol error response; a 401 also gets `WWW-Authenticate: Bearer`.
pub fn protocol_error(
    err: &ProtocolError,
    query_tags: Option<&str>,
    traceparent: &str,
) -> Response<ResponseBody> {
    let mut out = Vec::with_capacity(96);
    write_protocol_error(&mut out, err, query_tags);
    let mut response = json_response(err.code.status(), out, traceparent);
    response
        .extensions_mut()
        .insert(crate::observe::ErrorOutcome(err.code.as_str()));
    if err.code == ProtocolCode::Unauthorized {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

pub fn write_protocol_error(out: &mut Vec<u8>, err: &ProtocolError, query_tags: Option<&str>) {
    out.extend_from_slice(b"{\"error\":{\"code\":");
    write_str(out, err.code.as_str());
    out.extend_from_slice(b",\"message\":");
    write_str(out, &err.message);
    out.push(b'}');
    write_query_tags(out, query_tags);
    out.push(b'}');
}

/// The status and JSON body of an engine response, success or query error.
pub fn write_query_response(
    response: &QueryResponse,
    format: Format,
    query_tags: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    let status = match &response.outcome {
        Ok(data) => {
            out.extend_from_slice(b"\"data\":");
            json::encode(data, format, response.txn_ts, &mut out);
            StatusCode::OK
        }
        Err(err) => {
            out.extend_from_slice(b"\"error\":");
            write_query_error(&mut out, err, format, response);
            query_error_status(err.code)
        }
    };
    out.extend_from_slice(b",\"summary\":");
    write_str(&mut out, &response.summary);
    out.extend_from_slice(b",\"txn_ts\":");
    write_u64(&mut out, response.txn_ts.micros());
    out.extend_from_slice(b",\"stats\":");
    write_stats(&mut out, &response.stats);
    write_query_tags(&mut out, query_tags);
    out.extend_from_slice(b",\"schema_version\":");
    write_u64(&mut out, response.schema_version.micros());
    out.push(b'}');
    (status, out)
}

fn write_query_error(
    out: &mut Vec<u8>,
    err: &QueryError,
    format: Format,
    response: &QueryResponse,
) {
    out.extend_from_slice(b"{\"code\":");
    write_str(out, err.code.as_str());
    out.extend_from_slice(b",\"message\":");
    if err.code == ErrorCode::Internal {
        tracing::error!(error = %err.message, "internal error while running a query");
        write_str(out, INTERNAL_MESSAGE);
    } else {
        write_str(out, &err.message);
    }
    if !err.constraint_failures.is_empty() {
        out.extend_from_slice(b",\"constraint_failures\":[");
        for (i, failure) in err.constraint_failures.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_constraint_failure(out, failure);
        }
        out.push(b']');
    }
    if err.code == ErrorCode::Abort {
        out.extend_from_slice(b",\"abort\":");
        match &err.abort {
            Some(value) => json::encode(value, format, response.txn_ts, out),
            // JS only builds an AbortError when the key exists, so it is always written.
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

fn write_constraint_failure(out: &mut Vec<u8>, failure: &ConstraintFailure) {
    out.extend_from_slice(b"{\"paths\":[");
    for (i, path) in failure.paths.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (j, elem) in path.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            match elem {
                PathElem::Field(name) => write_str(out, name),
                PathElem::Index(index) => out.extend_from_slice(index.to_string().as_bytes()),
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(b"],\"message\":");
    write_str(out, &failure.message);
    out.push(b'}');
}

/// Exactly Fauna's eight keys, in Fauna's order.
fn write_stats(out: &mut Vec<u8>, stats: &Stats) {
    let numbers = [
        ("compute_ops", stats.compute_ops),
        ("read_ops", stats.read_ops),
        ("write_ops", stats.write_ops),
        ("query_time_ms", stats.query_time_ms),
        ("contention_retries", u64::from(stats.contention_retries)),
        ("storage_bytes_read", stats.storage_bytes_read),
        ("storage_bytes_write", stats.storage_bytes_write),
    ];
    out.push(b'{');
    for (name, value) in numbers {
        write_str(out, name);
        out.push(b':');
        write_u64(out, value);
        out.push(b',');
    }
    out.extend_from_slice(b"\"rate_limits_hit\":[");
    for (i, limit) in stats.rate_limits_hit.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, limit);
    }
    out.extend_from_slice(b"]}");
}

fn write_query_tags(out: &mut Vec<u8>, query_tags: Option<&str>) {
    if let Some(tags) = query_tags {
        out.extend_from_slice(b",\"query_tags\":");
        write_str(out, tags);
    }
}

fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(value.to_string().as_bytes());
}

/// `text` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use testudo_model::{Output, Ts};

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    fn response(outcome: Result<Output, QueryError>) -> QueryResponse {
        QueryResponse {
            outcome,
            summary: "a\n\"b\"".to_owned(),
            txn_ts: Ts(1_718_340_750_415_639),
            stats: Stats {
                compute_ops: 1,
                rate_limits_hit: vec!["read"],
                ..Stats::default()
            },
            schema_version: Ts(1_718_034_700_060_000),
        }
    }

    #[test]
    fn strings_are_escaped_as_json() {
        let mut out = Vec::new();
        write_str(&mut out, "q\"\\\n\u{1}é");
        assert_eq!(text(out), r#""q\"\\\n\u0001é""#);
    }

    #[test]
    fn protocol_errors_have_only_error_and_echoed_tags() {
        let mut out = Vec::new();
        write_protocol_error(&mut out, &ProtocolError::unauthorized(), None);
        assert_eq!(
            text(out),
            r#"{"error":{"code":"unauthorized","message":"Access token required"}}"#
        );
        let mut out = Vec::new();
        write_protocol_error(&mut out, &ProtocolError::not_found(), Some("a=b"));
        assert_eq!(
            text(out),
            r#"{"error":{"code":"not_found","message":"Not found"},"query_tags":"a=b"}"#
        );
    }

    #[test]
    fn query_errors_keep_fauna_field_order_and_omit_empty_failures() {
        let err = QueryError {
            code: ErrorCode::DivideByZero,
            message: "Attempted integer division by zero.".to_owned(),
            abort: None,
            constraint_failures: vec![],
        };
        let (status, out) = write_query_response(&response(Err(err)), Format::Tagged, Some("k=v"));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            text(out),
            concat!(
                r#"{"error":{"code":"divide_by_zero","message":"Attempted integer division by zero."},"#,
                r#""summary":"a\n\"b\"","txn_ts":1718340750415639,"#,
                r#""stats":{"compute_ops":1,"read_ops":0,"write_ops":0,"query_time_ms":0,"#,
                r#""contention_retries":0,"storage_bytes_read":0,"storage_bytes_write":0,"#,
                r#""rate_limits_hit":["read"]},"query_tags":"k=v","schema_version":1718034700060000}"#
            )
        );
    }

    #[test]
    fn constraint_failures_list_paths_then_message() {
        let err = QueryError {
            code: ErrorCode::ConstraintFailure,
            message: "Failed unique constraint.".to_owned(),
            abort: None,
            constraint_failures: vec![ConstraintFailure {
                message: "The identifier `false` is reserved.".to_owned(),
                paths: vec![vec![PathElem::Field("name".to_owned()), PathElem::Index(0)]],
            }],
        };
        let (_, out) = write_query_response(&response(Err(err)), Format::Tagged, None);
        let out = text(out);
        assert!(
            out.contains(
                r#""constraint_failures":[{"paths":[["name",0]],"message":"The identifier `false` is reserved."}]"#
            ),
            "{out}"
        );
        assert!(!out.contains("query_tags"));
    }

    #[test]
    fn an_internal_error_hides_its_message() {
        let err = QueryError {
            code: ErrorCode::Internal,
            message: "disk /var/lib/x failed".to_owned(),
            abort: None,
            constraint_failures: vec![],
        };
        let (status, out) = write_query_response(&response(Err(err)), Format::Tagged, None);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let out = text(out);
        assert!(out.starts_with(
            r#"{"error":{"code":"internal_error","message":"Internal server error"}"#
        ));
        assert!(!out.contains("/var/lib"));
    }
}
