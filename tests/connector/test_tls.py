"""The pooled clients' TLS context: the CAs and settings httpx would use, read only when a call is https, and
verifying from the first handshake (a self-signed server is refused unless SSL_CERT_FILE trusts it, as with httpx)."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector._state import Clients
from connector._tls import LazyCAContext
from connector.auth import oauth
from connector.errors import AuthenticationError


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _serve(tls: ssl.SSLContext | None) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost` only (not 127.0.0.1): (cert file, key file)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def https_port(certificate: tuple[Path, Path]) -> Iterator[int]:
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(*certificate)
    yield from _serve(server_side)


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    yield from _serve(None)


@pytest.fixture(autouse=True)
def _no_ca_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def _ders(context: ssl.SSLContext) -> set[bytes]:
    return set(context.get_ca_certs(binary_form=True))


def test_once_loaded_it_is_the_context_httpx_builds() -> None:
    ours, theirs = LazyCAContext(), httpx.create_ssl_context()
    ours.load_cas()
    for setting in (
        "protocol",
        "verify_mode",
        "check_hostname",
        "verify_flags",
        "options",
        "minimum_version",
        "maximum_version",
        "post_handshake_auth",
        "hostname_checks_common_name",
        "security_level",
        "keylog_filename",
    ):
        assert getattr(ours, setting) == getattr(theirs, setting), setting
    assert ours.get_ciphers() == theirs.get_ciphers()
    assert _ders(ours) == _ders(theirs) and len(_ders(ours)) > 100


def test_ssl_cert_file_picks_the_cas_as_with_httpx(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    ours = LazyCAContext()
    ours.load_cas()
    assert _ders(ours) == _ders(httpx.create_ssl_context()) and len(_ders(ours)) == 1


def test_plain_http_never_reads_the_cas(http_port: int) -> None:
    clients = Clients(None, None)
    assert clients.sync().get(f"http://127.0.0.1:{http_port}/").text == "ok"
    context = clients._verify()
    assert context.cert_store_stats()["x509_ca"] == 0 and not context._loaded
    clients.close()


def test_https_verifies_from_the_first_call(https_port: int) -> None:
    """The first handshake reads the CAs, then refuses a certificate none of them signed."""
    clients = Clients(None, None)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        clients.sync().get(f"https://localhost:{https_port}/")
    assert clients._verify().cert_store_stats()["x509_ca"] > 100
    clients.close()


def test_https_to_a_server_the_cas_trust(
    https_port: int, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    clients = Clients(None, None)
    assert clients.sync().get(f"https://localhost:{https_port}/").text == "ok"
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the name is still checked
        clients.sync().get(f"https://127.0.0.1:{https_port}/")
    clients.close()


def test_async_calls_verify_too(
    https_port: int, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The async clients wrap a BIO, not a socket: the same CAs are read first, and the same checks apply."""

    async def calls() -> None:
        clients = Clients(None, None)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await clients.async_().get(f"https://localhost:{https_port}/")
        await clients.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        trusting = Clients(None, None)
        assert (await trusting.async_().get(f"https://localhost:{https_port}/")).text == "ok"
        await trusting.aclose()

    asyncio.run(calls())


def test_token_calls_verify_too(
    https_port: int, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accounts requests go on short-lived clients of their own, with the same lazily read CAs."""
    request = httpx.Request("POST", f"https://localhost:{https_port}/oauth/v2/token")
    with pytest.raises(AuthenticationError, match="ConnectError"):
        oauth.send(request)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    assert oauth.send(request).status_code == 501  # reached: the test server only answers GET
    assert asyncio.run(oauth.asend(request)).status_code == 501
