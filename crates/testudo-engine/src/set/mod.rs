//! Lazy sets: a description of a sequence (`C.all().where(...).map(...)`) that is read only
//! when consumed, a page at a time.
//!
//! Every node can report its position after the last element it gave, and can be reopened
//! at such a position, so a page's `after` cursor continues exactly where the page ended
//! without re-reading what came before (collection scans resume at the next document id).
//! Nodes that must see everything first (`order`, `reverse`, `distinct`) resume by count.
//!
//! **Invariants:** set callbacks run read-only (`invalid_effect` on writes); documents a
//! scan yields pass the authorization gate (denied ones are skipped, never an error);
//! anything that gathers a whole set in memory stops at [`MAX_MATERIALIZED`] elements.

pub mod cursor;

use std::cmp::Ordering as CmpOrdering;
use std::rc::Rc;

use testudo_fql::ast::ProjField;
use testudo_model::{CollId, DocId, Ts};
use testudo_storage::ScanOrder;

use crate::api::ErrorCode;
use crate::docs::DocState;
use crate::eval::{DocRef, Env, Func, Interp, List, R, Value, fail, ops};
use crate::keys;

/// The default number of elements in a page.
pub const DEFAULT_PAGE_SIZE: usize = 16;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 16_000;
/// The most elements an operation may hold in memory at once (`order`, `toArray`, ...).
pub const MAX_MATERIALIZED: usize = 100_000;

pub struct SetValue {
    pub expr: Rc<SetExpr>,
    pub page_size: Option<usize>,
    /// How deeply the description nests (see `Value::depth`).
    pub depth: u32,
}

impl SetValue {
    pub fn new(expr: SetExpr) -> SetValue {
        SetValue::with_page_size(Rc::new(expr), None)
    }

    pub fn with_page_size(expr: Rc<SetExpr>, page_size: Option<usize>) -> SetValue {
        let depth = expr_depth(&expr);
        SetValue {
            expr,
            page_size,
            depth,
        }
    }
}

/// The nesting depth of a set description, counting what its functions captured. Every
/// set is measured when built, and a query stops at `MAX_VALUE_DEPTH`, so this recursion
/// is bounded.
pub fn expr_depth(e: &SetExpr) -> u32 {
    let func = |f: &Func| match f {
        Func::Lambda(c) => c.depth,
        Func::Native(n) => n.recv.depth(),
        Func::Udf(_) => 1,
    };
    1 + match e {
        SetExpr::Docs { .. } | SetExpr::Sequence { .. } | SetExpr::Index { .. } => 0,
        SetExpr::Values(items) => items.depth(),
        SetExpr::Where(inner, f) | SetExpr::Map(inner, f) | SetExpr::FlatMap(inner, f) => {
            expr_depth(inner).max(func(f))
        }
        SetExpr::Take(inner, _)
        | SetExpr::Drop(inner, _)
        | SetExpr::Reverse(inner)
        | SetExpr::Distinct(inner) => expr_depth(inner),
        SetExpr::Concat(a, b) => expr_depth(a).max(expr_depth(b)),
        SetExpr::Order(inner, orderings) => orderings
            .iter()
            .filter_map(|o| o.key.as_deref().map(func))
            .fold(expr_depth(inner), u32::max),
        SetExpr::Project(inner, p) => expr_depth(inner).max(p.env.max_depth()),
    }
}

pub enum SetExpr {
    /// Documents of a collection in id order, ids within `[from, to]`, read at `at` (or the
    /// query's snapshot).
    Docs {
        coll: CollId,
        from: Option<DocId>,
        to: Option<DocId>,
        at: Option<Ts>,
    },
    /// Documents found through an index: entries with these terms, values within
    /// `[from, to]` (inclusive prefixes, in index order), read at `at`.
    Index {
        coll: CollId,
        index: std::sync::Arc<crate::index::IndexDef>,
        terms: Rc<Vec<testudo_model::Data>>,
        from: Option<Rc<Vec<testudo_model::Data>>>,
        to: Option<Rc<Vec<testudo_model::Data>>>,
        at: Option<Ts>,
    },
    /// The elements of an array, or a single value.
    Values(Rc<List>),
    /// `Set.sequence(from, until)`: integers `from..until`.
    Sequence {
        from: i64,
        until: i64,
    },
    Where(Rc<SetExpr>, Rc<Func>),
    Map(Rc<SetExpr>, Rc<Func>),
    FlatMap(Rc<SetExpr>, Rc<Func>),
    Take(Rc<SetExpr>, u64),
    Drop(Rc<SetExpr>, u64),
    Concat(Rc<SetExpr>, Rc<SetExpr>),
    Order(Rc<SetExpr>, Rc<Vec<Ordering>>),
    Reverse(Rc<SetExpr>),
    Distinct(Rc<SetExpr>),
    /// `set { a, b }`: a projection applied lazily to each element.
    Project(Rc<SetExpr>, Rc<Projection>),
}

