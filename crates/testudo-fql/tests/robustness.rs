//! The parser never panics, whatever the input, and every span it reports lies inside the
//! source on character boundaries. 20 000 deterministic pseudo-random inputs: valid
//! queries mutated and spliced together, plus random bytes read as lossy UTF-8.

use std::panic::{AssertUnwindSafe, catch_unwind};

use testudo_fql::{
    Expr, ExprKind, ParseErrors, ProjField, ProjValue, Span, Stmt, TemplatePartKind, TypeExpr,
    TypeKind, parse, parse_lambda, parse_type, sexpr,
};

/// xorshift64*: tiny, deterministic, good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SEEDS: &[&str] = &[
    "Product.where(.price > 10 && .stock > 0).map(.name)",
    "let x = { a: 1, b: [1, 2.5, 'c'], \"d\": null }\nx { a, b: .b[0], c { d } }",
    "if (a?.b.c(1)!) { let y = -2 ** 2; y } else at (Time.now()) 3",
    "(x, ...rest) => x + rest.length",
    "\"hello #{ name } and #{ { a: \"}\" }.a }\"",
    "<<+END\n  line #{1}\n    more\nEND",
    "<<-X\n raw #{no}\nX",
    "0x1F + 0o17 + 0b1 + 1_000 + 1.5e3 - -2",
    "a\n|| b\n?? c",
    "match x { case 1 => 2 }",
    "x { * }",
    "// comment\n/* block /* nested */ */ 1; 2",
    "users.map(user => user { name, email })",
    "[1, 2, 3].fold(0, (acc, x) => acc + x)",
    "Collection.create({ name: 'Foo', indexes: { byName: { terms: [{ field: '.name' }] } } })",
    "let f: (Int, String) => Boolean? = (a, b) => true; f(1, 'x')",
    "{ x }",
    "'\\u{1F600}\\x41\\n\\#'",
    "x => y => z => x(y)(z)[0]",
    "!a.b && ~c | d ^ e & f isa Number",
    "\u{FFFF} + \u{FFFF}.x",
];

const TYPE_SEEDS: &[&str] = &[
    "Array<String> | Null",
    "{ a: Int, 'b': String?, *: Any }",
    "(x: Int, rest: ...String) => Boolean",
    "[Int, \"a\", 1, true] & Foo.Bar",
];

const PIECES: &[&str] = &[
    "(", ")", "{", "}", "[", "]", "\"", "'", "#{", "#", ".", "?.", "!", ":", ";", ",", "=", "=>",
    "...", "<<-", "<<+", "+", "-", "*", "**", "/", "//", "/*", "*/", "%", "&", "&&", "|", "||",
    "^", "~", "??", "<", ">=", "\n", " ", "\t", "\r", "0", "1.5", "0x", "1e", "_", "a", "if",
    "else", "let", "at", "match", "null", "isa", "\\", "\\u{", "\u{FFFF}", "é", "😍", "\u{0}",
    "\u{200B}", "x => ", "END\n",
];

fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut s = base.to_string();
    for _ in 0..=rng.below(4) {
        let boundaries: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
        let at = *rng.pick(&boundaries);
        match rng.below(5) {
            0 => {
                let piece = *rng.pick(PIECES);
                s.insert_str(at, piece);
            }
            1 => {
                let end = *rng.pick(&boundaries);
                let (a, b) = (at.min(end), at.max(end));
                s.replace_range(a..b, "");
            }
            2 => {
                let end = *rng.pick(&boundaries);
                let (a, b) = (at.min(end), at.max(end));
                let piece = s[a..b].to_string();
                s.insert_str(b, &piece);
            }
            3 => {
                let other = *rng.pick(SEEDS);
                let cut = (0..=other.len())
                    .filter(|&i| other.is_char_boundary(i))
                    .collect::<Vec<_>>();
                let from = *rng.pick(&cut);
                s.truncate(at);
                s.push_str(&other[from..]);
            }
            _ => {
                let piece = *rng.pick(PIECES);
                s.insert_str(at, piece);
            }
        }
    }
    s
}

fn random_bytes(rng: &mut Rng) -> String {
    let len = rng.below(64);
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            // Mostly ASCII punctuation and letters, sometimes anything.
            const ALPHABET: &[u8] = b" \n(){}[]\"'#.?!:;,=<>+-*/%&|^~0123456789aex_";
            if rng.below(4) == 0 {
                rng.below(256) as u8
            } else {
                ALPHABET[rng.below(ALPHABET.len())]
            }
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check_span(src: &str, span: Span, what: &str) {
    let (s, e) = (span.start as usize, span.end as usize);
    assert!(
        s <= e && e <= src.len(),
        "{what} span {s}..{e} outside a source of {} bytes: {src:?}",
        src.len()
    );
    assert!(
        src.is_char_boundary(s) && src.is_char_boundary(e),
        "{what} span {s}..{e} not on char boundaries: {src:?}"
    );
}

fn check_errors(src: &str, errors: &ParseErrors) {
    assert!(
        !errors.0.is_empty(),
        "an error result with no errors: {src:?}"
    );
    for err in &errors.0 {
        check_span(src, err.span, "error");
        for hint in &err.hints {
            check_span(src, hint.span, "hint");
        }
    }
    let summary = errors.summary(src);
    assert!(summary.starts_with("error: "), "{summary}");
}

fn check_expr(src: &str, e: &Expr) {
    check_span(src, e.span, "expression");
    match &e.kind {
        ExprKind::Template(parts) => {
            for p in parts {
                check_span(src, p.span, "template part");
                if let TemplatePartKind::Expr(e) = &p.kind {
                    check_expr(src, e);
                }
            }
        }
        ExprKind::Array(items) => items.iter().for_each(|i| check_expr(src, i)),
        ExprKind::Object(fields) => fields.iter().for_each(|(k, v)| {
            check_span(src, k.span, "key");
            check_expr(src, v);
        }),
        ExprKind::Block(body) => check_stmts(src, body),
        ExprKind::Lambda(l) => {
            l.params
                .iter()
                .flatten()
                .for_each(|p| check_span(src, p.span, "param"));
            check_expr(src, &l.body);
        }
        ExprKind::ShortLambda(body) => check_expr(src, body),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            check_expr(src, cond);
            check_expr(src, then);
            otherwise.iter().for_each(|o| check_expr(src, o));
        }
        ExprKind::At { ts, body } => {
            check_expr(src, ts);
            check_expr(src, body);
        }
        ExprKind::Unary { operand, .. } => check_expr(src, operand),
        ExprKind::Binary { lhs, rhs, .. } => {
            check_expr(src, lhs);
            check_expr(src, rhs);
        }
        ExprKind::Field { recv, name, .. } => {
            check_expr(src, recv);
            check_span(src, name.span, "field name");
        }
        ExprKind::Call {
            callee: inner,
            args,
            ..
        }
        | ExprKind::Index {
            recv: inner, args, ..
        } => {
            check_expr(src, inner);
            args.iter().for_each(|a| check_expr(src, a));
        }
        ExprKind::NonNull(inner) | ExprKind::OptionalChain(inner) => check_expr(src, inner),
        ExprKind::Projection { recv, fields } => {
            check_expr(src, recv);
            check_fields(src, fields);
        }
        _ => {}
    }
}

