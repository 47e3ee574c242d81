"""Test hosts in network namespaces that are created here and always deleted.

A TestHost is a namespace joined to the caller's own namespace by a veth pair on a /24 from
198.18.0.0/15 (RFC 2544's benchmarking range): the only addresses probed outside loopback,
and they exist only inside namespaces made here. The test suite runs in an `unshare -n`
namespace (scripts/test.sh), so even a mistake cannot reach a real network. TestHost n uses
198.18.n.0/24 and a KabupatenLink's villages 198.19.n.0/24, n counting from 1 per process;
the province lab (monitord.lab.topology) keeps to the upper halves (third octet 128 and up).
"""

from __future__ import annotations

import os
import subprocess
from types import TracebackType


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


class TestHost:
    """A namespace `monitord-t<pid>-<n>` at 198.18.<n>.2, our side at 198.18.<n>.1."""

    __test__ = False  # not a pytest test class
    _counter = 0

    def __init__(self) -> None:
        TestHost._counter += 1
        n = TestHost._counter
        self.name = f"monitord-t{os.getpid()}-{n}"
        self.local_dev = f"mdv{os.getpid() % 10000}x{n}"
        self.address = f"198.18.{n}.2"
        self.local_address = f"198.18.{n}.1"
        self.absent_address = f"198.18.{n}.99"  # on the link, but no host answers

    def __enter__(self) -> TestHost:
        run("ip", "netns", "add", self.name)
        try:
            run("ip", "link", "add", self.local_dev, "type", "veth", "peer", "name", "eth0",
                "netns", self.name)
            run("ip", "addr", "add", f"{self.local_address}/24", "dev", self.local_dev)
            run("ip", "link", "set", self.local_dev, "up")
            run("ip", "-n", self.name, "addr", "add", f"{self.address}/24", "dev", "eth0")
            run("ip", "-n", self.name, "link", "set", "eth0", "up")
            run("ip", "-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def link_down(self) -> None:
        run("ip", "link", "set", self.local_dev, "down")

    def link_up(self) -> None:
        run("ip", "link", "set", self.local_dev, "up")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        subprocess.run(["ip", "link", "del", self.local_dev], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


class KabupatenLink(TestHost):
    """A kabupaten link (a TestHost that forwards) with villages behind it in one more namespace:

        test ns ──veth── link ns (198.18.<n>.2, forwards) ──veth── desa ns (198.19.<n>.2 ...)

    The test's namespace routes 198.19.<n>.0/24 via the link, so taking the link down makes
    the link *and* every village behind it unreachable at once: the failure the topology-aware
    state must report as one DOWN and many UNREACHABLE. All inside 198.18.0.0/15.
    """

    __test__ = False

    def __init__(self, villages: int) -> None:
        super().__init__()
        n = TestHost._counter
        self.desa_ns = f"monitord-d{os.getpid()}-{n}"
        self._net = f"198.19.{n}"
        self.villages = [f"{self._net}.{2 + i}" for i in range(villages)]
        self.absent_village = f"{self._net}.250"  # routed through the link; nobody answers

    def __enter__(self) -> KabupatenLink:
        super().__enter__()
        link, desa = self.name, self.desa_ns
        try:
            run("ip", "netns", "add", desa)
            run("ip", "route", "add", f"{self._net}.0/24", "via", self.address)
            run("ip", "-n", link, "link", "add", "down0", "type", "veth", "peer", "name", "eth0",
                "netns", desa)
            run("ip", "-n", link, "addr", "add", f"{self._net}.1/24", "dev", "down0")
            run("ip", "-n", link, "link", "set", "down0", "up")
            run("ip", "netns", "exec", link, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            for address in self.villages:
                run("ip", "-n", desa, "addr", "add", f"{address}/24", "dev", "eth0")
            for dev in ("lo", "eth0"):
                run("ip", "-n", desa, "link", "set", dev, "up")
            run("ip", "-n", desa, "route", "add", "default", "via", f"{self._net}.1")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def link_up(self) -> None:
        super().link_up()
        # the route through the link went with the carrier; put it back
        subprocess.run(["ip", "route", "replace", f"{self._net}.0/24", "via", self.address],
                       capture_output=True, check=False)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        subprocess.run(["ip", "netns", "del", self.desa_ns], capture_output=True, check=False)
        super().__exit__(exc_type, exc, tb)
