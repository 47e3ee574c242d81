"""The HTTP endpoint: /metrics, /-/healthy, /-/ready, POST /-/reload.

It runs in its own threads, one per connection (ThreadingHTTPServer), so rendering a large
/metrics or a slow client never stalls the event loop that times the probes, nor the other
clients. /metrics goes out as the renderer's pieces, never joined whole, gzip-compressed for
the clients that ask (Prometheus does; monitord.http.body). Reload is handed to the event loop
and awaited. TLS and basic auth (WebSettings) can change on reload; the listen address and
HttpLimits are fixed at start.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitord.http.basic_auth import BasicAuth
from monitord.http.body import accepts_gzip, grouped, gzipped
from monitord.http.deadlines import Deadlines
from monitord.http.request import BadRequest, ClientGone, RequestHead, read_head
from monitord.http.settings import HttpLimits, WebSettings
from monitord.http.stats import HttpStats
from monitord.http.tls import ServerTls

log = logging.getLogger(__name__)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"
LINGER_SECONDS, LINGER_BYTES = 1.0, 65536  # drained from a client before closing on it
CHALLENGE = 'Basic realm="monitord", charset="UTF-8"'
_READ_ONLY = ("/metrics", "/-/healthy", "/-/ready", "/")
# What a plain-HTTP client gets from the TLS port (as Go's servers answer), instead of silence.
_PLAIN_HTTP_ON_TLS = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      b"Connection: close\r\n\r\nThis endpoint speaks HTTPS: use https://\n")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the server calls; each runs in an HTTP thread."""

    # The exposition: a str (small outputs, tests) or its pieces in order, sent without
    # being joined (a province's is ~80 MB; see monitord.http.body).
    render_metrics: Callable[[], str | Sequence[bytes]]
    is_ready: Callable[[], bool]
    reload: Callable[[], tuple[bool, str]]  # (ok, message)


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means all


@dataclass(frozen=True, slots=True)
class _Access:
    """What connections are checked against; replaced whole by a reload."""

    tls: ServerTls | None
    auth: BasicAuth


def _access(web: WebSettings | None) -> _Access:
    web = web or WebSettings()
    if web.basic_auth_users and web.tls is None:
        log.warning("web.basic_auth_users without web.tls_server_config: passwords cross the "
                    "network readable by anyone on the path")
    return _Access(web.tls, BasicAuth(web.basic_auth_users))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], endpoints: Endpoints, access: _Access,
                 limits: HttpLimits) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.endpoints = endpoints
        self.access = access
        self.limits = limits
        self.deadlines = Deadlines()
        self.stats = HttpStats(lambda: self.deadlines.expired)
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        # A backstop only: the deadlines end slow connections well before this.
        self._socket_timeout = max(limits.idle_timeout, limits.write_timeout) + 5.0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.stats.dropped("too_many_connections")
            log.debug("http %s: closed, %d connections already open", client_address[0],
                      self.limits.max_connections)
            request.close()  # at once: this is the accepting thread
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self._socket_timeout)
        conn: socket.socket = request
        try:
            tls = self.access.tls
            if tls is not None:
                conn = tls.context.wrap_socket(request, server_side=True,
                                               do_handshake_on_connect=False)
                if not self._handshake(conn, client_address[0]):
                    return
            _Handler(conn, client_address, self)
        finally:
            self.deadlines.disarm(conn)
            if conn is not request:  # the TLS socket; shutdown_request closes the plain one
                _lingering_close(conn)

    def shutdown_request(self, request: Any) -> None:
        _lingering_close(request)

    def _handshake(self, conn: ssl.SSLSocket, client: str) -> bool:
        self.deadlines.arm(conn, self.limits.handshake_timeout)
        try:
            conn.do_handshake()
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":
                with contextlib.suppress(OSError):
                    socket.socket.sendall(conn, _PLAIN_HTTP_ON_TLS)  # no TLS to speak in
            self.stats.dropped("tls_handshake")
            log.debug("http %s: TLS handshake failed: %s", client, exc.reason or exc)
            return False
        except OSError as exc:  # reset, timeout, or cut by its deadline
            self.stats.dropped("tls_handshake")
            log.debug("http %s: TLS handshake failed: %s", client, exc)
            return False
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # the client went away: nothing to fix here
            log.debug("http %s: connection failed: %s", client_address[0], error)
        else:
            log.error("http %s: request failed", client_address[0], exc_info=error)


