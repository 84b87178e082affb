//! The public API as its users see it: tree shapes and spans the evaluator relies on,
//! placeholders, stored-lambda checks, and the error texts the server sends.

use testudo_fql::diagnostics::{self, Severity};
use testudo_fql::{Expr, ExprKind, Span, Stmt, parse, parse_lambda, parse_type, sexpr};

fn only_expr(src: &str) -> Expr {
    let q = parse(src, 0).unwrap_or_else(|e| panic!("{src:?}: {}", e.summary(src)));
    match q.body.into_iter().next() {
        Some(Stmt::Expr(e)) => e,
        other => panic!("expected one expression, got {other:?}"),
    }
}

fn text(src: &str, span: Span) -> &str {
    &src[span.start as usize..span.end as usize]
}

#[test]
fn nodes_span_their_source_text_including_parentheses_around_operands() {
    let src = "(a + b) * c.d(1)";
    let e = only_expr(src);
    assert_eq!(text(src, e.span), src);
    let ExprKind::Binary { lhs, rhs, .. } = &e.kind else {
        panic!("{e:?}")
    };
    // A parenthesized expression keeps its own span.
    assert_eq!(text(src, lhs.span), "a + b");
    assert_eq!(text(src, rhs.span), "c.d(1)");
    let ExprKind::Call { callee, .. } = &rhs.kind else {
        panic!("{rhs:?}")
    };
    let ExprKind::Field { name, .. } = &callee.kind else {
        panic!("{callee:?}")
    };
    assert_eq!(text(src, name.span), "d");
}

#[test]
fn a_short_lambda_receiver_is_an_empty_span_at_its_dot() {
    let src = "xs.map(.name)";
    let e = only_expr(src);
    let ExprKind::Call { args, .. } = &e.kind else {
        panic!("{e:?}")
    };
    let ExprKind::ShortLambda(body) = &args[0].kind else {
        panic!("{args:?}")
    };
    assert_eq!(text(src, body.span), ".name");
    let ExprKind::Field { recv, .. } = &body.kind else {
        panic!("{body:?}")
    };
    assert_eq!(recv.kind, ExprKind::ImplicitArg);
    assert_eq!(recv.span, Span::new(7, 7));
}

#[test]
fn let_statements_span_from_let_to_the_end_of_the_value() {
    let src = "let x: Int = (1)\nx";
    let q = parse(src, 0).expect("parses");
    let Stmt::Let { span, name, ty, .. } = &q.body[0] else {
        panic!()
    };
    assert_eq!(text(src, *span), "let x: Int = (1)");
    assert_eq!(text(src, name.span), "x");
    assert_eq!(ty.as_ref().map(|t| text(src, t.span)), Some("Int"));
}

#[test]
fn integer_literals_take_the_smallest_type_that_holds_them() {
    assert_eq!(only_expr("2147483647").kind, ExprKind::Int(i32::MAX));
    assert_eq!(only_expr("3000000000").kind, ExprKind::Long(3_000_000_000));
    assert_eq!(
        only_expr("-9223372036854775808").kind,
        ExprKind::Long(i64::MIN)
    );
    assert_eq!(
        only_expr("18446744073709551616").kind,
        ExprKind::Double(18446744073709551616.0)
    );
    assert_eq!(only_expr("1.0").kind, ExprKind::Double(1.0));
    assert_eq!(only_expr("1e3").kind, ExprKind::Double(1000.0));
}

#[test]
fn placeholders_are_numbered_in_source_order() {
    let src = "\u{FFFF}.map(x => [x, \u{FFFF}]) ?? \u{FFFF}";
    let q = parse(src, 3).expect("parses");
    assert_eq!(
        sexpr::query(&q),
        "(?? (call (. $0 map) (fn (x) [x $1])) $2)"
    );
}

#[test]
fn a_placeholder_beyond_the_template_values_is_an_invalid_character() {
    let src = "\u{FFFF} + \u{FFFF}";
    let errs = parse(src, 1).expect_err("one value only");
    assert_eq!(errs.0[0].message, "Invalid character");
    assert_eq!(errs.0[0].span, Span::new(6, 9));
    assert!(parse("'\u{FFFF}'", 1).is_err());
    assert!(parse("1 // \u{FFFF}", 1).is_err());
}