fn check_fields(src: &str, fields: &[ProjField]) {
    for f in fields {
        check_span(src, f.span, "projection field");
        match &f.value {
            ProjValue::Field => {}
            ProjValue::Expr(e) => check_expr(src, e),
            ProjValue::Nested(inner) => check_fields(src, inner),
        }
    }
}

fn check_stmts(src: &str, body: &[Stmt]) {
    for s in body {
        match s {
            Stmt::Let {
                name,
                ty,
                value,
                span,
            } => {
                check_span(src, *span, "let");
                check_span(src, name.span, "let name");
                ty.iter().for_each(|t| check_type(src, t));
                check_expr(src, value);
            }
            Stmt::Expr(e) => check_expr(src, e),
        }
    }
}

fn check_type(src: &str, t: &TypeExpr) {
    check_span(src, t.span, "type");
    match &t.kind {
        TypeKind::Named { args, .. } | TypeKind::Tuple(args) => {
            args.iter().for_each(|a| check_type(src, a))
        }
        TypeKind::Literal(e) => check_expr(src, e),
        TypeKind::Object { fields, wildcard } => {
            fields.iter().for_each(|(_, t, _)| check_type(src, t));
            wildcard.iter().for_each(|w| check_type(src, w));
        }
        TypeKind::Optional(t) => check_type(src, t),
        TypeKind::Union(a, b) | TypeKind::Intersection(a, b) => {
            check_type(src, a);
            check_type(src, b);
        }
        TypeKind::Function {
            params,
            variadic,
            ret,
        } => {
            params.iter().for_each(|p| check_type(src, p));
            variadic.iter().for_each(|v| check_type(src, v));
            check_type(src, ret);
        }
    }
}

fn exercise(src: &str, placeholders: usize) {
    match parse(src, placeholders) {
        Ok(q) => {
            check_span(src, q.span, "query");
            check_stmts(src, &q.body);
            let _ = sexpr::query(&q);
        }
        Err(e) => check_errors(src, &e),
    }
    match parse_lambda(src) {
        Ok(e) => {
            assert!(matches!(
                e.kind,
                ExprKind::Lambda(_) | ExprKind::ShortLambda(_)
            ));
            check_expr(src, &e);
        }
        Err(e) => check_errors(src, &e),
    }
    match parse_type(src) {
        Ok(t) => check_type(src, &t),
        Err(e) => check_errors(src, &e),
    }
}

#[test]
fn twenty_thousand_mangled_inputs_never_panic_and_report_spans_inside_the_source() {
    // `TESTUDO_FUZZ_ITERS` / `TESTUDO_FUZZ_SEED` run a longer or different campaign.
    let iters = std::env::var("TESTUDO_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed = std::env::var("TESTUDO_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_F00D_CAFE_D00D);
    let mut rng = Rng(seed);
    let mut parsed = 0;
    for i in 0..iters {
        let seed = *rng.pick(SEEDS);
        let other = *rng.pick(SEEDS);
        let type_seed = *rng.pick(TYPE_SEEDS);
        let src = match i % 10 {
            0..=5 => mutate(&mut rng, seed),
            6 => mutate(&mut rng, type_seed),
            7 => {
                let a = mutate(&mut rng, seed);
                mutate(&mut rng, &(a + "\n" + other))
            }
            _ => random_bytes(&mut rng),
        };
        let placeholders = rng.below(3);
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&src, placeholders)));
        assert!(outcome.is_ok(), "input #{i} panicked: {src:?}");
        parsed += usize::from(parse(&src, placeholders).is_ok());
    }
    // The corpus must not be all garbage: some mutations still parse.
    assert!(
        parsed > iters / 40,
        "only {parsed} of {iters} inputs parsed"
    );
}

#[test]
fn every_seed_parses() {
    for seed in SEEDS {
        assert!(
            parse(seed, 2).is_ok(),
            "{seed:?}: {:?}",
            parse(seed, 2).err()
        );
    }
    for seed in TYPE_SEEDS {
        assert!(
            parse_type(seed).is_ok(),
            "{seed:?}: {:?}",
            parse_type(seed).err()
        );
    }
}
