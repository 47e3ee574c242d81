"""PromQL shared by the dashboards: the template-variable filter, role scopes, the target
state as one number, availability, and the recording rules the dashboards rely on."""

from __future__ import annotations

# The dashboards' template variables, applied to every per-target series.
FILTER = 'kabupaten=~"$kabupaten", role=~"$role", site=~"$site"'

# Role naming the dashboards assume (as in config/sulbar.yaml): a dashboard about one part of
# the network keeps this matcher next to the role variable, so "All" stays within it.
DC_ROLES = 'role=~"dc-.*"'
LINK_ROLES = 'role=~"kabupaten-.*"'
VILLAGE_ROLES = 'role=~"village-.*"'

# Recording rules from exporters/prometheus/rules/monitord-recording.yml (names agreed there;
# labels province, kabupaten, site, role, target kept).
LOSS_5M = "target:monitord_icmp_loss_ratio:rate5m"
RTT_P50_5M = "target:monitord_icmp_rtt_seconds:p50_5m"
RTT_P95_5M = "target:monitord_icmp_rtt_seconds:p95_5m"
AVAILABILITY_1D = "target:monitord_availability:ratio_1d"
AVAILABILITY_30D = "target:monitord_availability:ratio_30d"
IF_UTILIZATION = "interface:monitord_if_utilization:ratio_rate5m"


def sel(metric: str, *matchers: str) -> str:
    """metric{m1, m2, ...}, leaving out empty matchers."""
    return f"{metric}{{{', '.join(m for m in matchers if m)}}}"


def state_code(*matchers: str) -> str:
    """The target state as one number: -1 unknown, 0 up, 1 degraded, 2 unreachable, 3 down,
    so that max() is the worst state and one colour scale fits (grafana.STATE_MAPPINGS).
    One series per target, hierarchy labels kept, `state` dropped."""
    def state(name: str) -> str:
        return sel("monitord_target_state", f'state="{name}"', *matchers)
    return (f"({state('degraded')}"
            f" + ignoring(state) 2 * {state('unreachable')}"
            f" + ignoring(state) 3 * {state('down')}"
            f" - ignoring(state) {state('unknown')})")


# From the recording rules as well: 1 while the target is reachable (up or degraded), 0 while
# down or unreachable, no sample while its state is unknown.
REACHABLE = "target:monitord_target_reachable:bool"
TARGET = "province, kabupaten, site, role, target"


def availability(by: str, *matchers: str) -> str:
    """Each target's share of the dashboard's time range it was reachable, out of the time its
    state was known, averaged over the targets of each `by` group (every target counts alike).

    One recorded series per target: a 30-day range over 150 targets reads ~26 M samples at a
    15 s evaluation interval, within Prometheus's default --query.max-samples (50 M)."""
    return f"avg by ({by}) (avg_over_time({sel(REACHABLE, *matchers)}[$__range]))"


def own_availability(by: str, *matchers: str) -> str:
    """As availability(), but only time down counts against a target: time unreachable behind a
    failed parent (a kabupaten link) is the parent's outage, not the village's. Read from the
    state set directly (two reads of one series per target); the few samples before a new
    target's first verdict count as available here."""
    down = sel("monitord_target_state", 'state="down"', *matchers)
    return (f"avg by ({by}) (\n  1 - sum by ({TARGET}) (sum_over_time({down}[$__range]))\n"
            f"  / sum by ({TARGET}) (count_over_time({down}[$__range]))\n)")


def bits_per_second(metric: str, *matchers: str) -> str:
    """An interface octet counter as bits per second, for interfaces that are up."""
    return (f"rate({sel(metric, *matchers)}[$__rate_interval]) * 8"
            f" and on (province, target, if_index) (monitord_if_oper_status == 1)")
