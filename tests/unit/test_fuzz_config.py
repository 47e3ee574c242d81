"""Fuzzing the config loader (issue 9): whatever file an operator (or a broken disk, or a bad
reload) hands monitord, loading it either gives an Inventory or raises ConfigError naming the
file and where in it (a line, or the byte of bad UTF-8), in bounded time. Never another
exception: a reload that raised one would take the daemon down instead of keeping the old
config.

Inputs: random text and bytes, random YAML structures, edits of the shipped configs and the
test configs (dropped and duplicated keys, wrong types, unicode, huge numbers, tabs, junk),
alias bombs and recursive aliases, deep nesting, and the secret forms {env: VAR} and
{file: PATH} with missing variables and files of every odd kind.

A loaded Inventory is checked too: every duration in it is a finite number of seconds
greater than zero (NaN and infinity used to pass as durations).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitord.config import ConfigError, load_inventory
from monitord.config import inventory as inventory_module
from monitord.config.yamlload import MAX_DEPTH, MIN_EXPANSION_BUDGET
from monitord.model import IcmpProfile, Inventory, SnmpProfile
from monitord.snmp.modules import load_default_module_specs
from tests import fuzz_strategies as fz

ROOT = Path(__file__).resolve().parents[2]
SEED_FILES = sorted([*(ROOT / "config").glob("*.yaml"), *(ROOT / "tests/data/config").glob("*.yaml")])
# Every section of the schema in one file, so edits reach all of them.
FULL_SEED = """\
daemon: {listen: "127.0.0.1:9521", state_dir: /tmp/monitord-fuzz, scheduler_tick: 50ms, shard: 1/2}
profiles:
  radio: {interval: 60s, count: 5, packet_interval: 1s, timeout: 3s,
          state: {down_failures: 3, down_window: 5, max_rtt: 300ms, flap_window: 2h}}
history: {retention: 400d}
snmp:
  max_in_flight: 100
  profiles:
    v2: {version: 2c, community: {env: MONITORD_FUZZ_COMMUNITY}, timeout: 2s, retries: 1}
    v3: {version: 3, username: noc, auth_protocol: SHA, auth_password: {file: SECRET_FILE},
         priv_protocol: AES, priv_password: rahasia-sekali, deadline: 30s}
  modules:
    custom:
      scalars:
        - {name: custom_temp, help: "t", oid: 1.3.6.1.4.1.9.9.13.1.3.1.3.1, scale: 0.1}
      tables:
        - name: t
          index: [{name: idx, arcs: 1}, rest]
          labels: [{name: descr, oid: 1.3.6.1.2.1.2.2.1.2, map: {a: b}}]
          metrics:
            - {name: custom_octets_total, type: counter, help: "o",
               sources: [{oid: 1.3.6.1.2.1.31.1.1.1.6}, {oid: 1.3.6.1.2.1.2.2.1.10, unless: [0]}]}
mqtt:
  host: 127.0.0.1
  port: 1883
  username: monitord
  password: {env: MONITORD_FUZZ_COMMUNITY}
  topic_prefix: spbe/fuzz
report:
  timezone: Asia/Makassar
  slo: {village-ap: 95}
  maintenance:
    - {kabupaten: [k1], start: 2026-01-10 22:00, end: 2026-01-11 02:00, reason: radio}
  schedule: {cron: "0 6 1 * *", period: month, formats: [html, csv], languages: [id, en]}
web:
  basic_auth_users:
    prometheus: $2y$10$Tz8wq1mKb2Jm0m2m1q0VqO1kZ9cYH7t2o2m1bq8c1GQm0m2m1q0Vq
province:
  id: fuzz
  uplink: core
  defaults: {profile: radio, labels: {owner: noc}}
  kabupaten:
    - id: provinsi
      sites:
        - id: dc
          coordinates: {latitude: -2.6, longitude: 118.8}
          devices:
            - {id: core, role: dc-network, address: 10.76.0.1, snmp: {profile: v3, modules: [system]}}
    - id: k1
      uplink: link1
      defaults: {snmp: v2}
      sites:
        - id: diskominfo
          devices:
            - {id: link1, role: kabupaten-link, address: "fd00::1"}
            - {id: ap1, role: village-ap, address: 10.76.1.11, parent: link1, labels: {desa: Bambu}}
