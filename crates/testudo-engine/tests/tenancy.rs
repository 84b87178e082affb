//! Tenancy and authentication as a specification: databases isolate, keys and tokens
//! authenticate exactly while they should, scopes only narrow, credentials log in (with a
//! second factor when enrolled), failed logins are throttled, passwords follow policy.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::time::{Duration, SystemTime};

use serde_json::Value as Json;
use testudo_auth::TotpSecret;
use testudo_engine::{Engine, Role, Scope};
use testudo_model::DbId;

mod common;

use common::{ROOT, engine, ok, q, secret_of};

/// Two sibling databases A and B under the root, each with the same collection name and
/// one document, a function, and an index; plus admin keys for both.
struct World {
    e: Engine,
    a: String,
    b: String,
    b_doc: String,
    b_cursor: String,
}

fn world() -> World {
    let e = engine();
    ok(
        &e,
        ROOT,
        r#"Database.create({ name: "A" }); Database.create({ name: "B" })"#,
    );
    let a = secret_of(&ok(
        &e,
        ROOT,
        r#"Key.create({ role: "admin", database: "A" })"#,
    ));
    let b = secret_of(&ok(
        &e,
        ROOT,
        r#"Key.create({ role: "admin", database: "B" })"#,
    ));
    for (key, word) in [(&a, "alpha"), (&b, "bravo")] {
        ok(
            &e,
            key,
            r#"Collection.create({ name: "Notes", indexes: { byWord: { terms: [{ field: "word" }] } } })"#,
        );
        ok(
            &e,
            key,
            r#"Function.create({ name: "Secret", body: "() => 42" })"#,
        );
        ok(
            &e,
            key,
            &format!(
                r#"Set.sequence(0, 20).forEach(i => Notes.create({{ word: "{word}", i: i }}))"#
            ),
        );
    }
    ok(&e, ROOT, r#"Collection.create({ name: "RootOnly" })"#);
    ok(&e, ROOT, r#"RootOnly.create({ word: "root" })"#);
    let b_doc = ok(&e, &b, "Notes.all().first()!.id")
        .as_str()
        .unwrap()
        .to_string();
    let b_cursor = ok(&e, &b, "Notes.all().paginate(2).after")
        .as_str()
        .unwrap()
        .to_string();
    World {
        e,
        a,
        b,
        b_doc,
        b_cursor,
    }
}

#[test]
fn a_key_of_one_database_reaches_nothing_of_its_sibling_parent_or_children() {
    let w = world();
    let a = &w.a;
    // byId with the sibling's id: a different database's document does not exist here.
    assert_eq!(
        ok(&w.e, a, &format!("Notes.byId('{}')", w.b_doc)),
        Json::Null
    );
    // Every read path sees only A's own documents.
    assert_eq!(ok(&w.e, a, "Notes.all().count()"), 20);
    assert_eq!(
        ok(&w.e, a, r#"Notes.all().map(.word).distinct().toArray()"#),
        serde_json::json!(["alpha"])
    );
    assert_eq!(ok(&w.e, a, r#"Notes.byWord("bravo").count()"#), 0);
    assert_eq!(ok(&w.e, a, r#"Notes.where(.word == "bravo").count()"#), 0);
    // A cursor made in B is not a cursor in A.
    assert_eq!(
        q(&w.e, a, &format!("Set.paginate('{}')", w.b_cursor)),
        Err("invalid_cursor".into())
    );
    // History reads stay in A.
    assert_eq!(
        ok(
            &w.e,
            a,
            r#"at (Time.now()) { Notes.all().map(.word).distinct().toArray() }"#
        ),
        serde_json::json!(["alpha"])
    );
    // Functions and schema are A's own; the parent's collections do not exist here.
    assert_eq!(ok(&w.e, a, "Secret()"), 42);
    assert_eq!(
        ok(&w.e, a, "Collection.all().map(.name).toArray()"),
        serde_json::json!(["Notes"])
    );
    assert_eq!(
        q(&w.e, a, "RootOnly.all().count()"),
        Err("unbound_variable".into())
    );
    // A has no children: no database entries are visible.
    assert_eq!(ok(&w.e, a, "Database.all().count()"), 0);
    // The parent sees its children as entries, never their documents.
    assert_eq!(
        ok(&w.e, ROOT, "Database.all().map(.name).toArray().order()"),
        serde_json::json!(["A", "B"])
    );
    assert_eq!(
        q(&w.e, ROOT, "Notes.all().count()"),
        Err("unbound_variable".into())
    );
    // B's key still sees B's own data, untouched by A.
    assert_eq!(
        ok(&w.e, &w.b, "Notes.all().map(.word).distinct().toArray()"),
        serde_json::json!(["bravo"])
    );
    // Scoping into the sibling from A's key is impossible.
    assert_eq!(
        q(&w.e, &format!("{a}:B:admin"), "1"),
        Err("unauthorized".into())
    );
}

#[test]
fn built_in_roles_allow_and_deny_exactly_their_operations() {
    let e = engine();
    ok(
        &e,
        ROOT,
        r#"Collection.create({ name: "Docs" }); Database.create({ name: "Kid" })"#,
    );
    ok(&e, ROOT, r#"Docs.create({ n: 1 })"#);
    let server = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "server" })"#));
    let readonly = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "server-readonly" })"#));
    let client = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "client" })"#));

    // server: documents and schema yes; keys and databases no.
    assert_eq!(ok(&e, &server, "Docs.all().count()"), 1);
    assert!(q(&e, &server, "Docs.create({ n: 2 })").is_ok());
    assert!(q(&e, &server, r#"Collection.create({ name: "ByServer" })"#).is_ok());
    assert_eq!(
        q(&e, &server, r#"Key.create({ role: "admin" })"#),
        Err("permission_denied".into())
    );
    assert_eq!(
        q(&e, &server, r#"Database.create({ name: "Nope" })"#),
        Err("permission_denied".into())
    );
    assert_eq!(
        ok(&e, &server, "Database.all().count()"),
        0,
        "denied entries are filtered from sets"
    );
    assert_eq!(ok(&e, &server, "Key.all().count()"), 0);

    // server-readonly: reads only.
    assert_eq!(ok(&e, &readonly, "Docs.all().count()"), 2);
    assert_eq!(
        q(&e, &readonly, "Docs.create({ n: 3 })"),
        Err("permission_denied".into())
    );
    assert_eq!(
        q(&e, &readonly, "Docs.all().first()!.update({ n: 9 })"),
        Err("permission_denied".into())
    );
    assert_eq!(
        q(&e, &readonly, "Docs.all().first()!.delete()"),
        Err("permission_denied".into())
    );

    // client: nothing at all.
    assert_eq!(ok(&e, &client, "Docs.all().count()"), 0);
    assert_eq!(
        q(&e, &client, "Docs.create({ n: 4 })"),
        Err("permission_denied".into())
    );
    assert_eq!(ok(&e, &client, "Docs.all().first()"), Json::Null);
}

#[test]
fn scoped_secrets_narrow_and_every_bad_scope_is_refused() {
    let e = engine();
    ok(&e, ROOT, r#"Database.create({ name: "child" })"#);
    let child_admin = secret_of(&ok(
        &e,
        ROOT,
        r#"Key.create({ role: "admin", database: "child" })"#,
    ));
    ok(&e, &child_admin, r#"Database.create({ name: "grand" })"#);
    ok(&e, &child_admin, r#"Collection.create({ name: "Users" })"#);
    let user = ok(&e, &child_admin, r#"Users.create({ name: "ada" }).id"#)
        .as_str()
        .unwrap()
        .to_string();
    let server = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "server" })"#));

    // Admin secrets scope into descendants, as any role.
    let scope = e.authenticate(&format!("{ROOT}:child:admin")).unwrap();
    assert_eq!(scope.role, Role::Admin);
    assert_ne!(scope.db, DbId::ROOT);
    let grand = e
        .authenticate(&format!("{ROOT}:child/grand:server-readonly"))
        .unwrap();
    assert_eq!(grand.role, Role::ServerReadOnly);
    assert_eq!(
        e.authenticate(&format!("{child_admin}:grand:server"))
            .unwrap()
            .role,
        Role::Server
    );
    assert_eq!(
        e.authenticate(&format!("{ROOT}:server")).unwrap().role,
        Role::Server
    );
    let as_user = e
        .authenticate(&format!("{child_admin}:@doc/Users/{user}"))
        .unwrap();
    assert_eq!(
        as_user.identity.map(|(_, id)| id.0.to_string()),
        Some(user.clone())
    );
    assert_eq!(
        ok(
            &e,
            &format!("{child_admin}:@doc/Users/{user}"),
            "Query.identity().id"
        ),
        user.as_str()
    );

    // Scopes cannot widen, and malformed scopes are errors, never ignored.
    for bad in [
        format!("{server}:admin"),
        format!("{server}:child:server"),
        format!("{server}:server-readonly"),
        format!("{child_admin}:..:admin"),
        format!("{child_admin}:grand/..:admin"),
        format!("{child_admin}:/grand:admin"),
        format!("{child_admin}:grand/:admin"),
        format!("{child_admin}::admin"),
        format!("{child_admin}:superuser"),
        format!("{child_admin}:grand:admin:extra"),
        format!("{child_admin}:nosuchchild:admin"),
        format!("{child_admin}:@doc/Users"),
        format!("{child_admin}:@doc/Nope/1"),
        format!("{child_admin}:@role/"),
        format!("{ROOT}x:admin"),
    ] {
        assert!(e.authenticate(&bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn deleted_and_expired_keys_fail_at_once() {
    let e = engine();
    let key = ok(&e, ROOT, r#"Key.create({ role: "server" })"#);
    let secret = secret_of(&key);
    assert_eq!(ok(&e, &secret, "1 + 1"), 2);
    // The secret is shown once: reading the key later shows no secret.
    let id = key["id"].as_str().unwrap();
    assert_eq!(
        ok(&e, ROOT, &format!("Key.byId('{id}')!.secret")),
        Json::Null
    );
    ok(&e, ROOT, &format!("Key.byId('{id}')!.delete()"));
    assert_eq!(q(&e, &secret, "1"), Err("unauthorized".into()));

    let short = secret_of(&ok(
        &e,
        ROOT,
        r#"Key.create({ role: "server", ttl: Time.now().add(1, "second") })"#,
    ));
    assert_eq!(ok(&e, &short, "1"), 1);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(q(&e, &short, "1"), Err("unauthorized".into()));
    // A tampered secret never authenticates.
    let mut tampered = secret.clone();
    tampered.replace_range(10..11, if &secret[10..11] == "A" { "B" } else { "A" });
    assert!(e.authenticate(&tampered).is_err());
}

#[test]
fn deleting_a_database_cuts_off_it_and_every_descendant() {
    let e = engine();
    ok(&e, ROOT, r#"Database.create({ name: "parent" })"#);
    let parent = secret_of(&ok(
        &e,
        ROOT,
        r#"Key.create({ role: "admin", database: "parent" })"#,
    ));
    ok(&e, &parent, r#"Database.create({ name: "kid" })"#);
    let kid = secret_of(&ok(
        &e,
        &parent,
        r#"Key.create({ role: "admin", database: "kid" })"#,
    ));
    assert_eq!(ok(&e, &kid, "1"), 1);
    ok(&e, ROOT, r#"Database.byName("parent")!.delete()"#);
    assert_eq!(q(&e, &parent, "1"), Err("unauthorized".into()));
    assert_eq!(q(&e, &kid, "1"), Err("unauthorized".into()));
    assert!(e.authenticate(&format!("{ROOT}:parent:admin")).is_err());
}

#[test]
fn credentials_log_in_tokens_expire_and_logout_is_immediate() {
    let e = engine();
    ok(&e, ROOT, r#"Collection.create({ name: "People" })"#);
    ok(
        &e,
        ROOT,
        r#"let p = People.create({ name: "grace" }); Credential.create({ document: p, password: "correct horse battery" })"#,
    );
    // The credential never shows a password or its hash.
    let cred = ok(&e, ROOT, r#"Credential.byDocument(People.all().first()!)"#);
    assert!(
        cred.get("password").is_none() && !cred.to_string().contains("argon2"),
        "{cred}"
    );
    assert_eq!(
        ok(
            &e,
            ROOT,
            r#"Credential.byDocument(People.all().first()!)!.verify("correct horse battery")"#
        ),
        true
    );
    assert_eq!(
        ok(
            &e,
            ROOT,
            r#"Credential.byDocument(People.all().first()!)!.verify("wrong")"#
        ),
        false
    );
    let token = secret_of(&ok(
        &e,
        ROOT,
        r#"Credential.byDocument(People.all().first()!)!.login("correct horse battery")"#,
    ));
    assert!(token.starts_with("fnT"));
    // No role: not even its own identity document is readable (as in Fauna).
    assert_eq!(
        q(&e, &token, "Query.identity()!.name"),
        Err("permission_denied".into())
    );
    assert_eq!(
        q(
            &e,
            ROOT,
            r#"Credential.byDocument(People.all().first()!)!.login("wrong")"#
        ),
        Err("invalid_secret".into())
    );
    // Tokens list by document; a token may delete itself (logout), effective at once.
    assert_eq!(
        ok(&e, ROOT, "Token.byDocument(People.all().first()!).count()"),
        1
    );
    ok(&e, &token, "Query.token()!.delete()");
    assert_eq!(q(&e, &token, "1"), Err("unauthorized".into()));
    // Token.create and token expiry.
    let t = secret_of(&ok(
        &e,
        ROOT,
        r#"Token.create({ document: People.all().first()!, ttl: Time.now().add(1, "second") })"#,
    ));
    assert_eq!(ok(&e, &t, "1"), 1);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(q(&e, &t, "1"), Err("unauthorized".into()));
    // Deleting the identity document ends its tokens.
    let t2 = secret_of(&ok(
        &e,
        ROOT,
        r#"Token.create({ document: People.all().first()! })"#,
    ));
    assert_eq!(ok(&e, &t2, "1"), 1);
    ok(&e, ROOT, "People.all().first()!.delete()");
    assert_eq!(q(&e, &t2, "1"), Err("unauthorized".into()));
}

#[test]
fn a_token_has_only_its_baseline_rights() {
    let e = engine();
    ok(&e, ROOT, r#"Collection.create({ name: "Acct" })"#);
    ok(
        &e,
        ROOT,
        r#"let a = Acct.create({ n: 1 }); let b = Acct.create({ n: 2 }); Token.create({ document: b }); Credential.create({ document: a, password: "a long passphrase" })"#,
    );
    let token = secret_of(&ok(
        &e,
        ROOT,
        r#"Credential.byDocument(Acct.all().first()!)!.login("a long passphrase")"#,
    ));
    assert_eq!(ok(&e, &token, "Acct.all().count()"), 0);
    assert_eq!(
        q(&e, &token, "Acct.create({ n: 3 })"),
        Err("permission_denied".into())
    );
    // Its own credential and tokens are readable; others' are not.
    assert_eq!(ok(&e, &token, "Credential.all().count()"), 1);
    assert_eq!(ok(&e, &token, "Token.all().count()"), 1);
}

#[test]
fn totp_enrolment_login_and_replay() {
    let e = engine();
    ok(&e, ROOT, r#"Collection.create({ name: "U" })"#);
    ok(
        &e,
        ROOT,
        r#"Credential.create({ document: U.create({}), password: "a long passphrase" })"#,
    );
    let enrolled = ok(&e, ROOT, "Credential.all().first()!.enrollTotp()");
    assert!(
        enrolled["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let secret = TotpSecret::from_base32(enrolled["secret"].as_str().unwrap()).unwrap();
    // Without a code, or with a wrong one, login fails.
    assert_eq!(
        q(
            &e,
            ROOT,
            r#"Credential.all().first()!.login("a long passphrase")"#
        ),
        Err("invalid_secret".into())
    );
    assert!(
        q(
            &e,
            ROOT,
            r#"Credential.all().first()!.login("a long passphrase", null, "000000")"#
        )
        .is_err()
    );
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = secret.code_at(unix);
    let login = format!(r#"Credential.all().first()!.login("a long passphrase", null, "{code}")"#);
    assert!(
        ok(&e, ROOT, &login)["secret"]
            .as_str()
            .unwrap()
            .starts_with("fnT")
    );
    // The same code again is a replay.
    assert_eq!(q(&e, ROOT, &login), Err("invalid_secret".into()));
}

#[test]
fn failed_logins_are_throttled_then_locked() {
    let e = engine();
    ok(&e, ROOT, r#"Collection.create({ name: "V" })"#);
    ok(
        &e,
        ROOT,
        r#"Credential.create({ document: V.create({}), password: "a long passphrase" })"#,
    );
    let mut throttled = false;
    for _ in 0..12 {
        match q(&e, ROOT, r#"Credential.all().first()!.login("nope")"#) {
            Err(code) => assert_eq!(code, "invalid_secret"),
            Ok(v) => panic!("wrong password logged in: {v}"),
        }
        let right = q(
            &e,
            ROOT,
            r#"Credential.all().first()!.login("a long passphrase")"#,
        );
        if right.is_err() {
            throttled = true;
            break;
        }
        // A success clears the identity's failures; keep failing to reach the lock.
        for _ in 0..6 {
            let _ = q(&e, ROOT, r#"Credential.all().first()!.login("nope")"#);
        }
    }
    assert!(
        throttled,
        "repeated failures never throttled the correct password"
    );
}

#[test]
fn password_policy_refuses_short_common_and_patterned_passwords() {
    let e = engine();
    ok(&e, ROOT, r#"Collection.create({ name: "W" })"#);
    for bad in [
        "short",
        "password1234",
        "aaaaaaaaaaaaaaa",
        "123456789012",
        &"x".repeat(200),
    ] {
        let r = q(
            &e,
            ROOT,
            &format!(r#"Credential.create({{ document: W.create({{}}), password: "{bad}" }})"#),
        );
        assert_eq!(r, Err("constraint_failure".into()), "{bad}");
    }
    assert!(
        q(
            &e,
            ROOT,
            r#"Credential.create({ document: W.create({}), password: "violet quarry lantern" })"#
        )
        .is_ok()
    );
    // A child database may set its own policy.
    ok(
        &e,
        ROOT,
        r#"Database.create({ name: "lax", password_policy: { min_length: 4 } })"#,
    );
    let lax = secret_of(&ok(
        &e,
        ROOT,
        r#"Key.create({ role: "admin", database: "lax" })"#,
    ));
    ok(&e, &lax, r#"Collection.create({ name: "W" })"#);
    assert!(
        q(
            &e,
            &lax,
            r#"Credential.create({ document: W.create({}), password: "qz7!" })"#
        )
        .is_ok()
    );
}

#[test]
fn authentication_is_cached_after_the_first_sight_of_a_secret() {
    let e = engine();
    let key = secret_of(&ok(&e, ROOT, r#"Key.create({ role: "server" })"#));
    assert!(
        e.authenticate_fast(&key).is_none(),
        "first sight needs storage"
    );
    e.authenticate(&key).unwrap();
    assert!(
        matches!(e.authenticate_fast(&key), Some(Ok(_))),
        "second sight is answered from the cache"
    );
    assert!(matches!(e.authenticate_fast(ROOT), Some(Ok(_))));
    assert!(matches!(e.authenticate_fast("nah"), Some(Err(_))));
    let _ = Scope::admin(DbId::ROOT);
}
