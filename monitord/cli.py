"""The `monitord` command: run | check-config | targets | probe TARGET | poll TARGET |
report | maintenance add|list|remove | lab."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from monitord import __version__
from monitord.config import ConfigError, load_inventory
from monitord.config.inventory import DEFAULT_PROFILE
from monitord.daemon import Daemon
from monitord.icmp.pinger import Pinger
from monitord.icmp.sockets import IcmpSocketError
from monitord.lab.demo import add_lab_parser
from monitord.logformat import configure_logging, hide_secrets, secrets_in
from monitord.model import (
    Check,
    IcmpProfile,
    Inventory,
    ProbeResult,
    SnmpPollResult,
    SnmpProfile,
    SocketMode,
)
from monitord.probers import ProbeContext, probe_icmp
from monitord.report.cli import add_maintenance_parser, add_report_parser
from monitord.shard import Shard, select
from monitord.snmp.context import SnmpContext
from monitord.state.history import HISTORY_FILE, HistoryError, read_statuses
from monitord.state.model import TargetStatus

DEFAULT_CONFIG = os.environ.get("MONITORD_CONFIG", "/etc/monitord/monitord.yaml")

EXIT_OK = 0
EXIT_PROBE_FAILED = 1
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configure_logging(args.log_level, args.log_format)
    except ValueError as exc:  # choices are not checked for defaults from the environment
        print(f"monitord: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"monitord: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (IcmpSocketError, HistoryError) as exc:
        print(f"monitord: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitord", description=__doc__)
    parser.add_argument("--version", action="version", version=f"monitord {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("MONITORD_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default=os.environ.get("MONITORD_LOG_FORMAT", "text"),
                        choices=["text", "json"], help="json: one object per line, with the "
                        "event's fields on state-change lines (default: $MONITORD_LOG_FORMAT or "
                        "text)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                       help=f"inventory file (default: $MONITORD_CONFIG or {DEFAULT_CONFIG})")
        return p

    p = add("run", "run the daemon: probe on schedule and serve /metrics")
    p.add_argument("--shard", type=_shard, help="i/N: probe only the targets of shard i of N "
                   "(overrides daemon.shard)")
    p.set_defaults(func=_run)
    add("check-config", "validate the config and summarise it").set_defaults(func=_check_config)
    p = add("targets", "list resolved targets with their state (from the history under "
                       "daemon.state_dir), hierarchy, parent and profile")
    p.add_argument("--json", action="store_true", help="one JSON object per target")
    p.add_argument("--shard", type=_shard, help="i/N: only the targets shard i of N owns")
    p.set_defaults(func=_targets)
    p = add("probe", "probe one target now and print the result")
    p.add_argument("target", help="a device id from the config, or an IP address")
    p.add_argument("--count", type=int, help="echoes to send (default: the profile's)")
    p.add_argument("--socket", choices=["auto", "dgram", "raw"], help="ICMP socket kind")
    p.set_defaults(func=_probe)
    p = add("poll", "poll one device over SNMP now and print the samples it gives")
    p.add_argument("target", help="a device id from the config that has snmp")
    p.set_defaults(func=_poll)
    add_report_parser(sub, DEFAULT_CONFIG)
    add_maintenance_parser(sub, DEFAULT_CONFIG)
    add_lab_parser(sub)  # the province lab demo (monitord.lab.demo)
    return parser


def _poll(args: argparse.Namespace) -> int:
    inv = load_inventory(args.config)
    hide_secrets(secrets_in(inv))
    check = next((c for c in inv.checks if c.kind == "snmp" and c.target == args.target), None)
    if check is None:
        known = sorted(c.target for c in inv.checks if c.kind == "snmp")
        raise ConfigError(inv.source, [f"no device {args.target!r} with snmp in the config; "
                                       f"devices with snmp: {', '.join(known) or 'none'}"])
    result = asyncio.run(_poll_once(check, inv))
    profile = check.profile
    assert isinstance(profile, SnmpProfile)
    print(f"POLL {check.target} ({check.address}:{profile.port}) profile {profile.name}, "
          f"modules {', '.join(profile.modules)}")
    print(f"  {result.requests} requests, {result.retries} retries, {result.varbinds} varbinds, "
          f"{result.duration * 1000:.1f} ms")
    for reason, example in result.value_error_examples.items():
        print(f"  problem ({reason}, {result.value_errors[reason]}x): {example}")
    if result.error is not None:
        print(f"  FAILED ({result.error_reason}): {result.error}")
        return EXIT_PROBE_FAILED
    if result.uptime_ticks is not None:
        print(f"  sysUpTime {result.uptime_ticks / 100:.2f} s")
    for lines in result.families.values():
        print(lines, end="")
    return EXIT_OK


async def _poll_once(check: Check, inv: Inventory) -> SnmpPollResult:
    snmp = SnmpContext(inv.snmp_max_in_flight, inv.snmp_modules)
    try:
        return await snmp.poller(check).poll()
    finally:
        await snmp.close()


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    asyncio.run(Daemon(args.config, args.shard).run())
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    inv = load_inventory(args.config)
    targets = inv.by_target()
    kabupaten = sorted({c.kabupaten for c in targets.values()})
    roles: dict[str, int] = {}
    for c in targets.values():
        roles[c.role] = roles.get(c.role, 0) + 1
    snmp = [c for c in inv.checks if c.kind == "snmp"]
    print(f"{inv.source}: OK")
    print(f"  province {inv.province}: {len(targets)} targets in {len(kabupaten)} kabupaten, "
          f"{len(snmp)} polled over SNMP")
    print("  roles: " + ", ".join(f"{r} {n}" for r, n in sorted(roles.items())))
    print("  profiles: " + ", ".join(
        f"{p.name} ({p.count}x every {p.interval:g}s)" for p in inv.profiles.values()))
    snmp_profiles = {c.profile.name: c.profile for c in snmp if isinstance(c.profile, SnmpProfile)}
    if snmp_profiles:
        print("  snmp profiles: " + ", ".join(
            f"{p.name} (v{p.credentials.version_name}"
            f"{' ' + p.credentials.security_level if p.credentials.version == 3 else ''}"
            f", every {p.interval:g}s)" for p in snmp_profiles.values()))
    print(f"  snmp modules: {', '.join(sorted(inv.snmp_modules))}")
    return EXIT_OK



def _targets(args: argparse.Namespace) -> int:
    inv = load_inventory(args.config)
    statuses = _stored_statuses(inv)
    checks = inv.checks if args.shard is None else select(inv.checks, args.shard).owned
    if args.json:
        for c in checks:
            print(json.dumps(_as_json(c, statuses.get(c.target)), ensure_ascii=False))
        return EXIT_OK
    header = ("TARGET", "KIND", "STATE", "SINCE", "ROOT-CAUSE", "ADDRESS", "ROLE", "KABUPATEN",
              "SITE", "PARENT", "PROFILE", "LABELS")
    rows = [header]
    for c in checks:
        status = statuses.get(c.target) if c.kind == "icmp" else None  # ICMP drives state
        state = "-" if status is None else status.state.value.upper() + (
            "~" if status.flapping else "")
        since = "-" if status is None else datetime.fromtimestamp(status.since).strftime(
            "%Y-%m-%dT%H:%M:%S")
        root = "-" if status is None or status.root_cause is None else status.root_cause
        rows.append((c.target, c.kind, state, since, root, str(c.address), c.role, c.kabupaten,
                     c.site, c.parent or "-", c.profile.name,
                     ",".join(f"{k}={v}" for k, v in c.labels) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if statuses:
        print("(state as last stored by the daemon; ~ = flapping)", file=sys.stderr)
    return EXIT_OK


def _stored_statuses(inv: Inventory) -> dict[str, TargetStatus]:
    """The states the daemon last stored; none (with a note) if they cannot be read."""
    try:
        return read_statuses(Path(inv.state_dir) / HISTORY_FILE)
    except HistoryError as exc:
        print(f"monitord: no states shown: {exc}", file=sys.stderr)
        return {}


def _as_json(c: Check, status: TargetStatus | None = None) -> dict[str, object]:
    state: dict[str, object] | None = None
    if status is not None and c.kind == "icmp":
        state = {"state": status.state.value, "since": status.since, "reason": status.reason,
                 "reason_code": status.reason_code.value, "root_cause": status.root_cause,
                 "flapping": status.flapping}
    return {
        "target": c.target, "kind": c.kind, "address": str(c.address), "name": c.name,
        "province": c.province, "kabupaten": c.kabupaten, "site": c.site, "role": c.role,
        "parent": c.parent, "profile": c.profile.name, "labels": dict(c.labels),
        **({"snmp_modules": list(c.profile.modules)} if isinstance(c.profile, SnmpProfile) else {}),
        "coordinates": None if c.coordinates is None else
        {"latitude": c.coordinates.latitude, "longitude": c.coordinates.longitude},
        "state": state,
    }


def _probe(args: argparse.Namespace) -> int:
    check, socket_mode = _probe_check(args)
    if args.count is not None:
        if args.count < 1:
            print("monitord: --count must be at least 1", file=sys.stderr)
            return EXIT_CONFIG
        check = replace(check, profile=replace(check.profile, count=args.count))
    result = asyncio.run(_probe_once(check, args.socket or socket_mode))
    print(_describe_result(result))
    return EXIT_OK if result.success else EXIT_PROBE_FAILED


def _probe_check(args: argparse.Namespace) -> tuple[Check, SocketMode]:
    """The check for `probe TARGET`: from the config, or an ad-hoc one for a bare address."""
    inv: Inventory | None = None
    try:
        inv = load_inventory(args.config)
    except ConfigError:
        if not _is_address(args.target):
            raise
    if inv is not None:
        found = inv.by_target().get(args.target) or next(
            (c for c in inv.checks if _is_address(args.target)
             and c.address == ipaddress.ip_address(args.target)), None)
        if found is not None:
            return found, inv.icmp_socket
    if not _is_address(args.target):
        raise ConfigError(args.config, [f"no target {args.target!r} in the config and not an IP address"])
    profile = (inv.profiles[DEFAULT_PROFILE] if inv else
               IcmpProfile(DEFAULT_PROFILE, interval=30, count=5, packet_interval=1, timeout=2, size=56))
    check = Check(target=args.target, kind="icmp", address=ipaddress.ip_address(args.target),
                  province="", kabupaten="", site="", role="adhoc", profile=profile)
    return check, inv.icmp_socket if inv else "auto"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _probe_once(check: Check, socket_mode: SocketMode) -> ProbeResult:
    pinger = Pinger(socket_mode)
    pinger.open()
    try:
        return await probe_icmp(check, ProbeContext(pinger))
    finally:
        pinger.close()


def _describe_result(r: ProbeResult) -> str:
    c, p = r.check, r.check.profile
    assert isinstance(p, IcmpProfile)
    where = "/".join(x for x in (c.kabupaten, c.site) if x) or "ad hoc"
    lines = [
        f"PROBE {c.target} ({c.address}) {c.kind} [{where}, role {c.role}, parent {c.parent or '-'}]",
        f"  profile {p.name}: {p.count} echoes of {p.size} bytes, {p.packet_interval:g}s apart, "
        f"timeout {p.timeout:g}s",
        f"  {r.sent} sent, {r.received} received, {r.loss_ratio:.0%} loss, "
        f"time {r.duration * 1000:.1f} ms, success {int(r.success)}",
    ]
    if r.rtts:
        ms = [x * 1000 for x in r.rtts]
        jitter = (r.jitter or 0.0) * 1000
        lines.append(f"  rtt min/avg/max/jitter = {min(ms):.3f}/{sum(ms) / len(ms):.3f}/"
                     f"{max(ms):.3f}/{jitter:.3f} ms")
        lines.append("  replies (ms): " + " ".join(f"{x:.3f}" for x in ms))
    if r.error:
        lines.append(f"  error: {r.error}")
    return "\n".join(lines)