"""

# A problem names where it is: "line N: key.path: ...". Only two whole-file problems have no
# line: a file that is not UTF-8 (the byte instead) and an empty file.
LOCATED = re.compile(r"^line \d+(, column \d+)?: ")
WHOLE_FILE = re.compile(r"^(not UTF-8 text: .* at byte \d+"
                        r"|the file must be a mapping with at least a 'province' key)$")
SECONDS_LIMIT = 5.0  # per load; the slowest honest load here takes a few milliseconds


@cache
def _default_modules() -> dict[str, Any]:
    return load_default_module_specs()


@contextmanager
def loading_environment() -> Iterator[Path]:
    """A directory to write configs in; the shipped SNMP modules parsed once (they are the
    same file every load, and parsing them is 95% of a load's time); the variables the seeds
    name."""
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        patch.setattr(inventory_module, "load_default_module_specs",
                      lambda: dict(_default_modules()))
        patch.setenv("MONITORD_MQTT_PASSWORD", "contoh-rahasia")
        patch.setenv("MONITORD_FUZZ_COMMUNITY", "public-fuzz")
        patch.setenv("MONITORD_FUZZ_EMPTY", "")
        patch.delenv("MONITORD_FUZZ_UNSET", raising=False)
        secret = Path(directory) / "secret.txt"
        secret.write_text("rahasia-sekali\n")
        yield Path(directory)


def seed_texts(directory: Path) -> list[str]:
    full = FULL_SEED.replace("SECRET_FILE", str(directory / "secret.txt"))
    return [full, *(p.read_text(encoding="utf-8") for p in SEED_FILES)]


def check_inventory(inventory: Inventory) -> None:
    """Every duration a loaded config gives the daemon is finite and above zero."""
    durations = [inventory.scheduler_tick, inventory.history_retention]
    for profile in [*inventory.profiles.values(), *(c.profile for c in inventory.checks)]:
        durations += [profile.interval, profile.timeout]
        if isinstance(profile, IcmpProfile):
            durations += [profile.packet_interval, profile.state.flap_window]
            durations += [profile.state.max_rtt] if profile.state.max_rtt is not None else []
        if isinstance(profile, SnmpProfile):
            durations.append(profile.deadline)
    if inventory.mqtt is not None:
        durations += [inventory.mqtt.keepalive, inventory.mqtt.connect_timeout,
                      inventory.mqtt.max_backoff]
    for value in durations:
        assert math.isfinite(value), f"a duration of {value} seconds was accepted"
        assert value > 0, f"a duration of {value} seconds was accepted"


def check_load(path: Path, limit: float = SECONDS_LIMIT) -> None:
    """The loader's property for one file."""
    error: ConfigError | None = None
    inventory: Inventory | None = None
    with fz.cpu_seconds() as elapsed:
        try:
            inventory = load_inventory(path)
        except ConfigError as caught:
            error = caught
        assert elapsed() < limit, "the load took too long"
    if inventory is not None:
        check_inventory(inventory)
    if error is not None:
        assert error.source == str(path)
        assert str(error).startswith(f"{path}: ")
        assert error.problems
        for problem in error.problems:
            assert LOCATED.match(problem) or WHOLE_FILE.match(problem), problem


def run_property(name: str, ci_examples: int, strategy: st.SearchStrategy[Any],
                 write: Callable[[Path, Any], None]) -> None:
    """Load each generated input (written by `write`) and count the inputs tried."""
    count = fz.tally(name, ci_examples)
    with loading_environment() as directory:
        path = directory / "monitord.yaml"

        @count.settings()
        @given(strategy)
        def prop(case: Any) -> None:
            write(path, case)
            count.run(lambda: check_load(path), lambda: repr(case))

        prop()
    print(count.summary())
    assert count.inputs >= count.target


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


# ---- the properties ---------------------------------------------------------------------------


def test_random_text() -> None:
    run_property("config.random_text", 1500, st.text(max_size=300), _write_text)


def test_random_bytes() -> None:
    run_property("config.random_bytes", 800, st.binary(max_size=300), _write_bytes)


def test_random_yaml_structures() -> None:
    documents = st.one_of(
        fz.yaml_values(),
        fz.yaml_values().map(lambda v: {"province": v}),
        st.tuples(st.sampled_from(["daemon", "profiles", "snmp", "mqtt", "report", "web",
                                   "history"]), fz.yaml_values()).map(
            lambda kv: {kv[0]: kv[1], "province": {"id": "p"}}),
    )
    run_property("config.random_structures", 1200, documents,
                 lambda path, value: _write_text(path, yaml.safe_dump(value, allow_unicode=True)))


def test_text_edits_of_the_shipped_and_test_configs() -> None:
    with loading_environment() as directory:
        seeds = seed_texts(directory)
    edited = st.integers(0, len(seeds) - 1).flatmap(lambda i: fz.text_mutations(seeds[i]))
    run_property("config.text_edits", 1000, edited, _write_text)


def test_structural_edits_of_the_shipped_and_test_configs() -> None:
    with loading_environment() as directory:
        parsed = []
        for text in seed_texts(directory):
            try:
                parsed.append(yaml.safe_load(text))
            except yaml.YAMLError:
                continue  # the deliberately broken test configs
    edits = st.tuples(st.integers(0, len(parsed) - 1), st.lists(st.integers(0, 50), min_size=1,
                                                               max_size=8),
                      st.integers(0, 3), fz.yaml_values())
    run_property("config.structural_edits", 800, edits, lambda path, e: _write_text(
        path, yaml.safe_dump(fz.structural_mutation(parsed[e[0]], e[1], e[2], e[3]),
                             allow_unicode=True)))


def test_alias_bombs_and_recursive_aliases() -> None:
    bombs = st.one_of(
        st.builds(fz.alias_bomb, st.integers(1, 16), st.integers(2, 40),
                  st.sampled_from(fz.ALIAS_PLACES)),
        st.sampled_from([
            "a: &a [*a]\nprovince: {id: p, kabupaten: *a}\n",
            "province: &p {id: p, kabupaten: [{id: k, sites: *p}]}\n",
            "a: &a {b: *a}\nprovince: {id: p, defaults: {labels: *a}}\n",
            "province: &p\n  id: p\n  <<: *p\n",
            "a: &a {<<: *a}\nprovince: {id: p}\n",
            "province: {id: *x}\n",  # an alias to no anchor
        ]),
    )
    run_property("config.alias_bombs", 300, bombs, _write_text)


def test_deep_nesting() -> None:
    nested = st.builds(fz.deep_nesting, st.integers(1, 3000),
                       st.sampled_from(["flow_list", "flow_map", "block_list", "block_map"]))
    run_property("config.deep_nesting", 150, nested, _write_text)


def secret_forms(directory: Path) -> st.SearchStrategy[Any]:
    """{env: VAR} and {file: PATH} for variables set, empty and unset, and files missing,
    empty, not UTF-8, directories, devices, FIFOs, loops, paths with NUL; and wrong shapes."""
    (directory / "empty.txt").write_text("")
    (directory / "latin1.txt").write_bytes(b"rahasia-\xe9\xff\n")
    (directory / "big.txt").write_text("x" * 200_000)
    fifo = directory / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    loop = directory / "loop"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    paths = [str(directory / "secret.txt"), str(directory / "empty.txt"),
             str(directory / "latin1.txt"), str(directory / "big.txt"), str(directory),
             str(fifo), str(loop), "/nonexistent/secret", "/dev/null", "/dev/zero",
             "/dev/urandom", "relative-secret.txt", "a\x00b", "x" * 5000, ""]
    variables = ["MONITORD_FUZZ_COMMUNITY", "MONITORD_FUZZ_EMPTY", "MONITORD_FUZZ_UNSET",
                 "", "A=B", "a\x00b", "x" * 5000]
    return st.one_of(
        st.sampled_from(variables).map(lambda v: {"env": v}),
        st.sampled_from(paths).map(lambda p: {"file": p}),
        st.sampled_from([{}, {"env": 5}, {"file": ["a"]}, {"env": "A", "file": "/x"},
                         {"inline": "x"}, {"env": None}, ["a"], 5, None, "", "short"]),
    )


SECRET_PLACES = (
    ("mqtt", "password"), ("snmp", "profiles", "v2", "community"),
    ("snmp", "profiles", "v3", "auth_password"), ("snmp", "profiles", "v3", "priv_password"),
    ("web", "basic_auth_users", "prometheus"),
)


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_secret_forms_with_missing_variables_and_files() -> None:
    with loading_environment() as directory:
        full = yaml.safe_load(seed_texts(directory)[0])
        forms = secret_forms(directory)
        cases = st.lists(st.tuples(st.sampled_from(SECRET_PLACES), forms), min_size=1, max_size=3)
        count = fz.tally("config.secrets", 250)
        path = directory / "monitord.yaml"

        @count.settings()
        @given(cases)
        def prop(case: list[tuple[tuple[str, ...], Any]]) -> None:
            data = yaml.safe_load(yaml.safe_dump(full))
            for place, form in case:
                data = _set(data, place, form)
            _write_text(path, yaml.safe_dump(data, allow_unicode=True))
            count.run(lambda: check_load(path), lambda: repr(case))

        prop()
    print(count.summary())
    assert count.inputs >= count.target


def test_the_full_seed_loads() -> None:
    """The seed that reaches every section is itself valid, so edits start from a good file."""
    with loading_environment() as directory:
        path = directory / "full.yaml"
        path.write_text(seed_texts(directory)[0])
        inventory = load_inventory(path)
    assert {c.target for c in inventory.checks} == {"core", "link1", "ap1"}
    check_inventory(inventory)


# ---- regression tests: one per crash, hang or unlocated error the fuzzing found -------------


def _load(text: str, name: str = "monitord.yaml") -> ConfigError:
    """Load `text`; it must fail with a ConfigError, which is returned."""
    with loading_environment() as directory:
        path = directory / name
        path.write_text(text, encoding="utf-8")
        with fz.cpu_seconds() as elapsed, pytest.raises(ConfigError) as caught:
            load_inventory(path)
        assert elapsed() < 2.0
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value


@pytest.mark.parametrize(("text", "where", "kind"), [
    ("a: !!int abc\nprovince: {id: p}\n", "line 1, column 4", "int"),
    ("a: !!int\nprovince: {id: p}\n", "line 1, column 4", "int"),
    ("a: !!float x\nprovince: {id: p}\n", "line 1, column 4", "float"),
    ("province: {id: 2025-13-45}\n", "line 1, column 16", "timestamp"),
    ("a: !!timestamp x\nprovince: {id: p}\n", "line 1, column 4", "timestamp"),
    ("province: {id: p}\na: " + "9" * 5000 + "\n", "line 2, column 4", "int"),  # > 4300 digits
])
def test_a_value_its_tag_cannot_hold_is_an_error_at_its_line(text: str, where: str,
                                                              kind: str) -> None:
    """Crash: ValueError, IndexError (an empty `!!int`) and AttributeError (`!!timestamp x`)
    out of PyYAML's constructors."""
    assert _load(text).problems == [f"{where}: invalid YAML: this value is not a valid {kind}"]


def test_a_secret_with_the_wrong_tag_is_not_quoted_back() -> None:
    error = _load("mqtt: {host: h, username: u, password: !!int hunter2}\nprovince: {id: p}\n")
    assert "hunter2" not in str(error)


@pytest.mark.parametrize("form", ["flow_list", "flow_map", "block_list", "block_map"])
def test_deep_nesting_is_refused_at_its_line(form: str) -> None:
    """Crash: RecursionError in PyYAML's composer (about 300 levels were enough)."""
    error = _load(fz.deep_nesting(5000 if form.startswith("flow") else 400, form))
    assert len(error.problems) == 1
    assert re.match(rf"line \d+, column \d+: invalid YAML: nested more than {MAX_DEPTH} levels",
                    error.problems[0])


def test_nesting_just_below_the_limit_is_parsed() -> None:
    """61 levels are read as YAML; only the schema then refuses a list as the province."""
    with loading_environment() as directory:
        path = directory / "deep.yaml"
        path.write_text(fz.deep_nesting(MAX_DEPTH - 3, "flow_list"))
        with pytest.raises(ConfigError, match="province: Input should be a valid dictionary"):
            load_inventory(path)


@pytest.mark.parametrize("place", ["device_tree", "snmp_tree"])
def test_an_alias_bomb_is_refused_not_expanded(place: str) -> None:
    """Hang: 100 aliases per level over 3 levels (about 1 kB of text) made validation walk a
    million devices (8 s at 60 per level, growing as the cube)."""
    error = _load(fz.alias_bomb(3, 100, place))
    assert len(error.problems) == 1
    assert re.match(r"line 1, column \d+: invalid YAML: aliases expand this document past "
                    rf"{MIN_EXPANSION_BUDGET} nodes \(it has \d+ as written\): refused as an "
                    "alias bomb", error.problems[0])


def test_aliases_within_the_budget_still_work() -> None:
    with loading_environment() as directory:
        path = directory / "aliases.yaml"
        path.write_text("province:\n  id: p\n  defaults: &d {role: village-ap, labels: {a: b}}\n"
                        "  kabupaten:\n    - {id: k, defaults: *d, sites: [{id: s, devices: "
                        "[{id: d1, address: 10.0.0.1}, {id: d2, address: 10.0.0.2}]}]}\n")
        inventory = load_inventory(path)
    assert [c.labels for c in inventory.checks] == [(("a", "b"),), (("a", "b"),)]


@pytest.mark.parametrize("text", [
    "a: &a [*a]\nprovince: {id: p, kabupaten: *a}\n",
    "province: &p\n  id: p\n  <<: *p\n",
])
def test_a_recursive_alias_is_refused(text: str) -> None:
    error = _load(text)
    assert re.match(r"line \d+, column \d+: invalid YAML: alias \*\w+ refers to a node that "
                    "contains it", error.problems[0])


@pytest.mark.parametrize(("text", "line"), [("province: {id: p\x01}\n", "line 1, column 17"),
                                            ("province:\n  id: p\n  name: \x7f\n", "line 3, column 9")])
def test_a_control_character_is_reported_at_its_line(text: str, line: str) -> None:
    """Unlocated: PyYAML's ReaderError has a character position and no line."""
    assert _load(text).problems[0].startswith(f"{line}: invalid YAML: character #x")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "~\n"])