/// One key of `order()`: a natural or computed key, ascending or descending.
pub struct Ordering {
    pub key: Option<Rc<Func>>,
    pub descending: bool,
}

/// A projection carried by a set: the fields and the environment their expressions close
/// over, with the source they came from (cursors carry it as text).
pub struct Projection {
    pub fields: Vec<ProjField>,
    pub env: Env,
    pub source: Rc<str>,
}

/// Where a set's iteration stands: enough to reopen it after the last element given.
#[derive(Clone, Debug, PartialEq)]
pub enum Pos {
    Start,
    /// A document scan: the id of the last document given.
    Key(u64),
    /// An index scan: the last entry given, after the index's prefix.
    Entry(Vec<u8>),
    /// Elements given so far (arrays, sequences, and nodes that resume by count).
    Count(u64),
    /// Inner position, elements taken so far.
    Take(Box<Pos>, u64),
    /// Inner position once the dropped elements are behind.
    Dropped(Box<Pos>),
    Concat {
        second: bool,
        inner: Box<Pos>,
    },
    /// The outer position before the current outer element, and how many of that element's
    /// inner elements were given.
    FlatMap {
        outer: Box<Pos>,
        inner: u64,
    },
    /// Position of the inner set (where, map, project).
    Inner(Box<Pos>),
}

/// A running iteration over a set.
pub trait SetIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>>;
    /// The position after the last element `next` returned.
    fn pos(&self) -> Pos;
}

/// Opens an iteration over `expr`, resuming after `pos`.
pub fn open(expr: &Rc<SetExpr>, pos: &Pos) -> R<Box<dyn SetIter>> {
    Ok(match &**expr {
        SetExpr::Docs { coll, from, to, at } => {
            let after = match pos {
                Pos::Start => None,
                Pos::Key(id) => Some(*id),
                _ => return bad_pos(),
            };
            Box::new(DocScan::new(*coll, *from, *to, *at, after))
        }
        SetExpr::Index {
            coll,
            index,
            terms,
            from,
            to,
            at,
        } => {
            let after = match pos {
                Pos::Start => None,
                Pos::Entry(suffix) => Some(suffix.clone()),
                _ => return bad_pos(),
            };
            Box::new(IndexScan::new(
                *coll,
                index.clone(),
                terms,
                from.as_deref(),
                to.as_deref(),
                *at,
                after,
            ))
        }
        SetExpr::Values(items) => Box::new(ValuesIter {
            items: items.clone(),
            next: count_of(pos)?,
        }),
        SetExpr::Sequence { from, until } => {
            let given = count_of(pos)?;
            Box::new(SequenceIter {
                next: from.saturating_add(i64::try_from(given).unwrap_or(i64::MAX)),
                until: *until,
                given,
            })
        }
        SetExpr::Where(inner, f) => Box::new(WhereIter {
            inner: open(inner, inner_pos(pos)?)?,
            pred: f.clone(),
        }),
        SetExpr::Map(inner, f) => Box::new(MapIter {
            inner: open(inner, inner_pos(pos)?)?,
            f: f.clone(),
        }),
        SetExpr::Project(inner, p) => Box::new(ProjectIter {
            inner: open(inner, inner_pos(pos)?)?,
            projection: p.clone(),
        }),
        SetExpr::FlatMap(outer, f) => {
            let (outer_pos, inner_given) = match pos {
                Pos::Start => (Pos::Start, 0),
                Pos::FlatMap { outer, inner } => ((**outer).clone(), *inner),
                _ => return bad_pos(),
            };
            Box::new(FlatMapIter {
                outer: open(outer, &outer_pos)?,
                outer_before: outer_pos,
                f: f.clone(),
                current: None,
                skip_inner: inner_given,
                inner_given,
            })
        }
        SetExpr::Take(inner, n) => {
            let (ipos, taken) = match pos {
                Pos::Start => (Pos::Start, 0),
                Pos::Take(p, t) => ((**p).clone(), *t),
                _ => return bad_pos(),
            };
            Box::new(TakeIter {
                inner: open(inner, &ipos)?,
                limit: *n,
                taken,
                last_pos: ipos,
            })
        }
        SetExpr::Drop(inner, n) => match pos {
            Pos::Start => Box::new(DropIter {
                inner: open(inner, &Pos::Start)?,
                to_drop: *n,
            }),
            Pos::Dropped(p) => Box::new(DropIter {
                inner: open(inner, p)?,
                to_drop: 0,
            }),
            _ => return bad_pos(),
        },
        SetExpr::Concat(a, b) => {
            let (second, ipos) = match pos {
                Pos::Start => (false, Pos::Start),
                Pos::Concat { second, inner } => (*second, (**inner).clone()),
                _ => return bad_pos(),
            };
            let first = if second { None } else { Some(open(a, &ipos)?) };
            let second_iter = if second { Some(open(b, &ipos)?) } else { None };
            Box::new(ConcatIter {
                first,
                second: second_iter,
                b: b.clone(),
                last: ipos,
                in_second: second,
            })
        }
        SetExpr::Order(_, _) | SetExpr::Reverse(_) | SetExpr::Distinct(_) => Box::new(Gathered {
            expr: expr.clone(),
            items: None,
            next: count_of(pos)?,
        }),
    })
}

