"""The availability maths on hand-made event histories: every case the issue names (overlaps,
outages across the period boundary, maintenance, monitord downtime, parent/child attribution)
plus aggregation, SLOs and incident lists.

The histories here are shared with the other test_report_* files (see HistoryBuilder)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date

import pytest

from monitord.report.availability import (
    GroupFigures,
    HistoryData,
    Level,
    Report,
    compute_report,
)
from monitord.report.period import Period
from monitord.report.settings import MaintenanceWindow, ReportSettings, TargetSelector
from monitord.report.timeline import IntervalSet
from monitord.state.model import EventKind, Placement, ReasonCode, State, StateEvent, new_event_id

H = 3600.0
M = 60.0
PERIOD = Period(date(2025, 1, 6), date(2025, 1, 6), "UTC")  # one day
T0 = PERIOD.start
ALWAYS = IntervalSet([(T0 - 30 * 24 * H, T0 + 30 * 24 * H)])

CORE = Placement(target="prov-core", province="sulbar", kabupaten="provinsi",
                 site="pusat-data", role="dc-network", address="10.76.0.1", name="Router inti")
LINK = Placement(target="mamasa-link", province="sulbar", kabupaten="mamasa",
                 site="diskominfo-mamasa", role="kabupaten-link", address="10.76.3.1",
                 name="Link Mamasa", parent="prov-core")
DESA_A = Placement(target="desa-a", province="sulbar", kabupaten="mamasa", site="desa-a",
                   role="village-ap", address="10.76.3.11", name="Desa A", parent="mamasa-link")
DESA_B = Placement(target="desa-b", province="sulbar", kabupaten="mamasa", site="desa-b",
                   role="village-ap", address="10.76.3.12", name="Desa B", parent="mamasa-link")
SETTINGS = ReportSettings(slo={"dc-network": 99.5, "kabupaten-link": 98.0, "village-ap": 95.0},
                          default_slo=97.0)


class HistoryBuilder:
    """State events written as a story: `at(hours after T0, placement, state)`."""

    def __init__(self) -> None:
        self.events: list[StateEvent] = []
        self._states: dict[str, State] = {}

    def at(self, hours: float, placement: Placement, state: State,
           root: str | None = None) -> HistoryBuilder:
        time_ = T0 + hours * H
        if state is State.DOWN:
            root = placement.target
        code = ReasonCode.PARENT_DOWN if state is State.UNREACHABLE else ReasonCode.PROBES_GOOD
        self.events.append(StateEvent(
            id=new_event_id(time_), time=time_, kind=EventKind.STATE, placement=placement,
            from_state=self._states.get(placement.target, State.UNKNOWN), to_state=state,
            reason=f"{state} for the test", reason_code=code, root_cause=root, flapping=False))
        self._states[placement.target] = state
        return self

    def up(self, hours: float, *placements: Placement) -> HistoryBuilder:
        for placement in placements:
            self.at(hours, placement, State.UP)
        return self

    def data(self, period: Period = PERIOD, watched: IntervalSet = ALWAYS) -> HistoryData:
        """Split like the history source does: last event before the period, then the period's."""
        priors: dict[str, StateEvent] = {}
        for event in self.events:
            if event.time < period.start:
                priors[event.target] = event
        inside = [e for e in self.events if period.start <= e.time < period.end]
        return HistoryData(events=inside, priors=list(priors.values()), watched=watched)


def make_report(history: HistoryBuilder, settings: ReportSettings = SETTINGS,
                watched: IntervalSet = ALWAYS, period: Period = PERIOD,
                configured: Mapping[str, Placement] | None = None,
                now: float | None = None) -> Report:
    return compute_report(history.data(period, watched), period, settings,
                          now=period.end + H if now is None else now, configured=configured)


