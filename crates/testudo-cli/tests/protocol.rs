//! The Fauna v10 wire protocol as drivers see it, against the real binary: endpoints, the 401
//! shape, Fauna's error codes for every bad input, HTTP/1.1 and h2c on one port.

mod common;

use common::{DEV_AUTH, Protocol, TestServer};
use http::Method;

const JSON: &str = "application/json;charset=utf-8";

#[tokio::test]
async fn ping_answers_get_with_a_body_and_head_without_one() {
    let server = TestServer::dev();
    let mut client = server.client(Protocol::Http1).await;

    let get = client.send(Method::GET, "/ping", &[], "").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.header("content-type"), Some(JSON));
    assert_eq!(
        get.json(),
        serde_json::json!({"resource": "Scope write is OK"})
    );

    let head = client
        .send(Method::HEAD, "/ping?scope=write", &[], "")
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn a_missing_or_wrong_secret_gets_fauna_401_without_summary() {
    let server = TestServer::dev();
    for auth in [
        None,
        Some("Bearer nah"),
        Some("Bearer "),
        Some("Basic bmFoOg=="),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let response = server.post_query(r#"{"query":"1"}"#, &headers).await;
        assert_eq!(response.status, 401, "{auth:?}");
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            response.json(),
            serde_json::json!({"error": {"code": "unauthorized", "message": "Access token required"}})
        );
    }
}

#[tokio::test]
async fn the_dev_secret_is_accepted_as_bearer_and_as_basic_user_name() {
    let server = TestServer::dev();
    for auth in ["Bearer secret", "Basic c2VjcmV0Og=="] {
        let response = server
            .post_query(r#"{"query":"1"}"#, &[("authorization", auth)])
            .await;
        assert_ne!(response.status, 401, "{auth}");
        assert_ne!(response.error_code(), "unauthorized");
    }
}

/// One bad request: what is sent and the error it must get.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    code: &'static str,
    message: &'static str,
}

fn case(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    code: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        body: body.into(),
        headers: vec![DEV_AUTH, ("x-format", "tagged")],
        status: 400,
        code,
        message,
    }
}

fn header_case(header: &'static str, value: &'static str, message: &'static str) -> Case {
    Case {
        name: header,
        body: br#"{"query":"1"}"#.to_vec(),
        headers: vec![DEV_AUTH, (header, value)],
        status: 400,
        code: "invalid_request",
        message,
    }
}

#[tokio::test]
async fn every_bad_input_gets_its_fauna_code_and_the_server_keeps_serving() {
    let server = TestServer::dev();
    let deep = format!(
        "{{\"query\": \"x\", \"arguments\": {{\"x\": {}1{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases = vec![
        case(
            "malformed JSON",
            "{\"query\": ",
            "invalid_request",
            "Invalid request body: ",
        ),
        case(
            "invalid UTF-8",
            b"{\"query\": \"\xff\xfe\"}".to_vec(),
            "invalid_request",
            "Invalid request body: ",
        ),
        case(
            "a JSON string, not an object",
            "\"{}\"",
            "invalid_request",
            "Invalid request body: ",
        ),
        case(
            "no query",
            "{\"arguments\": {}}",
            "invalid_request",
            "Invalid request body: missing field `query`",
        ),
        case(
            "a query of the wrong type",
            "{\"query\": 17}",
            "invalid_request",
            "Invalid request body: ",
        ),
        case(
            "missing body",
            "",
            "invalid_request",
            "No request body provided",
        ),
        case(
            "nesting 10 000 deep",
            deep,
            "invalid_request",
            "Invalid request body: JSON exceeds nesting limit",
        ),
        case(
            "unknown template key",
            r#"{"query": {"fql": [{"nope": "1"}]}}"#,
            "invalid_request",
            "Invalid request body: ",
        ),
        case(
            "two template keys",
            r#"{"query": {"fql": [], "value": 1}}"#,
            "invalid_request",
            "Invalid request body: ",
        ),
        case(
            "duplicate object key",
            r#"{"query": {"fql": [{"object": {"a": "1", "a": "2"}}]}}"#,
            "invalid_request",
            "Invalid request body: Duplicate object field `a`",
        ),
        case(
            "arguments that are not an object",
            r#"{"query": "1", "arguments": [1]}"#,
            "invalid_request",
            "Invalid request body: ",
        ),
        case(
            "the placeholder mark in query text",
            "{\"query\": {\"fql\": [\"1 + \u{FFFF}\"]}}",
            "invalid_query",
            "Invalid query text: invalid character",
        ),
        case(
            "an unknown tag in arguments",
            r#"{"query": "x", "arguments": {"x": {"@nope": "1"}}}"#,
            "invalid_request",
            "Invalid argument 'x': ",
        ),
        case(
            "an untagged number in tagged arguments",
            r#"{"query": "x", "arguments": {"x": 1}}"#,
            "invalid_request",
            "Invalid argument 'x': ",
        ),
        case(
            "a bad tagged value in the template",
            r#"{"query": {"fql": [{"value": {"@int": "seventeen"}}]}}"#,
            "invalid_query",
            "Invalid value in query template: ",
        ),
        header_case("x-format", "json", "Invalid header 'x-format': "),
        header_case(
            "x-typecheck",
            "yes",
            "Invalid header 'x-typecheck': Must be a boolean value.",
        ),
        header_case(
            "x-linearized",
            "1",
            "Invalid header 'x-linearized': Must be a boolean value.",
        ),
        header_case(
            "x-performance-hints",
            "on",
            "Invalid header 'x-performance-hints': Must be a boolean value.",
        ),
        header_case(
            "x-query-timeout-ms",
            "0",
            "Invalid header 'x-query-timeout-ms': Must be greater than 0.",
        ),
        header_case(
            "x-query-timeout-ms",
            "600001",
            "Invalid header 'x-query-timeout-ms': Must be less than or equal to 600000.",
        ),
        header_case(
            "x-query-timeout-ms",
            "5s",
            "Invalid header 'x-query-timeout-ms': Invalid number '5s'.",
        ),
        header_case(
            "x-max-contention-retries",
            "8",
            "Invalid header 'x-max-contention-retries': Must be between 0 and 7.",
        ),
        header_case(
            "x-last-txn-ts",
            "now",
            "Invalid header 'x-last-txn-ts': Invalid timestamp 'now'.",
        ),
        header_case(
            "x-query-tags",
            "a=b,c",
            "Invalid header 'x-query-tags': invalid tags",
        ),
    ];
    let mut client = server.client(Protocol::Http1).await;
    for case in cases {
        let response = server.post_query(case.body, &case.headers).await;
        assert_eq!(
            response.status, case.status,
            "{}: {:?}",
            case.name, response.body
        );
        assert_eq!(response.error_code(), case.code, "{}", case.name);
        assert!(
            response.error_message().starts_with(case.message),
            "{}: {:?}",
            case.name,
            response.error_message()
        );
        let body = response.json();
        assert!(
            body.get("summary").is_none(),
            "{}: protocol errors have no summary",
            case.name
        );
        assert!(response.header("traceparent").is_some(), "{}", case.name);
        // The same connection, and the server, still serve.
        assert_eq!(
            client.send(Method::GET, "/ping", &[], "").await.status,
            200,
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &["--dev", "--max-body-bytes", "1000"], &[]);
    let body = format!("{{\"query\": \"{}\"}}", "1".repeat(2000));
    let response = server.post_query(body, &[DEV_AUTH]).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.error_code(), "request_size_exceeded");
    let small = server.post_query(r#"{"query":"1"}"#, &[DEV_AUTH]).await;
    assert_ne!(small.status, 413);
}

#[tokio::test]
async fn protocol_errors_echo_valid_query_tags() {
    let server = TestServer::dev();
    let response = server
        .post_query("{", &[DEV_AUTH, ("x-query-tags", "project=teapot")])
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["query_tags"], "project=teapot");
    let untagged = server.post_query("{", &[DEV_AUTH]).await;
    assert!(untagged.json().get("query_tags").is_none());
}

