"""SnmpSeries: a device's lines are rendered when its poll result comes in, and a scrape joins
them under each family's header. The expected text is written out here line by line."""

from __future__ import annotations

import ipaddress

from prometheus_client.parser import text_string_to_metric_families

from monitord.metrics.snmp_series import SnmpSeries
from monitord.model import Check, Secret, SnmpCredentials, SnmpPollResult, SnmpProfile
from monitord.snmp.modules import Metric, SnmpModule, Table

DEVICE_INFO = Metric("monitord_device_info", "What the device says it is.", "info", ())
IN_OCTETS = Metric("monitord_if_in_octets_total", "Octets received.", "counter", ())
MODULES = {"test": SnmpModule("test", "a test module", (DEVICE_INFO,),
                              (Table("interfaces", (), (), 3600.0, (IN_OCTETS,)),))}
PROFILE = SnmpProfile(name="village", credentials=SnmpCredentials(1, Secret("public", "inline")),
                      interval=60.0, timeout=2.0, retries=1, deadline=10.0, max_repetitions=25,
                      max_oids_per_request=10, modules=("test",))
T0 = 1_700_000_000.25


def device(target: str, address: str) -> Check:
    return Check(target=target, kind="snmp", address=ipaddress.ip_address(address),
                 province="sulbar", kabupaten="mamuju", site=f"desa-{target}", role="village-ap",
                 profile=PROFILE)


def labels(check: Check) -> str:
    return (f'province="sulbar",kabupaten="mamuju",site="desa-{check.target}",role="village-ap",'
            f'target="{check.target}",address="{check.address}"')


def families(check: Check, octets: int) -> dict[str, str]:
    """As the poller renders them."""
    return {"monitord_device_info": f'monitord_device_info{{{labels(check)},sys_name="ap"}} 1\n',
            "monitord_if_in_octets_total":
                f'monitord_if_in_octets_total{{{labels(check)},if_index="1"}} {octets}\n'
                f'monitord_if_in_octets_total{{{labels(check)},if_index="2"}} 7\n'}


