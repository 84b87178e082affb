"""Tenancy and authentication through the official Python driver: child databases, keys,
scoped secrets, credentials and tokens."""
import uuid

import pytest
from fauna import fql
from fauna.client import Client
from fauna.errors import AuthenticationError, QueryRuntimeError


def name(prefix):
    return prefix + "_" + uuid.uuid4().hex[:10]


def test_child_database_key_scoped_secret_and_token_login(server, client):
    child = name("Child")
    client.query(fql("Database.create({ name: ${n} })", n=child))

    # A key for the child database: its secret is returned once.
    key = client.query(fql('Key.create({ role: "admin", database: ${n} }) { secret }', n=child)).data
    child_client = Client(endpoint=server.endpoint, secret=key["secret"])
    child_client.query(fql('Collection.create({ name: "Members" })'))
    child_client.query(fql('Members.create({ name: "ada" })'))

    # The root secret scoped into the child sees the same data.
    scoped = Client(endpoint=server.endpoint, secret=f"secret:{child}:admin")
    assert scoped.query(fql("Members.all().count()")).data == 1
    # The parent never sees the child's documents.
    with pytest.raises(QueryRuntimeError) as e:
        client.query(fql("Members.all().count()"))
    assert e.value.code == "unbound_variable"

    # A credential logs in; the token authenticates as the member.
    child_client.query(fql("""
let ada = Members.all().first()!
Credential.create({ document: ada, password: "correct horse battery staple" })
"""))
    token = child_client.query(fql(
        'Credential.byDocument(Members.all().first()!)!.login("correct horse battery staple") { secret }'
    )).data["secret"]
    token_client = Client(endpoint=server.endpoint, secret=token)
    identity = token_client.query(fql("Query.identity()")).data
    assert identity is not None
    assert token_client.query(fql("Query.identity().id")).data == \
        child_client.query(fql("Members.all().first()!.id")).data

    # Logging out deletes the token: the secret stops working at once.
    token_client.query(fql("Query.token()!.delete()"))
    with pytest.raises(AuthenticationError):
        token_client.query(fql("1"))


def test_wrong_password_is_an_invalid_secret(client):
    coll = name("People")
    client.query(fql("Collection.create({ name: ${n} })", n=coll))
    client.query(fql(f'Credential.create({{ document: {coll}.create({{}}), password: "a long passphrase here" }})'))
    with pytest.raises(QueryRuntimeError) as e:
        client.query(fql(f'Credential.byDocument({coll}.all().first()!)!.login("wrong")'))
    assert e.value.code == "invalid_secret"


def test_deleted_key_and_deleted_database_are_refused(server, client):
    child = name("Gone")
    client.query(fql("Database.create({ name: ${n} })", n=child))
    key = client.query(fql('Key.create({ role: "server", database: ${n} }) { secret }', n=child)).data["secret"]
    c = Client(endpoint=server.endpoint, secret=key)
    assert c.query(fql("1 + 1")).data == 2
    client.query(fql("Database.byName(${n})!.delete()", n=child))
    with pytest.raises(AuthenticationError):
        c.query(fql("1"))
    with pytest.raises(AuthenticationError):
        Client(endpoint=server.endpoint, secret=f"secret:{child}:admin").query(fql("1"))
