"""The official Python driver over HTTPS, with a certificate from a CA it does not know
until told.

The module's own server runs `testudo serve --dev --tls-cert --tls-key`; the CA and the
server certificate (for 127.0.0.1 and localhost) are made here with the `openssl` command
line, which Debian ships, so nothing beyond the driver is installed. The driver trusts the
CA either through its HTTP client's SSL context or, for its default client, through
`SSL_CERT_FILE` (httpx reads it when the client is created).
"""
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import uuid

import httpx
import pytest
from fauna import fql
from fauna.client import Client
from fauna.errors import NetworkError
from fauna.http import HTTPXClient

from conftest import Server

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory):
    """A CA (`ca.pem`) and a server certificate signed by it (`server.pem`, `server.key`)."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS end-to-end tests need the openssl command line")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Testudo e2e CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost", cwd=directory)
    with open(os.path.join(directory, "server.ext"), "w") as ext:
        ext.write("basicConstraints=critical,CA:FALSE\n"
                  "keyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=serverAuth\n"
                  "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                  "subjectKeyIdentifier=hash\n"
                  "authorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            cwd=directory)


class TlsServer(Server):
    """The e2e server (conftest.Server) with a certificate from a CA made for the module."""

    def __init__(self, binary):
        self.cert_dir = tempfile.mkdtemp(prefix="testudo-e2e-tls-")
        make_certificates(self.cert_dir)
        self.ca = os.path.join(self.cert_dir, "ca.pem")
        super().__init__(binary, [
            "--tls-cert", os.path.join(self.cert_dir, "server.pem"),
            "--tls-key", os.path.join(self.cert_dir, "server.key"),
        ])
        if not self.endpoint.startswith("https://"):
            self.stop()
            raise RuntimeError(f"testudo listens on {self.endpoint}, not https")

    def stop(self):
        super().stop()
        shutil.rmtree(self.cert_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_server():
    binary = os.environ.get("TESTUDO_BIN")
    if not binary:
        pytest.fail("TESTUDO_BIN must point at the testudo binary (scripts/test sets it)")
    server = TlsServer(binary)
    yield server
    server.stop()


def driver(server, verify):
    """A driver client with its own HTTP client (the default one is shared process-wide)."""
    http = httpx.Client(http1=True, http2=False, verify=verify, timeout=30)
    return Client(endpoint=server.endpoint, secret="secret", http_client=HTTPXClient(http))


def test_the_listening_line_announces_https(tls_server):
    assert tls_server.endpoint.startswith("https://127.0.0.1:")


def test_the_driver_round_trips_documents_over_https_with_a_custom_ca(tls_server):
    client = driver(tls_server, ssl.create_default_context(cafile=tls_server.ca))
    name = "Tls_" + uuid.uuid4().hex[:12]
    client.query(fql("Collection.create({ name: ${name} })", name=name))
    created = client.query(fql(
        "Collection(${name}).create({ title: 'over TLS', n: 7 })", name=name)).data
    read = client.query(fql(
        "Collection(${name}).byId(${id}) { title, n }", name=name, id=created.id)).data
    assert read == {"title": "over TLS", "n": 7}


def test_the_driver_refuses_a_certificate_from_an_unknown_ca(tls_server):
    client = driver(tls_server, ssl.create_default_context())
    with pytest.raises(NetworkError) as raised:
        client.query(fql("1 + 1"))
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value.__cause__)


def test_the_drivers_default_client_trusts_the_ca_in_ssl_cert_file(tls_server):
    # A fresh interpreter: the default HTTP client is created once per process and reads
    # SSL_CERT_FILE then.
    script = (
        "from fauna import fql\n"
        "from fauna.client import Client\n"
        f"client = Client(endpoint={tls_server.endpoint!r}, secret='secret')\n"
        "print(client.query(fql('20 + 22')).data)\n"
    )
    env = dict(os.environ, SSL_CERT_FILE=tls_server.ca)
    env.pop("SSL_CERT_DIR", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_httpx_negotiates_http2_by_alpn(tls_server):
    pytest.importorskip("h2")
    context = ssl.create_default_context(cafile=tls_server.ca)
    with httpx.Client(http1=False, http2=True, verify=context, timeout=30) as http:
        response = http.post(tls_server.endpoint + "/query/1",
                             headers={"Authorization": "Bearer secret"},
                             json={"query": "1 + 1"})
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert response.json()["data"] == 2
