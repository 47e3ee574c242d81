"""Fuzzing the SNMP response path (issue 9): whatever a device or the network sends back,
monitord decodes it or says it is malformed, and a poll always ends with a result.

Layers, each a property over generated input:
- decode_response/peek_request_id (the receive path's only parsers): any bytes, mutated real
  responses, structurally valid messages with wrong elements. Decoding returns a Response or
  raises BerError, quickly, and what it returns is usable by the walker and the poller.
- DevicePoller over a session whose answers are picked per request (wrong, repeated, out of
  order, errors): poll() returns an SnmpPollResult, never raises, never loops.
- End to end: monitord's real transport and poller against a UDP agent on 127.0.0.1 whose
  responses are mutated; afterwards the same socket still polls a good agent correctly.

Budgets are per property (fuzz_strategies.budget); each property counts the inputs it tried
and asserts the count. bench/fuzz.py runs the same properties with a larger budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import tracemalloc
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pysnmp.proto import api, rfc1902, rfc1905

from monitord.model import Check, SnmpCredentials, SnmpPollResult, SnmpProfile
from monitord.snmp import ber
from monitord.snmp.modules import compile_module, load_default_module_specs
from monitord.snmp.poller import DevicePoller
from monitord.snmp.session import CommunitySession, Endpoint, SnmpV3Error
from monitord.snmp.transport import RequestStats, SnmpTimeoutError, UdpTransport
from monitord.snmp.walker import WalkError, walk_columns
from tests import fuzz_strategies as fz

POLL_ERROR_REASONS = {"timeout", "malformed", "agent_error", "deadline", "usm", "send"}


# ---- the decoder --------------------------------------------------------------------------


def use_like_the_poller(response: ber.Response) -> None:
    """What the walker and the poller do with a decoded response's fields: error messages,
    OIDs and row indexes as text, numbers as text and scaled floats."""
    assert isinstance(response.request_id, int)
    _ = f"{response.error_name()} (index {response.error_index}) id {response.request_id}"
    for oid, tag, value in response.varbinds:
        assert isinstance(oid, bytes)
        assert 0 <= tag <= 0xFF
        assert value is None or isinstance(value, int | bytes | str)
        for decode in (ber.decode_oid, ber.decode_index):
            with contextlib.suppress(ber.BerError):
                _ = str(decode(oid))
        if isinstance(value, int):
            _ = f"{value} {float(value) * 0.001:g}"


def check_decode(data: bytes, expected: tuple[int, int, int, tuple[fz.Expected, ...]] | None = None,
                 ) -> None:
    """The receive path's property for one datagram."""
    with fz.cpu_seconds() as elapsed:
        request_id = ber.peek_request_id(data)  # never raises: it only pre-matches
        decoded: ber.Response | None = None
        reason = ""
        try:
            decoded = ber.decode_response(data)
        except ber.BerError as exc:
            reason = str(exc)
        assert elapsed() < 1.0, f"decoding {len(data)} bytes took too long"
    assert request_id is None or isinstance(request_id, int)
    assert decoded is not None or reason  # a refusal says what is wrong
    if decoded is not None:
        assert request_id == decoded.request_id  # the transport matches on the peeked one
        use_like_the_poller(decoded)
    if expected is not None:
        assert decoded is not None, "a well-formed response was refused"
        rid, status, index, varbinds = expected
        assert (decoded.request_id, decoded.error_status, decoded.error_index) == (rid, status, index)
        assert decoded.varbinds == list(varbinds)


