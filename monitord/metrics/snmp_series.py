"""Per-device SNMP series: the sink for SnmpPollResults and their Prometheus rendering.

Same lock-free scheme as TargetSeries: observe() (event loop) replaces a device's immutable
snapshot, its lines rendered as bytes per family; render_chunks() (HTTP thread) reads a copy
of the dict and lists the pieces under each family's header. A device's module samples
arrive rendered by the poller (encoded here, once per poll); its own scalars, error counts,
info and uptime are rendered here when the poll is observed. A failed poll exports no module
samples at all (the series go stale in Prometheus rather than repeating old values as if
fresh); the device's own counters stay.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from monitord.metrics.targets import (
    carry_over,
    family_chunks,
    family_header,
    format_value,
    label_pairs,
)
from monitord.model import HIERARCHY_LABELS, Check, SnmpPollResult, SnmpProfile
from monitord.snmp.modules import SnmpModule
from monitord.snmp.uptime import Uptime, advance

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    check: Check
    labels: str  # pre-rendered hierarchy label pairs
    info_line: bytes  # the monitord_snmp_target_info sample: fixed for the check
    families: Mapping[str, bytes] = field(default_factory=dict)  # module family -> its lines
    uptime: Uptime | None = None
    up: float = math.nan
    last_duration: float = math.nan
    last_timestamp: float = math.nan
    last_varbinds: float = math.nan
    polls_total: int = 0
    varbinds_total: int = 0
    requests_total: int = 0
    retries_total: int = 0
    timeouts_total: int = 0
    errors_total: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    last_error: str | None = None
    pieces: tuple[bytes, ...] = ()  # this device's lines per family of _HEADERS


# (name, type, help, snapshot attribute); NaN means no sample yet.
_DEVICE_SCALARS: tuple[tuple[str, str, str, str], ...] = (
    ("monitord_snmp_up", "gauge", "Whether the last SNMP poll completed (1) or failed (0).", "up"),
    ("monitord_snmp_poll_duration_seconds", "gauge", "Wall time of the last SNMP poll.",
     "last_duration"),
    ("monitord_snmp_last_poll_timestamp_seconds", "gauge", "When the last SNMP poll started.",
     "last_timestamp"),
    ("monitord_snmp_poll_varbinds", "gauge", "Varbinds returned by the last complete SNMP poll.",
     "last_varbinds"),
    ("monitord_snmp_polls_total", "counter", "SNMP polls finished, complete or not.",
     "polls_total"),
    ("monitord_snmp_varbinds_total", "counter", "Varbinds returned by complete SNMP polls.",
     "varbinds_total"),
    ("monitord_snmp_requests_total", "counter",
     "SNMP requests sent (a request retried counts once).", "requests_total"),
    ("monitord_snmp_retries_total", "counter", "SNMP request retries after a timeout.",
     "retries_total"),
    ("monitord_snmp_timeouts_total", "counter",
     "SNMP requests that got no response after every retry.", "timeouts_total"),
)
_UPTIME = "monitord_device_uptime_seconds"
_BOOT_TIME = "monitord_device_boot_time_seconds"
_REBOOTS = "monitord_device_reboots_total"
_UPTIME_FAMILIES: tuple[tuple[str, str, str], ...] = (
    (_UPTIME, "gauge",
     "Time since the device's SNMP agent started (sysUpTime, counting 497-day wraps)."),
    (_BOOT_TIME, "gauge",
     "When the device's SNMP agent started, estimated from sysUpTime (seconds since epoch)."),
    (_REBOOTS, "counter",
     "Agent restarts (sysUpTime going backwards, not a wrap) seen since monitord started."),
)
_ERRORS = "monitord_snmp_errors_total"
_INFO = "monitord_snmp_target_info"
# The device's own families, in exposition order; a snapshot's `pieces` follow it.
_HEADERS: tuple[bytes, ...] = (
    *(family_header(name, kind, help_text) for name, kind, help_text, _ in _DEVICE_SCALARS),
    family_header(_ERRORS, "counter", "SNMP poll failures and value problems, by reason."),
    family_header(_INFO, "gauge",
                  "SNMP settings per device: profile, version, security level, modules."),
    *(family_header(name, kind, help_text) for name, kind, help_text in _UPTIME_FAMILIES),
)
_SCALAR_ATTRS = tuple((name, attr) for name, _, _, attr in _DEVICE_SCALARS)


class SnmpSeries:
    def __init__(self) -> None:
        self._snapshots: dict[str, DeviceSnapshot] = {}
        self._module_headers: tuple[tuple[str, bytes], ...] = ()  # (module metric name, header)

    def set_checks(self, checks: Iterable[Check], modules: Mapping[str, SnmpModule]) -> None:
        headers: dict[str, bytes] = {}
        for module in modules.values():
            for metric in [*module.scalars, *(m for t in module.tables for m in t.metrics)]:
                kind = "gauge" if metric.type == "info" else metric.type
                if metric.name not in headers:
                    headers[metric.name] = family_header(metric.name, kind, metric.help)
        self._module_headers = tuple(headers.items())
        self._snapshots = carry_over(self._snapshots, checks, "snmp", _new)

    def snapshot(self, target: str) -> DeviceSnapshot | None:
        return self._snapshots.get(target)

    def observe(self, result: SnmpPollResult) -> None:
        snap = self._snapshots.get(result.check.target)
        if snap is None or snap.check != result.check:
            return
        errors = dict(snap.errors_total)
        for reason, count in result.value_errors.items():
            errors[reason] = errors.get(reason, 0) + count
            if reason not in snap.errors_total:
                log.warning("%s: %s (%d this poll)", result.check.target,
                            result.value_error_examples.get(reason, reason), count)
        if result.error_reason is not None:
            errors[result.error_reason] = errors.get(result.error_reason, 0) + 1
        if result.error != snap.last_error:
            if result.error is not None:
                log.warning("%s: SNMP poll failed: %s", result.check.target, result.error)
            elif snap.last_error is not None:
                log.info("%s: SNMP poll complete again", result.check.target)
        uptime = snap.uptime
        if result.uptime_ticks is not None:
            uptime = advance(uptime, result.uptime_ticks, result.started)
            if snap.uptime is not None and uptime.reboots > snap.uptime.reboots:
                log.warning("%s: agent restarted (sysUpTime %d after %d)", result.check.target,
                            result.uptime_ticks, snap.uptime.ticks)
        ok = result.success
        self._snapshots[result.check.target] = _rendered(replace(
            snap,
            families={name: lines.encode() for name, lines in result.families.items()} if ok else {},
            uptime=uptime,
            up=1.0 if ok else 0.0,
            last_duration=result.duration,
            last_timestamp=result.started,
            last_varbinds=float(result.varbinds) if ok else snap.last_varbinds,
            polls_total=snap.polls_total + 1,
            varbinds_total=snap.varbinds_total + (result.varbinds if ok else 0),
            requests_total=snap.requests_total + result.requests,
            retries_total=snap.retries_total + result.retries,
            timeouts_total=snap.timeouts_total + result.timeouts,
            errors_total=errors,
            last_error=result.error,
        ))

    def render_chunks(self) -> list[bytes]:
        """Every device's exposition, family by family, as the pre-rendered pieces."""
        snaps = list(self._snapshots.values())
        if not snaps:
            return []
        out = family_chunks(_HEADERS, [s.pieces for s in snaps])
        for name, header in self._module_headers:
            out.append(header)
            out += [lines for s in snaps if (lines := s.families.get(name))]
        return out

    def render(self) -> str:
        """The same as one str (tests, tools); the HTTP server sends the chunks."""
        return b"".join(self.render_chunks()).decode()


