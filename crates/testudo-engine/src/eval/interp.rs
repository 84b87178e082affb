//! Evaluation of expressions, calls, field access, indexing and projection.

use std::rc::Rc;

use testudo_fql::Span;
use testudo_fql::ast::{
    BinOp, Expr, ExprKind, Lambda, ProjField, ProjValue, Stmt, TemplatePartKind, UnOp,
};

use super::value::{Closure, Func, LambdaCode, MAX_VALUE_DEPTH, Module, Native, NullCause, Value};
use super::{Env, IMPLICIT_ARG, Interp, MAX_CALL_DEPTH, MAX_EVAL_DEPTH, R, at, err, fail, ops};
use crate::api::ErrorCode;
use crate::stdlib;

impl Interp<'_> {
    /// Evaluates a block body: statements in order, the value of the last one.
    pub fn eval_body(&mut self, body: &[Stmt], env: &Env) -> R<Value> {
        let mut env = env.clone();
        let mut last = Value::NULL;
        for stmt in body {
            match stmt {
                Stmt::Let { name, value, .. } => {
                    let v = self.eval(value, &env)?;
                    env = env.bind(Rc::from(name.text.as_str()), v);
                    last = Value::NULL;
                }
                Stmt::Expr(e) => last = self.eval(e, &env)?,
            }
        }
        Ok(last)
    }

    pub fn eval(&mut self, e: &Expr, env: &Env) -> R<Value> {
        self.tick()?;
        self.eval_depth += 1;
        if self.eval_depth > MAX_EVAL_DEPTH {
            self.eval_depth -= 1;
            return Err(stack_overflow(e.span));
        }
        let result = self.eval_inner(e, env);
        self.eval_depth -= 1;
        result
    }

    fn eval_inner(&mut self, e: &Expr, env: &Env) -> R<Value> {
        match &e.kind {
            ExprKind::Null => Ok(Value::NULL),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Int(i) => Ok(Value::Int(*i)),
            ExprKind::Long(i) => Ok(Value::Long(*i)),
            ExprKind::Double(d) => Ok(Value::Double(*d)),
            ExprKind::Str(s) => Ok(Value::str(s)),
            ExprKind::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match &part.kind {
                        TemplatePartKind::Text(t) => out.push_str(t),
                        TemplatePartKind::Expr(inner) => {
                            let v = self.eval(inner, env)?;
                            let text = at(self.display(&v), inner.span)?;
                            out.push_str(&text);
                        }
                    }
                }
                stdlib::string::checked_string(out)
            }
            ExprKind::Ident(name) => self.resolve(name, env, e.span),
            ExprKind::Placeholder(i) => {
                env.lookup(&placeholder_name(*i)).cloned().ok_or_else(|| {
                    with_span(
                        err(
                            ErrorCode::InvalidQuery,
                            "Missing value for a query placeholder.",
                        ),
                        e.span,
                    )
                })
            }
            ExprKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item, env)?);
                }
                check_depth(Value::array(out))
            }
            ExprKind::Object(fields) => {
                let mut out = super::Object::with_capacity(fields.len());
                for (name, value) in fields {
                    let v = self.eval(value, env)?;
                    out.insert(name.text.clone(), v);
                }
                check_depth(Value::object(out))
            }
            ExprKind::Block(body) => self.eval_body(body, env),
            ExprKind::Lambda(l) => Ok(self.closure(LambdaCode::Full(l.clone()), env, e.span)),
            ExprKind::ShortLambda(body) => {
                Ok(self.closure(LambdaCode::Short(body.clone()), env, e.span))
            }
            ExprKind::ImplicitArg => env.lookup(IMPLICIT_ARG).cloned().ok_or_else(|| {
                with_span(
                    err(ErrorCode::InvalidQuery, "Invalid anonymous field access."),
                    e.span,
                )
            }),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.eval(cond, env)?;
                match c {
                    Value::Bool(true) => self.eval(then, env),
                    Value::Bool(false) => match otherwise {
                        Some(o) => self.eval(o, env),
                        None => Ok(Value::NULL),
                    },
                    other => Err(with_span(
                        err(
                            ErrorCode::TypeMismatch,
                            format!("expected type: Boolean, received {}", other.type_name()),
                        ),
                        cond.span,
                    )),
                }
            }
            ExprKind::At { ts, body } => {
                let t = self.eval(ts, env)?;
                let when = at(self.snapshot_time_arg(&t), ts.span)?;
                let saved = self.read_at.replace(when);
                let saved_history = self.history_at.replace(when);
                let result = self.eval(body, env);
                self.read_at = saved;
                self.history_at = saved_history;
                result
            }
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand, env)?;
                at(
                    match op {
                        UnOp::Neg => ops::negate(&v),
                        UnOp::Not => match v {
                            Value::Bool(b) => Ok(Value::Bool(!b)),
                            other => fail(
                                ErrorCode::InvalidFunctionInvocation,
                                format!(
                                    "The function `!` does not exist on `{}`",
                                    other.type_name()
                                ),
                            ),
                        },
                        UnOp::BitNot => ops::bit_not(&v),
                    },
                    e.span,
                )
            }
            ExprKind::Binary { op, lhs, rhs } => self.eval_binary(*op, lhs, rhs, env, e.span),
            ExprKind::Field { .. }
            | ExprKind::Call { .. }
            | ExprKind::Index { .. }
            | ExprKind::NonNull(_)
            | ExprKind::OptionalChain(_) => Ok(self.eval_link(e, env)?.unwrap_or(Value::NULL)),
            ExprKind::Projection { recv, fields } => {
                let v = self.eval(recv, env)?;
                at(self.project(&v, fields, env), e.span)
            }
            ExprKind::Unsupported(what) => Err(with_span(
                err(ErrorCode::InvalidQuery, format!("{what} is not supported.")),
                e.span,
            )),
        }
    }

    fn closure(&self, code: LambdaCode, env: &Env, span: Span) -> Value {
        Value::Func(Rc::new(Func::Lambda(Closure {
            code,
            depth: 1 + env.max_depth(),
            env: env.clone(),
            source: self.source.clone(),
            span,
        })))
    }

    /// Evaluates one link of a postfix chain. `None` means an optional access met null and
    /// the rest of the chain, up to its `OptionalChain` boundary, is skipped.
    fn eval_link(&mut self, e: &Expr, env: &Env) -> R<Option<Value>> {
        match &e.kind {
            ExprKind::OptionalChain(inner) => {
                self.tick()?;
                Ok(Some(self.eval_link(inner, env)?.unwrap_or(Value::NULL)))
            }
            ExprKind::Field {
                recv,
                name,
                optional,
            } => {
                let Some(r) = self.eval_link(recv, env)? else {
                    return Ok(None);
                };
                if *optional && self.is_nullish(&r)? {
                    return Ok(None);
                }
                at(self.get_field(&r, &name.text), name.span).map(Some)
            }
            ExprKind::Call {
                callee,
                args,
                optional,
            } => {
                let args_span = Span {
                    start: callee.span.end,
                    end: e.span.end,
                };
                if let ExprKind::Field {
                    recv,
                    name,
                    optional: field_optional,
                } = &callee.kind
                {
                    let Some(r) = self.eval_link(recv, env)? else {
                        return Ok(None);
                    };
                    if *field_optional && self.is_nullish(&r)? {
                        return Ok(None);
                    }
                    let argv = self.eval_args(args, env)?;
                    self.call_span = Some(args_span);
                    return at(self.call_method(&r, &name.text, argv), args_span).map(Some);
                }
                let Some(f) = self.eval_link(callee, env)? else {
                    return Ok(None);
                };
                if *optional && self.is_nullish(&f)? {
                    return Ok(None);
                }
                let argv = self.eval_args(args, env)?;
                self.call_span = Some(args_span);
                at(self.call(&f, argv), args_span).map(Some)
            }
            ExprKind::Index {
                recv,
                args,
                optional,
            } => {
                let Some(r) = self.eval_link(recv, env)? else {
                    return Ok(None);
                };
                if *optional && self.is_nullish(&r)? {
                    return Ok(None);
                }
                let argv = self.eval_args(args, env)?;
                at(self.index(&r, argv), e.span).map(Some)
            }
            ExprKind::NonNull(inner) => {
                // A `?.` that short-circuited still meets this `!`: `a?.b!` with a null
                // `a` is a `null_value` error.
                let v = self.eval_link(inner, env)?.unwrap_or(Value::NULL);
                at(self.non_null(v), e.span).map(Some)
            }
            _ => self.eval(e, env).map(Some),
        }
    }

    fn eval_args(&mut self, args: &[Expr], env: &Env) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(self.eval(a, env)?);
        }
        Ok(out)
    }

    fn eval_binary(
        &mut self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        env: &Env,
        span: Span,
    ) -> R<Value> {
        match op {
            BinOp::And | BinOp::Or => {
                let l = self.eval(lhs, env)?;
                let lb = expect_bool(&l, op, lhs.span)?;
                if (op == BinOp::And && !lb) || (op == BinOp::Or && lb) {
                    return Ok(Value::Bool(lb));
                }
                let r = self.eval(rhs, env)?;
                Ok(Value::Bool(expect_bool(&r, op, rhs.span)?))
            }
            BinOp::Nullish => {
                let l = self.eval(lhs, env)?;
                if self.is_nullish(&l)? {
                    self.eval(rhs, env)
                } else {
                    Ok(l)
                }
            }
            _ => {
                let l = self.eval(lhs, env)?;
                let r = self.eval(rhs, env)?;
                at(self.binary(op, &l, &r), span)
            }
        }
    }

    /// Applies a (non short-circuiting) binary operator.
    pub fn binary(&mut self, op: BinOp, l: &Value, r: &Value) -> R<Value> {
        match op {
            BinOp::Add => self.add(l, r),
            BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::Pow => ops::arith(op, l, r),
            BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => ops::bitwise(op, l, r),
            BinOp::Eq => self.equals(l, r).map(Value::Bool),
            BinOp::Ne => self.equals(l, r).map(|b| Value::Bool(!b)),
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
                self.compare_op(op, l, r).map(Value::Bool)
            }
            BinOp::Isa => self.isa(l, r).map(Value::Bool),
            BinOp::Match | BinOp::NotMatch => fail(
                ErrorCode::InvalidFunctionInvocation,
                format!(
                    "The function `{}` does not exist on `{}`",
                    op.symbol(),
                    l.type_name()
                ),
            ),
            BinOp::And | BinOp::Or | BinOp::Nullish => fail(
                ErrorCode::Internal,
                "short-circuit operator reached the strict path",
            ),
        }
    }

    fn add(&mut self, l: &Value, r: &Value) -> R<Value> {
        if let Value::Str(s) = l {
            let rhs = self.display(r)?;
            let mut out = String::with_capacity(s.len() + rhs.len());
            out.push_str(s);
            out.push_str(&rhs);
            return stdlib::string::checked_string(out);
        }
        ops::arith(BinOp::Add, l, r)
    }

    /// Looks a free identifier up: local bindings, then built-ins, then the database's
    /// collections and functions.
    fn resolve(&mut self, name: &str, env: &Env, span: Span) -> R<Value> {
        if let Some(v) = env.lookup(name) {
            return Ok(v.clone());
        }
        if stdlib::is_extension_module(name)
            && let Some(v) = self.schema_value(name)
        {
            return Ok(v);
        }
        if let Some(v) = stdlib::global(name) {
            return Ok(v);
        }
        if let Some(v) = self.schema_value(name) {
            return Ok(v);
        }
        Err(with_span(
            err(
                ErrorCode::UnboundVariable,
                format!("Unbound variable `{name}`"),
            ),
            span,
        ))
    }

    /// Calls any callable value.
    pub fn call(&mut self, f: &Value, args: Vec<Value>) -> R<Value> {
        match f {
            Value::Func(func) => self.call_func(func, args),
            Value::Module(m) => stdlib::module_apply(self, &m.clone(), args),
            Value::Null(_) => fail(ErrorCode::InvalidNullAccess, "Cannot call null."),
            other => fail(
                ErrorCode::TypeMismatch,
                format!("`{}` is not a function.", other.type_name()),
            ),
        }
    }

    pub fn call_func(&mut self, func: &Rc<Func>, args: Vec<Value>) -> R<Value> {
        self.calls += 1;
        let result = match &**func {
            Func::Native(native) => {
                check_arity(native.arity, args.len())?;
                (native.imp)(self, &native.recv, args)
            }
            Func::Udf(def) => self.call_udf(def, args),
            Func::Lambda(closure) => {
                check_arity(closure.arity(), args.len())?;
                if self.call_depth >= MAX_CALL_DEPTH {
                    return fail(
                        ErrorCode::StackOverflow,
                        "Stack overflow: too many nested function calls.",
                    );
                }
                self.call_depth += 1;
                let result = self.run_closure(closure, args);
                self.call_depth -= 1;
                result
            }
        };
        check_depth(result?)
    }

    /// Runs a user-defined function: its body sees only globals and its parameters, and an
    /// error inside it is reported against the function's source.
    fn call_udf(
        &mut self,
        def: &std::sync::Arc<crate::schema::function::FunctionDef>,
        args: Vec<Value>,
    ) -> R<Value> {
        self.check_call(def, &args)?;
        let lambda = def.lambda()?;
        let label = format!("udf:{}", def.name);
        self.run_as_function_role(def, |it| {
            it.call_schema_lambda(&lambda, &label, &def.body, args)
        })
    }

    /// Runs a lambda stored in the schema (function body, check, computed field) with a
    /// fresh environment. `label` names its source in error summaries (`udf:Name`).
    pub fn call_schema_lambda(
        &mut self,
        lambda: &std::sync::Arc<testudo_fql::ast::Lambda>,
        label: &str,
        source: &str,
        args: Vec<Value>,
    ) -> R<Value> {
        let arity = if lambda.variadic.is_some() {
            super::Arity::AtLeast(lambda.params.len())
        } else {
            super::Arity::Exactly(lambda.params.len())
        };
        check_arity(arity, args.len())?;
        if self.call_depth >= MAX_CALL_DEPTH {
            return fail(
                ErrorCode::StackOverflow,
                "Stack overflow: too many nested function calls.",
            );
        }
        self.call_depth += 1;
        let env = bind_params(&Env::default(), lambda, args);
        let result = self.eval(&lambda.body, &env);
        self.call_depth -= 1;
        result.map_err(|mut e| {
            if e.span.is_some() && e.origin.is_none() {
                e.origin = Some((label.to_string(), std::rc::Rc::from(source)));
            }
            e
        })
    }

    fn run_closure(&mut self, closure: &Closure, args: Vec<Value>) -> R<Value> {
        match &closure.code {
            LambdaCode::Short(body) => {
                let arg = args.into_iter().next().unwrap_or(Value::NULL);
                let env = closure.env.bind(Rc::from(IMPLICIT_ARG), arg);
                self.eval(body, &env)
            }
            LambdaCode::Full(lambda) => {
                let env = bind_params(&closure.env, lambda, args);
                self.eval(&lambda.body, &env)
            }
        }
    }

    /// Calls a callback with one argument, checking first that it can take it
    /// (`invalid_argument` otherwise, as Fauna reports callback arity).
    pub fn call_callback(&mut self, f: &Rc<Func>, param: &str, args: Vec<Value>) -> R<Value> {
        let arity = func_arity(f);
        if !arity.accepts(args.len()) {
            let n = args.len();
            return fail(
                ErrorCode::InvalidArgument,
                format!(
                    "`{param}` should accept {n} parameter{}, provided function requires {} parameter{}.",
                    plural(n),
                    arity.min(),
                    plural(arity.min())
                ),
            );
        }
        self.call_func(f, args)
    }

    pub fn get_field(&mut self, recv: &Value, name: &str) -> R<Value> {
        match recv {
            Value::Null(_) => fail(
                ErrorCode::InvalidNullAccess,
                format!("Cannot access `{name}` on null."),
            ),
            Value::Object(o) => Ok(o
                .get(name)
                .cloned()
                .unwrap_or_else(|| Value::Null(NullCause::MissingField(name.to_string())))),
            Value::Doc(r) => self.doc_field(*r, name),
            _ => {
                if let Some(v) = stdlib::field(self, recv, name)? {
                    return Ok(v);
                }
                if let Some(m) = stdlib::method(recv, name) {
                    return Ok(Value::Func(Rc::new(Func::Native(Native {
                        name: m.name,
                        recv: recv.clone(),
                        arity: m.arity,
                        imp: m.imp,
                    }))));
                }
                fail(
                    ErrorCode::InvalidFunctionInvocation,
                    format!(
                        "The field `{name}` does not exist on `{}`",
                        recv.type_name()
                    ),
                )
            }
        }
    }

    pub fn call_method(&mut self, recv: &Value, name: &str, args: Vec<Value>) -> R<Value> {
        if let Value::Null(_) = recv {
            return fail(
                ErrorCode::InvalidNullAccess,
                format!("Cannot access `{name}` on null."),
            );
        }
        if let Some(m) = stdlib::method(recv, name) {
            self.calls += 1;
            check_arity(m.arity, args.len())?;
            return check_depth((m.imp)(self, recv, args)?);
        }
        if let Value::Module(Module::Collection(c)) = recv
            && let Some(index) = self
                .schema
                .collection_by_id(c.id)
                .and_then(|d| d.indexes.index(name).cloned())
        {
            self.calls += 1;
            return stdlib::collection::index_call(self, c.id, index, args);
        }
        let field = match recv {
            Value::Object(o) => o.get(name).cloned(),
            Value::Doc(r) => Some(self.doc_field(*r, name)?),
            _ => match stdlib::field(self, recv, name)? {
                Some(v) => Some(v),
                None => {
                    return fail(
                        ErrorCode::InvalidFunctionInvocation,
                        format!(
                            "The function `{name}` does not exist on `{}`",
                            recv.type_name()
                        ),
                    );
                }
            },
        };
        match field {
            Some(Value::Func(f)) => self.call_func(&f, args),
            Some(Value::Module(m)) => stdlib::module_apply(self, &m, args),
            Some(Value::Null(_)) | None => fail(
                ErrorCode::InvalidFunctionInvocation,
                format!(
                    "The function `{name}` does not exist on `{}`",
                    recv.type_name()
                ),
            ),
            Some(other) => fail(
                ErrorCode::InvalidFunctionInvocation,
                format!(
                    "`{name}`: Expected a function, found `{}`",
                    other.type_name()
                ),
            ),
        }
    }

    fn index(&mut self, recv: &Value, args: Vec<Value>) -> R<Value> {
        let [key] = <[Value; 1]>::try_from(args).map_err(|a| {
            err(
                ErrorCode::InvalidFunctionInvocation,
                format!(
                    "callee function expects exactly 1 argument, but {} were provided.",
                    a.len()
                ),
            )
        })?;
        match (recv, &key) {
            (Value::Null(_), _) => {
                fail(ErrorCode::InvalidNullAccess, "Cannot access `[]` on null.")
            }
            (Value::Array(_) | Value::Str(_), _) => self.call_method(recv, "at", vec![key]),
            (Value::Object(o), Value::Str(k)) => Ok(o
                .get(&**k)
                .cloned()
                .unwrap_or_else(|| Value::Null(NullCause::MissingField(k.to_string())))),
            (Value::Doc(r), Value::Str(k)) => self.doc_field(*r, k),
            (Value::Object(_) | Value::Doc(_), other) => fail(
                ErrorCode::InvalidArgument,
                format!(
                    "expected value for `key` of type String, received {}",
                    other.type_name()
                ),
            ),
            (other, _) => fail(
                ErrorCode::InvalidFunctionInvocation,
                format!(
                    "The function `[]` does not exist on `{}`",
                    other.type_name()
                ),
            ),
        }
    }

    fn non_null(&mut self, v: Value) -> R<Value> {
        match &v {
            Value::Null(cause) => fail(ErrorCode::NullValue, null_message(cause)),
            Value::Doc(r) => {
                self.require_doc(*r)?;
                Ok(v)
            }
            _ => Ok(v),
        }
    }

    /// Is `v` null or a document that does not exist (for `??`, `?.` and `== null`)?
    pub fn is_nullish(&mut self, v: &Value) -> R<bool> {
        match v {
            Value::Null(_) => Ok(true),
            Value::Doc(r) => Ok(!self.doc_exists(*r)?),
            _ => Ok(false),
        }
    }

    /// `e { ... }`: builds a struct per value; arrays project element-wise and sets lazily;
    /// other values pass through unchanged.
    pub fn project(&mut self, v: &Value, fields: &[ProjField], env: &Env) -> R<Value> {
        match v {
            Value::Object(_) | Value::Doc(_) => {
                if self.is_nullish(v)? {
                    return Ok(Value::NULL);
                }
                let mut out = super::Object::with_capacity(fields.len());
                for f in fields {
                    let value = match &f.value {
                        ProjValue::Field => at(self.get_field(v, &f.name.text), f.span)?,
                        ProjValue::Nested(inner) => {
                            let field = at(self.get_field(v, &f.name.text), f.span)?;
                            self.project(&field, inner, env)?
                        }
                        ProjValue::Expr(e) => match &e.kind {
                            ExprKind::ShortLambda(body) => {
                                let env = env.bind(Rc::from(IMPLICIT_ARG), v.clone());
                                self.eval(body, &env)?
                            }
                            _ => self.eval(e, env)?,
                        },
                    };
                    out.insert(f.name.text.clone(), value);
                }
                Ok(Value::object(out))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.project(item, fields, env)?);
                }
                Ok(Value::array(out))
            }
            Value::Set(set) => Ok(crate::set::project(set, fields, env, self.source.clone())),
            other => Ok(other.clone()),
        }
    }
}

