"""Probers: one async function per check kind, looked up by name (blackbox_exporter's model).

A prober never raises for a failed target: the failure is in the ProbeResult. The scheduler
owns the deadline, the timing and the concurrency.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from monitord.icmp.pinger import Pinger
from monitord.model import Check, ProbeResult


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """The long-lived resources probers share: one of each per daemon."""

    pinger: Pinger


Prober = Callable[[Check, ProbeContext], Awaitable[ProbeResult]]


async def probe_icmp(check: Check, ctx: ProbeContext) -> ProbeResult:
    profile = check.profile
    started = time.time()
    outcome = await ctx.pinger.ping(
        check.address, profile.count, profile.packet_interval, profile.timeout, profile.size
    )
    return ProbeResult(
        check=check,
        started=started,
        duration=outcome.duration,
        sent=outcome.sent,
        received=outcome.received,
        rtts=outcome.rtts,
        error=outcome.error,
    )


PROBERS: dict[str, Prober] = {"icmp": probe_icmp}
