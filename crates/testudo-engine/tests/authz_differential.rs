//! A differential test of the authorization gate: random documents, random roles with
//! predicates, random queries over every read path. What a token sees through the gate
//! must equal what an admin sees when the same query is filtered, by hand, with the same
//! predicates (`where(...)` right after the base set): the gate adds nothing and hides
//! nothing else, on scans, filters, index lookups and ranges, ordering, counting,
//! first/last, distinct, reduce, projections, pagination and point reads.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use common::{ROOT, engine, ok, q, secret_of};
use serde_json::Value as Json;
use testudo_engine::Engine;

/// xorshift64*: deterministic, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const USERS: [(&str, &str, u64); 3] = [("1", "u1", 3), ("2", "u2", 6), ("3", "u3", 9)];
const TAGS: [&str; 3] = ["a", "b", "c"];

/// A predicate over `doc` as the role stores it, and as the oracle runs it for one user
/// (identity lookups replaced by that user's values).
struct Pred {
    role: String,
    oracle: String,
}

fn random_pred(rng: &mut Rng, user: (&str, &str, u64)) -> Pred {
    let k = rng.below(10);
    let owner = rng.pick(&USERS).1;
    let tag = rng.pick(&TAGS);
    let (role, oracle) = match rng.below(7) {
        0 => (format!("doc.level >= {k}"), format!("doc.level >= {k}")),
        1 => (
            format!("doc.owner == \"{owner}\""),
            format!("doc.owner == \"{owner}\""),
        ),
        2 => (
            format!("doc.tag != \"{tag}\" && doc.level < {k}"),
            format!("doc.tag != \"{tag}\" && doc.level < {k}"),
        ),
        3 => ("doc.flag".to_string(), "doc.flag".to_string()),
        4 => (
            "doc.owner == Query.identity()!.name".to_string(),
            format!("doc.owner == \"{}\"", user.1),
        ),
        5 => (
            "doc.level <= Query.identity()!.clearance".to_string(),
            format!("doc.level <= {}", user.2),
        ),
        _ => (
            // Reads another document: charged to the query, seen at its snapshot.
            format!("User.byId(\"{}\")!.clearance > doc.level", user.0),
            format!("{} > doc.level", user.2),
        ),
    };
    Pred {
        role: format!("doc => {role}"),
        oracle: format!("({oracle})"),
    }
}

fn populate(e: &Engine, rng: &mut Rng) {
    ok(e, ROOT, r#"Collection.create({ name: "User" })"#);
    ok(
        e,
        ROOT,
        r#"Collection.create({ name: "Item", indexes: {
              byOwner: { terms: [{ field: "owner" }], values: [{ field: "level" }] },
              byTag: { terms: [{ field: "tag" }] } } })"#,
    );
    for (id, name, clearance) in USERS {
        ok(
            e,
            ROOT,
            &format!(r#"User.create({{ id: "{id}", name: "{name}", clearance: {clearance} }})"#),
        );
    }
    let mut items = Vec::new();
    for _ in 0..48 {
        items.push(format!(
            r#"{{ owner: "{}", level: {}, tag: "{}", flag: {} }}"#,
            rng.pick(&USERS).1,
            rng.below(10),
            rng.pick(&TAGS),
            rng.below(2) == 0
        ));
    }
    ok(
        e,
        ROOT,
        &format!("[{}].forEach(d => Item.create(d))", items.join(", ")),
    );
}

/// A base set, as the gated query writes it.
fn random_base(rng: &mut Rng) -> String {
    let k = rng.below(10);
    let owner = rng.pick(&USERS).1;
    let tag = rng.pick(&TAGS);
    match rng.below(6) {
        0 => "Item.all()".to_string(),
        1 => format!("Item.where(.level > {k})"),
        2 => format!("Item.byOwner(\"{owner}\")"),
        3 => format!(
            "Item.byOwner(\"{owner}\", {{ from: {}, to: {} }})",
            k / 2,
            k / 2 + 4
        ),
        4 => format!("Item.byTag(\"{tag}\")"),
        _ => "Item.all().reverse()".to_string(),
    }
}

