//! Pagination cursors: a set and a position, sealed so a client can hold them but not read
//! or forge them.
//!
//! A cursor carries everything needed to continue a page in a later request: the database
//! it belongs to, the snapshot time of the query that made it, the set's description
//! (functions travel as their FQL source plus the values they captured) and the position
//! after the page. It is sealed with AES-256-GCM under the server's cursor key, with the
//! database id in the associated data: a cursor from another database, another server, or
//! with one byte changed is `invalid_cursor`.
//!
//! **Invariants:** decoding never trusts the input (bounded depth, bounded lengths, every
//! failure is `invalid_cursor`); continuing a cursor reads at its original snapshot time.

use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use testudo_fql::ast::{self, Expr, ExprKind, TemplatePartKind};
use testudo_model::{CollId, Date, DbId, DocId, Time, Ts};

use super::{Ordering, Pos, Projection, SetExpr, SetValue};
use crate::api::ErrorCode;
use crate::eval::value::{CollHandle, Native};
use crate::eval::{Closure, DocRef, Env, Func, Interp, LambdaCode, Module, R, Value, err, fail};
use crate::stdlib;

const FORMAT: u8 = 2;
const MAX_DEPTH: usize = 64;

/// What a cursor restores.
pub struct Restored {
    pub ts: Ts,
    /// Made inside `at(ts) { ... }` in the past: continuing it reads history.
    pub history: bool,
    pub set: SetValue,
    pub pos: Pos,
    pub page_size: usize,
}

pub struct CursorKey(LessSafeKey);

impl CursorKey {
    pub fn new(bytes: &[u8; 32]) -> Option<CursorKey> {
        Some(CursorKey(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, bytes).ok()?,
        )))
    }
}

fn aad(db: DbId) -> Vec<u8> {
    let mut a = b"testudo-cursor-v1".to_vec();
    a.extend_from_slice(&db.0.to_be_bytes());
    a
}

fn invalid() -> Box<crate::eval::EvalError> {
    err(ErrorCode::InvalidCursor, "Invalid cursor.")
}

impl Interp<'_> {
    /// Seals a cursor for continuing `set` after `pos`.
    pub fn seal_cursor(&mut self, set: &SetValue, pos: &Pos, page_size: usize) -> R<String> {
        let mut w = Writer::default();
        w.u8(FORMAT);
        w.u64(self.read_at.map_or(self.now(), |t| t.min(self.now())).0);
        w.u8(u8::from(self.reading_history()));
        w.u64(page_size as u64);
        w.set_expr(&set.expr, 0)?;
        w.pos(pos);
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| err(ErrorCode::Internal, "random number generator failed"))?;
        let mut sealed = w.out;
        self.shared
            .cursor_key
            .0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(self.db())),
                &mut sealed,
            )
            .map_err(|_| err(ErrorCode::Internal, "cursor sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a cursor made by [`Interp::seal_cursor`] in this database.
    pub fn open_cursor(&mut self, text: &str) -> R<Restored> {
        let raw = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| invalid())?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(invalid());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| invalid())?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .shared
            .cursor_key
            .0
            .open_in_place(nonce, Aad::from(aad(self.db())), &mut sealed)
            .map_err(|_| invalid())?;
        let mut r = Reader {
            buf: plain.to_vec(),
            at: 0,
        };
        if r.u8()? != FORMAT {
            return Err(invalid());
        }
        let ts = Ts(r.u64()?);
        let history = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(invalid()),
        };
        let page_size = usize::try_from(r.u64()?).map_err(|_| invalid())?;
        let expr = r.set_expr(self, 0)?;
        let pos = r.pos(0)?;
        if r.at != r.buf.len() {
            return Err(invalid());
        }
        Ok(Restored {
            ts,
            history,
            set: SetValue::with_page_size(expr, Some(page_size)),
            pos,
            page_size,
        })
    }
}

