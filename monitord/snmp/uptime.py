"""Reboot detection from sysUpTime, which is TimeTicks (1/100 s) and wraps at 2^32 (497 days).

sysUpTime going backwards means the agent restarted (its counters restarted with it), unless
the previous value plus the time since it lands just past 2^32: that is the wrap, and the
true uptime keeps counting in `wraps`.
"""

from __future__ import annotations

from dataclasses import dataclass

TICKS_WRAP = 2**32
TICKS_PER_SECOND = 100


@dataclass(frozen=True, slots=True)
class Uptime:
    ticks: int  # the last sysUpTime seen
    at: float  # wall-clock time it was seen
    wraps: int = 0  # 2^32 wraps seen since the last reboot
    reboots: int = 0  # reboots seen since monitord started watching

    @property
    def seconds(self) -> float:
        return (self.ticks + self.wraps * TICKS_WRAP) / TICKS_PER_SECOND

    @property
    def boot_time(self) -> float:
        return self.at - self.seconds


def advance(previous: Uptime | None, ticks: int, at: float) -> Uptime:
    """The uptime after seeing `ticks` at wall-clock time `at`."""
    if previous is None:
        return Uptime(ticks, at)
    if ticks >= previous.ticks:
        return Uptime(ticks, at, previous.wraps, previous.reboots)
    elapsed = max(0.0, at - previous.at) * TICKS_PER_SECOND
    expected = previous.ticks + elapsed
    # Polls are seconds to minutes apart; allow for the agent's clock and our timing.
    tolerance = max(10 * TICKS_PER_SECOND, 0.05 * elapsed)
    if expected >= TICKS_WRAP - tolerance and abs(ticks - (expected - TICKS_WRAP)) <= tolerance:
        return Uptime(ticks, at, previous.wraps + 1, previous.reboots)
    return Uptime(ticks, at, 0, previous.reboots + 1)
