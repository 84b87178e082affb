//! Authorization as a specification: custom roles grant exactly what they list, predicates
//! decide per document at query time and fail closed, membership is dynamic, functions run
//! under their own role, and every read path goes through the same gate.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use common::{ROOT, engine, fails, ok, q, secret_of};
use serde_json::{Value as Json, json};
use testudo_engine::Engine;

/// A database with users, products (indexed by name and by owner), orders, and a helper to
/// mint secrets.
fn shop() -> Engine {
    let e = engine();
    ok(&e, ROOT, r#"Collection.create({ name: "User" })"#);
    ok(
        &e,
        ROOT,
        r#"Collection.create({ name: "Product", indexes: {
              byName: { terms: [{ field: "name" }] },
              byOwner: { terms: [{ field: "owner" }], values: [{ field: "price" }] } } })"#,
    );
    ok(&e, ROOT, r#"Collection.create({ name: "Order" })"#);
    ok(
        &e,
        ROOT,
        r#"User.create({ id: "1", name: "ann", active: true });
           User.create({ id: "2", name: "bob", active: true })"#,
    );
    ok(
        &e,
        ROOT,
        r#"[["apple", "1", 3], ["pear", "1", 5], ["fig", "2", 7], ["kiwi", "2", 2]].forEach(p =>
             Product.create({ id: ["10", "11", "12", "13"][["apple", "pear", "fig", "kiwi"].indexOf(p[0])!],
                              name: p[0], owner: User.byId(p[1]), price: p[2] }))"#,
    );
    ok(
        &e,
        ROOT,
        r#"Order.create({ id: "50", product: Product.byId("10"), qty: 1 })"#,
    );
    e
}

fn role(e: &Engine, definition: &str) {
    ok(e, ROOT, &format!("Role.create({definition})"));
}