def _rendered(snap: DeviceSnapshot) -> DeviceSnapshot:
    """`snap` with its own families' lines rendered (the module families come rendered)."""
    labels = snap.labels
    pieces: list[bytes] = []
    for name, attr in _SCALAR_ATTRS:
        value = getattr(snap, attr)
        pieces.append(b"" if math.isnan(value)  # no sample yet
                      else f"{name}{{{labels}}} {format_value(value)}\n".encode())
    pieces.append("".join(f'{_ERRORS}{{{labels},reason="{reason}"}} {count}\n'
                          for reason, count in sorted(snap.errors_total.items())).encode())
    pieces.append(snap.info_line)
    uptime = snap.uptime
    if uptime is None:
        pieces += (b"", b"", b"")
    else:  # uptime and boot time after a complete poll only; the reboot count after any
        complete = snap.up == 1.0
        pieces.append(f"{_UPTIME}{{{labels}}} {format_value(uptime.seconds)}\n".encode()
                      if complete else b"")
        pieces.append(f"{_BOOT_TIME}{{{labels}}} {format_value(round(uptime.boot_time))}\n"
                      .encode() if complete else b"")
        pieces.append(f"{_REBOOTS}{{{labels}}} {uptime.reboots}\n".encode())
    return replace(snap, pieces=tuple(pieces))


def _new(check: Check) -> DeviceSnapshot:
    profile = check.profile
    assert isinstance(profile, SnmpProfile)
    creds = profile.credentials
    info = label_pairs([("profile", profile.name), ("version", creds.version_name),
                        ("security_level", creds.security_level),
                        ("modules", ",".join(profile.modules))])
    labels = label_pairs(zip(HIERARCHY_LABELS, check.hierarchy(), strict=True))
    return _rendered(DeviceSnapshot(check=check, labels=labels,
                                    info_line=f"{_INFO}{{{labels},{info}}} 1\n".encode()))
