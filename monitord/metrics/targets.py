"""Per-target ICMP series: the metrics sink and its Prometheus text rendering.

Rendered at probe time, joined at scrape time: observe() (event loop) builds the target's new
immutable snapshot with its exposition lines already rendered, per family, as bytes, and
replaces it in one dict assignment; render_chunks() (HTTP thread) copies the dict's values and
lists each family's header followed by every target's piece of it. They share no lock; a
scrape sees each target's counters consistently (never received > sent), never blocks
probing, and formats nothing: at 10,000 targets formatting took 0.4-0.5 s of CPU per scrape
in the HTTP thread, holding the GIL against the event loop (BENCHMARKS.md, scrape_bench.py).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
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


def family_header(name: str, kind: str, help_text: str) -> bytes:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n".encode()


# (name, type, help, snapshot attribute); a value of NaN means "no sample yet" and is skipped.
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
_SCALAR_ATTRS = tuple((name, attr) for name, _, _, attr in _SCALARS)
_RTT_LAST = "monitord_icmp_rtt_last_seconds"
_RTT = "monitord_icmp_rtt_seconds"
_INFO = "monitord_target_info"
# One header per family, in exposition order; a snapshot's `pieces` follow the same order.
_HEADERS: tuple[bytes, ...] = (
    *(family_header(name, kind, help_text) for name, kind, help_text, _ in _SCALARS),
    family_header(_RTT_LAST, "gauge", "Minimum, average and maximum RTT of the last probe."),
    family_header(_RTT, "histogram", "Round-trip time of ICMP echo replies."),
    family_header(_INFO, "gauge",
                  "Inventory facts per target: parent, profile, name and operator labels."),
)
# What follows a bucket line's hierarchy labels, up to its count.
_BUCKET_TAILS = tuple(f',le="{le}"}} ' for le in _BUCKET_LE)


@dataclass(slots=True)
class TargetSnapshot:
    """One target's series at one moment, with its exposition lines rendered once (`pieces`,
    one bytes per family of _HEADERS) so that a scrape only joins them. Never mutated once
    published (observe() returns a new one); not frozen only because a frozen dataclass's
    __init__ costs ~3x more per probe."""

    check: Check
    labels: str  # pre-rendered hierarchy label pairs
    info_line: bytes  # the monitord_target_info sample: fixed for the check
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
    pieces: tuple[bytes, ...] = ()

    def observe(self, result: ProbeResult) -> TargetSnapshot:
        buckets = list(self.buckets)
        rtts = result.rtts
        for rtt in rtts:
            buckets[bisect.bisect_left(RTT_BUCKETS, rtt)] += 1
        rtt_sum = sum(rtts)
        jitter = result.jitter
        snap = TargetSnapshot(
            check=self.check,
            labels=self.labels,
            info_line=self.info_line,
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
        snap.pieces = snap.render_pieces()  # before anyone else sees it
        return snap

    def render_pieces(self) -> tuple[bytes, ...]:
        """This target's lines per family: ~15 us on the event loop per result (~170 results/s
        in a province), against 0.43 s per scrape when the HTTP thread rendered every target
        (bench/scrape_bench.py)."""
        labels = self.labels
        pieces: list[bytes] = []
        for name, attr in _SCALAR_ATTRS:
            value = getattr(self, attr)
            # NaN: no sample before the first probe
            pieces.append(b"" if math.isnan(value)
                          else f"{name}{{{labels}}} {format_value(value)}\n".encode())
        rtt_last = [f'{_RTT_LAST}{{{labels},stat="{stat}"}} {format_value(value)}\n'
                    for stat, value in (("min", self.last_rtt_min), ("avg", self.last_rtt_avg),
                                        ("max", self.last_rtt_max)) if not math.isnan(value)]
        pieces.append("".join(rtt_last).encode())
        lines = []
        cumulative = 0
        for tail, count in zip(_BUCKET_TAILS, self.buckets, strict=True):
            cumulative += count
            lines.append(f"{_RTT}_bucket{{{labels}{tail}{cumulative}\n")
        lines.append(f"{_RTT}_sum{{{labels}}} {format_value(self.rtt_sum)}\n")
        lines.append(f"{_RTT}_count{{{labels}}} {cumulative}\n")
        pieces.append("".join(lines).encode())
        pieces.append(self.info_line)
        return tuple(pieces)


def _new_snapshot(check: Check) -> TargetSnapshot:
    labels = label_pairs(zip(HIERARCHY_LABELS, check.hierarchy(), strict=True))
    snap = TargetSnapshot(check=check, labels=labels,
                          info_line=f"{_INFO}{{{labels},{_info_labels(check)}}} 1\n".encode())
    snap.pieces = snap.render_pieces()
    return snap


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


def family_chunks(headers: Sequence[bytes], rows: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Each family's header followed by every row's piece of it (rows: per target, one piece
    per family in `headers` order). The pieces are the rows' own objects, not copies."""
    out: list[bytes] = []
    for index, header in enumerate(headers):
        out.append(header)
        out += [piece for row in rows if (piece := row[index])]
    return out


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

    def render_chunks(self) -> list[bytes]:
        """The exposition of every target, family by family, as the pre-rendered pieces."""
        return family_chunks(_HEADERS, [s.pieces for s in list(self._snapshots.values())])

    def render(self) -> str:
        """The same as one str (tests, tools); the HTTP server sends the chunks."""
        return b"".join(self.render_chunks()).decode()


def _info_labels(check: Check) -> str:
    pairs = [("kind", check.kind), ("parent", check.parent or ""), ("profile", check.profile.name),
             ("name", check.name)]
    if check.coordinates is not None:
        pairs += [("latitude", repr(check.coordinates.latitude)),
                  ("longitude", repr(check.coordinates.longitude))]
    pairs += check.labels  # the config refuses operator labels named like the ones above
    return label_pairs(pairs)
