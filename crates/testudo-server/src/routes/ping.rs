//! `GET`/`HEAD /ping`: liveness. Test scripts run `curl --head --fail`, so HEAD must be 2xx.
//!
//! **Invariants:** needs no secret, touches no storage, HEAD has no body.

use http::{Response, StatusCode};

use crate::response::{ResponseBody, empty_response, json_response};

const BODY: &[u8] = br#"{"resource":"Scope write is OK"}"#;

pub fn handle(head: bool, traceparent: &str) -> Response<ResponseBody> {
    if head {
        empty_response(StatusCode::OK, traceparent)
    } else {
        json_response(StatusCode::OK, BODY.to_vec(), traceparent)
    }
}
