"""The config loader: the shipped inventories load and resolve as documented, and every kind of
mistake is reported with the file, line and key path an operator needs to fix it.

config/sulbar.yaml is only ever loaded here, never probed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from monitord.config import ConfigError, load_inventory
from monitord.config.inventory import format_path
from monitord.config.schema import parse_duration
from monitord.model import Check, IcmpProfile, Inventory, SnmpProfile
from monitord.snmp.modules import load_default_module_specs

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"
DATA_DIR = ROOT / "tests" / "data" / "config"

SULBAR_KABUPATEN = ("mamuju", "mamuju-tengah", "pasangkayu", "majene", "polewali-mandar", "mamasa")
SULBAR_CORE = "prov-core-rtr-01"
VILLAGE_ROLES = {"village-ap", "village-vsat"}
DC_ROLES = {"dc-server", "dc-network", "dc-firewall", "dc-ups"}


@pytest.fixture(scope="module")
def sulbar() -> Iterator[Inventory]:
    with pytest.MonkeyPatch.context() as env:  # its mqtt password comes from the environment
        env.setenv("MONITORD_MQTT_PASSWORD", "contoh-rahasia")
        yield load_inventory(CONFIG_DIR / "sulbar.yaml")


def by_role(inventory: Inventory, role: str) -> list[Check]:
    return [c for c in inventory.checks if c.role == role]


# --- config/local.yaml ----------------------------------------------------------------------


def test_local_yaml_loads() -> None:
    inventory = load_inventory(CONFIG_DIR / "local.yaml")
    checks = inventory.by_target()
    assert inventory.province == "local"
    assert set(checks) == {"localhost-v4", "localhost-v6", "loopback-server"}
    assert checks["localhost-v4"].parent is None  # the province uplink itself
    assert checks["localhost-v6"].parent == "localhost-v4"
    assert str(checks["localhost-v6"].address) == "::1"
    assert checks["loopback-server"].labels == (("service", "example"),)
    assert {c.profile.name for c in inventory.checks} == {"lan"}
    assert all(c.address.is_loopback for c in inventory.checks)


# --- config/sulbar.yaml ---------------------------------------------------------------------


def test_sulbar_has_the_provincial_entry_and_six_kabupaten(sulbar: Inventory) -> None:
    raw = yaml.safe_load((CONFIG_DIR / "sulbar.yaml").read_text(encoding="utf-8"))
    entries = [k["id"] for k in raw["province"]["kabupaten"]]
    assert entries == ["provinsi", *SULBAR_KABUPATEN]
    assert {c.kabupaten for c in sulbar.checks} == set(entries)
    assert sulbar.province == "sulbar"
    assert 60 <= len(sulbar.checks) <= 90


def test_sulbar_kabupaten_links_hang_off_the_provincial_core(sulbar: Inventory) -> None:
    core = sulbar.by_target()[SULBAR_CORE]
    assert core.parent is None
    assert core.kabupaten == "provinsi"
    links = by_role(sulbar, "kabupaten-link")
    assert sorted(c.kabupaten for c in links) == sorted(SULBAR_KABUPATEN)
    assert {c.parent for c in links} == {SULBAR_CORE}


def test_sulbar_village_devices_hang_off_their_kabupaten_link(sulbar: Inventory) -> None:
    link_of = {c.kabupaten: c.target for c in by_role(sulbar, "kabupaten-link")}
    villages = [c for c in sulbar.checks if c.role in VILLAGE_ROLES]
    for check in villages:
        assert check.parent == link_of[check.kabupaten], check.target
    for kabupaten in SULBAR_KABUPATEN:
        assert 4 <= sum(c.kabupaten == kabupaten for c in villages) <= 8, kabupaten
    assert by_role(sulbar, "village-vsat"), "some villages are on VSAT"


def test_sulbar_data_center(sulbar: Inventory) -> None:
    dc = [c for c in sulbar.checks if c.kabupaten == "provinsi"]
    assert {c.role for c in dc} == DC_ROLES
    assert len(by_role(sulbar, "dc-server")) >= 8
    assert all(c.parent == SULBAR_CORE for c in dc if c.target != SULBAR_CORE)


def test_sulbar_labels_inherit_and_device_labels_override(sulbar: Inventory) -> None:
    checks = sulbar.by_target()
    # province owner + kabupaten isp/link_type
    assert dict(checks["ap-tobadak"].labels) == {
        "owner": "diskominfo-sulbar", "isp": "swakelola", "link_type": "radio"}
    # device labels override the kabupaten's, the province's still inherited
    assert dict(checks["ap-lumu"].labels) == {
        "owner": "diskominfo-sulbar", "isp": "bakti", "link_type": "vsat"}
    # site defaults override the kabupaten's; the device overrides the site's link_type
    assert dict(checks["majene-link"].labels)["link_type"] == "fiber"
    assert dict(checks["mamasa-link"].labels) == {
        "owner": "diskominfo-sulbar", "isp": "telkom", "link_type": "radio"}
    # site defaults + device label
    assert dict(checks["prov-srikandi-01"].labels) == {
        "owner": "diskominfo-sulbar", "link_type": "lan", "service": "srikandi"}


@pytest.mark.parametrize(
    ("role", "profile", "timing"),
    [
        ("dc-server", "lan", (10.0, 5, 0.2, 1.0)),
        ("dc-ups", "lan", (10.0, 5, 0.2, 1.0)),
        ("kabupaten-link", "kabupaten-link", (30.0, 10, 0.5, 2.0)),
        ("village-ap", "village-radio", (60.0, 10, 1.0, 3.0)),
        ("village-vsat", "vsat", (60.0, 5, 2.0, 4.0)),
    ],
)
def test_sulbar_profiles_resolve_by_role(
    sulbar: Inventory, role: str, profile: str, timing: tuple[float, int, float, float]
) -> None:
    checks = by_role(sulbar, role)
    assert checks
    for check in checks:
        p = check.profile
        assert isinstance(p, IcmpProfile)
        assert p.name == profile, check.target
        assert (p.interval, p.count, p.packet_interval, p.timeout) == timing, check.target
        assert p.deadline <= p.interval


def test_sulbar_ids_and_addresses_are_unique_and_follow_the_plan(sulbar: Inventory) -> None:
    targets = [c.target for c in sulbar.checks]
    addresses = [c.address for c in sulbar.checks]
    assert len(set(targets)) == len(targets)
    assert len(set(addresses)) == len(addresses)
    plan = ipaddress.ip_network("10.76.0.0/16")
    assert all(a in plan for a in addresses)
    subnets: dict[str, set[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
    for check in sulbar.checks:
        subnet = ipaddress.ip_network(f"{check.address}/24", strict=False)
        subnets.setdefault(check.kabupaten, set()).add(subnet)
    assert all(len(s) == 1 for s in subnets.values()), "one /24 per kabupaten"
    assert len(set.union(*subnets.values())) == len(subnets), "no /24 shared by two kabupaten"


# --- inheritance, precisely ------------------------------------------------------------------

INHERITANCE = """\
profiles:
  fast: {interval: 10s, count: 2, packet_interval: 1s, timeout: 1s}
  slow: {interval: 60s, count: 3, packet_interval: 2s, timeout: 4s}
