"""Per-target state series, rendered at scrape time from the state engine's snapshot.

The state is a state set (kube-state-metrics' convention): one series per possible state,
1 for the current one, so `monitord_target_state{state="down"} == 1` selects what is down and
a series never disappears when a target changes state. The root cause of a target that is not
up is a separate series, so its label changing does not churn the state series.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from monitord.metrics.targets import format_value, label_pairs
from monitord.model import HIERARCHY_LABELS
from monitord.state.model import Placement, State, TargetStatus

_STATES = tuple(State)


class StateSeries:
    """Renders monitord_target_state and friends from `statuses()` (the engine's snapshot)."""

    def __init__(self, statuses: Callable[[], Mapping[str, TargetStatus]]) -> None:
        self._statuses = statuses
        self._labels: dict[Placement, str] = {}  # pre-rendered hierarchy labels per placement

    def _labels_of(self, placement: Placement) -> str:
        labels = self._labels.get(placement)
        if labels is None:
            values = (placement.province, placement.kabupaten, placement.site, placement.role,
                      placement.target, placement.address)
            labels = label_pairs(zip(HIERARCHY_LABELS, values, strict=True))
            if len(self._labels) > 100_000:  # placements of removed targets pile up otherwise
                self._labels.clear()
            self._labels[placement] = labels
        return labels

    def render(self) -> str:
        statuses = list(self._statuses().values())
        rows = [(self._labels_of(s.placement), s) for s in statuses]
        out: list[str] = []
        emit = out.append
        name = "monitord_target_state"
        emit(f"# HELP {name} Current state of the target (1 for its state, 0 for the others): "
             "unknown, up, degraded, down (own probes fail, parent reachable) or unreachable "
             f"(an ancestor is down).\n# TYPE {name} gauge\n")
        for labels, s in rows:
            for state in _STATES:
                emit(f'{name}{{{labels},state="{state.value}"}} {int(s.state is state)}\n')
        name = "monitord_target_root_cause"
        emit(f"# HELP {name} The target whose failure explains this target's state (itself when "
             f"down, the failed ancestor when unreachable); only present while there is one."
             f"\n# TYPE {name} gauge\n")
        for labels, s in rows:
            if s.root_cause is not None:
                emit(f"{name}{{{labels},{label_pairs([('root_cause', s.root_cause)])}}} 1\n")
        name = "monitord_target_flapping"
        emit(f"# HELP {name} Whether the target's state changes too often (1) or not (0)."
             f"\n# TYPE {name} gauge\n")
        for labels, s in rows:
            emit(f"{name}{{{labels}}} {int(s.flapping)}\n")
        name = "monitord_target_state_since_timestamp_seconds"
        emit(f"# HELP {name} When the target entered its current state.\n# TYPE {name} gauge\n")
        for labels, s in rows:
            emit(f"{name}{{{labels}}} {format_value(s.since)}\n")
        return "".join(out)
