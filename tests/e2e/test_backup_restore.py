"""The seed's "bad deployment" scenario through the Python driver, with backups taken by a
running server: a release deletes a collection's documents; the operator restores the
database from the last backup (`Backup.create()` / `Backup.restore()`), first as a new
database to look at, then in place (a safety backup of the damaged one is taken first)."""
import os
import shutil
import tempfile
import uuid

import pytest
from fauna import fql
from fauna.client import Client
from fauna.errors import ServiceError

from conftest import Server


@pytest.fixture(scope="module")
def backup_server():
    binary = os.environ.get("TESTUDO_BIN")
    if not binary:
        pytest.fail("TESTUDO_BIN must point at the testudo binary (scripts/test sets it)")
    backups = tempfile.mkdtemp(prefix="testudo-e2e-backups-")
    s = Server(binary, extra_args=("--backup-dir", backups))
    yield s
    s.stop()
    shutil.rmtree(backups, ignore_errors=True)


def test_a_bad_deployment_is_undone_from_the_last_backup(backup_server):
    root = Client(endpoint=backup_server.endpoint, secret="secret")
    app = "App_" + uuid.uuid4().hex[:8]
    root.query(fql("Database.create({ name: ${n} })", n=app))
    app_client = Client(endpoint=backup_server.endpoint, secret=f"secret:{app}:admin")
    app_client.query(fql("Collection.create({ name: 'Account' })"))
    app_client.query(fql(
        "Set.sequence(0, 20).forEach(i => Account.create({ owner: 'user' + i.toString(), balance: 100 }))"))

    backup = root.query(fql("Backup.create()")).data
    assert backup["keys"] > 20
    assert backup["name"] in root.query(fql("Backup.all().map(.name)")).data

    app_client.query(fql("Account.all().forEach(.delete())"))  # the bad deployment
    assert app_client.query(fql("Account.all().count()")).data == 0

    # Restored beside the damaged database first: nothing existing is touched.
    look = "Look_" + uuid.uuid4().hex[:8]
    restored = root.query(fql(
        "Backup.restore({ backup: ${b}, name: ${n}, database: ${d} })",
        b=backup["name"], n=look, d=app)).data
    assert restored["databases"] == 1
    look_client = Client(endpoint=backup_server.endpoint, secret=f"secret:{look}:admin")
    assert look_client.query(fql("Account.all().count()")).data == 20
    assert look_client.query(fql("Account.all().fold(0, (s, a) => s + a.balance)")).data == 2000
    assert app_client.query(fql("Account.all().count()")).data == 0

    # Then in place: the damaged database is kept under another name, after a safety backup.
    replaced = root.query(fql(
        "Backup.restore({ backup: ${b}, name: ${n}, database: ${n}, replace: true })",
        b=backup["name"], n=app)).data
    assert replaced["safety_backup"] is not None
    assert replaced["replaced"].startswith(app + "_replaced_")
    assert app_client.query(fql("Account.all().count()")).data == 20
    assert root.query(fql("Database.byName(${n}) != null", n=replaced["replaced"])).data is True


def test_only_an_admin_may_take_or_restore_a_backup(backup_server):
    root = Client(endpoint=backup_server.endpoint, secret="secret")
    secret = root.query(fql("Key.create({ role: 'server' }).secret")).data
    server_client = Client(endpoint=backup_server.endpoint, secret=secret)
    with pytest.raises(ServiceError) as refused:
        server_client.query(fql("Backup.create()"))
    assert refused.value.code == "permission_denied"
