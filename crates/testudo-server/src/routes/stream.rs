//! `POST /stream/1`: event streams. Not implemented yet; answers a clear 400
//! `invalid_request` so drivers raise an `InvalidRequestError` instead of waiting for events.
//!
//! **Invariants:** never opens a long-lived response.

use http::Response;

use crate::error::ProtocolError;
use crate::response::{ResponseBody, protocol_error};

pub fn handle(traceparent: &str) -> Response<ResponseBody> {
    let err = ProtocolError::invalid_request("Event streams are not supported yet");
    protocol_error(&err, None, traceparent)
}
