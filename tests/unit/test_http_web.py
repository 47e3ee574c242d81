"""The HTTP endpoint's pieces: basic auth and its cache, the bounded request reader, the `web:`
config section and its TLS files, and the /metrics body (pieces, gzip), the last served by a
real server on 127.0.0.1. tests/integration/test_web_tls_auth.py runs the server with TLS."""

from __future__ import annotations

import base64
import gzip
import http.client
import io
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from http import HTTPStatus
from pathlib import Path

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry, generate_latest

from monitord.config import ConfigError, load_inventory
from monitord.http import (
    CONTENT_TYPE_METRICS,
    Endpoints,
    HttpCollector,
    HttpLimits,
    HttpServer,
    HttpStats,
    TlsFileError,
    load_server_tls,
)
from monitord.http.basic_auth import BasicAuth
from monitord.http.body import GROUP_BYTES, accepts_gzip, grouped, gzipped
from monitord.http.request import BadRequest, ClientGone, read_head
from monitord.logformat import secrets_in
from monitord.metrics.targets import TargetSeries
from monitord.model import Check, IcmpProfile, ProbeResult, Secret
from tests.integration.mosquitto import CertificateAuthority

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "config"
PASSWORD = "kata-sandi-prometheus"  # noqa: S105 - a test password


def bcrypt_hash(password: str, prefix: str = "$2b$") -> str:
    """Cost 4, the lowest, to keep the tests fast; prefix $2y$ is what htpasswd writes."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    return prefix + hashed[4:]


def basic(user: str, password: str | bytes) -> str:
    raw = user.encode() + b":" + (password.encode() if isinstance(password, str) else password)
    return "Basic " + base64.b64encode(raw).decode()


# --- basic auth ------------------------------------------------------------------------------

@pytest.fixture
def auth() -> BasicAuth:
    return BasicAuth({"prometheus": Secret(bcrypt_hash(PASSWORD, "$2y$"), "inline"),
                      "grafana": Secret(bcrypt_hash("grafana-pw"), "env:GRAFANA_HASH")})


@pytest.mark.parametrize(("header", "outcome", "user"), [
    (basic("prometheus", PASSWORD), "ok", "prometheus"),
    (basic("grafana", "grafana-pw"), "ok", "grafana"),
    ("basic " + basic("prometheus", PASSWORD).split()[1], "ok", "prometheus"),  # scheme: any case
    (basic("prometheus", "salah"), "wrong_password", "prometheus"),
    (basic("grafana", PASSWORD), "wrong_password", "grafana"),  # another user's password
    (basic("nobody", PASSWORD), "unknown_user", None),
    (None, "missing", None),
    ("", "missing", None),
    ("Bearer abc", "malformed", None),
    ("Basic !!!not-base64!!!", "malformed", None),
    ("Basic " + base64.b64encode(b"no-colon").decode(), "malformed", None),
    ("Basic " + base64.b64encode(b"\xff\xfe:pw").decode(), "malformed", None),  # user not UTF-8
    ("Basic ÿÿÿÿ", "malformed", None),
])
def test_basic_auth_outcomes(auth: BasicAuth, header: str | None, outcome: str,
                             user: str | None) -> None:
    result = auth.check(header)
    assert (result.outcome, result.user) == (outcome, user)
    assert result.ok == (outcome == "ok")


def test_only_passed_credentials_are_cached(auth: BasicAuth) -> None:
    """A scrape every 15 s must not cost a bcrypt round each time; wrong passwords always do,
    so someone guessing cannot push the scrapers' entries out of the cache."""
    for _ in range(5):
        assert auth.check(basic("prometheus", PASSWORD)).ok
    assert auth.bcrypt_checks == 1
    for _ in range(3):
        assert not auth.check(basic("prometheus", "salah")).ok
    assert auth.bcrypt_checks == 4
    # An unknown user is checked against a real hash too (same time as a wrong password).
    assert not auth.check(basic("nobody", "x")).ok
    assert auth.bcrypt_checks == 5
    assert auth.check(basic("prometheus", PASSWORD)).ok  # still cached
    assert auth.bcrypt_checks == 5