def figures(report: Report, target: str) -> dict[str, float | int | None]:
    """A target's figures in hours (availability in %)."""
    found = next(f for f in report.targets if f.target == target)
    t = found.totals
    return {"up": t.up / H, "own_down": t.own_down / H, "parent_down": t.parent_down / H,
            "maintenance": t.maintenance / H, "no_data": t.no_data / H,
            "incidents": t.incidents, "availability": t.availability,
            "own_availability": t.own_availability, "caused": found.caused / H,
            "caused_targets": found.caused_targets}


def group(report: Report, level: Level, key: str) -> GroupFigures:
    return next(g for g in report.level(level) if g.key == key)


def links_down_story() -> HistoryBuilder:
    """The kabupaten link fails 10:00-12:00. Desa A was already down itself from 09:00 and is
    unreachable behind the link, then waits one probe for itself (12:00-12:05). Desa B is
    unreachable with it, and is back at 12:05 too."""
    return (HistoryBuilder().up(-48, CORE, LINK, DESA_A, DESA_B)
            .at(9, DESA_A, State.DOWN)
            .at(10, LINK, State.DOWN)
            .at(10, DESA_A, State.UNREACHABLE, root="mamasa-link")
            .at(10, DESA_B, State.UNREACHABLE, root="mamasa-link")
            .up(12, LINK)
            .up(12 + 5 / 60, DESA_A, DESA_B))


# -- one target ---------------------------------------------------------------------------------

def test_one_outage_gives_availability_downtime_mttr_and_mtbf() -> None:
    report = make_report(HistoryBuilder().up(-1, LINK).at(6, LINK, State.DOWN).up(8, LINK))
    link = figures(report, "mamasa-link")
    assert link["up"] == pytest.approx(22)
    assert link["own_down"] == pytest.approx(2)
    assert link["incidents"] == 1
    assert link["availability"] == pytest.approx(100 * 22 / 24)
    found = report.targets[0].totals
    assert found.mttr == pytest.approx(2 * H)
    assert found.mtbf == pytest.approx(22 * H)
    assert report.targets[0].below_slo  # 91.7% < 98%
    [incident] = report.incidents
    assert (incident.start, incident.end, incident.seconds) == (T0 + 6 * H, T0 + 8 * H, 2 * H)


def test_outages_spanning_the_period_boundaries_are_clipped_to_it() -> None:
    report = make_report(HistoryBuilder().up(-10, LINK, DESA_A)
                         .at(-3, LINK, State.DOWN).up(2, LINK)  # began the day before
                         .at(20, DESA_A, State.DOWN).up(30, DESA_A))  # ends the day after
    assert figures(report, "mamasa-link")["own_down"] == pytest.approx(2)
    assert figures(report, "desa-a")["own_down"] == pytest.approx(4)
    before, after = report.incidents
    assert (before.target, before.start, before.end) == ("mamasa-link", T0 - 3 * H, T0 + 2 * H)
    assert before.seconds == pytest.approx(2 * H)
    assert before.first_counted == T0
    assert (after.target, after.start, after.end) == ("desa-a", T0 + 20 * H, None)  # ongoing
    assert after.seconds == pytest.approx(4 * H)


def test_time_before_the_first_event_is_no_data_not_up() -> None:
    report = make_report(HistoryBuilder().up(6, DESA_A).at(12, DESA_A, State.DOWN).up(15, DESA_A))
    desa = figures(report, "desa-a")
    assert desa["no_data"] == pytest.approx(6)
    assert desa["availability"] == pytest.approx(100 * 15 / 18)


def test_monitord_downtime_is_no_data_and_a_down_state_across_it_is_one_incident() -> None:
    history = (HistoryBuilder().up(-1, LINK, DESA_A).at(5, DESA_A, State.DOWN).up(10, DESA_A))
    # monitord ran until 04:00, was stopped until 07:00, and then ran to the end.
    watched = IntervalSet([(T0 - H, T0 + 4 * H), (T0 + 7 * H, T0 + 24 * H)])
    report = make_report(history, watched=watched)
    desa = figures(report, "desa-a")
    assert desa["no_data"] == pytest.approx(3)
    assert desa["own_down"] == pytest.approx(3)  # 05:00-07:00 was not watched
    assert desa["incidents"] == 1
    assert desa["availability"] == pytest.approx(100 * 18 / 21)
    assert figures(report, "mamasa-link")["availability"] == pytest.approx(100)  # never "up"
    assert report.monitord_gaps == ((T0 + 4 * H, T0 + 7 * H),)