fn bad_pos<T>() -> R<T> {
    fail(ErrorCode::InvalidCursor, "Invalid cursor.")
}

fn count_of(pos: &Pos) -> R<u64> {
    match pos {
        Pos::Start => Ok(0),
        Pos::Count(n) => Ok(*n),
        _ => bad_pos(),
    }
}

fn inner_pos(pos: &Pos) -> R<&Pos> {
    match pos {
        Pos::Start => Ok(&Pos::Start),
        Pos::Inner(p) => Ok(p),
        _ => bad_pos(),
    }
}

/// Scans a collection's documents, a growing batch at a time.
struct DocScan {
    coll: CollId,
    to: Option<DocId>,
    at: Option<Ts>,
    next_from: Option<DocId>,
    buffer: std::collections::VecDeque<DocRef>,
    batch: usize,
    exhausted: bool,
    last: Option<u64>,
}

impl DocScan {
    fn new(
        coll: CollId,
        from: Option<DocId>,
        to: Option<DocId>,
        at: Option<Ts>,
        after: Option<u64>,
    ) -> DocScan {
        let next_from = match after {
            Some(id) => id.checked_add(1).map(DocId),
            None => Some(from.unwrap_or(DocId(0))),
        };
        DocScan {
            coll,
            to,
            at,
            exhausted: next_from.is_none(),
            next_from,
            buffer: Default::default(),
            batch: DEFAULT_PAGE_SIZE + 1,
            last: after,
        }
    }

    fn fill(&mut self, it: &mut Interp<'_>) -> R<()> {
        let Some(from) = self.next_from else {
            self.exhausted = true;
            return Ok(());
        };
        let range = keys::doc_range(it.db(), self.coll, Some(from), self.to);
        let at = self.at.or(it.read_at).filter(|t| *t < it.now());
        if let Some(t) = at {
            it.check_history(self.coll, t)?;
        }
        let page = it.txn.scan(&range, ScanOrder::Ascending, self.batch, at)?;
        self.batch = (self.batch * 4).min(1024);
        for (key, read) in page.entries {
            let Some(id) = keys::doc_id_of(&key) else {
                continue;
            };
            self.next_from = id.0.checked_add(1).map(DocId);
            let r = DocRef {
                coll: self.coll,
                id,
            };
            // A set made inside `at()` reads history wherever it is used.
            let saved = it.history_at;
            if self.at.is_some() {
                it.history_at = self.at;
            }
            let admitted = it.admit_scanned(r, read, at);
            it.history_at = saved;
            if admitted? {
                self.buffer.push_back(r);
            }
        }
        if !page.more {
            self.exhausted = true;
        }
        Ok(())
    }
}

