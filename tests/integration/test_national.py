"""The national deployment in miniature (exporters/national/README.md): two `monitord run`
shards on one inventory, each scraped by its own Prometheus in agent mode that remote-writes
to one central store with external_labels {province, shard}; beside them one unsharded
monitord (own port, own state dir) probing the same targets, not scraped.

    prov-core (127.0.0.1) -> majene-link (KabupatenLink) -> desa-* (behind the link)

The central store is a single-node VictoriaMetrics when the Debian package is installed
(`apt-get install victoria-metrics`; its query API is Prometheus's, and the cluster version's
vminsert/vmselect speak the same protocols), else a Prometheus with
--web.enable-remote-write-receiver. The link fails for LINK_OUTAGE s. Then every target's
series must have arrived centrally from its owning shard only, and `monitord report --source
prometheus` over the central store must agree with the single instance's `monitord report`
(its event history).

Tolerance. Every probe runs every INTERVAL s with one echo and a TIMEOUT; the state follows a
single probe. Each monitord sees an outage edge at its first probe after it, late by less
than INTERVAL + TIMEOUT, so each instance's own-down length is within INTERVAL + TIMEOUT of the
truth (both edges late alike); a village behind the link is judged again one interval after
the link returns, so its parent-down length is within 2 x INTERVAL + TIMEOUT. The two
instances probe independently: their lengths differ by up to twice that. The Prometheus
source times each edge of the shard's state at the first STEP after the first scrape (every
SCRAPE) that saw it: a length moves by less than STEP + SCRAPE more. Remote write keeps the
agent's scrape timestamps, so the WAN hop adds nothing. Hence OWN_TOLERANCE and
PARENT_TOLERANCE below (plus scheduling slack); incident counts must be equal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from monitord.shard import owner
from tests.integration.harness import (
    MonitordProcess,
    free_port,
    report_json,
    stop_process,
    target_row,
    wait_for,
)
from tests.integration.netns import KabupatenLink
from tests.integration.prometheus_stack import Prometheus

pytestmark = [pytest.mark.netns, pytest.mark.slow]

SHARDS = 2
CORE, LINK = "prov-core", "majene-link"
ZONE = "Asia/Makassar"
INTERVAL, TIMEOUT = 1.0, 0.3
STEP, SCRAPE = 1.0, 1.0  # --prometheus-step, and the agents' scrape interval
SLACK = 0.7  # scheduling on a loaded machine
OWN_TOLERANCE = 2 * (INTERVAL + TIMEOUT) + STEP + SCRAPE + SLACK
PARENT_TOLERANCE = 2 * (2 * INTERVAL + TIMEOUT) + STEP + SCRAPE + SLACK
LINK_OUTAGE = 15.0
VICTORIA_METRICS = "/usr/bin/victoria-metrics"


def pick_villages() -> list[str]:
    """Three village ids: each shard owns one at least, and one sits in another shard than
    the link (it must borrow the link to call the village unreachable)."""
    chosen: list[str] = []
    for target in (f"desa-{n}" for n in range(200)):
        if len(chosen) == 3:
            break
        owners = {owner(t, SHARDS) for t in chosen}
        if owner(target, SHARDS) not in owners or len(owners) == SHARDS:
            chosen.append(target)
    return chosen


VILLAGES = pick_villages()
TARGETS = (CORE, LINK, *VILLAGES)


# --- the central store ---------------------------------------------------------------------

@dataclass(frozen=True)
class CentralStore:
    name: str
    url: str  # the Prometheus query API's base URL
    write_url: str  # where agents remote-write

    def result(self, expr: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}",  # noqa: S310 - loopback
                                    timeout=15) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return list(body["data"]["result"])


def _answers(proc: subprocess.Popen[bytes], url: str, log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"the central store exited with {proc.returncode}:\n"
                             f"{log.read_text(errors='replace')}")
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            return int(resp.status) == 200
    except OSError:
        return False


@contextmanager
def central_store(workdir: Path) -> Iterator[CentralStore]:
    """VictoriaMetrics single-node if installed, else a Prometheus remote-write receiver."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if Path(VICTORIA_METRICS).exists():
        # latencyOffset 0: VictoriaMetrics hides the last 30 s by default (samples still
        # arriving); the test queries right after the outage. No response cache either.
        command = [VICTORIA_METRICS, f"-httpListenAddr=127.0.0.1:{port}",
                   f"-storageDataPath={workdir / 'data'}", "-retentionPeriod=1d",
                   "-search.latencyOffset=0s", "-search.disableCache"]
        store = CentralStore("victoria-metrics", url, f"{url}/api/v1/write")
        health = f"{url}/health"
    else:
        config = workdir / "prometheus.yml"
        config.write_text("global: {}\n")
        command = ["prometheus", f"--config.file={config}",
                   f"--storage.tsdb.path={workdir / 'data'}", "--storage.tsdb.retention.time=1d",
                   f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"]
        store = CentralStore("prometheus", url, f"{url}/api/v1/write")
        health = f"{url}/-/ready"
    log_path = workdir / "store.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_for(f"{store.name} ready", lambda: _answers(proc, health, log_path), timeout=30)
        yield store
    finally:
        stop_process(proc, grace=15)


# --- monitord ------------------------------------------------------------------------------

def write_config(path: Path, port: int, link: KabupatenLink) -> Path:
    villages = [{"id": v, "address": a, "role": "village-ap"}
                for v, a in zip(VILLAGES, link.villages, strict=True)]
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state")},
        "profiles": {"lab": {"interval": f"{INTERVAL:g}s", "count": 1,
                             "timeout": f"{TIMEOUT * 1000:g}ms",
                             "state": {"down_failures": 1, "down_window": 1, "up_successes": 1,
                                       "flap_changes": 100}}},
        "report": {"timezone": ZONE},
        "province": {
            "id": "sulbar", "uplink": CORE, "defaults": {"profile": "lab"},
            "kabupaten": [
                {"id": "provinsi", "sites": [{"id": "pusat-data", "devices": [
                    {"id": CORE, "role": "dc-network", "address": "127.0.0.1"}]}]},
                {"id": "majene", "uplink": LINK, "sites": [
                    {"id": "kominfo-majene", "devices": [
                        {"id": LINK, "role": "kabupaten-link", "address": link.address}]},
                    {"id": "desa", "devices": villages}]},
            ],
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def state_of(process: MonitordProcess, target: str) -> str | None:
    samples = process.samples()
    return next((labels["state"] for name, labels, v in samples
                 if name == "monitord_target_state" and labels.get("target") == target
                 and v == 1), None)


@dataclass
class Run:
    single_config: Path
    store: CentralStore
    day: str
    outage: float  # seconds the link was induced down
    out: Path


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("national")
    with ExitStack() as stack:
        link = stack.enter_context(KabupatenLink(villages=len(VILLAGES)))
        store = stack.enter_context(central_store(tmp / "central"))
        single_port = free_port()
        single_config = write_config(tmp / "single" / "monitord.yaml", single_port, link)
        single = MonitordProcess(single_config, single_port, tmp / "single.log")
        stack.callback(single.stop)
        shards: dict[int, MonitordProcess] = {}
        for index in range(1, SHARDS + 1):
            port = free_port()
            config = write_config(tmp / f"shard-{index}" / "monitord.yaml", port, link)
            shards[index] = MonitordProcess(config, port, tmp / f"shard-{index}.log",
                                            ["--shard", f"{index}/{SHARDS}"])
            stack.callback(shards[index].stop)
            agent = Prometheus(tmp / f"agent-{index}", f"127.0.0.1:{port}",
                               remote_write=store.write_url,
                               external_labels={"province": "sulbar", "shard": str(index)})
            stack.callback(agent.stop)

        def everywhere(state: str, targets: tuple[str, ...]) -> bool:
            return all(state_of(single, t) == state
                       and state_of(shards[owner(t, SHARDS)], t) == state for t in targets)
        wait_for("every target up on the single instance and its shard",
                 lambda: everywhere("up", TARGETS), timeout=60)
        wait_for("every target up in the central store", lambda: len(store.result(
            'monitord_target_state{state="up"} == 1')) == len(TARGETS), timeout=60)
        time.sleep(3 * INTERVAL)

        link.link_down()
        start = time.time()
        wait_for("the link down", lambda: everywhere("down", (LINK,)), every=0.1)
        wait_for("the villages unreachable", lambda: everywhere("unreachable", tuple(VILLAGES)),
                 every=0.1)
        time.sleep(max(0.0, start + LINK_OUTAGE - time.time()))
        link.link_up()
        end = time.time()
        wait_for("every target up again", lambda: everywhere("up", TARGETS), timeout=60)
        time.sleep(3 * SCRAPE + 2)  # the last scrapes reach the central store
        yield Run(single_config, store, datetime.now(ZoneInfo(ZONE)).date().isoformat(),
                  end - start, tmp / "out")


def report(run: Run, *extra: str) -> dict[str, Any]:
    return report_json(run.single_config, run.day, run.day, run.out, *extra)


# --- the tests -----------------------------------------------------------------------------

def test_each_target_arrives_once_from_its_own_shard(national: Run) -> None:
    # last_over_time over the whole run: every series the store ever got, not only live ones.
    ever = national.store.result('last_over_time(monitord_target_info{province="sulbar"}[1h])')
    shards_of: dict[str, list[str]] = {}
    for series in ever:
        shards_of.setdefault(series["metric"]["target"], []).append(series["metric"]["shard"])
    assert shards_of == {t: [str(owner(t, SHARDS))] for t in TARGETS}
    states = national.store.result('last_over_time(monitord_target_state{state="down"}[1h])')
    assert sorted(s["metric"]["target"] for s in states) == sorted(TARGETS)
    info = national.store.result("monitord_shard_info")
    assert sorted((s["metric"]["shard"], s["metric"]["shards"]) for s in info) == [
        (str(i), str(SHARDS)) for i in range(1, SHARDS + 1)]


def test_the_report_over_the_shards_agrees_with_a_single_instance(national: Run) -> None:
    history = report(national)
    sampled = report(national, "--source", "prometheus", "--prometheus-url", national.store.url,
                     "--prometheus-step", f"{STEP:g}",
                     "--prometheus-selector", 'province="sulbar"')
    assert (history["source"], sampled["source"]) == ("history", "prometheus")
    link_down = {name: target_row(doc, LINK)["own_down_minutes"] * 60.0
                 for name, doc in (("history", history), ("sampled", sampled))}
    print(f"\ninduced {national.outage:.1f} s; link own-down {link_down}; "
          f"store {national.store.name}")
    assert link_down["sampled"] == pytest.approx(link_down["history"], abs=OWN_TOLERANCE)
    assert link_down["history"] == pytest.approx(national.outage, abs=INTERVAL + TIMEOUT + SLACK)
    for village in VILLAGES:
        want, got = (target_row(doc, village)["parent_down_minutes"] * 60.0
                     for doc in (history, sampled))
        assert got == pytest.approx(want, abs=PARENT_TOLERANCE), village
        assert want > 0, village
        assert list(target_row(sampled, village)["parent_down_by_root_minutes"]) == [LINK]
        assert target_row(sampled, village)["own_down_minutes"] == 0.0
    for target in TARGETS:
        assert target_row(sampled, target)["incidents"] == target_row(history, target)["incidents"], target
    assert target_row(sampled, LINK)["incidents"] == 1


def test_victoria_metrics_was_the_store_when_installed(national: Run) -> None:
    """Says which store the run used: the requirement prefers a real distributed-store
    product, and VictoriaMetrics comes from Debian's archive here."""
    installed = shutil.which("victoria-metrics") is not None
    assert national.store.name == ("victoria-metrics" if installed else "prometheus")