def _pysnmp_value(tag: int, content: bytes, value: ber.Value) -> Any:
    numbers = {fz.INTEGER: rfc1902.Integer32, fz.COUNTER32: rfc1902.Counter32,
               fz.GAUGE32: rfc1902.Gauge32, fz.TIMETICKS: rfc1902.TimeTicks,
               fz.COUNTER64: rfc1902.Counter64}
    if tag in numbers:
        return numbers[tag](value)
    if tag == fz.OID:
        return rfc1902.ObjectIdentifier(value)
    if tag == fz.NULL:
        return rfc1902.Null("")
    if tag == fz.END_OF_MIB_VIEW:
        return rfc1905.EndOfMibView("")
    kind = {fz.OCTET_STRING: rfc1902.OctetString, fz.IP_ADDRESS: rfc1902.IpAddress,
            fz.OPAQUE: rfc1902.Opaque}[tag]
    return kind(content)


def test_seed_responses_are_byte_identical_to_pysnmp() -> None:
    """The seeds are real responses: pysnmp encodes the same bytes from the same values, and
    monitord decodes them to those values."""
    v2c: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    for message, cells in fz.seed_responses():
        decoded = ber.decode_response(message)
        assert decoded.varbinds == [(oid, tag, value) for oid, tag, _, value in cells]
        pdu = v2c.ResponsePDU()
        v2c.apiPDU.set_defaults(pdu)
        v2c.apiPDU.set_request_id(pdu, decoded.request_id)
        v2c.apiPDU.set_varbinds(pdu, [(ber.decode_oid(oid), _pysnmp_value(tag, content, value))
                                      for oid, tag, content, value in cells])
        wrapped = v2c.Message()
        v2c.apiMessage.set_defaults(wrapped)
        v2c.apiMessage.set_community(wrapped, "public")
        v2c.apiMessage.set_pdu(wrapped, pdu)
        assert bytes(encoder.encode(wrapped)) == message


def test_any_bytes_decode_or_raise_ber_error() -> None:
    count = fz.tally("snmp.any_bytes", 3000)

    @count.settings()
    @given(st.binary(max_size=1500))
    def prop(data: bytes) -> None:
        count.run(lambda: check_decode(data), data.hex)

    prop()
    print(count.summary())
    assert count.inputs >= count.target


def test_bytes_after_a_valid_header_decode_or_raise_ber_error() -> None:
    """Random bytes where the PDU's fields go: arbitrary bytes rarely get past the header."""
    count = fz.tally("snmp.header_then_bytes", 2000)
    header = b"\x02\x01\x01\x04\x06public"

    @count.settings()
    @given(st.binary(max_size=600), st.sampled_from([b"", b"\xa2", b"\xa2\x81", b"\xa2\x82\x01"]))
    def prop(body: bytes, pdu: bytes) -> None:
        inner = header + pdu + body
        data = fz.tlv(fz.SEQUENCE, inner)
        count.run(lambda: check_decode(data), data.hex)

    prop()
    print(count.summary())
    assert count.inputs >= count.target


def test_mutated_real_responses_decode_or_raise_ber_error() -> None:
    count = fz.tally("snmp.mutated_responses", 4000)
    seeds = fz.seed_responses()

    @count.settings()
    @given(st.integers(0, len(seeds) - 1), st.lists(fz.mutations(), min_size=1, max_size=4))
    def prop(seed: int, mutations: list[fz.Mutation]) -> None:
        data = seeds[seed][0]
        for mutation in mutations:
            data = fz.mutate(data, mutation)
        count.run(lambda: check_decode(data), lambda: f"{mutations} -> {data.hex()}")

    prop()
    print(count.summary())
    assert count.inputs >= count.target


def test_every_truncation_of_every_seed_is_a_ber_error() -> None:
    tried = 0
    for message, _ in fz.seed_responses():
        for cut in range(len(message)):
            try:
                ber.decode_response(message[:cut])
            except ber.BerError:
                tried += 1
            else:
                raise AssertionError(f"a response cut at byte {cut} decoded")
    print(f"fuzz snmp.truncations: {tried} inputs")
    assert tried > 20_000