#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, b: u8) {
        self.out.push(b);
    }

    fn u64(&mut self, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn i64(&mut self, n: i64) {
        self.u64(((n << 1) ^ (n >> 63)) as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn pos(&mut self, p: &Pos) {
        match p {
            Pos::Start => self.u8(0),
            Pos::Key(k) => {
                self.u8(1);
                self.u64(*k);
            }
            Pos::Entry(suffix) => {
                self.u8(8);
                self.bytes(suffix);
            }
            Pos::Count(n) => {
                self.u8(2);
                self.u64(*n);
            }
            Pos::Take(inner, n) => {
                self.u8(3);
                self.pos(inner);
                self.u64(*n);
            }
            Pos::Dropped(inner) => {
                self.u8(4);
                self.pos(inner);
            }
            Pos::Concat { second, inner } => {
                self.u8(5);
                self.u8(u8::from(*second));
                self.pos(inner);
            }
            Pos::FlatMap { outer, inner } => {
                self.u8(6);
                self.pos(outer);
                self.u64(*inner);
            }
            Pos::Inner(inner) => {
                self.u8(7);
                self.pos(inner);
            }
        }
    }

    fn set_expr(&mut self, e: &SetExpr, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return fail(
                ErrorCode::ValueTooLarge,
                "Set is nested too deeply to paginate.",
            );
        }
        let d = depth + 1;
        match e {
            SetExpr::Index {
                coll,
                index,
                terms,
                from,
                to,
                at,
            } => {
                self.u8(13);
                self.u64(coll.0);
                self.str(&index.name);
                self.u64(index.id);
                self.data_list(Some(terms));
                self.data_list(from.as_deref());
                self.data_list(to.as_deref());
                self.opt_u64(at.map(|t| t.0));
            }
            SetExpr::Docs { coll, from, to, at } => {
                self.u8(0);
                self.u64(coll.0);
                self.opt_u64(from.map(|i| i.0));
                self.opt_u64(to.map(|i| i.0));
                self.opt_u64(at.map(|t| t.0));
            }
            SetExpr::Values(items) => {
                self.u8(1);
                self.u64(items.len() as u64);
                for v in items.iter() {
                    self.value(v, d)?;
                }
            }
            SetExpr::Sequence { from, until } => {
                self.u8(2);
                self.i64(*from);
                self.i64(*until);
            }
            SetExpr::Where(inner, f) | SetExpr::Map(inner, f) | SetExpr::FlatMap(inner, f) => {
                self.u8(match e {
                    SetExpr::Where(..) => 3,
                    SetExpr::Map(..) => 4,
                    _ => 5,
                });
                self.set_expr(inner, d)?;
                self.func(f, d)?;
            }
            SetExpr::Take(inner, n) | SetExpr::Drop(inner, n) => {
                self.u8(if matches!(e, SetExpr::Take(..)) { 6 } else { 7 });
                self.set_expr(inner, d)?;
                self.u64(*n);
            }
            SetExpr::Concat(a, b) => {
                self.u8(8);
                self.set_expr(a, d)?;
                self.set_expr(b, d)?;
            }
            SetExpr::Order(inner, orderings) => {
                self.u8(9);
                self.set_expr(inner, d)?;
                self.u64(orderings.len() as u64);
                for o in orderings.iter() {
                    self.u8(u8::from(o.descending));
                    match &o.key {
                        Some(f) => {
                            self.u8(1);
                            self.func(f, d)?;
                        }
                        None => self.u8(0),
                    }
                }
            }
            SetExpr::Reverse(inner) | SetExpr::Distinct(inner) => {
                self.u8(if matches!(e, SetExpr::Reverse(_)) {
                    10
                } else {
                    11
                });
                self.set_expr(inner, d)?;
            }
            SetExpr::Project(inner, p) => {
                self.u8(12);
                self.set_expr(inner, d)?;
                self.projection(p, d)?;
            }
        }
        Ok(())
    }

    fn data_list(&mut self, items: Option<&Vec<testudo_model::Data>>) {
        match items {
            Some(items) => {
                self.u8(1);
                self.bytes(&testudo_model::codec::encode_data(
                    &testudo_model::Data::Array(items.clone()),
                ));
            }
            None => self.u8(0),
        }
    }

    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(n) => {
                self.u8(1);
                self.u64(n);
            }
            None => self.u8(0),
        }
    }

    fn value(&mut self, v: &Value, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return fail(
                ErrorCode::ValueTooLarge,
                "Value is nested too deeply to paginate.",
            );
        }
        let d = depth + 1;
        match v {
            Value::Null(_) => self.u8(0),
            Value::Bool(b) => {
                self.u8(1);
                self.u8(u8::from(*b));
            }
            Value::Int(i) => {
                self.u8(2);
                self.i64(i64::from(*i));
            }
            Value::Long(l) => {
                self.u8(3);
                self.i64(*l);
            }
            Value::Double(f) => {
                self.u8(4);
                self.out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Value::Str(s) => {
                self.u8(5);
                self.str(s);
            }
            Value::Bytes(b) => {
                self.u8(6);
                self.bytes(b);
            }
            Value::Time(t) => {
                self.u8(7);
                self.i64(t.secs());
                self.u64(u64::from(t.subsec_nanos()));
            }
            Value::Date(dt) => {
                self.u8(8);
                self.i64(dt.days());
            }
            Value::Id(id) => {
                self.u8(9);
                self.u64(*id);
            }
            Value::Array(items) => {
                self.u8(10);
                self.u64(items.len() as u64);
                for i in items.iter() {
                    self.value(i, d)?;
                }
            }
            Value::Object(o) => {
                self.u8(11);
                self.u64(o.len() as u64);
                for (k, v) in o.iter() {
                    self.str(k);
                    self.value(v, d)?;
                }
            }
            Value::Doc(r) => {
                self.u8(12);
                self.u64(r.coll.0);
                self.u64(r.id.0);
            }
            Value::Module(Module::Builtin(name)) => {
                self.u8(13);
                self.str(name);
            }
            Value::Module(Module::Collection(c)) => {
                self.u8(14);
                self.u64(c.id.0);
                self.str(&c.name);
            }
            Value::Set(s) => {
                self.u8(15);
                self.opt_u64(s.page_size.map(|n| n as u64));
                self.set_expr(&s.expr, d)?;
            }
            Value::Func(f) => {
                self.u8(16);
                self.func(f, d)?;
            }
            Value::TxnTime => self.u8(17),
        }
        Ok(())
    }

    fn func(&mut self, f: &Func, depth: usize) -> R<()> {
        match f {
            Func::Lambda(c) => {
                self.u8(0);
                let (text, base) = lambda_text(c);
                self.str(&text);
                self.captures(&c.env, &text, base, depth)
            }
            Func::Native(n) => {
                self.u8(1);
                self.str(n.name);
                self.value(&n.recv, depth)
            }
            Func::Udf(u) => {
                self.u8(2);
                self.str(&u.name);
                Ok(())
            }
        }
    }

    fn projection(&mut self, p: &Projection, depth: usize) -> R<()> {
        let (text, base) = projection_text(p);
        self.str(&text);
        self.captures(&p.env, &text, base, depth)
    }

    /// Writes the values of every free name the code text may use, found in `env`.
    /// Placeholders are renumbered from `base` to count from 0 within the text.
    fn captures(&mut self, env: &Env, text: &str, base: usize, depth: usize) -> R<()> {
        let names = free_names(text);
        let mut found = Vec::new();
        for name in names {
            let lookup = match name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                Some(local) => crate::eval::placeholder_name(base + local),
                None => name.clone(),
            };
            if let Some(v) = env.lookup(&lookup) {
                found.push((name, v.clone()));
            }
        }
        self.u64(found.len() as u64);
        for (name, v) in found {
            self.str(&name);
            self.value(&v, depth)?;
        }
        Ok(())
    }
}

