"""monitord polling Debian's real net-snmp agent (snmpd 5.9): v2c values checked against
net-snmp's own tools, every SNMPv3 security level, wrong credentials, an agent restart seen as
a reboot (through a real Prometheus), and a walk cut off half way.

Each test starts its own snmpd (tests/integration/snmpd_agent.py) on loopback addresses or
inside a TestHost namespace, and stops it by PID.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import DaemonFactory
from tests.integration.harness import MonitordProcess, Sample, value, wait_for
from tests.integration.netns import TestHost, run
from tests.integration.prometheus_stack import Prometheus, prometheus
from tests.integration.snmpd_agent import SYS_UPTIME, Snmpd, V3User, snmpbulkwalk, snmpget

SYS_DESCR, SYS_OBJECT_ID, SYS_NAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0"
IF_TABLE, IF_X_TABLE = "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"
IF_INDEX, IF_DESCR = f"{IF_TABLE}.1", f"{IF_TABLE}.2"
IF_NAME, IF_ALIAS = f"{IF_X_TABLE}.1", f"{IF_X_TABLE}.18"
V2C = ["-v2c", "-c", "public"]

# monitord's if_mib counters and the column snmpd serves each from: net-snmp has the 64-bit
# (HC) columns for every interface, so they are what monitord must report.
IF_COUNTERS = {
    "monitord_if_in_octets_total": f"{IF_X_TABLE}.6",
    "monitord_if_out_octets_total": f"{IF_X_TABLE}.10",
    "monitord_if_in_unicast_packets_total": f"{IF_X_TABLE}.7",
    "monitord_if_out_unicast_packets_total": f"{IF_X_TABLE}.11",
    "monitord_if_in_multicast_packets_total": f"{IF_X_TABLE}.8",
    "monitord_if_out_multicast_packets_total": f"{IF_X_TABLE}.12",
    "monitord_if_in_broadcast_packets_total": f"{IF_X_TABLE}.9",
    "monitord_if_out_broadcast_packets_total": f"{IF_X_TABLE}.13",
    "monitord_if_in_errors_total": f"{IF_TABLE}.14",
    "monitord_if_out_errors_total": f"{IF_TABLE}.20",
    "monitord_if_in_discards_total": f"{IF_TABLE}.13",
    "monitord_if_out_discards_total": f"{IF_TABLE}.19",
}
IF_GAUGES = {"monitord_if_oper_status": f"{IF_TABLE}.8", "monitord_if_admin_status": f"{IF_TABLE}.7"}
IF_SPEED, IF_HIGH_SPEED = f"{IF_TABLE}.5", f"{IF_X_TABLE}.15"


# --- config and /metrics helpers ---------------------------------------------------------

def snmp_profile(**settings: Any) -> dict[str, Any]:
    """A fast profile: polls every second, a lost request costs 2 x 300 ms."""
    return {"interval": "1s", "timeout": "300ms", "retries": 1, **settings}


def write_snmp_config(path: Path, port: int, profiles: dict[str, dict[str, Any]],
                      devices: list[dict[str, Any]]) -> Path:
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state")},
        "snmp": {"profiles": profiles},
        "province": {"id": "testprov", "defaults": {"role": "dc-server"},
                     "kabupaten": [{"id": "kab", "sites": [{"id": "site", "devices": devices}]}]},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def of(samples: list[Sample], target: str, prefix: str = "") -> list[Sample]:
    return [s for s in samples if s[1].get("target") == target and s[0].startswith(prefix)]


def if_rows(samples: list[Sample], target: str) -> dict[str, dict[str, Any]]:
    """{if_index: {"labels": {...}, metric name: value}} of one device's monitord_if_* samples."""
    rows: dict[str, dict[str, Any]] = {}
    for name, labels, v in of(samples, target, "monitord_if_"):
        row = rows.setdefault(labels["if_index"], {"labels": {
            k: labels[k] for k in ("if_name", "if_descr", "if_alias")}})
        row[name] = v
    return rows


def counter(samples: list[Sample], name: str, target: str, **labels: str) -> float:
    """A device counter, 0 before its first increment (errors_total has no sample until then)."""
    return value(samples, name, target=target, **labels) or 0.0


def errors(samples: list[Sample], target: str) -> dict[str, float]:
    """monitord_snmp_errors_total of one device, by reason."""
    return {labels["reason"]: v for _, labels, v in of(samples, target, "monitord_snmp_errors_total")}


def polls(d: MonitordProcess, target: str) -> float:
    return counter(d.samples(), "monitord_snmp_polls_total", target)