province:
  id: p
  uplink: core
  defaults: {profile: fast, role: dc-server, labels: {owner: prov, isp: none}}
  kabupaten:
    - id: dc
      sites:
        - id: dc
          devices:
            - {id: core, address: 10.0.0.1, role: dc-network}
    - id: kab
      uplink: link
      defaults: {profile: slow, role: village-ap, labels: {isp: telkom}}
      sites:
        - id: office
          defaults: {role: kabupaten-link, labels: {link_type: fiber}}
          devices:
            - {id: link, address: 10.0.1.1}
        - id: desa
          devices:
            - {id: ap, address: 10.0.1.11, labels: {isp: bakti}}
            - {id: ap2, address: 10.0.1.12, profile: fast, role: village-vsat, parent: core}
"""


def test_inheritance_province_kabupaten_site_device(tmp_path: Path) -> None:
    path = tmp_path / "inheritance.yaml"
    path.write_text(INHERITANCE, encoding="utf-8")
    checks = load_inventory(path).by_target()

    def summary(target: str) -> tuple[str, str, str | None, dict[str, str]]:
        c = checks[target]
        return (c.profile.name, c.role, c.parent, dict(c.labels))

    assert summary("core") == ("fast", "dc-network", None, {"owner": "prov", "isp": "none"})
    link_labels = {"owner": "prov", "isp": "telkom", "link_type": "fiber"}
    assert summary("link") == ("slow", "kabupaten-link", "core", link_labels)
    assert summary("ap") == ("slow", "village-ap", "link", {"owner": "prov", "isp": "bakti"})
    assert summary("ap2") == ("fast", "village-vsat", "core", {"owner": "prov", "isp": "telkom"})


# --- invalid files: one mistake per file, exact text expected --------------------------------

MISSING_FILE = "invalid-missing-file.yaml"  # deliberately absent from tests/data/config
ADOLANG = "province.kabupaten[majene].sites[desa-adolang].devices[ap-adolang]"
PUSAT_DATA = "province.kabupaten[provinsi].sites[pusat-data].devices"

SHIPPED_MODULES = ", ".join(sorted(load_default_module_specs()))

INVALID: dict[str, list[str]] = {
    "invalid-state-thresholds.yaml": [
        "line 6: profiles.vsat.state: down_failures (6) cannot exceed down_window (5): the "
        "target could never go down",
        "line 9: profiles.radio.state.max_loss_ratio: Input should be less than 1",
        "line 10: profiles.radio.state.up_sucesses: unknown key 'up_sucesses' "
        "(did you mean 'up_successes'?)",
    ],
    "invalid-mqtt-settings.yaml": [
        "line 5: mqtt.client_id: 'monitord sulbar' is not a client id: 1-128 of letters, "
        "digits, '_', '.', '-'",
        "line 4: mqtt.topic_prefix: 'spbe/#/sulbar' is not a topic prefix: levels separated by "
        "single '/', no wildcards (+ #), no leading or trailing '/'",
    ],
    "invalid-report-schema.yaml": [
        "line 4: report.timezone: unknown time zone 'Asia/Makasar' (use an IANA name such as "
        "Asia/Jakarta, Asia/Makassar or Asia/Jayapura)",
        "line 5: report.slo.kabupaten-link: Input should be less than or equal to 100",
        "line 7: report.schedule.cron: '0 6 * * 8' is not a valid cron expression: "
        "day-of-week '8': '8' is not a number from 0 to 7",
        "line 8: report.schedule.formats[1]: Input should be 'html', 'pdf', 'csv' or 'json'",
    ],
    "invalid-report-windows.yaml": [
        "line 5: report.maintenance[0].kabupaten: no kabupaten 'majne' in this config "
        "(did you mean 'majene'?)",
        "line 6: report.maintenance[1].roles: no role 'kabupaten-lnk' in this config "
        "(did you mean 'kabupaten-link'?)",
    ],
    "invalid-mqtt-auth.yaml": ["line 2: mqtt: password is given without username"],
    "invalid-mqtt-tls.yaml": [
        "line 7: mqtt.tls.ca_file: cannot load CA certificates from "
        "/nonexistent/monitord/ca.pem: No such file or directory",
        "line 5: mqtt.password: environment variable MONITORD_TEST_UNSET_MQTT_PASSWORD is not "
        "set",
    ],
    "invalid-snmp-unknown-profile.yaml": [
        "line 15: province.kabupaten[majene].sites[pusat].devices[majene-link].snmp: "
        "unknown SNMP profile 'kab-v3'; defined: kab-v2 (did you mean 'kab-v2'?)"
    ],
    "invalid-snmp-v3-problems.yaml": [
        "line 5: snmp.profiles.v3-community: version 3 uses username and passwords, not community",
        "line 6: snmp.profiles.v3-priv-only: privacy (priv_protocol) needs authentication "
        "(auth_protocol)",
        "line 7: snmp.profiles.v3-bad-proto.auth_protocol: Input should be 'MD5', 'SHA', "
        "'SHA224', 'SHA256', 'SHA384' or 'SHA512'",
    ],
    "invalid-snmp-secrets.yaml": [
        "line 5: snmp.profiles.v3-short.auth_password: the secret from inline must be at least "
        "8 characters",
        "line 10: snmp.profiles.v3-no-file.auth_password: cannot read secret file "
        "/nonexistent/monitord/auth: No such file or directory",
        "line 11: snmp.profiles.v2-modules.modules[1]: unknown SNMP module 'if-mib' "
        f"(did you mean 'if_mib'?); defined: {SHIPPED_MODULES}",
    ],
    "invalid-snmp-module.yaml": [
        "line 7: snmp.modules.ups_extra.scalars[0]: counter 'monitord_ups_alarms' must end in "
        "_total",
        "line 8: snmp.modules.ups_extra.scalars[1].oid: '1.3.6.1.4.1.318.1.1.1.4.2.x' is not a "
        "numeric OID (like 1.3.6.1.2.1.1.3.0)",
        "line 11: snmp.modules.ups_extra.tables[0].index[0].name: label 'target' is reserved: "
        "monitord sets it itself",
        "line 13: snmp.modules.ups_extra.tables[0].metrics[0]: 'monitord_ups_outlet_state_total' "
        "ends in _total but is not a counter",
    ],
    "invalid-snmp-env-unset.yaml": [
        "line 4: snmp.profiles.kab-v2.community: environment variable "
        "MONITORD_TEST_UNSET_COMMUNITY is not set"
    ],
    "invalid-unknown-defaults-profile.yaml": [
        "line 9: province.kabupaten[majene].defaults.profile: unknown profile 'village-raido'; "
        "defined: default, village-radio (did you mean 'village-radio'?)"
    ],
    "invalid-unknown-key.yaml": [
        "line 4: province.kabupatn: unknown key 'kabupatn' (did you mean 'kabupaten'?)"
    ],
    "invalid-unknown-device-key.yaml": [
        f"line 12: {ADOLANG}.lables: unknown key 'lables' (did you mean 'labels'?)"
    ],
    "invalid-unknown-profile-key.yaml": [
        "line 4: profiles.vsat.intervall: unknown key 'intervall' (did you mean 'interval'?)"
    ],
    "invalid-duplicate-device-id.yaml": [
        "line 13: province.kabupaten[majene].sites[desa-tubo].devices[ap-1].id: duplicate device id 'ap-1': "
        "already used on line 10"
    ],
    "invalid-duplicate-yaml-key.yaml": [
        "line 12, column 15: invalid YAML: duplicate key 'address' (first at line 11)"
    ],
    "invalid-duplicate-address.yaml": [
        f"line 11: {PUSAT_DATA}[srv-db-02].address: duplicate address 'fd76::10': "
        f"already used on line 10"
    ],
    "invalid-unknown-profile.yaml": [
        "line 13: province.kabupaten[mamasa].sites[desa-aralle].devices[ap-aralle].profile: "
        "unknown profile 'vsta'; defined: default, vsat (did you mean 'vsat'?)"
    ],
    "invalid-bad-ipv4.yaml": [
        "line 11: province.kabupaten[majene].sites[desa-a].devices[ap-1].address: "
        "'10.76.1.300' is not an IPv4 or IPv6 address (hostnames are not supported)"
    ],
    "invalid-hostname-address.yaml": [
        "line 11: province.kabupaten[majene].sites[kominfo-majene].devices[majene-link].address: "
        "'link.majene.example' is not an IPv4 or IPv6 address (hostnames are not supported)"
    ],
    "invalid-parent-cycle.yaml": [f"line 10: {PUSAT_DATA}[sw-a].parent: parent cycle: sw-a -> sw-b -> sw-a"],
    "invalid-unknown-parent.yaml": [
        f"line 11: {PUSAT_DATA}[mgmt-sw-01].parent: "
        "no device has id 'core-sw-10' (did you mean 'core-sw-01'?)"
    ],
    "invalid-self-parent.yaml": [
        f"line 10: {PUSAT_DATA}[core-sw-01].parent: a device cannot be its own parent"
    ],
    "invalid-unknown-uplink.yaml": [
        "line 7: province.kabupaten[majene].uplink: "
        "no device has id 'majene-lnk' (did you mean 'majene-link'?)"
    ],
    "invalid-missing-role.yaml": [
        f"line 9: {ADOLANG}: no role: set role on the device or in an enclosing defaults block"
    ],
    "invalid-profile-too-long.yaml": [
        "line 3: profiles.vsat: a probe lasts up to (count-1) x packet_interval + timeout = 22s, "
        "longer than interval 20s; probes would overlap"
    ],
    "invalid-bad-duration.yaml": [
        "line 4: profiles.village-radio.interval: '60 seconds' is not a duration (use e.g. 30s, 500ms, 2m)"
    ],
    "invalid-bad-label-name.yaml": [
        "line 5: province.defaults.labels: 'link-type' is not a valid Prometheus label name"
    ],
    "invalid-reserved-label.yaml": [
        f"line 12: {ADOLANG}.labels: label 'site' is reserved: monitord sets it from the inventory"
    ],
    "invalid-yaml-syntax.yaml": ["line 5, column 12: invalid YAML: expected ',' or '}', but got ':'"],
    "invalid-unhashable-key.yaml": [
        "line 4, column 3: invalid YAML: a mapping key must be a plain value, not a list or mapping"
    ],
    "invalid-empty.yaml": ["the file must be a mapping with at least a 'province' key"],
    "invalid-missing-province.yaml": ["line 2: province: required key is missing"],
    MISSING_FILE: ["cannot read file: No such file or directory"],
    "invalid-multiple-problems.yaml": [
        "line 3: profiles.vsat.sise: unknown key 'sise' (did you mean 'size'?)",
        f"line 11: {ADOLANG}.address: "
        "'10.76.1.311' is not an IPv4 or IPv6 address (hostnames are not supported)",
        "line 12: province.kabupaten[majene].sites[desa-adolang].devices[ap-tubo].labels: "
        "'__name__' is not a valid Prometheus label name",
    ],
    "invalid-web-auth.yaml": [
        "line 9: web.basic_auth_users.prometheus: the value is not a bcrypt hash ($2y$, a "
        "two-digit cost, $ and 53 characters); make one with: htpasswd -nBC 10 '' | tr -d ':\\n'",
        "line 10: web.basic_auth_users.grafana: bcrypt cost 31 is outside 4 to 17: each step "
        "doubles the time of a check (10 to 12 is usual); make one with: htpasswd -nBC 10 '' | "
        "tr -d ':\\n'",
        "line 11: web.basic_auth_users.ops:noc: user name 'ops:noc' cannot contain ':' or control "
        "characters",
        "line 12: web.basic_auth_users.alertmanager: environment variable "
        "MONITORD_TEST_UNSET_WEB_HASH is not set",
        "line 6: web.tls_server_config.cert_file: cannot read /nonexistent/monitord/web.crt: "
        "No such file or directory",
    ],
    "invalid-web-schema.yaml": [
        "line 7: web.tls_server_config.client_auth_type: Input should be 'NoClientCert', "
        "'VerifyClientCertIfGiven' or 'RequireAndVerifyClientCert'",
        "line 8: web.tls_server_config.min_version: Input should be 'TLS12' or 'TLS13'",
        "line 9: web.basic_auth_user: unknown key 'basic_auth_user' (did you mean "
        "'basic_auth_users'?)",
    ],
    "invalid-multiple-references.yaml": [
        f"line 12: {PUSAT_DATA}[srv-01].id: duplicate device id 'srv-01': "
        f"already used on line 11",
        f"line 12: {PUSAT_DATA}[srv-01].address: duplicate address '10.76.0.1': "
        f"already used on line 10",
        "line 4: province.uplink: no device has id 'core-rtr' (did you mean 'core-rtr-01'?)",
        f"line 11: {PUSAT_DATA}[srv-01]: no role: set role on the device or in an enclosing defaults block",
        f"line 12: {PUSAT_DATA}[srv-01].profile: unknown profile 'lan'; defined: default",
    ],
}


@pytest.mark.parametrize(("filename", "expected"), list(INVALID.items()), ids=list(INVALID))
def test_invalid_config_is_reported(filename: str, expected: list[str]) -> None:
    path = DATA_DIR / filename
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    assert info.value.source == str(path)
    assert info.value.problems == expected
    for problem in expected:
        assert f"{path}: {problem}" in str(info.value)


def test_every_invalid_file_has_an_expected_error() -> None:
    on_disk = {p.name for p in DATA_DIR.glob("invalid-*.yaml")}
    assert on_disk == set(INVALID) - {MISSING_FILE}


def test_error_text_for_one_and_for_several_problems() -> None:
    one = DATA_DIR / "invalid-self-parent.yaml"
    with pytest.raises(ConfigError) as info:
        load_inventory(one)
    assert str(info.value) == f"{one}: {INVALID[one.name][0]}"

    several = DATA_DIR / "invalid-multiple-problems.yaml"
    with pytest.raises(ConfigError) as info:
        load_inventory(several)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{several}: 3 problems:"
    assert lines[1:] == [f"  {several}: {p}" for p in INVALID[several.name]]


# --- SNMP profiles and secrets ----------------------------------------------------------------

SNMP_CONFIG = """
snmp:
  profiles:
    v2: {{community: {{env: MONITORD_TEST_COMMUNITY}}, interval: 30s, modules: [system]}}
    v3:
      version: 3
      username: noc
      auth_protocol: SHA256
      auth_password: {{file: {auth_file}}}
      priv_protocol: AES256
      priv_password: rahasia-privasi