/// The FQL text of a closure, parseable as a lambda on its own, and how many placeholders
/// precede it in the original source.
fn lambda_text(c: &Closure) -> (String, usize) {
    let start = c.span.start as usize;
    let end = (c.span.end as usize).min(c.source.len());
    let text = c.source.get(start..end).unwrap_or("").to_string();
    let base = c
        .source
        .get(..start)
        .map_or(0, |s| s.matches('\u{FFFF}').count());
    match c.code {
        LambdaCode::Short(_) if !text.starts_with('(') => (format!("({text})"), base),
        _ => (text, base),
    }
}

fn projection_text(p: &Projection) -> (String, usize) {
    let (Some(first), Some(last)) = (p.fields.first(), p.fields.last()) else {
        return ("(x => x)".to_string(), 0);
    };
    let start = first.span.start as usize;
    let end = (last.span.end as usize).min(p.source.len());
    let inner = p.source.get(start..end).unwrap_or("");
    let base = p
        .source
        .get(..start)
        .map_or(0, |s| s.matches('\u{FFFF}').count());
    let param = fresh_name(inner);
    (format!("({param} => {param} {{ {inner} }})"), base)
}

/// A parameter name that does not occur in `text`.
fn fresh_name(text: &str) -> String {
    (0u32..)
        .map(|i| format!("p'{i}'"))
        .find(|candidate| !text.contains(candidate.as_str()))
        .unwrap_or_else(|| "p'".to_string())
}