def test_a_document_that_is_not_a_mapping_names_its_line(text: str) -> None:
    assert _load(text).problems == ["line 1: the file must be a mapping with at least a "
                                    "'province' key"]


@pytest.mark.parametrize("value", [".nan", ".inf", "1" + "0" * 400, "9" * 400 + "s"])
def test_a_duration_must_be_finite(value: str) -> None:
    """Crash: OverflowError for an integer of hundreds of digits; NaN and infinity passed
    every bound (NaN compares false) and reached the scheduler."""
    error = _load(f"profiles:\n  x: {{interval: {value}}}\nprovince: {{id: p}}\n")
    assert error.problems == ["line 2: profiles.x.interval: a duration must be a finite number "
                              "of seconds"]


def test_an_infinite_snmp_version_is_a_schema_error() -> None:
    """Crash: int(.inf) raised OverflowError inside a pydantic validator."""
    error = _load("snmp:\n  profiles:\n    x: {version: .inf, community: c}\nprovince: {id: p}\n")
    assert error.problems == ["line 3: snmp.profiles.x.version: Input should be '1', '2c' or '3'"]


@pytest.mark.parametrize("oid", ["1.45.6", "1.3.4294967296", "1.3." + "9" * 5000])
def test_a_module_oid_ber_cannot_carry_is_a_schema_error(oid: str) -> None:
    """Crash: the regex passed them and encode_oid raised ValueError while compiling modules."""
    error = _load(f"snmp:\n  modules:\n    m: {{scalars: [{{name: m_x, help: h, oid: '{oid}'}}]}}\n"
                  "province: {id: p}\n")
    assert error.problems == [f"line 3: snmp.modules.m.scalars[0].oid: '{oid}' is not a numeric "
                              "OID (like 1.3.6.1.2.1.1.3.0)"]


