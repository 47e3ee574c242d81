"""The SNMP resources of a daemon: one transport, one pysnmp engine (only if a v3 device
exists), and one DevicePoller per SNMP check, kept across polls for its caches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from monitord.model import Check, SnmpPollResult, SnmpProfile
from monitord.snmp.modules import SnmpModule
from monitord.snmp.poller import DevicePoller
from monitord.snmp.session import (
    CommunitySession,
    Endpoint,
    SnmpSession,
    UsmSession,
    close_engine,
    new_engine,
)
from monitord.snmp.transport import UdpTransport


class SnmpContext:
    def __init__(self, max_in_flight: int, modules: Mapping[str, SnmpModule]) -> None:
        self.transport = UdpTransport(max_in_flight)
        self._modules = dict(modules)
        self._engine: Any = None
        self._pollers: dict[str, DevicePoller] = {}

    def set_checks(self, checks: Iterable[Check], modules: Mapping[str, SnmpModule]) -> None:
        """After a reload: keep pollers (and their label caches) of unchanged checks."""
        if dict(modules) != self._modules:
            self._modules = dict(modules)
            self._pollers.clear()
        wanted = {c.target: c for c in checks if c.kind == "snmp"}
        self._pollers = {t: p for t, p in self._pollers.items()
                         if wanted.get(t) == p.check}

    def poller(self, check: Check) -> DevicePoller:
        poller = self._pollers.get(check.target)
        if poller is None or poller.check != check:
            poller = DevicePoller(check, [self._modules[m] for m in _profile(check).modules],
                                  self._session(check))
            self._pollers[check.target] = poller
        return poller

    def _session(self, check: Check) -> SnmpSession:
        profile = _profile(check)
        creds = profile.credentials
        endpoint = Endpoint(check.address, profile.port, profile.timeout, profile.retries)
        if creds.version == 3:
            if self._engine is None:
                self._engine = new_engine()
            return UsmSession(self._engine, endpoint, creds, self.transport.slots)
        assert creds.community is not None
        return CommunitySession(self.transport, endpoint, creds.version,
                                creds.community.reveal().encode())

    async def close(self) -> None:
        self.transport.close()
        if self._engine is not None:
            await close_engine(self._engine)
            self._engine = None


def _profile(check: Check) -> SnmpProfile:
    assert isinstance(check.profile, SnmpProfile), f"{check.key} is not an SNMP check"
    return check.profile


async def probe_snmp(check: Check, snmp: SnmpContext) -> SnmpPollResult:
    return await snmp.poller(check).poll()