impl SetIter for DocScan {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        while self.buffer.is_empty() && !self.exhausted {
            self.fill(it)?;
        }
        Ok(self.buffer.pop_front().map(|r| {
            self.last = Some(r.id.0);
            Value::Doc(r)
        }))
    }

    fn pos(&self) -> Pos {
        self.last.map_or(Pos::Start, Pos::Key)
    }
}

/// Scans an index's entries and gives the documents they point at (each through the read
/// gate, like every document read).
struct IndexScan {
    coll: CollId,
    index: std::sync::Arc<crate::index::IndexDef>,
    /// `None` until the first batch: the range is computed against the query's database.
    range: Option<testudo_storage::KeyRange>,
    terms: Rc<Vec<testudo_model::Data>>,
    from: Option<Vec<testudo_model::Data>>,
    to: Option<Vec<testudo_model::Data>>,
    at: Option<Ts>,
    after: Option<Vec<u8>>,
    buffer: std::collections::VecDeque<(Vec<u8>, DocRef)>,
    batch: usize,
    exhausted: bool,
    last: Option<Vec<u8>>,
}

impl IndexScan {
    fn new(
        coll: CollId,
        index: std::sync::Arc<crate::index::IndexDef>,
        terms: &Rc<Vec<testudo_model::Data>>,
        from: Option<&Vec<testudo_model::Data>>,
        to: Option<&Vec<testudo_model::Data>>,
        at: Option<Ts>,
        after: Option<Vec<u8>>,
    ) -> IndexScan {
        IndexScan {
            coll,
            index,
            range: None,
            terms: terms.clone(),
            from: from.cloned(),
            to: to.cloned(),
            at,
            last: after.clone(),
            after,
            buffer: Default::default(),
            batch: DEFAULT_PAGE_SIZE + 1,
            exhausted: false,
        }
    }

    fn range(&self, it: &Interp<'_>) -> testudo_storage::KeyRange {
        let base = self.index.term_prefix(it.db(), self.coll, &self.terms);
        let mut start = base.clone();
        if let Some(from) = &self.from {
            self.index.encode_values(from, &mut start);
        }
        let end = match &self.to {
            Some(to) => {
                let mut upper = base.clone();
                self.index.encode_values(to, &mut upper);
                testudo_storage::prefix_successor(&upper)
            }
            None => testudo_storage::prefix_successor(&base),
        };
        testudo_storage::KeyRange { start, end }
    }

    fn fill(&mut self, it: &mut Interp<'_>) -> R<()> {
        // Here, not where the set is made: a set continued from a cursor, or read inside a
        // function running as another role, is checked under the privileges reading it.
        it.check_index_masks(self.coll, &self.index)?;
        let mut range = match &self.range {
            Some(r) => r.clone(),
            None => {
                let r = self.range(it);
                self.range = Some(r.clone());
                r
            }
        };
        let prefix_len = self.index.prefix(it.db(), self.coll).len();
        if let Some(after) = &self.last {
            let mut start = self.index.prefix(it.db(), self.coll);
            start.extend_from_slice(after);
            start.push(0);
            if start > range.start {
                range.start = start;
            }
        }
        let at = self.at.or(it.read_at).filter(|t| *t < it.now());
        if let Some(t) = at {
            it.check_history(self.coll, t)?;
        }
        let page = it.txn.scan(&range, ScanOrder::Ascending, self.batch, at)?;
        self.batch = (self.batch * 4).min(1024);
        for (key, _) in page.entries {
            let Some(id) = keys::doc_id_of(&key) else {
                continue;
            };
            let suffix = key.get(prefix_len..).unwrap_or_default().to_vec();
            self.last = Some(suffix.clone());
            self.buffer.push_back((
                suffix,
                DocRef {
                    coll: self.coll,
                    id,
                },
            ));
        }
        if !page.more {
            self.exhausted = true;
        }
        Ok(())
    }
}

