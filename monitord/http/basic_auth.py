"""HTTP basic auth against bcrypt hashes, as Prometheus exporter-toolkit does it.

bcrypt is slow by design (about 70 ms at cost 10) and Prometheus sends the same credentials
with every scrape. Like exporter-toolkit, credentials that passed are remembered, so only
the first scrape pays; unlike it, failures are not remembered, so a client trying passwords
cannot push the scrapers' entries out. The cache holds HMACs under a key made at start,
never passwords.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import bcrypt

from monitord.model import Secret

AuthOutcome = Literal["ok", "missing", "malformed", "unknown_user", "wrong_password"]

# bcrypt reads only this many bytes of a password. The bcrypt package refuses longer ones;
# htpasswd and Go's bcrypt (so exporter-toolkit) use the first 72, and so does monitord.
BCRYPT_MAX_PASSWORD = 72
CACHE_SIZE = 100  # credentials remembered; a handful of scrapers need a handful


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: AuthOutcome
    user: str | None = None  # only a configured user name: a typed password never lands here

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class BasicAuth:
    """Checks Authorization headers against `users` (user name -> bcrypt hash)."""

    def __init__(self, users: Mapping[str, Secret], cache_size: int = CACHE_SIZE) -> None:
        self._hashes = {user: secret.reveal().encode("ascii") for user, secret in users.items()}
        # An unknown user is checked against a real hash too, so the answer takes as long as
        # a wrong password would: response times do not tell which user names exist.
        self._decoy = next(iter(self._hashes.values()), b"")
        self._cache_size = cache_size
        self._passed: OrderedDict[bytes, None] = OrderedDict()  # least recently used first
        self._cache_key = secrets.token_bytes(32)
        self._cache_lock = threading.Lock()
        # One bcrypt at a time: it is CPU-bound, and the probes' event loop shares the CPU.
        self._bcrypt_lock = threading.Lock()
        self.bcrypt_checks = 0

    @property
    def required(self) -> bool:
        return bool(self._hashes)

    def check(self, authorization: str | None) -> AuthResult:
        if not authorization:
            return AuthResult("missing")
        credentials = _decode(authorization)
        if credentials is None:
            return AuthResult("malformed")
        user, password = credentials
        stored = self._hashes.get(user)
        key = hmac.digest(self._cache_key, user.encode() + b"\0" + password, "sha256")
        if stored is not None and self._remembered(key):
            return AuthResult("ok", user)
        matches = self._bcrypt(password, stored or self._decoy)
        if stored is None:
            return AuthResult("unknown_user")
        if not matches:
            return AuthResult("wrong_password", user)
        self._remember(key)
        return AuthResult("ok", user)

    def _bcrypt(self, password: bytes, hashed: bytes) -> bool:
        with self._bcrypt_lock:
            self.bcrypt_checks += 1
            try:
                return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed)
            except ValueError:  # a hash bcrypt cannot read (the config check should prevent it)
                return False

    def _remembered(self, key: bytes) -> bool:
        with self._cache_lock:
            if key not in self._passed:
                return False
            self._passed.move_to_end(key)
            return True

    def _remember(self, key: bytes) -> None:
        with self._cache_lock:
            self._passed[key] = None
            while len(self._passed) > self._cache_size:
                self._passed.popitem(last=False)


def _decode(authorization: str) -> tuple[str, bytes] | None:
    """(user, password) from `Basic base64(user:password)` (RFC 7617), or None."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
        user, colon, password = raw.partition(b":")
        return (user.decode("utf-8"), password) if colon else None
    except (binascii.Error, ValueError):  # not base64, not ASCII, or a user name not UTF-8
        return None
