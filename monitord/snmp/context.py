"""The SNMP resources of a daemon: one transport, pysnmp engines for v3 devices, and one
DevicePoller per SNMP check, kept across polls for its caches.

One pysnmp engine per distinct v3 credential set: pysnmp keys its USM users by user name and
engine id, so two profiles with the same user name and different keys on one engine
overwrite each other mid-flight and good devices fail (found by the snmpd integration test).
Engines are built when the config is applied, not inside a device's first poll deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from monitord.model import Check, SnmpCredentials, SnmpProfile
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
from monitord.snmp.transport import RequestStats, UdpTransport


class SnmpContext:
    def __init__(self, max_in_flight: int, modules: Mapping[str, SnmpModule]) -> None:
        self.transport = UdpTransport(max_in_flight)
        self._modules = dict(modules)
        self._engines: dict[SnmpCredentials, Any] = {}
        self._pollers: dict[str, DevicePoller] = {}

    def set_checks(self, checks: Iterable[Check], modules: Mapping[str, SnmpModule]) -> None:
        """After a reload: keep pollers (and their label caches) of unchanged checks."""
        if dict(modules) != self._modules:
            self._modules = dict(modules)
            self._pollers.clear()
        wanted = {c.target: c for c in checks if c.kind == "snmp"}
        self._pollers = {t: p for t, p in self._pollers.items()
                         if wanted.get(t) == p.check}
        in_use = {_profile(c).credentials for c in wanted.values()}
        for creds in [c for c in self._engines if c not in in_use]:
            self._engines.pop(creds).close_dispatcher()
        for creds in in_use:
            if creds.version == 3 and creds not in self._engines:
                self._engines[creds] = new_engine()

    def stats_of(self, check: Check) -> RequestStats | None:
        """What the device's current (or last) poll has spent so far."""
        poller = self._pollers.get(check.target)
        return poller.stats if poller is not None and poller.check == check else None

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
            engine = self._engines.get(creds)
            if engine is None:
                engine = self._engines[creds] = new_engine()
            return UsmSession(engine, endpoint, creds, self.transport.slots)
        assert creds.community is not None
        return CommunitySession(self.transport, endpoint, creds.version,
                                creds.community.reveal().encode())

    async def close(self) -> None:
        self.transport.close()
        for engine in self._engines.values():
            await close_engine(engine)
        self._engines.clear()


def _profile(check: Check) -> SnmpProfile:
    assert isinstance(check.profile, SnmpProfile), f"{check.key} is not an SNMP check"
    return check.profile

