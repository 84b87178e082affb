//! Field masking (beyond Fauna) as a specification: a privilege's `mask` replaces fields with
//! a fixed value, `redact` with null and `hide` removes them, on every read path, for the roles that say so —
//! and never changes what the stored document holds or what roles without masks see.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use common::{ROOT, engine, fails, ok, secret_of};
use serde_json::{Value as Json, json};
use testudo_engine::Engine;

/// Employees with a social security number (masked for staff), a salary (masked to null),
/// private notes (hidden), a nested address whose street is hidden; a computed field over the
/// salary; indexes by name, by salary, by street and by team ordered by salary.
fn company() -> Engine {
    let e = engine();
    ok(
        &e,
        ROOT,
        r#"Collection.create({ name: "Employee",
             history_days: 30,
             computed_fields: {
               yearly: { body: "(e) => if (e.salary == null) null else e.salary * 12" },
               initials: { body: "(e) => e.name.slice(0, 1)" } },
             indexes: {
               byName: { terms: [{ field: "name" }] },
               bySalary: { terms: [{ field: "salary" }] },
               byStreet: { terms: [{ field: "address.street" }] },
               byTeam: { terms: [{ field: "team" }], values: [{ field: "salary", order: "desc" }] },
               byTeamName: { terms: [{ field: "team" }], values: [{ field: "name" }] } } })"#,
    );
    ok(&e, ROOT, r#"Collection.create({ name: "Desk" })"#);
    ok(
        &e,
        ROOT,
        r#"Employee.create({ id: "1", name: "ann", team: "a", ssn: "111-11-1111", salary: 9000,
                             notes: "raise due", address: { street: "1 Main St", city: "Lyon" } });
           Employee.create({ id: "2", name: "bob", team: "a", ssn: "222-22-2222", salary: 7000,
                             notes: "none", address: { street: "2 Side St", city: "Nice" } });
           Desk.create({ id: "7", owner: Employee.byId("1") })"#,
    );
    ok(
        &e,
        ROOT,
        r#"Role.create({ name: "staff", privileges: [
             { resource: "Employee", actions: { read: true, write: true, history_read: true },
               mask: { ssn: "***-**-****" }, redact: ["salary"], hide: ["notes", "address.street"] },
             { resource: "Desk", actions: { read: true } }] })"#,
    );
    e
}

