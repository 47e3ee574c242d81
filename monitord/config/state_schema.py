"""Config sections for target state, its history and its MQTT delivery:
`profiles.NAME.state`, `history` and `mqtt`. Validated strictly, like the rest of the file."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from monitord.config.values import Duration, FilePath, Secret

# MQTT topic levels: no wildcards, no empty levels, no leading/trailing slash.
_TOPIC_PREFIX = re.compile(r"^[^/#+\x00]+(/[^/#+\x00]+)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateSpec(_Strict):
    """Hysteresis and thresholds that turn probe results into a target state."""

    down_failures: int = Field(default=3, ge=1, le=100)
    down_window: int = Field(default=5, ge=1, le=100)
    up_successes: int = Field(default=2, ge=1, le=100)
    max_loss_ratio: float = Field(default=0.2, ge=0.0, lt=1.0)
    max_rtt: Duration | None = None
    flap_changes: int = Field(default=5, ge=2, le=1000)
    flap_window: Duration = 1800.0

    @model_validator(mode="after")
    def _failures_fit_window(self) -> StateSpec:
        if self.down_failures > self.down_window:
            raise ValueError(f"down_failures ({self.down_failures}) cannot exceed down_window "
                             f"({self.down_window}): the target could never go down")
        return self


class HistorySpec(_Strict):
    """The event history kept in STATE_DIR/history.sqlite3."""

    retention: Duration = 400 * 86400.0  # over a year, so yearly SPBE reports can be made


class MqttTlsSpec(_Strict):
    ca_file: FilePath | None = None  # default: the system's CA store
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    verify_hostname: bool = True

    @model_validator(mode="after")
    def _cert_with_key(self) -> MqttTlsSpec:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        return self


_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def _topic_prefix(value: object) -> str:
    if isinstance(value, str) and len(value) <= 200 and _TOPIC_PREFIX.match(value):
        return value
    raise ValueError(f"{value!r} is not a topic prefix: levels separated by single '/', "
                     "no wildcards (+ #), no leading or trailing '/'")


def _client_id(value: object) -> str:
    if isinstance(value, str) and _CLIENT_ID.match(value):
        return value
    raise ValueError(f"{value!r} is not a client id: 1-128 of letters, digits, '_', '.', '-'")


TopicPrefix = Annotated[str, BeforeValidator(_topic_prefix)]
ClientId = Annotated[str, BeforeValidator(_client_id)]


class MqttSpec(_Strict):
    host: str = Field(min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)  # 1883, or 8883 with tls
    client_id: ClientId | None = None  # default monitord-PROVINCE
    topic_prefix: TopicPrefix | None = None  # default monitord/PROVINCE
    username: str | None = Field(default=None, min_length=1)
    password: Secret | None = None
    tls: MqttTlsSpec | None = None
    keepalive: Duration = Field(default=30.0, ge=5.0, le=3600.0)
    connect_timeout: Duration = 10.0
    max_backoff: Duration = 60.0

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttSpec:
        if self.password is not None and self.username is None:
            raise ValueError("password is given without username")
        return self
