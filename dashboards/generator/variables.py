"""The kabupaten / role / site template variables every monitord dashboard has."""

from __future__ import annotations

from dashboards.generator.grafana import Json, query_variable
from dashboards.generator.promql import sel

# Every target has exactly one monitord_target_info series (SNMP devices are pinged too), so
# it lists every kabupaten, role and site, whatever the target is polled for.
INFO = "monitord_target_info"


KABUPATEN = 'kabupaten=~"$kabupaten"'
ROLE = 'role=~"$role"'


def hierarchy_variables(scope: str = "") -> list[Json]:
    """kabupaten, role and site, each narrowed by the ones before it and by the dashboard's
    role scope (e.g. 'role=~"village-.*"'), multi-select with All."""
    return [
        query_variable("kabupaten", "Kabupaten", f"label_values({sel(INFO, scope)}, kabupaten)"),
        query_variable("role", "Role", f"label_values({sel(INFO, scope, KABUPATEN)}, role)"),
        query_variable("site", "Site", f"label_values({sel(INFO, scope, KABUPATEN, ROLE)}, site)"),
    ]