def test_structured_responses_with_wrong_elements() -> None:
    """Each element right or replaced (wrong tag, lying length, 9+ octet numbers, huge OID
    arcs, deep nesting); with every element right it must decode to exactly the values."""
    count = fz.tally("snmp.structured", 3000)

    @count.settings()
    @given(fz.structured_responses())
    def prop(case: tuple[bytes, Any]) -> None:
        data, expected = case
        count.run(lambda: check_decode(data, expected), data.hex)

    prop()
    print(count.summary())
    assert count.inputs >= count.target


def test_odd_values_under_proper_tags() -> None:
    count = fz.tally("snmp.odd_values", 2000)

    @count.settings()
    @given(fz.odd_values())
    def prop(data: bytes) -> None:
        count.run(lambda: check_decode(data), data.hex)

    prop()
    print(count.summary())
    assert count.inputs >= count.target


def test_giant_lengths_are_refused_without_allocating() -> None:
    """A length of 2^31 (or 2^32 - 1, or 8 octets) in any header is refused, and decoding
    never allocates in proportion to what a length claims."""
    message, _ = fz.seed_responses()[1]
    giants = (b"\x84\x80\x00\x00\x00", b"\x84\xff\xff\xff\xff", b"\x84\x7f\xff\xff\xff",
              b"\x88" + b"\xff" * 8)
    tracemalloc.start()
    try:
        for pos, octets in fz.tlv_headers(message):
            for giant in giants:
                data = message[:pos + 1] + giant + message[pos + 1 + octets:]
                tracemalloc.reset_peak()
                try:
                    ber.decode_response(data)
                except ber.BerError:
                    pass
                else:
                    raise AssertionError(f"length {giant.hex()} at byte {pos} decoded")
                assert tracemalloc.get_traced_memory()[1] < 256 * 1024
    finally:
        tracemalloc.stop()


# ---- the walker and the poller over a scripted session -----------------------------------

MODULES = load_default_module_specs()
POLL_MODULES = [compile_module(name, MODULES[name]) for name in ("system", "if_mib")]
HARD_CAP = 3000  # requests: far more than any honest poll of the recordings needs


def snmp_check(port: int = 161, version: int = 1, deadline: float = 30.0,
               timeout: float = 1.0, retries: int = 0) -> Check:
    profile = SnmpProfile(
        name="fuzz", credentials=SnmpCredentials(version=version), interval=max(deadline, 60.0),
        timeout=timeout, retries=retries, deadline=deadline, max_repetitions=10,
        max_oids_per_request=8, port=port, modules=("system", "if_mib"))
    return Check(target="fuzz-agent", kind="snmp", address=ipaddress.ip_address("127.0.0.1"),
                 province="p", kabupaten="k", site="s", role="village-ap", profile=profile)


# What a scripted answer is: (kind, a, b, random varbinds)
Action = tuple[str, int, int, list[ber.Varbind]]
ACTION_KINDS = ("honest", "end", "nosuch", "same", "odd_loop", "backwards", "shuffled", "fewer",
                "extra", "empty", "error", "random", "raise")


def random_varbinds() -> st.SearchStrategy[list[ber.Varbind]]:
    """Varbinds of any shape a decoder can hand over: numbers within 9 octets."""
    oid = st.one_of(st.binary(max_size=14), st.sampled_from(
        [c for m in POLL_MODULES for t in m.tables for c in t.primary_columns]).flatmap(
            lambda column: st.binary(max_size=4).map(lambda s: column + s)))
    value: st.SearchStrategy[ber.Value] = st.one_of(
        st.none(), st.integers(-(2**71), 2**72 - 1), st.binary(max_size=20), st.text(max_size=12))
    return st.lists(st.tuples(oid, st.sampled_from(fz.SNMP_TAGS), value), max_size=12)


def actions() -> st.SearchStrategy[Action]:
    return st.tuples(st.sampled_from(ACTION_KINDS), st.integers(0, 2**31 - 1),
                     st.integers(-5, 2**31 - 1), random_varbinds())


