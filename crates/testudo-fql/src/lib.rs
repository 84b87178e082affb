//! FQL v10: lexer, parser, syntax tree and diagnostics.
//!
//! Entry points: [`parse`] (a whole query, possibly a template with value placeholders),
//! [`parse_lambda`] (stored function bodies, check constraints, computed fields, role
//! predicates), [`parse_type`] (signatures). Errors carry spans and render like Fauna's
//! `summary` through [`diagnostics`]; [`sexpr`] prints trees compactly for tests and logs.
//!
//! **Invariants:** this crate does no I/O; parsing never panics, whatever the input (every
//! failure is a [`ParseError`] with a span inside the source, on character boundaries);
//! nesting deeper than [`MAX_NESTING`] is an error, not a stack overflow, and no tree it
//! returns is deeper than that (so recursive consumers of the tree are safe too).

pub mod ast;
pub mod diagnostics;
mod lexer;
mod parser;
pub mod sexpr;

pub use ast::*;

use diagnostics::{Diagnostic, Hint, Severity};

/// The deepest nesting the parser accepts: both how deeply constructs may nest in the
/// source (parentheses, brackets, braces, blocks, lambdas, prefix operators,
/// interpolations, ...) and how deep a returned tree may be (a chain `a.b.c` or an
/// operator chain `1 + 2 + 3` nests one level per link).
pub const MAX_NESTING: usize = 256;

/// The character that marks a value placeholder in a template query.
pub const PLACEHOLDER: char = lexer::PLACEHOLDER;

/// One parse error, shaped like Fauna's: a message, the span it points at, an optional
/// annotation printed after the carets, and secondary hints (each with its own span).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    pub span: Span,
    pub annotation: Option<String>,
    pub hints: Vec<Hint>,
}

impl ParseError {
    pub fn new(message: impl Into<String>, span: Span) -> ParseError {
        ParseError {
            message: message.into(),
            span,
            annotation: None,
            hints: Vec::new(),
        }
    }

    pub fn with_annotation(mut self, annotation: impl Into<String>) -> ParseError {
        self.annotation = Some(annotation.into());
        self
    }

    pub fn with_hint(mut self, hint: Hint) -> ParseError {
        self.hints.push(hint);
        self
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: self.message.clone(),
            span: Some(self.span),
            annotation: self.annotation.clone(),
            hints: self.hints.clone(),
        }
    }

    /// This error rendered against the query source, as in Fauna's `summary`.
    pub fn render(&self, src: &str) -> String {
        self.to_diagnostic().render(src)
    }
}

/// Every error a parse produced (never empty), in source order of discovery.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
pub struct ParseErrors(pub Vec<ParseError>);

impl ParseErrors {
    /// Fauna's top-level message: "The query failed 1 validation check".
    pub fn failure_message(&self) -> String {
        diagnostics::validation_failure_message(self.0.len())
    }

    /// Fauna's `summary`: every error rendered, separated by a blank line.
    pub fn summary(&self, src: &str) -> String {
        diagnostics::render_parse_errors(src, self)
    }
}

/// Parses a whole query (a block body without braces).
///
/// U+FFFF outside string literals and comments is a value placeholder: the n-th one
/// (from 0, in source order) becomes [`ExprKind::Placeholder`]`(n)`. More than
/// `placeholders` of them, or one inside a string or comment, is an error.
pub fn parse(src: &str, placeholders: usize) -> Result<Query, ParseErrors> {
    parser::parse_query(src, placeholders)
}

/// Parses the source of a stored function body, check constraint, computed field or role
/// predicate: it must be a single lambda (`x => ...`, `(a, b) => ...`, or a parenthesized
/// short lambda such as `(.x == 0)`), else "Body must be a lambda expression.".
pub fn parse_lambda(src: &str) -> Result<Expr, ParseErrors> {
    parser::parse_lambda(src, 0)
}

/// [`parse_lambda`] for code cut out of a query template: its U+FFFF placeholders (at most
/// `placeholders` of them) become [`ExprKind::Placeholder`] numbered from 0 within `src`.
/// Pagination cursors carry set functions this way.
pub fn parse_lambda_with_placeholders(src: &str, placeholders: usize) -> Result<Expr, ParseErrors> {
    parser::parse_lambda(src, placeholders)
}

/// Parses a type expression (`String`, `Array<Product>`, `{ a: Int, *: Any }`,
/// `(Int, String) => Boolean`, `Number?`, ...).
pub fn parse_type(src: &str) -> Result<TypeExpr, ParseErrors> {
    parser::parse_type(src)
}
