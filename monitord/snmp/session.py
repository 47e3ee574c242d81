"""An SNMP session to one device: get, get-next and get-bulk, whatever the version.

v1/v2c requests are built and decoded by monitord.snmp.ber over the shared UdpTransport.
v3 (USM: authentication and privacy) goes through pysnmp on one shared SnmpEngine; its
responses are converted into the same (oid, tag, value) varbinds, so the walker above does
not know the difference. Retries are monitord's own on both paths, so they can be counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from monitord.model import IPAddress, SnmpCredentials
from monitord.snmp import ber
from monitord.snmp.ber import Response, Varbind
from monitord.snmp.transport import RequestStats, SnmpTimeoutError, UdpTransport


class SnmpSession(Protocol):
    version: int  # 0 = v1, 1 = v2c, 3 = v3

    async def get(self, oids: list[bytes], stats: RequestStats) -> Response: ...

    async def get_next(self, oids: list[bytes], stats: RequestStats) -> Response: ...

    async def get_bulk(self, oids: list[bytes], max_repetitions: int,
                       stats: RequestStats) -> Response: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: IPAddress
    port: int
    timeout: float
    retries: int


class CommunitySession:
    """SNMPv1 or v2c over the shared transport."""

    def __init__(self, transport: UdpTransport, endpoint: Endpoint, version: int,
                 community: bytes) -> None:
        self.version = version
        self._transport = transport
        self._endpoint = endpoint
        self._community = community

    async def _send(self, pdu: int, oids: list[bytes], stats: RequestStats,
                    max_repetitions: int = 0) -> Response:
        transport, ep = self._transport, self._endpoint
        request_id = transport.new_request_id()
        message = ber.encode_request(self.version, self._community, pdu, request_id,
                                     ber.encode_varbind_list(oids), 0, max_repetitions)
        return await transport.request(ep.address, ep.port, request_id, message, ep.timeout,
                                       ep.retries, stats)

    async def get(self, oids: list[bytes], stats: RequestStats) -> Response:
        return await self._send(ber.GET, oids, stats)

    async def get_next(self, oids: list[bytes], stats: RequestStats) -> Response:
        return await self._send(ber.GET_NEXT, oids, stats)

    async def get_bulk(self, oids: list[bytes], max_repetitions: int,
                       stats: RequestStats) -> Response:
        return await self._send(ber.GET_BULK, oids, stats, max_repetitions)


class UsmSession:
    """SNMPv3 through pysnmp. The pysnmp objects are built once per session."""

    version = 3

    def __init__(self, engine: Any, endpoint: Endpoint, credentials: SnmpCredentials,
                 slots: asyncio.Semaphore) -> None:
        self._engine = engine
        self._slots = slots  # the transport's global in-flight cap counts v3 requests too
        self._endpoint = endpoint
        self._user = _usm_user(credentials)
        self._private = credentials.priv_protocol is not None
        self._context = _hlapi().ContextData(contextName=credentials.context)
        self._target: Any = None

    async def _transport_target(self) -> Any:
        if self._target is None:
            hlapi = _hlapi()
            ep = self._endpoint
            kind = hlapi.Udp6TransportTarget if ep.address.version == 6 else hlapi.UdpTransportTarget
            # retries=0: monitord retries itself, so that retries are counted per device.
            self._target = await kind.create((str(ep.address), ep.port), timeout=ep.timeout,
                                             retries=0)
        return self._target

    async def _call(self, command: str, oids: list[bytes], stats: RequestStats,
                    *bulk: int) -> Response:
        hlapi = _hlapi()
        target = await self._transport_target()
        objects = [hlapi.ObjectType(hlapi.ObjectIdentity(ber.decode_oid(o))) for o in oids]
        function = getattr(hlapi, command)
        stats.requests += 1
        retries = self._endpoint.retries
        for attempt in range(retries + 1):
            if attempt:
                stats.retries += 1
            async with self._slots:
                indication, status, index, varbinds = await function(
                    self._engine, self._user, target, self._context, *bulk, *objects,
                    lookupMib=False)
            if indication is None:
                return Response(0, int(status), int(index), [_varbind(vb) for vb in varbinds])
            if "timeout" not in str(indication).lower():
                # Authentication, decryption or engine-discovery failures are not helped by
                # a retry; the indication names the problem (never the secrets).
                raise SnmpV3Error(str(indication))
        stats.timeouts += 1
        hint = (" (with authPriv, a wrong privacy password or protocol looks the same: agents "
                "drop what they cannot decrypt)" if self._private else "")
        raise SnmpTimeoutError(
            f"no response after {retries + 1} tries of {self._endpoint.timeout:g}s{hint}")

    async def get(self, oids: list[bytes], stats: RequestStats) -> Response:
        return await self._call("get_cmd", oids, stats)

    async def get_next(self, oids: list[bytes], stats: RequestStats) -> Response:
        return await self._call("next_cmd", oids, stats)

    async def get_bulk(self, oids: list[bytes], max_repetitions: int,
                       stats: RequestStats) -> Response:
        return await self._call("bulk_cmd", oids, stats, 0, max_repetitions)


class SnmpV3Error(Exception):
    """A USM failure reported by pysnmp: unknown user, wrong digest, decryption error, ..."""


def _hlapi() -> Any:
    # Imported on first use: a daemon without v3 devices never pays pysnmp's import time.
    from pysnmp.hlapi.v3arch import asyncio as hlapi  # noqa: PLC0415
    return hlapi


_AUTH = {
    "MD5": "usmHMACMD5AuthProtocol", "SHA": "usmHMACSHAAuthProtocol",
    "SHA224": "usmHMAC128SHA224AuthProtocol", "SHA256": "usmHMAC192SHA256AuthProtocol",
    "SHA384": "usmHMAC256SHA384AuthProtocol", "SHA512": "usmHMAC384SHA512AuthProtocol",
}
# AES256 is the Blumenthal key extension net-snmp uses; AES256C the Reeder one Cisco uses.
_PRIV = {
    "DES": "usmDESPrivProtocol", "AES": "usmAesCfb128Protocol",
    "AES192": "usmAesBlumenthalCfb192Protocol", "AES256": "usmAesBlumenthalCfb256Protocol",
    "AES192C": "usmAesCfb192Protocol", "AES256C": "usmAesCfb256Protocol",
}


def _usm_user(creds: SnmpCredentials) -> Any:
    hlapi = _hlapi()
    kwargs: dict[str, Any] = {}
    if creds.auth_protocol is not None:
        kwargs["authKey"] = creds.auth_password.reveal() if creds.auth_password else None
        kwargs["authProtocol"] = getattr(hlapi, _AUTH[creds.auth_protocol])
    if creds.priv_protocol is not None:
        kwargs["privKey"] = creds.priv_password.reveal() if creds.priv_password else None
        kwargs["privProtocol"] = getattr(hlapi, _PRIV[creds.priv_protocol])
    return hlapi.UsmUserData(creds.username, **kwargs)


def _varbind(pair: Any) -> Varbind:
    name, value = pair
    oid = ber.encode_oid(".".join(str(a) for a in tuple(name)))
    last = value.tagSet.superTags[-1]
    tag = last.tagClass | last.tagFormat | last.tagId
    converted: ber.Value
    if tag in ber.NUMERIC_TAGS:
        converted = int(value)
    elif tag in (ber.OCTET_STRING, ber.IP_ADDRESS, ber.OPAQUE):
        converted = bytes(value.asOctets())
    elif tag == ber.OBJECT_IDENTIFIER:
        converted = ".".join(str(a) for a in tuple(value))
    else:
        converted = None
    return (oid, tag, converted)


def new_engine() -> Any:
    """The one pysnmp engine of the daemon (made only when a v3 device exists)."""
    return _hlapi().SnmpEngine()


async def close_engine(engine: Any) -> None:
    engine.close_dispatcher()
    await asyncio.sleep(0)
