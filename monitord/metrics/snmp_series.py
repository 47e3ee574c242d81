"""Per-device SNMP series: the sink for SnmpPollResults and their Prometheus rendering.

Same lock-free scheme as TargetSeries: observe() (event loop) replaces a device's immutable
snapshot; render() (HTTP thread) reads a copy of the dict. A device's module samples arrive
pre-rendered per metric family, so rendering is joining strings under each family's header.
A failed poll exports no module samples at all (the series go stale in Prometheus rather
than repeating old values as if fresh); the device's own counters stay.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from monitord.metrics.targets import carry_over, format_value, label_pairs
from monitord.model import HIERARCHY_LABELS, Check, SnmpPollResult, SnmpProfile
from monitord.snmp.modules import SnmpModule
from monitord.snmp.uptime import Uptime, advance

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    check: Check
    labels: str  # pre-rendered hierarchy label pairs
    info: str  # pre-rendered monitord_snmp_target_info extra pairs
    families: Mapping[str, str] = field(default_factory=dict)
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
_UPTIME_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("monitord_device_uptime_seconds", "gauge",
     "Time since the device's SNMP agent started (sysUpTime, counting 497-day wraps)."),
    ("monitord_device_boot_time_seconds", "gauge",
     "When the device's SNMP agent started, estimated from sysUpTime (seconds since epoch)."),
    ("monitord_device_reboots_total", "counter",
     "Agent restarts (sysUpTime going backwards, not a wrap) seen since monitord started."),
)


class SnmpSeries:
    def __init__(self) -> None:
        self._snapshots: dict[str, DeviceSnapshot] = {}
        self._families: dict[str, tuple[str, str]] = {}  # module metric name -> (type, help)

    def set_checks(self, checks: Iterable[Check], modules: Mapping[str, SnmpModule]) -> None:
        families: dict[str, tuple[str, str]] = {}
        for module in modules.values():
            for metric in [*module.scalars, *(m for t in module.tables for m in t.metrics)]:
                kind = "gauge" if metric.type == "info" else metric.type
                families.setdefault(metric.name, (kind, metric.help))
        self._families = families
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
        self._snapshots[result.check.target] = replace(
            snap,
            families=result.families if ok else {},
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
        )

    def render(self) -> str:
        snaps = list(self._snapshots.values())
        if not snaps:
            return ""
        out: list[str] = []
        emit = out.append
        for name, kind, help_text, attr in _DEVICE_SCALARS:
            emit(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            for s in snaps:
                value = getattr(s, attr)
                if not math.isnan(value):
                    emit(f"{name}{{{s.labels}}} {format_value(value)}\n")
        name = "monitord_snmp_errors_total"
        emit(f"# HELP {name} SNMP poll failures and value problems, by reason.\n"
             f"# TYPE {name} counter\n")
        for s in snaps:
            for reason, count in sorted(s.errors_total.items()):
                emit(f'{name}{{{s.labels},reason="{reason}"}} {count}\n')
        name = "monitord_snmp_target_info"
        emit(f"# HELP {name} SNMP settings per device: profile, version, security level, "
             f"modules.\n# TYPE {name} gauge\n")
        for s in snaps:
            emit(f"{name}{{{s.labels},{s.info}}} 1\n")
        self._render_uptime(snaps, emit)
        for name, (kind, help_text) in self._families.items():
            emit(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            for s in snaps:
                lines = s.families.get(name)
                if lines:
                    emit(lines)
        return "".join(out)

    @staticmethod
    def _render_uptime(snaps: list[DeviceSnapshot], emit: Callable[[str], None]) -> None:
        for name, kind, help_text in _UPTIME_FAMILIES:
            emit(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            for s in snaps:
                uptime = s.uptime
                if uptime is None or (s.up != 1.0 and name != "monitord_device_reboots_total"):
                    continue
                if name == "monitord_device_uptime_seconds":
                    value = format_value(uptime.seconds)
                elif name == "monitord_device_boot_time_seconds":
                    value = format_value(round(uptime.boot_time))
                else:
                    value = str(uptime.reboots)
                emit(f"{name}{{{s.labels}}} {value}\n")


def _new(check: Check) -> DeviceSnapshot:
    profile = check.profile
    assert isinstance(profile, SnmpProfile)
    creds = profile.credentials
    info = label_pairs([("profile", profile.name), ("version", creds.version_name),
                        ("security_level", creds.security_level),
                        ("modules", ",".join(profile.modules))])
    return DeviceSnapshot(check=check,
                          labels=label_pairs(zip(HIERARCHY_LABELS, check.hierarchy(), strict=True)),
                          info=info)
