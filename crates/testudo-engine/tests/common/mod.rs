//! Test support shared by the engine's integration tests: an engine on an in-memory store
//! whose root secret is [`ROOT`], and queries run as any bearer secret.

#![allow(dead_code)] // each test binary uses a different part of this module
#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use testudo_auth::SecretHash;
use testudo_engine::{
    Engine, EngineConfig, EngineOptions, Fragment, QueryRequest, QueryResponse, Scope,
};
use testudo_model::DbId;
use testudo_model::json::{Format, encode};
use testudo_storage::LocalKv;

pub const ROOT: &str = "root-secret";

pub fn engine() -> Engine {
    engine_with(EngineOptions::default())
}

/// [`engine`] with non-default options.
pub fn engine_with(options: EngineOptions) -> Engine {
    let kv = Arc::new(LocalKv::in_memory().unwrap());
    let config = EngineConfig {
        root_secret: SecretHash::of(ROOT),
    };
    Engine::open_with(kv, config, options).unwrap()
}

/// A request for `fql` answered in `format`, with a minute to run.
pub fn request(fql: &str, format: Format) -> QueryRequest {
    QueryRequest {
        fragments: vec![Fragment::Text(fql.to_string())],
        arguments: Vec::new(),
        format,
        typecheck: None,
        linearized: false,
        deadline: Instant::now() + Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        max_contention_retries: 5,
        last_txn_ts: None,
        client: Some("192.0.2.7".parse().unwrap()),
    }
}

/// Runs `fql` as `bearer`: `Ok(data as simple JSON)`, or `Err(error code)`, or
/// `Err("unauthorized")` when the bearer does not authenticate.
pub fn q(engine: &Engine, bearer: &str, fql: &str) -> Result<Json, String> {
    let scope = engine
        .authenticate(bearer)
        .map_err(|_| "unauthorized".to_string())?;
    let response = engine.query(&scope, request(fql, Format::Simple));
    match response.outcome {
        Ok(out) => {
            let mut buf = Vec::new();
            encode(&out, Format::Simple, response.txn_ts, &mut buf);
            Ok(serde_json::from_slice(&buf).unwrap())
        }
        Err(e) => Err(e.code.as_str().to_string()),
    }
}

/// Runs `fql` as the root database's admin, without a secret, answering in tagged format.
pub fn run_admin(engine: &Engine, fql: &str) -> QueryResponse {
    engine.query(&Scope::admin(DbId::ROOT), request(fql, Format::Tagged))
}

/// [`run_admin`] expecting success: the tagged JSON text of the answer.
pub fn ok_tagged(engine: &Engine, fql: &str) -> String {
    let r = run_admin(engine, fql);
    match r.outcome {
        Ok(out) => {
            let mut buf = Vec::new();
            encode(&out, Format::Tagged, r.txn_ts, &mut buf);
            String::from_utf8(buf).unwrap()
        }
        Err(e) => panic!("{fql}: {} {}", e.code.as_str(), e.message),
    }
}

/// Runs `fql` and expects success.
pub fn ok(engine: &Engine, bearer: &str, fql: &str) -> Json {
    q(engine, bearer, fql).unwrap_or_else(|e| panic!("{fql}: {e}"))
}

/// Runs `fql` and expects the error `code`.
pub fn fails(engine: &Engine, bearer: &str, fql: &str, code: &str) {
    match q(engine, bearer, fql) {
        Err(e) => assert_eq!(e, code, "{fql}"),
        Ok(v) => panic!("{fql}: expected {code}, got {v}"),
    }
}

pub fn secret_of(v: &Json) -> String {
    v["secret"].as_str().unwrap().to_string()
}

/// The root secret scoped to the child database `db` as admin.
pub fn scoped(db: &str) -> String {
    format!("{ROOT}:{db}:admin")
}