/// Every identifier in `text` and every placeholder (as `$<n>`, numbered within `text`).
/// Over-approximates the free names; capturing a bound name is harmless.
fn free_names(text: &str) -> Vec<String> {
    let Ok(expr) =
        testudo_fql::parse_lambda_with_placeholders(text, text.matches('\u{FFFF}').count())
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    collect_names(&expr, &mut names);
    names.sort();
    names.dedup();
    names
}

fn collect_names(e: &Expr, out: &mut Vec<String>) {
    let mut visit = |e: &Expr| collect_names(e, out);
    match &e.kind {
        ExprKind::Ident(name) => out.push(name.clone()),
        ExprKind::Placeholder(i) => out.push(format!("${i}")),
        ExprKind::Template(parts) => {
            for p in parts {
                if let TemplatePartKind::Expr(inner) = &p.kind {
                    visit(inner);
                }
            }
        }
        ExprKind::Array(items) => items.iter().for_each(visit),
        ExprKind::Object(fields) => fields.iter().for_each(|(_, v)| visit(v)),
        ExprKind::Block(body) => body.iter().for_each(|s| collect_stmt(s, out)),
        ExprKind::Lambda(l) => visit(&l.body),
        ExprKind::ShortLambda(body) => visit(body),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            visit(cond);
            visit(then);
            if let Some(o) = otherwise {
                visit(o);
            }
        }
        ExprKind::At { ts, body } => {
            visit(ts);
            visit(body);
        }
        ExprKind::Unary { operand, .. } => visit(operand),
        ExprKind::Binary { lhs, rhs, .. } => {
            visit(lhs);
            visit(rhs);
        }
        ExprKind::Field { recv, .. } => visit(recv),
        ExprKind::Call { callee, args, .. } => {
            visit(callee);
            args.iter().for_each(visit);
        }
        ExprKind::Index { recv, args, .. } => {
            visit(recv);
            args.iter().for_each(visit);
        }
        ExprKind::NonNull(inner) | ExprKind::OptionalChain(inner) => visit(inner),
        ExprKind::Projection { recv, fields } => {
            visit(recv);
            collect_proj(fields, out);
        }
        _ => {}
    }
}

fn collect_stmt(s: &ast::Stmt, out: &mut Vec<String>) {
    match s {
        ast::Stmt::Let { value, .. } => collect_names(value, out),
        ast::Stmt::Expr(e) => collect_names(e, out),
    }
}

fn collect_proj(fields: &[ast::ProjField], out: &mut Vec<String>) {
    for f in fields {
        match &f.value {
            ast::ProjValue::Field => {}
            ast::ProjValue::Nested(inner) => collect_proj(inner, out),
            ast::ProjValue::Expr(e) => collect_names(e, out),
        }
    }
}

struct Reader {
    buf: Vec<u8>,
    at: usize,
}

impl Reader {
    fn u8(&mut self) -> R<u8> {
        let b = *self.buf.get(self.at).ok_or_else(invalid)?;
        self.at += 1;
        Ok(b)
    }

    fn u64(&mut self) -> R<u64> {
        let mut n: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(invalid());
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(invalid())
    }

    fn i64(&mut self) -> R<i64> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn len(&mut self) -> R<usize> {
        let n = usize::try_from(self.u64()?).map_err(|_| invalid())?;
        if n > self.buf.len() - self.at {
            return Err(invalid());
        }
        Ok(n)
    }

    fn bytes(&mut self) -> R<Vec<u8>> {
        let n = self.len()?;
        let out = self
            .buf
            .get(self.at..self.at + n)
            .ok_or_else(invalid)?
            .to_vec();
        self.at += n;
        Ok(out)
    }

    fn str(&mut self) -> R<String> {
        String::from_utf8(self.bytes()?).map_err(|_| invalid())
    }

    fn data_list(&mut self) -> R<Option<Vec<testudo_model::Data>>> {
        match self.u8()? {
            0 => Ok(None),
            1 => match testudo_model::codec::decode_data(&self.bytes()?) {
                Ok(testudo_model::Data::Array(items)) => Ok(Some(items)),
                _ => Err(invalid()),
            },
            _ => Err(invalid()),
        }
    }

