"""snmpsim serving device recordings (.snmprec) on loopback endpoints, for integration tests.

The snmpsim process and the recordings' location moved to monitord.lab.agents (the province
lab serves its namespaces' devices the same way). An SnmpAgents is a monitord.lab.agents.Snmpsim
that stays on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from monitord.lab.agents import (
    RECORDINGS,
    RESPONDER,
    Endpoint,
    Snmpsim,
    answers,
    recording_names,
    v2c_get_sysobjectid,
)

__all__ = ["RECORDINGS", "RESPONDER", "Endpoint", "SnmpAgents", "answers", "recording_names",
           "running", "v2c_get_sysobjectid"]


AgentT = TypeVar("AgentT", bound=Snmpsim)


class SnmpAgents(Snmpsim):
    """snmpsim on loopback endpoints of the test's own namespace."""

    def __init__(self, endpoints: list[Endpoint], workdir: Path, data_dir: Path = RECORDINGS,
                 recordings: list[str] | None = None, startup_timeout: float = 60.0) -> None:
        assert all(host.startswith("127.") for host, _ in endpoints), "agents stay on loopback"
        super().__init__(endpoints, workdir, recordings=recordings, data_dir=data_dir,
                         startup_timeout=startup_timeout)


@contextmanager
def running(*agents: AgentT) -> Iterator[tuple[AgentT, ...]]:
    """Start several snmpsim processes side by side (their indexing overlaps), wait until all
    answer, and stop them all on the way out."""
    with ExitStack() as stack:
        for agent in agents:
            stack.callback(agent.stop)
            agent.launch()
        for agent in agents:
            agent.wait_ready()
        yield agents
