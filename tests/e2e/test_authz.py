"""Authorization through the official Python driver: the two scenarios of the seed (a role
bound to a work schedule, a user who may only call an inventory function), and JWTs from an
access provider."""
import datetime
import os
import pathlib
import time
import uuid

import jwt
import pytest
from fauna import fql
from fauna.client import Client
from fauna.errors import AuthenticationError, ServiceError

from conftest import Server

REPO = pathlib.Path(__file__).resolve().parents[2]
JWT_KEYS = REPO / "crates" / "testudo-auth" / "testdata" / "jwt"


def unique(prefix):
    return prefix + uuid.uuid4().hex[:10]


def login(client, coll, doc_id, password="correct horse battery staple"):
    client.query(fql(
        "Credential.create({ document: Collection(${c}).byId(${id}), password: ${p} })",
        c=coll, id=doc_id, p=password))
    return client.query(fql(
        "Credential.byDocument(Collection(${c}).byId(${id}))!.login(${p}) { secret }",
        c=coll, id=doc_id, p=password)).data["secret"]


def denied(call):
    """Runs `call`, expecting Fauna's permission_denied."""
    with pytest.raises(ServiceError) as e:
        call()
    assert e.value.code == "permission_denied", e.value


def test_a_role_works_only_inside_the_users_work_schedule(server, client):
    staff, tasks, role = unique("Staff"), unique("Task"), unique("shift")
    client.query(fql("Collection.create({ name: ${s} })", s=staff))
    client.query(fql("Collection.create({ name: ${t} })", t=tasks))
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    # Inside: a window around the current hour (UTC), every day of the week.
    inside = {"from": (hour - 1) % 24, "to": (hour + 2) % 24, "days": [1, 2, 3, 4, 5, 6, 7]}
    client.query(fql(
        "Collection(${s}).create({ id: '1', name: 'ann', schedule: ${w} })", s=staff, w=inside))
    client.query(fql("Collection(${t}).create({ id: '9', title: 'inventory count' })", t=tasks))
    on_shift = """(_doc) => {
      let w = Query.identity()!.schedule
      let now = Time.now()
      let h = now.hour
      let hours = if (w.from <= w.to) h >= w.from && h < w.to else h >= w.from || h < w.to
      hours && w.days.includes(now.dayOfWeek)
    }"""
    on_shift_write = on_shift.replace("(_doc) =>", "(_old, _new) =>")
    on_shift_create = on_shift
    client.query(fql(
        """Role.create({ name: ${r},
             privileges: [{ resource: ${t},
                            actions: { read: ${p}, write: ${pw}, create: ${pc}, delete: false } }],
             membership: [{ resource: ${s} }] })""",
        r=role, t=tasks, s=staff, p=on_shift, pw=on_shift_write, pc=on_shift_create))
    ann = Client(endpoint=server.endpoint, secret=login(client, staff, "1"))

    # Inside the window: read, write and create work; delete never does.
    assert ann.query(fql("Collection(${t}).byId('9')!.title", t=tasks)).data == "inventory count"
    ann.query(fql("Collection(${t}).byId('9')!.update({ title: 'recount' })", t=tasks))
    ann.query(fql("Collection(${t}).create({ title: 'restock' })", t=tasks))
    assert ann.query(fql("Collection(${t}).all().count()", t=tasks)).data == 2
    denied(lambda: ann.query(fql("Collection(${t}).byId('9')!.delete()", t=tasks)))

    # Outside: the same schedule moved away from the current hour denies everything, at
    # the very next query (the role is decided when the query runs).
    outside = {"from": (hour + 3) % 24, "to": (hour + 5) % 24, "days": [1, 2, 3, 4, 5, 6, 7]}
    client.query(fql("Collection(${s}).byId('1')!.update({ schedule: ${w} })", s=staff, w=outside))
    assert ann.query(fql("Collection(${t}).all().count()", t=tasks)).data == 0
    assert ann.query(fql("Collection(${t}).byId('9').exists()", t=tasks)).data is False
    denied(lambda: ann.query(fql("Collection(${t}).byId('9')!.title", t=tasks)))
    denied(lambda: ann.query(fql(
        "Collection(${t}).byId('9')!.update({ title: 'late' })", t=tasks)))
    denied(lambda: ann.query(fql("Collection(${t}).create({ title: 'late' })", t=tasks)))
    denied(lambda: ann.query(fql("Collection(${t}).byId('9')!.delete()", t=tasks)))
    # Not a working day either: the right hours on no day deny too.
    client.query(fql("Collection(${s}).byId('1')!.update({ schedule: ${w} })", s=staff,
                     w={**inside, "days": []}))
    assert ann.query(fql("Collection(${t}).all().count()", t=tasks)).data == 0
    # Nothing written outside the window reached the data.
    assert client.query(fql("Collection(${t}).byId('9')!.title", t=tasks)).data == "recount"
    assert client.query(fql("Collection(${t}).all().count()", t=tasks)).data == 2


