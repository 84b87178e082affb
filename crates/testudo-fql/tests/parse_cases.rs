//! Data-driven parser cases: every `tests/data/*.test` file lists inputs and the expected
//! tree (as printed by `testudo_fql::sexpr`) or the expected error summary, rendered the
//! way Fauna renders it. `TESTUDO_BLESS=1 cargo test -p testudo-fql --test parse_cases`
//! rewrites the expectations from the current output (review the diff!).
//!
//! Format: a case starts with `=== <kind> [escaped] [placeholders=N]` where kind is `query`,
//! `lambda` or `type`; its input runs to a line `---`, its expectation to the next `===` or
//! the end of the file (trailing blank lines ignored). With `escaped`, the input may use
//! `\n`, `\t`, `\\` and `\u{HEX}`. Lines starting with `#` before the first case are
//! comments.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

struct Case {
    header: String,
    input: String,
    expected: String,
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                assert_eq!(chars.next(), Some('{'), "bad \\u escape in test input");
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let code = u32::from_str_radix(&hex, 16).expect("hex in \\u escape");
                out.push(char::from_u32(code).expect("valid code point"));
            }
            other => panic!("unknown escape \\{other:?} in test input"),
        }
    }
    out
}

fn parse_file(text: &str) -> (String, Vec<Case>) {
    let mut preamble = String::new();
    let mut cases = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.peek() {
        if line.starts_with("===") {
            break;
        }
        preamble.push_str(line);
        preamble.push('\n');
        lines.next();
    }
    while let Some(header) = lines.next() {
        let header = header.trim_start_matches("===").trim().to_string();
        let mut input = Vec::new();
        for line in lines.by_ref() {
            if line == "---" {
                break;
            }
            input.push(line);
        }
        let mut expected = Vec::new();
        while let Some(line) = lines.peek() {
            if line.starts_with("===") {
                break;
            }
            expected.push(*line);
            lines.next();
        }
        while expected.last().is_some_and(|l| l.trim().is_empty()) {
            expected.pop();
        }
        cases.push(Case {
            header,
            input: input.join("\n"),
            expected: expected.join("\n"),
        });
    }
    (preamble, cases)
}

fn run(case: &Case) -> String {
    let mut words = case.header.split_whitespace();
    let kind = words.next().unwrap_or("query");
    let mut escaped = false;
    let mut placeholders = 0;
    for w in words {
        if w == "escaped" {
            escaped = true;
        } else if let Some(n) = w.strip_prefix("placeholders=") {
            placeholders = n.parse().expect("placeholder count");
        } else {
            panic!("unknown case option {w:?}");
        }
    }
    let input = if escaped {
        unescape(&case.input)
    } else {
        case.input.clone()
    };
    let result = match kind {
        "query" => testudo_fql::parse(&input, placeholders).map(|q| testudo_fql::sexpr::query(&q)),
        "lambda" => testudo_fql::parse_lambda(&input).map(|e| testudo_fql::sexpr::expr(&e)),
        "type" => testudo_fql::parse_type(&input).map(|t| testudo_fql::sexpr::type_expr(&t)),
        other => panic!("unknown case kind {other:?}"),
    };
    match result {
        Ok(tree) => tree,
        Err(errors) => errors.summary(&input),
    }
}

fn data_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_case_in_the_data_files_parses_as_expected() {
    let bless = std::env::var_os("TESTUDO_BLESS").is_some();
    let mut failures = String::new();
    let mut count = 0;
    for path in data_files() {
        let text = std::fs::read_to_string(&path).expect("read test file");
        let (preamble, cases) = parse_file(&text);
        let mut blessed = preamble;
        for case in &cases {
            count += 1;
            let actual = run(case);
            if actual != case.expected {
                let _ = write!(
                    failures,
                    "\n--- {} [{}]\n{}\n--- expected\n{}\n--- actual\n{}\n",
                    path.display(),
                    case.header,
                    case.input,
                    case.expected,
                    actual
                );
            }
            let _ = write!(
                blessed,
                "=== {}\n{}\n---\n{}\n\n",
                case.header, case.input, actual
            );
        }
        if bless {
            std::fs::write(&path, blessed.trim_end().to_string() + "\n").expect("bless");
        }
    }
    assert!(count > 0, "no cases found");
    if !bless {
        assert!(failures.is_empty(), "mismatched cases:{failures}");
    }
}
