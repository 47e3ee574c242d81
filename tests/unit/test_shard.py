"""Sharding: rendezvous ownership partitions targets, balances them, moves few on growth, and
a shard borrows exactly the ancestors of its targets that it does not own."""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path

import pytest
import yaml

from monitord.cli import main
from monitord.config import ConfigError, load_inventory
from monitord.model import Check, IcmpProfile, SnmpCredentials, SnmpProfile
from monitord.shard import Shard, owner, select

IDS = [f"desa-{i:05d}" for i in range(10_000)]
PROFILE = IcmpProfile("p", interval=30, count=1, packet_interval=1, timeout=1, size=56)


def check(target: str, parent: str | None = None, kind: str = "icmp") -> Check:
    profile: IcmpProfile | SnmpProfile = PROFILE if kind == "icmp" else SnmpProfile(
        "s", SnmpCredentials(version=1), interval=60, timeout=1, retries=0, deadline=10,
        max_repetitions=10, max_oids_per_request=10)
    return Check(target=target, kind=kind, address=ipaddress.ip_address("127.0.0.1"),
                 province="p", kabupaten="k", site="s", role="r", profile=profile, parent=parent)


def test_three_shards_own_every_id_exactly_once_and_evenly() -> None:
    checks = [check(t) for t in IDS]
    owned = [select(checks, Shard(i, 3)).owned for i in (1, 2, 3)]
    seen = Counter(c.target for part in owned for c in part)
    assert set(seen) == set(IDS)
    assert set(seen.values()) == {1}
    for part in owned:
        assert abs(len(part) - len(IDS) / 3) <= 0.05 * len(IDS) / 3


def test_a_fourth_shard_takes_about_a_quarter_and_nothing_else_moves() -> None:
    moved = [t for t in IDS if owner(t, 3) != owner(t, 4)]
    assert 0.20 <= len(moved) / len(IDS) <= 0.30
    assert {owner(t, 4) for t in moved} == {4}


def test_owner_is_stable_and_one_shard_owns_all() -> None:
    assert [owner(t, 5) for t in IDS[:50]] == [owner(t, 5) for t in IDS[:50]]
    assert {owner(t, 1) for t in IDS[:50]} == {1}
    everything = [check("a"), check("b", "a")]
    assert select(everything, Shard()) == select(everything, Shard(1, 1))
    assert select(everything, Shard()).owned == tuple(everything)
    assert select(everything, Shard()).borrowed == ()


def test_borrowed_are_the_ancestors_not_owned() -> None:
    # core -> link-N -> villages: a chain of depth three, many of each
    checks = [check("core")]
    for k in range(20):
        checks.append(check(f"link-{k}", "core"))
        checks += [check(f"v-{k}-{v}", f"link-{k}") for v in range(10)]
    checks += [check("v-0-0", kind="snmp")]  # SNMP checks follow their device
    parents = {c.target: c.parent for c in checks if c.kind == "icmp"}
    for index in (1, 2, 3):
        sharded = select(checks, Shard(index, 3))
        owned = {c.target for c in sharded.owned}
        assert owned == {t for t in parents if owner(t, 3) == index}
        ancestors: set[str] = set()
        for target in owned:
            parent = parents[target]
            while parent is not None:
                ancestors.add(parent)
                parent = parents[parent]
        assert {c.target for c in sharded.borrowed} == ancestors - owned
        assert all(c.kind == "icmp" for c in sharded.borrowed)
        has_snmp = ("snmp", "v-0-0") in {c.key for c in sharded.owned}
        assert has_snmp == (owner("v-0-0", 3) == index)
        assert sharded.probed == sharded.owned + sharded.borrowed


def test_a_parent_cycle_does_not_hang() -> None:
    sharded = [select([check("a", "b"), check("b", "a")], Shard(i, 2)) for i in (1, 2)]
    assert sorted(c.target for s in sharded for c in s.owned) == ["a", "b"]


@pytest.mark.parametrize(("text", "message"), [
    ("0/3", "between 1 and 3"), ("4/3", "between 1 and 3"), ("x", "not a shard"),
    ("1/0", "at least 1"), ("1/", "not a shard"), ("-1/3", "not a shard"), ("", "not a shard")])
def test_bad_shards_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)


def test_parse_and_text() -> None:
    assert Shard.parse(" 2/3 ") == Shard(2, 3)
    assert str(Shard(2, 3)) == "2/3"


def _config(tmp_path: Path, shard: str | None = None) -> Path:
    doc = {"daemon": {"state_dir": str(tmp_path / "state"),
                      **({"shard": shard} if shard else {})},
           "province": {"id": "prov", "kabupaten": [{"id": "kab", "sites": [
               {"id": "site", "defaults": {"role": "village-ap"}, "devices": [
                   {"id": f"desa-{i}", "address": f"127.0.0.{i + 1}"} for i in range(30)]}]}]}}
    path = tmp_path / "monitord.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_daemon_shard_in_the_config(tmp_path: Path) -> None:
    assert load_inventory(_config(tmp_path, "2/3")).shard == Shard(2, 3)
    assert load_inventory(_config(tmp_path)).shard is None
    with pytest.raises(ConfigError, match="between 1 and 3"):
        load_inventory(_config(tmp_path, "4/3"))


def test_targets_lists_only_the_shards_own(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    listed: list[str] = []
    for index in (1, 2, 3):
        assert main(["targets", "-c", str(config), "--shard", f"{index}/3"]) == 0
        rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
        assert rows
        assert all(owner(t, 3) == index for t in rows)
        listed += rows
    assert sorted(listed) == sorted(f"desa-{i}" for i in range(30))
    with pytest.raises(SystemExit):
        main(["targets", "-c", str(config), "--shard", "0/3"])
    assert "between 1 and 3" in capsys.readouterr().err