fn key(e: &Engine, role: &str) -> String {
    secret_of(&ok(
        e,
        ROOT,
        &format!(r#"Key.create({{ role: "{role}" }})"#),
    ))
}

#[test]
fn a_point_read_shows_masks_and_drops_hidden_fields() {
    let e = company();
    let staff = key(&e, "staff");
    let doc = ok(&e, &staff, r#"Employee.byId("1")"#);
    assert_eq!(doc["name"], json!("ann"));
    assert_eq!(doc["ssn"], json!("***-**-****"));
    assert_eq!(doc["salary"], Json::Null);
    assert!(doc.get("notes").is_none(), "{doc}");
    assert_eq!(doc["address"], json!({ "city": "Lyon" }));
    // The same document for a role without masks, and for a server key, is unchanged.
    let server = key(&e, "server");
    let full = ok(&e, &server, r#"Employee.byId("1")"#);
    assert_eq!(full["ssn"], json!("111-11-1111"));
    assert_eq!(full["notes"], json!("raise due"));
}

#[test]
fn field_access_projection_and_data_see_the_masked_view() {
    let e = company();
    let staff = key(&e, "staff");
    assert_eq!(
        ok(&e, &staff, r#"Employee.byId("1")!.ssn"#),
        json!("***-**-****")
    );
    assert_eq!(ok(&e, &staff, r#"Employee.byId("1")!.notes"#), Json::Null);
    assert_eq!(
        ok(
            &e,
            &staff,
            r#"Employee.byId("1") { name, ssn, notes, address }"#
        ),
        json!({ "name": "ann", "ssn": "***-**-****", "notes": null, "address": { "city": "Lyon" } })
    );
    assert_eq!(
        ok(&e, &staff, r#"Employee.byId("1")!.data.ssn"#),
        json!("***-**-****")
    );
    assert_eq!(
        ok(
            &e,
            &staff,
            r#"Object.keys(Employee.byId("1")!.data).includes("notes")"#
        ),
        json!(false)
    );
}

#[test]
fn scans_filters_and_orders_cannot_see_through_a_mask() {
    let e = company();
    let staff = key(&e, "staff");
    assert_eq!(
        ok(
            &e,
            &staff,
            r#"Employee.all().where(.ssn == "111-11-1111").count()"#
        ),
        json!(0)
    );
    assert_eq!(
        ok(
            &e,
            &staff,
            r#"Employee.all().where(.salary > 8000).count()"#
        ),
        json!(0)
    );
    assert_eq!(
        ok(&e, &staff, r#"Employee.all().map(.ssn).toArray()"#),
        json!(["***-**-****", "***-**-****"])
    );
    // Ordered by a masked field: every key is null, so the order is the scan's, not salary's.
    assert_eq!(
        ok(
            &e,
            &staff,
            r#"Employee.all().order(desc(.salary)).map(.name).toArray()"#
        ),
        ok(&e, &staff, r#"Employee.all().map(.name).toArray()"#)
    );
    let page = ok(&e, &staff, r#"Employee.all().pageSize(1)"#);
    assert_eq!(page["data"][0]["ssn"], json!("***-**-****"));
    let after = page["after"].as_str().unwrap();
    let next = ok(&e, &staff, &format!(r#"Set.paginate("{after}")"#));
    assert_eq!(next["data"][0]["ssn"], json!("***-**-****"));
    assert!(next["data"][0].get("notes").is_none());
}

#[test]
fn an_index_covering_a_masked_field_is_refused_and_others_return_masked_documents() {
    let e = company();
    let staff = key(&e, "staff");
    fails(
        &e,
        &staff,
        r#"Employee.bySalary(9000).toArray()"#,
        "permission_denied",
    );
    fails(
        &e,
        &staff,
        r#"Employee.byStreet("1 Main St").toArray()"#,
        "permission_denied",
    );
    // A masked field used only as an index value still reveals its order.
    fails(
        &e,
        &staff,
        r#"Employee.byTeam("a").toArray()"#,
        "permission_denied",
    );
    let found = ok(&e, &staff, r#"Employee.byName("bob").first()"#);
    assert_eq!(found["ssn"], json!("***-**-****"));
    assert_eq!(
        ok(
            &e,
            &staff,
            r#"Employee.byTeamName("a").map(.name).toArray()"#
        ),
        json!(["ann", "bob"])
    );
    // A server key may use them all.
    let server = key(&e, "server");
    assert_eq!(
        ok(&e, &server, r#"Employee.bySalary(9000).first()!.name"#),
        json!("ann")
    );
    // A cursor over such an index, made by someone who may use it, is refused to staff too.
    let page = ok(&e, &server, r#"Employee.byTeam("a").pageSize(1)"#);
    let after = page["after"].as_str().unwrap();
    fails(
        &e,
        &staff,
        &format!(r#"Set.paginate("{after}")"#),
        "permission_denied",
    );
}

#[test]
fn computed_fields_read_the_masked_view_and_can_be_masked_by_name() {
    let e = company();
    let staff = key(&e, "staff");
    let doc = ok(&e, &staff, r#"Employee.byId("1")"#);
    assert_eq!(doc["yearly"], Json::Null, "computed from the masked salary");
    assert_eq!(doc["initials"], json!("a"));
    ok(
        &e,
        ROOT,
        r#"Role.create({ name: "auditor", privileges: [
             { resource: "Employee", actions: { read: true }, hide: ["yearly"], mask: { initials: "?" } }] })"#,
    );
    let auditor = key(&e, "auditor");
    let doc = ok(&e, &auditor, r#"Employee.byId("1")"#);
    assert!(doc.get("yearly").is_none(), "{doc}");
    assert_eq!(doc["initials"], json!("?"));
    assert_eq!(
        ok(&e, &auditor, r#"Employee.byId("1")!.yearly"#),
        Json::Null
    );
    assert_eq!(
        ok(&e, &auditor, r#"Employee.byId("1")!.salary"#),
        json!(9000)
    );
}

#[test]
fn references_followed_and_history_reads_are_masked_too() {
    let e = company();
    let staff = key(&e, "staff");
    assert_eq!(
        ok(&e, &staff, r#"Desk.byId("7")!.owner.ssn"#),
        json!("***-**-****")
    );
    let before = ok(&e, ROOT, "Time.now()");
    let before = before.as_str().unwrap().to_string();
    ok(
        &e,
        ROOT,
        r#"Employee.byId("1")!.update({ ssn: "999-99-9999" })"#,
    );
    assert_eq!(
        ok(
            &e,
            &staff,
            &format!(r#"at(Time("{before}")) {{ Employee.byId("1")!.ssn }}"#)
        ),
        json!("***-**-****")
    );
}

#[test]
fn a_write_through_a_masked_view_never_stores_the_mask() {
    let e = company();
    let staff = key(&e, "staff");
    let updated = ok(&e, &staff, r#"Employee.byId("1")!.update({ team: "b" })"#);
    assert_eq!(updated["ssn"], json!("***-**-****"));
    let stored = ok(&e, ROOT, r#"Employee.byId("1")"#);
    assert_eq!(stored["team"], json!("b"));
    assert_eq!(stored["ssn"], json!("111-11-1111"));
    assert_eq!(stored["salary"], json!(9000));
    assert_eq!(stored["notes"], json!("raise due"));
    assert_eq!(stored["address"]["street"], json!("1 Main St"));
}

#[test]
fn a_second_role_reading_without_masks_lifts_them() {
    let e = company();
    ok(
        &e,
        ROOT,
        r#"Role.create({ name: "hr", privileges: [
             { resource: "Employee", actions: { read: "(e) => e.team == 'a'" } }] });
           Collection.create({ name: "Person" })"#,
    );
    ok(
        &e,
        ROOT,
        r#"Person.create({ id: "5", name: "hr-user" });
           Role.byName("staff")!.update({ membership: [{ resource: "Person" }] });
           Role.byName("hr")!.update({ membership: [{ resource: "Person" }] });
           Credential.create({ document: Person.byId("5"), password: "correct horse" })"#,
    );
    let token = secret_of(&ok(
        &e,
        ROOT,
        r#"Credential.byDocument(Person.byId("5"))!.login("correct horse")"#,
    ));
    // Both roles read team "a": hr's read holds and masks nothing.
    assert_eq!(
        ok(&e, &token, r#"Employee.byId("1")!.ssn"#),
        json!("111-11-1111")
    );
    ok(&e, ROOT, r#"Employee.byId("2")!.update({ team: "z" })"#);
    // For a document hr's predicate does not cover, staff's masks apply.
    assert_eq!(
        ok(&e, &token, r#"Employee.byId("2")!.ssn"#),
        json!("***-**-****")
    );
}

#[test]
fn a_function_running_as_its_own_role_sees_what_that_role_sees() {
    let e = company();
    ok(
        &e,
        ROOT,
        r#"Function.create({ name: "ssnTail", role: "server",
             body: "(id) => Employee.byId(id)!.ssn.slice(7)" });
           Role.byName("staff")!.update({ privileges: Role.byName("staff")!.privileges.append(
             { resource: "ssnTail", actions: { call: true } }) })"#,
    );
    let staff = key(&e, "staff");
    assert_eq!(ok(&e, &staff, r#"ssnTail("1")"#), json!("1111"));
}

#[test]
fn mask_definitions_are_validated() {
    let e = company();
    for bad in [
        r#"mask: { ts: null }"#,
        r#"mask: { "tags[0]": null }"#,
        r#"mask: "ssn""#,
        r#"hide: "notes""#,
        r#"hide: [1]"#,
        r#"mask: { notes: null }"#,
        r#"redact: ["notes"], hide: ["notes"]"#,
        r#"redact: "salary""#,
        r#"masks: { ssn: null }"#,
    ] {
        fails(
            &e,
            ROOT,
            &format!(
                r#"Role.create({{ name: "bad", privileges: [{{ resource: "Employee", actions: {{ read: true }}, {bad} }}] }})"#
            ),
            "constraint_failure",
        );
    }
}