def test_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    users = {f"user{i}": Secret(bcrypt_hash(f"pw{i}"), "inline") for i in range(3)}
    auth = BasicAuth(users, cache_size=2)
    for i in (0, 1, 0, 2):  # user1 is now the least recently used and is dropped for user2
        assert auth.check(basic(f"user{i}", f"pw{i}")).ok
    assert auth.bcrypt_checks == 3
    assert auth.check(basic("user0", "pw0")).ok
    assert auth.bcrypt_checks == 3
    assert auth.check(basic("user1", "pw1")).ok
    assert auth.bcrypt_checks == 4


def test_a_password_longer_than_bcrypt_reads_is_checked_on_its_first_72_bytes() -> None:
    """What htpasswd and Go's bcrypt (exporter-toolkit) do; the bcrypt package would refuse."""
    long_password = "p" * 72
    auth = BasicAuth({"u": Secret(bcrypt_hash(long_password), "inline")})
    assert auth.check(basic("u", long_password + "anything after byte 72")).ok
    assert not auth.check(basic("u", "p" * 71)).ok


def test_without_users_no_auth_is_required() -> None:
    assert not BasicAuth({}).required
    assert BasicAuth({"u": Secret(bcrypt_hash("x"), "inline")}).required


# --- the request reader ----------------------------------------------------------------------

LIMITS = HttpLimits(max_request_line=100, max_header_bytes=200, max_headers=4, max_body=64)


def head_of(raw: bytes) -> object:
    return read_head(io.BytesIO(raw), LIMITS)


def test_a_well_formed_request_is_read() -> None:
    raw = b"\r\nGET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization:  Basic abc \r\n\r\n"
    head = read_head(io.BytesIO(raw), LIMITS)
    assert head is not None
    assert (head.method, head.target, head.path, head.version) == (
        "GET", "/metrics?x=1", "/metrics", "HTTP/1.1")
    assert head.headers["authorization"] == "Basic abc"  # names are case-insensitive
    assert head.content_length == 0
    assert head.keep_alive


