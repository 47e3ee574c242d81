"""The province lab itself (monitord.lab): it comes up with monitord seeing every device up and
polled over SNMP; its VSAT villages answer ~600 ms late; cutting a kabupaten link takes that
link down and only its villages with it; it leaves nothing behind, after a failure too; and
`monitord lab` runs, prints its summary and cleans up.

The first two tests build labs of their own, so they run before the module's `province_lab`
(one lab at a time per network namespace: its addresses are routed from there).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from monitord.config import load_inventory
from monitord.lab import faults
from monitord.lab.errors import LabSetupError
from monitord.lab.network import remove_stale_labs, routes_in_use
from monitord.lab.process import free_port, wait_for
from monitord.lab.province import ProvinceLab
from monitord.lab.scrape import Sample, states_of
from monitord.lab.topology import Kind, LabPlan

pytestmark = [pytest.mark.netns, pytest.mark.slow]
pytest_plugins = ["tests.integration.province"]

TINY = LabPlan(kabupaten=1, villages=1, vsat_villages=1, dc_devices=1, icmp_interval=2,
               snmp_interval=5)


def netns_names() -> set[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def link_names() -> set[str]:
    """This (the test's own) namespace's interfaces."""
    done = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines()}


def processes_using(workdir: Path) -> list[str]:
    """Live processes whose command line names the lab's work directory (every agent, broker,
    responder and monitord the lab starts does)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(workdir) in cmdline:
            found.append(f"{proc.info['pid']}: {cmdline}")
    return found


def assert_nothing_left(prefix: str, workdir: Path, links_before: set[str]) -> None:
    assert not [ns for ns in netns_names() if ns.startswith(f"{prefix}-")]
    assert link_names() == links_before
    assert routes_in_use() == []
    assert processes_using(workdir) == []


def test_monitord_lab_command_runs_prints_its_summary_and_cleans_up(tmp_path: Path) -> None:
    links_before = link_names()
    port = free_port()
    workdir = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "monitord", "lab", "--duration", "20", "--every", "4",
         "--listen", f"127.0.0.1:{port}", "--workdir", str(workdir),
         "--kabupaten", "2", "--villages", "2", "--vsat", "1", "--dc", "2"],
        capture_output=True, text=True, timeout=180, check=False)
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert f"monitord is running: http://127.0.0.1:{port}/metrics" in out
    prefix = re.search(r"namespaces \((mdlab\d+x\d+)-\*\)", out)
    assert prefix is not None, out
    frames = out.split("== monitord lab ")[1:]
    assert len(frames) >= 3, out  # a summary every 4 s for 20 s
    last = frames[-1]
    # 2 kabupaten of 2 radio + 1 VSAT villages and their link, the core and 2 DC devices
    assert "11 targets" in last
    for kabupaten in ("provinsi", "majene", "mamuju"):
        assert re.search(rf"^\s+{kabupaten}\s+\d", last, re.MULTILINE), last
    assert "nothing: every target is up" in last, last
    assert "SNMP: 11/11 devices' last poll complete" in last
    assert re.search(r"\d+\.\d probes/s \(icmp", last), last
    assert "unknown -> up  (first_probe)" in last  # the events came over MQTT
    assert "Lab torn down" in out
    assert_nothing_left(prefix.group(1), workdir, links_before)
    # the Prometheus config it wrote is one Prometheus takes
    config = workdir / "prometheus.yml"
    doc = yaml.safe_load(config.read_text())
    assert doc["scrape_configs"][0]["static_configs"][0]["targets"] == [f"127.0.0.1:{port}"]
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                                 text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_lab_leaves_nothing_behind_after_a_failure(tmp_path: Path) -> None:
    links_before = link_names()
    workdir = tmp_path / "failing"
    lab = ProvinceLab(workdir, TINY)
    seen: list[str] = []

    def fail_inside_the_lab() -> None:
        with lab:
            lab.start_monitord()
            assert len(lab.topology.namespaces()) == 4  # core, link, desa, vsat
            assert set(lab.topology.namespaces()) <= netns_names()
            assert lab.topology.noc_dev in link_names()
            seen.extend(processes_using(workdir))
            # snmpsim in each namespace, the VSAT delay responder, mosquitto and monitord
            assert (len(lab.agents), len(lab.echoes)) == (4, 1)
            raise RuntimeError("a test failing inside the lab")

    with pytest.raises(RuntimeError, match="a test failing inside the lab"):
        fail_inside_the_lab()
    assert len(seen) == 4 + 1 + 2, seen
    assert_nothing_left(lab.prefix, workdir, links_before)
    assert lab.monitord.proc.returncode is not None


