//! The request headers of `POST /query/1`: parsing, validation and defaults.
//!
//! Header names are case-insensitive (drivers spell them differently); values are validated
//! exactly as Fauna validates them, with Fauna's 400 `invalid_request` messages
//! ("Invalid header 'x-query-timeout-ms': Must be greater than 0."). Informational headers
//! (`X-Driver`, `X-Driver-Env`, `Content-Type`, `Accept-Encoding`) are ignored on purpose.
//!
//! **Invariants:** every value that reaches the engine is in range; an absent header takes
//! Fauna's default; nothing here logs a header value (the secret lives in `Authorization`).

use std::time::Duration;

use http::HeaderMap;
use http::header::HeaderValue;
use testudo_model::Ts;
use testudo_model::json::Format;

use crate::error::ProtocolError;

/// The timeout of a query whose request has no `X-Query-Timeout-Ms` (Fauna's 120 s).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest `X-Query-Timeout-Ms` accepted, in milliseconds (Fauna's 10 minutes).
pub const MAX_QUERY_TIMEOUT_MS: u64 = 600_000;
/// The largest `X-Max-Contention-Retries` accepted.
pub const MAX_CONTENTION_RETRIES: u32 = 7;
/// How many times a conflicting write is re-run when the request does not say.
pub const DEFAULT_CONTENTION_RETRIES: u32 = 3;

/// Query-tag limits (Fauna's): at most this many pairs, ...
const MAX_TAG_PAIRS: usize = 25;
/// ... keys of at most this many bytes, ...
const MAX_TAG_KEY_BYTES: usize = 40;
/// ... values of at most this many bytes, ...
const MAX_TAG_VALUE_BYTES: usize = 80;
/// ... and a header of at most this many bytes.
const MAX_TAGS_BYTES: usize = 3000;

/// The validated headers of one query request.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryHeaders {
    pub format: Format,
    pub typecheck: Option<bool>,
    pub linearized: bool,
    /// `X-Performance-Hints`: validated; the engine has no use for it yet.
    pub performance_hints: bool,
    pub timeout: Duration,
    pub max_contention_retries: u32,
    pub last_txn_ts: Option<Ts>,
}

/// Validates every query header. The first invalid one is reported.
pub fn parse_query_headers(headers: &HeaderMap) -> Result<QueryHeaders, ProtocolError> {
    Ok(QueryHeaders {
        format: parse_header(headers, "x-format", parse_format)?.unwrap_or_default(),
        typecheck: parse_header(headers, "x-typecheck", parse_bool)?,
        linearized: parse_header(headers, "x-linearized", parse_bool)?.unwrap_or(false),
        performance_hints: parse_header(headers, "x-performance-hints", parse_bool)?
            .unwrap_or(false),
        timeout: parse_header(headers, "x-query-timeout-ms", parse_timeout)?
            .unwrap_or(DEFAULT_QUERY_TIMEOUT),
        max_contention_retries: parse_header(headers, "x-max-contention-retries", parse_retries)?
            .unwrap_or(DEFAULT_CONTENTION_RETRIES),
        last_txn_ts: parse_header(headers, "x-last-txn-ts", parse_last_txn_ts)?.flatten(),
    })
}

/// The `X-Query-Tags` header, validated and kept verbatim for the echo in the response.
/// `None` when absent or empty (an empty echo would crash the Python driver).
pub fn parse_query_tags(headers: &HeaderMap) -> Result<Option<String>, ProtocolError> {
    parse_header(headers, "x-query-tags", |text| {
        if text.is_empty() {
            Ok(None)
        } else if valid_tags(text) {
            Ok(Some(text.to_owned()))
        } else {
            Err("invalid tags".to_owned())
        }
    })
    .map(Option::flatten)
}

/// Reads header `name` (lowercase) and parses it; a present header that does not parse is a
/// 400 naming the header.
fn parse_header<T>(
    headers: &HeaderMap,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, ProtocolError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = header_text(value);
    parse(&text)
        .map(Some)
        .map_err(|reason| ProtocolError::invalid_header(name, reason))
}

/// A header value as text; bytes that are not UTF-8 show as U+FFFD and then fail validation.
fn header_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

fn parse_format(text: &str) -> Result<Format, String> {
    Format::parse(text).ok_or_else(|| {
        format!(
            "Unsupported format '{text}'. Valid formats are 'simple', 'tagged' and 'decorated'."
        )
    })
}

/// `true`/`false` in any case: the .NET driver sends `True`.
fn parse_bool(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("Must be a boolean value.".to_owned())
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let millis: i64 = text
        .parse()
        .map_err(|_| format!("Invalid number '{text}'."))?;
    if millis <= 0 {
        return Err("Must be greater than 0.".to_owned());
    }
    let millis = millis.unsigned_abs();
    if millis > MAX_QUERY_TIMEOUT_MS {
        return Err(format!(
            "Must be less than or equal to {MAX_QUERY_TIMEOUT_MS}."
        ));
    }
    Ok(Duration::from_millis(millis))
}

fn parse_retries(text: &str) -> Result<u32, String> {
    let retries: i32 = text
        .parse()
        .map_err(|_| format!("Invalid number '{text}'."))?;
    match u32::try_from(retries) {
        Ok(retries) if retries <= MAX_CONTENTION_RETRIES => Ok(retries),
        _ => Err(format!("Must be between 0 and {MAX_CONTENTION_RETRIES}.")),
    }
}

