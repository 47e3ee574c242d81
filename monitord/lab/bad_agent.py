"""A misbehaving SNMP agent: a UDP server that answers every request wrongly, in a chosen way.

It stands in front of a real agent (`--upstream`, e.g. snmpd) and spoils each of its answers
according to the mode; without an upstream it makes the answer itself (every OID asked,
valued noSuchObject). Modes:

    pass               the answer unchanged (the agent behaves again)
    truncated          the answer cut off inside its varbind list
    bad_length         the varbind list claims one byte more than the message holds
    wrong_tag          a GetRequest PDU (0xa0) where a Response (0xa2) belongs
    wrong_request_id   the answer to some other request
    wrong_source_port  the answer, but sent from another UDP port of the same address
    garbage            random bytes, as long as the answer
    silent             no answer at all

    python -m monitord.lab.bad_agent --listen 127.0.9.1:1161 --upstream 127.0.9.3:161 \\
        --mode truncated --control FILE

It prints "ready" once listening. SIGUSR1 re-reads the JSON control file ({"mode": M}) and
prints "applied M". The BER handling here is its own, deliberately: a lab that borrowed
monitord's codec to build its faults would share that codec's blind spots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

Mode = Literal["pass", "truncated", "bad_length", "wrong_tag", "wrong_request_id",
               "wrong_source_port", "garbage", "silent"]
MODES: tuple[Mode, ...] = get_args(Mode)
Address = tuple[str, int]

_SEQUENCE = 0x30
_RESPONSE = 0xA2
_GET_REQUEST = 0xA0
_NO_SUCH_OBJECT = b"\x80\x00"
_MAX_WAITING = 4096  # requests forwarded upstream and not answered yet, oldest forgotten first


class NotSnmpError(ValueError):
    """The bytes are not an SNMPv1/v2c message this agent can take apart."""


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    start: int  # where the tag byte is
    length_at: int  # where the length octets start
    content: int  # where the content starts
    end: int  # one past the content


def read_tlv(data: bytes, pos: int) -> Tlv:
    if pos + 2 > len(data):
        raise NotSnmpError(f"no TLV at byte {pos}")
    first = data[pos + 1]
    if first < 0x80:
        content, length = pos + 2, first
    else:
        count = first & 0x7F
        if not 1 <= count <= 3 or pos + 2 + count > len(data):
            raise NotSnmpError(f"unsupported length at byte {pos + 1}")
        content, length = pos + 2 + count, int.from_bytes(data[pos + 2:pos + 2 + count], "big")
    if content + length > len(data):
        raise NotSnmpError(f"TLV at byte {pos} overruns the message")
    return Tlv(data[pos], pos, pos + 1, content, content + length)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the parts of a v1/v2c message are: SEQUENCE { version, community, PDU { request-id,
    error-status (or non-repeaters), error-index (or max-repetitions), varbind list } }."""

    message: Tlv
    pdu: Tlv
    request_id: Tlv
    varbinds: Tlv

    @classmethod
    def of(cls, data: bytes) -> Layout:
        message = read_tlv(data, 0)
        if message.tag != _SEQUENCE:
            raise NotSnmpError("not a SEQUENCE")
        version = read_tlv(data, message.content)
        community = read_tlv(data, version.end)
        pdu = read_tlv(data, community.end)
        request_id = read_tlv(data, pdu.content)
        second = read_tlv(data, request_id.end)
        third = read_tlv(data, second.end)
        varbinds = read_tlv(data, third.end)
        if (version.tag, community.tag, request_id.tag, varbinds.tag) != (0x02, 0x04, 0x02,
                                                                            _SEQUENCE):
            raise NotSnmpError("not an SNMPv1/v2c message")
        return cls(message, pdu, request_id, varbinds)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def request_id(data: bytes) -> int:
    tlv = Layout.of(data).request_id
    return int.from_bytes(data[tlv.content:tlv.end], "big", signed=True)


def as_response(request: bytes) -> bytes:
    """A Response to `request` with every OID asked valued noSuchObject: what an agent that
    knows nothing says, used when there is no upstream agent."""
    layout = Layout.of(request)
    message = layout.message
    head = request[message.content:layout.pdu.start]  # version and community, as asked
    varbinds = b""
    pos = layout.varbinds.content
    while pos < layout.varbinds.end:
        varbind = read_tlv(request, pos)
        oid = read_tlv(request, varbind.content)
        varbinds += _tlv(_SEQUENCE, request[oid.start:oid.end] + _NO_SUCH_OBJECT)
        pos = varbind.end
    rid = request[layout.request_id.start:layout.request_id.end]
    pdu = _tlv(_RESPONSE, rid + b"\x02\x01\x00\x02\x01\x00" + _tlv(_SEQUENCE, varbinds))
    return _tlv(_SEQUENCE, head + pdu)