def fresh_samples(d: MonitordProcess, targets: list[str]) -> list[Sample]:
    """Samples from polls that all started after this call (so after anything read before it).

    Poll n+1 of a device may already be under way now; poll n+2 starts after it ends. Polls
    of one device never overlap (the deadline is at most the interval)."""
    start = {t: polls(d, t) for t in targets}

    def done() -> list[Sample] | None:
        samples = d.samples()
        ok = all(counter(samples, "monitord_snmp_polls_total", t) >= start[t] + 2 for t in targets)
        return samples if ok else None

    return wait_for(f"two more polls of {targets}", done, timeout=20)


def snmp_up(d: MonitordProcess, target: str, up: float) -> bool:
    return value(d.samples(), "monitord_snmp_up", target=target) == up


# --- 1. v2c: monitord reports what net-snmp's tools read -----------------------------------

def test_v2c_if_mib_matches_net_snmp_tools(tmp_path: Path, port: int, daemons: DaemonFactory) -> None:
    """snmpd in a TestHost namespace has two interfaces: lo (idle: the polls arrive on eth0)
    and eth0, a veth at 10 Gb/s, so its ifSpeed is saturated and monitord must fall back to
    ifHighSpeed. Labels, statuses and speeds must equal what snmpbulkwalk reads; counters keep
    moving (the polls themselves are eth0 traffic), so monitord's value must lie between two
    walks taken before and after the polls it reports."""
    with TestHost() as host, Snmpd(tmp_path / "snmpd", [host.address], 161, netns=host.name):
        agent = f"{host.address}:161"
        config = write_snmp_config(tmp_path / "m.yaml", port,
                                   {"v2": snmp_profile(version="2c", community="public")},
                                   [{"id": "snmpd", "address": host.address, "snmp": "v2"}])
        d = daemons.start(config, port)
        wait_for("snmpd polled", lambda: snmp_up(d, "snmpd", 1.0))
        # The kernel reports a new veth's carrier up to a second late (linkwatch) and snmpd
        # caches its ifTable for a few seconds: let the statuses settle before comparing.
        wait_for("the agent reports every interface up", lambda: set(
            snmpbulkwalk(agent, V2C, IF_GAUGES["monitord_if_oper_status"]).values()) == {"1"})

        before = {**snmpbulkwalk(agent, V2C, IF_TABLE), **snmpbulkwalk(agent, V2C, IF_X_TABLE),
                  **snmpget(agent, V2C, SYS_UPTIME)}
        samples = fresh_samples(d, ["snmpd"])
        after = {**snmpbulkwalk(agent, V2C, IF_TABLE), **snmpbulkwalk(agent, V2C, IF_X_TABLE),
                 **snmpget(agent, V2C, SYS_UPTIME, SYS_NAME, SYS_DESCR, SYS_OBJECT_ID)}

    rows = if_rows(samples, "snmpd")
    indexes = sorted(oid.rsplit(".", 1)[1] for oid in after if oid.startswith(IF_INDEX + "."))
    names = {after[f"{IF_NAME}.{i}"] for i in indexes}
    assert names == {"lo", "eth0"}, after
    assert sorted(rows) == indexes
    for i in indexes:
        row = rows[i]
        assert row["labels"] == {"if_name": after[f"{IF_NAME}.{i}"], "if_descr": after[f"{IF_DESCR}.{i}"],
                                 "if_alias": after[f"{IF_ALIAS}.{i}"]}
        for metric, column in IF_GAUGES.items():
            assert before[f"{column}.{i}"] == after[f"{column}.{i}"]  # stable during the test
            assert row[metric] == int(after[f"{column}.{i}"]), (metric, i)
        for metric, column in IF_COUNTERS.items():
            low, high = int(before[f"{column}.{i}"]), int(after[f"{column}.{i}"])
            assert low <= row[metric] <= high, (metric, i, low, row[metric], high)

    by_name = {row["labels"]["if_name"]: (i, row) for i, row in rows.items()}
    lo_index, lo = by_name["lo"]
    assert lo["monitord_if_speed_bps"] == int(after[f"{IF_SPEED}.{lo_index}"]) == 10_000_000
    eth0_index, eth0 = by_name["eth0"]
    assert after[f"{IF_SPEED}.{eth0_index}"] == "4294967295"  # saturated: 10 Gb/s
    assert eth0["monitord_if_speed_bps"] == int(after[f"{IF_HIGH_SPEED}.{eth0_index}"]) * 10**6 == 10**10
    assert eth0["monitord_if_in_octets_total"] > 0  # real traffic: the polls

    info = [labels for name, labels, _ in of(samples, "snmpd", "monitord_device_info")]
    assert len(info) == 1
    assert (info[0]["sys_name"], info[0]["sys_descr"], info[0]["sys_object_id"]) == (
        "snmpd-under-test", after[SYS_DESCR], after[SYS_OBJECT_ID].lstrip("."))
    uptime = value(samples, "monitord_device_uptime_seconds", target="snmpd")
    assert uptime is not None
    assert int(before[SYS_UPTIME]) / 100 <= uptime <= int(after[SYS_UPTIME]) / 100