/// Any integer is accepted, as in Fauna; a value at or before the epoch asks for nothing.
fn parse_last_txn_ts(text: &str) -> Result<Option<Ts>, String> {
    let micros: i64 = text
        .parse()
        .map_err(|_| format!("Invalid timestamp '{text}'."))?;
    Ok(u64::try_from(micros).ok().filter(|&m| m > 0).map(Ts))
}

/// `k=v,k2=v2` with keys and values of `[A-Za-z0-9_]`, within Fauna's size limits.
fn valid_tags(text: &str) -> bool {
    if text.len() > MAX_TAGS_BYTES {
        return false;
    }
    let word = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let mut pairs = 0;
    for pair in text.split(',') {
        pairs += 1;
        let Some((key, value)) = pair.split_once('=') else {
            return false;
        };
        if pairs > MAX_TAG_PAIRS
            || !word(key, MAX_TAG_KEY_BYTES)
            || !word(value, MAX_TAG_VALUE_BYTES)
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn message(pairs: &[(&'static str, &str)]) -> String {
        parse_query_headers(&headers(pairs)).unwrap_err().message
    }

    #[test]
    fn absent_headers_take_fauna_defaults() {
        let parsed = parse_query_headers(&HeaderMap::new()).unwrap();
        assert_eq!(parsed.format, Format::Simple);
        assert_eq!(parsed.typecheck, None);
        assert!(!parsed.linearized);
        assert_eq!(parsed.timeout, Duration::from_secs(120));
        assert_eq!(parsed.max_contention_retries, DEFAULT_CONTENTION_RETRIES);
        assert_eq!(parsed.last_txn_ts, None);
    }

    #[test]
    fn header_names_are_case_insensitive_and_booleans_too() {
        let parsed = parse_query_headers(&headers(&[
            ("X-Format", "tagged"),
            ("X-Typecheck", "True"),
            ("x-linearized", "FALSE"),
            ("X-Query-Timeout-Ms", "5000"),
            ("X-Max-Contention-Retries", "7"),
            ("X-Last-Txn-Ts", "1718340750415639"),
        ]))
        .unwrap();
        assert_eq!(parsed.format, Format::Tagged);
        assert_eq!(parsed.typecheck, Some(true));
        assert!(!parsed.linearized);
        assert_eq!(parsed.timeout, Duration::from_millis(5000));
        assert_eq!(parsed.max_contention_retries, 7);
        assert_eq!(parsed.last_txn_ts, Some(Ts(1_718_340_750_415_639)));
    }

    #[test]
    fn bad_values_name_the_header_in_fauna_words() {
        assert_eq!(
            message(&[("x-query-timeout-ms", "0")]),
            "Invalid header 'x-query-timeout-ms': Must be greater than 0."
        );
        assert_eq!(
            message(&[("x-query-timeout-ms", "600001")]),
            "Invalid header 'x-query-timeout-ms': Must be less than or equal to 600000."
        );
        assert_eq!(
            message(&[("x-query-timeout-ms", "soon")]),
            "Invalid header 'x-query-timeout-ms': Invalid number 'soon'."
        );
        assert_eq!(
            message(&[("x-max-contention-retries", "8")]),
            "Invalid header 'x-max-contention-retries': Must be between 0 and 7."
        );
        assert_eq!(
            message(&[("x-max-contention-retries", "-1")]),
            "Invalid header 'x-max-contention-retries': Must be between 0 and 7."
        );
        assert_eq!(
            message(&[("x-last-txn-ts", "yesterday")]),
            "Invalid header 'x-last-txn-ts': Invalid timestamp 'yesterday'."
        );
        assert_eq!(
            message(&[("x-typecheck", "yes")]),
            "Invalid header 'x-typecheck': Must be a boolean value."
        );
        assert!(message(&[("x-format", "json")]).starts_with("Invalid header 'x-format': "));
    }

    #[test]
    fn the_longest_timeout_is_accepted() {
        let parsed = parse_query_headers(&headers(&[("x-query-timeout-ms", "600000")])).unwrap();
        assert_eq!(parsed.timeout, Duration::from_secs(600));
    }

    #[test]
    fn query_tags_are_echoed_verbatim_when_valid() {
        let tags = parse_query_tags(&headers(&[("X-Query-Tags", "project=teapot,env=ci_1")]));
        assert_eq!(tags, Ok(Some("project=teapot,env=ci_1".to_owned())));
        assert_eq!(parse_query_tags(&HeaderMap::new()), Ok(None));
        assert_eq!(
            parse_query_tags(&headers(&[("x-query-tags", "")])),
            Ok(None)
        );
    }

    #[test]
    fn invalid_query_tags_are_refused() {
        let long_key = format!("{}=v", "k".repeat(41));
        let long_value = format!("k={}", "v".repeat(81));
        let many = (0..26)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        for bad in [
            "a",
            "a=",
            "=b",
            "a=b,",
            "a-b=c",
            "a=b=c",
            "a=b c",
            &long_key,
            &long_value,
            &many,
        ] {
            let err = parse_query_tags(&headers(&[("x-query-tags", bad)])).unwrap_err();
            assert_eq!(
                err.message, "Invalid header 'x-query-tags': invalid tags",
                "{bad}"
            );
        }
    }
}
