"""The HTTP endpoint over real sockets on 127.0.0.1: TLS with server and client certificates,
basic auth, and the bounds on what a client may send or hold.

The server runs in this process on a port the kernel picks; the clients are http.client, ssl
and raw sockets, so malformed and slow requests are sent exactly as written.
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import pytest

from monitord.http import Endpoints, HttpLimits, HttpServer, WebSettings, load_server_tls
from monitord.http.server import CHALLENGE
from monitord.model import Secret
from tests.integration.mosquitto import CertificateAuthority
from tests.unit.test_http_web import basic

HOST = "127.0.0.1"
PASSWORD = "rahasia-scrape-2024"  # noqa: S105 - a test password
METRICS = "monitord_up 1\n"
# Short deadlines so slow clients are cut within the test's time; the tick is 0.1 s.
FAST = HttpLimits(read_timeout=1.0, idle_timeout=1.0, handshake_timeout=1.0, write_timeout=2.0)
CUT_WITHIN = 3.0  # seconds by which a cut connection must be seen closed (deadline 1 s)


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    client: tuple[Path, Path]  # signed by `ca`
    rogue: tuple[Path, Path]  # signed by another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create(directory / "ca", "monitord-test-ca")
    rogue = CertificateAuthority.create(directory / "rogue", "rogue-ca")
    cert, key = ca.issue_server(directory / "server", [HOST])
    return Pki(ca.cert_file, cert, key, ca.issue_client(directory / "client", "prometheus"),
               rogue.issue_client(directory / "rogue-client", "prometheus"))


@pytest.fixture(scope="module")
def password_hash() -> Secret:
    return Secret(bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode(), "inline")


@dataclass
class Running:
    server: HttpServer
    reloads: list[float] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port


@contextmanager
def serving(web: WebSettings | None = None, limits: HttpLimits = FAST,
            metrics: str = METRICS) -> Iterator[Running]:
    reloads: list[float] = []

    def reload() -> tuple[bool, str]:
        reloads.append(time.monotonic())
        return True, "reloaded"

    server = HttpServer(f"{HOST}:0", Endpoints(lambda: metrics, lambda: True, reload), web, limits)
    server.start()
    try:
        yield Running(server, reloads)
    finally:
        server.stop()


def client_context(pki: Pki, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))  # checks the name 127.0.0.1 too
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str


def fetch(port: int, path: str = "/metrics", *, method: str = "GET",
          context: ssl.SSLContext | None = None, authorization: str | None = None,
          body: bytes | None = None) -> Answer:
    conn = (http.client.HTTPSConnection(HOST, port, context=context, timeout=5) if context
            else http.client.HTTPConnection(HOST, port, timeout=5))
    with closing(conn):
        conn.request(method, path, body=body,
                     headers={"Authorization": authorization} if authorization else {})
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read().decode())


def exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a plain connection and read until the server closes it."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closed `sock` (EOF or reset) within `seconds`."""
    readable, _, _ = select.select([sock], [], [], seconds)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


# --- TLS and basic auth ----------------------------------------------------------------------

def test_tls_with_basic_auth(pki: Pki, password_hash: Secret) -> None:
    web = WebSettings(tls=load_server_tls(str(pki.cert), str(pki.key)),
                      basic_auth_users={"prometheus": password_hash})
    context = client_context(pki)
    with serving(web) as running:
        assert running.server.scheme == "https"
        refused = fetch(running.port, context=context)
        assert (refused.status, refused.body) == (401, "authentication required\n")
        assert refused.headers["WWW-Authenticate"] == CHALLENGE
        for wrong in (basic("prometheus", "salah"), basic("grafana", PASSWORD), "Basic x"):
            assert fetch(running.port, context=context, authorization=wrong).status == 401
        ok = fetch(running.port, context=context, authorization=basic("prometheus", PASSWORD))
        assert (ok.status, ok.body) == (200, METRICS)
        assert ok.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert ok.headers["Server"] == "monitord"  # no Python version on display

        # Reload is a POST anyone reaching the port could send: it needs the password too.
        assert fetch(running.port, "/-/reload", method="POST", context=context).status == 401
        assert running.reloads == []
        reloaded = fetch(running.port, "/-/reload", method="POST", context=context,
                         authorization=basic("prometheus", PASSWORD))
        assert (reloaded.status, reloaded.body, len(running.reloads)) == (200, "reloaded\n", 1)
        responses, auth_failures, _ = running.server.stats.snapshot()
        assert responses == {"401": 5, "200": 2}
        assert auth_failures == {"missing": 2, "wrong_password": 1, "unknown_user": 1,
                                 "malformed": 1}