class ScriptedSession:
    """An SnmpSession answering from a recording, except where the script says otherwise;
    once the script runs out it answers honestly, so an honest walk must then finish."""

    def __init__(self, agent: fz.RecordingAgent, script: list[Action], version: int) -> None:
        self.version = version
        self.agent = agent
        self.script = list(script)
        self.requests = 0
        self.dishonest = 0

    async def get(self, oids: list[bytes], stats: RequestStats) -> ber.Response:
        return self._answer(fz.GET, oids, 0, stats)

    async def get_next(self, oids: list[bytes], stats: RequestStats) -> ber.Response:
        return self._answer(fz.GET_NEXT, oids, 0, stats)

    async def get_bulk(self, oids: list[bytes], max_repetitions: int,
                       stats: RequestStats) -> ber.Response:
        return self._answer(fz.GET_BULK, oids, max_repetitions, stats)

    def _answer(self, pdu: int, oids: list[bytes], repetitions: int,
                stats: RequestStats) -> ber.Response:
        stats.requests += 1
        self.requests += 1
        assert self.requests <= HARD_CAP, "the poll did not end"
        asked = [_arcs_of(o) for o in oids]
        honest = [(fz.oid_content(a), tag, value)
                  for a, tag, _, value in self.agent.answer_cells(pdu, asked, repetitions)]
        kind, a, b, randoms = self.script.pop(0) if self.script else ("honest", 0, 0, [])
        if kind != "honest":
            self.dishonest += 1
        status, index, varbinds = scripted_answer(kind, a, b, randoms, oids, honest)
        return ber.Response(0, status, index, varbinds)


def scripted_answer(kind: str, a: int, b: int, randoms: list[ber.Varbind], oids: list[bytes],
                    honest: list[ber.Varbind]) -> tuple[int, int, list[ber.Varbind]]:
    """(error-status, error-index, varbinds) of one scripted answer to a request for `oids`."""
    if kind == "raise":  # what the transport or pysnmp raise below the walker
        errors: list[Exception] = [ber.BerError("fuzz"), SnmpTimeoutError("fuzz"),
                                   SnmpV3Error("fuzz"), OSError(101, "Network unreachable")]
        raise errors[a % len(errors)]
    if kind == "error":
        return (a % 20 if b % 2 else a), b, (honest if a % 3 else [])
    cut = a % max(1, len(honest))
    number: ber.Value = a
    answers: dict[str, Callable[[], list[ber.Varbind]]] = {
        "honest": lambda: honest,
        "end": lambda: [(o, ber.END_OF_MIB_VIEW, None) for o in oids],
        "nosuch": lambda: [(o, (ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE)[a % 2], None)
                           for o in oids],
        # an OID that does not increase: the very OIDs asked, maybe several times
        "same": lambda: [(o, ber.INTEGER, number) for o in oids] * (1 + b % 3),
        # rows whose index ends inside a sub-identifier, twice
        "odd_loop": lambda: [(o + bytes((0x80 | a % 128,)), ber.INTEGER, number)
                             for o in oids] * 2,
        "backwards": lambda: [(o[:-1] + bytes(((o[-1] - 1) % 128,)), ber.COUNTER32, number)
                              for o in oids if o],
        "shuffled": lambda: honest[cut:] + honest[:cut],
        "fewer": lambda: honest[:cut],
        "extra": lambda: honest + randoms,
        "empty": list,
        "random": lambda: randoms * (1 + b % 2),  # sometimes twice over: a loop on odd OIDs
    }
    return 0, 0, answers[kind]()


def _arcs_of(oid: bytes) -> fz.Arcs:
    return tuple(int(a) for a in ber.decode_oid(oid).split("."))


AGENTS = [fz.RecordingAgent(r) for r in fz.recordings()]


