"""The SPBE report end to end: a real monitord probes a small province (the core on loopback,
a kabupaten link and three villages in test namespaces), outages of known length are induced,
and `monitord report` must give them back.

    prov-core (127.0.0.1) -> majene-link (KabupatenLink) -> desa-a, desa-b, desa-c

What is induced, in order (each measured with time.time() around the fault):
  1. majene-link fails for LINK_OUTAGE s: the link's own downtime; its villages' time is
     parent-down, attributed to the link;
  2. desa-b alone loses its address for VILLAGE_OUTAGE s: its own downtime;
  3. desa-c alone fails inside a maintenance window added with `monitord maintenance add`:
     maintenance, not downtime;
  4. monitord is stopped for MONITORD_GAP s: no data, listed as monitord not running.

Tolerance. Every probe runs every INTERVAL s with one echo and a TIMEOUT, and the state follows
a single probe (down_failures = up_successes = 1; hysteresis moves both edges of an outage by
the same probes, which the unit tests cover). An outage edge is seen by the first probe after it:
each edge is late by less than one interval, a failure also by the echo's timeout (a failed
probe is known when its timeout ends). So an own outage is reported within INTERVAL + TIMEOUT of
its induced length. A village behind the failed link is judged again after the link returns
from a probe started after the link's recovery (so a stale failure is never taken for the
village's own): one more interval at most.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from monitord.report.charts import BAD_COLOUR, GOOD_COLOUR
from tests.integration.harness import (
    MonitordProcess,
    free_port,
    monitord_cli,
    report_json,
    target_row,
    value,
    wait_for,
)
from tests.integration.netns import KabupatenLink, run
from tests.integration.page_view import count_colour, look_at_html, look_at_pdf
from tests.integration.prometheus_stack import Prometheus

ZONE = "Asia/Makassar"
INTERVAL, TIMEOUT = 2.0, 0.3
OWN_TOLERANCE = INTERVAL + TIMEOUT + 0.3  # + scheduling slack on a loaded machine
PARENT_TOLERANCE = 2 * INTERVAL + TIMEOUT + 0.3
LINK_OUTAGE, VILLAGE_OUTAGE, MAINTENANCE_OUTAGE, MONITORD_GAP = 20.0, 12.0, 10.0, 8.0
VILLAGES = ("desa-a", "desa-b", "desa-c")
STEP, SCRAPE = 1.0, 1.0  # --prometheus-step, and the test Prometheus's scrape interval
PROMETHEUS_TOLERANCE = 2 * (STEP + SCRAPE)


@dataclass
class Induced:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Scenario:
    config: Path
    state_dir: Path
    prometheus_url: str
    first_day: str
    last_day: str
    link: Induced
    village: Induced
    maintenance: Induced  # the window, not the outage inside it
    gap_max: float  # SIGTERM sent .. new daemon ready
    gap_min: float  # old daemon exited .. new daemon started
    scheduled_runs: float | None  # monitord_report_runs_total{result="success"} after start
    out: Path


def write_config(path: Path, port: int, link: KabupatenLink) -> Path:
    villages = [{"id": v, "address": a, "role": "village-ap"}
                for v, a in zip(VILLAGES, link.villages, strict=True)]
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state")},
        "profiles": {"lab": {"interval": f"{INTERVAL:g}s", "count": 1,
                             "timeout": f"{TIMEOUT * 1000:g}ms",
                             "state": {"down_failures": 1, "down_window": 1, "up_successes": 1}}},
        "report": {"timezone": ZONE, "slo": {"kabupaten-link": 98, "village-ap": 95},
                   # Yesterday's report is missing at the first start: the daemon writes it.
                   "schedule": {"cron": "0 6 * * *", "period": "day",
                                "formats": ["html", "json"], "languages": ["id"]}},
        "province": {
            "id": "sulbar", "uplink": "prov-core", "defaults": {"profile": "lab"},
            "kabupaten": [
                {"id": "provinsi", "sites": [{"id": "pusat-data", "devices": [
                    {"id": "prov-core", "role": "dc-network", "address": "127.0.0.1"}]}]},
                {"id": "majene", "uplink": "majene-link", "sites": [
                    {"id": "kominfo-majene", "devices": [
                        {"id": "majene-link", "role": "kabupaten-link",
                         "address": link.address}]},
                    {"id": "desa", "devices": villages}]},
            ],
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, ZoneInfo(ZONE)).isoformat(timespec="milliseconds")


def wait_state(daemon: MonitordProcess, target: str, state: str, timeout: float = 30) -> float:
    wait_for(f"{target} {state}", lambda: value(daemon.samples(), "monitord_target_state",
                                                 target=target, state=state) == 1.0,
             timeout=timeout, every=0.1)
    return time.time()


def village_address(link: KabupatenLink, village: str) -> str:
    return link.villages[VILLAGES.index(village)]


def take_address(link: KabupatenLink, village: str, present: bool) -> None:
    run("ip", "-n", link.desa_ns, "addr", "add" if present else "del",
        f"{village_address(link, village)}/24", "dev", "eth0")


def village_outage(daemon: MonitordProcess, link: KabupatenLink, village: str,
                   seconds: float) -> Induced:
    take_address(link, village, present=False)
    start = time.time()
    wait_state(daemon, village, "down")
    time.sleep(max(0.0, start + seconds - time.time()))
    take_address(link, village, present=True)
    end = time.time()
    wait_state(daemon, village, "up")
    return Induced(start, end)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("report-e2e")
    with ExitStack() as stack:
        link = stack.enter_context(KabupatenLink(villages=len(VILLAGES)))
        port = free_port()
        config = write_config(tmp / "monitord.yaml", port, link)
        daemon = MonitordProcess(config, port, tmp / "monitord.log")
        stack.callback(daemon.stop)  # stopping it again later does nothing
        prometheus = Prometheus(tmp / "prometheus", f"127.0.0.1:{port}")
        stack.callback(prometheus.stop)
        for target in ("prov-core", "majene-link", *VILLAGES):
            wait_state(daemon, target, "up")
        scheduled = wait_for("the missing scheduled report written", lambda: value(
            daemon.samples(), "monitord_report_runs_total", result="success") or None)
        first_day = datetime.now(ZoneInfo(ZONE)).date().isoformat()
        time.sleep(3 * INTERVAL)  # some up time before the first outage

        link.link_down()
        link_start = time.time()
        wait_state(daemon, "majene-link", "down")
        for village in VILLAGES:
            wait_state(daemon, village, "unreachable")
        time.sleep(max(0.0, link_start + LINK_OUTAGE - time.time()))
        link.link_up()
        link_end = time.time()
        for target in ("majene-link", *VILLAGES):
            wait_state(daemon, target, "up")

        own_outage = village_outage(daemon, link, "desa-b", VILLAGE_OUTAGE)

        window = Induced(time.time(), time.time() + MAINTENANCE_OUTAGE + 3 * INTERVAL)
        added = monitord_cli("maintenance", "add", "-c", str(config), "--target", "desa-c",
                             "--from", iso(window.start), "--to", iso(window.end),
                             "--reason", "penggantian antena desa-c")
        assert added.returncode == 0, added.stderr
        time.sleep(INTERVAL)
        village_outage(daemon, link, "desa-c", MAINTENANCE_OUTAGE)
        time.sleep(max(0.0, window.end + INTERVAL - time.time()))

        stop_sent = time.time()
        assert daemon.stop() == 0, daemon.log()
        stopped = time.time()
        time.sleep(MONITORD_GAP)
        restarted = time.time()
        daemon = MonitordProcess(config, port, tmp / "monitord-2.log")
        stack.callback(daemon.stop)
        ready = time.time()
        time.sleep(3 * INTERVAL)  # Prometheus scrapes the new daemon a few times

        last_day = datetime.now(ZoneInfo(ZONE)).date().isoformat()
        yield Scenario(config=config, state_dir=tmp / "state", prometheus_url=prometheus.url,
                       first_day=first_day, last_day=last_day,
                       link=Induced(link_start, link_end), village=own_outage, maintenance=window,
                       gap_max=ready - stop_sent, gap_min=restarted - stopped,
                       scheduled_runs=scheduled, out=tmp / "out")


def report(scenario: Scenario, *extra: str) -> dict[str, Any]:
    return report_json(scenario.config, scenario.first_day, scenario.last_day, scenario.out,
                       *extra)


def seconds(minutes: float) -> float:
    return minutes * 60.0


def test_induced_outages_come_back_within_one_probe_interval(scenario: Scenario) -> None:
    document = report(scenario)
    link = target_row(document, "majene-link")
    assert seconds(link["own_down_minutes"]) == pytest.approx(scenario.link.seconds,
                                                               abs=OWN_TOLERANCE)
    assert link["incidents"] == 1
    for village in VILLAGES:
        figures = target_row(document, village)
        assert seconds(figures["parent_down_minutes"]) == pytest.approx(
            scenario.link.seconds, abs=PARENT_TOLERANCE), village
        assert list(figures["parent_down_by_root_minutes"]) == ["majene-link"]
    desa_b = target_row(document, "desa-b")
    assert seconds(desa_b["own_down_minutes"]) == pytest.approx(scenario.village.seconds,
                                                                 abs=OWN_TOLERANCE)
    assert desa_b["incidents"] == 1
    # The link's outage is the link's, not its villages': they keep their own availability.
    assert target_row(document, "desa-a")["own_down_minutes"] == 0.0
    assert target_row(document, "desa-a")["own_availability_percent"] == 100.0
    assert seconds(link["caused_down_minutes"]) == pytest.approx(
        3 * scenario.link.seconds, abs=3 * PARENT_TOLERANCE)


def test_planned_work_is_maintenance_not_downtime(scenario: Scenario) -> None:
    document = report(scenario)
    desa_c = target_row(document, "desa-c")
    assert desa_c["own_down_minutes"] == 0.0
    assert desa_c["incidents"] == 0
    assert seconds(desa_c["maintenance_minutes"]) == pytest.approx(
        scenario.maintenance.seconds, abs=0.1)
    [window] = document["maintenance"]
    assert (window["targets"], window["reason"]) == (["desa-c"], "penggantian antena desa-c")


def test_time_monitord_was_stopped_is_no_data(scenario: Scenario) -> None:
    document = report(scenario)
    gaps = [seconds(gap["minutes"]) for gap in document["monitord_not_running"]]
    # The first gap runs from midnight to the first start; the last is the induced stop.
    assert scenario.gap_min - 0.1 <= gaps[-1] <= scenario.gap_max + 0.1, gaps
    for target in ("prov-core", "majene-link", *VILLAGES):
        assert seconds(target_row(document, target)["no_data_minutes"]) >= scenario.gap_min


def test_prometheus_gives_the_same_figures_within_its_sampling(scenario: Scenario) -> None:
    """--source prometheus times every change at the first step (STEP) at or after the first
    scrape (every SCRAPE) that saw it: each edge within STEP + SCRAPE, both edges of one
    outage alike, so a single outage's length agrees within PROMETHEUS_TOLERANCE."""
    history = report(scenario)
    sampled = report(scenario, "--source", "prometheus", "--prometheus-url",
                     scenario.prometheus_url, "--prometheus-step", f"{STEP:g}")
    assert (history["source"], sampled["source"]) == ("history", "prometheus")
    for target, kind in (("majene-link", "own_down_minutes"), ("desa-b", "own_down_minutes"),
                         ("desa-a", "parent_down_minutes"), ("desa-c", "maintenance_minutes")):
        assert seconds(target_row(sampled, target)[kind]) == pytest.approx(
            seconds(target_row(history, target)[kind]), abs=PROMETHEUS_TOLERANCE), (target, kind)
    for target in ("prov-core", "majene-link", *VILLAGES):
        assert target_row(sampled, target)["incidents"] == target_row(history, target)["incidents"], target
    assert list(target_row(sampled, "desa-a")["parent_down_by_root_minutes"]) == ["majene-link"]
    assert seconds(sampled["monitord_not_running"][-1]["minutes"]) == pytest.approx(
        seconds(history["monitord_not_running"][-1]["minutes"]), abs=PROMETHEUS_TOLERANCE)