def test_a_scraper_keeps_its_connection_between_requests(pki: Pki, password_hash: Secret) -> None:
    """Keep-alive: no TLS handshake per scrape."""
    web = WebSettings(tls=load_server_tls(str(pki.cert), str(pki.key)),
                      basic_auth_users={"prometheus": password_hash})
    with serving(web) as running:
        conn = http.client.HTTPSConnection(HOST, running.port, context=client_context(pki),
                                           timeout=5)
        with closing(conn):
            sockets = set()
            for path in ("/metrics", "/-/healthy", "/metrics"):
                conn.request("GET", path, headers={"Authorization": basic("prometheus", PASSWORD)})
                response = conn.getresponse()
                assert response.status == 200
                response.read()
                sockets.add(id(conn.sock))
            assert len(sockets) == 1


def test_plain_http_on_the_tls_port_is_told_to_use_https(pki: Pki) -> None:
    with serving(WebSettings(tls=load_server_tls(str(pki.cert), str(pki.key)))) as running:
        answer = exchange(running.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n")
        assert answer.endswith(b"This endpoint speaks HTTPS: use https://\n")
        # Garbage instead of a ClientHello costs a connection, nothing more.
        exchange(running.port, b"\x00" * 64)
        assert fetch(running.port, context=client_context(pki)).status == 200
        assert running.server.stats.snapshot()[2] == {"tls_handshake": 2}


def test_min_version_refuses_older_clients(pki: Pki) -> None:
    tls = load_server_tls(str(pki.cert), str(pki.key), min_version="TLS13")
    with serving(WebSettings(tls=tls)) as running:
        old = client_context(pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            fetch(running.port, context=old)
        assert fetch(running.port, context=client_context(pki)).status == 200


def test_required_client_certificates(pki: Pki) -> None:
    tls = load_server_tls(str(pki.cert), str(pki.key), str(pki.ca), "RequireAndVerifyClientCert")
    with serving(WebSettings(tls=tls)) as running:
        for refused in (client_context(pki), client_context(pki, pki.rogue)):
            # TLS 1.3 reports a refused client certificate after the handshake, at first read.
            with pytest.raises((ssl.SSLError, ConnectionError)):
                fetch(running.port, context=refused)
        assert fetch(running.port, context=client_context(pki, pki.client)).status == 200
        assert running.server.stats.snapshot()[2] == {"tls_handshake": 2}


def test_optional_client_certificates_are_still_verified(pki: Pki) -> None:
    tls = load_server_tls(str(pki.cert), str(pki.key), str(pki.ca), "VerifyClientCertIfGiven")
    with serving(WebSettings(tls=tls)) as running:
        assert fetch(running.port, context=client_context(pki)).status == 200
        assert fetch(running.port, context=client_context(pki, pki.client)).status == 200
        with pytest.raises((ssl.SSLError, ConnectionError)):
            fetch(running.port, context=client_context(pki, pki.rogue))


def test_a_reload_changes_users_and_tls_without_a_restart(pki: Pki, password_hash: Secret) -> None:
    new_hash = Secret(bcrypt.hashpw(b"sandi-baru", bcrypt.gensalt(4)).decode(), "inline")
    with serving(WebSettings(basic_auth_users={"prometheus": password_hash})) as running:
        assert fetch(running.port, authorization=basic("prometheus", PASSWORD)).status == 200
        running.server.apply(WebSettings(tls=load_server_tls(str(pki.cert), str(pki.key)),
                                         basic_auth_users={"prometheus": new_hash}))
        assert running.server.scheme == "https"
        context = client_context(pki)
        assert fetch(running.port, context=context,
                     authorization=basic("prometheus", PASSWORD)).status == 401
        assert fetch(running.port, context=context,
                     authorization=basic("prometheus", "sandi-baru")).status == 200
        running.server.apply(None)
        assert fetch(running.port).status == 200


def test_passwords_and_hashes_never_reach_the_log(password_hash: Secret,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="monitord.http")
    typed_as_user = "rahasia-typed-into-the-user-field"
    with serving(WebSettings(basic_auth_users={"prometheus": password_hash})) as running:
        for authorization in (basic("prometheus", "tebakan-salah"), basic(typed_as_user, PASSWORD),
                              basic("prometheus", PASSWORD)):
            fetch(running.port, authorization=authorization)
    assert "passwords cross the network readable by anyone" in caplog.text  # no TLS here
    assert "wrong password (prometheus)" in caplog.text  # the configured user name helps
    assert "unknown user" in caplog.text
    for secret in ("tebakan-salah", PASSWORD, typed_as_user, password_hash.reveal()):
        assert secret not in caplog.text


def test_listens_on_ipv6_loopback() -> None:
    server = HttpServer("[::1]:0", Endpoints(lambda: METRICS, lambda: True, lambda: (True, "")))
    server.start()
    try:
        conn = http.client.HTTPConnection("::1", server.port, timeout=5)
        with closing(conn):
            conn.request("GET", "/metrics")
            assert conn.getresponse().read().decode() == METRICS
    finally:
        server.stop()


# --- malformed and oversized requests --------------------------------------------------------

@pytest.mark.parametrize(("request_bytes", "status", "reason"), [
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
     431, b"headers larger than 16384 bytes"),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 70 + b"\r\n",
     431, b"more than 64 header lines"),
    (b"GET /" + b"m" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, b"request line longer than 8192 bytes"),
    (b"GET /metrics\r\n\r\n", 400, b"malformed request line"),
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400,
     b"malformed request line"),
    (b"GET /metrics HTTP/1.1\r\n\r\n", 400, b"exactly one Host header"),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505,
     b"HTTP/2.0 is not supported"),
    (b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 405,
     b"Allow: GET, HEAD"),
    (b"GET /-/reload HTTP/1.1\r\nHost: x\r\n\r\n", 405,
     b"Allow: POST"),
    (b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"b" * 20000,
     413, b"request body larger than 4096 bytes"),
    (b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     501, b"send a Content-Length"),
])
def test_bad_requests_get_a_clean_answer_and_a_closed_connection(
        request_bytes: bytes, status: int, reason: bytes) -> None:
    with serving() as running:
        answer = exchange(running.port, request_bytes)  # returns: the server closed
        assert answer.startswith(f"HTTP/1.1 {status} ".encode())
        assert b"\r\nConnection: close\r\n" in answer
        assert reason in answer
        assert running.reloads == []
        assert fetch(running.port).status == 200  # and it still serves


