"""Config section `web`: TLS and basic auth of the HTTP endpoint.

Shaped like Prometheus exporter-toolkit's web config file (tls_server_config,
basic_auth_users with bcrypt hashes), so an existing web.yml's content can be pasted in.
Validated strictly like the rest of the file; the TLS files are read and the hashes checked
at load, so a bad one is a config error that names it, never a server that fails later.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitord.config import values
from monitord.config.files import file_problem
from monitord.config.values import FilePath, SecretSpec
from monitord.config.yamlload import KeyPath
from monitord.http.settings import WebSettings
from monitord.http.tls import ClientAuthType, TlsFileError, TlsVersion, load_server_tls
from monitord.model import Secret

# $2a$, $2b$ or $2y$ (htpasswd, Python's bcrypt and Go's write these), cost, 53 characters.
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
# htpasswd's range. Above it each check takes many seconds of a CPU the probes share.
MIN_COST, MAX_COST = 4, 17
HASH_HELP = "make one with: htpasswd -nBC 10 '' | tr -d ':\\n'"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerSpec(_Strict):
    cert_file: FilePath = Field(min_length=1)
    key_file: FilePath = Field(min_length=1)
    client_ca_file: FilePath | None = Field(default=None, min_length=1)
    client_auth_type: ClientAuthType = "NoClientCert"
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"

    @model_validator(mode="after")
    def _consistent(self) -> TlsServerSpec:
        if self.min_version > self.max_version:
            raise ValueError(f"min_version {self.min_version} is above max_version "
                             f"{self.max_version}")
        if self.client_ca_file is not None and self.client_auth_type == "NoClientCert":
            raise ValueError("client_ca_file is set but client_auth_type is NoClientCert, so no "
                             "client certificate would be checked; set client_auth_type: "
                             "RequireAndVerifyClientCert")
        if self.client_ca_file is None and self.client_auth_type != "NoClientCert":
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file: "
                             "the CA that client certificates must be signed by")
        return self


class WebSpec(_Strict):
    tls_server_config: TlsServerSpec | None = None
    # user -> bcrypt hash, written inline or read from {env: VAR} or {file: PATH}
    basic_auth_users: dict[str, values.Secret] = Field(default_factory=dict)


ReadSecret = Callable[[SecretSpec | None, KeyPath], Secret | None]
Fail = Callable[[KeyPath, str], None]


def resolve_web(spec: WebSpec, read_secret: ReadSecret, fail: Fail) -> WebSettings | None:
    """The endpoint's TLS and users, or None for plain HTTP open to all. Problems go to
    `fail`; hashes, like every secret, are never quoted in them."""
    if spec.tls_server_config is None and not spec.basic_auth_users:
        return None
    users: dict[str, Secret] = {}
    for user, secret_spec in spec.basic_auth_users.items():
        path: KeyPath = ("web", "basic_auth_users", user)
        if problem := _user_name_problem(user):
            fail(path, problem)
            continue
        secret = read_secret(secret_spec, path)
        if secret is None:
            continue
        if problem := _hash_problem(secret):
            fail(path, problem)
            continue
        users[user] = secret
    tls = None
    if (tls_spec := spec.tls_server_config) is not None:
        special = [(key, name, problem) for key, name in (
            ("cert_file", tls_spec.cert_file), ("key_file", tls_spec.key_file),
            ("client_ca_file", tls_spec.client_ca_file)) if name is not None
            and (problem := file_problem(name))]
        for key, name, problem in special:
            fail(("web", "tls_server_config", key), f"cannot read {name}: {problem}")
        if special:
            return WebSettings(tls=None, basic_auth_users=users)
        try:
            tls = load_server_tls(tls_spec.cert_file, tls_spec.key_file, tls_spec.client_ca_file,
                                  tls_spec.client_auth_type, tls_spec.min_version,
                                  tls_spec.max_version)
        except TlsFileError as error:
            fail(("web", "tls_server_config", error.key), str(error))
    return WebSettings(tls=tls, basic_auth_users=users)


def _user_name_problem(user: str) -> str | None:
    """RFC 7617: the user name ends at the first ':'; control characters cannot be sent."""
    if not user:
        return "a user name cannot be empty"
    if ":" in user or not user.isprintable():
        return f"user name {user!r} cannot contain ':' or control characters"
    return None


def _hash_problem(secret: Secret) -> str | None:
    match = _BCRYPT.fullmatch(secret.reveal())
    if match is None:
        where = "" if secret.source == "inline" else f" from {secret.source}"
        return (f"the value{where} is not a bcrypt hash ($2y$, a two-digit cost, $ and 53 "
                f"characters); {HASH_HELP}")
    cost = int(match.group(1))
    if not MIN_COST <= cost <= MAX_COST:
        return (f"bcrypt cost {cost} is outside {MIN_COST} to {MAX_COST}: each step doubles the "
                f"time of a check (10 to 12 is usual); {HASH_HELP}")
    return None