def test_a_user_who_may_only_call_inventory_reads_products_through_it(server, client):
    users, role_fn, role_user = unique("Shopper"), unique("readInventory"), unique("caller")
    fn = unique("inventory")
    client.query(fql("""Collection.create({ name: "Product",
                           indexes: { byName: { terms: [{ field: "name" }] } } })"""))
    client.query(fql("Collection.create({ name: ${u} })", u=users))
    client.query(fql("""Product.create({ id: "1", name: "apple", quantity: 12, cost: 0.3 })
                        Product.create({ id: "2", name: "pear", quantity: 4, cost: 0.5 })"""))
    client.query(fql("Collection(${u}).create({ id: '1', name: 'sam' })", u=users))
    client.query(fql(
        """Role.create({ name: ${r}, privileges: [{ resource: "Product", actions: { read: true } }] })""",
        r=role_fn))
    client.query(fql(
        """Function.create({ name: ${f}, role: ${r},
             body: "(name) => Product.byName(name).first() { name, quantity }" })""",
        f=fn, r=role_fn))
    client.query(fql(
        """Role.create({ name: ${r}, privileges: [{ resource: ${f}, actions: { call: true } }],
                         membership: [{ resource: ${u} }] })""",
        r=role_user, f=fn, u=users))
    sam = Client(endpoint=server.endpoint, secret=login(client, users, "1"))

    assert sam.query(fql("Function(${f})('apple')", f=fn)).data == {"name": "apple", "quantity": 12}
    assert sam.query(fql("Function(${f})('plum')", f=fn)).data is None

    # No direct access to Product, whichever way it is tried.
    assert sam.query(fql("Product.all().count()")).data == 0
    assert sam.query(fql("Product.byName('apple').count()")).data == 0
    denied(lambda: sam.query(fql("Product.byId('1')!.quantity")))
    denied(lambda: sam.query(fql("Product.create({ name: 'plum', quantity: 1 })")))
    denied(lambda: sam.query(fql("Product.byId('1')!.update({ quantity: 0 })")))
    denied(lambda: sam.query(fql("Product.byId('1')!.delete()")))
    denied(lambda: sam.query(fql("Role.byName(${r})!.update({ privileges: [] })", r=role_user)))

    # Injection through the argument: it is a value, never FQL.
    for attack in [
        "apple') ; Product.all().forEach(.delete()) ; ('",
        'apple" } Product.byId("1")!.delete() {',
        "${Product.all().forEach(p => p.delete())}",
        "apple\n Product.create({ name: 'evil' })",
    ]:
        assert sam.query(fql("Function(${f})(${a})", f=fn, a=attack)).data is None
    for wrong in [{"name": "apple"}, ["apple"], 42]:
        assert sam.query(fql("Function(${f})(${a})", f=fn, a=wrong)).data is None
    # The function's own role does not leak to the caller after the call.
    denied(lambda: sam.query(fql("Function(${f})('apple'); Product.byId('1')!.cost", f=fn)))
    assert client.query(fql("Product.all().count()")).data == 2
    assert client.query(fql("Product.byId('1')!.quantity")).data == 12


