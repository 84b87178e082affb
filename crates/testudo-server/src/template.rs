//! The query template grammar of `POST /query/1`: reading `{"fql": [...]}` trees and
//! flattening them into the engine's [`Fragment`]s.
//!
//! A template is a JSON string (FQL source) or an object with exactly one key:
//! - `"fql": [frag, ...]`: a nested template, spliced inline (in parentheses when it sits
//!   directly inside an `array`/`object`, so it keeps its own lexical scope);
//! - `"value": V`: a value placeholder; `V` is *always* decoded as tagged JSON, whatever
//!   `X-Format` says;
//! - `"array": [frag, ...]`: an FQL array literal `[a, b]`;
//! - `"object": {k: frag, ...}`: an FQL object literal `{ 'k': frag }`, keys written as
//!   escaped single-quoted string literals; duplicate keys are refused.
//!
//! Strings directly inside an `array`/`object` are parenthesized too. An `array`/`object`
//! made only of values collapses into one value placeholder (as Fauna does), which keeps
//! `@`-prefixed keys intact and saves the engine from evaluating a literal.
//!
//! **Invariants:** no text fragment that leaves this file contains U+FFFF (the engine's
//! placeholder mark): a client-sent one is refused, and keys are escaped; recursion is
//! bounded by the JSON nesting limit enforced while reading the tree (serde_json's 128).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use testudo_engine::Fragment;
use testudo_model::Input;
use testudo_model::json::{self, Format};

use crate::error::ProtocolError;

/// The character the engine uses to mark where a value placeholder sits in the source text.
pub const PLACEHOLDER_MARK: char = '\u{FFFF}';

/// A query template as read from the request, before flattening.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Text(String),
    Value(serde_json::Value),
    Fql(Vec<Node>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

const EXPECTED: &str =
    "a string or an object with a single key 'fql', 'value', 'array' or 'object'";

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Node, E> {
        Ok(Node::Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Node, E> {
        Ok(Node::Text(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "expected {EXPECTED}, found an empty object"
            )));
        };
        let node = match key.as_str() {
            "fql" => Node::Fql(map.next_value()?),
            "value" => Node::Value(map.next_value()?),
            "array" => Node::Array(map.next_value()?),
            "object" => Node::Object(map.next_value::<ObjectFields>()?.0),
            other => {
                return Err(de::Error::custom(format!(
                    "unexpected key `{other}` in query template, expected {EXPECTED}"
                )));
            }
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "a query template fragment must be {EXPECTED}, found more than one key"
            )));
        }
        Ok(node)
    }
}

/// The fields of an `object` fragment, in order, refusing duplicates.
struct ObjectFields(Vec<(String, Node)>);

impl<'de> Deserialize<'de> for ObjectFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ObjectFields, D::Error> {
        deserializer.deserialize_map(ObjectFieldsVisitor)
    }
}

struct ObjectFieldsVisitor;

impl<'de> Visitor<'de> for ObjectFieldsVisitor {
    type Value = ObjectFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of query template fragments")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectFields, A::Error> {
        let mut seen = HashSet::new();
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("Duplicate object field `{key}`")));
            }
            fields.push((key, map.next_value::<Node>()?));
        }
        Ok(ObjectFields(fields))
    }
}

/// A template that is not a list of [`Fragment`]s: a bad value or a forbidden character.
/// Reported as 400 `invalid_query`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("Invalid value in query template: {0}")]
    Value(json::DecodeError),
    #[error("Invalid query text: invalid character U+FFFF")]
    ForbiddenCharacter,
}

impl From<TemplateError> for ProtocolError {
    fn from(err: TemplateError) -> ProtocolError {
        ProtocolError::invalid_query(err.to_string())
    }
}

/// Flattens a template into source text and values. Adjacent text is merged; empty text is
/// dropped.
pub fn flatten(node: &Node) -> Result<Vec<Fragment>, TemplateError> {
    let mut out = Fragments::default();
    match lower(node, false)? {
        Lowered::Pure(value) => out.value(value),
        Lowered::Code(fragments) => out.extend(fragments),
    }
    Ok(out.0)
}

/// A lowered node: a value with no code in it, or code (text and placeholders).
enum Lowered {
    Pure(Input),
    Code(Vec<Fragment>),
}

