//! Hostile nesting: 100 000 openers of every kind, parsed on a thread with the default
//! 2 MiB stack, must each end in a clean "nested too deeply" error, never a stack
//! overflow; trees just under the limit must parse, and dropping them must be safe.

use testudo_fql::{MAX_NESTING, parse, parse_lambda, parse_type};

const N: usize = 100_000;

/// Runs `f` on a fresh thread with a 2 MiB stack (what a server worker gets).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow or panic")
}

fn assert_too_deep(src: String) {
    let (ok, message) = on_small_stack(move || match parse(&src, 0) {
        Ok(_) => (true, String::new()),
        Err(e) => (false, e.0[0].message.clone()),
    });
    assert!(!ok, "a query nested {N} deep must not parse");
    assert!(
        message.contains("nested too deeply"),
        "unexpected error: {message}"
    );
}

#[test]
fn a_hundred_thousand_opening_parentheses_are_too_deep() {
    assert_too_deep("(".repeat(N));
}

#[test]
fn a_hundred_thousand_opening_brackets_are_too_deep() {
    assert_too_deep("[".repeat(N));
}

#[test]
fn a_hundred_thousand_braces_are_too_deep() {
    assert_too_deep("{".repeat(N));
    assert_too_deep("{ a: ".repeat(N));
}

#[test]
fn a_hundred_thousand_minus_signs_are_too_deep() {
    assert_too_deep(format!("{}x", "-".repeat(N)));
    assert_too_deep(format!("{}5", "-".repeat(N)));
}

#[test]
fn a_hundred_thousand_negations_are_too_deep() {
    assert_too_deep(format!("{}x", "!".repeat(N)));
    assert_too_deep(format!("{}x", "~".repeat(N)));
}

#[test]
fn long_chains_are_too_deep() {
    assert_too_deep(format!("x{}", ".y".repeat(N)));
    assert_too_deep(format!("f{}", "()".repeat(N)));
    assert_too_deep(format!("x{}", "!".repeat(N)));
    assert_too_deep(format!("x{}", "?.y".repeat(N)));
    assert_too_deep(vec!["1"; N].join(" + "));
    assert_too_deep(vec!["2"; N].join(" ** "));
    assert_too_deep(vec!["a"; N].join("\n|| "));
}

#[test]
fn nested_lambdas_blocks_and_conditionals_are_too_deep() {
    assert_too_deep(format!("{}x", "x => ".repeat(N)));
    assert_too_deep(format!("{}1", "if (true) ".repeat(N)));
    assert_too_deep(format!("{}1", "{ let x = ".repeat(N)));
    assert_too_deep(format!("{}1", "at (t) ".repeat(N)));
    assert_too_deep("f(".repeat(N));
    assert_too_deep(format!("x{}", " { a".repeat(N)));
}

#[test]
fn nested_interpolations_and_heredocs_are_too_deep() {
    assert_too_deep("\"#{".repeat(N));
    assert_too_deep("<<+A\n#{".repeat(N));
}

#[test]
fn nested_types_are_too_deep() {
    for src in [
        "Array<".repeat(N),
        "(".repeat(N),
        "[".repeat(N),
        "{ a: ".repeat(N),
        vec!["A"; N].join(" | "),
        vec!["A"; N].join(" => "),
        format!("A{}", "?".repeat(N)),
    ] {
        let message = on_small_stack(move || match parse_type(&src) {
            Ok(_) => String::new(),
            Err(e) => e.0[0].message.clone(),
        });
        assert!(
            message.contains("nested too deeply"),
            "unexpected: {message:?}"
        );
    }
}

#[test]
fn nested_lambda_bodies_are_too_deep() {
    let src = format!("x => {}x", "(".repeat(N));
    let message = on_small_stack(move || parse_lambda(&src).map(|_| ()).map_err(|e| e.to_string()));
    assert!(message.is_err_and(|m| m.contains("nested too deeply")));
}

#[test]
fn nesting_just_under_the_limit_parses_on_a_small_stack() {
    let depth = MAX_NESTING - 2;
    let sources = [
        format!("{}1{}", "(".repeat(depth), ")".repeat(depth)),
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth)),
        format!("{}1{}", "{ a: ".repeat(depth), " }".repeat(depth)),
        format!("{}1{}", "{ ".repeat(depth), " }".repeat(depth)),
        format!("{}x", "-".repeat(depth)),
        format!("{}1", "x => ".repeat(depth)),
        format!("{}1{}", "\"#{".repeat(depth / 2), "}\"".repeat(depth / 2)),
        format!("x{}", ".y".repeat(depth)),
        vec!["1"; depth].join(" + "),
        vec!["2"; depth].join(" ** "),
    ];
    for src in sources {
        let ok = on_small_stack(move || parse(&src, 0).is_ok());
        assert!(ok);
    }
}