def test_a_killed_lab_takes_its_processes_along_and_its_network_is_swept_after(
        tmp_path: Path) -> None:
    links_before = link_names()
    workdir, out = tmp_path / "killed", tmp_path / "killed.out"
    with out.open("w") as stdout:
        demo = subprocess.Popen(
            [sys.executable, "-m", "monitord", "lab", "--listen", f"127.0.0.1:{free_port()}",
             "--workdir", str(workdir), "--kabupaten", "1", "--villages", "1", "--vsat", "1",
             "--dc", "1"], stdout=stdout, stderr=subprocess.STDOUT)
    try:
        wait_for("the demo's monitord", lambda: "monitord is running" in out.read_text(),
                 timeout=60, every=0.2)
    finally:
        demo.kill()  # SIGKILL: no teardown runs
        demo.wait(timeout=10)
    prefix = f"mdlab{demo.pid}x1"
    assert {ns for ns in netns_names() if ns.startswith(f"{prefix}-")}  # left behind ...
    assert f"mdl{demo.pid}x1" in link_names()
    # ... but not its processes: each got SIGTERM when the demo died
    wait_for("the killed lab's processes to end", lambda: not processes_using(workdir), timeout=30)
    swept = remove_stale_labs()
    assert f"mdl{demo.pid}x1" in swept
    assert {f"{prefix}-core", f"{prefix}-majene"} <= set(swept)
    assert_nothing_left(prefix, workdir, links_before)


def test_every_device_comes_up_and_is_polled_with_the_parents_of_the_topology(
        province_lab: ProvinceLab) -> None:
    lab = province_lab
    samples = lab.samples()
    assert states_of(samples) == dict.fromkeys(lab.devices, "up")
    assert polled(samples) == set(lab.devices)
    plan = lab.plan
    assert len(lab.devices) == 1 + plan.dc_devices + plan.kabupaten * (
        1 + plan.villages + plan.vsat_villages)
    # Every village's neighbour entry is pinned on its router (the kernel's shared table
    # overflows at a few thousand learnt entries; the soak's 2,000 villages hit it).
    villages = [d for d in lab.devices.values() if d.kind in (Kind.VILLAGE, Kind.VSAT)]
    assert lab.pinned_neighbours == len(villages)
    for device in villages:
        router = lab.links[device.kabupaten].namespace
        neigh = subprocess.run(["ip", "-n", router, "neigh", "show", device.address],
                               capture_output=True, text=True, check=True).stdout
        assert "PERMANENT" in neigh, (device.id, neigh)
    # Parents as the cables run: village -> its kabupaten's link -> the core router.
    checks = load_inventory(str(lab.inventory_path)).by_target()
    core = lab.topology.core_router.id
    for device in lab.devices.values():
        if device.kind is Kind.CORE:
            assert checks[device.id].parent is None
        elif device.kind in (Kind.DATA_CENTER, Kind.LINK):
            assert checks[device.id].parent == core, device.id
        else:
            assert checks[device.id].parent == lab.links[device.kabupaten].device, device.id
        # each address is the lab's, and lives in the device's own namespace
        address = ipaddress.ip_address(device.address)
        assert address in ipaddress.ip_network("198.18.0.0/15")
        shown = subprocess.run(["ip", "-n", device.namespace, "-o", "addr"], capture_output=True,
                               text=True, check=True).stdout
        assert f" {device.address}/" in shown, device.id


def polled(samples: list[Sample]) -> set[str]:
    return {labels["target"] for name, labels, v in samples
            if name == "monitord_snmp_up" and v == 1.0}


def test_vsat_villages_answer_after_the_satellite_delay(province_lab: ProvinceLab) -> None:
    lab = province_lab
    assert lab.echoes, "the VSAT namespaces run the delaying echo responder"
    samples = lab.samples()
    rtt = {labels["target"]: v for name, labels, v in samples
           if name == "monitord_icmp_rtt_last_seconds" and labels.get("stat") == "avg"}
    for device in lab.devices.values():
        if device.kind is Kind.VSAT:
            assert 0.55 <= rtt[device.id] <= 0.7, (device.id, rtt[device.id])
        else:  # kernel replies, a few namespaces away
            assert rtt[device.id] < 0.05, (device.id, rtt[device.id])


def test_a_cut_link_is_down_and_only_its_villages_unreachable(province_lab: ProvinceLab) -> None:
    lab = province_lab
    kabupaten, link = next(iter(lab.links.items()))
    behind = set(lab.topology.behind(kabupaten))
    want = {**dict.fromkeys(lab.devices, "up"), link.device: "down",
            **dict.fromkeys(behind, "unreachable")}
    with faults.link_cut(lab.link(kabupaten)):
        wait_for(f"{link.device} down and its villages unreachable",
                 states_are(lab, want), timeout=30, every=0.5)
        assert lab.root_causes() == dict.fromkeys({link.device, *behind}, link.device)
        # ... and it stays that way, with nothing else touched, for a few probe rounds
        until = time.monotonic() + 3 * lab.plan.icmp_interval
        while time.monotonic() < until:
            assert lab.states() == want
            time.sleep(0.5)
    lab.wait_states(dict.fromkeys(lab.devices, "up"), timeout=30)


def states_are(lab: ProvinceLab, want: dict[str, str]) -> Callable[[], bool]:
    return lambda: lab.states() == want


def test_a_second_lab_in_the_same_namespace_is_refused_clearly(
        province_lab: ProvinceLab, tmp_path: Path) -> None:
    second = ProvinceLab(tmp_path / "second", TINY, mqtt=False)
    with pytest.raises(LabSetupError, match="another province lab running here"):
        second.__enter__()
    assert not [ns for ns in netns_names() if ns.startswith(f"{second.prefix}-")]
    assert province_lab.states() == dict.fromkeys(province_lab.devices, "up")
