"""The offline subcommands: check-config and targets (no network needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitord.cli import EXIT_CONFIG, EXIT_OK, main
from monitord.config import load_inventory
from monitord.state.history import HISTORY_FILE, HistoryStore
from monitord.state.model import Placement, ReasonCode, State, TargetStatus

ROOT = Path(__file__).resolve().parents[2]
SULBAR = str(ROOT / "config" / "sulbar.yaml")


@pytest.fixture(autouse=True)
def _mqtt_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """config/sulbar.yaml reads its broker password from the environment."""
    monkeypatch.setenv("MONITORD_MQTT_PASSWORD", "contoh-rahasia")


def test_check_config_summarises_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", SULBAR]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{SULBAR}: OK" in out
    assert "in 7 kabupaten" in out
    assert "village-vsat" in out


def test_check_config_reports_a_bad_file(capsys: pytest.CaptureFixture[str]) -> None:
    bad = ROOT / "tests" / "data" / "config" / "invalid-bad-ipv4.yaml"
    assert main(["check-config", "-c", str(bad)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"monitord: configuration error: {bad}: line ")
    assert "is not an IPv4 or IPv6 address" in err


def test_missing_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "-c", str(tmp_path / "nope.yaml")]) == EXIT_CONFIG
    assert "cannot read file: No such file or directory" in capsys.readouterr().err


def test_targets_table_lists_hierarchy_and_parent(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "-c", SULBAR]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TARGET", "KIND", "STATE", "SINCE", "ROOT-CAUSE", "ADDRESS", "ROLE",
                                "KABUPATEN", "SITE", "PARENT", "PROFILE", "LABELS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["majene-link"][2:5] == ["-", "-", "-"]  # no daemon has stored a state
    assert rows["majene-link"][6] == "kabupaten-link"
    assert rows["majene-link"][9] == "prov-core-rtr-01"


def test_targets_json_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "-c", SULBAR, "--json"]) == EXIT_OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_id = {r["target"]: r for r in records}
    assert len(by_id) == len(records) > 50
    villages = [r for r in records if r["role"] in ("village-ap", "village-vsat")]
    assert villages
    for village in villages:
        assert village["parent"] == f"{village['kabupaten']}-link"
        assert by_id[village["parent"]]["role"] == "kabupaten-link"


def test_targets_show_the_states_the_daemon_stored(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "m.yaml"
    config.write_text(f"""
daemon: {{state_dir: {tmp_path / "state"}}}
province:
  id: p
  kabupaten:
    - id: k
      uplink: link
      sites:
        - id: s
          defaults: {{role: village-ap}}
          devices:
            - {{id: link, address: 127.0.0.1, role: kabupaten-link}}
            - {{id: desa, address: 127.0.0.2}}
""")
    checks = {c.target: c for c in load_inventory(config).checks}
    store = HistoryStore(tmp_path / "state" / HISTORY_FILE)
    store.append([], [
        TargetStatus(Placement.of(checks["link"]), State.DOWN, 1_700_000_000.0, "3 of 5 failed",
                     ReasonCode.PROBES_FAILED, "link", State.DOWN),
        TargetStatus(Placement.of(checks["desa"]), State.UNREACHABLE, 1_700_000_010.0,
                     "parent link is down", ReasonCode.PARENT_DOWN, "link", State.DOWN),
    ], outbox=False)
    store.close()

    assert main(["targets", "-c", str(config)]) == EXIT_OK
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert (rows["link"][2], rows["link"][4]) == ("DOWN", "link")
    assert (rows["desa"][2], rows["desa"][4]) == ("UNREACHABLE", "link")

    assert main(["targets", "-c", str(config), "--json"]) == EXIT_OK
    records = {r["target"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records["desa"]["state"] == {
        "state": "unreachable", "since": 1_700_000_010.0, "reason": "parent link is down",
        "reason_code": "parent_down", "root_cause": "link", "flapping": False}
