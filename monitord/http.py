"""The HTTP endpoint: /metrics, /-/healthy, /-/ready, POST /-/reload.

It runs in its own threads (ThreadingHTTPServer), so rendering a large /metrics never stalls
the event loop that times the probes. Reload is handed to the event loop and awaited.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the server calls; each runs in an HTTP thread."""

    render_metrics: Callable[[], str]
    is_ready: Callable[[], bool]
    reload: Callable[[], tuple[bool, str]]  # (ok, message)


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means all


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], endpoints: Endpoints) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.endpoints = endpoints


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "monitord"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s " + format, self.client_address[0], *args)

    def _reply(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:
        endpoints = self.server.endpoints
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = endpoints.render_metrics()
            except Exception:
                log.exception("rendering /metrics failed")
                self._reply(500, "rendering metrics failed; see the monitord log\n")
                return
            self._reply(200, body, CONTENT_TYPE_METRICS)
        elif path == "/-/healthy":
            self._reply(200, "monitord is Healthy.\n")
        elif path == "/-/ready":
            if endpoints.is_ready():
                self._reply(200, "monitord is Ready.\n")
            else:
                self._reply(503, "monitord is not ready yet.\n")
        elif path == "/-/reload":
            self._reply(405, "use POST to reload the configuration\n")
        elif path == "/":
            self._reply(200, "monitord\n\n/metrics\n/-/healthy\n/-/ready\nPOST /-/reload\n")
        else:
            self._reply(404, f"no such endpoint: {path}\n")

    do_HEAD = do_GET  # noqa: N815

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/-/reload":
            self._reply(405 if self.path.startswith("/metrics") else 404, "only /-/reload takes POST\n")
            return
        ok, message = self.server.endpoints.reload()
        self._reply(200 if ok else 500, message.rstrip("\n") + "\n")


class HttpServer:
    def __init__(self, listen: str, endpoints: Endpoints) -> None:
        self._server = _Server(parse_listen(listen), endpoints)
        self._thread = threading.Thread(target=self._server.serve_forever, name="monitord-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
