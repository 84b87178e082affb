"""End-to-end behaviour through the official Python driver (`pip install fauna`)."""
from datetime import timedelta

import pytest
from fauna import fql
from fauna.client import Client, QueryOptions
from fauna.encoding import QuerySuccess
from fauna.errors import (
    AbortError,
    AuthenticationError,
    QueryCheckError,
    QueryRuntimeError,
    QueryTimeoutError,
)


def test_simple_query_reports_stats_and_an_empty_summary(client):
    res = client.query(fql('"taco".length'))
    assert isinstance(res, QuerySuccess)
    assert res.data == 4
    assert res.summary == ""
    assert res.txn_ts > 0
    assert res.stats.compute_ops > 0


def test_query_with_arguments(client):
    res = client.query(fql("${a} + ${b}.length", a=40, b="ab"))
    assert res.data == 42
    res = client.query(fql("${obj}.x * 2", obj={"x": 21}))
    assert res.data == 42


def test_values_round_trip(client):
    # The driver wraps dicts whose keys look like tags in @object; the server must too.
    value = {"@int": [1, 2.5, "s", None, True], "n": 2**61, "nested": {"@doc": "x"}}
    res = client.query(fql("${v}", v=value))
    assert res.data == value


def test_document_create_read_update_delete(client, collection):
    created = client.query(fql("${c}.create({ name: 'Ada', age: 36 })", c=fql(collection))).data
    doc_id = created.id
    assert created["name"] == "Ada"

    read = client.query(fql(f"{collection}.byId(${{id}})", id=doc_id)).data
    assert read["age"] == 36
    assert read.ts == created.ts

    updated = client.query(fql(f"{collection}.byId(${{id}})!.update({{ age: 37 }})", id=doc_id)).data
    assert updated["age"] == 37 and updated["name"] == "Ada"
    assert updated.ts > created.ts

    client.query(fql(f"{collection}.byId(${{id}})!.delete()", id=doc_id))
    gone = client.query(fql(f"{collection}.byId(${{id}}).exists()", id=doc_id)).data
    assert gone is False


def test_missing_document_is_a_null_document(client, collection):
    res = client.query(fql(f"{collection}.byId('123')")).data
    assert res is not None
    assert res.cause == "not found"


def test_iterating_100_documents_page_by_page(client, collection):
    client.query(fql(f"Set.sequence(0, 100).forEach(n => {collection}.create({{ n: n }}))"))
    pages = list(client.paginate(fql(f"{collection}.all().map(.n)")))
    assert len(pages) == 7  # 6 pages of 16, then 4
    assert [len(p) for p in pages] == [16] * 6 + [4]
    seen = [n for page in pages for n in page]
    assert seen == list(range(100))


def test_paginate_with_page_size(client, collection):
    client.query(fql(f"Set.sequence(0, 10).forEach(n => {collection}.create({{ n: n }}))"))
    items = list(client.paginate(fql(f"{collection}.all().map(.n).pageSize(3)")).flatten())
    assert items == list(range(10))


def test_abort_raises_abort_error_with_the_value(client):
    with pytest.raises(AbortError) as e:
        client.query(fql("abort({ reason: 'nope', n: 1 })"))
    assert e.value.abort == {"reason": "nope", "n": 1}
    assert e.value.code == "abort"


def test_abort_discards_writes(client, collection):
    with pytest.raises(AbortError):
        client.query(fql(f"{collection}.create({{ n: 1 }})\nabort('stop')"))
    assert client.query(fql(f"{collection}.all().count()")).data == 0


def test_one_millisecond_timeout_raises_query_timeout_error(client, collection):
    opts = QueryOptions(query_timeout=timedelta(milliseconds=1))
    with pytest.raises(QueryTimeoutError) as e:
        client.query(fql(f"{collection}.create({{ n: 1 }})"), opts)
    assert "aggressive deadline" in e.value.message
    # The timed-out write left nothing behind, and a generous timeout works again.
    res = client.query(fql(f"{collection}.all().count()"), QueryOptions(query_timeout=timedelta(seconds=60)))
    assert res.data == 0


def test_parse_error_raises_query_check_error_with_a_summary(client):
    with pytest.raises(QueryCheckError) as e:
        client.query(fql("{ bad: 'request']"))
    assert e.value.code == "invalid_query"
    assert e.value.summary
    assert "*query*" in e.value.summary


def test_runtime_error_raises_query_runtime_error(client):
    with pytest.raises(QueryRuntimeError) as e:
        client.query(fql("1 / 0"))
    assert e.value.code == "divide_by_zero"


def test_wrong_secret_raises_authentication_error(server):
    bad = Client(endpoint=server.endpoint, secret="nah")
    with pytest.raises(AuthenticationError):
        bad.query(fql("1"))


def test_txn_ts_increases_on_read_only_queries(client):
    a = client.query(fql("1")).txn_ts
    b = client.query(fql("1")).txn_ts
    assert b > a


def test_schema_version_follows_collection_create(client):
    created = client.query(fql("Collection.create({ name: 'SV_' + newId().toString() })"))
    after = client.query(fql("1"))
    assert after.schema_version == created.txn_ts