# --- 2. v3: every security level and protocol net-snmp offers ----------------------------

# (device and profile name, net-snmp user, monitord profile settings). Every user has a name of
# its own: in monitord's one pysnmp engine, two profiles with the same user name but different
# keys overwrite each other's user entry while requests are in flight (a monitord bug; until it
# is fixed, sharing a name here would make this test flaky rather than show the levels).
V3_CASES: list[tuple[str, V3User, dict[str, Any]]] = [
    ("noauth", V3User("u-noauth"), {}),
    ("sha", V3User("u-sha", "SHA", "sha-auth-secret-1"),
     {"auth_protocol": "SHA", "auth_password": {"env": "TEST_SNMP_SHA_AUTH"}}),
    ("sha-aes", V3User("u-sha-aes", "SHA", "sha-aes-auth-secret-2", "AES", "sha-aes-priv-secret-3"),
     {"auth_protocol": "SHA", "auth_password": {"env": "TEST_SNMP_SHA_AES_AUTH"},
      "priv_protocol": "AES", "priv_password": {"file": "sha-aes.priv"}}),
    ("sha256-aes256", V3User("u-sha256-aes256", "SHA-256", "sha256-auth-secret-4", "AES-256",
                             "aes256-priv-secret-5"),
     {"auth_protocol": "SHA256", "auth_password": {"file": "sha256.auth"},
      "priv_protocol": "AES256", "priv_password": {"env": "TEST_SNMP_AES256_PRIV"}}),
    # SHA's 20-byte key is shorter than AES-256's: only here does the key extension matter.
    # net-snmp extends it the Blumenthal way, which is monitord's "AES256".
    ("sha-aes256", V3User("u-sha-aes256", "SHA", "sha-aes256-auth-secret-6", "AES-256",
                          "sha-aes256-priv-secret-7"),
     {"auth_protocol": "SHA", "auth_password": {"env": "TEST_SNMP_SHA_AES256_AUTH"},
      "priv_protocol": "AES256", "priv_password": {"file": "sha-aes256.priv"}}),
    ("sha512-aes", V3User("u-sha512-aes", "SHA-512", "sha512-auth-secret-8", "AES",
                          "sha512-priv-secret-9"),
     {"auth_protocol": "SHA512", "auth_password": {"env": "TEST_SNMP_SHA512_AUTH"},
      "priv_protocol": "AES", "priv_password": {"file": "sha512.priv"}}),
    # Debian's net-snmp 5.9.3 is built with DES (createUser accepts it and snmpget -x DES works).
    ("md5-des", V3User("u-md5-des", "MD5", "md5-auth-secret-10", "DES", "des-priv-secret-11"),
     {"auth_protocol": "MD5", "auth_password": {"env": "TEST_SNMP_MD5_AUTH"},
      "priv_protocol": "DES", "priv_password": {"file": "des.priv"}}),
]


