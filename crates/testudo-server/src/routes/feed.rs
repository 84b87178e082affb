//! `POST /feed/1`: event feeds. Not implemented yet; answers a clear 400 `invalid_request`
//! so drivers raise an `InvalidRequestError` instead of hanging or misparsing.
//!
//! **Invariants:** never pretends to return events.

use http::Response;

use crate::error::ProtocolError;
use crate::response::{ResponseBody, protocol_error};

pub fn handle(traceparent: &str) -> Response<ResponseBody> {
    let err = ProtocolError::invalid_request("Event feeds are not supported yet");
    protocol_error(&err, None, traceparent)
}