def _lingering_close(conn: socket.socket) -> None:
    """Close after the client has read the answer. Closing with unread input (the rest of a
    refused body) sends a reset, which can destroy the answer before the client reads it; so
    stop writing, then drain what arrives until the client closes, within bounds."""
    try:
        socket.socket.shutdown(conn, socket.SHUT_WR)  # plain TCP: the TLS layer is done
        conn.settimeout(LINGER_SECONDS)
        deadline = time.monotonic() + LINGER_SECONDS
        drained = 0
        while drained < LINGER_BYTES and time.monotonic() < deadline:
            data = socket.socket.recv(conn, 16384)
            if not data:
                break
            drained += len(data)
    except OSError:
        pass
    finally:
        conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: no new connection (TLS handshake) per scrape
    server_version = "monitord"
    served = 0  # requests answered on this connection

    def version_string(self) -> str:
        return self.server_version  # without the Python version the default adds

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s " + format, self.client_address[0], *args)

    def handle_one_request(self) -> None:
        """One request of the connection; the stdlib's handle() loops while keep-alive."""
        self.close_connection = True
        self.command, self.request_version, self.requestline = "", "HTTP/1.1", ""
        deadlines, limits = self.server.deadlines, self.server.limits
        try:
            if self.served:  # keep-alive: idle allowance, then the read deadline
                deadlines.arm(self.connection, limits.idle_timeout)
                if not self._request_waiting():
                    return
            # On a new connection the read deadline runs from the start: with an idle allowance,
            # connections that never send a byte could hold every slot for a minute.
            deadlines.arm(self.connection, limits.read_timeout)
            head = read_head(self.rfile, limits)
            if head is None:
                return
            self.command, self.path, self.request_version = head.method, head.target, head.version
            self.headers, self.requestline = head.headers, f"{head.method} {head.target}"
            if len(self.rfile.read(head.content_length)) < head.content_length:
                return  # the client hung up; no endpoint uses a body, so it is only drained
            deadlines.disarm(self.connection)  # rendering /metrics or a reload takes its time
            self.close_connection = not head.keep_alive
            self._serve(head)
            self.served += 1
        except BadRequest as exc:
            self._refuse(exc.status, exc.reason)
        except (ClientGone, OSError):  # includes timeouts, resets, TLS errors, a cut deadline
            self.close_connection = True

    def _request_waiting(self) -> bool:
        """Block until the next request's first byte; False if the client closed instead."""
        rfile = self.rfile
        assert isinstance(rfile, io.BufferedReader)
        return bool(rfile.peek(1))

    def _serve(self, head: RequestHead) -> None:
        auth = self.server.access.auth
        if auth.required:
            result = auth.check(head.headers.get("Authorization"))
            if not result.ok:
                self.server.stats.auth_failure(result.outcome)
                log.debug("http %s: %s refused: %s%s", self.client_address[0], head.path,
                          result.outcome.replace("_", " "),
                          f" ({result.user})" if result.user else "")
                self._reply(401, "authentication required\n",
                            headers={"WWW-Authenticate": CHALLENGE})
                return
        if head.path in _READ_ONLY:
            if head.method in ("GET", "HEAD"):
                self._read_only(head.path)
            else:
                self._refuse(405, f"{head.path} takes GET and HEAD", allow="GET, HEAD")
        elif head.path == "/-/reload":
            if head.method == "POST":
                self._reload()
            else:
                self._refuse(405, "use POST to reload the configuration", allow="POST")
        else:
            self._reply(404, f"no such endpoint: {head.path}\n")

    def _read_only(self, path: str) -> None:
        endpoints = self.server.endpoints
        if path == "/metrics":
            self._metrics()
        elif path == "/-/healthy":
            self._reply(200, "monitord is Healthy.\n")
        elif path == "/-/ready":
            if endpoints.is_ready():
                self._reply(200, "monitord is Ready.\n")
            else:
                self._reply(503, "monitord is not ready yet.\n")
        else:
            self._reply(200, "monitord\n\n/metrics\n/-/healthy\n/-/ready\nPOST /-/reload\n")

    def _metrics(self) -> None:
        # Prometheus asks for gzip: ~17x fewer bytes to send, compressed outside the GIL.
        headers = {"Vary": "Accept-Encoding"}
        try:
            rendered = self.server.endpoints.render_metrics()
            pieces = [rendered.encode()] if isinstance(rendered, str) else rendered
            if accepts_gzip(self.headers.get_all("Accept-Encoding", [])):
                pieces = gzipped(pieces)
                headers["Content-Encoding"] = "gzip"
        except Exception:
            log.exception("rendering /metrics failed")
            self._reply(500, "rendering metrics failed; see the monitord log\n")
            return
        self._send(200, pieces, CONTENT_TYPE_METRICS, headers)

    def _reload(self) -> None:
        try:
            ok, message = self.server.endpoints.reload()
        except Exception:  # e.g. the event loop did not answer in time
            log.exception("reload from HTTP failed")
            ok, message = False, "reload failed; see the monitord log"
        self._reply(200 if ok else 500, message.rstrip("\n") + "\n")

    def _refuse(self, status: int, reason: str, allow: str | None = None) -> None:
        """An error answer, after which the connection closes: what the client sends next
        cannot be trusted to start a new request."""
        self.close_connection = True
        self._reply(status, reason.rstrip("\n") + "\n", headers={"Allow": allow} if allow else {})

    def _reply(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8",
               headers: dict[str, str] | None = None) -> None:
        self._send(status, [body.encode()], content_type, headers or {})

    def _send(self, status: int, pieces: Sequence[bytes], content_type: str,
              headers: dict[str, str]) -> None:
        """Answer with the pieces as the body, written a group at a time, never joined whole."""
        self.server.deadlines.arm(self.connection, self.server.limits.write_timeout)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(map(len, pieces))))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            for group in grouped(pieces):
                self.wfile.write(group)
        self.server.stats.response(status)


class HttpServer:
    def __init__(self, listen: str, endpoints: Endpoints, web: WebSettings | None = None,
                 limits: HttpLimits | None = None) -> None:
        self._server = _Server(parse_listen(listen), endpoints, _access(web),
                               limits or HttpLimits())
        self._thread = threading.Thread(target=self._server.serve_forever, name="monitord-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def scheme(self) -> str:
        return "http" if self._server.access.tls is None else "https"

    @property
    def stats(self) -> HttpStats:
        return self._server.stats

    def apply(self, web: WebSettings | None) -> None:
        """New TLS files and users (from a reload): TLS from the next connection on, users
        from the next request on."""
        self._server.access = _access(web)

    def start(self) -> None:
        self._server.deadlines.start()
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.deadlines.stop()  # also ends idle keep-alive connections
        self._server.server_close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