def check_poll(agent: fz.RecordingAgent, script: list[Action], version: int) -> None:
    session = ScriptedSession(agent, script, version)
    poller = DevicePoller(snmp_check(version=version), POLL_MODULES, session)
    result = asyncio.run(poller.poll())
    assert isinstance(result, SnmpPollResult)
    if result.success:
        assert result.families or result.varbinds == 0
    else:
        assert result.error, result
        assert result.error_reason in POLL_ERROR_REASONS, result
    if session.dishonest == 0:
        assert result.success, result.error


def test_polls_end_with_a_result_whatever_the_agent_answers() -> None:
    count = fz.tally("snmp.scripted_polls", 600)

    @count.settings()
    @given(st.integers(0, len(AGENTS) - 1), st.lists(actions(), max_size=12),
           st.sampled_from([0, 1]))
    def prop(agent: int, script: list[Action], version: int) -> None:
        count.run(lambda: check_poll(AGENTS[agent], script, version),
                  lambda: f"agent {agent} v{version} {script}")

    prop()
    print(count.summary())
    assert count.inputs >= count.target


def _walk(*script: str, a: int = 0) -> WalkError:
    """Walk ifTable's ifDescr of the MikroTik recording, answered as the script says."""
    session = ScriptedSession(AGENTS[7], [(kind, a, 0, []) for kind in script], version=1)
    column = ber.encode_oid("1.3.6.1.2.1.2.2.1.2")
    try:
        asyncio.run(walk_columns(session, [column], 10, 8, RequestStats(), math.inf))
    except WalkError as error:
        return error
    raise AssertionError(f"the walk answered {script} ended without an error")


def test_named_wrong_answers_end_the_walk_with_a_clear_error() -> None:
    # The agent answers the last row again instead of moving on (an OID that does not increase).
    assert "twice (OID loop)" in str(_walk("honest", "same"))
    assert "returned no varbinds" in str(_walk("empty"))
    assert "agent answered genErr" in str(_walk("error", a=5))
    assert "malformed response: fuzz" in str(_walk("honest", "raise"))


def test_end_of_mib_and_no_such_object_everywhere_end_the_walk_empty() -> None:
    for kind in ("end", "nosuch"):
        session = ScriptedSession(AGENTS[7], [(kind, 0, 0, [])] * 5, version=1)
        columns = [ber.encode_oid("1.3.6.1.2.1.2.2.1.2"), ber.encode_oid("1.3.6.1.2.1.2.2.1.10")]
        tables = asyncio.run(walk_columns(session, columns, 10, 8, RequestStats(), math.inf))
        assert tables == {c: {} for c in columns}
        assert session.requests == 1


# ---- regression tests: one per crash the fuzzing found ------------------------------------


class DecodingSession(ScriptedSession):
    """Answers honestly from a recording but as bytes, tampered with and decoded like the
    transport does: the poller sees what decode_response makes of them."""

    def __init__(self, agent: fz.RecordingAgent, tamper: Callable[[bytes], bytes]) -> None:
        super().__init__(agent, [], version=1)
        self.tamper = tamper

    def _answer(self, pdu: int, oids: list[bytes], repetitions: int,
                stats: RequestStats) -> ber.Response:
        stats.requests += 1
        cells = self.agent.answer_cells(pdu, [_arcs_of(o) for o in oids], repetitions)
        binds = [fz.varbind(oid, fz.tlv(tag, content)) for oid, tag, content, _ in cells]
        return ber.decode_response(self.tamper(fz.response(1, binds)))


def _poll_tampered(tamper: Callable[[bytes], bytes]) -> SnmpPollResult:
    poller = DevicePoller(snmp_check(), POLL_MODULES, DecodingSession(AGENTS[7], tamper))
    return asyncio.run(poller.poll())


def test_peek_request_id_of_a_message_ending_at_the_pdu_tag_is_none() -> None:
    """Crash 1 (IndexError in peek_request_id, which runs in the socket's reader callback):
    a datagram that ends one byte after the community."""
    assert ber.peek_request_id(bytes.fromhex("300c02010104067075626c6963a2")) is None
    assert ber.peek_request_id(bytes.fromhex("300c02010104067075626c6963")) is None