fn key_with_role(e: &Engine, role: &str) -> String {
    secret_of(&ok(
        e,
        ROOT,
        &format!(r#"Key.create({{ role: "{role}" }})"#),
    ))
}

fn token_for(e: &Engine, user: &str) -> String {
    secret_of(&ok(
        e,
        ROOT,
        &format!(r#"Token.create({{ document: User.byId("{user}") }})"#),
    ))
}

fn names(v: Json) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_custom_role_grants_exactly_the_actions_it_lists() {
    let e = shop();
    role(
        &e,
        r#"{ name: "reader", privileges: [{ resource: "Product", actions: { read: true } }] }"#,
    );
    let k = key_with_role(&e, "reader");
    assert_eq!(ok(&e, &k, r#"Product.byId("10")!.name"#), json!("apple"));
    assert_eq!(ok(&e, &k, "Product.all().count()"), json!(4));
    fails(
        &e,
        &k,
        r#"Product.create({ name: "plum" })"#,
        "permission_denied",
    );
    fails(
        &e,
        &k,
        r#"Product.byId("10")!.update({ price: 1 })"#,
        "permission_denied",
    );
    fails(
        &e,
        &k,
        r#"Product.byId("10")!.delete()"#,
        "permission_denied",
    );
    // Other collections are invisible: a single read is a denied null, sets are empty.
    fails(&e, &k, r#"Order.byId("50")!.qty"#, "permission_denied");
    assert_eq!(ok(&e, &k, r#"Order.byId("50").exists()"#), json!(false));
    assert_eq!(ok(&e, &k, "Order.all().count()"), json!(0));
    fails(
        &e,
        &k,
        r#"Collection.create({ name: "X" })"#,
        "permission_denied",
    );
    // Nothing was written by the refused queries.
    assert_eq!(ok(&e, ROOT, "Product.all().count()"), json!(4));
    assert_eq!(ok(&e, ROOT, r#"Product.byId("10")!.price"#), json!(3));
}

/// For each write action on a user collection: a role granting only that action allows
/// exactly that operation and refuses the others.
#[test]
fn each_write_action_is_granted_alone() {
    let e = shop();
    let ops: [(&str, &str); 4] = [
        ("create", r#"Product.create({ name: "plum" })"#),
        (
            "create_with_id",
            r#"Product.create({ id: "777", name: "plum" })"#,
        ),
        ("write", r#"Product.byId("11")!.update({ price: 6 })"#),
        ("delete", r#"Product.byId("12")!.delete()"#),
    ];
    for (granted, _) in ops {
        let name = format!("only_{granted}");
        // `read` too, so that `byId(...)!` can reach the document.
        role(
            &e,
            &format!(
                r#"{{ name: "{name}", privileges: [{{ resource: "Product", actions: {{ read: true, {granted}: true }} }}] }}"#
            ),
        );
        let k = key_with_role(&e, &name);
        for (action, op) in ops {
            let outcome = q(&e, &k, &format!("{op}; true"));
            if action == granted {
                assert_eq!(outcome, Ok(json!(true)), "{granted}: {op}");
            } else {
                assert_eq!(
                    outcome,
                    Err("permission_denied".into()),
                    "{granted} must not allow {op}"
                );
            }
        }
        // Undo what the granted operation did, so the next round starts alike.
        ok(
            &e,
            ROOT,
            r#"Product.byId("777")?.delete(); Product.where(.name == "plum").forEach(.delete());
               if (!Product.byId("12").exists()) Product.create({ id: "12", name: "fig", owner: User.byId("2"), price: 7 });
               Product.byId("11")!.update({ price: 5 }); null"#,
        );
    }
}

#[test]
fn a_create_with_a_chosen_id_never_overwrites_a_document_the_caller_cannot_see() {
    let e = shop();
    role(
        &e,
        r#"{ name: "blind_writer", privileges: [{ resource: "Order", actions: { create_with_id: true, create: true } }] }"#,
    );
    let k = key_with_role(&e, "blind_writer");
    fails(
        &e,
        &k,
        r#"Order.create({ id: "50", qty: 99 })"#,
        "document_id_exists",
    );
    assert_eq!(ok(&e, ROOT, r#"Order.byId("50")!.qty"#), json!(1));
}

#[test]
fn read_predicates_filter_every_read_path_alike() {
    let e = shop();
    role(
        &e,
        r#"{ name: "owner", membership: [{ resource: "User" }], privileges: [
              { resource: "Product", actions: { read: "doc => doc.owner == Query.identity()" } },
              { resource: "User", actions: { read: true } }] }"#,
    );
    let ann = token_for(&e, "1");
    // Point reads.
    assert_eq!(ok(&e, &ann, r#"Product.byId("10")!.name"#), json!("apple"));
    fails(&e, &ann, r#"Product.byId("12")!.name"#, "permission_denied");
    // Scans, filters, counts, ordering, first/last, distinct, reduce, aggregate.
    assert_eq!(
        names(ok(&e, &ann, "Product.all().map(.name).toArray()")),
        ["apple", "pear"]
    );
    assert_eq!(ok(&e, &ann, "Product.all().count()"), json!(2));
    assert_eq!(ok(&e, &ann, "Product.where(.price > 2).count()"), json!(2));
    assert_eq!(
        ok(&e, &ann, "Product.all().order(desc(.price)).first()!.name"),
        json!("pear")
    );
    assert_eq!(
        ok(&e, &ann, "Product.all().order(.price).last()!.name"),
        json!("pear")
    );
    assert_eq!(
        ok(
            &e,
            &ann,
            "Product.all().map(.price).reduce((a, b) => a + b)"
        ),
        json!(8)
    );
    assert_eq!(
        ok(
            &e,
            &ann,
            "Product.all().map(.owner.id).distinct().toArray()"
        ),
        json!(["1"])
    );
    assert_eq!(
        ok(&e, &ann, "Product.all().fold(0, (acc, p) => acc + 1)"),
        json!(2)
    );
    // Index lookups and ranges.
    assert_eq!(ok(&e, &ann, r#"Product.byName("fig").count()"#), json!(0));
    assert_eq!(ok(&e, &ann, r#"Product.byName("apple").count()"#), json!(1));
    assert_eq!(
        ok(&e, &ann, r#"Product.byOwner(User.byId("2")).count()"#),
        json!(0)
    );
    assert_eq!(
        ok(
            &e,
            &ann,
            r#"Product.byOwner(User.byId("1"), { from: 4 }).map(.name).toArray()"#
        ),
        json!(["pear"])
    );
    // Projections.
    assert_eq!(
        names(ok(
            &e,
            &ann,
            "let s = Product.all() { name }\ns.toArray().map(.name)"
        )),
        ["apple", "pear"]
    );
    // Pagination: every page is filtered, and the cursor carries on filtering.
    let page = ok(&e, &ann, "Product.all().pageSize(1)");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let after = page["after"].as_str().unwrap();
    let next = ok(&e, &ann, &format!(r#"Set.paginate("{after}")"#));
    assert_eq!(
        next["data"].as_array().unwrap().len(),
        1,
        "{page} then {next}"
    );
    assert!(next.get("after").is_none_or(Json::is_null));
    // A cursor made by an admin is filtered just the same for the token.
    let admin_after = ok(&e, ROOT, "Product.all().pageSize(1)")["after"]
        .as_str()
        .unwrap()
        .to_string();
    let rest = ok(&e, &ann, &format!(r#"Set.paginate("{admin_after}")"#));
    for doc in rest["data"].as_array().unwrap() {
        assert_eq!(doc["owner"]["id"], json!("1"), "{rest}");
    }
}

#[test]
fn references_followed_inside_results_are_checked_too() {
    let e = shop();
    role(
        &e,
        r#"{ name: "orders_only", privileges: [{ resource: "Order", actions: { read: true } }] }"#,
    );
    let k = key_with_role(&e, "orders_only");
    assert_eq!(ok(&e, &k, r#"Order.byId("50")!.qty"#), json!(1));
    fails(
        &e,
        &k,
        r#"Order.byId("50")!.product!.name"#,
        "permission_denied",
    );
    assert_eq!(
        ok(&e, &k, r#"Order.byId("50")!.product.exists()"#),
        json!(false)
    );
    // Rendering the order renders the product as a denied reference, not its data.
    let rendered = ok(&e, &k, r#"Order.byId("50")"#).to_string();
    assert!(!rendered.contains("apple"), "{rendered}");
}

#[test]
fn history_needs_history_read_and_its_predicate_sees_the_current_version() {
    let e = shop();
    let before = ok(&e, ROOT, "Time.now()");
    let before = before.as_str().unwrap().to_string();
    ok(
        &e,
        ROOT,
        r#"Product.byId("10")!.update({ price: 4, secret: false })"#,
    );
    role(
        &e,
        r#"{ name: "present_only", privileges: [{ resource: "Product", actions: { read: true } }] }"#,
    );
    role(
        &e,
        r#"{ name: "historian", privileges: [{ resource: "Product", actions: {
              read: true, history_read: "doc => doc.secret != true" } }] }"#,
    );
    let present = key_with_role(&e, "present_only");
    let historian = key_with_role(&e, "historian");
    let past = format!(r#"at (Time("{before}")) {{ Product.byId("10")!.price }}"#);
    fails(&e, &present, &past, "permission_denied");
    assert_eq!(ok(&e, &historian, &past), json!(3));
    // A cursor made inside `at()` reads history when continued, outside `at()` too.
    let cursor = ok(
        &e,
        ROOT,
        &format!(r#"at (Time("{before}")) {{ Product.all().pageSize(1) }}"#),
    )["after"]
        .as_str()
        .unwrap()
        .to_string();
    let continued = format!(r#"Set.paginate("{cursor}").data.length"#);
    assert_eq!(ok(&e, &present, &continued), json!(0));
    assert_eq!(ok(&e, &historian, &continued), json!(1));
    // The predicate judges the current version: the old one had no `secret` field at all.
    ok(&e, ROOT, r#"Product.byId("10")!.update({ secret: true })"#);
    fails(&e, &historian, &past, "permission_denied");
}

#[test]
fn write_predicates_receive_the_old_and_the_new_document() {
    let e = shop();
    role(
        &e,
        r#"{ name: "seller", membership: [{ resource: "User" }], privileges: [{ resource: "Product", actions: {
              read: true,
              create: "doc => doc.owner == Query.identity()",
              write: "(old, new) => old.owner == Query.identity() && new.owner == old.owner && new.price > 0",
              delete: "doc => doc.owner == Query.identity() && doc.price < 4" } }] }"#,
    );
    let ann = token_for(&e, "1");
    ok(
        &e,
        &ann,
        r#"Product.create({ name: "plum", owner: Query.identity(), price: 1 })"#,
    );
    fails(
        &e,
        &ann,
        r#"Product.create({ name: "plum", owner: User.byId("2"), price: 1 })"#,
        "permission_denied",
    );
    ok(&e, &ann, r#"Product.byId("11")!.update({ price: 9 })"#);
    fails(
        &e,
        &ann,
        r#"Product.byId("11")!.update({ price: 0 })"#,
        "permission_denied",
    );
    fails(
        &e,
        &ann,
        r#"Product.byId("11")!.update({ owner: User.byId("2") })"#,
        "permission_denied",
    );
    fails(
        &e,
        &ann,
        r#"Product.byId("12")!.update({ price: 1 })"#,
        "permission_denied",
    );
    fails(
        &e,
        &ann,
        r#"Product.byId("11")!.delete()"#,
        "permission_denied",
    );
    ok(&e, &ann, r#"Product.byId("10")!.delete()"#);
    // Refused writes left nothing behind; allowed ones landed.
    assert_eq!(
        ok(&e, ROOT, r#"Product.where(.name == "plum").count()"#),
        json!(1)
    );
    assert_eq!(ok(&e, ROOT, r#"Product.byId("11")!.price"#), json!(9));
    assert_eq!(ok(&e, ROOT, r#"Product.byId("11")!.owner.id"#), json!("1"));
    assert_eq!(ok(&e, ROOT, r#"Product.byId("10").exists()"#), json!(false));
}

#[test]
fn predicates_fail_closed() {
    let e = shop();
    let cases = [
        ("errors", r#""doc => doc.nothing.deeper == 1""#),
        ("not_boolean", r#""doc => \"yes\"""#),
        ("gives_null", r#""doc => null""#),
        ("aborts", r#""doc => abort(\"no\")""#),
        ("writes", r#""doc => { Order.create({ qty: 0 }); true }""#),
        ("reads_keys", r#""doc => Key.all().count() > 0""#),
    ];
    for (name, predicate) in cases {
        role(
            &e,
            &format!(
                r#"{{ name: "{name}", privileges: [{{ resource: "Product", actions: {{ read: {predicate} }} }}] }}"#
            ),
        );
        let k = key_with_role(&e, name);
        assert_eq!(ok(&e, &k, "Product.all().count()"), json!(0), "{name}");
        fails(&e, &k, r#"Product.byId("10")!.name"#, "permission_denied");
    }
    assert_eq!(
        ok(&e, ROOT, "Order.all().count()"),
        json!(1),
        "a predicate wrote"
    );
}

#[test]
fn role_definitions_are_validated_when_saved() {
    let e = shop();
    for bad in [
        r#"{ name: "a", privileges: [{ resource: "Product", actions: { read: "(a, b) => true" } }] }"#,
        r#"{ name: "b", privileges: [{ resource: "Product", actions: { write: "x => true" } }] }"#,
        r#"{ name: "c", privileges: [{ resource: "Product", actions: { read: "doc => " } }] }"#,
        r#"{ name: "d", privileges: [{ resource: "Product", actions: { launch: true } }] }"#,
        r#"{ name: "e", privileges: [{ resource: "Product", actions: { read: 1 } }] }"#,
        r#"{ name: "f", membership: [{ resource: "User", predicate: "(a, b) => true" }] }"#,
        r#"{ name: "server" }"#,
        r#"{ privileges: [] }"#,
        r#"{ name: "g", extra: 1 }"#,
    ] {
        fails(
            &e,
            ROOT,
            &format!("Role.create({bad})"),
            "constraint_failure",
        );
    }
    role(&e, r#"{ name: "fine" }"#);
    fails(
        &e,
        ROOT,
        r#"Role.create({ name: "fine" })"#,
        "constraint_failure",
    );
}

#[test]
fn only_an_admin_manages_roles_keys_and_providers_whatever_a_role_lists() {
    let e = shop();
    role(
        &e,
        r#"{ name: "escalator", privileges: [
              { resource: "Role", actions: { read: true, create: true, write: true, delete: true } },
              { resource: "Key", actions: { read: true, create: true } }] }"#,
    );
    let k = key_with_role(&e, "escalator");
    let server = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "server" })"#));
    for secret in [&k, &server] {
        fails(
            &e,
            secret,
            r#"Role.create({ name: "mine" })"#,
            "permission_denied",
        );
        fails(
            &e,
            secret,
            r#"Key.create({ role: "admin" })"#,
            "permission_denied",
        );
        fails(
            &e,
            secret,
            r#"Role.byName("escalator")!.update({ privileges: [] })"#,
            "permission_denied",
        );
    }
    // Reading is per the privileges.
    assert_eq!(
        ok(&e, &k, r#"Role.byName("escalator")!.name"#),
        json!("escalator")
    );
}

#[test]
fn membership_is_decided_at_each_query_from_the_identity_document() {
    let e = shop();
    role(
        &e,
        r#"{ name: "staff", membership: [{ resource: "User", predicate: "u => u.active == true" }],
             privileges: [{ resource: "Order", actions: { read: true } }] }"#,
    );
    let ann = token_for(&e, "1");
    assert_eq!(ok(&e, &ann, "Order.all().count()"), json!(1));
    ok(&e, ROOT, r#"User.byId("1")!.update({ active: false })"#);
    assert_eq!(ok(&e, &ann, "Order.all().count()"), json!(0));
    ok(&e, ROOT, r#"User.byId("1")!.update({ active: true })"#);
    assert_eq!(ok(&e, &ann, "Order.all().count()"), json!(1));
    // Keys are never members: membership is for tokens only.
    let server = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "client" })"#));
    assert_eq!(ok(&e, &server, "Order.all().count()"), json!(0));
    // Changing the role takes effect at the next query too.
    ok(
        &e,
        ROOT,
        r#"Role.byName("staff")!.update({ privileges: [{ resource: "Product", actions: { read: true } }] })"#,
    );
    assert_eq!(ok(&e, &ann, "Order.all().count()"), json!(0));
    assert_eq!(ok(&e, &ann, "Product.all().count()"), json!(4));
    ok(&e, ROOT, r#"Role.byName("staff")!.delete()"#);
    assert_eq!(ok(&e, &ann, "Product.all().count()"), json!(0));
    // The token keeps its baseline rights throughout.
    assert_eq!(ok(&e, &ann, "Query.token()!.document.id"), json!("1"));
}

#[test]
fn several_roles_combine_by_or() {
    let e = shop();
    role(
        &e,
        r#"{ name: "cheap", membership: [{ resource: "User" }],
             privileges: [{ resource: "Product", actions: { read: "p => p.price < 4" } }] }"#,
    );
    role(
        &e,
        r#"{ name: "figs", membership: [{ resource: "User", predicate: "u => u.name == \"ann\"" }],
             privileges: [{ resource: "Product", actions: { read: "p => p.name == \"fig\"" } }] }"#,
    );
    let ann = token_for(&e, "1");
    let bob = token_for(&e, "2");
    assert_eq!(
        names(ok(&e, &ann, "Product.all().map(.name).toArray()")),
        ["apple", "fig", "kiwi"]
    );
    assert_eq!(
        names(ok(&e, &bob, "Product.all().map(.name).toArray()")),
        ["apple", "kiwi"]
    );
}

#[test]
fn a_function_runs_under_its_role_and_the_caller_needs_only_call() {
    let e = shop();
    role(
        &e,
        r#"{ name: "readInventory", privileges: [{ resource: "Product", actions: { read: true } }] }"#,
    );
    ok(
        &e,
        ROOT,
        r#"Function.create({ name: "inventory", role: "readInventory",
             body: "name => Product.byName(name).map(p => { name: p.name, price: p.price }).toArray()" })"#,
    );
    role(
        &e,
        r#"{ name: "shopper", privileges: [{ resource: "inventory", actions: { call: true } }] }"#,
    );
    let k = key_with_role(&e, "shopper");
    assert_eq!(
        ok(&e, &k, r#"inventory("apple")"#),
        json!([{ "name": "apple", "price": 3 }])
    );
    // Direct access is refused.
    fails(&e, &k, r#"Product.byId("10")!.name"#, "permission_denied");
    assert_eq!(ok(&e, &k, "Product.all().count()"), json!(0));
    fails(
        &e,
        &k,
        r#"Product.create({ name: "x" })"#,
        "permission_denied",
    );
    fails(
        &e,
        &k,
        r#"Product.byId("10")!.update({ price: 0 })"#,
        "permission_denied",
    );
    fails(
        &e,
        &k,
        r#"Product.byId("10")!.delete()"#,
        "permission_denied",
    );
    // The argument is a value, never code.
    for injection in [
        r#""apple\") || true || (\"""#,
        r#""Product.all()""#,
        r#""\"; Product.all().forEach(.delete()); \"""#,
        r#"Product.all()"#,
    ] {
        let out = q(&e, &k, &format!("inventory({injection})"));
        assert!(
            matches!(&out, Ok(v) if v == &json!([])) || out.is_err(),
            "{injection}: {out:?}"
        );
    }
    assert_eq!(ok(&e, ROOT, "Product.all().count()"), json!(4));
    // The function's role does not leak into what the caller does after the call.
    fails(
        &e,
        &k,
        r#"inventory("apple"); Product.byId("10")!.name"#,
        "permission_denied",
    );
    // A document returned by the function is rendered under the caller's rights.
    ok(
        &e,
        ROOT,
        r#"Function.create({ name: "productRef", role: "readInventory", body: "name => Product.byName(name).first()" })"#,
    );
    ok(
        &e,
        ROOT,
        r#"Role.byName("shopper")!.update({ privileges: [
             { resource: "inventory", actions: { call: true } },
             { resource: "productRef", actions: { call: true } }] })"#,
    );
    let rendered = ok(&e, &k, r#"productRef("apple")"#).to_string();
    assert!(!rendered.contains("\"price\""), "{rendered}");
    // Without `call`, nothing runs.
    let nobody = key_with_role(&e, "readInventory");
    fails(&e, &nobody, r#"inventory("apple")"#, "permission_denied");
}

#[test]
fn a_call_predicate_sees_the_arguments() {
    let e = shop();
    ok(
        &e,
        ROOT,
        r#"Function.create({ name: "price", role: "server", body: "name => Product.byName(name).first()!.price" })"#,
    );
    role(
        &e,
        r#"{ name: "no_figs", privileges: [{ resource: "price", actions: { call: "name => name != \"fig\"" } }] }"#,
    );
    let k = key_with_role(&e, "no_figs");
    assert_eq!(ok(&e, &k, r#"price("apple")"#), json!(3));
    fails(&e, &k, r#"price("fig")"#, "permission_denied");
}

#[test]
fn nobody_creates_a_function_stronger_than_themselves() {
    let e = shop();
    let server = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "server" })"#));
    fails(
        &e,
        &server,
        r#"Function.create({ name: "mint", role: "admin", body: "() => Key.create({ role: \"admin\" })" })"#,
        "permission_denied",
    );
    ok(
        &e,
        &server,
        r#"Function.create({ name: "serverFn", role: "server", body: "() => 1" })"#,
    );
    // An admin function cannot be rewritten by a server key either.
    ok(
        &e,
        ROOT,
        r#"Function.create({ name: "adminFn", role: "admin", body: "() => 1" })"#,
    );
    fails(
        &e,
        &server,
        r#"adminFn.definition.update({ body: "() => Key.create({ role: \"admin\" }).secret" })"#,
        "permission_denied",
    );
    role(
        &e,
        r#"{ name: "dev", privileges: [{ resource: "Function", actions: { read: true, create: true, write: true } }] }"#,
    );
    let dev = key_with_role(&e, "dev");
    for stronger in ["admin", "server", "server-readonly"] {
        fails(
            &e,
            &dev,
            &format!(
                r#"Function.create({{ name: "f_{}", role: "{stronger}", body: "() => 1" }})"#,
                stronger.replace('-', "_")
            ),
            "permission_denied",
        );
    }
    ok(
        &e,
        &dev,
        r#"Function.create({ name: "own", role: "dev", body: "() => 1" })"#,
    );
    ok(
        &e,
        &dev,
        r#"Function.create({ name: "plain", body: "() => 1" })"#,
    );
    fails(
        &e,
        ROOT,
        r#"Function.create({ name: "ghost", role: "no_such_role", body: "() => 1" })"#,
        "constraint_failure",
    );
}

#[test]
fn schema_resources_are_governed_by_their_privileges() {
    let e = shop();
    role(
        &e,
        r#"{ name: "schema_reader", privileges: [{ resource: "Collection", actions: { read: true } }] }"#,
    );
    role(
        &e,
        r#"{ name: "schema_admin", privileges: [{ resource: "Collection", actions: {
              read: true, create: true, write: "(old, new) => new.name != \"Locked\"", delete: true } }] }"#,
    );
    let reader = key_with_role(&e, "schema_reader");
    let admin = key_with_role(&e, "schema_admin");
    assert_eq!(
        ok(&e, &reader, r#"Collection.byName("Order")!.name"#),
        json!("Order")
    );
    fails(
        &e,
        &reader,
        r#"Collection.create({ name: "Y" })"#,
        "permission_denied",
    );
    ok(&e, &admin, r#"Collection.create({ name: "Y" })"#);
    fails(
        &e,
        &admin,
        r#"Collection.byName("Y")!.update({ name: "Locked" })"#,
        "permission_denied",
    );
    ok(
        &e,
        &admin,
        r#"Collection.byName("Y")!.update({ name: "Z" })"#,
    );
    ok(&e, &admin, r#"Collection.byName("Z")!.delete()"#);
}

#[test]
fn the_work_schedule_scenario_allows_inside_the_window_and_denies_outside() {
    let e = shop();
    ok(&e, ROOT, r#"Collection.create({ name: "Profile" })"#);
    role(
        &e,
        r#"{ name: "shift", membership: [{ resource: "User" }], privileges: [{ resource: "Order", actions: {
              read: "doc => Query.identity()!.onShift",
              write: "(old, new) => Query.identity()!.onShift",
              create: "doc => Query.identity()!.onShift" } }] }"#,
    );
    // `onShift` lives on the user as a computed field over the profile's schedule.
    ok(
        &e,
        ROOT,
        r#"Collection.byName("User")!.update({ computed_fields: { onShift: {
              body: "u => { let s = Profile.where(.user == u).first()!.schedule; let t = Time.now();
                            s.days.includes(t.dayOfWeek) && t.hour >= s.from && t.hour < s.to }" } } })"#,
    );
    let hour = ok(&e, ROOT, "Time.now().hour").as_i64().unwrap();
    let day = ok(&e, ROOT, "Time.now().dayOfWeek").as_i64().unwrap();
    // A window with an hour's margin on each side, and one that excludes today.
    let inside = format!(
        "{{ days: [{day}], from: {}, to: {} }}",
        (hour - 1).max(0),
        (hour + 2).min(24)
    );
    let outside = format!(
        "{{ days: [{}], from: 0, to: 24 }}",
        (1..=7)
            .filter(|d| *d != day)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    ok(
        &e,
        ROOT,
        &format!(r#"Profile.create({{ user: User.byId("1"), schedule: {inside} }})"#),
    );
    let ann = token_for(&e, "1");
    assert_eq!(ok(&e, &ann, r#"Order.byId("50")!.qty"#), json!(1));
    ok(&e, &ann, r#"Order.byId("50")!.update({ qty: 2 })"#);
    ok(&e, &ann, r#"Order.create({ qty: 5 })"#);
    fails(
        &e,
        &ann,
        r#"Order.byId("50")!.delete()"#,
        "permission_denied",
    );
    ok(
        &e,
        ROOT,
        &format!(
            r#"Profile.where(.user == User.byId("1")).first()!.update({{ schedule: {outside} }})"#
        ),
    );
    fails(&e, &ann, r#"Order.byId("50")!.qty"#, "permission_denied");
    assert_eq!(ok(&e, &ann, "Order.all().count()"), json!(0));
    fails(&e, &ann, r#"Order.create({ qty: 5 })"#, "permission_denied");
    fails(
        &e,
        &ann,
        r#"Order.byId("50")!.update({ qty: 3 })"#,
        "permission_denied",
    );
    fails(
        &e,
        &ann,
        r#"Order.byId("50")!.delete()"#,
        "permission_denied",
    );
    assert_eq!(ok(&e, ROOT, r#"Order.byId("50")!.qty"#), json!(2));
}
