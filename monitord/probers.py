"""Probers: one function per check kind, looked up by name (blackbox_exporter's model).

A prober never raises for a failed target: the failure is in the ProbeResult. The scheduler
owns the timing and the concurrency.

Two shapes: PROBERS holds coroutines (any kind; the scheduler runs each in a task under a
deadline), and STARTERS holds callback starters for kinds whose probes are cheap enough that
a task per probe would dominate their cost (ICMP: see PEERS.md). A starter bounds its own
duration and calls `done` exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from monitord.icmp.pinger import EchoOutcome, Pinger
from monitord.model import Check, IcmpProfile, Outcome, ProbeResult, SnmpPollResult
from monitord.snmp.context import SnmpContext


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """The long-lived resources probers share: one of each per daemon."""

    pinger: Pinger
    snmp: SnmpContext | None = None


Prober = Callable[[Check, ProbeContext], Awaitable[Outcome]]
ResultCallback = Callable[[ProbeResult], None]
# (check, context, tick: the scheduler tick the run belongs to, in loop time, done)
Starter = Callable[[Check, ProbeContext, float, ResultCallback], None]


def _icmp_result(check: Check, started: float, outcome: EchoOutcome) -> ProbeResult:
    return ProbeResult(check=check, started=started, duration=outcome.duration, sent=outcome.sent,
                       received=outcome.received, rtts=outcome.rtts, error=outcome.error)


def start_icmp(check: Check, ctx: ProbeContext, tick: float, done: ResultCallback) -> None:
    """Start an ICMP probe; it ends by itself after (count-1) x packet_interval + timeout."""
    profile = check.profile
    assert isinstance(profile, IcmpProfile)
    started = time.time()
    ctx.pinger.start(check.address, profile.count, profile.packet_interval, profile.timeout,
                     profile.size, lambda outcome: done(_icmp_result(check, started, outcome)),
                     start_at=tick)


async def probe_icmp(check: Check, ctx: ProbeContext) -> ProbeResult:
    profile = check.profile
    assert isinstance(profile, IcmpProfile)
    started = time.time()
    outcome = await ctx.pinger.ping(check.address, profile.count, profile.packet_interval,
                                    profile.timeout, profile.size)
    return _icmp_result(check, started, outcome)


async def _probe_snmp(check: Check, ctx: ProbeContext) -> SnmpPollResult:
    if ctx.snmp is None:
        raise RuntimeError("SNMP check scheduled without an SNMP context")
    return await ctx.snmp.poller(check).poll()


def failed_outcome(ctx: ProbeContext, check: Check, started: float, duration: float, error: str,
                   deadline_exceeded: bool = False) -> Outcome:
    """What a probe that was cut off (deadline) or crashed reports, in its kind's shape."""
    if check.kind == "snmp":
        # The requests a cut-off poll made still count, per device.
        stats = ctx.snmp.stats_of(check) if ctx.snmp is not None else None
        return SnmpPollResult(check=check, started=started, duration=duration, error=error,
                              error_reason="deadline" if deadline_exceeded else "internal",
                              deadline_exceeded=deadline_exceeded,
                              requests=stats.requests if stats else 0,
                              retries=stats.retries if stats else 0,
                              timeouts=stats.timeouts if stats else 0)
    return ProbeResult(check=check, started=started, duration=duration, sent=0, received=0,
                       error=error, deadline_exceeded=deadline_exceeded)


PROBERS: dict[str, Prober] = {"icmp": probe_icmp, "snmp": _probe_snmp}
STARTERS: dict[str, Starter] = {"icmp": start_icmp}