/// What is done with the set, given its text.
fn random_use(rng: &mut Rng, set: &str) -> String {
    match rng.below(10) {
        0 => format!("{set}.map(.id).toArray()"),
        1 => format!("{set}.count()"),
        2 => format!("{set}.first()?.id"),
        3 => format!("{set}.last()?.id"),
        4 => format!("{set}.map(.level).distinct().order().toArray()"),
        5 => format!("{set}.order(desc(.level)).map(.id).take(5).toArray()"),
        6 => format!("{set}.fold(0, (acc, d) => acc + d.level)"),
        7 => format!("{set}.map(.tag).reduce((a, b) => a + b)"),
        8 => format!("let s = {set} {{ id, level }}\ns.toArray()"),
        _ => format!("{set}.where(.flag).map(.id).toArray()"),
    }
}

/// Every id a set yields, page by page through cursors.
fn paginate_all(e: &Engine, bearer: &str, set: &str, size: u64) -> Vec<Json> {
    let mut page = ok(e, bearer, &format!("{set}.pageSize({size})"));
    let mut ids = Vec::new();
    loop {
        for doc in page["data"].as_array().unwrap() {
            ids.push(doc["id"].clone());
        }
        match page.get("after").and_then(Json::as_str) {
            Some(after) => {
                page = ok(e, bearer, &format!(r#"Set.paginate("{after}")"#));
            }
            None => return ids,
        }
    }
}

#[test]
fn the_gate_equals_an_admin_filtering_by_the_role() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let e = engine();
        populate(&e, &mut rng);
        let user = *rng.pick(&USERS);
        // One or two roles, each with one or two OR-ed read policies through membership.
        let mut oracle_parts = Vec::new();
        for r in 0..=rng.below(2) {
            let p = random_pred(&mut rng, user);
            ok(
                &e,
                ROOT,
                &format!(
                    r#"Role.create({{ name: "r{r}", membership: [{{ resource: "User" }}],
                         privileges: [{{ resource: "Item", actions: {{ read: {:?} }} }},
                                      {{ resource: "User", actions: {{ read: true }} }}] }})"#,
                    p.role
                ),
            );
            oracle_parts.push(p.oracle);
        }
        let oracle = format!("doc => {}", oracle_parts.join(" || "));
        let token = secret_of(&ok(
            &e,
            ROOT,
            &format!(r#"Token.create({{ document: User.byId("{}") }})"#, user.0),
        ));

        for round in 0..30 {
            let base = random_base(&mut rng);
            let filtered = format!("{base}.where({oracle})");
            let used = random_use(&mut rng, "__SET__");
            let gated = used.replace("__SET__", &base);
            let expected = used.replace("__SET__", &filtered);
            assert_eq!(
                q(&e, &token, &gated),
                q(&e, ROOT, &expected),
                "seed {seed} round {round}: {gated}\n  oracle: {expected}"
            );
            if round % 5 == 0 {
                let size = 1 + rng.below(7);
                assert_eq!(
                    paginate_all(&e, &token, &base, size),
                    paginate_all(&e, ROOT, &filtered, size),
                    "seed {seed} round {round}: paginating {base} by {size}"
                );
            }
        }
        // Point reads of every document.
        let ids = ok(&e, ROOT, "Item.all().map(.id).toArray()");
        for id in ids.as_array().unwrap() {
            let id = id.as_str().unwrap();
            assert_eq!(
                ok(&e, &token, &format!(r#"Item.byId("{id}").exists()"#)),
                ok(
                    &e,
                    ROOT,
                    &format!(r#"Item.byId("{id}").exists() && ({oracle})(Item.byId("{id}")!)"#)
                ),
                "seed {seed}: point read of {id}"
            );
        }
    }
}
