//! The FQL syntax tree.
//!
//! Every expression carries the byte span of its source text so that runtime errors can be
//! rendered with a caret under the offending code. The tree is what the parser saw, with two
//! normalizations: a parenthesized single expression is the expression itself, and a tuple
//! `(a, b)` / `()` is an [`ExprKind::Array`] (FQL evaluates tuples to arrays). A
//! parenthesized expression keeps its own span; nodes built around it span the parentheses
//! (`(a + b) * c` spans from the `(`). No tree the parser returns is deeper than
//! [`crate::MAX_NESTING`].

use std::sync::Arc;

/// A half-open byte range `[start, end)` into the query source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// An identifier or field name as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A whole query: a block body without braces. `body` is never empty and its last statement
/// is an expression (the parser enforces both).
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Let {
        name: Name,
        ty: Option<TypeExpr>,
        value: Expr,
        span: Span,
    },
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    /// An integer literal that fits in `i32`.
    Int(i32),
    /// An integer literal that fits in `i64` but not `i32`.
    Long(i64),
    /// A float literal, or an integer literal too large for `i64`.
    Double(f64),
    /// A string without interpolation (single-quoted, double-quoted without `#{}`, `<<-` heredoc).
    Str(String),
    /// A double-quoted string or `<<+` heredoc with at least one `#{}` interpolation.
    Template(Vec<TemplatePart>),
    /// A variable reference (never a keyword).
    Ident(String),
    /// The `i`-th value placeholder of a query template (`{"value": ...}` in the request).
    Placeholder(usize),
    Array(Vec<Expr>),
    /// An object literal; keys are unique (duplicates are a parse error).
    Object(Vec<(Name, Expr)>),
    /// `{ stmt; ...; expr }`: its own scope; never empty, ends with an expression.
    Block(Vec<Stmt>),
    /// Shared (`Arc`) so that a closure value can hold its code without copying the tree.
    Lambda(Arc<Lambda>),
    /// A short lambda built from `.field`-style anonymous access (`.name`, `.a + .b`,
    /// `!.done`). Its body refers to the argument through [`ExprKind::ImplicitArg`].
    /// Shared (`Arc`) for the same reason as `Lambda`.
    ShortLambda(Arc<Expr>),
    /// The receiver of a short lambda.
    ImplicitArg,
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Option<Box<Expr>>,
    },
    At {
        ts: Box<Expr>,
        body: Box<Expr>,
    },
    Unary {
        op: UnOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `recv.name` or `recv?.name`.
    Field {
        recv: Box<Expr>,
        name: Name,
        optional: bool,
    },
    /// `callee(args)` or `callee?.(args)`. A method call is a `Call` whose callee is a `Field`.
    Call {
        callee: Box<Expr>,
        args: Vec<Expr>,
        optional: bool,
    },
    /// `recv[args]` or `recv?.[args]` (FQL allows several arguments; the evaluator checks).
    Index {
        recv: Box<Expr>,
        args: Vec<Expr>,
        optional: bool,
    },
    /// Postfix `!`: non-null assertion.
    NonNull(Box<Expr>),
    /// The boundary of a postfix chain that contains `?.`: when an optional access meets null,
    /// evaluation skips the rest of the chain up to this node, which yields null.
    ///
    /// It wraps the whole chain, after its last link, trailing `!` included:
    /// `a?.b.c(1)!` is `OptionalChain(NonNull(Call(Field(Field(a, b, optional), c), [1])))`.
    /// Parentheses end a chain: `(a?.b).c` is `Field(OptionalChain(Field(a, b, optional)), c)`,
    /// so there `.c` is not skipped. As in Fauna, a skipped link is a `Field`, `Call` or
    /// `Index`; a `NonNull` inside the chain still checks the value it receives (so `a?.b!`
    /// fails when `a` is null). Within a short lambda the boundary is inside the lambda:
    /// `.a?.b` is `ShortLambda(OptionalChain(Field(Field(ImplicitArg, a), b, optional)))`.
    OptionalChain(Box<Expr>),
    /// `recv { a, b: expr, c { d } }`.
    Projection {
        recv: Box<Expr>,
        fields: Vec<ProjField>,
    },
    /// Syntax that parses but is not evaluated (`match`, `x { * }`): evaluating it is an
    /// `invalid_query` error naming the feature.
    Unsupported(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TemplatePart {
    pub kind: TemplatePartKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePartKind {
    Text(String),
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lambda {
    /// Parameter names; `None` for `_` (ignored).
    pub params: Vec<Option<Name>>,
    /// `...rest`: collects the remaining arguments into an array.
    pub variadic: Option<Option<Name>>,
    pub body: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProjField {
    pub name: Name,
    pub value: ProjValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProjValue {
    /// `a`: the field `a` of the receiver.
    Field,
    /// `a { ... }`: the field `a`, projected.
    Nested(Vec<ProjField>),
    /// `a: expr`: `expr` evaluated with the receiver as the implicit argument when it is a
    /// short lambda, else as a plain expression.
    Expr(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Pow,
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    BitAnd,
    BitXor,
    BitOr,
    Isa,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    Match,
    NotMatch,
    And,
    Or,
    Nullish,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Pow => "**",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::BitAnd => "&",
            BinOp::BitXor => "^",
            BinOp::BitOr => "|",
            BinOp::Isa => "isa",
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Match => "=~",
            BinOp::NotMatch => "!~",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Nullish => "??",
        }
    }
}

/// A type expression (`let x: T`, function signatures, field definitions). Parsed and kept;
/// only a typechecker gives it meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    /// `String`, `Array<T>`, `Ref<Product>`, ...
    Named {
        name: Name,
        args: Vec<TypeExpr>,
    },
    /// A singleton: `"a"`, `1`, `true` (`null` is the name `null`, as in Fauna).
    Literal(Box<Expr>),
    /// `{ a: T, b: U, *: Any }`; the wildcard, if any, comes last. The `bool` (an optional
    /// `b?:` field) is always false: FQL's type grammar has no such marker. An interface
    /// `{ a: T, ... }` parses as an object whose wildcard is `Any`.
    Object {
        fields: Vec<(Name, TypeExpr, bool)>,
        wildcard: Option<Box<TypeExpr>>,
    },
    Tuple(Vec<TypeExpr>),
    Optional(Box<TypeExpr>),
    Union(Box<TypeExpr>, Box<TypeExpr>),
    Intersection(Box<TypeExpr>, Box<TypeExpr>),
    /// `(A, B) => R`, with an optional variadic last parameter.
    Function {
        params: Vec<TypeExpr>,
        variadic: Option<Box<TypeExpr>>,
        ret: Box<TypeExpr>,
    },
}