def test_a_small_body_is_drained_and_the_connection_kept() -> None:
    with serving() as running, socket.create_connection((HOST, running.port), timeout=5) as sock:
        request = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
        sock.sendall(request + b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        first, second = received.split(b"HTTP/1.1 ", 2)[1:]
        assert first.startswith(b"200 OK")
        assert first.endswith(b"reloaded\n")
        assert second.startswith(b"200 OK")
        assert f"Content-Length: {len(METRICS)}".encode() in second
        assert second.endswith(b"\r\n\r\n")  # HEAD: no body
        assert len(running.reloads) == 1


def test_unknown_paths_are_404_after_auth(password_hash: Secret) -> None:
    with serving(WebSettings(basic_auth_users={"prometheus": password_hash})) as running:
        assert fetch(running.port, "/secret-path").status == 401  # nothing learnt without auth
        answer = fetch(running.port, "/nope", authorization=basic("prometheus", PASSWORD))
        assert (answer.status, answer.body) == (404, "no such endpoint: /nope\n")


# --- slow and idle clients -------------------------------------------------------------------

def test_a_trickling_client_is_cut_and_does_not_delay_others() -> None:
    """Slowloris: one byte every 0.2 s keeps any socket timeout from firing; the 1 s read
    deadline ends it all the same, and meanwhile other clients are served at once."""
    cut_after: list[float] = []

    def trickle(sock: socket.socket) -> None:
        start = time.monotonic()
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(50):  # at most 10 s
            try:
                sock.sendall(b"a")
            except OSError:
                break
            if closed_within(sock, 0.2):
                break
        cut_after.append(time.monotonic() - start)

    with serving() as running, socket.create_connection((HOST, running.port), timeout=5) as slow:
        thread = threading.Thread(target=trickle, args=(slow,))
        thread.start()
        for _ in range(5):
            started = time.monotonic()
            assert fetch(running.port).status == 200
            assert time.monotonic() - started < 0.5
        thread.join(timeout=15)
        assert not thread.is_alive()
        assert cut_after
        assert cut_after[0] < CUT_WITHIN
        assert running.server.stats.snapshot()[2] == {"deadline": 1}


def test_a_client_that_does_not_read_its_answer_is_cut() -> None:
    """/metrics far larger than the socket buffers, to a client that never reads it: the
    write deadline (2 s) frees the thread."""
    big = "monitord_padding 1\n" * 3_000_000  # 57 MB
    with serving(metrics=big) as running, \
            socket.create_connection((HOST, running.port), timeout=5) as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while running.server.stats.snapshot()[2] != {"deadline": 1}:
            assert time.monotonic() < deadline, "the stalled reader was never cut"
            assert fetch(running.port, "/-/healthy").status == 200  # others are served meanwhile
            time.sleep(0.2)


def test_silent_connections_are_cut(pki: Pki) -> None:
    """A TCP connection that never starts TLS, and one that never sends a request."""
    with serving(WebSettings(tls=load_server_tls(str(pki.cert), str(pki.key)))) as tls_server, \
            serving() as plain_server, \
            socket.create_connection((HOST, tls_server.port), timeout=5) as no_handshake, \
            socket.create_connection((HOST, plain_server.port), timeout=5) as no_request:
        assert fetch(tls_server.port, context=client_context(pki)).status == 200
        assert fetch(plain_server.port).status == 200
        assert closed_within(no_handshake, CUT_WITHIN)
        assert closed_within(no_request, CUT_WITHIN)


def test_an_idle_keep_alive_connection_is_closed() -> None:
    with serving() as running, socket.create_connection((HOST, running.port), timeout=5) as sock:
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        assert not closed_within(sock, 0.5)  # kept for the next request ...
        assert closed_within(sock, CUT_WITHIN)  # ... until the idle deadline


def test_connections_beyond_the_limit_are_closed_at_once() -> None:
    limits = HttpLimits(max_connections=2, read_timeout=5.0)
    with serving(limits=limits) as running:
        first = socket.create_connection((HOST, running.port), timeout=5)
        second = socket.create_connection((HOST, running.port), timeout=5)
        with first, second, socket.create_connection((HOST, running.port), timeout=5) as third:
            assert closed_within(third, 2.0)
            first.close()  # frees a slot
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    if fetch(running.port).status == 200:
                        break
                except ConnectionError:
                    time.sleep(0.05)
            else:
                pytest.fail("no slot was freed by closing a connection")
        assert running.server.stats.snapshot()[2].get("too_many_connections", 0) >= 1