def header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def test_the_rendered_text_is_the_exposition_of_the_polls() -> None:
    a, b, idle = device("a", "192.0.2.1"), device("b", "192.0.2.2"), device("idle", "192.0.2.3")
    series = SnmpSeries()
    series.set_checks([a, b, idle], MODULES)
    series.observe(SnmpPollResult(a, T0, 0.5, requests=3, retries=1, varbinds=12,
                                  families=families(a, 100), uptime_ticks=360_000,
                                  value_errors={"wrong_type": 2}))
    series.observe(SnmpPollResult(a, T0 + 60, 0.25, requests=3, varbinds=12,
                                  families=families(a, 250), uptime_ticks=366_000))
    series.observe(SnmpPollResult(b, T0, 0.5, requests=2, varbinds=3, families=families(b, 5),
                                  uptime_ticks=100))
    series.observe(SnmpPollResult(b, T0 + 60, 4.0, error="no response", error_reason="timeout",
                                  requests=2, retries=2, timeouts=1))
    la, lb, li = labels(a), labels(b), labels(idle)
    expected = (
        header("monitord_snmp_up", "gauge", "Whether the last SNMP poll completed (1) or failed (0).")
        + f"monitord_snmp_up{{{la}}} 1\nmonitord_snmp_up{{{lb}}} 0\n"
        + header("monitord_snmp_poll_duration_seconds", "gauge", "Wall time of the last SNMP poll.")
        + f"monitord_snmp_poll_duration_seconds{{{la}}} 0.25\n"
        + f"monitord_snmp_poll_duration_seconds{{{lb}}} 4\n"
        + header("monitord_snmp_last_poll_timestamp_seconds", "gauge",
                 "When the last SNMP poll started.")
        + f"monitord_snmp_last_poll_timestamp_seconds{{{la}}} 1700000060.25\n"
        + f"monitord_snmp_last_poll_timestamp_seconds{{{lb}}} 1700000060.25\n"
        + header("monitord_snmp_poll_varbinds", "gauge",
                 "Varbinds returned by the last complete SNMP poll.")
        + f"monitord_snmp_poll_varbinds{{{la}}} 12\nmonitord_snmp_poll_varbinds{{{lb}}} 3\n"
        + header("monitord_snmp_polls_total", "counter", "SNMP polls finished, complete or not.")
        + f"monitord_snmp_polls_total{{{la}}} 2\nmonitord_snmp_polls_total{{{lb}}} 2\n"
        + f"monitord_snmp_polls_total{{{li}}} 0\n"
        + header("monitord_snmp_varbinds_total", "counter",
                 "Varbinds returned by complete SNMP polls.")
        + f"monitord_snmp_varbinds_total{{{la}}} 24\nmonitord_snmp_varbinds_total{{{lb}}} 3\n"
        + f"monitord_snmp_varbinds_total{{{li}}} 0\n"
        + header("monitord_snmp_requests_total", "counter",
                 "SNMP requests sent (a request retried counts once).")
        + f"monitord_snmp_requests_total{{{la}}} 6\nmonitord_snmp_requests_total{{{lb}}} 4\n"
        + f"monitord_snmp_requests_total{{{li}}} 0\n"
        + header("monitord_snmp_retries_total", "counter", "SNMP request retries after a timeout.")
        + f"monitord_snmp_retries_total{{{la}}} 1\nmonitord_snmp_retries_total{{{lb}}} 2\n"
        + f"monitord_snmp_retries_total{{{li}}} 0\n"
        + header("monitord_snmp_timeouts_total", "counter",
                 "SNMP requests that got no response after every retry.")
        + f"monitord_snmp_timeouts_total{{{la}}} 0\nmonitord_snmp_timeouts_total{{{lb}}} 1\n"
        + f"monitord_snmp_timeouts_total{{{li}}} 0\n"
        + header("monitord_snmp_errors_total", "counter",
                 "SNMP poll failures and value problems, by reason.")
        + f'monitord_snmp_errors_total{{{la},reason="wrong_type"}} 2\n'
        + f'monitord_snmp_errors_total{{{lb},reason="timeout"}} 1\n'
        + header("monitord_snmp_target_info", "gauge",
                 "SNMP settings per device: profile, version, security level, modules.")
        + "".join(f'monitord_snmp_target_info{{{lx},profile="village",version="2c",'
                  f'security_level="",modules="test"}} 1\n' for lx in (la, lb, li))
        + header("monitord_device_uptime_seconds", "gauge",
                 "Time since the device's SNMP agent started (sysUpTime, counting 497-day wraps).")
        + f"monitord_device_uptime_seconds{{{la}}} 3660\n"  # b's last poll failed: none
        + header("monitord_device_boot_time_seconds", "gauge",
                 "When the device's SNMP agent started, estimated from sysUpTime "
                 "(seconds since epoch).")
        + f"monitord_device_boot_time_seconds{{{la}}} 1699996400\n"
        + header("monitord_device_reboots_total", "counter",
                 "Agent restarts (sysUpTime going backwards, not a wrap) seen since monitord started.")
        + f"monitord_device_reboots_total{{{la}}} 0\nmonitord_device_reboots_total{{{lb}}} 0\n"
        # module families: b's failed poll drops its samples; the idle device has none yet
        + header("monitord_device_info", "gauge", "What the device says it is.")
        + f'monitord_device_info{{{la},sys_name="ap"}} 1\n'
        + header("monitord_if_in_octets_total", "counter", "Octets received.")
        + f'monitord_if_in_octets_total{{{la},if_index="1"}} 250\n'
        + f'monitord_if_in_octets_total{{{la},if_index="2"}} 7\n'
    )
    text = series.render()
    assert text == expected
    assert len(list(text_string_to_metric_families(text))) == 16


def test_no_devices_no_families() -> None:
    series = SnmpSeries()
    series.set_checks([], MODULES)
    assert series.render_chunks() == []


def test_a_scrape_in_progress_keeps_what_it_took() -> None:
    a = device("a", "192.0.2.1")
    series = SnmpSeries()
    series.set_checks([a], MODULES)
    series.observe(SnmpPollResult(a, T0, 0.5, requests=3, varbinds=3, families=families(a, 100)))
    chunks = series.render_chunks()
    taken = b"".join(chunks)
    series.observe(SnmpPollResult(a, T0 + 60, 4.0, error="no response", error_reason="timeout"))
    assert b"".join(chunks) == taken
    assert b'if_index="1"} 100\n' in taken
    assert b"monitord_if_in_octets_total{" not in series.render().encode()
