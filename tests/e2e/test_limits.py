"""Per-database rate limits through the official Python driver: a database over its
budget answers 429 `limit_exceeded`, which the driver retries with back-off; its sibling
is unaffected."""
import uuid

import pytest
from fauna import fql
from fauna.client import Client
from fauna.errors import ThrottlingError


def test_the_driver_retries_a_rate_limited_database_and_its_sibling_is_unaffected(server, client):
    noisy, quiet = "Noisy_" + uuid.uuid4().hex[:8], "Quiet_" + uuid.uuid4().hex[:8]
    client.query(fql("Database.create({ name: ${n}, limits: { queries_per_second: 2 } })", n=noisy))
    client.query(fql("Database.create({ name: ${n} })", n=quiet))

    impatient = Client(endpoint=server.endpoint, secret=f"secret:{noisy}:admin", max_attempts=1)
    with pytest.raises(ThrottlingError) as e:
        for _ in range(20):
            impatient.query(fql("1"))
    assert e.value.status_code == 429
    assert e.value.code == "limit_exceeded"

    # With retries (the driver's default behaviour), every query gets through in time.
    patient = Client(endpoint=server.endpoint, secret=f"secret:{noisy}:admin",
                     max_attempts=10, max_backoff=2)
    assert [patient.query(fql("1 + 1")).data for _ in range(6)] == [2] * 6

    sibling = Client(endpoint=server.endpoint, secret=f"secret:{quiet}:admin", max_attempts=1)
    assert [sibling.query(fql("1")).data for _ in range(50)] == [1] * 50