def test_the_future_part_of_a_period_is_no_data() -> None:
    report = make_report(HistoryBuilder().up(-1, LINK), watched=IntervalSet([(T0 - H, T0 + 6 * H)]),
                         now=T0 + 6 * H)
    assert figures(report, "mamasa-link")["no_data"] == pytest.approx(18)
    assert report.monitord_gaps == ()  # not running later today is not a gap yet


# -- parents and children -------------------------------------------------------------------------

def test_unreachable_time_is_the_parents_outage_shown_apart_from_own_downtime() -> None:
    report = make_report(links_down_story())
    desa_a, desa_b = figures(report, "desa-a"), figures(report, "desa-b")
    link = figures(report, "mamasa-link")
    assert desa_a["own_down"] == pytest.approx(1)
    assert desa_a["parent_down"] == pytest.approx(2 + 5 / 60)
    assert desa_a["incidents"] == 1
    assert desa_b["own_down"] == 0
    assert desa_b["incidents"] == 0
    assert desa_b["parent_down"] == pytest.approx(2 + 5 / 60)
    # End to end the village was unavailable; judged on its own (SLO) it was not.
    assert desa_b["availability"] == pytest.approx(100 * (24 - 2 - 5 / 60) / 24)
    assert desa_b["own_availability"] == pytest.approx(100)
    assert not next(f for f in report.targets if f.target == "desa-b").below_slo
    # The link carries the blame: its own outage, and what it caused.
    assert link["own_down"] == pytest.approx(2)
    assert link["caused"] == pytest.approx(2 * (2 + 5 / 60))
    assert link["caused_targets"] == 2
    by_target = {i.target: i for i in report.incidents}
    assert by_target["mamasa-link"].affected_targets == 2
    assert by_target["mamasa-link"].caused == pytest.approx(2 * (2 + 5 / 60) * H)
    assert by_target["desa-a"].affected_targets == 0
    [cause] = report.root_causes
    assert (cause.target, cause.incidents, cause.affected_targets) == ("mamasa-link", 1, 2)
    assert cause.own_down == pytest.approx(2 * H)


def test_overlapping_outages_at_two_levels_blame_the_highest_failed_ancestor() -> None:
    history = (HistoryBuilder().up(-1, CORE, LINK, DESA_A)
               .at(10, LINK, State.DOWN)
               .at(10, DESA_A, State.UNREACHABLE, root="mamasa-link")
               .at(11, CORE, State.DOWN)  # the core fails while the link is still down:
               .at(11, LINK, State.UNREACHABLE, root="prov-core")  # everything behind it
               .at(11, DESA_A, State.UNREACHABLE, root="prov-core")  # is the core's now
               .up(13, CORE)
               .at(13, LINK, State.DOWN)  # the link's own fault shows again
               .at(13, DESA_A, State.UNREACHABLE, root="mamasa-link")
               .up(14, LINK).up(14, DESA_A))
    report = make_report(history)
    desa, link, core = (figures(report, t) for t in ("desa-a", "mamasa-link", "prov-core"))
    assert desa["parent_down"] == pytest.approx(4)
    assert next(f for f in report.targets if f.target == "desa-a").parent_down_by_root == \
        pytest.approx({"mamasa-link": 2 * H, "prov-core": 2 * H})
    assert link["own_down"] == pytest.approx(2)
    assert link["parent_down"] == pytest.approx(2)
    assert link["incidents"] == 2  # 10-11 and 13-14: the core's outage came between
    assert core["caused"] == pytest.approx(4)
    assert core["caused_targets"] == 2
    assert link["caused"] == pytest.approx(2)