/// The environment name a template placeholder's value is bound to. `$` is not an
/// identifier character, so no user variable can shadow it, and closures capture
/// placeholders like any other variable.
pub fn placeholder_name(i: usize) -> String {
    format!("${i}")
}

/// Binds a lambda's parameters (`_` binds nothing; a variadic parameter takes the rest).
fn bind_params(env: &Env, lambda: &Lambda, args: Vec<Value>) -> Env {
    let mut env = env.clone();
    let mut args = args.into_iter();
    for p in &lambda.params {
        let v = args.next().unwrap_or(Value::NULL);
        if let Some(name) = p {
            env = env.bind(Rc::from(name.text.as_str()), v);
        }
    }
    if let Some(rest) = &lambda.variadic {
        let rest_values: Vec<Value> = args.collect();
        if let Some(name) = rest {
            env = env.bind(Rc::from(name.text.as_str()), Value::array(rest_values));
        }
    }
    env
}

/// Refuses values nested deeper than [`MAX_VALUE_DEPTH`]. Checked wherever a value can
/// grow deeper: literals, and every function or method result (so a `fold` that wraps its
/// accumulator stops at the limit instead of building a structure nobody can walk).
fn check_depth(v: Value) -> R<Value> {
    if v.depth() > MAX_VALUE_DEPTH {
        return fail(
            ErrorCode::ValueTooLarge,
            format!("Value nests too deeply: the limit is {MAX_VALUE_DEPTH} levels."),
        );
    }
    Ok(v)
}

