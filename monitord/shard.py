"""Sharding: which of N monitord instances owns which target (`--shard i/N`).

Each target is owned by exactly one shard, chosen by rendezvous (highest-random-weight)
hashing of its id: every shard scores sha256("shard:target") and the highest score wins.
Unlike Prometheus' hashmod (`hash % N`), going from N to N+1 shards moves only the ~1/(N+1) of
targets the new shard wins; with `% N` most targets would change owner.

Topology needs a target's ancestors: a village's failure is only DOWN if its kabupaten link is
known to be up. So a shard also *borrows* every ancestor of an owned target that another shard
owns: it pings it (ICMP only) and feeds the state engine, but exports, stores and publishes
nothing about it; its owner does that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from monitord.model import Check

__all__ = ["Shard", "ShardedChecks", "owner", "select"]


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"shard count must be at least 1, not {self.count}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: the index must be between 1 and "
                             f"{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """From "i/N", e.g. "2/3". Raises ValueError with a message for the operator."""
        index, sep, count = text.strip().partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError(f"{text!r} is not a shard: use i/N, e.g. 2/3 (the 2nd of 3)")
        return cls(int(index), int(count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, slots=True)
class ShardedChecks:
    owned: tuple[Check, ...]  # this shard's targets: probed, exported, stored, published
    borrowed: tuple[Check, ...]  # ICMP checks of other shards' ancestors of owned targets

    @property
    def probed(self) -> tuple[Check, ...]:
        return self.owned + self.borrowed


def _score(shard: int, target: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{shard}:{target}".encode()).digest()[:8], "big")


def owner(target: str, count: int) -> int:
    """The shard (1-based) of `count` that owns `target`."""
    if count == 1:
        return 1
    return max(range(1, count + 1), key=lambda shard: _score(shard, target))


def select(checks: Iterable[Check], shard: Shard) -> ShardedChecks:
    """This shard's checks (every kind) and the ICMP checks it borrows for topology."""
    checks = tuple(checks)
    if shard.count == 1:
        return ShardedChecks(checks, ())
    owners = {c.target: owner(c.target, shard.count) for c in checks if c.kind == "icmp"}
    owned = tuple(c for c in checks if owners.get(c.target) == shard.index)
    parents = {c.target: c.parent for c in checks if c.kind == "icmp"}
    needed: set[str] = set()
    for check in owned:
        ancestor = parents.get(check.target)
        while ancestor is not None and ancestor not in needed:  # `needed` also stops a cycle
            needed.add(ancestor)
            ancestor = parents.get(ancestor)
    borrowed = tuple(c for c in checks if c.kind == "icmp" and c.target in needed
                     and owners[c.target] != shard.index)
    return ShardedChecks(owned, borrowed)