# -- maintenance --------------------------------------------------------------------------------

def window(start_h: float, end_h: float, **selector: frozenset[str]) -> MaintenanceWindow:
    return MaintenanceWindow(start=T0 + start_h * H, end=T0 + end_h * H,
                             selector=TargetSelector(**selector), reason="ganti radio",
                             source="config")


def test_planned_maintenance_is_excluded_and_covers_the_children_it_cuts_off() -> None:
    settings = ReportSettings(slo=SETTINGS.slo, default_slo=SETTINGS.default_slo,
                              maintenance=(window(9.5, 12.5, targets=frozenset({"mamasa-link"})),))
    report = make_report(links_down_story(), settings=settings)
    link, desa_b = figures(report, "mamasa-link"), figures(report, "desa-b")
    assert link["own_down"] == 0
    assert link["incidents"] == 0
    assert link["maintenance"] == pytest.approx(3)
    assert link["availability"] == pytest.approx(100)
    # Desa B was unreachable only because of the planned work on its link.
    assert desa_b["maintenance"] == pytest.approx(2 + 5 / 60)
    assert desa_b["parent_down"] == 0
    assert desa_b["availability"] == pytest.approx(100)
    [use] = report.maintenance
    assert (use.start, use.end, use.targets) == (T0 + 9.5 * H, T0 + 12.5 * H, 1)


def test_maintenance_inside_an_outage_splits_its_time_not_the_incident() -> None:
    settings = ReportSettings(maintenance=(window(7, 8, kabupaten=frozenset({"mamasa"}),
                                                  roles=frozenset({"kabupaten-link"})),))
    report = make_report(HistoryBuilder().up(-1, LINK, DESA_A).at(6, LINK, State.DOWN)
                         .up(10, LINK), settings=settings)
    link = figures(report, "mamasa-link")
    assert link["own_down"] == pytest.approx(3)
    assert link["maintenance"] == pytest.approx(1)
    assert link["incidents"] == 1
    assert figures(report, "desa-a")["maintenance"] == 0  # a village-ap: not selected
    assert report.maintenance[0].targets == 1


def test_maintenance_outside_the_period_is_not_listed() -> None:
    settings = ReportSettings(maintenance=(window(30, 32, roles=frozenset({"village-ap"})),))
    assert make_report(HistoryBuilder().up(-1, DESA_A), settings=settings).maintenance == ()


# -- configured and removed targets -------------------------------------------------------------

def test_a_configured_target_without_events_is_all_no_data_and_not_below_its_slo() -> None:
    report = make_report(HistoryBuilder().up(-1, LINK),
                         configured={"mamasa-link": LINK, "desa-b": DESA_B})
    desa = next(f for f in report.targets if f.target == "desa-b")
    assert desa.totals.no_data == pytest.approx(24 * H)
    assert desa.totals.availability is None
    assert not desa.below_slo


def test_a_target_removed_from_the_config_has_no_data_after_its_last_event() -> None:
    history = HistoryBuilder().up(-1, LINK).up(2, DESA_A).at(4, DESA_A, State.DOWN)
    report = make_report(history, configured={"mamasa-link": LINK})
    desa = next(f for f in report.targets if f.target == "desa-a")
    assert not desa.configured
    assert desa.totals.up == pytest.approx(2 * H)
    assert desa.totals.no_data == pytest.approx(22 * H)  # not 20 h of "down"


def test_the_configured_placement_wins_over_the_stored_one() -> None:
    moved = replace(DESA_A, site="desa-a-baru")
    report = make_report(HistoryBuilder().up(-1, DESA_A), configured={"desa-a": moved})
    assert [g.site for g in report.level(Level.SITE)] == ["desa-a-baru"]


# -- groups and SLOs ----------------------------------------------------------------------------

