//! The engine's audit records as a specification: a query failed by a refusal leaves a
//! denial naming the role, action and resource; a function running with its own role leaves
//! an elevated-call record; committed schema and access-control changes leave change
//! records (and uncommitted ones none); authentication failures and logins are recorded;
//! no record carries a secret or document data.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::{ROOT, ok, q, secret_of};
use testudo_audit::{AuditEvent, CredentialRef, MemorySink};
use testudo_engine::{Engine, EngineOptions};

fn audited() -> (Engine, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::new());
    let engine = common::engine_with(EngineOptions {
        audit: Some(sink.clone()),
        ..EngineOptions::default()
    });
    (engine, sink)
}

fn setup(e: &Engine) -> String {
    ok(e, ROOT, "Collection.create({ name: 'Secret' })");
    ok(
        e,
        ROOT,
        "Secret.create({ id: '1', text: 'the launch codes' }); \
         Role.create({ name: 'reader', privileges: [{ resource: 'peek', actions: { call: true } }] }); \
         Role.create({ name: 'inner', privileges: [{ resource: 'Secret', actions: { read: true } }] }); \
         Function.create({ name: 'peek', role: 'inner', body: '(id) => Secret.byId(id)!.text.length' })",
    );
    secret_of(&ok(e, ROOT, "Key.create({ role: 'reader' })"))
}

#[test]
fn a_refusal_that_fails_a_query_is_recorded_with_role_action_and_resource() {
    let (e, sink) = audited();
    let reader = setup(&e);
    assert_eq!(
        q(&e, &reader, "Secret.create({ text: 'x' })"),
        Err("permission_denied".into())
    );
    assert_eq!(
        q(&e, &reader, "Secret.byId('1')!.text"),
        Err("permission_denied".into())
    );
    let denials: Vec<_> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Denied(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert_eq!(denials[0].role, "reader");
    assert_eq!(
        (denials[0].action.as_str(), denials[0].resource.as_str()),
        ("create", "Secret")
    );
    assert_eq!(
        (denials[1].action.as_str(), denials[1].resource.as_str()),
        ("read", "Secret/1")
    );
    assert!(matches!(denials[0].credential, CredentialRef::Key { .. }));
}

#[test]
fn a_function_running_with_its_own_role_is_recorded_as_elevated() {
    let (e, sink) = audited();
    let reader = setup(&e);
    assert_eq!(ok(&e, &reader, "peek('1')"), serde_json::json!(16));
    let calls: Vec<_> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::ElevatedCall(c) => Some((c.function, c.role, c.txn_ts.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(calls, vec![("peek".to_string(), "inner".to_string(), true)]);
}

#[test]
fn committed_schema_and_access_changes_are_recorded_and_failed_ones_are_not() {
    let (e, sink) = audited();
    setup(&e);
    ok(&e, ROOT, "Role.byName('inner')!.update({ privileges: [] })");
    assert!(
        q(
            &e,
            ROOT,
            "Collection.create({ name: 'Other' }); abort('no')"
        )
        .is_err()
    );
    let changes: Vec<_> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Change(c) => Some((c.object, c.name, c.action)),
            _ => None,
        })
        .collect();
    let expect = |object: &str, name: &str, action: &str| {
        (object.to_string(), name.to_string(), action.to_string())
    };
    assert!(
        changes.contains(&expect("collection", "Secret", "create")),
        "{changes:?}"
    );
    assert!(changes.contains(&expect("role", "reader", "create")));
    assert!(changes.contains(&expect("function", "peek", "create")));
    assert!(changes.contains(&expect("role", "inner", "update")));
    assert!(changes.iter().any(|(o, _, a)| o == "key" && a == "create"));
    assert!(
        !changes.iter().any(|(_, n, _)| n == "Other"),
        "aborted: {changes:?}"
    );
}

#[test]
fn failed_authentication_and_logins_are_recorded_without_secrets() {
    let (e, sink) = audited();
    ok(&e, ROOT, "Collection.create({ name: 'User' })");
    ok(
        &e,
        ROOT,
        "User.create({ id: '1' }); Credential.create({ document: User.byId('1'), password: 'hunter2 hunter2' })",
    );
    let token = secret_of(&ok(
        &e,
        ROOT,
        "Credential.byDocument(User.byId('1'))!.login('hunter2 hunter2')",
    ));
    assert!(
        q(
            &e,
            ROOT,
            "Credential.byDocument(User.byId('1'))!.login('wrong password')"
        )
        .is_err()
    );
    assert_eq!(q(&e, "fnAAAAnot-a-secret", "1"), Err("unauthorized".into()));
    let events = sink.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AuditEvent::AuthFailure(_)))
    );
    let logins: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AuditEvent::Login(l) => Some(l.outcome.is_ok()),
            _ => None,
        })
        .collect();
    assert_eq!(logins, vec![true, false]);
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        ROOT,
        token.as_str(),
        "hunter2",
        "wrong password",
        "the launch codes",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit records");
    }
}

#[test]
fn records_of_a_child_database_name_it_by_path_and_follow_a_rename() {
    let (e, sink) = audited();
    ok(&e, ROOT, "Database.create({ name: 'app' })");
    ok(
        &e,
        "root-secret:app:admin",
        "Database.create({ name: 'tenant1' })",
    );
    let tenant = "root-secret:app/tenant1:admin";
    ok(&e, tenant, "Collection.create({ name: 'Books' })");
    ok(
        &e,
        "root-secret:app:admin",
        "Database.byName('tenant1')!.update({ name: 'tenant2' })",
    );
    ok(
        &e,
        "root-secret:app/tenant2:admin",
        "Collection.create({ name: 'Films' })",
    );
    let paths: Vec<_> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Change(c) if c.object == "collection" => {
                Some((c.name, c.database.path.as_deref().map(str::to_owned)))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        paths,
        vec![
            ("Books".to_owned(), Some("app/tenant1".to_owned())),
            ("Films".to_owned(), Some("app/tenant2".to_owned())),
        ]
    );
    let root_changes: Vec<_> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Change(c) if c.name == "app" => {
                Some(c.database.path.as_deref().map(str::to_owned))
            }
            _ => None,
        })
        .collect();
    assert_eq!(root_changes, vec![Some(String::new())]);
}

#[test]
fn logins_and_mfa_events_name_their_database_by_path() {
    let (e, sink) = audited();
    ok(&e, ROOT, "Database.create({ name: 'shop' })");
    let shop = "root-secret:shop:admin";
    ok(&e, shop, "Collection.create({ name: 'User' })");
    ok(
        &e,
        shop,
        "User.create({ id: '1' }); Credential.create({ document: User.byId('1'), password: 'hunter2 hunter2' })",
    );
    ok(
        &e,
        shop,
        "Credential.byDocument(User.byId('1'))!.login('hunter2 hunter2')",
    );
    assert!(
        q(
            &e,
            shop,
            "Credential.byDocument(User.byId('1'))!.login('wrong password')"
        )
        .is_err()
    );
    ok(
        &e,
        shop,
        "Credential.byDocument(User.byId('1'))!.enrollTotp()",
    );
    let events = sink.events();
    let logins: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AuditEvent::Login(l) => Some(l.database.path.as_deref().map(str::to_owned)),
            _ => None,
        })
        .collect();
    assert_eq!(logins, vec![Some("shop".to_owned()); 2]);
    let mfa: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AuditEvent::Mfa(m) => Some(m.database.path.as_deref().map(str::to_owned)),
            _ => None,
        })
        .collect();
    assert_eq!(mfa, vec![Some("shop".to_owned())]);
}
