"""Per-target state series, from the state engine's snapshot at scrape time.

The state is a state set (kube-state-metrics' convention): one series per possible state,
1 for the current one, so `monitord_target_state{state="down"} == 1` selects what is down and
a series never disappears when a target changes state. The root cause of a target that is not
up is a separate series, so its label changing does not churn the state series.

A target's lines are rendered once per TargetStatus: the engine replaces a status object only
when something in it changes, so a scrape re-renders only the targets whose status changed
since the last scrape and lists the others' cached bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from monitord.metrics.targets import family_chunks, family_header, format_value, label_pairs
from monitord.model import HIERARCHY_LABELS
from monitord.state.model import State, TargetStatus

_STATES = tuple(State)
_STATE = "monitord_target_state"
_ROOT_CAUSE = "monitord_target_root_cause"
_FLAPPING = "monitord_target_flapping"
_SINCE = "monitord_target_state_since_timestamp_seconds"
# In exposition order; a target's cached pieces follow it.
_HEADERS: tuple[bytes, ...] = (
    family_header(_STATE, "gauge", "Current state of the target (1 for its state, 0 for the "
                  "others): unknown, up, degraded, down (own probes fail, parent reachable) or "
                  "unreachable (an ancestor is down)."),
    family_header(_ROOT_CAUSE, "gauge", "The target whose failure explains this target's state "
                  "(itself when down, the failed ancestor when unreachable); only present while "
                  "there is one."),
    family_header(_FLAPPING, "gauge", "Whether the target's state changes too often (1) or not (0)."),
    family_header(_SINCE, "gauge", "When the target entered its current state."),
)

Pieces = tuple[bytes, bytes, bytes, bytes]


def render_status(status: TargetStatus) -> Pieces:
    """One target's lines, per family of _HEADERS."""
    p = status.placement
    labels = label_pairs(zip(HIERARCHY_LABELS, (p.province, p.kabupaten, p.site, p.role, p.target,
                                                p.address), strict=True))
    state = "".join(f'{_STATE}{{{labels},state="{s.value}"}} {int(status.state is s)}\n'
                    for s in _STATES)
    root_cause = "" if status.root_cause is None else (
        f"{_ROOT_CAUSE}{{{labels},{label_pairs([('root_cause', status.root_cause)])}}} 1\n")
    flapping = f"{_FLAPPING}{{{labels}}} {int(status.flapping)}\n"
    since = f"{_SINCE}{{{labels}}} {format_value(status.since)}\n"
    return state.encode(), root_cause.encode(), flapping.encode(), since.encode()


class StateSeries:
    """Renders monitord_target_state and friends from `statuses()` (the engine's snapshot)."""

    def __init__(self, statuses: Callable[[], Mapping[str, TargetStatus]]) -> None:
        self._statuses = statuses
        # target -> (the status last rendered, its pieces). Replaced whole by each scrape, so
        # removed targets drop out; concurrent scrapes at worst render a status twice.
        self._cache: dict[str, tuple[TargetStatus, Pieces]] = {}

    def render_chunks(self) -> list[bytes]:
        cache = self._cache
        fresh: dict[str, tuple[TargetStatus, Pieces]] = {}
        rows: list[Pieces] = []
        for target, status in list(self._statuses().items()):
            cached = cache.get(target)
            if cached is None or (cached[0] is not status and cached[0] != status):
                cached = (status, render_status(status))
            fresh[target] = cached
            rows.append(cached[1])
        self._cache = fresh
        return family_chunks(_HEADERS, rows)

    def render(self) -> str:
        """The same as one str (tests, tools); the HTTP server sends the chunks."""
        return b"".join(self.render_chunks()).decode()