def test_the_daemon_wrote_the_missing_scheduled_report_at_start(scenario: Scenario) -> None:
    assert scenario.scheduled_runs == 1.0
    written = sorted(p.name for p in (scenario.state_dir / "reports").iterdir())
    assert len(written) == 2
    assert written[0].endswith(".id.html") or written[1].endswith(".id.html")
    [json_file] = [name for name in written if name.endswith(".json")]
    document = json.loads((scenario.state_dir / "reports" / json_file).read_text())
    assert document["period"]["first_day"] == document["period"]["last_day"] < scenario.first_day


def test_the_html_and_pdf_show_the_charts(scenario: Scenario) -> None:
    html, pdf = scenario.out / "laporan.html", scenario.out / "laporan.pdf"
    scenario.out.mkdir(exist_ok=True)
    for path in (html, pdf):
        done = monitord_cli("report", "-c", str(scenario.config), "--from", scenario.first_day,
                            "--to", scenario.last_day, "--lang", "id", "-o", str(path))
        assert done.returncode == 0, done.stderr
    view = look_at_html(html, scenario.out / "png", width=1280)
    print(f"\n{view.png}")
    assert set(view.charts) >= {"availability-kabupaten", "incidents-per-day"}
    kabupaten = view.charts["availability-kabupaten"]
    # majene (the failed link and its villages) is below its target; provinsi is not.
    assert count_colour(kabupaten.png, BAD_COLOUR) > 100
    assert count_colour(kabupaten.png, GOOD_COLOUR) > 100
    assert count_colour(view.charts["incidents-per-day"].png, BAD_COLOUR) > 100
    pages = look_at_pdf(pdf.read_bytes(), scenario.out / "png", "laporan")
    print("\n".join(str(page.png) for page in pages))
    text = " ".join(page.text for page in pages)
    assert "Laporan Ketersediaan Jaringan SPBE" in text
    assert "majene-link" in text
    assert count_colour(pages[0].png, BAD_COLOUR) > 100
    assert count_colour(pages[0].png, GOOD_COLOUR) > 100
