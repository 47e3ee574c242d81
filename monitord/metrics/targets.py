"""Per-target ICMP series: the metrics sink and its Prometheus text rendering.

The event loop calls observe(); the HTTP thread calls render(). They share no lock: observe()
replaces a target's immutable snapshot in one dict assignment, and render() copies the dict's
values first, so a scrape sees each target's counters consistently (never received > sent)
and never blocks probing. Label strings are escaped once per check, not per scrape: at 5,000
targets that is most of the cost of prometheus-client's generic renderer.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from monitord.model import HIERARCHY_LABELS, Check, ProbeResult

# Loopback and LAN (sub-ms), kabupaten radio (ms to tens of ms), VSAT (~600 ms) up to timeouts.
RTT_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0,
)


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs)


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


_BUCKET_LE = (*(format_value(b) for b in RTT_BUCKETS), "+Inf")


@dataclass(slots=True)
class TargetSnapshot:
    """One target's series at one moment. Never mutated once built (observe() returns a new
    one); not frozen only because a frozen dataclass's __init__ costs ~3x more per probe."""

    check: Check
    labels: str  # pre-rendered hierarchy label pairs
    info: str  # pre-rendered monitord_target_info extra label pairs
    sent_total: int = 0
    received_total: int = 0
    buckets: tuple[int, ...] = (0,) * (len(RTT_BUCKETS) + 1)  # per bucket, not cumulative
    rtt_sum: float = 0.0
    probes_total: int = 0
    probe_errors_total: int = 0
    last_success: float = math.nan  # NaN until the first probe completes
    last_loss: float = math.nan
    last_duration: float = math.nan
    last_timestamp: float = math.nan
    last_rtt_min: float = math.nan
    last_rtt_avg: float = math.nan
    last_rtt_max: float = math.nan
    last_jitter: float = math.nan

    def observe(self, result: ProbeResult) -> TargetSnapshot:
        buckets = list(self.buckets)
        rtts = result.rtts
        for rtt in rtts:
            buckets[bisect.bisect_left(RTT_BUCKETS, rtt)] += 1
        rtt_sum = sum(rtts)
        jitter = result.jitter
        return TargetSnapshot(
            check=self.check,
            labels=self.labels,
            info=self.info,
            sent_total=self.sent_total + result.sent,
            received_total=self.received_total + result.received,
            buckets=tuple(buckets),
            rtt_sum=self.rtt_sum + rtt_sum,
            probes_total=self.probes_total + 1,
            probe_errors_total=self.probe_errors_total + (result.error is not None),
            last_success=1.0 if result.success else 0.0,
            last_loss=result.loss_ratio,
            last_duration=result.duration,
            last_timestamp=result.started,
            last_rtt_min=min(rtts) if rtts else math.nan,
            last_rtt_avg=rtt_sum / len(rtts) if rtts else math.nan,
            last_rtt_max=max(rtts) if rtts else math.nan,
            last_jitter=jitter if jitter is not None else math.nan,
        )


def _new_snapshot(check: Check) -> TargetSnapshot:
    labels = label_pairs(zip(HIERARCHY_LABELS, check.hierarchy(), strict=True))
    return TargetSnapshot(check=check, labels=labels, info=_info_labels(check))


# (name, type, help, value of a snapshot); a value of NaN means "no sample yet" and is skipped.
_SCALARS: tuple[tuple[str, str, str, str], ...] = (
    ("monitord_icmp_requests_total", "counter", "ICMP echo requests sent.", "sent_total"),
    ("monitord_icmp_responses_total", "counter",
     "ICMP echo replies received within their timeout.", "received_total"),
    ("monitord_probes_per_target_total", "counter", "Probes completed per target.", "probes_total"),
    ("monitord_probe_errors_total", "counter",
     "Probes that reported an error (send failure, deadline exceeded, ...).", "probe_errors_total"),
    ("monitord_probe_success", "gauge",
     "Whether the last probe got at least one reply (1) or none (0).", "last_success"),
    ("monitord_icmp_loss_ratio", "gauge", "Fraction of echoes lost in the last probe (0-1).",
     "last_loss"),
    ("monitord_probe_last_duration_seconds", "gauge", "Wall time of the last probe.",
     "last_duration"),
    ("monitord_probe_last_timestamp_seconds", "gauge", "When the last probe started.",
     "last_timestamp"),
    ("monitord_icmp_jitter_seconds", "gauge",
     "Mean absolute difference of consecutive RTTs in the last probe.", "last_jitter"),
)
_RTT_STATS = (("min", "last_rtt_min"), ("avg", "last_rtt_avg"), ("max", "last_rtt_max"))


