//! Specifications of the wire formats, one behaviour per test, with the values the drivers'
//! integration tests round-trip (`fauna-protocol.md` §7.2).

#![allow(clippy::approx_constant)]

use serde_json::{Value, json};

use super::*;
use crate::input::RefKey;
use crate::{Date, DocId, DocOutput, Input, NullCause, Output, RefTarget, Time, Ts};

const TXN: Ts = Ts(1_718_340_750_415_639);

fn enc(value: &Output, format: Format) -> String {
    let mut out = Vec::new();
    encode(value, format, TXN, &mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("invalid JSON {text}: {e}"));
    text
}

fn tagged(value: &Output) -> String {
    enc(value, Format::Tagged)
}

fn simple(value: &Output) -> String {
    enc(value, Format::Simple)
}

fn decorated(value: &Output) -> String {
    let text = enc(value, Format::Decorated);
    serde_json::from_str::<String>(&text).expect("a JSON string")
}

fn time(s: &str) -> Time {
    Time::parse(s).expect("valid time")
}

fn obj(fields: &[(&str, Output)]) -> Output {
    Output::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn doc(id: u64, fields: &[(&str, Output)], ts: Option<Ts>) -> Output {
    Output::Doc(Box::new(DocOutput {
        target: RefTarget::Id {
            coll: "Product".into(),
            id,
        },
        ts,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }))
}

fn named_doc() -> Output {
    Output::Doc(Box::new(DocOutput {
        target: RefTarget::Named {
            coll: "Collection".into(),
            name: "DocTest".into(),
        },
        ts: Some(Ts(1_700_000_000_000_000)),
        fields: vec![("history_days".into(), Output::Int(0))],
    }))
}

fn dec(value: Value) -> Result<Input, String> {
    decode(&value, Format::Tagged).map_err(|e| e.message)
}

// ----- tagged output -----

#[test]
fn numbers_are_tagged_by_width_with_java_double_text() {
    assert_eq!(tagged(&Output::Int(4)), r#"{"@int":"4"}"#);
    assert_eq!(tagged(&Output::Long(1)), r#"{"@long":"1"}"#);
    assert_eq!(
        tagged(&Output::Long(i64::MIN)),
        r#"{"@long":"-9223372036854775808"}"#
    );
    assert_eq!(tagged(&Output::Double(5123.0)), r#"{"@double":"5123.0"}"#);
    assert_eq!(
        tagged(&Output::Double(0.1 + 0.2)),
        r#"{"@double":"0.30000000000000004"}"#
    );
    assert_eq!(tagged(&Output::Double(1e21)), r#"{"@double":"1.0E21"}"#);
    assert_eq!(tagged(&Output::Double(f64::NAN)), r#"{"@double":"NaN"}"#);
    assert_eq!(
        tagged(&Output::Double(f64::NEG_INFINITY)),
        r#"{"@double":"-Infinity"}"#
    );
}

#[test]
fn scalars_without_tags_are_plain_json() {
    assert_eq!(tagged(&Output::Null), "null");
    assert_eq!(tagged(&Output::Bool(true)), "true");
    assert_eq!(tagged(&Output::String("taco".into())), r#""taco""#);
    assert_eq!(tagged(&Output::Id(412_345)), r#""412345""#);
    assert_eq!(
        tagged(&Output::Function("[function all()]".into())),
        r#""[function all()]""#
    );
}

#[test]
fn strings_escape_quotes_backslashes_and_control_characters_only() {
    let s = "a\"b\\c\nd\te\u{1}\u{8}\u{c}\r\u{1f}é🙂/";
    let text = tagged(&Output::String(s.into()));
    assert_eq!(text, "\"a\\\"b\\\\c\\nd\\te\\u0001\\b\\f\\r\\u001fé🙂/\"");
    assert_eq!(
        serde_json::from_str::<String>(&text).ok().as_deref(),
        Some(s)
    );
}

#[test]
fn time_date_bytes_and_modules_are_tagged() {
    let t = time("2024-10-09T14:49:17.620Z");
    assert_eq!(
        tagged(&Output::Time(t)),
        r#"{"@time":"2024-10-09T14:49:17.620Z"}"#
    );
    assert_eq!(
        tagged(&Output::TxnTime),
        r#"{"@time":"2024-06-14T04:52:30.415639Z"}"#
    );
    let date = Date::parse("2099-11-03").expect("date");
    assert_eq!(tagged(&Output::Date(date)), r#"{"@date":"2099-11-03"}"#);
    let emoji = "This is a test string 🚀 with UTF8 😊".as_bytes().to_vec();
    let text = tagged(&Output::Bytes(emoji));
    assert_eq!(
        text,
        r#"{"@bytes":"VGhpcyBpcyBhIHRlc3Qgc3RyaW5nIPCfmoAgd2l0aCBVVEY4IPCfmIo="}"#
    );
    assert_eq!(tagged(&Output::Bytes(vec![])), r#"{"@bytes":""}"#);
    assert_eq!(
        tagged(&Output::Module("Product".into())),
        r#"{"@mod":"Product"}"#
    );
}

#[test]
fn objects_with_an_at_key_are_wrapped_at_every_level() {
    let inner = obj(&[("@inner", Output::Int(1))]);
    let value = obj(&[
        ("plain", Output::Array(vec![inner.clone()])),
        ("@tagged", Output::Null),
    ]);
    assert_eq!(
        tagged(&value),
        r#"{"@object":{"plain":[{"@object":{"@inner":{"@int":"1"}}}],"@tagged":null}}"#
    );
    assert_eq!(tagged(&obj(&[("a@", Output::Null)])), r#"{"a@":null}"#);
    assert_eq!(tagged(&obj(&[])), "{}");
}

#[test]
fn documents_carry_identity_and_ts_then_their_fields() {
    let value = doc(
        7,
        &[("name", Output::String("cup".into()))],
        Some(Ts(1_000_000)),
    );
    assert_eq!(
        tagged(&value),
        r#"{"@doc":{"id":"7","coll":{"@mod":"Product"},"ts":{"@time":"1970-01-01T00:00:01Z"},"name":"cup"}}"#
    );
    assert_eq!(
        tagged(&named_doc()),
        r#"{"@doc":{"name":"DocTest","coll":{"@mod":"Collection"},"ts":{"@time":"2023-11-14T22:13:20Z"},"history_days":{"@int":"0"}}}"#
    );
}

#[test]
fn a_document_written_by_this_query_uses_the_transaction_time() {
    assert_eq!(
        tagged(&doc(1, &[], None)),
        r#"{"@doc":{"id":"1","coll":{"@mod":"Product"},"ts":{"@time":"2024-06-14T04:52:30.415639Z"}}}"#
    );
}

#[test]
fn a_document_with_an_at_field_is_wrapped_inside_the_doc_tag() {
    let value = doc(1, &[("@weird", Output::Bool(true))], Some(Ts(0)));
    assert_eq!(
        tagged(&value),
        r#"{"@doc":{"@object":{"id":"1","coll":{"@mod":"Product"},"ts":{"@time":"1970-01-01T00:00:00Z"},"@weird":true}}}"#
    );
}

#[test]
fn references_and_missing_documents() {
    let by_id = RefTarget::Id {
        coll: "DocTest".into(),
        id: 101,
    };
    let by_name = RefTarget::Named {
        coll: "Collection".into(),
        name: "DocTest".into(),
    };
    assert_eq!(
        tagged(&Output::Ref(by_id.clone())),
        r#"{"@ref":{"id":"101","coll":{"@mod":"DocTest"}}}"#
    );
    assert_eq!(
        tagged(&Output::Ref(by_name.clone())),
        r#"{"@ref":{"name":"DocTest","coll":{"@mod":"Collection"}}}"#
    );
    for (cause, text) in [
        (NullCause::NotFound, "not found"),
        (NullCause::Deleted, "deleted"),
        (NullCause::PermissionDenied, "permission denied"),
        (NullCause::CollectionDeleted, "collection deleted"),
    ] {
        let missing = Output::NullDoc {
            target: by_id.clone(),
            cause,
        };
        assert_eq!(
            tagged(&missing),
            format!(
                r#"{{"@ref":{{"id":"101","coll":{{"@mod":"DocTest"}},"exists":false,"cause":"{text}"}}}}"#
            )
        );
        assert_eq!(simple(&missing), "null");
    }
    let missing_named = Output::NullDoc {
        target: by_name,
        cause: NullCause::NotFound,
    };
    assert_eq!(
        tagged(&missing_named),
        r#"{"@ref":{"name":"DocTest","coll":{"@mod":"Collection"},"exists":false,"cause":"not found"}}"#
    );
}

#[test]
fn sets_streams_and_cursors() {
    let page = Output::SetPage {
        data: vec![Output::Int(1)],
        after: Some("abc".into()),
    };
    assert_eq!(
        tagged(&page),
        r#"{"@set":{"data":[{"@int":"1"}],"after":"abc"}}"#
    );
    let last = Output::SetPage {
        data: vec![],
        after: None,
    };
    assert_eq!(tagged(&last), r#"{"@set":{"data":[]}}"#);
    assert_eq!(
        tagged(&Output::SetCursor("cur".into())),
        r#"{"@set":"cur"}"#
    );
    assert_eq!(
        tagged(&Output::Stream("tok".into())),
        r#"{"@stream":"tok"}"#
    );
    assert_eq!(simple(&page), r#"{"data":[1],"after":"abc"}"#);
    assert_eq!(simple(&last), r#"{"data":[]}"#);
    assert_eq!(simple(&Output::SetCursor("cur".into())), r#""cur""#);
    assert_eq!(simple(&Output::Stream("tok".into())), r#""tok""#);
}

// ----- simple output -----

#[test]
fn simple_format_is_the_same_walk_without_tags() {
    assert_eq!(simple(&Output::Int(4)), "4");
    assert_eq!(simple(&Output::Long(3_000_000_000)), "3000000000");
    assert_eq!(simple(&Output::Double(5123.0)), "5123.0");
    assert_eq!(simple(&Output::Double(1e-5)), "1.0E-5");
    assert_eq!(simple(&Output::Double(f64::INFINITY)), r#""Infinity""#);
    assert_eq!(simple(&Output::Double(f64::NAN)), r#""NaN""#);
    assert_eq!(
        simple(&Output::Time(Time::EPOCH)),
        r#""1970-01-01T00:00:00Z""#
    );
    assert_eq!(simple(&Output::TxnTime), r#""2024-06-14T04:52:30.415639Z""#);
    assert_eq!(simple(&Output::Bytes(vec![1, 2])), r#""AQI=""#);
    assert_eq!(simple(&Output::Module("Math".into())), r#""Math""#);
    assert_eq!(simple(&obj(&[("@a", Output::Int(1))])), r#"{"@a":1}"#);
    assert_eq!(
        simple(&doc(7, &[("n", Output::Int(1))], Some(Ts(0)))),
        r#"{"id":"7","coll":"Product","ts":"1970-01-01T00:00:00Z","n":1}"#
    );
    assert_eq!(
        simple(&Output::Ref(RefTarget::Id {
            coll: "C".into(),
            id: 1
        })),
        r#"{"id":"1","coll":"C"}"#
    );
}

// ----- decorated output -----

#[test]
fn decorated_scalars_are_fql_literals() {
    assert_eq!(decorated(&Output::Int(1)), "1");
    assert_eq!(decorated(&Output::Double(2.0)), "2.0");
    assert_eq!(decorated(&Output::Double(f64::INFINITY)), "Math.Infinity");
    assert_eq!(
        decorated(&Output::Double(f64::NEG_INFINITY)),
        "-Math.Infinity"
    );
    assert_eq!(decorated(&Output::Double(f64::NAN)), "Math.NaN");
    assert_eq!(
        decorated(&Output::String("say \"#{hi}\"".into())),
        r##""say \"\#{hi}\"""##
    );
    assert_eq!(
        decorated(&Output::Time(Time::EPOCH)),
        r#"Time("1970-01-01T00:00:00Z")"#
    );
    assert_eq!(
        decorated(&Output::Date(Date::from_days(0))),
        r#"Date("1970-01-01")"#
    );
    assert_eq!(decorated(&Output::Bytes(vec![1, 2])), r#"Bytes("AQI=")"#);
    assert_eq!(decorated(&Output::Id(5)), r#""5""#);
    assert_eq!(decorated(&Output::Null), "null");
    assert_eq!(decorated(&Output::Module("Math".into())), "Math");
    assert_eq!(
        decorated(&Output::Function("[function all()]".into())),
        r#""[function all]""#
    );
    assert_eq!(
        decorated(&Output::Function("[function <lambda>]".into())),
        r#""[function <lambda>]""#
    );
}

#[test]
fn decorated_containers_put_one_element_per_indented_line() {
    let value = obj(&[
        ("a", Output::Int(1)),
        (
            "b c",
            Output::Array(vec![Output::Int(1), obj(&[("x", Output::Array(vec![]))])]),
        ),
        ("e", obj(&[])),
    ]);
    assert_eq!(
        decorated(&value),
        "{\n  a: 1,\n  \"b c\": [\n    1,\n    {\n      x: []\n    }\n  ],\n  e: {}\n}"
    );
    assert_eq!(decorated(&Output::Array(vec![])), "[]");
}

#[test]
fn decorated_documents_and_references() {
    assert_eq!(
        decorated(&doc(
            7,
            &[("name", Output::String("cup".into()))],
            Some(Ts(0))
        )),
        "{\n  id: \"7\",\n  coll: Product,\n  ts: Time(\"1970-01-01T00:00:00Z\"),\n  name: \"cup\"\n}"
    );
    assert_eq!(
        decorated(&Output::Ref(RefTarget::Id {
            coll: "Product".into(),
            id: 7
        })),
        r#"Product("7")"#
    );
    assert_eq!(
        decorated(&Output::NullDoc {
            target: RefTarget::Named {
                coll: "Collection".into(),
                name: "X".into()
            },
            cause: NullCause::NotFound
        }),
        r#"Collection.byName("X") /* not found */"#
    );
    assert_eq!(
        decorated(&Output::SetPage {
            data: vec![Output::Int(1)],
            after: Some("c".into())
        }),
        "{\n  data: [\n    1\n  ],\n  after: \"c\"\n}"
    );
}

#[test]
fn decorated_multiline_strings_become_heredocs() {
    assert_eq!(
        decorated(&Output::String("a\nb\n".into())),
        "<<-END\n  a\n  b\nEND"
    );
    assert_eq!(
        decorated(&obj(&[("k", Output::String("END\r\n\nx".into()))])),
        "{\n  k: <<-END0\n    END\n    \n    x\n  END0\n}"
    );
}

// ----- tagged input -----

#[test]
fn tagged_input_decodes_every_accepted_tag() {
    assert_eq!(dec(json!({"@int": "17"})), Ok(Input::Int(17)));
    assert_eq!(
        dec(json!({"@long": "9223372036854775807"})),
        Ok(Input::Long(i64::MAX))
    );
    assert_eq!(dec(json!({"@double": "6.28"})), Ok(Input::Double(6.28)));
    assert_eq!(dec(json!({"@double": "1.0E21"})), Ok(Input::Double(1e21)));
    assert_eq!(
        dec(json!({"@time": "2023-03-20T00:00:00+02:00"})),
        Ok(Input::Time(time("2023-03-19T22:00:00Z")))
    );
    assert_eq!(
        dec(json!({"@date": "2099-11-03"})),
        Ok(Input::Date(Date::parse("2099-11-03").expect("d")))
    );
    assert_eq!(dec(json!({"@bytes": "AQI="})), Ok(Input::Bytes(vec![1, 2])));
    assert_eq!(dec(json!({"@bytes": "AQI"})), Ok(Input::Bytes(vec![1, 2])));
    assert_eq!(
        dec(json!({"@mod": "Product"})),
        Ok(Input::Module("Product".into()))
    );
    assert_eq!(
        dec(json!({"@object": {"@int": "x", "a": {"@int": "1"}}})),
        Ok(Input::Object(vec![
            ("@int".into(), Input::String("x".into())),
            ("a".into(), Input::Int(1))
        ]))
    );
    assert_eq!(
        dec(json!({"a": [null, true, "s"]})),
        Ok(Input::Object(vec![(
            "a".into(),
            Input::Array(vec![
                Input::Null,
                Input::Bool(true),
                Input::String("s".into())
            ])
        )]))
    );
}

#[test]
fn tagged_input_rejects_with_the_cores_messages() {
    let cases = [
        (json!(1), "numbers must be tagged"),
        (json!([{"x": 1.5}]), "numbers must be tagged"),
        (
            json!({"@int": "1", "b": 2}),
            "too many keys in tagged value",
        ),
        (
            json!({"a": 1, "@int": "1"}),
            "too many keys in tagged value",
        ),
        (json!({"@set": "cursor"}), "invalid tag '@set'"),
        (json!({"@stream": "token"}), "invalid tag '@stream'"),
        (json!({"@uuid": "x"}), "invalid tag '@uuid'"),
        (json!({"@int": "2147483648"}), "invalid integer"),
        (json!({"@int": 1}), "@int requires a string value"),
        (json!({"@long": "9223372036854775808"}), "invalid long"),
        (json!({"@double": "one"}), "invalid double"),
        (json!({"@time": "2020-01-01 01:01:01"}), "invalid time"),
        (json!({"@date": "01-01-2020"}), "invalid date"),
        (json!({"@bytes": "not base64!"}), "invalid bytes"),
        (json!({"@bytes": "AQ="}), "invalid bytes"),
        (json!({"@bytes": "AQ==AQ=="}), "invalid bytes"),
        (json!({"@bytes": "AQ-_"}), "invalid bytes"),
        (json!({"@object": []}), "@object requires an object value"),
        (json!({"@mod": null}), "@mod requires a string value"),
    ];
    for (value, message) in cases {
        assert_eq!(dec(value.clone()), Err(message.to_string()), "{value}");
    }
}

#[test]
fn references_decode_by_id_or_by_name() {
    let by_id = |coll: &str, id: u64| {
        Ok(Input::Ref {
            coll: coll.into(),
            key: RefKey::Id(DocId(id)),
        })
    };
    assert_eq!(
        dec(json!({"@ref": {"id": "101", "coll": {"@mod": "DocTest"}}})),
        by_id("DocTest", 101)
    );
    assert_eq!(
        dec(
            json!({"@doc": {"id": "7", "coll": {"@mod": "P"}, "ts": {"@time": "2024-01-01T00:00:00Z"}, "x": [1.5]}})
        ),
        Err("numbers must be tagged".into()),
        "the other fields of a document are still decoded"
    );
    assert_eq!(
        dec(json!({"@doc": {"@object": {"id": "7", "coll": {"@mod": "P"}, "@w": true}}})),
        by_id("P", 7)
    );
    assert_eq!(
        dec(json!({"@ref": {"name": "DocTest", "coll": {"@mod": "Collection"}}})),
        Ok(Input::Ref {
            coll: "Collection".into(),
            key: RefKey::Name("DocTest".into())
        })
    );
    assert_eq!(dec(json!({"@ref": "DocTest:12"})), by_id("DocTest", 12));
    assert_eq!(
        dec(json!({"@ref": "Function:double"})),
        Ok(Input::Ref {
            coll: "Function".into(),
            key: RefKey::Name("double".into())
        })
    );
    let errors = [
        (
            json!({"@ref": {"id": "1"}}),
            "@ref field 'coll' is required",
        ),
        (
            json!({"@ref": {"id": "1", "coll": "P"}}),
            "@ref field 'coll' requires a module value",
        ),
        (
            json!({"@doc": {"coll": {"@mod": "P"}}}),
            "@doc field 'id' is required",
        ),
        (
            json!({"@ref": {"id": {"@int": "1"}, "coll": {"@mod": "P"}}}),
            "@ref field 'id' requires a string value",
        ),
        (
            json!({"@ref": {"id": "x", "coll": {"@mod": "P"}}}),
            "@ref field 'id' must be an integer",
        ),
        (
            json!({"@ref": {"id": "-1", "coll": {"@mod": "P"}}}),
            "@ref field 'id' must be an integer",
        ),
        (
            json!({"@ref": {"coll": {"@mod": "Role"}}}),
            "@ref field 'name' is required",
        ),
        (
            json!({"@ref": {"name": true, "coll": {"@mod": "Role"}}}),
            "@ref field 'name' requires a string value",
        ),
        (
            json!({"@ref": "P:1:2"}),
            "doc id must be in the format <coll>:<id>",
        ),
        (json!({"@ref": "P:x"}), "invalid document id 'x'"),
        (json!({"@ref": true}), "@ref requires an object value"),
    ];
    for (value, message) in errors {
        assert_eq!(dec(value.clone()), Err(message.to_string()), "{value}");
    }
}

#[test]
fn decorated_requests_decode_as_tagged() {
    assert_eq!(
        decode(&json!({"@int": "1"}), Format::Decorated),
        Ok(Input::Int(1))
    );
}

#[test]
fn simple_input_takes_plain_numbers_by_width() {
    let d = |v: Value| decode(&v, Format::Simple);
    assert_eq!(d(json!(1)), Ok(Input::Int(1)));
    assert_eq!(d(json!(-2147483648)), Ok(Input::Int(i32::MIN)));
    assert_eq!(d(json!(3000000000u64)), Ok(Input::Long(3_000_000_000)));
    assert_eq!(d(json!(u64::MAX)), Ok(Input::Double(u64::MAX as f64)));
    assert_eq!(d(json!(1.0)), Ok(Input::Double(1.0)));
    assert_eq!(
        d(json!({"@int": "1"})),
        Ok(Input::Object(vec![(
            "@int".into(),
            Input::String("1".into())
        )])),
        "tags mean nothing in simple input"
    );
}

#[test]
fn nesting_beyond_the_limit_is_an_error() {
    let mut deep = json!(null);
    for _ in 0..=MAX_DECODE_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    assert_eq!(dec(deep.clone()), Err("value is nested too deeply".into()));
    assert!(decode(&deep, Format::Simple).is_err());
    let mut ok = json!(null);
    for _ in 0..MAX_DECODE_DEPTH {
        ok = Value::Array(vec![ok]);
    }
    assert!(dec(ok).is_ok());
}

// ----- round trips with the drivers' values -----

/// What a driver sends back for a value it received: the decoded form of the encoding.
fn as_input(value: &Output) -> Input {
    match value {
        Output::Null => Input::Null,
        Output::Bool(b) => Input::Bool(*b),
        Output::Int(n) => Input::Int(*n),
        Output::Long(n) => Input::Long(*n),
        Output::Double(x) => Input::Double(*x),
        Output::String(s) => Input::String(s.clone()),
        Output::Bytes(b) => Input::Bytes(b.clone()),
        Output::Time(t) => Input::Time(*t),
        Output::Date(d) => Input::Date(*d),
        Output::Array(items) => Input::Array(items.iter().map(as_input).collect()),
        Output::Object(fields) => Input::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), as_input(v)))
                .collect(),
        ),
        Output::Module(m) => Input::Module(m.clone()),
        Output::Doc(d) => match &d.target {
            RefTarget::Id { coll, id } => Input::Ref {
                coll: coll.clone(),
                key: RefKey::Id(DocId(*id)),
            },
            RefTarget::Named { coll, name } => Input::Ref {
                coll: coll.clone(),
                key: RefKey::Name(name.clone()),
            },
        },
        other => panic!("not a round-trip value: {other:?}"),
    }
}

#[test]
fn driver_values_round_trip_through_tagged_json() {
    let values = [
        Output::Int(17),
        Output::Int(i32::MIN),
        Output::Long(1 << 61),
        Output::Long(2_147_483_648),
        Output::Long(i64::MAX),
        Output::Double(0.1 + 0.1 + 0.1),
        Output::Double(2.0 * 3.14),
        Output::Double(-0.0),
        Output::Double(5e-324),
        Output::Double(f64::MAX),
        Output::Bool(false),
        Output::Null,
        Output::String("Hello, 🌍! \"quoted\" \\ \u{0}".into()),
        obj(&[
            ("@tagged", Output::String("x".into())),
            ("n", Output::Int(1)),
        ]),
        Output::Array(vec![Output::Int(1), Output::Array(vec![]), obj(&[])]),
        Output::Time(time("2024-10-09T14:49:17.620Z")),
        Output::Time(time("2023-03-20T00:00:00.000001Z")),
        // Java cannot parse years beyond ±999,999,999, so Instant's own extremes do not
        // round-trip (in Fauna either); the FQL range does.
        Output::Time(Time::FQL_MAX),
        Output::Time(Time::FQL_MIN),
        Output::Date(Date::parse("2099-11-03").expect("date")),
        Output::Bytes("This is a test string 🚀 with UTF8 😊".as_bytes().to_vec()),
        Output::Module("DocTest".into()),
        doc(
            12,
            &[
                ("@f", Output::Int(1)),
                (
                    "ref",
                    Output::Ref(RefTarget::Id {
                        coll: "D".into(),
                        id: 3,
                    }),
                ),
            ],
            Some(Ts(5)),
        ),
        named_doc(),
    ];
    for value in values {
        let text = tagged(&value);
        let parsed: Value = serde_json::from_str(&text).expect("JSON");
        let back = decode(&parsed, Format::Tagged).unwrap_or_else(|e| panic!("{text}: {e}"));
        match (&back, as_input(&value)) {
            (Input::Double(a), Input::Double(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{text}"),
            (back, expected) => assert_eq!(back, &expected, "{text}"),
        }
    }
}

#[test]
fn times_from_drivers_come_back_byte_identical_or_as_the_same_instant() {
    // JS sends Date.toISOString() and compares the returned text.
    for text in [
        "2024-10-09T14:49:17.620Z",
        "2023-03-20T00:00:00Z",
        "1999-12-31T23:59:59.999999999Z",
    ] {
        let Ok(Input::Time(t)) = dec(json!({"@time": text})) else {
            panic!("{text}")
        };
        assert_eq!(tagged(&Output::Time(t)), format!(r#"{{"@time":"{text}"}}"#));
    }
    // Python sends aware datetimes with any offset; Go sends Z with up to 6 digits.
    let same = time("2023-03-20T10:00:00Z");
    for text in [
        "2023-03-20T12:00:00+02:00",
        "2023-03-20T10:00:00+00:00",
        "2023-03-20T05:30:00-04:30",
        "2023-03-20T10:00:00.000000Z",
    ] {
        assert_eq!(dec(json!({"@time": text})), Ok(Input::Time(same)), "{text}");
    }
}