#[tokio::test]
async fn unknown_paths_and_methods_get_fauna_json_errors() {
    let server = TestServer::dev();
    let mut client = server.client(Protocol::Http1).await;

    let missing = client.send(Method::GET, "/nothing/here", &[], "").await;
    assert_eq!(
        (missing.status, missing.error_code().as_str()),
        (404, "not_found")
    );

    let wrong_method = client.send(Method::GET, "/query/1", &[DEV_AUTH], "").await;
    assert_eq!(
        (wrong_method.status, wrong_method.error_code().as_str()),
        (405, "method_not_allowed")
    );
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_eq!(wrong_method.header("content-type"), Some(JSON));
}

#[tokio::test]
async fn feeds_and_streams_say_they_are_not_supported_yet() {
    let server = TestServer::dev();
    let mut client = server.client(Protocol::Http1).await;
    for path in ["/feed/1", "/stream/1"] {
        let response = client
            .send(Method::POST, path, &[DEV_AUTH], r#"{"token":"x"}"#)
            .await;
        assert_eq!(response.status, 400, "{path}");
        assert_eq!(response.error_code(), "invalid_request");
        assert!(response.error_message().contains("not supported yet"));
    }
}

#[tokio::test]
async fn a_traceparent_is_propagated_or_generated() {
    let server = TestServer::dev();
    let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let propagated = server
        .post_query("{", &[DEV_AUTH, ("traceparent", sent)])
        .await;
    assert_eq!(propagated.header("traceparent"), Some(sent));
    let generated = server.post_query("{", &[DEV_AUTH]).await;
    let fresh = generated.header("traceparent").unwrap();
    assert!(
        fresh.starts_with("00-") && fresh.len() == sent.len(),
        "{fresh}"
    );
}

#[tokio::test]
async fn h2c_prior_knowledge_works_on_the_same_port_as_http1() {
    let server = TestServer::dev();
    let mut h1 = server.client(Protocol::Http1).await;
    let mut h2 = server.client(Protocol::H2c).await;

    let ping1 = h1.send(Method::GET, "/ping", &[], "").await;
    let ping2 = h2.send(Method::GET, "/ping", &[], "").await;
    assert_eq!((ping1.status, ping2.status), (200, 200));
    assert_eq!(ping1.json(), ping2.json());

    // JS over Node http2 sends no content-type; it must not matter.
    let unauthorized = h2.post_query(r#"{"query":"1"}"#, &[]).await;
    assert_eq!(unauthorized.status, 401);
    let bad = h2.post_query("{", &[DEV_AUTH]).await;
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn a_hundred_concurrent_h2_streams_share_one_connection() {
    let server = TestServer::dev();
    let client = server.client(Protocol::H2c).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let mut handle = client.h2_handle();
            tokio::spawn(async move {
                let tags = format!("stream=s{i}");
                let headers = [
                    DEV_AUTH,
                    ("x-format", "tagged"),
                    ("x-query-tags", tags.as_str()),
                ];
                let response = handle
                    .post_query(r#"{"query":{"fql":["1"]}}"#, &headers)
                    .await;
                (tags, response)
            })
        })
        .collect();
    for task in tasks {
        let (tags, response) = task.await.unwrap();
        assert_ne!(response.status, 401);
        // Each stream got its own answer, not a neighbour's.
        assert_eq!(response.json()["query_tags"], tags.as_str());
    }
}