class _HasCheck(Protocol):
    @property
    def check(self) -> Check: ...


SnapshotT = TypeVar("SnapshotT", bound=_HasCheck)


def carry_over(current: dict[str, SnapshotT], checks: Iterable[Check], kind: str,
               new: Callable[[Check], SnapshotT]) -> dict[str, SnapshotT]:
    """Per-target snapshots after a reload: unchanged checks of `kind` keep theirs (and their
    counters), changed ones start anew, removed ones are dropped."""
    fresh: dict[str, SnapshotT] = {}
    for check in checks:
        if check.kind == kind:
            old = current.get(check.target)
            fresh[check.target] = old if old is not None and old.check == check else new(check)
    return fresh


class TargetSeries:
    """The metrics sink for ICMP results and the renderer of their series."""

    def __init__(self) -> None:
        self._snapshots: dict[str, TargetSnapshot] = {}

    def set_checks(self, checks: Iterable[Check]) -> None:
        """Keep series of unchanged checks; start changed ones anew; drop removed ones."""
        # one assignment: a scrape sees the old or the new set, whole
        self._snapshots = carry_over(self._snapshots, checks, "icmp", _new_snapshot)

    def observe(self, result: ProbeResult) -> None:
        snapshots = self._snapshots
        snap = snapshots.get(result.check.target)
        if snap is None or snap.check != result.check:
            return  # a result for a check that a reload removed or changed
        snapshots[result.check.target] = snap.observe(result)

    def snapshot(self, target: str) -> TargetSnapshot | None:
        return self._snapshots.get(target)

    def render(self) -> str:
        snaps = list(self._snapshots.values())
        out: list[str] = []
        emit = out.append
        for name, kind, help_text, attr in _SCALARS:
            emit(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            for s in snaps:
                value = getattr(s, attr)
                if not math.isnan(value):  # no sample before the first probe
                    emit(f"{name}{{{s.labels}}} {format_value(value)}\n")
        name = "monitord_icmp_rtt_last_seconds"
        emit(f"# HELP {name} Minimum, average and maximum RTT of the last probe.\n# TYPE {name} gauge\n")
        for s in snaps:
            for stat, attr in _RTT_STATS:
                value = getattr(s, attr)
                if not math.isnan(value):
                    emit(f'{name}{{{s.labels},stat="{stat}"}} {format_value(value)}\n')
        name = "monitord_icmp_rtt_seconds"
        emit(f"# HELP {name} Round-trip time of ICMP echo replies.\n# TYPE {name} histogram\n")
        for s in snaps:
            cumulative = 0
            labels = s.labels
            for le, count in zip(_BUCKET_LE, s.buckets, strict=True):
                cumulative += count
                emit(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}\n')
            emit(f"{name}_sum{{{labels}}} {format_value(s.rtt_sum)}\n")
            emit(f"{name}_count{{{labels}}} {cumulative}\n")
        name = "monitord_target_info"
        emit(f"# HELP {name} Inventory facts per target: parent, profile, name and operator labels."
             f"\n# TYPE {name} gauge\n")
        for s in snaps:
            emit(f"{name}{{{s.labels},{s.info}}} 1\n")
        return "".join(out)


def _info_labels(check: Check) -> str:
    pairs = [("kind", check.kind), ("parent", check.parent or ""), ("profile", check.profile.name),
             ("name", check.name)]
    if check.coordinates is not None:
        pairs += [("latitude", repr(check.coordinates.latitude)),
                  ("longitude", repr(check.coordinates.longitude))]
    pairs += check.labels  # the config refuses operator labels named like the ones above
    return label_pairs(pairs)