pub fn func_arity(f: &Func) -> super::Arity {
    match f {
        Func::Lambda(c) => c.arity(),
        Func::Native(n) => n.arity,
        Func::Udf(def) => match def.lambda() {
            Ok(l) if l.variadic.is_some() => super::Arity::AtLeast(l.params.len()),
            Ok(l) => super::Arity::Exactly(l.params.len()),
            Err(_) => super::Arity::AtLeast(0),
        },
    }
}

pub fn check_arity(arity: super::Arity, n: usize) -> R<()> {
    if arity.accepts(n) {
        return Ok(());
    }
    let provided = if n == 1 {
        "1 was provided".to_string()
    } else {
        format!("{n} were provided")
    };
    let expected = match arity {
        super::Arity::Exactly(k) => format!("exactly {k} argument{}", plural(k)),
        super::Arity::AtLeast(k) => format!("at least {k} argument{}", plural(k)),
        super::Arity::Between(lo, hi) => format!("between {lo} and {hi} arguments"),
    };
    fail(
        ErrorCode::InvalidFunctionInvocation,
        format!("callee function expects {expected}, but {provided}."),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn expect_bool(v: &Value, op: BinOp, span: Span) -> R<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(with_span(
            err(
                ErrorCode::TypeMismatch,
                format!(
                    "expected type: Boolean for `{}`, received {}",
                    op.symbol(),
                    other.type_name()
                ),
            ),
            span,
        )),
    }
}

pub fn null_message(cause: &NullCause) -> String {
    match cause {
        NullCause::Literal => "Null literal value".into(),
        NullCause::MissingField(f) => format!("Null value, due to missing field `{f}`"),
        NullCause::NoSuchElement(what) => format!("Null value, due to {what}"),
        NullCause::NoValue => "Null value, due to a function that returns nothing".into(),
    }
}

fn with_span(mut e: Box<super::EvalError>, span: Span) -> Box<super::EvalError> {
    e.span = Some(span);
    e
}

fn stack_overflow(span: Span) -> Box<super::EvalError> {
    with_span(
        err(
            ErrorCode::StackOverflow,
            "Stack overflow: the query nests too deeply.",
        ),
        span,
    )
}
