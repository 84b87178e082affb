//! The FQL evaluator: a tree-walking interpreter over `testudo_fql::ast`.
//!
//! One `Interp` runs one query inside one transaction on one thread. **Invariants:** every
//! document read and write goes through `Interp`'s document methods (which consult the
//! authorization gate); recursion is bounded by [`MAX_CALL_DEPTH`] and [`MAX_EVAL_DEPTH`] so
//! hostile queries end in `stack_overflow`, never a crashed thread; the deadline is checked
//! every [`DEADLINE_CHECK_EVERY`] steps, so a runaway query ends in `time_out`.

pub mod display;
pub mod env;
pub mod error;
mod interp;

pub use interp::{check_arity, func_arity, placeholder_name};
pub mod ops;
mod support;
pub mod value;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use testudo_model::{DbId, Ts};

pub use env::Env;
pub use error::{EvalError, R, at, err, fail};
pub use value::{
    Arity, Closure, DocRef, Func, LambdaCode, List, Module, Native, NullCause, Object, Value,
};

use crate::EngineShared;
use crate::api::{ErrorCode, Scope};
use crate::docs::DocCache;
use crate::schema::Schema;
use crate::txn::Txn;

/// The deepest nesting of function calls (lambdas, UDFs, methods taking callbacks).
pub const MAX_CALL_DEPTH: u32 = 512;
/// The deepest nesting of expression evaluation (expressions inside calls included).
pub const MAX_EVAL_DEPTH: u32 = 4096;
/// How many evaluation steps run between two reads of the clock.
pub const DEADLINE_CHECK_EVERY: u64 = 256;

/// The reserved environment name of a short lambda's implicit argument. It cannot collide
/// with a user variable because `.` is not an identifier character.
pub const IMPLICIT_ARG: &str = ".";

pub struct Interp<'e> {
    pub shared: &'e EngineShared,
    pub txn: Txn,
    pub scope: Scope,
    pub schema: Arc<Schema>,
    /// The query's source text (closures keep it to serialize themselves into cursors).
    pub source: Rc<str>,
    pub deadline: Instant,
    pub docs: DocCache,
    /// `log()`/`dbg()` output, rendered into the response summary.
    pub logs: Vec<String>,
    /// The snapshot time reads use inside `at(ts) { ... }`; `None` outside.
    pub read_at: Option<Ts>,
    /// The past time an `at(ts) { ... }` asked to read at (or a cursor made inside one):
    /// reading there needs the `history_read` privilege. Unlike `read_at`, a cursor's own
    /// snapshot does not set it.
    pub history_at: Option<Ts>,
    /// > 0 while running callbacks that must not write (lazy set functions, predicates).
    pub read_only: u32,
    /// The client's network address (login throttling).
    pub client: Option<std::net::IpAddr>,
    /// The span of the call being evaluated (for `log()` line numbers).
    pub call_span: Option<testudo_fql::Span>,
    /// Function calls made, for `compute_ops`.
    pub calls: u64,
    pub doc_reads: u64,
    pub doc_writes: u64,
    steps: u64,
    call_depth: u32,
    eval_depth: u32,
    /// Collections created, updated or deleted by this query: their documents may not be
    /// written in the same query.
    pub touched_schema: HashMap<u64, ()>,
    /// Collections whose new indexes must be built in the background once this commits.
    pub pending_builds: Vec<testudo_model::CollId>,
    /// Whether this query changed anything a cached authentication depends on (keys,
    /// tokens, databases): the engine then drops its verified-secret cache after commit.
    pub auth_changed: bool,
    /// Whether this query wrote the schema marker.
    pub schema_bumped: bool,
    /// Collections whose documents this query wrote.
    pub touched_docs: HashMap<u64, ()>,
    /// The privileges in force (the caller's, or a function role's while its body runs).
    pub perms: Rc<crate::gate::ActivePerms>,
    /// Authorization decisions already taken by role predicates.
    pub decisions: crate::gate::Decisions,
    /// Security decisions for the audit log (kept only when the engine has one).
    pub trail: std::cell::RefCell<crate::audit::Trail>,
}

impl<'e> Interp<'e> {
    pub fn new(
        shared: &'e EngineShared,
        txn: Txn,
        scope: Scope,
        schema: Arc<Schema>,
        source: Rc<str>,
        deadline: Instant,
    ) -> Self {
        let perms = Rc::new(crate::gate::ActivePerms {
            id: 0,
            perms: crate::gate::initial_perms(&scope),
        });
        Interp {
            perms,
            decisions: crate::gate::Decisions::default(),
            trail: Default::default(),
            shared,
            txn,
            scope,
            schema,
            source,
            deadline,
            docs: DocCache::default(),
            logs: Vec::new(),
            read_at: None,
            history_at: None,
            read_only: 0,
            call_span: None,
            client: None,
            calls: 0,
            doc_reads: 0,
            doc_writes: 0,
            steps: 0,
            call_depth: 0,
            eval_depth: 0,
            touched_schema: HashMap::new(),
            touched_docs: HashMap::new(),
            schema_bumped: false,
            auth_changed: false,
            pending_builds: Vec::new(),
        }
    }

    pub fn db(&self) -> DbId {
        self.scope.db
    }

    /// The transaction's snapshot time: what `Time.now()` returns.
    pub fn now(&self) -> Ts {
        self.txn.ts()
    }

    /// Counts one evaluation step and enforces the deadline.
    fn tick(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps.is_multiple_of(DEADLINE_CHECK_EVERY) && Instant::now() >= self.deadline {
            return fail(ErrorCode::TimeOut, "Query time limit exceeded.");
        }
        Ok(())
    }

    /// Fails with `invalid_effect` when writes are not allowed here.
    pub fn check_writable(&self, method: &str) -> R<()> {
        if self.read_only > 0 {
            return fail(
                ErrorCode::InvalidEffect,
                format!("`{method}` performs a write, which is not allowed in set functions."),
            );
        }
        if self.read_at.is_some_and(|t| t < self.now()) {
            return fail(
                ErrorCode::InvalidWrite,
                "Cannot write at a snapshot time in the past.",
            );
        }
        Ok(())
    }

    /// Did this query change the schema?
    pub fn schema_changed(&self) -> bool {
        self.schema_bumped
    }

    pub fn into_txn(self) -> Txn {
        self.txn
    }

    /// Runs `f` with writes forbidden (lazy set callbacks).
    pub fn read_only<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        self.read_only += 1;
        let result = f(self);
        self.read_only -= 1;
        result
    }
}