/// Builds a fragment list, merging adjacent text.
#[derive(Default)]
struct Fragments(Vec<Fragment>);

impl Fragments {
    fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Fragment::Text(last)) = self.0.last_mut() {
            last.push_str(text);
        } else {
            self.0.push(Fragment::Text(text.to_owned()));
        }
    }

    fn value(&mut self, value: Input) {
        self.0.push(Fragment::Value(value));
    }

    fn extend(&mut self, fragments: Vec<Fragment>) {
        for fragment in fragments {
            match fragment {
                Fragment::Text(text) => self.text(&text),
                Fragment::Value(value) => self.value(value),
            }
        }
    }

    fn push(&mut self, lowered: Lowered) {
        match lowered {
            Lowered::Pure(value) => self.value(value),
            Lowered::Code(fragments) => self.extend(fragments),
        }
    }
}

/// `in_container`: the node sits directly inside an `array` or `object` fragment.
fn lower(node: &Node, in_container: bool) -> Result<Lowered, TemplateError> {
    match node {
        Node::Text(text) => {
            if text.contains(PLACEHOLDER_MARK) {
                return Err(TemplateError::ForbiddenCharacter);
            }
            let mut out = Fragments::default();
            if in_container {
                out.text("(");
                out.text(text);
                out.text(")");
            } else {
                out.text(text);
            }
            Ok(Lowered::Code(out.0))
        }
        Node::Value(value) => json::decode(value, Format::Tagged)
            .map(Lowered::Pure)
            .map_err(TemplateError::Value),
        Node::Fql(items) => {
            let mut out = Fragments::default();
            if in_container {
                out.text("(");
            }
            for item in items {
                out.push(lower(item, false)?);
            }
            if in_container {
                out.text(")");
            }
            Ok(Lowered::Code(out.0))
        }
        Node::Array(items) => {
            let lowered = items
                .iter()
                .map(|item| lower(item, true))
                .collect::<Result<Vec<_>, _>>()?;
            if lowered.iter().all(|l| matches!(l, Lowered::Pure(_))) {
                let values = lowered.into_iter().filter_map(pure).collect();
                return Ok(Lowered::Pure(Input::Array(values)));
            }
            let mut out = Fragments::default();
            out.text("[");
            for (i, item) in lowered.into_iter().enumerate() {
                if i > 0 {
                    out.text(", ");
                }
                out.push(item);
            }
            out.text("]");
            Ok(Lowered::Code(out.0))
        }
        Node::Object(fields) => {
            let lowered = fields
                .iter()
                .map(|(key, item)| Ok((key, lower(item, true)?)))
                .collect::<Result<Vec<_>, TemplateError>>()?;
            if lowered.iter().all(|(_, l)| matches!(l, Lowered::Pure(_))) {
                let values = lowered
                    .into_iter()
                    .filter_map(|(key, l)| Some((key.clone(), pure(l)?)))
                    .collect();
                return Ok(Lowered::Pure(Input::Object(values)));
            }
            let mut out = Fragments::default();
            out.text("{ ");
            for (i, (key, item)) in lowered.into_iter().enumerate() {
                if i > 0 {
                    out.text(", ");
                }
                out.text(&string_literal(key));
                out.text(": ");
                out.push(item);
            }
            out.text(" }");
            Ok(Lowered::Code(out.0))
        }
    }
}

fn pure(lowered: Lowered) -> Option<Input> {
    match lowered {
        Lowered::Pure(value) => Some(value),
        Lowered::Code(_) => None,
    }
}