impl SetIter for IndexScan {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        loop {
            while self.buffer.is_empty() && !self.exhausted {
                self.fill(it)?;
            }
            let Some((suffix, r)) = self.buffer.pop_front() else {
                return Ok(None);
            };
            self.after = Some(suffix);
            let (saved, saved_history) = (it.read_at, it.history_at);
            if let Some(t) = self.at {
                it.read_at = Some(t);
                it.history_at = Some(t);
            }
            let live = it.doc_exists(r);
            it.read_at = saved;
            it.history_at = saved_history;
            if live? {
                return Ok(Some(Value::Doc(r)));
            }
        }
    }

    fn pos(&self) -> Pos {
        self.after.clone().map_or(Pos::Start, Pos::Entry)
    }
}

struct ValuesIter {
    items: Rc<List>,
    next: u64,
}

impl SetIter for ValuesIter {
    fn next(&mut self, _it: &mut Interp<'_>) -> R<Option<Value>> {
        let v = usize::try_from(self.next)
            .ok()
            .and_then(|i| self.items.get(i))
            .cloned();
        if v.is_some() {
            self.next += 1;
        }
        Ok(v)
    }

    fn pos(&self) -> Pos {
        Pos::Count(self.next)
    }
}

struct SequenceIter {
    next: i64,
    until: i64,
    given: u64,
}

impl SetIter for SequenceIter {
    fn next(&mut self, _it: &mut Interp<'_>) -> R<Option<Value>> {
        if self.next >= self.until {
            return Ok(None);
        }
        let v = ops::narrow(self.next);
        self.next += 1;
        self.given += 1;
        Ok(Some(v))
    }

    fn pos(&self) -> Pos {
        Pos::Count(self.given)
    }
}

struct WhereIter {
    inner: Box<dyn SetIter>,
    pred: Rc<Func>,
}

impl SetIter for WhereIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        while let Some(v) = self.inner.next(it)? {
            if it.predicate(&self.pred, v.clone())? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn pos(&self) -> Pos {
        Pos::Inner(Box::new(self.inner.pos()))
    }
}

struct MapIter {
    inner: Box<dyn SetIter>,
    f: Rc<Func>,
}

impl SetIter for MapIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        match self.inner.next(it)? {
            Some(v) => {
                let f = self.f.clone();
                it.read_only(|it| it.call_callback(&f, "mapper", vec![v]))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn pos(&self) -> Pos {
        Pos::Inner(Box::new(self.inner.pos()))
    }
}

struct ProjectIter {
    inner: Box<dyn SetIter>,
    projection: Rc<Projection>,
}

impl SetIter for ProjectIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        match self.inner.next(it)? {
            Some(v) => {
                let p = self.projection.clone();
                it.read_only(|it| it.project(&v, &p.fields, &p.env))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn pos(&self) -> Pos {
        Pos::Inner(Box::new(self.inner.pos()))
    }
}

struct FlatMapIter {
    outer: Box<dyn SetIter>,
    outer_before: Pos,
    f: Rc<Func>,
    current: Option<Box<dyn SetIter>>,
    skip_inner: u64,
    inner_given: u64,
}

impl SetIter for FlatMapIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        loop {
            if let Some(inner) = &mut self.current {
                if let Some(v) = inner.next(it)? {
                    self.inner_given += 1;
                    return Ok(Some(v));
                }
                self.current = None;
                self.outer_before = self.outer.pos();
                self.inner_given = 0;
            }
            let Some(outer_value) = self.outer.next(it)? else {
                return Ok(None);
            };
            let f = self.f.clone();
            let produced = it.read_only(|it| it.call_callback(&f, "mapper", vec![outer_value]))?;
            let expr = match produced {
                Value::Set(s) => s.expr.clone(),
                Value::Array(items) => Rc::new(SetExpr::Values(items)),
                other => {
                    return fail(
                        ErrorCode::InvalidArgument,
                        format!(
                            "expected `mapper` to return a Set, received {}",
                            other.type_name()
                        ),
                    );
                }
            };
            let mut inner = open(&expr, &Pos::Start)?;
            for _ in 0..std::mem::take(&mut self.skip_inner) {
                if inner.next(it)?.is_none() {
                    break;
                }
            }
            self.current = Some(inner);
        }
    }

