"""Three `monitord run` shards on one inventory: each exports only the targets it owns, together
every target exactly once; a village whose kabupaten link belongs to another shard still
becomes UNREACHABLE (not DOWN) when the link fails, because its shard borrows the link.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitord.config import load_inventory
from monitord.shard import Shard, owner, select
from monitord.state.history import HISTORY_FILE, HistoryStore
from monitord.state.model import State, StateEvent
from tests.integration.harness import (
    MonitordProcess,
    Sample,
    by_target,
    free_port,
    value,
    wait_for,
)
from tests.integration.netns import KabupatenLink

pytestmark = [pytest.mark.netns, pytest.mark.slow]

SHARDS = 3
CORE = "core"
LINK = "majene-link"


def pick_villages() -> list[str]:
    """Four village ids, every shard owning at least one, so some sit in another shard than
    their link."""
    chosen: list[str] = []
    for n in range(100):
        target = f"desa-{n}"
        if owner(target, SHARDS) not in {owner(t, SHARDS) for t in chosen}:
            chosen.append(target)
    chosen += [t for t in (f"desa-{n}" for n in range(100, 200)) if t not in chosen][:1]
    return chosen


VILLAGES = pick_villages()


def shard_process(config: Path, port: int, log_path: Path, shard: str) -> MonitordProcess:
    """`monitord run --shard i/N`."""
    return MonitordProcess(config, port, log_path, ["--shard", shard])


@pytest.fixture
def kabupaten() -> Iterator[KabupatenLink]:
    with KabupatenLink(villages=len(VILLAGES)) as link:
        yield link


def write_config(path: Path, link: KabupatenLink, port: int, shard: str) -> Path:
    """core (loopback) -> majene-link (test namespace) -> villages behind it."""
    villages = [{"id": v, "address": a} for v, a in zip(VILLAGES, link.villages, strict=True)]
    doc: dict[str, Any] = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state"),
                   "shard": shard},
        "profiles": {"fast": {
            "interval": "1s", "count": 2, "packet_interval": "100ms", "timeout": "300ms",
            "state": {"down_failures": 2, "down_window": 3, "up_successes": 2,
                      "flap_changes": 100}}},
        "province": {
            "id": "sulbar", "uplink": CORE, "defaults": {"profile": "fast"},
            "kabupaten": [
                {"id": "provinsi", "sites": [{"id": "pusat-data", "devices": [
                    {"id": CORE, "address": "127.0.0.1", "role": "dc-network"}]}]},
                {"id": "majene", "uplink": LINK, "sites": [
                    {"id": "kominfo", "devices": [
                        {"id": LINK, "address": link.address, "role": "kabupaten-link"}]},
                    {"id": "desa", "defaults": {"role": "village-ap"}, "devices": villages},
                ]},
            ],
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def states(samples: list[Sample]) -> dict[str, str]:
    return {labels["target"]: labels["state"] for name, labels, v in samples
            if name == "monitord_target_state" and v == 1}


def stored_events(state_dir: Path) -> list[StateEvent]:
    store = HistoryStore(state_dir / HISTORY_FILE)
    try:
        return store.events()
    finally:
        store.close()


def test_three_shards_cover_every_target_once_and_keep_topology(
        tmp_path: Path, kabupaten: KabupatenLink) -> None:
    targets = {CORE, LINK, *VILLAGES}
    owners = {t: owner(t, SHARDS) for t in targets}
    assert len(set(owners.values())) == SHARDS
    village = next(v for v in VILLAGES if owners[v] != owners[LINK])  # its link is elsewhere
    shards: dict[int, MonitordProcess] = {}
    configs: dict[int, Path] = {}
    try:
        for index in range(1, SHARDS + 1):
            port = free_port()
            # The last shard's file says 1/3: --shard 3/3 on the command line must win.
            in_file = f"{index}/{SHARDS}" if index < SHARDS else f"1/{SHARDS}"
            configs[index] = write_config(tmp_path / f"shard-{index}" / "monitord.yaml",
                                          kabupaten, port, in_file)
            log = tmp_path / f"shard-{index}.log"
            shards[index] = shard_process(configs[index], port, log, f"{index}/{SHARDS}")

        def all_up() -> dict[int, list[Sample]] | None:
            samples = {i: p.samples() for i, p in shards.items()}
            merged = {t: s for ss in samples.values() for t, s in states(ss).items()}
            return samples if merged == dict.fromkeys(targets, "up") else None
        samples = wait_for("every target up across the shards", all_up)

        exported: list[str] = []
        for index, shard_samples in samples.items():
            owned = {t for t in targets if owners[t] == index}
            assert set(by_target(shard_samples, "monitord_probe_success")) == owned
            assert set(states(shard_samples)) == owned
            exported += states(shard_samples)
            assert value(shard_samples, "monitord_shard_info", shard=str(index),
                         shards=str(SHARDS)) == 1
            expected = select(load_inventory(configs[index]).checks, Shard(index, SHARDS))
            assert value(shard_samples, "monitord_targets_borrowed") == len(expected.borrowed)
        assert sorted(exported) == sorted(targets), "every target exported exactly once"

        kabupaten.link_down()
        wait_for(f"the link down on its shard, {village} unreachable on another", lambda: (
            states(shards[owners[LINK]].samples()).get(LINK) == "down"
            and value(s := shards[owners[village]].samples(), "monitord_target_root_cause",
                      target=village, root_cause=LINK) == 1
            and states(s).get(village) == "unreachable"))
        wait_for("every village unreachable", lambda: all(
            states(shards[owners[v]].samples()).get(v) == "unreachable" for v in VILLAGES))
    finally:
        for process in shards.values():
            process.stop()

    events = {i: stored_events(tmp_path / f"shard-{i}" / "state") for i in shards}
    for index, stored in events.items():
        assert {e.target for e in stored} <= {t for t in targets if owners[t] == index}, \
            "a shard stores events of its own targets only"
    downs = [(i, e.target) for i, stored in events.items() for e in stored
             if e.to_state is State.DOWN]
    assert downs == [(owners[LINK], LINK)], "one DOWN, from the link's shard, none for villages"
