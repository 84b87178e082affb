//! FQL's binary operators: the one table that drives the Pratt loop in `expr.rs`.
//!
//! Precedence, from Fauna's `ExprParser.ExprOpPrecedences` (higher binds tighter):
//! `**` (right-associative) > `* / %` > `+ -` > `&` > `^` > `|` > `isa` > `< > <= >=` >
//! `== != =~ !~` > `&&` > `||` > `??`. Prefix operators bind tighter than all of them and
//! postfix chains tighter still; a projection applies to the whole operator expression.
//!
//! Newlines: an operator must be on the same line as its left operand, except `?? || && |
//! ^ &`, which may start a continuation line (`a\n|| b` is one expression, `1\n+ 2` is two
//! statements). A newline is always allowed after an operator.
//!
//! **Invariants:** matching never reads past the slice it is given; it never treats the
//! start of a comment (`//`, `/*`) or a type arrow (`->`) as an operator.

use crate::ast::BinOp;
use crate::lexer::is_ident_rest;

#[derive(Debug)]
pub(crate) struct OpInfo {
    pub op: BinOp,
    pub text: &'static str,
    pub prec: u8,
    pub right_assoc: bool,
    /// May begin a line that continues the previous expression.
    pub continues_line: bool,
}

const fn op(op: BinOp, text: &'static str, prec: u8, right_assoc: bool, cont: bool) -> OpInfo {
    OpInfo {
        op,
        text,
        prec,
        right_assoc,
        continues_line: cont,
    }
}

pub(crate) const OPERATORS: [OpInfo; 21] = [
    op(BinOp::Pow, "**", 12, true, false),
    op(BinOp::Mul, "*", 11, false, false),
    op(BinOp::Div, "/", 11, false, false),
    op(BinOp::Rem, "%", 11, false, false),
    op(BinOp::Add, "+", 10, false, false),
    op(BinOp::Sub, "-", 10, false, false),
    op(BinOp::BitAnd, "&", 9, false, true),
    op(BinOp::BitXor, "^", 8, false, true),
    op(BinOp::BitOr, "|", 7, false, true),
    op(BinOp::Isa, "isa", 6, false, false),
    op(BinOp::Gt, ">", 5, false, false),
    op(BinOp::Lt, "<", 5, false, false),
    op(BinOp::Ge, ">=", 5, false, false),
    op(BinOp::Le, "<=", 5, false, false),
    op(BinOp::Eq, "==", 4, false, false),
    op(BinOp::Ne, "!=", 4, false, false),
    op(BinOp::Match, "=~", 4, false, false),
    op(BinOp::NotMatch, "!~", 4, false, false),
    op(BinOp::And, "&&", 3, false, true),
    op(BinOp::Or, "||", 2, false, true),
    op(BinOp::Nullish, "??", 1, false, true),
];

/// The operator at the start of `rest` (longest match), if any.
pub(crate) fn match_operator(rest: &[u8]) -> Option<&'static OpInfo> {
    // Most calls come after an operand where no operator follows: answer those fast.
    if !matches!(
        rest.first(),
        Some(
            b'*' | b'/'
                | b'%'
                | b'+'
                | b'-'
                | b'&'
                | b'^'
                | b'|'
                | b'i'
                | b'>'
                | b'<'
                | b'='
                | b'!'
                | b'?'
        )
    ) {
        return None;
    }
    if rest.starts_with(b"//") || rest.starts_with(b"/*") || rest.starts_with(b"->") {
        return None;
    }
    let mut best: Option<&'static OpInfo> = None;
    for info in &OPERATORS {
        let text = info.text.as_bytes();
        if !rest.starts_with(text) {
            continue;
        }
        // `isa` is a keyword: `isabel` is an identifier.
        if info.op == BinOp::Isa && rest.get(text.len()).copied().is_some_and(is_ident_rest) {
            continue;
        }
        if best.is_none_or(|b| b.text.len() < text.len()) {
            best = Some(info);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Option<BinOp> {
        match_operator(s.as_bytes()).map(|i| i.op)
    }

    #[test]
    fn the_longest_operator_wins() {
        assert_eq!(m("** 2"), Some(BinOp::Pow));
        assert_eq!(m("*2"), Some(BinOp::Mul));
        assert_eq!(m(">= 1"), Some(BinOp::Ge));
        assert_eq!(m("|| x"), Some(BinOp::Or));
        assert_eq!(m("| x"), Some(BinOp::BitOr));
        assert_eq!(m("!~ x"), Some(BinOp::NotMatch));
    }

    #[test]
    fn comments_arrows_and_non_operators_are_not_operators() {
        assert_eq!(m("// c"), None);
        assert_eq!(m("/* c */"), None);
        assert_eq!(m("-> x"), None);
        assert_eq!(m("=> x"), None);
        assert_eq!(m("= x"), None);
        assert_eq!(m("! x"), None);
        assert_eq!(m("?. x"), None);
    }

    #[test]
    fn isa_is_a_whole_word() {
        assert_eq!(m("isa Number"), Some(BinOp::Isa));
        assert_eq!(m("isabel"), None);
    }

    #[test]
    fn every_symbol_maps_back_to_its_operator() {
        for info in &OPERATORS {
            assert_eq!(info.op.symbol(), info.text);
        }
    }

    #[test]
    fn only_logical_and_bitwise_operators_continue_a_line() {
        let cont: Vec<&str> = OPERATORS
            .iter()
            .filter(|i| i.continues_line)
            .map(|i| i.text)
            .collect();
        assert_eq!(cont, ["&", "^", "|", "&&", "||", "??"]);
    }
}
