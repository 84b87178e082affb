//! A compact, stable S-expression dump of syntax trees, for test expectations and logs
//! (the derived `Debug` is far too verbose to read or to keep in test files).
//!
//! ```text
//! 1 + 2 * 3            (+ 1 (* 2 3))
//! a?.b.c(1)!           (opt (bang (call (. (?. a b) c) 1)))
//! users.map(.name)     (call (. users map) (short (. @ name)))
//! x => x { a, b: 1 }   (fn (x) (proj x a (b = 1)))
//! ```
//!
//! Literals: Int `1`, Long `1L`, Double with a point or exponent (`1.0`, `1e19`), strings
//! quoted with Rust escapes. `@` is the implicit argument of a short lambda, `$n` the n-th
//! placeholder. Statements are separated by `;`.
//!
//! **Invariants:** the output depends only on the tree (not on spans); it recurses once per
//! tree level, which the parser bounds by [`crate::MAX_NESTING`].

use std::fmt::Write;

use crate::ast::{
    Expr, ExprKind, Lambda, Name, ProjField, ProjValue, Query, Stmt, TemplatePartKind, TypeExpr,
    TypeKind, UnOp,
};

/// A query: its statements, separated by `; `.
pub fn query(q: &Query) -> String {
    let mut out = String::new();
    stmts(&mut out, &q.body, "; ");
    out
}

pub fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

pub fn type_expr(t: &TypeExpr) -> String {
    let mut out = String::new();
    write_type(&mut out, t);
    out
}

fn stmts(out: &mut String, body: &[Stmt], sep: &str) {
    for (i, s) in body.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match s {
            Stmt::Let {
                name, ty, value, ..
            } => {
                out.push_str("(let ");
                out.push_str(&name.text);
                if let Some(t) = ty {
                    out.push_str(": ");
                    write_type(out, t);
                }
                out.push(' ');
                write_expr(out, value);
                out.push(')');
            }
            Stmt::Expr(e) => write_expr(out, e),
        }
    }
}

fn list(out: &mut String, head: &str, items: &[Expr]) {
    out.push('(');
    out.push_str(head);
    for item in items {
        out.push(' ');
        write_expr(out, item);
    }
    out.push(')');
}

fn name_or_hole(out: &mut String, n: &Option<Name>) {
    out.push_str(n.as_ref().map_or("_", |n| n.text.as_str()));
}

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Null => out.push_str("null"),
        ExprKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ExprKind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        ExprKind::Long(l) => {
            let _ = write!(out, "{l}L");
        }
        ExprKind::Double(d) => {
            let _ = write!(out, "{d:?}");
        }
        ExprKind::Str(s) => {
            let _ = write!(out, "{s:?}");
        }
        ExprKind::Template(parts) => {
            out.push_str("(tpl");
            for p in parts {
                out.push(' ');
                match &p.kind {
                    TemplatePartKind::Text(t) => {
                        let _ = write!(out, "{t:?}");
                    }
                    TemplatePartKind::Expr(e) => write_expr(out, e),
                }
            }
            out.push(')');
        }
        ExprKind::Ident(name) => out.push_str(name),
        ExprKind::Placeholder(n) => {
            let _ = write!(out, "${n}");
        }
        ExprKind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_expr(out, item);
            }
            out.push(']');
        }
        ExprKind::Object(fields) => {
            out.push_str("(obj");
            for (k, v) in fields {
                let _ = write!(out, " ({:?} ", k.text);
                write_expr(out, v);
                out.push(')');
            }
            out.push(')');
        }
        ExprKind::Block(body) => {
            out.push_str("(block ");
            stmts(out, body, " ");
            out.push(')');
        }
        ExprKind::Lambda(l) => write_lambda(out, l),
        ExprKind::ShortLambda(body) => {
            out.push_str("(short ");
            write_expr(out, body);
            out.push(')');
        }
        ExprKind::ImplicitArg => out.push('@'),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            out.push_str("(if ");
            write_expr(out, cond);
            out.push(' ');
            write_expr(out, then);
            if let Some(o) = otherwise {
                out.push(' ');
                write_expr(out, o);
            }
            out.push(')');
        }
        ExprKind::At { ts, body } => {
            out.push_str("(at ");
            write_expr(out, ts);
            out.push(' ');
            write_expr(out, body);
            out.push(')');
        }
        ExprKind::Unary { op, operand } => {
            out.push('(');
            out.push(match op {
                UnOp::Neg => '-',
                UnOp::Not => '!',
                UnOp::BitNot => '~',
            });
            out.push(' ');
            write_expr(out, operand);
            out.push(')');
        }
        ExprKind::Binary { op, lhs, rhs } => {
            out.push('(');
            out.push_str(op.symbol());
            out.push(' ');
            write_expr(out, lhs);
            out.push(' ');
            write_expr(out, rhs);
            out.push(')');
        }
        ExprKind::Field {
            recv,
            name,
            optional,
        } => {
            out.push_str(if *optional { "(?. " } else { "(. " });
            write_expr(out, recv);
            out.push(' ');
            out.push_str(&name.text);
            out.push(')');
        }
        ExprKind::Call {
            callee,
            args,
            optional,
        } => {
            out.push_str(if *optional { "(?call " } else { "(call " });
            write_expr(out, callee);
            for a in args {
                out.push(' ');
                write_expr(out, a);
            }
            out.push(')');
        }
        ExprKind::Index {
            recv,
            args,
            optional,
        } => {
            out.push_str(if *optional { "(?idx " } else { "(idx " });
            write_expr(out, recv);
            for a in args {
                out.push(' ');
                write_expr(out, a);
            }
            out.push(')');
        }
        ExprKind::NonNull(inner) => list(out, "bang", std::slice::from_ref(&**inner)),
        ExprKind::OptionalChain(inner) => list(out, "opt", std::slice::from_ref(&**inner)),
        ExprKind::Projection { recv, fields } => {
            out.push_str("(proj ");
            write_expr(out, recv);
            write_fields(out, fields);
            out.push(')');
        }
        ExprKind::Unsupported(what) => {
            let _ = write!(out, "(unsupported {what:?})");
        }
    }
}

