"""Starts a real `testudo serve --dev` for the end-to-end tests and gives them a driver
client pointed at it.

The server binary comes from $TESTUDO_BIN (set by scripts/test); each test session gets
its own data directory and a free port, so runs never share state.
"""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid

import pytest
from fauna import fql
from fauna.client import Client

LISTENING = re.compile(r"testudo listening on (https?://\S+)")


class Server:
    def __init__(self, binary: str, extra_args=()):
        self.data_dir = tempfile.mkdtemp(prefix="testudo-e2e-")
        self.proc = subprocess.Popen(
            [binary, "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
             *extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.endpoint = None
        ready = threading.Event()

        def read_stdout():
            for line in self.proc.stdout:
                match = LISTENING.search(line)
                if match and self.endpoint is None:
                    self.endpoint = match.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready.wait(timeout=60) or self.endpoint is None:
            self.stop()
            raise RuntimeError("testudo did not report its listening address")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("TESTUDO_BIN")
    if not binary:
        pytest.fail("TESTUDO_BIN must point at the testudo binary (scripts/test sets it)")
    s = Server(binary)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server):
    # The driver shares one HTTP connection pool between clients: closing one client
    # would close it for all, so clients are left to the interpreter's exit.
    return Client(endpoint=server.endpoint, secret="secret")


@pytest.fixture
def collection(client):
    """A fresh collection, named uniquely for the test."""
    name = "E2E_" + uuid.uuid4().hex[:12]
    client.query(fql("Collection.create({ name: ${name} })", name=name))
    return name