def _with_counter(octets: bytes) -> Callable[[bytes], bytes]:
    """Replace every ifHCInOctets value (a Counter64) with `octets` as its content."""
    column = fz.oid_content((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6))

    def tamper(message: bytes) -> bytes:
        decoded = ber.decode_response(message)
        binds = [fz.varbind(oid, fz.tlv(ber.COUNTER64, octets) if oid.startswith(column)
                            else fz.tlv(tag, _content(tag, value)))
                 for oid, tag, value in decoded.varbinds]
        return fz.response(decoded.request_id, binds)
    return tamper


def _content(tag: int, value: ber.Value) -> bytes:
    if isinstance(value, int):
        return fz.signed_content(value) if tag == ber.INTEGER else fz.unsigned_content(value)
    if isinstance(value, str):
        return fz.oid_content(tuple(int(a) for a in value.split(".")))
    return value or b""


def test_a_counter_of_thousands_of_octets_is_malformed_not_a_crash() -> None:
    """Crash 2: a number of 2,000 octets decoded to an int that the poller could neither
    print (ValueError: more than 4,300 digits) nor scale (OverflowError)."""
    result = _poll_tampered(_with_counter(b"\x7f" + b"\xff" * 2000))
    assert (result.success, result.error_reason) == (False, "malformed")
    assert "Counter64 of 2001 octets" in (result.error or "")


def test_a_counter64_in_nine_octets_still_decodes() -> None:
    """The bound of crash 2's fix: 2^64 - 1 needs 9 octets (a leading zero) and must pass."""
    result = _poll_tampered(_with_counter(b"\x00" + b"\xff" * 8))
    assert result.success, result.error
    assert f"}} {2**64 - 1}\n" in result.families["monitord_if_in_octets_total"]


def test_error_status_of_thousands_of_octets_is_malformed() -> None:
    """Crash 2 in the header: the walker prints error-status and -index in its message."""
    def tamper(message: bytes) -> bytes:
        pdu = (fz.tlv(fz.INTEGER, b"\x01") + fz.tlv(fz.INTEGER, b"\x7f" + b"\xff" * 2000)
               + fz.tlv(fz.INTEGER, b"\x01") + fz.tlv(fz.SEQUENCE, b""))
        return fz.tlv(fz.SEQUENCE, fz.tlv(fz.INTEGER, b"\x01") + fz.tlv(fz.OCTET_STRING, b"public")
                      + fz.tlv(fz.RESPONSE, pdu))

    result = _poll_tampered(tamper)
    assert (result.success, result.error_reason) == (False, "malformed")
    assert "error-status" in (result.error or "")


def test_an_oid_value_with_a_huge_sub_identifier_is_malformed_and_quick() -> None:
    """Crash 3: an OID value whose sub-identifier has thousands of digits could not be
    printed (ValueError), and decoding 60,000 continuation octets took seconds (quadratic)."""
    for content in (b"\x2b" + b"\xff" * 60_000 + b"\x7f", b"\x2b" + b"\x90\x80\x80\x80\x00"):
        with fz.cpu_seconds() as elapsed, pytest.raises(ber.BerError, match="sub-identifier"):
            ber.decode_oid(content)
        assert elapsed() < 0.1
    assert ber.decode_oid(b"\x2b\x8f\xff\xff\xff\x7f") == "1.3.4294967295"  # the largest


def test_a_looping_agent_with_an_unfinished_oid_ends_the_walk_with_a_walk_error() -> None:
    """Crash 4: the walker's "returned X twice" message decoded the agent's OID, and a row
    index ending inside a sub-identifier raised BerError out of poll()."""
    error = _walk("odd_loop", a=5)
    assert error.reason == "malformed"
    assert "invalid OID" in str(error)


