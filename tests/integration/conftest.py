"""Integration tests talk to real peers over real sockets; they need root inside an isolated
network namespace, which scripts/test.sh provides (`unshare --net`). Refuse to run anywhere
else rather than risk probing a real network."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import MonitordProcess, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not any("integration" in str(item.path) for item in items):
        return
    if os.geteuid() != 0:
        pytest.exit("integration tests need root (raw sockets, namespaces): run scripts/test.sh", 2)
    interfaces = {name for _, name in socket.if_nameindex()}  # this namespace's, unlike sysfs
    if interfaces != {"lo"}:
        pytest.exit(
            f"integration tests must run in a namespace with only lo (found {sorted(interfaces)}): "
            "run scripts/test.sh, which uses unshare --net", 2)


class DaemonFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[MonitordProcess] = []

    def start(self, config: Path, port: int) -> MonitordProcess:
        proc = MonitordProcess(config, port, self.tmp_path / f"monitord-{len(self.started)}.log")
        self.started.append(proc)
        return proc


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[DaemonFactory]:
    factory = DaemonFactory(tmp_path)
    yield factory
    for proc in factory.started:
        proc.stop()


@pytest.fixture
def port() -> int:
    return free_port()
