"""What the HTTP endpoint is told: TLS, basic-auth users (config key `web`) and its limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitord.http.tls import ServerTls
from monitord.model import Secret


@dataclass(frozen=True, slots=True)
class WebSettings:
    """TLS and basic auth of the endpoint, in the spirit of Prometheus exporter-toolkit's
    web config. Without either, the endpoint is plain HTTP open to anyone who reaches it."""

    tls: ServerTls | None = None
    basic_auth_users: Mapping[str, Secret] = field(default_factory=dict)  # user -> bcrypt hash


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds on what one client may send or hold. A scrape needs a few hundred bytes and a
    fraction of a second; anything far beyond that is a broken or hostile client."""

    max_request_line: int = 8192  # bytes; longer: 414
    max_header_bytes: int = 16384  # all header lines together; more: 431
    max_headers: int = 64  # header lines; more: 431
    max_body: int = 4096  # bytes; POST /-/reload needs none; more: 413
    max_connections: int = 64  # open at once; more are closed at accept
    # Deadlines, not idle timeouts: a client trickling a byte at a time still runs out.
    handshake_timeout: float = 10.0  # TLS handshake
    read_timeout: float = 10.0  # from a request's first byte (or the connection's start) to its end
    write_timeout: float = 60.0  # sending one response (a big /metrics to a slow reader)
    idle_timeout: float = 60.0  # keep-alive: waiting for a further request's first byte