#[test]
fn invisible_and_control_characters_are_invalid_in_comments_and_strings() {
    for (src, at) in [
        ("1 // \u{200B} hidden\n2", 5),
        ("\"a bell \u{7}\"", 8),
        ("'\u{202E}'", 1),
    ] {
        let errs = parse(src, 0).expect_err(src);
        assert_eq!(errs.0[0].message, "Invalid character", "{src:?}");
        assert_eq!(errs.0[0].span.start as usize, at, "{src:?}");
    }
    // A tab or a raw newline is fine inside a string.
    assert!(parse("'a\tb\nc'", 0).is_ok());
}

#[test]
fn stored_bodies_must_be_a_single_lambda() {
    assert!(matches!(
        parse_lambda("x => x * 2").map(|e| e.kind),
        Ok(ExprKind::Lambda(_))
    ));
    assert!(matches!(
        parse_lambda("(.x == 0)").map(|e| e.kind),
        Ok(ExprKind::ShortLambda(_))
    ));
    for src in ["x * 2", "let f = x => x; f", "{ x => x }"] {
        let errs = parse_lambda(src).expect_err(src);
        assert_eq!(
            errs.0[0].message, "Body must be a lambda expression.",
            "{src}"
        );
        assert_eq!(
            errs.0[0].annotation.as_deref(),
            Some("Expression is not a lambda.")
        );
    }
    let errs = parse_lambda(".x == 0").expect_err("bare short lambda");
    assert_eq!(errs.0[0].message, "Invalid anonymous field access");
}

#[test]
fn stored_bodies_may_hold_placeholders_when_asked() {
    let src = "x => x + \u{FFFF}";
    let e = testudo_fql::parse_lambda_with_placeholders(src, 1).expect("parses");
    assert_eq!(sexpr::expr(&e), "(fn (x) (+ x $0))");
    assert!(parse_lambda(src).is_err());
}

#[test]
fn types_parse_into_their_tree() {
    let t = parse_type("{ a: Array<Int>, *: Any }?").expect("parses");
    assert_eq!(sexpr::type_expr(&t), "{ a: Array<Int>, *: Any }?");
}

#[test]
fn a_parse_error_renders_like_fauna_with_its_validation_message() {
    let src = "abc(";
    let errs = parse(src, 0).expect_err("unclosed call");
    assert_eq!(
        errs.failure_message(),
        "The query failed 1 validation check"
    );
    assert_eq!(
        errs.summary(src),
        "error: Expected `)` or expression\nat *query*:1:5\n  |\n1 | abc(\n  |     ^\n  |"
    );
}

#[test]
fn several_errors_are_all_reported_and_separated_by_a_blank_line() {
    let src = "{ a: 1, a: 2 }\n(x, x) => x";
    let errs = parse(src, 0).expect_err("two problems");
    assert_eq!(errs.0.len(), 2);
    assert_eq!(
        errs.failure_message(),
        "The query failed 2 validation checks"
    );
    let summary = errs.summary(src);
    assert_eq!(summary.matches("\n\nerror: ").count(), 1, "{summary}");
    assert!(summary.starts_with("error: Duplicate key\n"));
    assert_eq!(errs.to_string(), "Duplicate key; Duplicate lambda argument");
}

#[test]
fn render_draws_one_diagnostic_with_an_optional_hint() {
    let out = diagnostics::render(
        "x.foo",
        Span::new(2, 5),
        "The function `foo` does not exist on `Int`",
        Some("Use a method that exists"),
        Severity::Error,
    );
    assert_eq!(
        out,
        "error: The function `foo` does not exist on `Int`\nat *query*:1:3\n  |\n1 | x.foo\n  |   ^^^\n  |\nhint: Use a method that exists\n  |\n1 | x.foo\n  |   ^^^\n  |"
    );
    let warning = diagnostics::render("x", Span::new(0, 1), "w", None, Severity::Warning);
    assert!(warning.starts_with("warning: w\n"));
}