def misbehave(mode: Mode, response: bytes, rng: random.Random) -> bytes | None:
    """What the agent sends instead of `response` (None: nothing). wrong_source_port changes
    who sends, not what: the bytes come back unchanged."""
    if mode in ("pass", "wrong_source_port"):
        return response
    if mode == "silent":
        return None
    if mode == "garbage":
        first = rng.choice([b for b in range(256) if b != _SEQUENCE])  # never an SNMP message
        return bytes((first,)) + rng.randbytes(max(0, len(response) - 1))
    layout = Layout.of(response)
    if mode == "truncated":
        varbinds = layout.varbinds
        return response[:max(varbinds.content, (varbinds.content + varbinds.end) // 2)] \
            if varbinds.end > varbinds.content else response[:-1]
    spoiled = bytearray(response)
    if mode == "bad_length":
        at = layout.varbinds.length_at
        width = layout.varbinds.content - at
        claimed = layout.varbinds.end - layout.varbinds.content + 1
        if width == 1 and claimed >= 0x80:
            raise NotSnmpError("varbind list too long for its short length form")
        if width == 1:
            spoiled[at] = claimed
        else:
            try:
                spoiled[at + 1:at + width] = claimed.to_bytes(width - 1, "big")
            except OverflowError:
                raise NotSnmpError("varbind list too long for its length octets") from None
    elif mode == "wrong_tag":
        spoiled[layout.pdu.start] = _GET_REQUEST
    elif mode == "wrong_request_id":
        spoiled[layout.request_id.end - 1] ^= 0x01  # another id, same encoded length
    return bytes(spoiled)


def read_control(path: Path) -> Mode:
    doc = json.loads(path.read_text())
    mode = doc.get("mode") if isinstance(doc, dict) else None
    if mode not in MODES:
        raise ValueError(f"{path}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    return cast(Mode, mode)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, agent: BadAgent, role: str) -> None:
        self.agent = agent
        self.role = role

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.role == "front":
            self.agent.on_request(data, addr)
        elif self.role == "upstream":
            self.agent.on_upstream(data)


class BadAgent:
    """The server: `front` takes requests, `side` (same address, another port) sends the
    wrong_source_port answers, `upstream` talks to the real agent if there is one."""

    def __init__(self, mode: Mode, upstream: Address | None = None,
                 rng: random.Random | None = None) -> None:
        self.mode: Mode = mode
        self.upstream = upstream
        self.requests = 0
        self.answers = 0
        self.ignored = 0  # datagrams that were no SNMP request, or answers nobody waits for
        self._rng = rng or random.Random()  # noqa: S311 - garbage, not secrets
        self._waiting: OrderedDict[int, Address] = OrderedDict()
        self._front: asyncio.DatagramTransport | None = None
        self._side: asyncio.DatagramTransport | None = None
        self._upstream: asyncio.DatagramTransport | None = None

    async def start(self, listen: Address) -> Address:
        """Listen on `listen` (port 0: any free one); returns the address listened on."""
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self, "front"), local_addr=listen)
        bound: Address = self._front.get_extra_info("sockname")[:2]
        self._side, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self, "side"), local_addr=(bound[0], 0))
        if self.upstream is not None:
            self._upstream, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self, "upstream"), remote_addr=self.upstream)
        return bound

    def close(self) -> None:
        for transport in (self._front, self._side, self._upstream):
            if transport is not None:
                transport.close()

    def on_request(self, data: bytes, client: Address) -> None:
        try:
            rid = request_id(data)
        except NotSnmpError:
            self.ignored += 1
            return
        self.requests += 1
        if self._upstream is None:
            self._answer(as_response(data), client)
            return
        self._waiting[rid] = client
        while len(self._waiting) > _MAX_WAITING:
            self._waiting.popitem(last=False)
        self._upstream.sendto(data)

    def on_upstream(self, data: bytes) -> None:
        try:
            client = self._waiting.pop(request_id(data))
        except (NotSnmpError, KeyError):
            self.ignored += 1
            return
        self._answer(data, client)

    def _answer(self, response: bytes, client: Address) -> None:
        try:
            spoiled = misbehave(self.mode, response, self._rng)
        except NotSnmpError:
            spoiled = response[:-1]  # could not spoil it as asked: a truncated one instead
        if spoiled is None:
            return
        sender = self._side if self.mode == "wrong_source_port" else self._front
        assert sender is not None
        sender.sendto(spoiled, client)
        self.answers += 1


def parse_address(text: str) -> Address:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


async def serve(agent: BadAgent, listen: Address, control: Path | None) -> None:
    """Until SIGTERM/SIGINT; SIGUSR1 applies the control file."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if control is not None:
        loop.add_signal_handler(signal.SIGUSR1, _apply_control, agent, control)
    await agent.start(listen)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        agent.close()


def _apply_control(agent: BadAgent, control: Path) -> None:
    try:
        agent.mode = read_control(control)
    except (OSError, ValueError) as error:  # keep the old mode; say why
        print(f"control error: {error}", flush=True)
        return
    print(f"applied {agent.mode}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitord.lab.bad_agent",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", type=parse_address, required=True, help="HOST:PORT")
    parser.add_argument("--upstream", type=parse_address, help="HOST:PORT of a real agent")
    parser.add_argument("--mode", choices=MODES, default="pass")
    parser.add_argument("--control", type=Path, help="JSON file re-read on SIGUSR1")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(BadAgent(args.mode, args.upstream), args.listen, args.control))
    except OSError as error:  # the address is taken or not ours
        print(f"bad_agent: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
