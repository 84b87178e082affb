//! Query results over HTTP against the real binary: formats, arguments, errors and the
//! fields every response carries.

mod common;

use common::{DEV_AUTH, TestServer};

#[tokio::test]
async fn tagged_results_carry_data_summary_txn_ts_stats_and_schema_version() {
    let server = TestServer::dev();
    let r = server.query("\"taco\".length").await;
    assert_eq!(r.status, 200);
    let json = r.json();
    assert_eq!(json["data"], serde_json::json!({ "@int": "4" }));
    assert_eq!(json["summary"], "");
    assert!(json["txn_ts"].as_i64().unwrap() > 0);
    assert!(json["schema_version"].as_i64().unwrap() > 0);
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["data", "summary", "txn_ts", "stats", "schema_version"]
    );
    let stats: Vec<&str> = json["stats"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        stats,
        [
            "compute_ops",
            "read_ops",
            "write_ops",
            "query_time_ms",
            "contention_retries",
            "storage_bytes_read",
            "storage_bytes_write",
            "rate_limits_hit"
        ]
    );
}

#[tokio::test]
async fn documents_round_trip_through_create_read_update_delete() {
    let server = TestServer::dev();
    assert_eq!(
        server
            .query("Collection.create({ name: 'Books' })")
            .await
            .status,
        200
    );
    let created = server
        .query("Books.create({ title: 'Dune', year: 1965 })")
        .await
        .json();
    let doc = &created["data"]["@doc"];
    let id = doc["id"].as_str().unwrap().to_string();
    assert_eq!(doc["coll"], serde_json::json!({ "@mod": "Books" }));
    assert_eq!(doc["title"], "Dune");
    assert!(doc["ts"]["@time"].as_str().unwrap().ends_with('Z'));

    let read = server
        .query(&format!("Books.byId('{id}')!.year"))
        .await
        .json();
    assert_eq!(read["data"], serde_json::json!({ "@int": "1965" }));
    let updated = server
        .query(&format!(
            "Books.byId('{id}')!.update({{ year: 1966 }}).year"
        ))
        .await
        .json();
    assert_eq!(updated["data"], serde_json::json!({ "@int": "1966" }));
    server.query(&format!("Books.byId('{id}')!.delete()")).await;
    let gone = server.query(&format!("Books.byId('{id}')")).await.json();
    assert_eq!(gone["data"]["@ref"]["exists"], false);
    assert_eq!(gone["data"]["@ref"]["cause"], "deleted");
}

#[tokio::test]
async fn simple_format_and_arguments() {
    let server = TestServer::dev();
    let body = serde_json::json!({
        "query": "x + y.n",
        "arguments": { "x": 40, "y": { "n": 2 } }
    })
    .to_string();
    let r = server.post_query(body, &[DEV_AUTH]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"], 42);
}

#[tokio::test]
async fn template_values_are_values_not_code() {
    let server = TestServer::dev();
    let body = serde_json::json!({
        "query": { "fql": ["", { "value": "1 + 1" }, ".length"] }
    })
    .to_string();
    let r = server
        .post_query(body, &[DEV_AUTH, ("x-format", "tagged")])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["data"], serde_json::json!({ "@int": "5" }));
}

#[tokio::test]
async fn query_errors_map_to_fauna_codes_and_statuses() {
    let server = TestServer::dev();
    let cases = [
        ("abort('no')", 400, "abort"),
        ("1 / 0", 400, "divide_by_zero"),
        ("nope", 400, "unbound_variable"),
        ("{ bad: 'request']", 400, "invalid_query"),
    ];
    for (fql, status, code) in cases {
        let r = server.query(fql).await;
        assert_eq!((r.status, r.error_code().as_str()), (status, code), "{fql}");
        let json = r.json();
        assert!(
            json["summary"].as_str().unwrap().contains("*query*"),
            "{fql}: {json}"
        );
        assert!(json["txn_ts"].is_i64(), "{fql}");
    }
    let aborted = server.query("abort({ why: 'x' })").await.json();
    assert_eq!(aborted["error"]["abort"], serde_json::json!({ "why": "x" }));
}

#[tokio::test]
async fn a_one_millisecond_timeout_is_always_440_time_out() {
    let server = TestServer::dev();
    server.query("Collection.create({ name: 'T' })").await;
    let body = serde_json::json!({ "query": { "fql": ["T.create({})"] } }).to_string();
    let r = server
        .post_query(body, &[DEV_AUTH, ("x-query-timeout-ms", "1")])
        .await;
    assert_eq!(r.status, 440);
    assert_eq!(r.error_code(), "time_out");
    assert!(r.error_message().contains("aggressive deadline"));
    assert_eq!(
        server.query("T.all().count()").await.json()["data"],
        serde_json::json!({ "@int": "0" })
    );
}

#[tokio::test]
async fn txn_ts_strictly_increases_across_reads_and_writes() {
    let server = TestServer::dev();
    server.query("Collection.create({ name: 'C' })").await;
    let mut last = 0;
    for fql in ["1", "1", "C.create({})", "C.all().count()", "1"] {
        let ts = server.query(fql).await.json()["txn_ts"].as_i64().unwrap();
        assert!(ts > last, "{fql}: {ts} <= {last}");
        last = ts;
    }
}

#[tokio::test]
async fn pages_of_sixteen_continue_with_set_paginate() {
    let server = TestServer::dev();
    server.query("Collection.create({ name: 'P' })").await;
    server
        .query("Set.sequence(0, 20).forEach(n => P.create({ n: n }))")
        .await;
    let first = server.query("P.all().map(.n)").await.json();
    let page = &first["data"]["@set"];
    assert_eq!(page["data"].as_array().unwrap().len(), 16);
    let after = page["after"].as_str().unwrap();
    let body =
        serde_json::json!({ "query": { "fql": ["Set.paginate(", { "value": after }, ")"] } })
            .to_string();
    let next = server
        .post_query(body, &[DEV_AUTH, ("x-format", "tagged")])
        .await
        .json();
    assert_eq!(next["data"]["data"].as_array().unwrap().len(), 4);
    assert!(next["data"].get("after").is_none());
}
