"""Resolve a config file into an immutable Inventory of Checks.

Inheritance (province -> kabupaten -> site -> device defaults), profile lookup, implied
parents (the nearest enclosing `uplink` that is not the device itself) and every cross-
reference check happen here, once, at load. Every problem names the file, the key path and
the line; all problems of a file are reported together.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_origin

from pydantic import ValidationError

from monitord.config.errors import ConfigError
from monitord.config.files import file_problem
from monitord.config.report_schema import resolve_report
from monitord.config.schema import (
    ConfigFile,
    CoordinatesSpec,
    DefaultsSpec,
    DeviceSpec,
    KabupatenSpec,
    ProfileSpec,
    SiteSpec,
)
from monitord.config.snmp_schema import DeviceSnmpSpec, SnmpProfileSpec
from monitord.config.values import SecretSpec
from monitord.config.web_schema import resolve_web
from monitord.config.yamlload import KeyPath, LoadedYaml, load_yaml
from monitord.model import (
    Check,
    Coordinates,
    IcmpProfile,
    Inventory,
    MqttSettings,
    MqttTls,
    Secret,
    SnmpCredentials,
    SnmpProfile,
    StateParams,
)
from monitord.report.pdf import find_chromium
from monitord.report.settings import ReportSettings
from monitord.shard import Shard
from monitord.snmp.modules import (
    SnmpModule,
    compile_module,
    load_default_module_specs,
    metric_conflicts,
)

DEFAULT_PROFILE = "default"


def load_inventory(path: str | Path) -> Inventory:
    """Load, validate and resolve one config file. Raises ConfigError listing every problem."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        line = doc.line_of(())
        where = f"line {line}: " if line else ""  # no line: the file has no YAML at all
        raise ConfigError(doc.source, [f"{where}the file must be a mapping with at least a "
                                       "'province' key"])
    try:
        spec = ConfigFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(doc.source, _validation_problems(doc, exc)) from None
    return _Resolver(doc, spec).resolve()


def format_path(data: Any, path: KeyPath) -> str:
    """`province.kabupaten[majene].sites[0]...`: list items by id where they have one."""
    out = ""
    node = data
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            ident = item.get("id") if isinstance(item, dict) else None
            out += f"[{ident}]" if isinstance(ident, str) and ident else f"[{part}]"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _problem(doc: LoadedYaml, path: KeyPath, message: str) -> str:
    line = doc.line_of(path)
    where = f"line {line}: " if line else ""
    return f"{where}{format_path(doc.data, path)}: {message}"


def _validation_problems(doc: LoadedYaml, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _allowed_keys(loc[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), parent, n=1)
            message = f"unknown key {loc[-1]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "string_pattern_mismatch":
            message = f"{err['input']!r} does not match {err['ctx']['pattern']}"
        else:
            message = err["msg"].removeprefix("Value error, ")
        problems.append(_problem(doc, loc, message))
    return problems


def _allowed_keys(parent_loc: KeyPath) -> list[str]:
    """Field names of the model at `parent_loc`, for did-you-mean hints."""
    model: Any = ConfigFile
    in_dict = False  # the next part is a key of a dict field (profiles.<name>), not a field name
    for part in parent_loc:
        if isinstance(part, int) or model is None or in_dict:
            in_dict = False
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        in_dict = get_origin(annotation) is dict
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args)
                      if isinstance(a, type) and hasattr(a, "model_fields")), None)
    return list(model.model_fields) if model is not None else []


@dataclass(frozen=True, slots=True)
class _Inherited:
    profile: str | None
    role: str | None
    labels: dict[str, str]
    snmp: DeviceSnmpSpec | None = None

    def below(self, defaults: DefaultsSpec) -> _Inherited:
        return _Inherited(
            profile=defaults.profile or self.profile,
            role=defaults.role or self.role,
            labels={**self.labels, **defaults.labels},
            snmp=defaults.snmp or self.snmp,
        )