def v3_profile(user: V3User, secrets: dict[str, Any], secret_dir: Path,
               env: dict[str, str], values: dict[str, str]) -> dict[str, Any]:
    """The monitord profile of `user`: each password goes where `secrets` says (env or file),
    with the value `values` gives (normally the user's own)."""
    # 2 s rather than 1 s between polls: a v3 poll is discovery + request, and a request the
    # agent drops costs 2 x 300 ms; on a loaded machine a 1 s deadline sometimes cut that
    # timeout short (reason "deadline" instead of "timeout").
    profile: dict[str, Any] = snmp_profile(version=3, port=1161, username=user.name,
                                           interval="2s")
    for key in ("auth_protocol", "priv_protocol"):
        if key in secrets:
            profile[key] = secrets[key]
    for key in ("auth_password", "priv_password"):
        if key not in secrets:
            continue
        where = secrets[key]
        if "env" in where:
            env[where["env"]] = values[key]
            profile[key] = where
        else:
            path = secret_dir / where["file"]
            path.write_text(values[key] + "\n")
            profile[key] = {"file": str(path)}
    return profile


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Secrets in the environment the daemon (a child process) inherits, for this test only."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def assert_secrets_hidden(secrets: list[str], config: Path, d: MonitordProcess) -> None:
    """No secret in the daemon's log, its /metrics or `monitord check-config` output."""
    check = subprocess.run([sys.executable, "-m", "monitord", "check-config", "--config", str(config)],
                           capture_output=True, text=True, check=False, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "authPriv" in check.stdout  # it did describe the v3 profiles
    places = {"daemon log": d.log(), "/metrics": d.metrics_text(),
              "check-config": check.stdout + check.stderr}
    leaks = [(where, s) for where, text in places.items() for s in secrets if s in text]
    assert leaks == []


def test_v3_every_security_level(tmp_path: Path, port: int, daemons: DaemonFactory) -> None:
    """One daemon, seven devices, one per security level and protocol pair; passwords from the
    environment and from files. All must poll completely, with the agent's sysUpTime and
    ifTable. snmpd answers on one 127.0.0.N address per device (responses must come from the
    polled address).

    Errors are judged from the second poll on: the first v3 polls after start also pay for
    importing pysnmp, building its engine and localizing each user's keys, all on the event
    loop, which for seven devices at once can overrun this profile's 1 s deadline."""
    addresses = {name: f"127.0.4.{i}" for i, (name, _, _) in enumerate(V3_CASES, start=1)}
    users = [user for _, user, _ in V3_CASES]
    env: dict[str, str] = {}
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    profiles = {name: v3_profile(user, secrets, secret_dir, env,
                                 {"auth_password": user.auth_password or "",
                                  "priv_password": user.priv_password or ""})
                for name, user, secrets in V3_CASES}
    devices = [{"id": name, "address": addresses[name], "snmp": name} for name in addresses]
    config = write_snmp_config(tmp_path / "m.yaml", port, profiles, devices)
    with Snmpd(tmp_path / "snmpd", list(addresses.values()), 1161, users=users), environment(env):
        # net-snmp's own client agrees that every user works, at its level.
        for name, user, _ in V3_CASES:
            assert SYS_UPTIME in snmpget(f"{addresses[name]}:1161", user.cli_args(), SYS_UPTIME)
        d = daemons.start(config, port)
        wait_for("every v3 device polled completely",
                 lambda: all(snmp_up(d, name, 1.0) for name in addresses))
        first = snmpget(f"{addresses['noauth']}:1161", V2C, SYS_UPTIME, f"{IF_X_TABLE}.6.1")
        warm = d.samples()
        samples = fresh_samples(d, list(addresses))
        last = snmpget(f"{addresses['noauth']}:1161", V2C, SYS_UPTIME, f"{IF_X_TABLE}.6.1")
        assert_secrets_hidden([s for u in users for s in (u.auth_password, u.priv_password) if s],
                              config, d)

    levels = {labels["target"]: labels["security_level"] for n, labels, _ in samples
              if n == "monitord_snmp_target_info"}
    assert levels == {"noauth": "noAuthNoPriv", "sha": "authNoPriv", **{
        name: "authPriv" for name in addresses if name not in ("noauth", "sha")}}
    for name in addresses:
        assert value(samples, "monitord_snmp_up", target=name) == 1.0, name
        assert errors(samples, name) == errors(warm, name), name
        uptime = value(samples, "monitord_device_uptime_seconds", target=name)
        assert uptime is not None
        assert int(first[SYS_UPTIME]) / 100 <= uptime <= int(last[SYS_UPTIME]) / 100, name
        rows = if_rows(samples, name)
        assert {i: r["labels"]["if_name"] for i, r in rows.items()} == {"1": "lo"}, name
        octets = rows["1"]["monitord_if_in_octets_total"]
        assert int(first[f"{IF_X_TABLE}.6.1"]) <= octets <= int(last[f"{IF_X_TABLE}.6.1"]), name


# --- 3. wrong credentials ----------------------------------------------------------------

def test_v3_wrong_credentials_fail_clearly_without_leaking(tmp_path: Path, port: int,
                                                           daemons: DaemonFactory) -> None:
    """Wrong passwords and an unknown user: the device is down, with a reason, and the daemon
    log says why. net-snmp answers an unknown user and a wrong digest with a USM report, so
    those are reason "usm"; a message it cannot decrypt (wrong privacy password, or the Reeder
    key extension "AES256C" against net-snmp's Blumenthal one) it drops without a word (its log:
    "error parsing ScopedPDU"), so monitord can only see a timeout. A control device with good
    credentials stays up. No secret, right or wrong, is printed anywhere."""
    control = V3User("u-good", "SHA", "good-auth-secret-12", "AES", "good-priv-secret-13")
    sha = V3User("u-sha", "SHA", "real-auth-secret-14")
    aes = V3User("u-aes", "SHA", "real-auth-secret-15", "AES", "real-priv-secret-16")
    blumenthal = V3User("u-aes256", "SHA", "real-auth-secret-17", "AES-256", "real-priv-secret-18")
    wrong = {"auth_password": "WRONG-auth-secret-19", "priv_password": "WRONG-priv-secret-20"}
    # (device, user, where its passwords come from, the passwords monitord is given)
    cases: list[tuple[str, V3User, dict[str, Any], dict[str, str]]] = [
        ("control", control, {"auth_protocol": "SHA", "auth_password": {"env": "TEST_SNMP_GOOD_AUTH"},
                              "priv_protocol": "AES", "priv_password": {"file": "good.priv"}},
         {"auth_password": control.auth_password or "", "priv_password": control.priv_password or ""}),
        ("wrong-auth", sha, {"auth_protocol": "SHA", "auth_password": {"env": "TEST_SNMP_WRONG_AUTH"}},
         {"auth_password": wrong["auth_password"]}),
        ("unknown-user", V3User("u-nobody"), {"auth_protocol": "SHA",
                                              "auth_password": {"file": "nobody.auth"}},
         {"auth_password": "nobody-auth-secret-21"}),
        ("wrong-priv", aes, {"auth_protocol": "SHA", "auth_password": {"env": "TEST_SNMP_AES_AUTH"},
                             "priv_protocol": "AES", "priv_password": {"file": "wrong.priv"}},
         {"auth_password": aes.auth_password or "", "priv_password": wrong["priv_password"]}),
        ("reeder-aes256", blumenthal, {"auth_protocol": "SHA",
                                       "auth_password": {"env": "TEST_SNMP_AES256_AUTH"},
                                       "priv_protocol": "AES256C",
                                       "priv_password": {"file": "aes256.priv"}},
         {"auth_password": blumenthal.auth_password or "",
          "priv_password": blumenthal.priv_password or ""}),
    ]
    addresses = {name: f"127.0.5.{i}" for i, (name, *_) in enumerate(cases, start=1)}
    env: dict[str, str] = {}
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    profiles = {name: v3_profile(user, where, secret_dir, env, given)
                for name, user, where, given in cases}
    devices = [{"id": name, "address": addresses[name], "snmp": name} for name in addresses]
    config = write_snmp_config(tmp_path / "m.yaml", port, profiles, devices)
    agent_users = [control, sha, aes, blumenthal]
    secrets = [*wrong.values(), "nobody-auth-secret-21",
               *(s for u in agent_users for s in (u.auth_password, u.priv_password) if s)]
    failing = [name for name in addresses if name != "control"]
    with Snmpd(tmp_path / "snmpd", list(addresses.values()), 1161, users=agent_users) as agent, \
            environment(env):
        d = daemons.start(config, port)

        wait_for("every device polled, the control one completely", lambda: snmp_up(
            d, "control", 1.0) and all(polls(d, name) >= 1 for name in failing))
        # From here on, not counting the first poll (see test_v3_every_security_level).
        warm = d.samples()
        samples = fresh_samples(d, list(addresses))
        assert_secrets_hidden(secrets, config, d)
        log = d.log()
        agent_log = agent.log()

    reasons = {"wrong-auth": "usm", "unknown-user": "usm", "wrong-priv": "timeout",
               "reeder-aes256": "timeout"}

    def delta(name: str, target: str, **labels: str) -> float:
        return counter(samples, name, target, **labels) - counter(warm, name, target, **labels)

    for name, reason in reasons.items():
        assert value(samples, "monitord_snmp_up", target=name) == 0.0, name
        polled = delta("monitord_snmp_polls_total", name)
        assert polled >= 2
        before = errors(warm, name)
        new = {r: count - before.get(r, 0) for r, count in errors(samples, name).items()}
        assert {r: count for r, count in new.items() if count} == {reason: polled}, (name, new)
        assert of(samples, name, "monitord_if_") == [], name  # nothing half-known is exported
        assert of(samples, name, "monitord_device_info") == [], name
        assert of(samples, name, "monitord_device_uptime_seconds") == [], name
    # A USM failure is not worth a retry: one request per poll. A silent drop is retried.
    for name in ("wrong-auth", "unknown-user"):
        assert delta("monitord_snmp_requests_total", name) == delta("monitord_snmp_polls_total", name)
        assert delta("monitord_snmp_retries_total", name) == 0
    for name in ("wrong-priv", "reeder-aes256"):
        assert delta("monitord_snmp_timeouts_total", name) == delta("monitord_snmp_polls_total", name)
    assert "wrong-auth: SNMP poll failed: GET 1.3.6.1.2.1.1.3.0: SNMPv3: Wrong SNMP PDU digest" in log
    assert "unknown-user: SNMP poll failed: GET 1.3.6.1.2.1.1.3.0: SNMPv3: Unknown USM user" in log
    for name in ("wrong-priv", "reeder-aes256"):
        assert f"{name}: SNMP poll failed: GET 1.3.6.1.2.1.1.3.0: no response after 2 tries" in log
    # What the agent made of them: a digest it rejects; messages it cannot decrypt.
    assert "Authentication failed for u-sha" in agent_log
    assert "error parsing ScopedPDU" in agent_log
    assert value(samples, "monitord_snmp_up", target="control") == 1.0
    assert errors(samples, "control") == errors(warm, "control")


# --- 4. agent restart = device reboot ------------------------------------------------------

def test_v3_profiles_sharing_a_user_name_do_not_disturb_each_other(
        tmp_path: Path, port: int, daemons: DaemonFactory) -> None:
    """One user name across the fleet, a stale privacy password on some devices: the devices
    with the right keys stay up. (Regression: on one shared pysnmp engine, profiles with the
    same user name and different keys overwrote each other's USM entry mid-flight.)"""
    user = V3User("u-shared", "SHA", "shared-auth-secret-31", "AES", "shared-priv-secret-32")
    where = {"auth_protocol": "SHA", "auth_password": {"env": "TEST_SNMP_SHARED_AUTH"},
             "priv_protocol": "AES", "priv_password": {"file": "shared.priv"}}
    env: dict[str, str] = {}
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    right = v3_profile(user, where, secret_dir, env, {"auth_password": user.auth_password or "",
                                                      "priv_password": user.priv_password or ""})
    stale_where = {**where, "priv_password": {"file": "stale.priv"}}
    stale = v3_profile(user, stale_where, secret_dir, env,
                       {"auth_password": user.auth_password or "",
                        "priv_password": "stale-priv-secret-33"})
    good = [f"good-{i}" for i in range(1, 9)]  # enough devices for requests to interleave
    bad = ["stale-1", "stale-2"]
    addresses = {name: f"127.0.6.{i}" for i, name in enumerate(good + bad, start=1)}
    devices = [{"id": name, "address": address, "snmp": "right" if name in good else "stale"}
               for name, address in addresses.items()]
    config = write_snmp_config(tmp_path / "m.yaml", port, {"right": right, "stale": stale}, devices)
    with Snmpd(tmp_path / "snmpd", list(addresses.values()), 1161, users=[user]), \
            environment(env):
        d = daemons.start(config, port)
        wait_for("every device polled once", lambda: all(polls(d, t) >= 1 for t in addresses))
        before = d.samples()
        after = fresh_samples(d, list(addresses))
        after = fresh_samples(d, list(addresses))
        after = fresh_samples(d, list(addresses))  # six more polls of each device
    for target in good:
        assert value(after, "monitord_snmp_up", target=target) == 1.0, target
        assert errors(after, target) == errors(before, target), target  # none after the first
    for target in bad:
        assert value(after, "monitord_snmp_up", target=target) == 0.0, target
        assert errors(after, target).get("timeout", 0) > errors(before, target).get("timeout", 0)


def reboot(host: TestHost, agent: Snmpd) -> None:
    """Power-cycle the test host: the agent stops, the namespace and its interfaces go away and
    come back new (kernel counters restart at 0), then the agent starts again."""
    agent.stop()
    host.__exit__(None, None, None)
    host.__enter__()
    agent.start()


def test_agent_restart_is_a_reboot_and_counters_reset_cleanly(tmp_path: Path, port: int,
                                                               daemons: DaemonFactory) -> None:
    """Traffic makes eth0's counters large; then the device "reboots". monitord must count one
    reboot, report a smaller uptime and smaller counters, and a real Prometheus scraping it
    must see the counter reset (resets() = 1) with rate() never negative across it."""
    device = "router"
    eth0 = f'{{target="{device}",if_name="eth0"}}'
    scraped = f"count_over_time(monitord_if_in_octets_total{eth0}[5m])"

    def more_scrapes(prom: Prometheus, n: int) -> None:
        """Until Prometheus holds `n` more samples of eth0's in-octets than now."""
        have = prom.instant(scraped) or 0
        wait_for(f"{n} more scrapes", lambda: (prom.instant(scraped) or 0) >= have + n)

    # Prometheus first: it waits about 5 s before its first scrape, which the setup can use.
    with prometheus(tmp_path / "prometheus", f"127.0.0.1:{port}") as prom, TestHost() as host, \
            Snmpd(tmp_path / "snmpd", [host.address], 161, netns=host.name) as agent:
        started = time.time()
        config = write_snmp_config(tmp_path / "m.yaml", port,
                                   {"v2": snmp_profile(version="2c", community="public")},
                                   [{"id": device, "address": host.address, "snmp": "v2"}])
        d = daemons.start(config, port)
        # ~2.8 MB towards the device: far more than the polls will add after the reboot.
        run("ping", "-q", "-c", "2000", "-i", "0", "-s", "1400", "-W", "1", host.address)
        wait_for("the ping traffic counted", lambda: (value(
            d.samples(), "monitord_if_in_octets_total", target=device, if_name="eth0") or 0) > 2_000_000)
        wait_for("prometheus has the large counter",
                 lambda: (prom.instant(f"monitord_if_in_octets_total{eth0}") or 0) > 2_000_000)
        more_scrapes(prom, 2)
        samples = d.samples()
        assert value(samples, "monitord_device_reboots_total", target=device) == 0
        uptime_before = value(samples, "monitord_device_uptime_seconds", target=device)
        boot_before = value(samples, "monitord_device_boot_time_seconds", target=device)
        octets_before = value(samples, "monitord_if_in_octets_total", target=device, if_name="eth0")
        assert uptime_before is not None
        assert boot_before is not None
        assert octets_before is not None

        reboot(host, agent)
        wait_for("the reboot counted", lambda: value(
            d.samples(), "monitord_device_reboots_total", target=device) == 1)
        wait_for("the device polled again", lambda: snmp_up(d, device, 1.0))
        samples = d.samples()
        uptime_after = value(samples, "monitord_device_uptime_seconds", target=device)
        boot_after = value(samples, "monitord_device_boot_time_seconds", target=device)
        octets_after = value(samples, "monitord_if_in_octets_total", target=device, if_name="eth0")
        assert uptime_after is not None
        assert uptime_after < uptime_before
        assert boot_after is not None
        assert boot_after > boot_before
        assert octets_after is not None
        assert octets_after < octets_before
        assert f"{device}: agent restarted (sysUpTime" in d.log()

        wait_for("prometheus sees the reboot", lambda: prom.instant(
            f'monitord_device_reboots_total{{target="{device}"}}') == 1)
        wait_for("prometheus sees the counter reset", lambda: prom.instant(
            f"resets(monitord_if_in_octets_total{eth0}[5m])") == 1)
        more_scrapes(prom, 2)
        rates = prom.api("query_range", query=f"rate(monitord_if_in_octets_total{eth0}[30s])",
                         start=f"{started:.3f}", end=f"{time.time():.3f}", step="1")

    assert len(rates) == 1, rates  # one series: eth0 keeps its ifIndex across the reboot
    points = [float(v) for _, v in rates[0]["values"]]
    assert len(points) >= 4, points  # before and after the reboot
    assert min(points) >= 0, points
    assert max(points) > 0, points  # the ping traffic is in there


# --- 5. a walk cut off half way -----------------------------------------------------------

class CuttingRelay:
    """FAULT INJECTOR, not a peer: a UDP forwarder between monitord and snmpd that stands for
    a link dying in the middle of a walk. Each poll starts with a GET (the scalars; the walk is
    all GETBULKs), so a GET marks a new poll; when `cut_after` is set, only that many requests
    of each poll are forwarded and everything after them is dropped.

    It listens on its own loopback address (monitord polls the relay's address, and the answers
    come back from it) and runs an asyncio loop in a thread of the test process."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int]) -> None:
        self.listen = listen
        self.upstream = upstream
        self.cut_after: int | None = None
        self.polls: list[list[int]] = []  # per poll: [requests forwarded, datagrams dropped]
        self._client: tuple[str, int] | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._back: asyncio.DatagramTransport | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def __enter__(self) -> CuttingRelay:
        self._thread.start()
        assert self._ready.wait(10), "relay did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self._stop = loop, asyncio.Event()
        relay = self

        class Front(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                relay._from_client(data, addr)

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if relay._client is not None:
                    front.sendto(data, relay._client)

        front, _ = await loop.create_datagram_endpoint(Front, local_addr=self.listen)
        back, _ = await loop.create_datagram_endpoint(Back, remote_addr=self.upstream)
        self._back = back
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            front.close()
            back.close()

    def _from_client(self, data: bytes, addr: tuple[str, int]) -> None:
        self._client = addr
        if pdu_type(data) == 0xA0 or not self.polls:  # GET: a new poll begins
            self.polls.append([0, 0])
        counts = self.polls[-1]
        if self.cut_after is not None and counts[0] >= self.cut_after:
            counts[1] += 1
            return
        counts[0] += 1
        assert self._back is not None
        self._back.sendto(data)


def _ber_header(data: bytes, pos: int) -> tuple[int, int]:
    """(content start, content length) of the TLV at `pos`."""
    length = data[pos + 1]
    if length < 0x80:
        return pos + 2, length
    size = length & 0x7F
    return pos + 2 + size, int.from_bytes(data[pos + 2:pos + 2 + size], "big")


def pdu_type(message: bytes) -> int | None:
    """The PDU tag of a v1/v2c message: SEQUENCE { version, community, PDU }."""
    try:
        pos, _ = _ber_header(message, 0)
        for _ in range(2):  # skip version and community
            start, length = _ber_header(message, pos)
            pos = start + length
        return message[pos]
    except IndexError:
        return None


def test_walk_cut_off_half_way_exports_no_partial_tables(tmp_path: Path, port: int,
                                                         daemons: DaemonFactory) -> None:
    """snmpd in a namespace with 12 interfaces, walked 2 rows per GETBULK, so a poll takes
    many requests. With the link cutting out half way through every poll, monitord must
    report the device down with timeouts and export no interface sample at all, while its
    request counters show exactly what went on the wire; once the link heals, the complete
    tables come back."""
    device = "cut"
    relay_address = ("127.0.6.1", 1161)
    with TestHost() as host:
        for n in range(5):  # 10 more interfaces for the agent to list
            run("ip", "-n", host.name, "link", "add", f"va{n}", "type", "veth", "peer", "name", f"vb{n}")
        with Snmpd(tmp_path / "snmpd", [host.address], 161, netns=host.name), \
                CuttingRelay(relay_address, (host.address, 161)) as relay:
            agent_indexes = sorted(
                oid.rsplit(".", 1)[1]
                for oid in snmpbulkwalk(f"{host.address}:161", V2C, IF_INDEX))
            assert len(agent_indexes) == 12
            profile = snmp_profile(version="2c", community="public", port=relay_address[1],
                                   interval="2s", max_repetitions=2)
            config = write_snmp_config(tmp_path / "m.yaml", port, {"slow-walk": profile},
                                       [{"id": device, "address": relay_address[0], "snmp": "slow-walk"}])
            d = daemons.start(config, port)

            def complete() -> list[Sample] | None:
                samples = d.samples()
                if value(samples, "monitord_snmp_up", target=device) != 1:
                    return None
                return samples if sorted(if_rows(samples, device)) == agent_indexes else None

            wait_for("complete tables through the relay", complete)
            fresh_samples(d, [device])  # a poll without the first poll's label walk
            full_poll = relay.polls[-2][0]
            assert full_poll >= 10, relay.polls  # a walk of many requests

            cut_after = full_poll // 2
            relay.cut_after = cut_after
            first_cut = len(relay.polls)  # polls from this one on start after the cut
            wait_for("the cut walk reported", lambda: snmp_up(d, device, 0.0))
            cut = d.samples()
            cut_again = fresh_samples(d, [device])

            # Nothing from a cut walk: no interface rows, not even the ones that did arrive,
            # and not the scalars fetched before the cut either.
            for samples in (cut, cut_again):
                assert of(samples, device, "monitord_if_") == []
                assert of(samples, device, "monitord_device_info") == []
                assert of(samples, device, "monitord_device_uptime_seconds") == []
            assert value(cut_again, "monitord_snmp_up", target=device) == 0

            def delta(name: str, **labels: str) -> float:
                return counter(cut_again, name, device, **labels) - counter(cut, name, device, **labels)

            failed_polls = delta("monitord_snmp_polls_total")
            assert failed_polls >= 2
            assert delta("monitord_snmp_errors_total", reason="timeout") == failed_polls
            # Each cut poll: the forwarded requests were answered, the next one was sent, retried
            # once, and never answered; that is all it sent.
            assert delta("monitord_snmp_requests_total") == failed_polls * (cut_after + 1)
            assert delta("monitord_snmp_retries_total") == failed_polls
            assert delta("monitord_snmp_timeouts_total") == failed_polls
            # The wire agrees: every poll begun since the cut (but the last, which may still be
            # under way) had cut_after requests through and then a request and its retry lost.
            cut_polls = relay.polls[first_cut:-1]
            assert len(cut_polls) >= 2
            assert [p for p in cut_polls if p != [cut_after, 2]] == [], relay.polls
            assert f"{device}: SNMP poll failed: walk of" in d.log()

            relay.cut_after = None
            healed = wait_for("complete tables after the link heals", complete)
            assert value(healed, "monitord_snmp_up", target=device) == 1
            assert f"{device}: SNMP poll complete again" in d.log()
