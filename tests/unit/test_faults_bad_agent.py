"""The lab's misbehaving SNMP agent (monitord.lab.bad_agent): each mode's bytes as monitord's
own decoder takes them, and the server over loopback UDP (also as an upstream of itself)."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

import pytest

from monitord.lab.bad_agent import (
    MODES,
    BadAgent,
    Layout,
    Mode,
    NotSnmpError,
    as_response,
    misbehave,
    read_control,
    request_id,
)
from monitord.snmp import ber

SYS_UPTIME = ber.encode_oid("1.3.6.1.2.1.1.3.0")
IF_DESCR = ber.encode_oid("1.3.6.1.2.1.2.2.1.2")


def get_request(rid: int = 0x1234567) -> bytes:
    return ber.encode_request(1, b"public", ber.GET, rid, ber.encode_varbind_list([SYS_UPTIME]))


def bulk_request(columns: int, rid: int = 77) -> bytes:
    oids = [IF_DESCR + bytes([n]) for n in range(1, columns + 1)]
    return ber.encode_request(1, b"public", ber.GET_BULK, rid, ber.encode_varbind_list(oids), 0, 25)


def test_without_upstream_every_oid_asked_is_no_such_object() -> None:
    response = ber.decode_response(as_response(bulk_request(3)))
    assert response.request_id == 77
    assert (response.error_status, response.error_index) == (0, 0)
    assert [(oid, tag) for oid, tag, _ in response.varbinds] == [
        (IF_DESCR + bytes([n]), ber.NO_SUCH_OBJECT) for n in (1, 2, 3)]


def test_layout_finds_the_request_id() -> None:
    assert request_id(get_request(0x1234567)) == 0x1234567
    assert request_id(get_request(5)) == 5
    with pytest.raises(NotSnmpError):
        Layout.of(b"\x30\x03\x02\x01\x00")


# What monitord's decoder must make of each mode: (decodes?, peek_request_id finds the id?)
EXPECTED: dict[Mode, tuple[bool, bool]] = {
    "pass": (True, True),
    "wrong_source_port": (True, True),  # the bytes are fine: the sender is wrong
    "truncated": (False, True),  # the message's own length overruns, but its id is readable
    "bad_length": (False, True),
    "wrong_tag": (False, True),
    "wrong_request_id": (True, True),
    "garbage": (False, False),
}


@pytest.mark.parametrize("columns", [1, 40])  # short and long (0x81) length forms
@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_mode_spoils_the_answer_as_it_says(mode: Mode, columns: int) -> None:
    answer = as_response(bulk_request(columns))
    assert (len(answer) > 0x80) == (columns == 40)
    spoiled = misbehave(mode, answer, random.Random(3))  # noqa: S311 - garbage, not secrets
    assert spoiled is not None
    decodes, id_readable = EXPECTED[mode]
    rid = 76 if mode == "wrong_request_id" else 77  # 77 ^ 1: another request's id
    if decodes:
        assert ber.decode_response(spoiled).request_id == rid
    else:
        with pytest.raises(ber.BerError):
            ber.decode_response(spoiled)
    assert ber.peek_request_id(spoiled) == (rid if id_readable else None)
    assert (spoiled == answer) == (mode in ("pass", "wrong_source_port"))
    if mode == "truncated":  # cut inside the varbind list: its header and request-id intact
        assert len(spoiled) < len(answer)
        assert spoiled == answer[:len(spoiled)]
        assert len(spoiled) > Layout.of(answer).varbinds.content


def test_silent_sends_nothing_and_every_mode_is_covered() -> None:
    assert misbehave("silent", as_response(get_request()), random.Random()) is None  # noqa: S311
    assert set(MODES) == {*EXPECTED, "silent"}


def test_control_file(tmp_path: Path) -> None:
    control = tmp_path / "c.json"
    control.write_text('{"mode": "garbage"}')
    assert read_control(control) == "garbage"
    control.write_text('{"mode": "rude"}')
    with pytest.raises(ValueError, match="mode must be one of"):
        read_control(control)


async def ask(agent_address: tuple[str, int], request: bytes,
              wait: float = 1.0) -> tuple[bytes, tuple[str, int]] | None:
    """Send `request` from a fresh UDP socket; the first answer and who sent it, or None."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        await loop.sock_sendto(sock, request, agent_address)
        try:
            data, source = await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), wait)
        except TimeoutError:
            return None
        return data, (source[0], source[1])


async def test_over_udp_modes_switch_and_answers_come_from_the_right_port() -> None:
    upstream = BadAgent("pass")  # no upstream of its own: answers noSuchObject
    upstream_address = await upstream.start(("127.0.0.1", 0))
    agent = BadAgent("pass", upstream=upstream_address)
    address = await agent.start(("127.0.0.1", 0))
    try:
        answered = await ask(address, get_request(41))
        assert answered is not None
        assert answered[1] == address
        assert ber.decode_response(answered[0]).request_id == 41

        agent.mode = "wrong_source_port"
        answered = await ask(address, get_request(42))
        assert answered is not None
        assert answered[1][0] == address[0]
        assert answered[1][1] != address[1]

        agent.mode = "silent"
        assert await ask(address, get_request(43), wait=0.3) is None

        assert await ask(address, b"not snmp", wait=0.3) is None
        assert (agent.requests, agent.answers, agent.ignored) == (3, 2, 1)
        assert upstream.requests == 3  # silent still asked upstream; the answer went nowhere
    finally:
        agent.close()
        upstream.close()
