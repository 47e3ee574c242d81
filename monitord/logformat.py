"""Log output: text for a terminal, or JSON (one object per line) for journald or a log shipper.

Both formats pass every line, tracebacks included, through the same redaction: the values of
the configuration's secrets (SNMP communities and passwords, the MQTT password) and passwords
in URLs are replaced by <redacted>. Secret's repr already hides the value, but a library that
was handed the revealed value may quote it in an exception message, and a traceback prints
that message. Tracebacks are kept (they are what finds our bugs), only the values go.

Uncaught exceptions (main thread and other threads) and Python warnings are routed through
logging, so they are redacted too and, in JSON mode, still one object per line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Literal, TextIO

from monitord.model import Secret

__all__ = ["LOG_LEVELS", "REDACTED", "JsonFormatter", "LogFormat", "TextFormatter",
           "configure_logging", "hide_secrets", "redact", "secrets_in"]

LogFormat = Literal["text", "json"]
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
REDACTED = "<redacted>"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Shorter values are not masked: they would blank out ordinary words in every line, and a
# 1-3 character secret protects nothing anyway.
MIN_SECRET_LENGTH = 4
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+):[^/\s@]+@")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}
_LOG = logging.getLogger("monitord")


class _Redaction:
    """The secret values to mask; replaced as a whole, so a reading thread sees old or new."""

    def __init__(self) -> None:
        self._forms: tuple[str, ...] = ()

    def set_values(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) >= MIN_SECRET_LENGTH:
                # As given, and as quoted inside a repr (a traceback shows b'...' or '...').
                forms.update((value, repr(value)[1:-1], repr(value.encode())[2:-1]))
        self._forms = tuple(sorted(forms, key=len, reverse=True))  # longest first

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
        return text


redact = _Redaction()


def hide_secrets(secrets: Iterable[Secret]) -> None:
    """Mask these values in every log line from now on (replacing the earlier set: call it
    with all of the running configuration's secrets on every load and reload)."""
    redact.set_values(secret.reveal() for secret in secrets)


def secrets_in(value: object) -> set[Secret]:
    """Every Secret reachable from `value` through dataclass fields, mappings and sequences
    (an Inventory: its profiles' credentials, the MQTT password, whatever is added later)."""
    found: set[Secret] = set()
    seen: set[int] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Secret):
            found.add(item)
        elif isinstance(item, str | bytes | int | float | Enum | type) or item is None:
            continue
        elif id(item) in seen:
            continue  # ten thousand checks share a few profiles
        elif dataclasses.is_dataclass(item):
            seen.add(id(item))
            pending.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, Mapping):
            seen.add(id(item))
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            seen.add(id(item))
            pending.extend(item)
    return found


class TextFormatter(logging.Formatter):
    """`2026-03-01 10:00:00,123 INFO monitord.daemon: message`, redacted."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601 with zone), level, logger, message, the
    record's `extra` fields (target, from, to, root_cause...), exception and stack if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                line[key if key not in line else f"extra_{key}"] = _jsonable(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False)


def _jsonable(value: object) -> object:
    """A JSON value for an `extra` field; anything else becomes its (redacted) str."""
    if isinstance(value, Enum):
        value = value.value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return redact(str(value))


class _Handler(logging.StreamHandler[TextIO]):
    """Ours, so that configuring again replaces it and leaves other handlers alone."""


def configure_logging(level: str, fmt: LogFormat, stream: TextIO | None = None) -> None:
    """Log `level` and above to `stream` (stderr) as text or JSON, replacing an earlier call's
    setup; route uncaught exceptions and warnings through it."""
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}: one of {', '.join(LOG_LEVELS)}")
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}: text or json")
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    _LOG.critical("uncaught exception, exiting", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return  # what threading's own hook ignores too
    name = args.thread.name if args.thread is not None else "?"
    _LOG.error("uncaught exception in thread %s", name,
               exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
