"""The seed's "bad deployment" scenario through the Python driver: a release deletes a
collection's documents; the operator restores the database as it was just before, from the
retained history (point-in-time), into a new database, leaving the damaged one untouched."""
import uuid

from fauna import fql
from fauna.client import Client


def test_a_bad_deployment_is_undone_by_a_point_in_time_restore(server, client):
    app, fixed = "App_" + uuid.uuid4().hex[:8], "Fixed_" + uuid.uuid4().hex[:8]
    client.query(fql("Database.create({ name: ${n} })", n=app))
    app_client = Client(endpoint=server.endpoint, secret=f"secret:{app}:admin")
    app_client.query(fql("Collection.create({ name: 'Account', history_days: 30 })"))
    app_client.query(fql(
        "Set.sequence(0, 20).forEach(i => Account.create({ owner: 'user' + i.toString(), balance: 100 }))"))
    before = app_client.query(fql("Time.now()")).data

    app_client.query(fql("Account.all().forEach(.delete())"))  # the bad deployment
    assert app_client.query(fql("Account.all().count()")).data == 0

    client.query(fql("Database.restore({ from: ${a}, at: ${t}, name: ${f} })", a=app, t=before, f=fixed))
    fixed_client = Client(endpoint=server.endpoint, secret=f"secret:{fixed}:admin")
    assert fixed_client.query(fql("Account.all().count()")).data == 20
    assert fixed_client.query(fql("Account.all().fold(0, (s, a) => s + a.balance)")).data == 2000
    assert app_client.query(fql("Account.all().count()")).data == 0