@pytest.mark.parametrize(("raw", "keep_alive"), [
    (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
])
def test_keep_alive_follows_the_version_and_connection_header(raw: bytes, keep_alive: bool) -> None:
    head = read_head(io.BytesIO(raw), LIMITS)
    assert head is not None
    assert head.keep_alive is keep_alive


def test_a_body_within_the_limit_is_announced_and_left_to_read() -> None:
    rfile = io.BytesIO(b"POST /-/reload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    head = read_head(rfile, LIMITS)
    assert head is not None
    assert head.content_length == 5
    assert rfile.read() == b"hello"


@pytest.mark.parametrize(("raw", "status", "reason"), [
    (b"GET /metrics\r\n\r\n", 400, "malformed request line (expected: METHOD /path HTTP/1.1)"),
    (b"GET  /metrics HTTP/1.1\r\n\r\n", 400, "malformed request line"),
    (b"GET /a b HTTP/1.1\r\n\r\n", 400, "malformed request line"),
    (b"GET /\x00 HTTP/1.1\r\n\r\n", 400, "malformed request line"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", 400, "malformed request line"),  # TLS
    (b"GET metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400,
     "the request target must be a path starting with /"),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP/2.0 is not supported; use HTTP/1.1 or HTTP/1.0"),
    (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n", 414, "request line longer than 100 bytes"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "an HTTP/1.1 request needs exactly one Host header"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
     "an HTTP/1.1 request needs exactly one Host header"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 200 + b"\r\n\r\n", 431,
     "headers larger than 200 bytes"),
    (b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 5 + b"\r\n", 431, "more than 4 header lines"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nNo colon here\r\n\r\n", 400, "malformed header line"),
    (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "malformed header line"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n", 400, "malformed header line"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400, "malformed header line"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n", 413,
     "request body larger than 64 bytes"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 431,
     "headers larger than 200 bytes"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + b"9" * 40 + b"\r\n\r\n", 413,
     "request body larger than 64 bytes"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
     "invalid Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
     "Transfer-Encoding is not supported; send a Content-Length"),
])
def test_bad_requests_are_refused_with_the_right_status(raw: bytes, status: int, reason: str) -> None:
    with pytest.raises(BadRequest) as info:
        read_head(io.BytesIO(raw), LIMITS)
    assert info.value.status == HTTPStatus(status)
    assert info.value.reason.startswith(reason)


def test_a_client_that_closes_is_told_apart_from_a_bad_request() -> None:
    assert read_head(io.BytesIO(b""), LIMITS) is None  # closed between requests
    for cut in (b"GET / HTT", b"GET / HTTP/1.1\r\nHost: h\r\n", b"GET / HTTP/1.1\r\nHost: h"):
        with pytest.raises(ClientGone):
            read_head(io.BytesIO(cut), LIMITS)


# --- the web: config section -----------------------------------------------------------------

PROVINCE = "province: {id: sulbar, kabupaten: []}\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create(directory / "ca", "monitord-test-ca")
    other = CertificateAuthority.create(directory / "other", "other-ca")
    cert, key = ca.issue_server(directory / "server", ["127.0.0.1"])
    _, other_key = other.issue_server(directory / "other-server", ["127.0.0.1"])
    encrypted = directory / "encrypted.key"
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    not_pem = directory / "not.pem"
    not_pem.write_text("hello\n", encoding="utf-8")
    return {"ca": ca.cert_file, "cert": cert, "key": key, "other_key": other_key,
            "encrypted": encrypted, "not_pem": not_pem}


def write_config(tmp_path: Path, web: str) -> Path:
    path = tmp_path / "monitord.yaml"
    path.write_text("web:\n" + web + PROVINCE, encoding="utf-8")
    return path


def test_web_section_resolves_tls_and_users_from_every_kind_of_secret(
        tmp_path: Path, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    inline, from_env, from_file = bcrypt_hash("a", "$2y$"), bcrypt_hash("b"), bcrypt_hash("c")
    hash_file = tmp_path / "grafana.bcrypt"
    hash_file.write_text(from_file + "\n", encoding="utf-8")
    monkeypatch.setenv("MONITORD_TEST_WEB_HASH", from_env)
    config = write_config(tmp_path, f"""
  tls_server_config:
    cert_file: {pki['cert']}
    key_file: {pki['key']}
    client_ca_file: {pki['ca']}
    client_auth_type: RequireAndVerifyClientCert
    min_version: TLS13
  basic_auth_users:
    prometheus: {inline}
    alertmanager: {{env: MONITORD_TEST_WEB_HASH}}
    grafana: {{file: {hash_file}}}
""")
    inventory = load_inventory(config)
    web = inventory.web
    assert web is not None
    assert web.tls is not None
    assert (web.tls.cert_file, web.tls.client_auth_type, web.tls.min_version) == (
        str(pki["cert"]), "RequireAndVerifyClientCert", "TLS13")
    assert {u: s.reveal() for u, s in web.basic_auth_users.items()} == {
        "prometheus": inline, "alertmanager": from_env, "grafana": from_file}
    # Hashes are secrets too: never in a repr, and masked in every log line like the others.
    for hashed in (inline, from_env, from_file):
        assert hashed not in repr(web)
    assert {s.reveal() for s in secrets_in(inventory)} >= {inline, from_env, from_file}


def test_without_a_web_section_the_endpoint_stays_plain_and_open(tmp_path: Path) -> None:
    config = tmp_path / "monitord.yaml"
    config.write_text(PROVINCE, encoding="utf-8")
    assert load_inventory(config).web is None
    assert load_inventory(write_config(tmp_path, "  basic_auth_users: {}\n")).web is None


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"client_ca_file": "{ca}"},
     "web.tls_server_config: client_ca_file is set but client_auth_type is NoClientCert, so no "
     "client certificate would be checked; set client_auth_type: RequireAndVerifyClientCert"),
    ({"client_auth_type": "VerifyClientCertIfGiven"},
     "web.tls_server_config: client_auth_type VerifyClientCertIfGiven needs client_ca_file: the "
     "CA that client certificates must be signed by"),
    ({"min_version": "TLS13", "max_version": "TLS12"},
     "web.tls_server_config: min_version TLS13 is above max_version TLS12"),
    ({"key_file": "{other_key}"},
     "web.tls_server_config.key_file: the private key in {other_key} does not belong to the "
     "certificate in {cert}"),
    ({"key_file": "{encrypted}"},
     "web.tls_server_config.key_file: {encrypted} is an encrypted private key; monitord needs it "
     "unencrypted (readable only by monitord's user)"),
    ({"key_file": "{not_pem}"}, "web.tls_server_config.key_file: {not_pem} holds no PEM private key"),
    ({"cert_file": "{not_pem}"},
     "web.tls_server_config.cert_file: {not_pem} holds no PEM certificate"),
    ({"cert_file": "{key}"}, "web.tls_server_config.cert_file: {key} holds no PEM certificate"),
    ({"client_ca_file": "{not_pem}", "client_auth_type": "RequireAndVerifyClientCert"},
     "web.tls_server_config.client_ca_file: {not_pem} holds no PEM CA certificate"),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "")
def test_tls_problems_name_the_key_and_file(tmp_path: Path, pki: dict[str, Path],
                                            overrides: dict[str, str], problem: str) -> None:
    files = {name: str(path) for name, path in pki.items()}
    settings = {"cert_file": "{cert}", "key_file": "{key}", **overrides}
    flow = ", ".join(f"{name}: {value.format(**files)}" for name, value in settings.items())
    config = write_config(tmp_path, f"  tls_server_config: {{{flow}}}\n")
    with pytest.raises(ConfigError) as info:
        load_inventory(config)
    assert info.value.problems == ["line 2: " + problem.format(**files)]


def test_a_password_written_where_the_hash_belongs_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_inventory(DATA_DIR / "invalid-web-auth.yaml")
    assert "rahasia-sekali" not in str(info.value)
    assert "Tz8wq1mKb2" not in str(info.value)  # nor a hash


def test_load_server_tls_builds_a_server_context(pki: dict[str, Path]) -> None:
    tls = load_server_tls(str(pki["cert"]), str(pki["key"]))
    assert tls.context.verify_mode.name == "CERT_NONE"
    assert tls.context.minimum_version.name == "TLSv1_2"
    with pytest.raises(TlsFileError) as info:
        load_server_tls(str(pki["cert"]), "/nonexistent/monitord/web.key")
    assert (info.value.key, str(info.value)) == (
        "key_file", "cannot read /nonexistent/monitord/web.key: No such file or directory")


# --- metrics ---------------------------------------------------------------------------------

def test_http_stats_become_metrics() -> None:
    stats = HttpStats(expired=lambda: 2)
    stats.response(200)
    stats.response(401)
    stats.response(401)
    stats.auth_failure("wrong_password")
    stats.dropped("tls_handshake")
    registry = CollectorRegistry()
    registry.register(HttpCollector(stats))
    text = generate_latest(registry).decode()
    for line in ('monitord_http_responses_total{code="200"} 1.0',
                 'monitord_http_responses_total{code="401"} 2.0',
                 'monitord_http_auth_failures_total{reason="wrong_password"} 1.0',
                 'monitord_http_connections_dropped_total{reason="tls_handshake"} 1.0',
                 'monitord_http_connections_dropped_total{reason="deadline"} 2.0'):
        assert line in text.splitlines()


# --- the /metrics body: pieces, gzip (issue 8) -----------------------------------------------
# The last tests run a real HttpServer, on 127.0.0.1 only.

@pytest.mark.parametrize(("values", "gzip"), [
    (["gzip"], True),  # what Prometheus sends
    (["deflate, gzip, br, zstd"], True),  # curl --compressed
    (["GZIP;Q=0.5"], True),
    (["x-gzip"], True),
    (["*"], True),
    (["identity", "gzip"], True),  # two headers of the name count as one list
    ([], False),
    (["identity"], False),
    ([""], False),
    (["gzip;q=0"], False),
    (["gzip; q=0.0, identity"], False),
    (["*, gzip;q=0"], False),  # named beats the wildcard
    (["*;q=0"], False),
    (["gzip;q=abc"], False),
    (["br"], False),
])
def test_accept_encoding(values: list[str], gzip: bool) -> None:
    assert accepts_gzip(values) is gzip


def test_pieces_are_grouped_in_order_without_splitting_one() -> None:
    pieces = [bytes([65 + i % 26]) * (i * 37 % 1000) for i in range(3000)]
    groups = list(grouped(pieces, size=10_000))
    assert b"".join(groups) == b"".join(pieces)
    assert all(len(g) >= 10_000 for g in groups[:-1])
    assert all(len(g) < 10_000 + 1000 for g in groups)  # a group stops at the piece that fills it
    assert list(grouped([])) == []
    big = b"x" * 50_000
    assert list(grouped([big], size=10_000)) == [big]


def test_gzipped_pieces_are_one_gzip_member_of_the_whole() -> None:
    pieces = [f"monitord_icmp_requests_total{{target=\"t{i}\"}} {i}\n".encode() for i in range(60_000)]
    parts = gzipped(pieces)
    assert len(parts) > 1  # compressed a group at a time
    assert gzip.decompress(b"".join(parts)) == b"".join(pieces)
    assert gzip.decompress(b"".join(gzipped([]))) == b""


def exposition(targets: int) -> TargetSeries:
    """A TargetSeries of `targets` probed targets: ~6 kB of text each."""
    profile = IcmpProfile(name="lan", interval=10.0, count=3, packet_interval=0.2, timeout=1.0,
                          size=56)
    series = TargetSeries()
    checks = [Check(target=f"desa-{i}", kind="icmp", address=ipaddress.ip_address(f"192.0.2.{i % 250}"),
                    province="sulbar", kabupaten="mamuju", site=f"desa-{i}", role="village-ap",
                    profile=profile) for i in range(targets)]
    series.set_checks(checks)
    for check in checks:
        series.observe(ProbeResult(check=check, started=1_700_000_000.5, duration=0.6, sent=3,
                                   received=2, rtts=(0.021, 0.034)))
    return series


@contextmanager
def metrics_server(render: Callable[[], str | Sequence[bytes]]) -> Iterator[int]:
    server = HttpServer("127.0.0.1:0", Endpoints(render, lambda: True, lambda: (True, "")))
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def get(conn: http.client.HTTPConnection, accept: str | None,
        method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(method, "/metrics", headers={"Accept-Encoding": accept} if accept else {})
    response = conn.getresponse()
    return response, response.read()


def test_metrics_gzipped_for_who_asks_plain_for_the_others() -> None:
    series = exposition(400)
    text = series.render().encode()
    assert len(text) > 4 * GROUP_BYTES  # several groups on both paths
    with metrics_server(series.render_chunks) as port, \
            closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
        # One keep-alive connection throughout: each answer must be framed exactly.
        zipped, body = get(conn, "gzip")
        assert zipped.status == 200
        assert zipped.getheader("Content-Encoding") == "gzip"
        assert zipped.getheader("Vary") == "Accept-Encoding"
        assert zipped.getheader("Content-Type") == CONTENT_TYPE_METRICS
        assert int(zipped.getheader("Content-Length", "-1")) == len(body)
        assert len(body) < len(text) / 5
        assert gzip.decompress(body) == text

        plain, body = get(conn, None)  # http.client asks for identity
        assert plain.status == 200
        assert plain.getheader("Content-Encoding") is None
        assert plain.getheader("Vary") == "Accept-Encoding"
        assert int(plain.getheader("Content-Length", "-1")) == len(text)
        assert body == text

        refused, body = get(conn, "gzip;q=0, identity")
        assert refused.getheader("Content-Encoding") is None
        assert body == text

        head, body = get(conn, "gzip", method="HEAD")
        assert body == b""
        assert head.getheader("Content-Encoding") == "gzip"
        assert 0 < int(head.getheader("Content-Length", "-1")) < len(text) / 5


def test_a_str_exposition_is_served_too() -> None:
    text = "# HELP up Up.\n# TYPE up gauge\nup 1\n"
    with metrics_server(lambda: text) as port, \
            closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
        response, body = get(conn, "gzip")
        assert gzip.decompress(body) == text.encode()
        response, body = get(conn, None)
        assert body == text.encode()
        assert response.getheader("Content-Length") == str(len(text))


def test_a_failing_render_is_a_500() -> None:
    def broken() -> list[bytes]:
        raise RuntimeError("renderer bug")

    with metrics_server(broken) as port, \
            closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
        response, body = get(conn, "gzip")
        assert response.status == 500
        assert response.getheader("Content-Encoding") is None
        assert body == b"rendering metrics failed; see the monitord log\n"
