//! The single mapping from errors to HTTP statuses and Fauna code strings.
//!
//! Two kinds of error leave the server: *query errors*, which the engine reports with an
//! [`ErrorCode`] (their code strings live in `ErrorCode::as_str`), and *protocol errors*, which
//! the server raises itself before or around a query (bad headers, bad body, bad secret, unknown
//! route). Both get their HTTP status here, in exhaustive `match`es without a catch-all arm, so
//! a new code cannot ship without a decision about its status.
//!
//! **Invariants:** Fauna's protocol code strings appear nowhere else in the server; the
//! statuses are the ones every official driver understands (Go returns *no error* for any
//! status it does not know, so inventing statuses is never an option).

use http::StatusCode;
use testudo_engine::ErrorCode;

/// Fauna's non-standard "client set an aggressive deadline" status.
fn time_out_status() -> StatusCode {
    // 440 lies in the valid 100..=999 range, so the fallback is never taken.
    StatusCode::from_u16(440).unwrap_or(StatusCode::REQUEST_TIMEOUT)
}

/// The HTTP status of a query error.
pub(crate) fn query_error_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidQuery
        | ErrorCode::InvalidRequest
        | ErrorCode::InvalidArgument
        | ErrorCode::Abort
        | ErrorCode::ConstraintFailure
        | ErrorCode::DocumentNotFound
        | ErrorCode::DocumentDeleted
        | ErrorCode::DocumentIdExists
        | ErrorCode::InvalidDocumentId
        | ErrorCode::NullValue
        | ErrorCode::InvalidNullAccess
        | ErrorCode::DivideByZero
        | ErrorCode::UnboundVariable
        | ErrorCode::InvalidFunctionInvocation
        | ErrorCode::TypeMismatch
        | ErrorCode::InvalidCursor
        | ErrorCode::IndexOutOfBounds
        | ErrorCode::InvalidBounds
        | ErrorCode::InvalidDate
        | ErrorCode::InvalidTime
        | ErrorCode::InvalidUnit
        | ErrorCode::InvalidRegex
        | ErrorCode::InvalidWrite
        | ErrorCode::InvalidSchema
        | ErrorCode::InvalidEffect
        | ErrorCode::InvalidId
        | ErrorCode::InvalidReceiver
        | ErrorCode::InvalidIndexInvocation
        | ErrorCode::InvalidComputedFieldAccess
        | ErrorCode::InvalidSecret
        // Fauna reports a denied read or write as a runtime error of the query, not as 403.
        | ErrorCode::PermissionDenied
        | ErrorCode::InvalidType
        | ErrorCode::ValueTooLarge
        | ErrorCode::StackOverflow
        | ErrorCode::DisabledFeature
        | ErrorCode::EvalError => StatusCode::BAD_REQUEST,
        ErrorCode::TimeOut => time_out_status(),
        ErrorCode::ContendedTransaction => StatusCode::CONFLICT,
        ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
    }
}

/// Errors the server raises itself, answered as `{"error":{"code","message"}}` with no
/// `summary`, `txn_ts`, `stats` or `schema_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolCode {
    /// Bad headers, body or arguments.
    InvalidRequest,
    /// A query template the server could not turn into source text and values.
    InvalidQuery,
    /// A missing or refused secret.
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    RequestSizeExceeded,
    /// A fault inside the server; the details go to the log, never to the client.
    Internal,
}

impl ProtocolCode {
    /// Fauna's code string.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolCode::InvalidRequest => "invalid_request",
            ProtocolCode::InvalidQuery => "invalid_query",
            ProtocolCode::Unauthorized => "unauthorized",
            ProtocolCode::NotFound => "not_found",
            ProtocolCode::MethodNotAllowed => "method_not_allowed",
            ProtocolCode::RequestSizeExceeded => "request_size_exceeded",
            ProtocolCode::Internal => "internal_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ProtocolCode::InvalidRequest | ProtocolCode::InvalidQuery => StatusCode::BAD_REQUEST,
            ProtocolCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ProtocolCode::NotFound => StatusCode::NOT_FOUND,
            ProtocolCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProtocolCode::RequestSizeExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            ProtocolCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A protocol error with the message the client sees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ProtocolError {
    pub code: ProtocolCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ProtocolCode, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(ProtocolCode::InvalidRequest, message)
    }

    /// A header whose value is refused, worded as Fauna words it.
    pub fn invalid_header(name: &str, reason: impl std::fmt::Display) -> ProtocolError {
        ProtocolError::invalid_request(format!("Invalid header '{name}': {reason}"))
    }

    pub fn invalid_body(reason: impl std::fmt::Display) -> ProtocolError {
        ProtocolError::invalid_request(format!("Invalid request body: {reason}"))
    }

    pub fn invalid_query(message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(ProtocolCode::InvalidQuery, message)
    }

    /// The one 401 every refused secret gets: it never says which check failed.
    pub fn unauthorized() -> ProtocolError {
        ProtocolError::new(ProtocolCode::Unauthorized, "Access token required")
    }

    pub fn not_found() -> ProtocolError {
        ProtocolError::new(ProtocolCode::NotFound, "Not found")
    }

    pub fn method_not_allowed() -> ProtocolError {
        ProtocolError::new(ProtocolCode::MethodNotAllowed, "Method not allowed")
    }

    pub fn request_size_exceeded(limit: usize) -> ProtocolError {
        ProtocolError::new(
            ProtocolCode::RequestSizeExceeded,
            format!("Request body exceeds the maximum size of {limit} bytes"),
        )
    }

    pub fn internal() -> ProtocolError {
        ProtocolError::new(ProtocolCode::Internal, "Internal server error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_errors_use_the_statuses_drivers_know() {
        assert_eq!(
            query_error_status(ErrorCode::Abort),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            query_error_status(ErrorCode::PermissionDenied),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(query_error_status(ErrorCode::TimeOut).as_u16(), 440);
        assert_eq!(
            query_error_status(ErrorCode::ContendedTransaction),
            StatusCode::CONFLICT
        );
        assert_eq!(
            query_error_status(ErrorCode::LimitExceeded),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            query_error_status(ErrorCode::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn protocol_errors_carry_fauna_codes_and_statuses() {
        let cases = [
            (ProtocolCode::InvalidRequest, "invalid_request", 400),
            (ProtocolCode::InvalidQuery, "invalid_query", 400),
            (ProtocolCode::Unauthorized, "unauthorized", 401),
            (ProtocolCode::NotFound, "not_found", 404),
            (ProtocolCode::MethodNotAllowed, "method_not_allowed", 405),
            (
                ProtocolCode::RequestSizeExceeded,
                "request_size_exceeded",
                413,
            ),
            (ProtocolCode::Internal, "internal_error", 500),
        ];
        for (code, text, status) in cases {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.status().as_u16(), status);
        }
    }
}