    fn pos(&self) -> Pos {
        if self.current.is_some() {
            Pos::FlatMap {
                outer: Box::new(self.outer_before.clone()),
                inner: self.inner_given,
            }
        } else {
            Pos::FlatMap {
                outer: Box::new(self.outer.pos()),
                inner: 0,
            }
        }
    }
}

struct TakeIter {
    inner: Box<dyn SetIter>,
    limit: u64,
    taken: u64,
    last_pos: Pos,
}

impl SetIter for TakeIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        if self.taken >= self.limit {
            return Ok(None);
        }
        let v = self.inner.next(it)?;
        if v.is_some() {
            self.taken += 1;
            self.last_pos = self.inner.pos();
        }
        Ok(v)
    }

    fn pos(&self) -> Pos {
        Pos::Take(Box::new(self.last_pos.clone()), self.taken)
    }
}

struct DropIter {
    inner: Box<dyn SetIter>,
    to_drop: u64,
}

impl SetIter for DropIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        while self.to_drop > 0 {
            self.to_drop -= 1;
            if self.inner.next(it)?.is_none() {
                self.to_drop = 0;
                return Ok(None);
            }
        }
        self.inner.next(it)
    }

    fn pos(&self) -> Pos {
        Pos::Dropped(Box::new(self.inner.pos()))
    }
}

struct ConcatIter {
    first: Option<Box<dyn SetIter>>,
    second: Option<Box<dyn SetIter>>,
    b: Rc<SetExpr>,
    last: Pos,
    in_second: bool,
}

impl SetIter for ConcatIter {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        if let Some(first) = &mut self.first {
            if let Some(v) = first.next(it)? {
                self.last = first.pos();
                return Ok(Some(v));
            }
            self.first = None;
            self.second = Some(open(&self.b, &Pos::Start)?);
            self.in_second = true;
            self.last = Pos::Start;
        }
        match &mut self.second {
            Some(second) => {
                let v = second.next(it)?;
                if v.is_some() {
                    self.last = second.pos();
                }
                Ok(v)
            }
            None => Ok(None),
        }
    }

    fn pos(&self) -> Pos {
        Pos::Concat {
            second: self.in_second,
            inner: Box::new(self.last.clone()),
        }
    }
}

/// `order`, `reverse`, `distinct`: gather the inner set, then give it out by count.
struct Gathered {
    expr: Rc<SetExpr>,
    items: Option<Vec<Value>>,
    next: u64,
}

impl SetIter for Gathered {
    fn next(&mut self, it: &mut Interp<'_>) -> R<Option<Value>> {
        if self.items.is_none() {
            self.items = Some(gather(it, &self.expr)?);
        }
        let v = self
            .items
            .as_ref()
            .and_then(|items| usize::try_from(self.next).ok().and_then(|i| items.get(i)))
            .cloned();
        if v.is_some() {
            self.next += 1;
        }
        Ok(v)
    }

    fn pos(&self) -> Pos {
        Pos::Count(self.next)
    }
}

fn gather(it: &mut Interp<'_>, expr: &Rc<SetExpr>) -> R<Vec<Value>> {
    match &**expr {
        SetExpr::Order(inner, orderings) => {
            let items = to_vec(it, inner)?;
            sort(it, items, orderings)
        }
        SetExpr::Reverse(inner) => {
            let mut items = to_vec(it, inner)?;
            items.reverse();
            Ok(items)
        }
        SetExpr::Distinct(inner) => {
            let items = to_vec(it, inner)?;
            Ok(distinct(items))
        }
        _ => to_vec(it, expr),
    }
}

/// Keeps the first of each group of equal values, in order.
pub fn distinct(items: Vec<Value>) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for v in items {
        let found = order.binary_search_by(|&i| ops::total_cmp(&seen[i], &v));
        if let Err(at) = found {
            order.insert(at, seen.len());
            seen.push(v.clone());
            out.push(v);
        }
    }
    out
}