def test_groups_are_time_weighted_and_count_targets_below_slo() -> None:
    report = make_report(links_down_story())
    mamasa = group(report, Level.KABUPATEN, "mamasa")
    assert mamasa.targets == 3
    totals = mamasa.totals
    assert totals.up == pytest.approx((22 + 2 * (24 - 2 - 5 / 60) - 1) * H)
    assert totals.availability == pytest.approx(100 * totals.up / (3 * 24 * H))
    # Below: only the link (2 h down: 91.7% < 98%); desa A's own hour leaves it at 95.5%.
    assert mamasa.targets_below_slo == 1
    # The SLO of a mixed group: its targets' own, weighted like its own availability.
    link_w, desa_a_w, desa_b_w = 24 * H, (24 - 2 - 5 / 60) * H, (24 - 2 - 5 / 60) * H
    expected = (98 * link_w + 95 * desa_a_w + 95 * desa_b_w) / (link_w + desa_a_w + desa_b_w)
    assert mamasa.slo == pytest.approx(expected)
    role = group(report, Level.ROLE, "village-ap")
    assert role.slo == pytest.approx(95.0)
    assert role.targets == 2
    [province] = report.level(Level.PROVINCE)
    assert province.targets == 4
    assert province.totals.incidents == 2
    assert [g.key for g in report.below_slo_sites] == ["diskominfo-mamasa"]


def test_slo_per_role_with_a_default_and_exactly_meeting_it_is_not_below() -> None:
    # 95% exactly: 72 minutes down of 24 hours.
    report = make_report(HistoryBuilder().up(-1, DESA_A, CORE)
                         .at(1, DESA_A, State.DOWN).up(1 + 72 / 60, DESA_A))
    desa = next(f for f in report.targets if f.target == "desa-a")
    assert desa.slo == 95.0
    assert desa.totals.own_availability == pytest.approx(95.0)
    assert not desa.below_slo
    other = make_report(HistoryBuilder().up(-1, replace(CORE, role="printer")))
    assert other.targets[0].slo == 97.0  # the default


# -- incident lists ------------------------------------------------------------------------------

def test_incidents_per_day_and_the_longest_first() -> None:
    period = Period(date(2025, 1, 6), date(2025, 1, 8), "UTC")
    history = (HistoryBuilder().up(-30, LINK, DESA_A, DESA_B)
               .at(-2, DESA_B, State.DOWN).up(1, DESA_B)  # carried in: charted on day 1
               .at(3, LINK, State.DOWN).up(3.5, LINK)
               .at(30, DESA_A, State.DOWN).up(35, DESA_A)
               .at(31, DESA_B, State.DOWN).up(32, DESA_B))
    settings = ReportSettings(longest_incidents=2)
    report = make_report(history, settings=settings, period=period)
    assert [count for _, count in report.incidents_per_day] == [2, 2, 0]
    assert [day for day, _ in report.incidents_per_day] == [d.start for d in period.days]
    assert [(i.target, i.seconds / H) for i in report.longest_incidents] == [
        ("desa-a", 5.0), ("desa-b", 1.0)]
    assert len(report.incidents) == 4


def test_a_root_cause_outside_the_report_is_still_listed() -> None:
    history = (HistoryBuilder().up(-1, DESA_A)
               .at(2, DESA_A, State.UNREACHABLE, root="old-link").up(3, DESA_A))
    report = make_report(history)
    [cause] = report.root_causes
    assert (cause.target, cause.placement, cause.incidents) == ("old-link", None, 0)
    assert cause.caused == pytest.approx(H)


def assert_partition(report: Report, period: Period = PERIOD) -> None:
    for f in report.targets:
        t = f.totals
        assert t.measured + t.maintenance + t.no_data == pytest.approx(period.seconds)


@pytest.mark.parametrize("story", [links_down_story, lambda: HistoryBuilder().up(3, LINK)])
def test_every_second_of_the_period_is_counted_once(story: Callable[[], HistoryBuilder]) -> None:
    builder = story()
    watched = IntervalSet([(T0 + H, T0 + 5 * H), (T0 + 6 * H, T0 + 30 * H)])
    assert_partition(make_report(builder, watched=watched))