    fn opt_u64(&mut self) -> R<Option<u64>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(invalid()),
        }
    }

    fn pos(&mut self, depth: usize) -> R<Pos> {
        if depth > MAX_DEPTH {
            return Err(invalid());
        }
        let d = depth + 1;
        Ok(match self.u8()? {
            0 => Pos::Start,
            1 => Pos::Key(self.u64()?),
            2 => Pos::Count(self.u64()?),
            3 => {
                let inner = self.pos(d)?;
                Pos::Take(Box::new(inner), self.u64()?)
            }
            4 => Pos::Dropped(Box::new(self.pos(d)?)),
            5 => {
                let second = self.u8()? == 1;
                Pos::Concat {
                    second,
                    inner: Box::new(self.pos(d)?),
                }
            }
            6 => {
                let outer = self.pos(d)?;
                Pos::FlatMap {
                    outer: Box::new(outer),
                    inner: self.u64()?,
                }
            }
            7 => Pos::Inner(Box::new(self.pos(d)?)),
            8 => Pos::Entry(self.bytes()?),
            _ => return Err(invalid()),
        })
    }

    fn set_expr(&mut self, it: &mut Interp<'_>, depth: usize) -> R<Rc<SetExpr>> {
        if depth > MAX_DEPTH {
            return Err(invalid());
        }
        let d = depth + 1;
        let e = match self.u8()? {
            0 => SetExpr::Docs {
                coll: CollId(self.u64()?),
                from: self.opt_u64()?.map(DocId),
                to: self.opt_u64()?.map(DocId),
                at: self.opt_u64()?.map(Ts),
            },
            1 => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(it, d)?);
                }
                SetExpr::Values(Rc::new(crate::eval::List::new(items)))
            }
            2 => SetExpr::Sequence {
                from: self.i64()?,
                until: self.i64()?,
            },
            tag @ 3..=5 => {
                let inner = self.set_expr(it, d)?;
                let f = self.func(it, d)?;
                match tag {
                    3 => SetExpr::Where(inner, f),
                    4 => SetExpr::Map(inner, f),
                    _ => SetExpr::FlatMap(inner, f),
                }
            }
            tag @ (6 | 7) => {
                let inner = self.set_expr(it, d)?;
                let n = self.u64()?;
                if tag == 6 {
                    SetExpr::Take(inner, n)
                } else {
                    SetExpr::Drop(inner, n)
                }
            }
            8 => {
                let a = self.set_expr(it, d)?;
                SetExpr::Concat(a, self.set_expr(it, d)?)
            }
            9 => {
                let inner = self.set_expr(it, d)?;
                let n = self.len()?;
                let mut orderings = Vec::with_capacity(n);
                for _ in 0..n {
                    let descending = self.u8()? == 1;
                    let key = match self.u8()? {
                        0 => None,
                        1 => Some(self.func(it, d)?),
                        _ => return Err(invalid()),
                    };
                    orderings.push(Ordering { key, descending });
                }
                SetExpr::Order(inner, Rc::new(orderings))
            }
            10 => SetExpr::Reverse(self.set_expr(it, d)?),
            11 => SetExpr::Distinct(self.set_expr(it, d)?),
            12 => {
                let inner = self.set_expr(it, d)?;
                SetExpr::Project(inner, self.projection(it, d)?)
            }
            13 => {
                let coll = CollId(self.u64()?);
                let name = self.str()?;
                let id = self.u64()?;
                // The index must still be the one the cursor was made from.
                let index = it
                    .schema
                    .collection_by_id(coll)
                    .and_then(|c| c.indexes.index(&name).cloned())
                    .filter(|i| i.id == id && i.queryable())
                    .ok_or_else(invalid)?;
                let terms = Rc::new(self.data_list()?.ok_or_else(invalid)?);
                let from = self.data_list()?.map(Rc::new);
                let to = self.data_list()?.map(Rc::new);
                let at = self.opt_u64()?.map(Ts);
                SetExpr::Index {
                    coll,
                    index,
                    terms,
                    from,
                    to,
                    at,
                }
            }
            _ => return Err(invalid()),
        };
        Ok(Rc::new(e))
    }

    fn value(&mut self, it: &mut Interp<'_>, depth: usize) -> R<Value> {
        if depth > MAX_DEPTH {
            return Err(invalid());
        }
        let d = depth + 1;
        Ok(match self.u8()? {
            0 => Value::NULL,
            1 => Value::Bool(self.u8()? == 1),
            2 => Value::Int(i32::try_from(self.i64()?).map_err(|_| invalid())?),
            3 => Value::Long(self.i64()?),
            4 => {
                let bytes: [u8; 8] = self
                    .buf
                    .get(self.at..self.at + 8)
                    .ok_or_else(invalid)?
                    .try_into()
                    .map_err(|_| invalid())?;
                self.at += 8;
                Value::Double(f64::from_bits(u64::from_be_bytes(bytes)))
            }
            5 => Value::string(self.str()?),
            6 => Value::Bytes(Rc::from(self.bytes()?)),
            7 => {
                let secs = self.i64()?;
                let nanos = self.u64()?;
                let t = Time::from_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
                    .ok_or_else(invalid)?;
                Value::Time(t)
            }
            8 => Value::Date(Date::from_days(self.i64()?)),
            9 => Value::Id(self.u64()?),
            10 => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(it, d)?);
                }
                Value::array(items)
            }
            11 => {
                let n = self.len()?;
                let mut o = crate::eval::Object::with_capacity(n);
                for _ in 0..n {
                    let k = self.str()?;
                    let v = self.value(it, d)?;
                    o.insert(k, v);
                }
                Value::object(o)
            }
            12 => Value::Doc(DocRef {
                coll: CollId(self.u64()?),
                id: DocId(self.u64()?),
            }),
            13 => {
                let name = self.str()?;
                stdlib::global(&name)
                    .filter(|v| matches!(v, Value::Module(_)))
                    .ok_or_else(invalid)?
            }
            14 => {
                let id = CollId(self.u64()?);
                let name = self.str()?;
                Value::Module(Module::Collection(Rc::new(CollHandle { id, name })))
            }
            15 => {
                let page_size = self.opt_u64()?.and_then(|n| usize::try_from(n).ok());
                let expr = self.set_expr(it, d)?;
                Value::Set(Rc::new(SetValue::with_page_size(expr, page_size)))
            }
            16 => Value::Func(self.func(it, d)?),
            17 => Value::TxnTime,
            _ => return Err(invalid()),
        })
    }

    fn func(&mut self, it: &mut Interp<'_>, depth: usize) -> R<Rc<Func>> {
        match self.u8()? {
            0 => {
                let text = self.str()?;
                let env = self.captures(it, depth)?;
                let expr = parse_code(&text)?;
                let source: Rc<str> = Rc::from(text.as_str());
                let span = expr.span;
                let code = match expr.kind {
                    ExprKind::Lambda(l) => LambdaCode::Full(l),
                    ExprKind::ShortLambda(body) => LambdaCode::Short(body),
                    _ => return Err(invalid()),
                };
                Ok(Rc::new(Func::Lambda(Closure {
                    code,
                    depth: 1 + env.max_depth(),
                    env,
                    source,
                    span,
                })))
            }
            1 => {
                let name = self.str()?;
                let recv = self.value(it, depth)?;
                if recv.is_null() {
                    return match stdlib::global(&name) {
                        Some(Value::Func(f)) => Ok(f),
                        _ => Err(invalid()),
                    };
                }
                let m = stdlib::method(&recv, &name).ok_or_else(invalid)?;
                Ok(Rc::new(Func::Native(Native {
                    name: m.name,
                    recv,
                    arity: m.arity,
                    imp: m.imp,
                })))
            }
            2 => {
                let name = self.str()?;
                match it.schema_value(&name) {
                    Some(Value::Func(f)) => Ok(f),
                    _ => Err(invalid()),
                }
            }
            _ => Err(invalid()),
        }
    }

    fn projection(&mut self, it: &mut Interp<'_>, depth: usize) -> R<Rc<Projection>> {
        let text = self.str()?;
        let env = self.captures(it, depth)?;
        let expr = parse_code(&text)?;
        let ExprKind::Lambda(l) = &expr.kind else {
            return Err(invalid());
        };
        let ExprKind::Projection { fields, .. } = &l.body.kind else {
            return Err(invalid());
        };
        Ok(Rc::new(Projection {
            fields: fields.clone(),
            env,
            source: Rc::from(text.as_str()),
        }))
    }

    fn captures(&mut self, it: &mut Interp<'_>, depth: usize) -> R<Env> {
        let n = self.len()?;
        let mut env = Env::default();
        for _ in 0..n {
            let name = self.str()?;
            let v = self.value(it, depth + 1)?;
            env = env.bind(Rc::from(name.as_str()), v);
        }
        Ok(env)
    }
}

fn parse_code(text: &str) -> R<Expr> {
    testudo_fql::parse_lambda_with_placeholders(text, text.matches('\u{FFFF}').count())
        .map_err(|_| invalid())
}
