"""TargetSeries, the per-target metrics sink: what it counts, how it renders, and what a reload
keeps. The rendering is hand-written (not prometheus-client's), so every test parses it back
with prometheus-client's parser, and one hands it to promtool, the format's reference checker.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import shutil
import subprocess
from collections.abc import Sequence

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitord.metrics.targets import (
    RTT_BUCKETS,
    TargetSeries,
    escape_label_value,
    format_value,
)
from monitord.model import Check, Coordinates, IcmpProfile, ProbeResult

LAN = IcmpProfile(name="lan", interval=10.0, count=3, packet_interval=0.2, timeout=1.0, size=56)

# Per-target gauges: no sample until the first probe has set them.
GAUGES = (
    "monitord_probe_success",
    "monitord_icmp_loss_ratio",
    "monitord_probe_last_duration_seconds",
    "monitord_probe_last_timestamp_seconds",
    "monitord_icmp_jitter_seconds",
    "monitord_icmp_rtt_last_seconds",
)
COUNTERS = (
    "monitord_icmp_requests_total",
    "monitord_icmp_responses_total",
    "monitord_probes_per_target_total",
    "monitord_probe_errors_total",
)
HISTOGRAM = "monitord_icmp_rtt_seconds"


def make_check(target: str, address: str = "192.0.2.1", *, site: str = "site-a",
               name: str = "", labels: tuple[tuple[str, str], ...] = (),
               parent: str | None = None, kind: str = "icmp",
               coordinates: Coordinates | None = None) -> Check:
    return Check(target=target, kind=kind, address=ipaddress.ip_address(address), province="sulbar",
                 kabupaten="mamuju", site=site, role="core", profile=LAN, parent=parent,
                 labels=labels, name=name, coordinates=coordinates)


def result(check: Check, sent: int, rtts: Sequence[float], *, error: str | None = None,
           started: float = 1_700_000_000.5, duration: float = 0.45) -> ProbeResult:
    return ProbeResult(check=check, started=started, duration=duration, sent=sent,
                       received=len(rtts), rtts=tuple(rtts), error=error)


def parse(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def find(samples: list[Sample], name: str, target: str, **labels: str) -> list[float]:
    return [s.value for s in samples if s.name == name and s.labels.get("target") == target
            and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples: list[Sample], name: str, target: str, **labels: str) -> float:
    """The one sample of `name` for `target`; fails if there is none or more than one."""
    found = find(samples, name, target, **labels)
    assert len(found) == 1, f"{name}{{target={target!r}, {labels}}}: {found}"
    return found[0]


def bucket_counts(samples: list[Sample], target: str) -> dict[str, float]:
    return {s.labels["le"]: s.value for s in samples
            if s.name == f"{HISTOGRAM}_bucket" and s.labels["target"] == target}


# --- before any probe -----------------------------------------------------------------------


def test_render_before_any_probe_has_counters_and_info_but_no_gauges() -> None:
    series = TargetSeries()
    series.set_checks([make_check("core-01", parent="uplink", name="Core router",
                                  labels=(("service", "backbone"),)),
                       make_check("core-02", "2001:db8::2")])
    text = series.render()
    samples = parse(text)

    for target in ("core-01", "core-02"):
        for gauge in GAUGES:
            assert find(samples, gauge, target) == [], gauge
        for counter in COUNTERS:
            assert value(samples, counter, target) == 0, counter
        buckets = bucket_counts(samples, target)
        assert len(buckets) == len(RTT_BUCKETS) + 1
        assert set(buckets.values()) == {0}
        assert value(samples, f"{HISTOGRAM}_count", target) == 0
        assert value(samples, f"{HISTOGRAM}_sum", target) == 0
        assert value(samples, "monitord_target_info", target) == 1
    # NaN is never written out, not even for the gauges' HELP/TYPE-only families.
    assert "NaN" not in text
    for gauge in GAUGES:
        assert f"# TYPE {gauge} gauge\n" in text
        assert f"\n{gauge}{{" not in text

    info = next(s.labels for s in samples
                if s.name == "monitord_target_info" and s.labels["target"] == "core-01")
    assert info == {"province": "sulbar", "kabupaten": "mamuju", "site": "site-a", "role": "core",
                    "target": "core-01", "address": "192.0.2.1", "kind": "icmp", "parent": "uplink",
                    "profile": "lan", "name": "Core router", "service": "backbone"}
    v6 = next(s.labels for s in samples
              if s.name == "monitord_target_info" and s.labels["target"] == "core-02")
    assert v6["address"] == "2001:db8::2"
    assert v6["parent"] == ""
    assert "latitude" not in v6


def test_target_info_carries_coordinates() -> None:
    series = TargetSeries()
    series.set_checks([make_check("tower", coordinates=Coordinates(-2.6748, 118.8886))])
    info = next(s.labels for s in parse(series.render()) if s.name == "monitord_target_info")
    assert float(info["latitude"]) == -2.6748
    assert float(info["longitude"]) == 118.8886


def test_non_icmp_checks_get_no_icmp_series() -> None:
    series = TargetSeries()
    series.set_checks([make_check("switch", kind="snmp"), make_check("router")])
    samples = parse(series.render())
    assert {s.labels["target"] for s in samples} == {"router"}
    assert series.snapshot("switch") is None


# --- after probes ---------------------------------------------------------------------------


def test_totals_histogram_and_last_probe_gauges_follow_the_results() -> None:
    check = make_check("core-01")
    series = TargetSeries()
    series.set_checks([check])
    results = [
        # RTTs on bucket bounds count in that bucket (le is "less than or equal").
        result(check, 3, [0.001, 0.0007, 0.0012]),
        result(check, 4, [0.6, 5.0]),  # half lost; 5.0 is the last finite bound
        result(check, 3, [7.5]),  # beyond every finite bound: only +Inf
        result(check, 2, [0.010, 0.030]),
        result(check, 3, [0.010, 0.030, 0.020], started=1_700_000_030.25, duration=0.52),
    ]
    for r in results:
        series.observe(r)
    samples = parse(series.render())
    all_rtts = [rtt for r in results for rtt in r.rtts]

    sent = sum(r.sent for r in results)
    received = sum(r.received for r in results)
    assert value(samples, "monitord_icmp_requests_total", "core-01") == sent == 15
    assert value(samples, "monitord_icmp_responses_total", "core-01") == received == 11
    assert value(samples, "monitord_probes_per_target_total", "core-01") == len(results)
    assert value(samples, "monitord_probe_errors_total", "core-01") == 0

    buckets = bucket_counts(samples, "core-01")
    assert list(buckets) == [format_value(b) for b in RTT_BUCKETS] + ["+Inf"]
    for le, count in buckets.items():
        bound = float(le)
        assert count == sum(1 for rtt in all_rtts if rtt <= bound), le
    counts = list(buckets.values())
    assert counts == sorted(counts), "buckets must be cumulative"
    assert buckets["0.001"] == 2
    assert buckets["5"] == 10
    assert buckets["+Inf"] == 11
    assert value(samples, f"{HISTOGRAM}_count", "core-01") == received
    assert value(samples, f"{HISTOGRAM}_sum", "core-01") == pytest.approx(sum(all_rtts), abs=1e-12)

    # Gauges describe the last probe only: 3 sent, RTTs 10, 30, 20 ms.
    assert value(samples, "monitord_probe_success", "core-01") == 1
    assert value(samples, "monitord_icmp_loss_ratio", "core-01") == 0
    assert value(samples, "monitord_icmp_jitter_seconds", "core-01") == pytest.approx(0.015)
    rtt_last = "monitord_icmp_rtt_last_seconds"
    assert value(samples, rtt_last, "core-01", stat="min") == pytest.approx(0.010)
    assert value(samples, rtt_last, "core-01", stat="avg") == pytest.approx(0.020)
    assert value(samples, rtt_last, "core-01", stat="max") == pytest.approx(0.030)
    assert value(samples, "monitord_probe_last_timestamp_seconds", "core-01") == 1_700_000_030.25
    assert value(samples, "monitord_probe_last_duration_seconds", "core-01") == 0.52


def test_partial_loss_then_total_loss() -> None:
    check = make_check("village-ap")
    series = TargetSeries()
    series.set_checks([check])

    series.observe(result(check, 4, [0.25]))
    samples = parse(series.render())
    assert value(samples, "monitord_icmp_loss_ratio", "village-ap") == 0.75
    assert value(samples, "monitord_probe_success", "village-ap") == 1
    # One reply: min = avg = max, and no jitter (it needs two RTTs).
    for stat in ("min", "avg", "max"):
        assert value(samples, "monitord_icmp_rtt_last_seconds", "village-ap", stat=stat) == 0.25
    assert find(samples, "monitord_icmp_jitter_seconds", "village-ap") == []

    series.observe(result(check, 4, [], error="sendto: Network is unreachable"))
    samples = parse(series.render())
    assert value(samples, "monitord_probe_success", "village-ap") == 0
    assert value(samples, "monitord_icmp_loss_ratio", "village-ap") == 1
    assert value(samples, "monitord_probe_errors_total", "village-ap") == 1
    assert value(samples, "monitord_icmp_requests_total", "village-ap") == 8
    assert value(samples, "monitord_icmp_responses_total", "village-ap") == 1
    # The last probe had no RTTs, so its RTT gauges are gone rather than stale.
    assert find(samples, "monitord_icmp_rtt_last_seconds", "village-ap") == []
    assert value(samples, f"{HISTOGRAM}_count", "village-ap") == 1


# --- label escaping -------------------------------------------------------------------------


NASTY = 'quote " back \\ newline \n end\\n'


def test_label_values_with_quotes_backslashes_and_newlines_round_trip() -> None:
    check = make_check("odd", site='gedung "B"\\lt.2', name=f"Router {NASTY}",
                       labels=(("note", NASTY), ("empty", "")))
    series = TargetSeries()
    series.set_checks([check])
    series.observe(result(check, 2, [0.002, 0.003]))
    text = series.render()
    # Every sample stays on one line: the newlines are escaped, not written.
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ", "monitord_")), line
    samples = parse(text)
    assert samples, "nothing parsed"
    for s in samples:
        assert s.labels["site"] == 'gedung "B"\\lt.2', s
        assert s.labels["target"] == "odd"
    info = next(s.labels for s in samples if s.name == "monitord_target_info")
    assert info["name"] == f"Router {NASTY}"
    assert info["note"] == NASTY
    assert info["empty"] == ""
    assert value(samples, "monitord_icmp_responses_total", "odd") == 2


@pytest.mark.parametrize(("raw", "escaped"), [
    ("plain", "plain"),
    ('"', '\\"'),
    ("\\", "\\\\"),
    ("\n", "\\n"),
    ("\\n", "\\\\n"),  # a literal backslash-n is not a newline
    ('a\\"b', 'a\\\\\\"b'),
])
def test_escape_label_value(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped


# --- reloads --------------------------------------------------------------------------------


def test_set_checks_keeps_unchanged_restarts_changed_and_drops_removed() -> None:
    kept, changed, removed = make_check("kept"), make_check("changed"), make_check("removed", "192.0.2.3")
    series = TargetSeries()
    series.set_checks([kept, changed, removed])
    for check in (kept, changed, removed):
        series.observe(result(check, 3, [0.004, 0.005]))

    changed_now = make_check("changed", site="site-b")
    # A reload builds new, equal Check objects for unchanged devices.
    series.set_checks([make_check("kept"), changed_now])
    text = series.render()
    samples = parse(text)

    assert 'target="removed"' not in text
    assert "192.0.2.3" not in text
    assert {s.labels["target"] for s in samples} == {"kept", "changed"}

    assert value(samples, "monitord_icmp_requests_total", "kept") == 3
    assert value(samples, "monitord_icmp_responses_total", "kept") == 2
    assert value(samples, "monitord_probe_success", "kept") == 1

    assert value(samples, "monitord_icmp_requests_total", "changed") == 0
    assert value(samples, f"{HISTOGRAM}_count", "changed") == 0
    assert find(samples, "monitord_probe_success", "changed") == []
    assert {s.labels["site"] for s in samples if s.labels["target"] == "changed"} == {"site-b"}

    # Results of probes started before the reload are ignored for removed and changed checks.
    series.observe(result(removed, 3, [0.001]))
    series.observe(result(changed, 3, [0.001]))
    samples = parse(series.render())
    assert {s.labels["target"] for s in samples} == {"kept", "changed"}
    assert series.snapshot("removed") is None
    assert value(samples, "monitord_icmp_requests_total", "changed") == 0

    # The changed check's own results count from zero.
    series.observe(result(changed_now, 2, [0.001]))
    series.observe(result(kept, 1, [0.001]))
    samples = parse(series.render())
    assert value(samples, "monitord_icmp_requests_total", "changed") == 2
    assert value(samples, "monitord_icmp_requests_total", "kept") == 4


def test_a_changed_operator_label_restarts_the_series() -> None:
    old = make_check("ap", labels=(("link", "radio"),))
    series = TargetSeries()
    series.set_checks([old])
    series.observe(result(old, 3, [0.1, 0.2, 0.3]))
    series.set_checks([make_check("ap", labels=(("link", "vsat"),))])
    samples = parse(series.render())
    assert value(samples, "monitord_icmp_requests_total", "ap") == 0
    assert value(samples, "monitord_target_info", "ap", link="vsat") == 1


# --- format_value ---------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "text"), [
    (0, "0"),
    (7, "7"),
    (-3, "-3"),
    (12345678901234, "12345678901234"),
    (1.0, "1"),
    (-0.0, "0"),
    (0.25, "0.25"),
    (0.1, "0.1"),
    (-2.5, "-2.5"),
    (1e-05, "1e-05"),
    (1_700_000_000.5, "1700000000.5"),
    (1e20, "1e+20"),  # no 21-digit integers
    (math.nan, "NaN"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
])
def test_format_value(number: float, text: str) -> None:
    assert format_value(number) == text


@pytest.mark.parametrize("number", [0.1 + 0.2, 1 / 3, 1e15, 2.0**60, 1e300, 5e-324, 0.00025])
def test_format_value_round_trips_floats(number: float) -> None:
    assert float(format_value(number)) == number


# --- promtool -------------------------------------------------------------------------------


def test_render_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not on PATH: scripts/test.sh installs it (Debian package prometheus)")
    checks = [
        make_check("core-01", parent=None, name="Core", labels=(("note", NASTY),)),
        make_check("ap-02", "2001:db8::7", parent="core-01", coordinates=Coordinates(-2.5, 119.25)),
        make_check("never-probed", "192.0.2.9"),
    ]
    series = TargetSeries()
    series.set_checks(checks)
    series.observe(result(checks[0], 3, [0.0004, 0.02, 9.0]))
    series.observe(result(checks[1], 3, [], error="deadline of 10s exceeded"))
    check = subprocess.run([promtool, "check", "metrics"], input=series.render(),
                           capture_output=True, text=True, check=False, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""


# --- pre-rendered pieces (issue 8) ----------------------------------------------------------
# The series are rendered when a result comes in and only joined at scrape time. The expected
# text here is built line by line from the results, sharing nothing with the renderer; RTTs
# and loss ratios are powers of two, so they come out exact whatever the order of operations.

SCALAR_FAMILIES = (
    ("monitord_icmp_requests_total", "counter", "ICMP echo requests sent."),
    ("monitord_icmp_responses_total", "counter", "ICMP echo replies received within their timeout."),
    ("monitord_probes_per_target_total", "counter", "Probes completed per target."),
    ("monitord_probe_errors_total", "counter",
     "Probes that reported an error (send failure, deadline exceeded, ...)."),
    ("monitord_probe_success", "gauge", "Whether the last probe got at least one reply (1) or none (0)."),
    ("monitord_icmp_loss_ratio", "gauge", "Fraction of echoes lost in the last probe (0-1)."),
    ("monitord_probe_last_duration_seconds", "gauge", "Wall time of the last probe."),
    ("monitord_probe_last_timestamp_seconds", "gauge", "When the last probe started."),
    ("monitord_icmp_jitter_seconds", "gauge",
     "Mean absolute difference of consecutive RTTs in the last probe."),
)
LE = ("0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
      "0.25", "0.5", "0.75", "1", "1.5", "2.5", "5", "+Inf")


def number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'


def expected_text(targets: Sequence[tuple[Check, Sequence[ProbeResult]]]) -> str:
    """The exposition of `targets`, family by family, targets in the order given."""
    lines: dict[str, list[str]] = {}
    for check, results in targets:
        labels = ",".join(f"{name}={quoted(value)}" for name, value in (
            ("province", check.province), ("kabupaten", check.kabupaten), ("site", check.site),
            ("role", check.role), ("target", check.target), ("address", str(check.address))))
        rtts = [rtt for r in results for rtt in r.rtts]
        values: dict[str, float | None] = dict.fromkeys(name for name, _, _ in SCALAR_FAMILIES)
        values |= {"monitord_icmp_requests_total": sum(r.sent for r in results),
                   "monitord_icmp_responses_total": sum(r.received for r in results),
                   "monitord_probes_per_target_total": len(results),
                   "monitord_probe_errors_total": sum(r.error is not None for r in results)}
        last_rtts: tuple[float, ...] = ()
        if results:
            last = results[-1]
            last_rtts = last.rtts
            values |= {"monitord_probe_success": 1 if last.received else 0,
                       "monitord_icmp_loss_ratio": (last.sent - last.received) / last.sent,
                       "monitord_probe_last_duration_seconds": last.duration,
                       "monitord_probe_last_timestamp_seconds": last.started}
            if len(last_rtts) >= 2:
                gaps = [abs(b - a) for a, b in itertools.pairwise(last_rtts)]
                values["monitord_icmp_jitter_seconds"] = sum(gaps) / len(gaps)
        for name, value in values.items():
            if value is not None:
                lines.setdefault(name, []).append(f"{name}{{{labels}}} {number(value)}")
        rtt_last = lines.setdefault("monitord_icmp_rtt_last_seconds", [])
        if last_rtts:
            for stat, value in (("min", min(last_rtts)), ("avg", sum(last_rtts) / len(last_rtts)),
                                ("max", max(last_rtts))):
                rtt_last.append(f'monitord_icmp_rtt_last_seconds{{{labels},stat="{stat}"}} '
                                f"{number(value)}")
        histogram = lines.setdefault("monitord_icmp_rtt_seconds", [])
        for le in LE:
            count = sum(1 for rtt in rtts if le == "+Inf" or rtt <= float(le))
            histogram.append(f'monitord_icmp_rtt_seconds_bucket{{{labels},le="{le}"}} {count}')
        histogram.append(f"monitord_icmp_rtt_seconds_sum{{{labels}}} {number(sum(rtts))}")
        histogram.append(f"monitord_icmp_rtt_seconds_count{{{labels}}} {len(rtts)}")
        info = [("kind", "icmp"), ("parent", check.parent or ""), ("profile", check.profile.name),
                ("name", check.name), *check.labels]
        lines.setdefault("monitord_target_info", []).append(
            "monitord_target_info{" + labels + "," + ",".join(f"{k}={quoted(v)}" for k, v in info)
            + "} 1")
    families = [*SCALAR_FAMILIES,
                ("monitord_icmp_rtt_last_seconds", "gauge",
                 "Minimum, average and maximum RTT of the last probe."),
                ("monitord_icmp_rtt_seconds", "histogram", "Round-trip time of ICMP echo replies."),
                ("monitord_target_info", "gauge",
                 "Inventory facts per target: parent, profile, name and operator labels.")]
    out = []
    for name, kind, help_text in families:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines.get(name, [])]
    return "\n".join(out) + "\n"


def test_the_rendered_text_is_the_exposition_of_the_results() -> None:
    core = make_check("core-01", site='gedung "B"\\lt.2', name="Core", labels=(("note", NASTY),))
    ap = make_check("ap-02", "2001:db8::7", parent="core-01")
    idle = make_check("never-probed", "192.0.2.9")
    series = TargetSeries()
    series.set_checks([core, ap, idle])
    assert series.render() == expected_text([(core, []), (ap, []), (idle, [])])

    core_results = [result(core, 3, [2**-12, 2**-6, 9.0]),
                    result(core, 4, [2**-10, 2**-9], started=1_700_000_060.25, duration=0.5)]
    ap_results = [result(ap, 3, [0.5, 0.25, 0.125]), result(ap, 3, [], error="deadline exceeded")]
    for r in [*core_results, *ap_results]:
        series.observe(r)
    assert series.render() == expected_text([(core, core_results), (ap, ap_results), (idle, [])])


def test_each_family_is_its_header_and_every_targets_piece() -> None:
    checks = [make_check(f"t{i}", f"192.0.2.{i}") for i in range(1, 4)]
    series = TargetSeries()
    series.set_checks(checks)
    series.observe(result(checks[0], 3, [0.001]))
    chunks = series.render_chunks()
    headers = [c for c in chunks if c.startswith(b"# HELP ")]
    assert len(headers) == len(SCALAR_FAMILIES) + 3
    for chunk in chunks:  # whole lines only: a chunk never ends mid-line nor holds two families
        assert chunk.endswith(b"\n")
        assert chunk.startswith(b"# HELP ") or chunk.count(b"# ") == 0
    # Gauges of targets without a probe contribute no (empty) piece.
    assert b"" not in chunks


def test_a_scrape_in_progress_keeps_what_it_took() -> None:
    """observe() publishes a new snapshot; the chunks a scrape already holds do not change."""
    check = make_check("ap")
    series = TargetSeries()
    series.set_checks([check])
    series.observe(result(check, 3, [0.01, 0.02, 0.03]))
    chunks = series.render_chunks()
    taken = b"".join(chunks)
    series.observe(result(check, 3, [], error="sendto: Network is unreachable"))
    assert b"".join(chunks) == taken
    now = series.render().encode()
    assert now != taken
    assert b"monitord_probe_errors_total{" in now
    assert value(parse(now.decode()), "monitord_probe_errors_total", "ap") == 1
    assert value(parse(taken.decode()), "monitord_probe_errors_total", "ap") == 0
