"""Indexes, unique constraints and user-defined functions through the official Python
driver."""
import uuid

import pytest
from fauna import fql
from fauna.errors import QueryRuntimeError


def unique_name(prefix):
    return prefix + "_" + uuid.uuid4().hex[:10]


def test_index_term_lookup_and_value_order(client):
    name = unique_name("Books")
    client.query(fql(f"""
Collection.create({{
  name: "{name}",
  indexes: {{
    byGenre: {{ terms: [{{ field: "genre" }}], values: [{{ field: "year", order: "desc" }}] }}
  }}
}})"""))
    client.query(fql(f"""
{name}.create({{ title: "Dune", genre: "sf", year: 1965 }})
{name}.create({{ title: "Neuromancer", genre: "sf", year: 1984 }})
{name}.create({{ title: "Emma", genre: "romance", year: 1815 }})
"""))
    res = client.query(fql(f'{name}.byGenre("sf") {{ title, year }}')).data
    assert [d["title"] for d in res] == ["Neuromancer", "Dune"]


def test_paginating_a_1000_document_index_range(client):
    name = unique_name("Items")
    client.query(fql(f"""
Collection.create({{
  name: "{name}",
  indexes: {{ byBucket: {{ terms: [{{ field: "bucket" }}], values: [{{ field: "n" }}] }} }}
}})"""))
    for start in range(0, 1200, 300):
        client.query(fql(f"Set.sequence({start}, {start + 300}).forEach(n => {name}.create({{ bucket: 'b', n: n }}))"))
    pages = client.paginate(fql(f"{name}.byBucket('b', {{ from: 100, to: 1099 }}).map(.n).pageSize(64)"))
    seen = [n for page in pages for n in page]
    assert seen == list(range(100, 1100))


def test_unique_constraint_violation_is_the_drivers_constraint_error(client):
    name = unique_name("Users")
    client.query(fql(f'Collection.create({{ name: "{name}", constraints: [{{ unique: ["email"] }}] }})'))
    client.query(fql(f'{name}.create({{ email: "ada@example.com" }})'))
    with pytest.raises(QueryRuntimeError) as e:
        client.query(fql(f'{name}.create({{ email: "ada@example.com" }})'))
    assert e.value.code == "constraint_failure"
    assert "unique constraint" in e.value.message
    assert e.value.constraint_failures
    assert e.value.constraint_failures[0].paths == [["email"]]
    assert client.query(fql(f"{name}.all().count()")).data == 1


def test_user_defined_function_call_with_arguments(client):
    name = unique_name("Greet")
    client.query(fql(f'Function.create({{ name: "{name}", body: "(who, n) => who + n.toString()" }})'))
    # Arguments from the driver are values: a string that looks like FQL stays a string.
    res = client.query(fql(f"{name}(${{who}}, ${{n}})", who="1 + 1", n=42))
    assert res.data == "1 + 142"


def test_function_definition_update_takes_effect(client):
    name = unique_name("Twice")
    client.query(fql(f'Function.create({{ name: "{name}", body: "x => x * 2" }})'))
    assert client.query(fql(f"{name}(21)")).data == 42
    client.query(fql(f'{name}.definition.update({{ body: "x => x * 3" }})'))
    assert client.query(fql(f"{name}(21)")).data == 63