/// Stable sort by the orderings (natural order when none).
pub fn sort(it: &mut Interp<'_>, items: Vec<Value>, orderings: &[Ordering]) -> R<Vec<Value>> {
    let natural = [Ordering {
        key: None,
        descending: false,
    }];
    let orderings = if orderings.is_empty() {
        &natural[..]
    } else {
        orderings
    };
    let mut keyed: Vec<(Vec<Value>, Value)> = Vec::with_capacity(items.len());
    for v in items {
        let mut keys = Vec::with_capacity(orderings.len());
        for o in orderings {
            keys.push(match &o.key {
                Some(f) => {
                    let f = f.clone();
                    it.read_only(|it| it.call_callback(&f, "ordering", vec![v.clone()]))?
                }
                None => v.clone(),
            });
        }
        keyed.push((keys, v));
    }
    keyed.sort_by(|(a, _), (b, _)| {
        for (i, o) in orderings.iter().enumerate() {
            let c = ops::total_cmp(&a[i], &b[i]);
            let c = if o.descending { c.reverse() } else { c };
            if c != CmpOrdering::Equal {
                return c;
            }
        }
        CmpOrdering::Equal
    });
    Ok(keyed.into_iter().map(|(_, v)| v).collect())
}

/// Every element of a set, in order, up to [`MAX_MATERIALIZED`].
pub fn to_vec(it: &mut Interp<'_>, expr: &Rc<SetExpr>) -> R<Vec<Value>> {
    let mut iter = open(expr, &Pos::Start)?;
    let mut out = Vec::new();
    while let Some(v) = iter.next(it)? {
        if out.len() >= MAX_MATERIALIZED {
            return fail(
                ErrorCode::ValueTooLarge,
                format!(
                    "Set is too large: more than {MAX_MATERIALIZED} elements would be held at once."
                ),
            );
        }
        out.push(v);
    }
    Ok(out)
}

/// One page of a set: up to `size` elements, and the position after them when more follow.
pub struct Page {
    pub data: Vec<Value>,
    pub after: Option<Pos>,
}

pub fn page(it: &mut Interp<'_>, expr: &Rc<SetExpr>, start: &Pos, size: usize) -> R<Page> {
    let mut iter = open(expr, start)?;
    let mut data = Vec::with_capacity(size.min(64));
    while data.len() < size {
        match iter.next(it)? {
            Some(v) => data.push(v),
            None => return Ok(Page { data, after: None }),
        }
    }
    let pos = iter.pos();
    let more = iter.next(it)?.is_some();
    Ok(Page {
        data,
        after: more.then_some(pos),
    })
}

/// Checks a page size argument (1..=16000).
pub fn page_size(n: i64) -> R<usize> {
    match usize::try_from(n) {
        Ok(size) if (1..=MAX_PAGE_SIZE).contains(&size) => Ok(size),
        _ => fail(
            ErrorCode::InvalidBounds,
            format!("expected `size` to be between 1 and {MAX_PAGE_SIZE} inclusive, received {n}"),
        ),
    }
}

/// `set { ... }`: a lazy projection.
pub fn project(set: &SetValue, fields: &[ProjField], env: &Env, source: Rc<str>) -> Value {
    let projection = Rc::new(Projection {
        fields: fields.to_vec(),
        env: env.clone(),
        source,
    });
    Value::Set(Rc::new(SetValue::with_page_size(
        Rc::new(SetExpr::Project(set.expr.clone(), projection)),
        set.page_size,
    )))
}

impl Interp<'_> {
    /// Runs a predicate read-only: `true` keeps, `false`/`null` drop, anything else is a
    /// `type_mismatch`.
    pub fn predicate(&mut self, pred: &Rc<Func>, v: Value) -> R<bool> {
        let pred = pred.clone();
        match self.read_only(|it| it.call_callback(&pred, "predicate", vec![v]))? {
            Value::Bool(b) => Ok(b),
            Value::Null(_) => Ok(false),
            other => fail(
                ErrorCode::TypeMismatch,
                format!("expected type: Boolean, received {}", other.type_name()),
            ),
        }
    }

    /// Decides whether a document a scan found belongs in the set: it must pass the read
    /// gate and not be expired. Fills the document cache so the page needs no second read.
    fn admit_scanned(&mut self, r: DocRef, read: crate::txn::Read, at: Option<Ts>) -> R<bool> {
        let state = self.doc_state_from_scan(r, read, at)?;
        Ok(matches!(state, DocState::Live(_)))
    }
}