province:
  id: p
  defaults: {{role: village-ap, snmp: v2}}
  kabupaten:
    - id: k
      sites:
        - id: s
          devices:
            - {{id: ap-1, address: 10.0.0.1}}
            - {{id: rtr-1, address: 10.0.0.2, snmp: {{profile: v3, modules: [system, if_mib]}}}}
            - {{id: ups-1, address: 10.0.0.3, snmp: v2}}
"""


def test_snmp_profiles_resolve_with_secrets_from_env_and_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth_file = tmp_path / "auth"
    auth_file.write_text("kata-sandi-auth\n", encoding="utf-8")
    config = tmp_path / "snmp.yaml"
    config.write_text(SNMP_CONFIG.format(auth_file=auth_file), encoding="utf-8")
    monkeypatch.setenv("MONITORD_TEST_COMMUNITY", "komunitas-rahasia")
    inventory = load_inventory(config)
    snmp = {c.target: c.profile for c in inventory.checks if c.kind == "snmp"}
    assert set(snmp) == {"ap-1", "rtr-1", "ups-1"}  # ap-1 inherits the defaults' profile
    assert all(isinstance(p, SnmpProfile) for p in snmp.values())
    v2, v3 = snmp["ap-1"], snmp["rtr-1"]
    assert isinstance(v2, SnmpProfile)
    assert isinstance(v3, SnmpProfile)
    assert v2.credentials.version == 1
    assert v2.credentials.community is not None
    assert v2.credentials.community.reveal() == "komunitas-rahasia"
    assert v2.modules == ("system",)
    assert v3.modules == ("system", "if_mib")  # the device's modules replace the profile's
    assert v3.credentials.security_level == "authPriv"
    assert v3.credentials.auth_password is not None
    assert v3.credentials.auth_password.reveal() == "kata-sandi-auth"  # trailing newline dropped
    # Every device keeps its ICMP check too.
    assert {c.target for c in inventory.checks if c.kind == "icmp"} == {"ap-1", "rtr-1", "ups-1"}
    # Secrets never show in a repr, so never in a log line or an error either.
    for text in (repr(inventory), str(inventory.checks)):
        for secret in ("komunitas-rahasia", "kata-sandi-auth", "rahasia-privasi"):
            assert secret not in text


# --- helpers ---------------------------------------------------------------------------------

PATH_DATA = {"province": {"kabupaten": [{"id": "majene", "sites": [{"name": "no id here"}]}]}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), "(top level)"),
        (("province",), "province"),
        (("province", "kabupaten", 0), "province.kabupaten[majene]"),
        (("province", "kabupaten", 0, "sites", 0, "devices"), "province.kabupaten[majene].sites[0].devices"),
        (("province", "kabupaten", 7, "uplink"), "province.kabupaten[7].uplink"),
        (("profiles", "lan", "interval"), "profiles.lan.interval"),
    ],
)
def test_format_path(path: tuple[str | int, ...], expected: str) -> None:
    assert format_path(PATH_DATA, path) == expected


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("400d", 34560000.0),
        ("1.5s", 1.5), (" 10 s ", 10.0),
        ("45", 45.0), (30, 30.0), (0.2, 0.2),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("60 seconds", "is not a duration"),
        ("1w", "is not a duration"),
        ("-5s", "is not a duration"),
        ("", "is not a duration"),
        (True, "is not a duration"),
        (None, "is not a duration"),
        (0, "must be greater than zero"),
        ("0ms", "must be greater than zero"),
    ],
)
def test_parse_duration_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


# --- state, history and mqtt settings -------------------------------------------------------

def test_sulbar_profiles_carry_their_state_thresholds(sulbar: Inventory) -> None:
    vsat = sulbar.profiles["vsat"].state
    assert (vsat.down_failures, vsat.down_window, vsat.up_successes) == (4, 6, 2)
    assert vsat.max_rtt == pytest.approx(1.5)
    assert vsat.flap_window == 7200.0
    lan = sulbar.profiles["lan"].state
    assert (lan.down_failures, lan.down_window, lan.max_loss_ratio) == (3, 5, 0.2)  # defaults
    assert sulbar.history_retention == 800 * 86400.0


def test_sulbar_mqtt_settings_resolve_with_defaults(sulbar: Inventory) -> None:
    mqtt = sulbar.mqtt
    assert mqtt is not None
    assert (mqtt.host, mqtt.port, mqtt.topic_prefix) == ("mqtt.noc.sulbarprov.go.id", 8883,
                                                          "spbe/sulbar")
    assert mqtt.client_id == "monitord-sulbar"
    assert mqtt.password is not None
    assert mqtt.password.reveal() == "contoh-rahasia"
    assert "contoh-rahasia" not in repr(mqtt)
    assert mqtt.tls is not None
    assert mqtt.tls.ca_file is None
    assert mqtt.tls.verify_hostname


def test_mqtt_is_off_and_plain_port_by_default(tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text("province: {id: p, kabupaten: []}\n")
    assert load_inventory(config).mqtt is None
    config.write_text("mqtt: {host: 127.0.0.1}\nprovince: {id: p, kabupaten: []}\n")
    mqtt = load_inventory(config).mqtt
    assert mqtt is not None
    assert (mqtt.port, mqtt.topic_prefix, mqtt.tls, mqtt.username) == (1883, "monitord/p", None,
                                                                        None)