fn write_fields(out: &mut String, fields: &[ProjField]) {
    for f in fields {
        out.push(' ');
        match &f.value {
            ProjValue::Field => out.push_str(&f.name.text),
            ProjValue::Expr(e) => {
                let _ = write!(out, "({} = ", f.name.text);
                write_expr(out, e);
                out.push(')');
            }
            ProjValue::Nested(inner) => {
                out.push('(');
                out.push_str(&f.name.text);
                out.push_str(" {");
                write_fields(out, inner);
                out.push_str(" })");
            }
        }
    }
}

fn write_lambda(out: &mut String, l: &Lambda) {
    out.push_str("(fn (");
    for (i, p) in l.params.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        name_or_hole(out, p);
    }
    if let Some(v) = &l.variadic {
        if !l.params.is_empty() {
            out.push(' ');
        }
        out.push_str("...");
        name_or_hole(out, v);
    }
    out.push_str(") ");
    write_expr(out, &l.body);
    out.push(')');
}

fn write_type(out: &mut String, t: &TypeExpr) {
    match &t.kind {
        TypeKind::Named { name, args } => {
            out.push_str(&name.text);
            if !args.is_empty() {
                out.push('<');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_type(out, a);
                }
                out.push('>');
            }
        }
        TypeKind::Literal(e) => write_expr(out, e),
        TypeKind::Object { fields, wildcard } => {
            out.push('{');
            let mut first = true;
            for (name, ty, optional) in fields {
                out.push_str(if first { " " } else { ", " });
                first = false;
                out.push_str(&name.text);
                out.push_str(if *optional { "?: " } else { ": " });
                write_type(out, ty);
            }
            if let Some(w) = wildcard {
                out.push_str(if first { " *: " } else { ", *: " });
                first = false;
                write_type(out, w);
            }
            out.push_str(if first { "}" } else { " }" });
        }
        TypeKind::Tuple(elems) => {
            out.push('[');
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_type(out, e);
            }
            out.push(']');
        }
        TypeKind::Optional(inner) => {
            write_type(out, inner);
            out.push('?');
        }
        TypeKind::Union(a, b) | TypeKind::Intersection(a, b) => {
            out.push('(');
            write_type(out, a);
            out.push_str(if matches!(t.kind, TypeKind::Union(..)) {
                " | "
            } else {
                " & "
            });
            write_type(out, b);
            out.push(')');
        }
        TypeKind::Function {
            params,
            variadic,
            ret,
        } => {
            out.push_str("((");
            for (i, p) in params.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_type(out, p);
            }
            if let Some(v) = variadic {
                if !params.is_empty() {
                    out.push_str(", ");
                }
                out.push_str("...");
                write_type(out, v);
            }
            out.push_str(") => ");
            write_type(out, ret);
            out.push(')');
        }
    }
}
