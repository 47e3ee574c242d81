"""StateSeries: a target's state lines are rendered once per TargetStatus object and reused by
later scrapes until the engine publishes a new status. The expected text is written out here."""

from __future__ import annotations

from dataclasses import replace

from monitord.metrics.state_series import StateSeries
from monitord.state.model import Placement, ReasonCode, State, TargetStatus

STATES = ("unknown", "up", "degraded", "down", "unreachable")


def status(target: str, state: State, *, root_cause: str | None = None, flapping: bool = False,
           since: float = 1_700_000_000.5) -> TargetStatus:
    placement = Placement(target=target, province="sulbar", kabupaten="mamuju",
                          site='balai "desa"', role="village-ap", address="192.0.2.7")
    return TargetStatus(placement=placement, state=state, since=since, reason="test",
                        reason_code=ReasonCode.PROBES_GOOD, root_cause=root_cause,
                        own_state=state, flapping=flapping)


def labels(target: str) -> str:
    return (f'province="sulbar",kabupaten="mamuju",site="balai \\"desa\\"",role="village-ap",'
            f'target="{target}",address="192.0.2.7"')


def expected(rows: list[tuple[str, str, str | None, int, str]]) -> str:
    """rows: (target, state, root cause, flapping, since as written)"""
    out = ["# HELP monitord_target_state Current state of the target (1 for its state, 0 for the "
           "others): unknown, up, degraded, down (own probes fail, parent reachable) or "
           "unreachable (an ancestor is down).", "# TYPE monitord_target_state gauge"]
    for target, state, _, _, _ in rows:
        out += [f'monitord_target_state{{{labels(target)},state="{s}"}} {int(s == state)}'
                for s in STATES]
    out += ["# HELP monitord_target_root_cause The target whose failure explains this target's "
            "state (itself when down, the failed ancestor when unreachable); only present while "
            "there is one.", "# TYPE monitord_target_root_cause gauge"]
    out += [f'monitord_target_root_cause{{{labels(target)},root_cause="{cause}"}} 1'
            for target, _, cause, _, _ in rows if cause is not None]
    out += ["# HELP monitord_target_flapping Whether the target's state changes too often (1) or "
            "not (0).", "# TYPE monitord_target_flapping gauge"]
    out += [f"monitord_target_flapping{{{labels(target)}}} {flapping}"
            for target, _, _, flapping, _ in rows]
    out += ["# HELP monitord_target_state_since_timestamp_seconds When the target entered its "
            "current state.", "# TYPE monitord_target_state_since_timestamp_seconds gauge"]
    out += [f"monitord_target_state_since_timestamp_seconds{{{labels(target)}}} {since}"
            for target, _, _, _, since in rows]
    return "\n".join(out) + "\n"


def pieces_of(chunks: list[bytes], target: str) -> list[bytes]:
    return [c for c in chunks if f'target="{target}"'.encode() in c]


def test_the_rendered_text_is_the_exposition_of_the_statuses() -> None:
    statuses = {"link": status("link", State.DOWN, root_cause="link"),
                "desa": status("desa", State.UNREACHABLE, root_cause="link", flapping=True,
                               since=1_700_000_060.0)}
    series = StateSeries(lambda: statuses)
    assert series.render() == expected([("link", "down", "link", 0, "1700000000.5"),
                                        ("desa", "unreachable", "link", 1, "1700000060")])


def test_unchanged_statuses_are_not_rendered_again() -> None:
    statuses = {"a": status("a", State.UP), "b": status("b", State.UP)}
    series = StateSeries(lambda: dict(statuses))
    first = series.render_chunks()
    # An equal status (a reload or restore may build new objects) counts as unchanged too.
    statuses["b"] = replace(statuses["b"])
    second = series.render_chunks()
    for target in ("a", "b"):
        old, new = pieces_of(first, target), pieces_of(second, target)
        assert len(old) == len(new) == 3  # state, flapping, since; no root cause
        assert all(x is y for x, y in zip(old, new, strict=True)), target

    statuses["b"] = status("b", State.DOWN, root_cause="b", since=1_700_000_120.0)
    third = series.render_chunks()
    assert all(x is y for x, y in zip(pieces_of(first, "a"), pieces_of(third, "a"), strict=True))
    assert b"".join(third).decode() == expected([("a", "up", None, 0, "1700000000.5"),
                                                 ("b", "down", "b", 0, "1700000120")])


def test_removed_targets_leave_the_output() -> None:
    statuses = {"a": status("a", State.UP), "b": status("b", State.UP)}
    series = StateSeries(lambda: dict(statuses))
    series.render_chunks()
    del statuses["b"]
    assert series.render() == expected([("a", "up", None, 0, "1700000000.5")])