def rs256(claims: dict, kid="rsa-1") -> str:
    """A JWT signed with the committed test RSA key."""
    key = (JWT_KEYS / "rsa-private.pem").read_bytes()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def jwt_server():
    s = Server(os.environ["TESTUDO_BIN"], ["--jwks-file-root", str(JWT_KEYS)])
    yield s
    s.stop()


def test_a_jwt_from_an_access_provider_authenticates_with_the_providers_role(jwt_server):
    admin = Client(endpoint=jwt_server.endpoint, secret="secret")
    admin.query(fql("Collection.create({ name: 'Report' })"))
    admin.query(fql("Report.create({ id: '1', title: 'q3' })"))
    admin.query(fql("""Role.create({ name: 'analyst',
                          privileges: [{ resource: 'Report', actions: { read: true } }] })"""))
    provider = admin.query(fql(
        """AccessProvider.create({ name: 'idp', issuer: 'https://idp.example.com',
             jwks_uri: ${u}, roles: [{ role: 'analyst', predicate: '(c) => c.team == "finance"' }] })""",
        u=(JWT_KEYS / "jwks.json").resolve().as_uri())).data
    audience = provider["audience"]
    now = int(time.time())
    claims = {"iss": "https://idp.example.com", "aud": audience, "sub": "u-7",
              "team": "finance", "iat": now, "exp": now + 300}

    analyst = Client(endpoint=jwt_server.endpoint, secret=rs256(claims))
    assert analyst.query(fql("Report.byId('1')!.title")).data == "q3"
    assert analyst.query(fql("Query.token().sub")).data == "u-7"
    assert analyst.query(fql("Query.identity()")).data is None
    with pytest.raises(ServiceError) as e:
        analyst.query(fql("Report.create({ title: 'forged' })"))
    assert e.value.code == "permission_denied"

    for bad in [
        {**claims, "team": "sales"},                # no role's predicate holds
        {**claims, "aud": "https://api.example"},   # not this database
        {**claims, "iss": "https://evil.example"},  # unknown issuer
        {**claims, "exp": now - 600},               # expired
        {**claims, "nbf": now + 600},               # not yet valid
    ]:
        with pytest.raises(AuthenticationError):
            Client(endpoint=jwt_server.endpoint, secret=rs256(bad)).query(fql("1"))
    with pytest.raises(AuthenticationError):
        Client(endpoint=jwt_server.endpoint, secret=rs256(claims, kid="unknown")).query(fql("1"))


def test_a_masked_field_reaches_the_driver_masked_and_is_stored_intact(server, client):
    coll, role = unique("Patient"), unique("frontdesk")
    client.query(fql("Collection.create({ name: ${c} })", c=coll))
    client.query(fql(
        "Collection(${c}).create({ id: '1', name: 'ann', ssn: '111-11-1111', notes: 'x' })", c=coll))
    client.query(fql(
        """Role.create({ name: ${r}, privileges: [{ resource: ${c}, actions: { read: true, write: true },
                          mask: { ssn: '***' }, hide: ['notes'] }] })""", r=role, c=coll))
    secret = client.query(fql("Key.create({ role: ${r} }) { secret }", r=role)).data["secret"]
    desk = Client(endpoint=server.endpoint, secret=secret)
    doc = desk.query(fql("Collection(${c}).byId('1')", c=coll)).data
    assert doc["ssn"] == "***"
    assert "notes" not in doc
    desk.query(fql("Collection(${c}).byId('1')!.update({ name: 'anne' })", c=coll))
    stored = client.query(fql("Collection(${c}).byId('1')", c=coll)).data
    assert (stored["name"], stored["ssn"], stored["notes"]) == ("anne", "111-11-1111", "x")