# ---- end to end: the real transport against a mutating UDP agent on 127.0.0.1 ------------

# What the agent does with one request: answer honestly, mutate the answer, drop it, answer
# for another request-id, send junk first, send it twice, send an empty datagram, ...
Reply = tuple[str, list[fz.Mutation]]
REPLY_KINDS = ("honest", "mutated", "mutated", "mutated", "drop", "wrong_id", "junk_first",
               "twice", "empty", "request_back")


class MutatingAgent(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.agent = AGENTS[0]
        self.plan: list[Reply] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.served = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self.transport is not None
        self.served += 1
        request = fz.parse_request(data)
        honest = fz.response(request.request_id, self.agent.answer(request),
                             community=request.community, version=request.version)
        kind, mutations = self.plan.pop(0) if self.plan else ("honest", [])
        sends: list[bytes] = [honest]
        if kind == "mutated":
            mutated = honest
            for mutation in mutations:
                mutated = fz.mutate(mutated, mutation)
            sends = [mutated]
        elif kind == "drop":
            sends = []
        elif kind == "wrong_id":
            sends = [fz.response(request.request_id + 1, self.agent.answer(request))]
        elif kind == "junk_first":
            sends = [bytes(m[3]) for m in mutations] + [honest]
        elif kind == "twice":
            sends = [honest, honest]
        elif kind == "empty":
            sends = [b""]
        elif kind == "request_back":  # an echo of the request: right id, not a Response
            sends = [data]
        for datagram in sends:
            self.transport.sendto(datagram, addr)


def test_real_poller_against_a_mutating_agent_on_loopback() -> None:
    count = fz.tally("snmp.udp_polls", 200)
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        loop_errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: loop_errors.append(context))
        agent = MutatingAgent()
        server, _ = runner.run(loop.create_datagram_endpoint(
            lambda: agent, local_addr=("127.0.0.1", 0)))
        port = server.get_extra_info("sockname")[1]
        transport = UdpTransport()
        check = snmp_check(port=port, deadline=2.0, timeout=0.03, retries=1)

        def poll() -> SnmpPollResult:
            session = CommunitySession(transport, Endpoint(check.address, port, 0.03, 1), 1,
                                       b"public")
            return runner.run(DevicePoller(check, POLL_MODULES, session).poll())

        def one_poll(recording: int, plan: list[Reply]) -> None:
            agent.agent = AGENTS[recording]
            agent.plan = list(plan)
            result = poll()
            assert isinstance(result, SnmpPollResult)
            if not result.success:
                assert result.error_reason in POLL_ERROR_REASONS, result
            if not any(kind != "honest" for kind, _ in plan):
                assert result.success, result.error
            assert not loop_errors, loop_errors

        reply = st.tuples(st.sampled_from(REPLY_KINDS), st.lists(fz.mutations(), min_size=1,
                                                                 max_size=3))

        @count.settings()
        @given(st.integers(0, len(AGENTS) - 1), st.lists(reply, max_size=6))
        def prop(recording: int, plan: list[Reply]) -> None:
            count.run(lambda: one_poll(recording, plan), lambda: f"{recording} {plan}")

        try:
            prop()
            # The same transport (and socket) afterwards: a good agent is polled right.
            agent.agent, agent.plan = AGENTS[7], []
            good = poll()
            assert good.success, good.error
            uptime = fz.recordings()[7].get("1.3.6.1.2.1.1.3.0")
            assert uptime is not None
            assert good.uptime_ticks == uptime.value
            assert "monitord_if_in_octets_total" in good.families
            counters = transport.counter_values()
            print(count.summary(), counters)
            assert counters["malformed"] > 0  # the fuzzing reached the decoder's refusals ...
            assert counters["unmatched"] > 0  # ... and the transport's request-id matching
        finally:
            transport.close()
            server.close()
    assert count.inputs >= count.target
