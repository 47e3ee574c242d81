"""The province lab (monitord.lab.province) as a pytest fixture: `province_lab`, built once per
test module, with monitord running and every device up and polled over SNMP.

A test module that uses it lists this module in `pytest_plugins` (and does not import it:
a plugin imported first cannot be assertion-rewritten, an error under warnings-as-errors);
it may set PROVINCE_PLAN (a LabPlan) for another size or speed. The lab is torn down when the
module ends, so its namespaces, agents and the routes it adds never meet another module's.
A test that injects a fault must undo it (monitord.lab.faults' context managers do).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitord.lab.province import ProvinceLab
from monitord.lab.topology import LabPlan

# Small and quick: 2 kabupaten (3 radio villages and 1 VSAT village each), 5 data-center
# devices and the core router; probes every 2 s, SNMP polls every 5 s.
DEFAULT_PLAN = LabPlan(kabupaten=2, villages=3, vsat_villages=1, dc_devices=5,
                       icmp_interval=2, snmp_interval=5)


@pytest.fixture(scope="module")
def province_lab(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvinceLab]:
    plan = getattr(request.module, "PROVINCE_PLAN", DEFAULT_PLAN)
    assert isinstance(plan, LabPlan), "PROVINCE_PLAN must be a LabPlan"
    with ProvinceLab(tmp_path_factory.mktemp("province"), plan) as lab:
        lab.start_monitord()
        lab.wait_settled()
        yield lab