@dataclass(frozen=True, slots=True)
class _Placed:
    """A device with where it sits in the tree and what it inherited."""

    device: DeviceSpec
    path: KeyPath
    kabupaten: KabupatenSpec
    site: SiteSpec
    inherited: _Inherited
    uplinks: tuple[tuple[str, KeyPath], ...]  # nearest first: site, kabupaten, province


class _Resolver:
    def __init__(self, doc: LoadedYaml, spec: ConfigFile) -> None:
        self.doc = doc
        self.spec = spec
        self.problems: list[str] = []

    def fail(self, path: KeyPath, message: str) -> None:
        self.problems.append(_problem(self.doc, path, message))

    def resolve(self) -> Inventory:
        profiles = self._profiles()
        modules = self._snmp_modules()
        snmp_profiles = self._snmp_profiles(modules)
        placed = list(self._placed_devices())
        self._check_unique_ids(placed)
        known = {p.device.id for p in placed}
        self._check_uplinks(known)
        self._check_default_profiles(profiles)
        checks: list[Check] = []
        for item in placed:
            check = self._check_for(item, profiles, known)
            if check is not None:
                checks.append(check)
                snmp = self._snmp_check_for(item, check, snmp_profiles, modules)
                if snmp is not None:
                    checks.append(snmp)
        if not self.problems:
            self._check_cycles(checks, {p.device.id: p.path for p in placed})
        mqtt = self._mqtt()
        report = self._report(checks)
        web = resolve_web(self.spec.web, self._secret, self.fail)
        if self.problems:
            raise ConfigError(self.doc.source, self.problems)
        daemon = self.spec.daemon
        return Inventory(
            source=self.doc.source,
            province=self.spec.province.id,
            checks=tuple(checks),
            listen=daemon.listen,
            max_concurrent_probes=daemon.max_concurrent_probes,
            state_dir=daemon.state_dir,
            icmp_socket=daemon.icmp_socket,
            scheduler_tick=daemon.scheduler_tick,
            profiles=profiles,
            snmp_modules=modules,
            snmp_max_in_flight=self.spec.snmp.max_in_flight,
            history_retention=self.spec.history.retention,
            mqtt=mqtt,
            report=report,
            web=web,
            shard=Shard.parse(daemon.shard) if daemon.shard is not None else None,
        )

    def _profiles(self) -> dict[str, IcmpProfile]:
        specs = {DEFAULT_PROFILE: ProfileSpec(), **self.spec.profiles}
        return {
            name: IcmpProfile(
                name=name,
                interval=p.interval,
                count=p.count,
                packet_interval=p.packet_interval,
                timeout=p.timeout,
                size=p.size,
                state=StateParams(**p.state.model_dump()),
            )
            for name, p in specs.items()
        }

    def _mqtt(self) -> MqttSettings | None:
        spec = self.spec.mqtt
        if spec is None:
            return None
        province = self.spec.province.id
        tls = None
        if spec.tls is not None:
            self._check_tls_files(spec.tls.ca_file, spec.tls.cert_file, spec.tls.key_file)
            tls = MqttTls(ca_file=spec.tls.ca_file, cert_file=spec.tls.cert_file,
                          key_file=spec.tls.key_file, verify_hostname=spec.tls.verify_hostname)
        return MqttSettings(
            host=spec.host,
            port=spec.port or (8883 if tls else 1883),
            client_id=spec.client_id or f"monitord-{province}",
            topic_prefix=spec.topic_prefix or f"monitord/{province}",
            keepalive=spec.keepalive,
            username=spec.username,
            password=self._secret(spec.password, ("mqtt", "password")),
            tls=tls,
            connect_timeout=spec.connect_timeout,
            max_backoff=spec.max_backoff,
        )

    def _report(self, checks: list[Check]) -> ReportSettings:
        """SLOs, maintenance windows and the schedule. A window naming an id the config does
        not have would silently cover nothing, so it is an error."""
        spec = self.spec.report
        try:
            settings = resolve_report(spec, self.spec.daemon.state_dir)
        except ValueError as error:
            self.fail(("report", "maintenance"), str(error))
            return ReportSettings()
        known = {"targets": {c.target for c in checks}, "sites": {c.site for c in checks},
                 "kabupaten": {c.kabupaten for c in checks}, "roles": {c.role for c in checks}}
        for index, window in enumerate(spec.maintenance):
            for kind, names in known.items():
                for name in getattr(window, kind):
                    if name not in names:
                        hint = difflib.get_close_matches(name, names, n=1)
                        self.fail(("report", "maintenance", index, kind),
                                  f"no {kind.rstrip('s')} {name!r} in this config"
                                  + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        if settings.schedule is not None and "pdf" in settings.schedule.formats \
                and find_chromium() is None:
            self.fail(("report", "schedule", "formats"), "pdf needs a Chromium to print with, "
                      "and none was found: apt install chromium (or set MONITORD_CHROMIUM)")
        return settings

    def _check_tls_files(self, ca_file: str | None, cert_file: str | None,
                         key_file: str | None) -> None:
        """Bad TLS files are config errors at load, not a reconnect loop that never works."""
        context = ssl.create_default_context()
        path: KeyPath = ("mqtt", "tls")
        files = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
        special = {key: (name, problem) for key, name in files.items()
                   if name is not None and (problem := file_problem(name))}
        for key, (name, problem) in special.items():
            self.fail((*path, key), f"cannot read {name}: {problem}")
        if special:
            return
        if ca_file is not None:
            try:
                context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                self.fail((*path, "ca_file"), f"cannot load CA certificates from {ca_file}: "
                          f"{_ssl_reason(exc)}")
        if cert_file is not None and key_file is not None:
            try:
                context.load_cert_chain(cert_file, key_file)
            except (OSError, ssl.SSLError) as exc:
                self.fail((*path, "cert_file"), f"cannot load client certificate {cert_file} "
                          f"with key {key_file}: {_ssl_reason(exc)}")

    def _snmp_modules(self) -> dict[str, SnmpModule]:
        """The shipped modules, with the config's own added or replacing them by name."""
        specs = {**load_default_module_specs(), **self.spec.snmp.modules}
        modules = {name: compile_module(name, spec) for name, spec in specs.items()}
        for name, problem in metric_conflicts(modules):
            self.fail(("snmp", "modules", name) if name in self.spec.snmp.modules else ("snmp",),
                      problem)
        return modules

    def _snmp_profiles(self, modules: dict[str, SnmpModule]) -> dict[str, SnmpProfile]:
        out: dict[str, SnmpProfile] = {}
        for name, spec in self.spec.snmp.profiles.items():
            path: KeyPath = ("snmp", "profiles", name)
            self._check_modules(spec.modules, (*path, "modules"), modules)
            out[name] = SnmpProfile(
                name=name,
                credentials=self._credentials(spec, path),
                interval=spec.interval,
                timeout=spec.timeout,
                retries=spec.retries,
                deadline=spec.deadline if spec.deadline is not None else spec.interval,
                max_repetitions=spec.max_repetitions,
                max_oids_per_request=spec.max_oids_per_request,
                port=spec.port,
                modules=tuple(spec.modules),
            )
        return out

    def _check_modules(self, names: list[str], path: KeyPath,
                       modules: dict[str, SnmpModule]) -> None:
        for i, name in enumerate(names):
            if name not in modules:
                hint = difflib.get_close_matches(name, modules, n=1)
                self.fail((*path, i), f"unknown SNMP module {name!r}"
                          + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; defined: {', '.join(sorted(modules))}")

    def _credentials(self, spec: SnmpProfileSpec, path: KeyPath) -> SnmpCredentials:
        if spec.version != "3":
            community = self._secret(spec.community, (*path, "community"))
            return SnmpCredentials(version=0 if spec.version == "1" else 1, community=community)
        auth = self._secret(spec.auth_password, (*path, "auth_password"), min_length=8)
        priv = self._secret(spec.priv_password, (*path, "priv_password"), min_length=8)
        return SnmpCredentials(version=3, username=spec.username or "",
                               auth_protocol=spec.auth_protocol, auth_password=auth,
                               priv_protocol=spec.priv_protocol, priv_password=priv,
                               context=spec.context)

    def _secret(self, spec: SecretSpec | None, path: KeyPath, min_length: int = 1) -> Secret | None:
        """Read a secret from the file itself, the environment or a file. Problems name the
        variable or the file, never the value."""
        if spec is None:
            return None
        if spec.env is not None:
            value, source = os.environ.get(spec.env), f"env:{spec.env}"
            if value is None:
                self.fail(path, f"environment variable {spec.env} is not set")
                return None
        elif spec.file is not None:
            source = f"file:{spec.file}"
            if problem := file_problem(spec.file):
                self.fail(path, f"cannot read secret file {spec.file}: {problem}")
                return None
            try:
                value = Path(spec.file).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                self.fail(path, f"cannot read secret file {spec.file}: {reason}")
                return None
        else:
            value, source = spec.inline, "inline"
        if value is None or len(value) < min_length:
            need = "is empty" if min_length == 1 else f"must be at least {min_length} characters"
            self.fail(path, f"the secret from {source} {need}")
            return None
        return Secret(value, source)

    def _snmp_check_for(self, item: _Placed, icmp: Check, profiles: dict[str, SnmpProfile],
                        modules: dict[str, SnmpModule]) -> Check | None:
        """The device's SNMP check, if it (or an enclosing defaults block) names a profile."""
        device_spec = item.device.snmp
        spec = device_spec or item.inherited.snmp
        if spec is None:
            return None
        path: KeyPath = (*item.path, "snmp") if device_spec else (*item.path,)
        profile = profiles.get(spec.profile)
        if profile is None:
            hint = difflib.get_close_matches(spec.profile, profiles, n=1)
            defined = ", ".join(sorted(profiles)) or "none (add them under snmp.profiles)"
            self.fail(path, f"unknown SNMP profile {spec.profile!r}; defined: {defined}"
                      + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            return None
        if spec.modules is not None:
            self._check_modules(spec.modules, (*path, "modules"), modules)
            profile = dataclasses.replace(profile, modules=tuple(spec.modules))
        return dataclasses.replace(icmp, kind="snmp", profile=profile)

    def _placed_devices(self) -> Iterator[_Placed]:
        province = self.spec.province
        top = _Inherited(None, None, {}).below(province.defaults)
        province_up = ((province.uplink, ("province", "uplink")),) if province.uplink else ()
        for ki, kab in enumerate(province.kabupaten):
            kpath: KeyPath = ("province", "kabupaten", ki)
            k_inh = top.below(kab.defaults)
            k_up = ((kab.uplink, (*kpath, "uplink")),) if kab.uplink else ()
            for si, site in enumerate(kab.sites):
                spath: KeyPath = (*kpath, "sites", si)
                s_inh = k_inh.below(site.defaults)
                s_up = ((site.uplink, (*spath, "uplink")),) if site.uplink else ()
                for di, device in enumerate(site.devices):
                    yield _Placed(
                        device=device,
                        path=(*spath, "devices", di),
                        kabupaten=kab,
                        site=site,
                        inherited=s_inh,
                        uplinks=s_up + k_up + province_up,
                    )

    def _check_unique_ids(self, placed: list[_Placed]) -> None:
        province = self.spec.province
        kab_seen: dict[str, KeyPath] = {}
        site_seen: dict[str, KeyPath] = {}
        for ki, kab in enumerate(province.kabupaten):
            self._unique(kab_seen, kab.id, ("province", "kabupaten", ki), "kabupaten id")
            for si, site in enumerate(kab.sites):
                self._unique(site_seen, site.id, ("province", "kabupaten", ki, "sites", si), "site id")
        dev_seen: dict[str, KeyPath] = {}
        addr_seen: dict[str, KeyPath] = {}
        for item in placed:
            self._unique(dev_seen, item.device.id, (*item.path, "id"), "device id")
            self._unique(addr_seen, item.device.address, (*item.path, "address"), "address")

    def _unique(self, seen: dict[str, KeyPath], value: str, path: KeyPath, what: str) -> None:
        if value in seen:
            first = seen[value]
            line = self.doc.line_of(first)
            at = f"on line {line}" if line else f"at {format_path(self.doc.data, first)}"
            self.fail(path, f"duplicate {what} {value!r}: already used {at}")
        else:
            seen[value] = path

    def _check_default_profiles(self, profiles: dict[str, IcmpProfile]) -> None:
        province = self.spec.province
        levels: list[tuple[DefaultsSpec, KeyPath]] = [(province.defaults, ("province",))]
        for ki, kab in enumerate(province.kabupaten):
            levels.append((kab.defaults, ("province", "kabupaten", ki)))
            levels += [(site.defaults, ("province", "kabupaten", ki, "sites", si))
                       for si, site in enumerate(kab.sites)]
        for defaults, path in levels:
            if defaults.profile is not None and defaults.profile not in profiles:
                self.fail((*path, "defaults", "profile"), _unknown_profile(defaults.profile, profiles))

    def _check_uplinks(self, known: set[str]) -> None:
        province = self.spec.province
        refs: list[tuple[str | None, KeyPath]] = [(province.uplink, ("province", "uplink"))]
        for ki, kab in enumerate(province.kabupaten):
            refs.append((kab.uplink, ("province", "kabupaten", ki, "uplink")))
            for si, site in enumerate(kab.sites):
                refs.append((site.uplink, ("province", "kabupaten", ki, "sites", si, "uplink")))
        for ref, path in refs:
            if ref is not None and ref not in known:
                self.fail(path, self._unknown_device(ref, known))

    def _unknown_device(self, ref: str, known: set[str]) -> str:
        hint = difflib.get_close_matches(ref, known, n=1)
        return f"no device has id {ref!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")

    def _check_for(self, item: _Placed, profiles: dict[str, IcmpProfile], known: set[str]) -> Check | None:
        device, path = item.device, item.path
        ok = True
        profile_name = device.profile or item.inherited.profile or DEFAULT_PROFILE
        profile = profiles.get(profile_name)
        if profile is None:
            if device.profile:  # an inherited unknown profile is reported once, at its defaults
                self.fail((*path, "profile"), _unknown_profile(profile_name, profiles))
            ok = False
        role = device.role or item.inherited.role
        if role is None:
            self.fail(path, "no role: set role on the device or in an enclosing defaults block")
            ok = False
        parent = device.parent
        if parent is not None:
            if parent not in known:
                self.fail((*path, "parent"), self._unknown_device(parent, known))
                ok = False
            elif parent == device.id:
                self.fail((*path, "parent"), "a device cannot be its own parent")
                ok = False
        else:
            parent = next((up for up, _ in item.uplinks if up != device.id), None)
        if not ok or profile is None or role is None:
            return None
        labels = {**item.inherited.labels, **device.labels}
        return Check(
            target=device.id,
            kind="icmp",
            address=ipaddress.ip_address(device.address),
            province=self.spec.province.id,
            kabupaten=item.kabupaten.id,
            site=item.site.id,
            role=role,
            profile=profile,
            parent=parent,
            labels=tuple(sorted(labels.items())),
            name=device.name,
            coordinates=_coordinates(device.coordinates or item.site.coordinates),
        )

    def _check_cycles(self, checks: list[Check], paths: dict[str, KeyPath]) -> None:
        parent_of = {c.target: c.parent for c in checks}
        reported: set[str] = set()
        for start, first_parent in parent_of.items():
            chain = [start]
            node = first_parent
            while node is not None and node not in chain:
                chain.append(node)
                node = parent_of.get(node)
            if node is None or node in reported:
                continue
            cycle = [*chain[chain.index(node):], node]
            reported.update(cycle)
            self.fail((*paths[node], "parent"), "parent cycle: " + " -> ".join(cycle))


def _unknown_profile(name: str, profiles: dict[str, IcmpProfile]) -> str:
    hint = difflib.get_close_matches(name, profiles, n=1)
    return (f"unknown profile {name!r}; defined: {', '.join(sorted(profiles))}"
            + (f" (did you mean {hint[0]!r}?)" if hint else ""))


def _coordinates(spec: CoordinatesSpec | None) -> Coordinates | None:
    return Coordinates(spec.latitude, spec.longitude) if spec else None


def _ssl_reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)