/// `text` as a single-quoted FQL string literal. Single-quoted strings never interpolate, so
/// only `\` and `'` must be escaped; control characters and U+FFFF are escaped too so that
/// the literal is plain printable text.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == PLACEHOLDER_MARK => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: &str) -> Node {
        serde_json::from_str(json).unwrap()
    }

    fn text(s: &str) -> Fragment {
        Fragment::Text(s.to_owned())
    }

    #[test]
    fn a_plain_string_is_one_text_fragment() {
        assert_eq!(
            flatten(&node(r#""\"taco\".length""#)),
            Ok(vec![text("\"taco\".length")])
        );
    }

    #[test]
    fn nested_fql_is_spliced_inline_without_parentheses() {
        let tree = node(r#"{"fql": ["let x = ", {"fql": ["1", "+ 2"]}, "", "; x"]}"#);
        assert_eq!(flatten(&tree), Ok(vec![text("let x = 1+ 2; x")]));
    }

    #[test]
    fn reading_a_template_refuses_unknown_keys_and_extra_keys() {
        for bad in [
            r#"{"fq": []}"#,
            r#"{"fql": [], "value": 1}"#,
            r#"{}"#,
            "17",
            r#"{"fql": "x"}"#,
        ] {
            assert!(serde_json::from_str::<Node>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_object_keys_are_refused() {
        let err = serde_json::from_str::<Node>(r#"{"object": {"a": "1", "a": "2"}}"#).unwrap_err();
        assert!(
            err.to_string().contains("Duplicate object field `a`"),
            "{err}"
        );
    }

    #[test]
    fn a_text_fragment_holding_the_placeholder_mark_is_refused() {
        let tree = Node::Fql(vec![Node::Text("1 + \u{FFFF}".to_owned())]);
        assert_eq!(flatten(&tree), Err(TemplateError::ForbiddenCharacter));
    }

    #[test]
    fn an_array_with_code_becomes_an_array_literal_with_parenthesized_items() {
        let tree = Node::Array(vec![
            Node::Text("1 + 1".to_owned()),
            Node::Fql(vec![Node::Text("let y = 2; y".to_owned())]),
        ]);
        assert_eq!(flatten(&tree), Ok(vec![text("[(1 + 1), (let y = 2; y)]")]));
    }

    #[test]
    fn an_object_with_code_becomes_an_object_literal_with_quoted_escaped_keys() {
        let tree = Node::Object(vec![
            ("it's".to_owned(), Node::Text("1".to_owned())),
            (
                "a\\b\n".to_owned(),
                Node::Fql(vec![Node::Text("2".to_owned())]),
            ),
        ]);
        assert_eq!(
            flatten(&tree),
            Ok(vec![text(r"{ 'it\'s': (1), 'a\\b\n': (2) }")])
        );
    }

    #[test]
    fn the_placeholder_mark_in_a_key_is_escaped() {
        assert_eq!(string_literal("a\u{FFFF}\u{1}"), r"'a\u{ffff}\u{1}'");
    }

    #[test]
    fn values_become_placeholders_decoded_as_tagged() {
        let tree = node(r#"{"fql": [{"value": {"@int": "17"}}, " + 3"]}"#);
        assert_eq!(
            flatten(&tree),
            Ok(vec![Fragment::Value(Input::Int(17)), text(" + 3")])
        );
    }

    #[test]
    fn containers_of_values_collapse_into_one_value_keeping_at_keys() {
        let tree = node(
            r#"{"object": {"@x": {"value": "a"}, "n": {"array": [{"value": {"@int": "1"}}]}}}"#,
        );
        let expected = Input::Object(vec![
            ("@x".to_owned(), Input::String("a".to_owned())),
            ("n".to_owned(), Input::Array(vec![Input::Int(1)])),
        ]);
        assert_eq!(flatten(&tree), Ok(vec![Fragment::Value(expected)]));
    }

    #[test]
    fn a_container_mixing_values_and_code_keeps_its_values_as_placeholders() {
        let tree = node(r#"{"array": [{"value": {"@int": "1"}}, "2 + 2"]}"#);
        assert_eq!(
            flatten(&tree),
            Ok(vec![
                text("["),
                Fragment::Value(Input::Int(1)),
                text(", (2 + 2)]")
            ])
        );
    }

    #[test]
    fn a_bad_tagged_value_is_a_template_error() {
        let tree = node(r#"{"fql": [{"value": {"@int": "seventeen"}}]}"#);
        assert!(matches!(flatten(&tree), Err(TemplateError::Value(_))));
        // Numbers must be tagged in a template, whatever the request's format.
        assert!(matches!(
            flatten(&node(r#"{"value": 17}"#)),
            Err(TemplateError::Value(_))
        ));
    }

    #[test]
    fn empty_containers_collapse_into_values() {
        assert_eq!(
            flatten(&node(r#"{"array": []}"#)),
            Ok(vec![Fragment::Value(Input::Array(vec![]))])
        );
        assert_eq!(
            flatten(&node(r#"{"object": {}}"#)),
            Ok(vec![Fragment::Value(Input::Object(vec![]))])
        );
    }
}