def test_a_file_path_with_nul_is_a_schema_error() -> None:
    """Crash: the OS refuses such a path with ValueError, which nothing caught."""
    for key in ("password: {file: \"a\\0b\"}", "tls: {ca_file: \"a\\0b\"}"):
        error = _load(f"mqtt: {{host: h, username: u, {key}}}\nprovince: {{id: p}}\n")
        assert error.problems[0].startswith("line 1: mqtt.")
        assert error.problems[0].endswith(": a file path cannot contain a NUL character")


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "fifo", "directory"])
def test_a_secret_or_tls_file_that_is_not_a_regular_file_is_refused(special: str) -> None:
    """Hang: {file: /dev/zero} read until memory ran out, a FIFO blocked the load for ever;
    the TLS files of mqtt and web had the same problem."""
    with tempfile.TemporaryDirectory() as directory:
        name = {"fifo": f"{directory}/fifo", "directory": directory}.get(special, special)
        if special == "fifo":
            os.mkfifo(name)
        for section in (f"mqtt: {{host: h, username: u, password: {{file: {name}}}}}",
                        f"mqtt: {{host: h, tls: {{ca_file: {name}}}}}",
                        f"web: {{tls_server_config: {{cert_file: {name}, key_file: {name}}}}}"):
            error = _load(f"{section}\nprovince: {{id: p}}\n")
            for problem in error.problems:
                assert problem.startswith("line 1: ")
                assert problem.endswith(f"{name}: not a regular file")
