"""monitord's own BER codec, checked against pysnmp/pyasn1 as an independent implementation:
the requests it builds are byte-identical to pysnmp's, and it decodes what pysnmp encodes,
including the edge values (Counter64 near 2^64, TimeTicks near 2^32, negative Integer32,
empty strings, exceptions). Malformed input of any kind raises BerError, never anything else.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from pyasn1.codec.ber import encoder
from pysnmp.proto import api, rfc1902, rfc1905

from monitord.snmp import ber

V2C: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
V1: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]


@pytest.mark.parametrize("oid", ["1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.41112.1.4.5.1.5.1",
                                 "1.3.6.1.2.1.4.31.1.1.31.2", "0.0", "2.999.4294967295.0",
                                 "1.2.840.10036.3.1.2.1.3.5"])
def test_oid_round_trip_matches_pyasn1(oid: str) -> None:
    encoded = bytes(encoder.encode(rfc1902.ObjectName(oid)))
    assert ber.encode_oid(oid) == encoded[2:]  # pyasn1's TLV minus tag and short length
    assert ber.decode_oid(ber.encode_oid(oid)) == oid


@pytest.mark.parametrize("bad", ["", "1", "3.1", "1.40", "1.3.-6", "1.3.x"])
def test_invalid_oid_text_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="OID"):
        ber.encode_oid(bad)


def _pysnmp_request(module: Any, pdu_class: Any, request_id: int, oids: list[str],
                    bulk: tuple[int, int] | None = None) -> bytes:
    pdu = pdu_class()
    module.apiPDU.set_defaults(pdu)
    module.apiPDU.set_request_id(pdu, request_id)
    if bulk is not None:
        module.apiBulkPDU.set_non_repeaters(pdu, bulk[0])
        module.apiBulkPDU.set_max_repetitions(pdu, bulk[1])
    module.apiPDU.set_varbinds(pdu, [(o, module.Null("")) for o in oids])
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, "rahasia")
    module.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


OIDS = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.2.2.1.10"]


@pytest.mark.parametrize("request_id", [1, 127, 128, 65535, 2**31 - 1])
def test_requests_are_byte_identical_to_pysnmp(request_id: int) -> None:
    varbinds = ber.encode_varbind_list([ber.encode_oid(o) for o in OIDS])
    ours_get = ber.encode_request(1, b"rahasia", ber.GET, request_id, varbinds)
    assert ours_get == _pysnmp_request(V2C, V2C.GetRequestPDU, request_id, OIDS)
    ours_next = ber.encode_request(0, b"rahasia", ber.GET_NEXT, request_id, varbinds)
    assert ours_next == _pysnmp_request(V1, V1.GetNextRequestPDU, request_id, OIDS)
    ours_bulk = ber.encode_request(1, b"rahasia", ber.GET_BULK, request_id, varbinds, 0, 25)
    assert ours_bulk == _pysnmp_request(V2C, V2C.GetBulkRequestPDU, request_id, OIDS, (0, 25))


# (oid, pysnmp value, expected tag, expected decoded value)
RESPONSE_VALUES: list[tuple[str, Any, int, ber.Value]] = [
    ("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(4215722485), ber.TIMETICKS, 4215722485),
    ("1.3.6.1.2.1.1.1.0", rfc1902.OctetString(b"Cisco IOS\r\n(tm)"), ber.OCTET_STRING,
     b"Cisco IOS\r\n(tm)"),
    ("1.3.6.1.2.1.1.5.0", rfc1902.OctetString(b""), ber.OCTET_STRING, b""),
    ("1.3.6.1.2.1.1.2.0", rfc1902.ObjectIdentifier("1.3.6.1.4.1.9.1.359"), ber.OBJECT_IDENTIFIER,
     "1.3.6.1.4.1.9.1.359"),
    ("1.3.6.1.4.1.41112.1.4.5.1.5.1", rfc1902.Integer32(-70), ber.INTEGER, -70),
    ("1.3.6.1.2.1.4.31.1.1.31.2", rfc1902.Counter64(18446744073709547548), ber.COUNTER64,
     18446744073709547548),
    ("1.3.6.1.2.1.2.2.1.10.1", rfc1902.Counter32(4294967295), ber.COUNTER32, 4294967295),
    ("1.3.6.1.2.1.2.2.1.5.1", rfc1902.Gauge32(4294967295), ber.GAUGE32, 4294967295),
    ("1.3.6.1.2.1.4.20.1.1.10.0.0.1", rfc1902.IpAddress("10.0.0.1"), ber.IP_ADDRESS,
     b"\x0a\x00\x00\x01"),
    ("1.3.6.1.2.1.99.0", rfc1905.NoSuchObject(""), ber.NO_SUCH_OBJECT, None),
    ("1.3.6.1.2.1.99.1", rfc1905.NoSuchInstance(""), ber.NO_SUCH_INSTANCE, None),
    ("1.3.6.1.2.1.99.2", rfc1905.EndOfMibView(""), ber.END_OF_MIB_VIEW, None),
]


def _pysnmp_response(request_id: int, varbinds: list[tuple[str, Any]],
                     error_status: int = 0, error_index: int = 0) -> bytes:
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_error_status(pdu, error_status)
    V2C.apiPDU.set_error_index(pdu, error_index)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    message = V2C.Message()
    V2C.apiMessage.set_defaults(message)
    V2C.apiMessage.set_community(message, "public")
    V2C.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def test_response_values_decode_like_pysnmp_encodes_them() -> None:
    data = _pysnmp_response(424242, [(oid, value) for oid, value, _, _ in RESPONSE_VALUES])
    response = ber.decode_response(data)
    assert (response.request_id, response.error_status, response.error_index) == (424242, 0, 0)
    assert ber.peek_request_id(data) == 424242
    decoded = [(ber.decode_oid(oid), tag, value) for oid, tag, value in response.varbinds]
    assert decoded == [(oid, tag, value) for oid, _, tag, value in RESPONSE_VALUES]


def test_a_large_response_with_long_form_lengths_decodes() -> None:
    rows = [(f"1.3.6.1.2.1.31.1.1.1.6.{i}", rfc1902.Counter64(2**63 + i)) for i in range(1, 300)]
    response = ber.decode_response(_pysnmp_response(7, rows))
    assert len(response.varbinds) == 299
    assert response.varbinds[-1][2] == 2**63 + 299


def test_error_status_is_reported_by_name() -> None:
    data = _pysnmp_response(9, [("1.3.6.1.2.1.1.3.0", rfc1902.Null(""))], error_status=1,
                            error_index=1)
    response = ber.decode_response(data)
    assert (response.error_status, response.error_index, response.error_name()) == (1, 1, "tooBig")


def test_every_truncation_of_a_response_is_a_ber_error() -> None:
    data = _pysnmp_response(5, [(oid, value) for oid, value, _, _ in RESPONSE_VALUES])
    for cut in range(len(data)):
        with pytest.raises(ber.BerError):
            ber.decode_response(data[:cut])


def test_random_corruption_only_ever_raises_ber_error() -> None:
    """Bounded fuzz: 3,000 corrupted copies of a valid response (fixed seed). Each decodes or
    raises BerError; anything else would crash a poll."""
    data = bytearray(_pysnmp_response(5, [(oid, value) for oid, value, _, _ in RESPONSE_VALUES]))
    rng = random.Random(20261122)  # noqa: S311 (fuzzing, not cryptography)
    decoded = failed = 0
    for _ in range(3000):
        corrupt = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        try:
            ber.decode_response(bytes(corrupt))
            decoded += 1
        except ber.BerError:
            failed += 1
    assert decoded + failed == 3000
    assert failed > 0


def test_a_request_is_not_taken_for_a_response() -> None:
    varbinds = ber.encode_varbind_list([ber.encode_oid("1.3.6.1.2.1.1.3.0")])
    request = ber.encode_request(1, b"public", ber.GET, 3, varbinds)
    with pytest.raises(ber.BerError, match="expected a Response PDU"):
        ber.decode_response(request)
