//! Point-in-time restore (`Database.restore`, beyond Fauna) as a specification: a new
//! database holding what another held at a past time within its retained history, with
//! nothing existing touched and no secret of the old database valid in the new one.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use common::{ROOT, engine, fails, ok, q, scoped, secret_of};
use serde_json::json;

#[test]
fn a_bad_deployment_that_deleted_documents_is_undone_by_restoring_the_time_before_it() {
    let e = engine();
    ok(&e, ROOT, "Database.create({ name: 'app' })");
    let app = scoped("app");
    ok(
        &e,
        &app,
        "Collection.create({ name: 'Order', history_days: 7, \
           indexes: { byCustomer: { terms: [{ field: 'customer' }] } }, \
           constraints: [{ unique: ['ref'] }] })",
    );
    ok(
        &e,
        &app,
        "Set.sequence(0, 50).forEach(i => Order.create({ ref: i, customer: if (i % 2 == 0) 'ann' else 'bob', total: i * 10 })); \
         Function.create({ name: 'revenue', body: '() => Order.all().fold(0, (a, o) => a + o.total)' }); \
         Role.create({ name: 'clerk', privileges: [{ resource: 'Order', actions: { read: true } }] })",
    );
    let old_key = secret_of(&ok(&e, &app, "Key.create({ role: 'admin' })"));
    let before = ok(&e, &app, "Time.now()").as_str().unwrap().to_string();
    // The bad deployment.
    ok(&e, &app, "Order.all().forEach(.delete())");
    assert_eq!(ok(&e, &app, "Order.all().count()"), json!(0));

    let restored = ok(
        &e,
        ROOT,
        &format!("Database.restore({{ from: 'app', at: Time('{before}'), name: 'app_restored' }})"),
    );
    assert_eq!(restored["name"], json!("app_restored"));
    let fixed = scoped("app_restored");
    assert_eq!(ok(&e, &fixed, "Order.all().count()"), json!(50));
    assert_eq!(ok(&e, &fixed, "revenue()"), json!(12250));
    assert_eq!(ok(&e, &fixed, "Order.byCustomer('ann').count()"), json!(25));
    assert_eq!(ok(&e, &fixed, "Role.byName('clerk')!.name"), json!("clerk"));
    // Indexes and constraints keep working on the restored data.
    fails(
        &e,
        &fixed,
        "Order.create({ ref: 3, customer: 'x' })",
        "constraint_failure",
    );
    ok(
        &e,
        &fixed,
        "Order.create({ ref: 99, customer: 'ann', total: 1 })",
    );
    assert_eq!(ok(&e, &fixed, "Order.byCustomer('ann').count()"), json!(26));
    // The source is untouched, and its keys never open the restored database.
    assert_eq!(ok(&e, &app, "Order.all().count()"), json!(0));
    assert_eq!(ok(&e, &old_key, "Order.all().count()"), json!(0));
    assert_eq!(ok(&e, &fixed, "Key.all().count()"), json!(0));
    assert_eq!(ok(&e, &fixed, "Database.all().count()"), json!(0));
}

#[test]
fn a_time_before_the_retained_history_is_refused_and_nothing_is_created() {
    let e = engine();
    ok(&e, ROOT, "Database.create({ name: 'app' })");
    ok(
        &e,
        &scoped("app"),
        "Collection.create({ name: 'Note', history_days: 1 })",
    );
    ok(&e, &scoped("app"), "Note.create({ v: 1 })");
    fails(
        &e,
        ROOT,
        "Database.restore({ from: 'app', at: Time('2020-01-01T00:00:00Z'), name: 'old' })",
        "constraint_failure",
    );
    assert_eq!(
        ok(&e, ROOT, "Database.all().map(.name).toArray()"),
        json!(["app"])
    );
}

#[test]
fn restore_checks_its_arguments_and_needs_an_admin() {
    let e = engine();
    ok(&e, ROOT, "Database.create({ name: 'app' })");
    fails(
        &e,
        ROOT,
        "Database.restore({ from: 'nope', at: Time.now(), name: 'x' })",
        "constraint_failure",
    );
    fails(
        &e,
        ROOT,
        "Database.restore({ from: 'app', at: 'yesterday', name: 'x' })",
        "constraint_failure",
    );
    fails(
        &e,
        ROOT,
        "Database.restore({ from: 'app', at: Time.now(), name: 'app' })",
        "constraint_failure",
    );
    let server = secret_of(&ok(&e, ROOT, "Key.create({ role: 'server' })"));
    assert_eq!(
        q(
            &e,
            &server,
            "Database.restore({ from: 'app', at: Time.now(), name: 'x' })"
        ),
        Err("permission_denied".to_string())
    );
}
