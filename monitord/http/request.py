"""Reading one HTTP/1.x request head within fixed bounds.

The standard library's reader allows 64 KiB per line and 100 headers per request and lets
some malformed requests through; monitord's endpoints need a few hundred bytes, so anything
much bigger or not well formed is refused with the status RFC 9110 names for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from http.client import HTTPMessage
from io import BufferedIOBase

from monitord.http.settings import HttpLimits

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) (HTTP/\d\.\d)\r?\n")
_HEADER_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*\r?\n")
_VERSIONS = ("HTTP/1.0", "HTTP/1.1")


class BadRequest(Exception):  # noqa: N818 - named like the status it usually is
    """The request cannot be served: answer `status` with `reason`, then close."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):  # noqa: N818 - not an error: the client hung up
    """The connection ended in the middle of a request."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str  # as sent: path and query
    version: str  # HTTP/1.0 or HTTP/1.1
    headers: HTTPMessage
    content_length: int

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in ",".join(self.headers.get_all("Connection", [])).split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens


def read_head(rfile: BufferedIOBase, limits: HttpLimits) -> RequestHead | None:
    """The next request's line and headers; None if the client closed before sending one.
    Raises BadRequest for what must be refused, ClientGone if the client hangs up mid-way."""
    line = rfile.readline(limits.max_request_line + 1)
    if line in (b"\r\n", b"\n"):  # RFC 9112 2.2: one empty line before a request is ignored
        line = rfile.readline(limits.max_request_line + 1)
    if not line:
        return None
    if len(line) > limits.max_request_line:
        raise BadRequest(HTTPStatus.REQUEST_URI_TOO_LONG,
                         f"request line longer than {limits.max_request_line} bytes")
    if not line.endswith(b"\n"):
        raise ClientGone
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise BadRequest(HTTPStatus.BAD_REQUEST,
                         "malformed request line (expected: METHOD /path HTTP/1.1)")
    method, target, version = (part.decode("ascii") for part in match.groups())
    if version not in _VERSIONS:
        raise BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version} is not supported; "
                         "use HTTP/1.1 or HTTP/1.0")
    if not target.startswith("/"):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "the request target must be a path starting with /")
    headers = _read_headers(rfile, limits)
    if version == "HTTP/1.1" and len(headers.get_all("Host", [])) != 1:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "an HTTP/1.1 request needs exactly one Host header")
    return RequestHead(method, target, version, headers, _content_length(headers, limits))


def _read_headers(rfile: BufferedIOBase, limits: HttpLimits) -> HTTPMessage:
    headers = HTTPMessage()
    budget = limits.max_header_bytes
    for _ in range(limits.max_headers + 1):
        line = rfile.readline(budget + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if len(line) > budget:
            raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                             f"headers larger than {limits.max_header_bytes} bytes")
        if not line.endswith(b"\n"):
            raise ClientGone
        budget -= len(line)
        match = _HEADER_LINE.fullmatch(line)
        if match is None:  # also obsolete line folding, which RFC 9112 5.2 allows refusing
            raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed header line")
        headers[match.group(1).decode("ascii")] = match.group(2).decode("latin-1")
    raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                     f"more than {limits.max_headers} header lines")


def _content_length(headers: HTTPMessage, limits: HttpLimits) -> int:
    if "Transfer-Encoding" in headers:
        # No endpoint takes a body worth streaming; without Content-Length the end of a body
        # cannot be found, so the connection closes after the answer.
        raise BadRequest(HTTPStatus.NOT_IMPLEMENTED, "Transfer-Encoding is not supported; "
                         "send a Content-Length")
    values = {v.strip() for v in headers.get_all("Content-Length", [])}
    if not values:
        return 0
    value = values.pop()
    if values or not value.isascii() or not value.isdigit():
        raise BadRequest(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
    length = int(value) if len(value) <= 18 else limits.max_body + 1  # int() refuses 4300 digits
    if length > limits.max_body:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                         f"request body larger than {limits.max_body} bytes")
    return length
