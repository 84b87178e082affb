//! The JSON body of `POST /query/1`: `{"query": <template>, "arguments": {...}}`.
//!
//! Unknown keys are ignored (Fauna's own examples carry an unused `last_txn`). `arguments` is
//! optional (`null` counts as absent) and is decoded with the request's `X-Format`.
//!
//! Nesting is bounded by serde_json's recursion limit: **128** nested arrays/objects in the
//! whole body, counted across the template, its values and the arguments. Deeper JSON is a
//! 400 "Invalid request body: JSON exceeds nesting limit", never a stack overflow.
//!
//! **Invariants:** parsing never panics on any byte string; argument values never reach the
//! logs; every failure is a [`ProtocolError`] with Fauna's code and wording.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use testudo_engine::Fragment;
use testudo_model::Input;
use testudo_model::json::{self, Format};

use crate::error::ProtocolError;
use crate::template::{Node, flatten};

/// A parsed body, before its values are decoded.
#[derive(Debug)]
struct RawBody {
    query: Node,
    arguments: Vec<(String, serde_json::Value)>,
}

/// A body ready for the engine.
#[derive(Debug, PartialEq)]
pub struct QueryBody {
    pub fragments: Vec<Fragment>,
    pub arguments: Vec<(String, Input)>,
}

/// Parses and decodes a non-empty body.
pub fn parse_query_body(bytes: &[u8], format: Format) -> Result<QueryBody, ProtocolError> {
    let raw: RawBody = serde_json::from_slice(bytes).map_err(body_error)?;
    let fragments = flatten(&raw.query)?;
    let arguments = raw
        .arguments
        .into_iter()
        .map(|(name, value)| match json::decode(&value, format) {
            Ok(input) => Ok((name, input)),
            Err(err) => Err(ProtocolError::invalid_request(format!(
                "Invalid argument '{name}': {}",
                err.message
            ))),
        })
        .collect::<Result<_, _>>()?;
    Ok(QueryBody {
        fragments,
        arguments,
    })
}

fn body_error(err: serde_json::Error) -> ProtocolError {
    // serde_json reports its depth limit only through the message text.
    if err.to_string().starts_with("recursion limit exceeded") {
        ProtocolError::invalid_body("JSON exceeds nesting limit")
    } else {
        ProtocolError::invalid_body(err)
    }
}

impl<'de> Deserialize<'de> for RawBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawBody, D::Error> {
        deserializer.deserialize_map(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = RawBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a `query` field")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawBody, A::Error> {
        let mut query = None;
        let mut arguments = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "query" => {
                    if query.is_some() {
                        return Err(de::Error::duplicate_field("query"));
                    }
                    query = Some(map.next_value::<Node>()?);
                }
                "arguments" => {
                    if arguments.is_some() {
                        return Err(de::Error::duplicate_field("arguments"));
                    }
                    let args = map.next_value::<Option<Arguments>>()?;
                    arguments = Some(args.map(|a| a.0).unwrap_or_default());
                }
                _ => {
                    // Read as a value, not skipped: skipping would bypass the nesting limit.
                    map.next_value::<serde_json::Value>()?;
                }
            }
        }
        Ok(RawBody {
            query: query.ok_or_else(|| de::Error::missing_field("query"))?,
            arguments: arguments.unwrap_or_default(),
        })
    }
}

/// The `arguments` object, in order, refusing duplicate names.
struct Arguments(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Arguments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Arguments, D::Error> {
        deserializer.deserialize_map(ArgumentsVisitor)
    }
}

struct ArgumentsVisitor;

impl<'de> Visitor<'de> for ArgumentsVisitor {
    type Value = Arguments;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of arguments")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Arguments, A::Error> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom(format!("duplicate argument `{name}`")));
            }
            out.push((name, map.next_value()?));
        }
        Ok(Arguments(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProtocolCode;

    fn err(body: &[u8]) -> ProtocolError {
        parse_query_body(body, Format::Tagged).unwrap_err()
    }

    #[test]
    fn a_string_query_with_unknown_keys_parses() {
        let body = parse_query_body(
            br#"{"last_txn": 1, "query": "1 + 1", "arguments": null}"#,
            Format::Simple,
        )
        .unwrap();
        assert_eq!(body.fragments, vec![Fragment::Text("1 + 1".to_owned())]);
        assert!(body.arguments.is_empty());
    }

    #[test]
    fn malformed_bodies_are_invalid_requests() {
        for bad in [
            &b"{"[..],
            b"\"{}\"",
            b"[]",
            b"{}",
            b"{\"query\": 17}",
            b"{\"query\": \"1\", \"arguments\": []}",
            b"{\"query\": \"1\", \"query\": \"2\"}",
            b"{\"query\": \"1\", \"arguments\": {\"a\": null, \"a\": null}}",
            b"{\"query\": \"\xff\"}",
        ] {
            let e = err(bad);
            assert_eq!(e.code, ProtocolCode::InvalidRequest, "{bad:?}");
            assert!(
                e.message.starts_with("Invalid request body: "),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn arguments_are_decoded_in_order_with_the_request_format() {
        let body = br#"{"query": "x + y", "arguments": {"x": 1, "y": {"@int": "2"}}}"#;
        let simple = parse_query_body(body, Format::Simple).unwrap();
        assert_eq!(simple.arguments[0].0, "x");
        assert_eq!(simple.arguments[1].0, "y");
        let tagged = parse_query_body(
            br#"{"query": "y", "arguments": {"y": {"@int": "2"}}}"#,
            Format::Tagged,
        )
        .unwrap();
        assert_eq!(tagged.arguments, vec![("y".to_owned(), Input::Int(2))]);
    }

    #[test]
    fn a_bad_argument_is_named_in_an_invalid_request() {
        let e = err(br#"{"query": "x", "arguments": {"x": {"@nope": "1"}}}"#);
        assert_eq!(e.code, ProtocolCode::InvalidRequest);
        assert!(
            e.message.starts_with("Invalid argument 'x': "),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_bad_template_value_is_an_invalid_query() {
        let e = err(br#"{"query": {"fql": [{"value": {"@time": "noon"}}]}}"#);
        assert_eq!(e.code, ProtocolCode::InvalidQuery);
    }

    #[test]
    fn a_missing_query_is_named() {
        assert!(
            err(b"{\"arguments\": {}}")
                .message
                .contains("missing field `query`")
        );
    }

    #[test]
    fn deep_nesting_is_refused_with_fauna_wording() {
        let depth = 10_000;
        let body = format!(
            "{{\"query\": \"1\", \"x\": {}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(
            err(body.as_bytes()).message,
            "Invalid request body: JSON exceeds nesting limit"
        );
        let deep_template = format!(
            "{{\"query\": {}\"1\"{}}}",
            "{\"fql\": [".repeat(depth),
            "]}".repeat(depth)
        );
        assert_eq!(
            err(deep_template.as_bytes()).message,
            "Invalid request body: JSON exceeds nesting limit"
        );
    }

    #[test]
    fn a_forbidden_character_in_the_query_is_an_invalid_query() {
        let e = err("{\"query\": \"1 \u{FFFF}\"}".as_bytes());
        assert_eq!(e.code, ProtocolCode::InvalidQuery);
        assert!(e.message.contains("invalid character"));
    }
}
