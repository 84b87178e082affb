//! Query errors as the evaluator raises them: a Fauna code, a message, and the span of the
//! code that failed (filled in by the innermost call site that knows it).

use testudo_fql::Span;

use super::value::Value;
use crate::api::{ConstraintFailure, ErrorCode};

#[derive(Debug)]
pub struct EvalError {
    pub code: ErrorCode,
    pub message: String,
    pub span: Option<Span>,
    /// The value given to `abort()`.
    pub abort: Option<Value>,
    pub constraint_failures: Vec<ConstraintFailure>,
    /// Where `span` points when it is not the query text: the source name (`udf:Name`) and
    /// that source.
    pub origin: Option<(String, std::rc::Rc<str>)>,
}

/// Results in the evaluator. The error is boxed to keep the happy path's `Result` small.
pub type R<T> = Result<T, Box<EvalError>>;

pub fn err(code: ErrorCode, message: impl Into<String>) -> Box<EvalError> {
    Box::new(EvalError {
        code,
        message: message.into(),
        span: None,
        abort: None,
        constraint_failures: Vec::new(),
        origin: None,
    })
}

pub fn fail<T>(code: ErrorCode, message: impl Into<String>) -> R<T> {
    Err(err(code, message))
}

/// Attaches `span` to an error that does not know where it happened yet.
pub fn at<T>(result: R<T>, span: Span) -> R<T> {
    result.map_err(|mut e| {
        if e.span.is_none() {
            e.span = Some(span);
        }
        e
    })
}

impl From<testudo_storage::KvError> for Box<EvalError> {
    fn from(e: testudo_storage::KvError) -> Self {
        tracing::error!(error = %e, "storage error during a query");
        err(ErrorCode::Internal, "Internal storage error.")
    }
}

impl From<testudo_model::codec::CodecError> for Box<EvalError> {
    fn from(e: testudo_model::codec::CodecError) -> Self {
        tracing::error!(error = %e, "stored document does not decode");
        err(ErrorCode::Internal, "Stored data is corrupt.")
    }
}
