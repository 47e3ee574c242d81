"""Report settings: the `report:` config section, maintenance selectors, and the file that
`monitord maintenance add` writes."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from monitord.config.report_schema import ReportSpec, resolve_report
from monitord.report.maintenance import (
    MaintenanceError,
    MaintenanceStore,
    read_windows,
)
from monitord.report.settings import (
    MaintenanceWindow,
    ReportSchedule,
    ReportSettings,
    TargetSelector,
)
from monitord.state.model import Placement

DESA = Placement(target="desa-a", province="sulbar", kabupaten="mamasa", site="desa-a",
                 role="village-ap", address="10.76.3.11")

STATE_DIR = "/var/lib/monitord"
SECTION = """
timezone: Asia/Makassar
default_slo: 96
slo: {dc-server: 99.5, kabupaten-link: 98, village-ap: 95}
maintenance:
  - kabupaten: [mamasa]
    roles: [kabupaten-link]
    start: 2025-03-01 22:00
    end: 2025-03-02 02:00
    reason: penggantian radio
  - targets: [desa-a]
    start: 2025-03-05T08:00:00+07:00   # an offset wins over the zone
    end: 2025-03-05T09:00:00+07:00
    reason: listrik padam terencana
"""


def test_the_config_section_resolves_times_in_its_zone() -> None:
    settings = resolve_report(ReportSpec.model_validate(yaml.safe_load(SECTION)), STATE_DIR)
    assert settings.slo_for("kabupaten-link") == 98.0
    assert settings.slo_for("printer") == 96.0
    assert settings.timezone == "Asia/Makassar"
    link_work, power = settings.maintenance
    assert link_work.start == 1740837600.0  # 2025-03-01 22:00 WITA = 14:00 UTC
    assert link_work.end - link_work.start == 4 * 3600
    assert link_work.selector == TargetSelector(kabupaten=frozenset({"mamasa"}),
                                                roles=frozenset({"kabupaten-link"}))
    assert power.start == 1741136400.0  # 01:00 UTC
    assert (link_work.source, power.reason) == ("config", "listrik padam terencana")


def test_an_empty_section_gives_the_defaults() -> None:
    assert resolve_report(ReportSpec(), STATE_DIR) == ReportSettings()


@pytest.mark.parametrize(("section", "message"), [
    ({"slo": {"village-ap": 101}}, "less than or equal to 100"),
    ({"slo": {"Village AP": 95}}, "should match pattern"),
    ({"timezone": "Asia/Mamuju"}, "unknown time zone"),
    ({"maintenance": [{"start": "2025-03-01 22:00", "end": "2025-03-02 02:00",
                       "reason": "x"}]}, "say which targets it covers"),
    ({"maintenance": [{"sites": ["desa-a"], "start": "2025-03-02 22:00",
                       "end": "2025-03-02 02:00", "reason": "x"}]}, "before it starts"),
    ({"maintenance": [{"sites": ["desa-a"], "start": "2025-03-01", "end": "2025-03-02"}]},
     "reason"),
    ({"slos": {}}, "Extra inputs are not permitted"),
])
def test_bad_sections_are_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReportSpec.model_validate(section)


def test_selectors_match_any_value_of_a_field_and_all_fields_given() -> None:
    assert TargetSelector(kabupaten=frozenset({"mamasa", "majene"})).matches("desa-a", DESA)
    assert TargetSelector(kabupaten=frozenset({"mamasa"}),
                          roles=frozenset({"village-ap"})).matches("desa-a", DESA)
    assert not TargetSelector(kabupaten=frozenset({"mamasa"}),
                              roles=frozenset({"kabupaten-link"})).matches("desa-a", DESA)
    assert TargetSelector(targets=frozenset({"old-link"})).matches("old-link", None)
    assert not TargetSelector(sites=frozenset({"desa-a"})).matches("old-link", None)
    assert TargetSelector(sites=frozenset({"b", "a"}), roles=frozenset({"r"})).describe() == \
        "site=a,b role=r"
    with pytest.raises(ValueError, match="at least one"):
        TargetSelector()


# -- the maintenance file -------------------------------------------------------------------------

def a_window(start: float = 1000.0) -> MaintenanceWindow:
    return MaintenanceWindow(start, start + 3600, TargetSelector(sites=frozenset({"desa-a"})),
                             "ganti radio", source="state")


def test_windows_round_trip_and_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "maintenance.sqlite3"
    store = MaintenanceStore(path)
    first = store.add(a_window(5000.0), now=1.0)
    second = store.add(a_window(1000.0), now=2.0)
    assert store.remove(second.id)
    third = store.add(a_window(2000.0), now=3.0)
    store.close()
    assert (first.id, second.id, third.id) == (1, 2, 3)
    assert [(s.id, s.window.start, s.window.source) for s in read_windows(path)] == [
        (3, 2000.0, "state #3"), (1, 5000.0, "state #1")]
    assert read_windows(path)[0].window.selector == TargetSelector(sites=frozenset({"desa-a"}))
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.parent.stat().st_mode & 0o777 == 0o750
    assert read_windows(tmp_path / "nothing-here.sqlite3") == []


def test_a_file_that_is_not_ours_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.sqlite3"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE windows (x)")
    other.commit()
    other.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(MaintenanceError, match="is not a monitord maintenance file"):
        MaintenanceStore(path)
    with pytest.raises(MaintenanceError, match="is not a monitord maintenance file"):
        read_windows(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.sqlite3"
    MaintenanceStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(MaintenanceError, match="newer monitord"):
        read_windows(path)


def test_the_schedule_writes_to_the_state_directory_unless_told() -> None:
    spec = ReportSpec.model_validate({"schedule": {"cron": "0 6 1 * *",
                                                   "formats": ["html", "csv", "html"]}})
    schedule = resolve_report(spec, STATE_DIR).schedule
    assert schedule is not None
    assert (schedule.directory, schedule.period, schedule.formats, schedule.languages) == (
        "/var/lib/monitord/reports", "month", ("html", "csv"), ("id",))
    elsewhere = ReportSpec.model_validate({"schedule": {"cron": "0 6 * * 1", "period": "week",
                                                        "directory": "/srv/laporan"}})
    assert resolve_report(elsewhere, STATE_DIR).schedule == ReportSchedule(
        cron="0 6 * * 1", period="week", directory="/srv/laporan", formats=("html", "csv"),
        languages=("id",))
