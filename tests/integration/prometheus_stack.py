"""A real Prometheus, a real Alertmanager and a loopback webhook receiver, for integration tests
of the shipped rules, routing tree and dashboards.

Everything listens on a free 127.0.0.1 port, keeps its data in the test's tmp directory and is
stopped by PID. The shipped files are never used in place: a test runs on copies, changed only
as rules_for_test() and alertmanager_config_for_test() say (and why).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

from tests.integration.harness import free_port, stop_process, wait_for

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "exporters" / "prometheus" / "rules"
SCRAPE_EXAMPLE = REPO / "exporters" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = REPO / "exporters" / "alertmanager" / "alertmanager.yml"
JOB = "monitord"

# An alert's `for:` in a test run: long enough that one odd evaluation cannot fire it, short
# enough that an outage is seen in seconds (monitord's lab profiles probe every second).
TEST_FOR = "3s"
# Alertmanager's timings in a test run: notify a new group after 1 s and changes to it after
# 1 s; never repeat within a test, so every notification received is a new fact.
TEST_GROUP_WAIT, TEST_GROUP_INTERVAL, TEST_REPEAT_INTERVAL = "1s", "1s", "1h"

_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400,
                 "y": 365 * 86400}


def prometheus_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m`, `5m` or `500ms`."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + unit for n, unit in parts) != text:
        raise ValueError(f"{text!r} is not a Prometheus duration")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)


# --- the shipped files, as a test runs them ------------------------------------------------

def shipped_rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rules_for_test(source: Path, dest: Path, alert_for: str = TEST_FOR) -> Path:
    """A copy of a rule file for a test run. Changed: every alert's `for:` longer than
    `alert_for` is cut to it (a 10-minute `for` cannot be waited out in a test), and a group's
    own `interval:` is dropped so it is evaluated every second like the rest. Expressions,
    labels, annotations and recording rules are unchanged."""
    doc = yaml.safe_load(source.read_text())
    limit = prometheus_duration(alert_for)
    for group in doc.get("groups", []):
        group.pop("interval", None)
        for rule in group.get("rules", []):
            if "alert" in rule and prometheus_duration(str(rule.get("for", "0s"))) > limit:
                rule["for"] = alert_for
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return dest


def _retime_routes(route: dict[str, Any], top: bool) -> None:
    for key, value in (("group_wait", TEST_GROUP_WAIT), ("group_interval", TEST_GROUP_INTERVAL),
                       ("repeat_interval", TEST_REPEAT_INTERVAL)):
        if top or key in route:
            route[key] = value
    for child in route.get("routes", []):
        _retime_routes(child, top=False)


def alertmanager_config_for_test(source: Path, webhook_base: str, dest: Path) -> Path:
    """A copy of the shipped Alertmanager config for a test run. Changed: every webhook URL's
    scheme and host:port become `webhook_base` (the path, which names the receiver, is kept,
    so the test still sees which receiver got what), and the routing tree's group_wait,
    group_interval and repeat_interval become 1s/1s/1h wherever they are set (minutes of
    batching cannot be waited out in a test). Routes, matchers, grouping and inhibitions are
    unchanged."""
    doc = yaml.safe_load(source.read_text())
    base = urllib.parse.urlsplit(webhook_base)
    for receiver in doc.get("receivers", []):
        for webhook in receiver.get("webhook_configs", []):
            url = urllib.parse.urlsplit(webhook["url"])
            webhook["url"] = urllib.parse.urlunsplit(
                (base.scheme, base.netloc, url.path, url.query, url.fragment))
    _retime_routes(doc["route"], top=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return dest


def example_scrape_job() -> dict[str, Any]:
    """The `monitord` job of the shipped scrape example, to be pointed at a test's monitord."""
    doc = yaml.safe_load(SCRAPE_EXAMPLE.read_text())
    jobs = [job for job in doc.get("scrape_configs", []) if job.get("job_name") == JOB]
    assert len(jobs) == 1, f"{SCRAPE_EXAMPLE} must have one job named {JOB!r}"
    return dict(jobs[0])


def _scrape_job(job: Mapping[str, Any], target: str) -> dict[str, Any]:
    """`job` scraping only `target`, every second. Its relabelling, paths and static labels are
    kept; its service discovery is replaced by the one test target."""
    out = {k: copy.deepcopy(v) for k, v in job.items()
           if not k.endswith("_sd_configs") and k != "static_configs"}
    statics = job.get("static_configs") or [{}]
    static: dict[str, Any] = {"targets": [target]}
    if statics[0].get("labels"):
        static["labels"] = dict(statics[0]["labels"])
    out.update({"job_name": JOB, "scrape_interval": "1s", "scrape_timeout": "1s",
                "static_configs": [static]})
    return out


# --- HTTP --------------------------------------------------------------------------------

class ApiError(Exception):
    """Prometheus refused a query (bad expression, bad matcher...): its own message."""


def _get_json(url: str, timeout: float = 15) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            return json.loads(body)
        except ValueError:
            raise ApiError(f"HTTP {exc.code}: {body[:500]}") from None


def _ready(name: str, proc: subprocess.Popen[bytes], url: str, log: Path) -> Callable[[], bool]:
    def probe() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=5) as resp:  # noqa: S310
                return int(resp.status) == 200
        except OSError:
            return False
    return probe


# --- Prometheus ----------------------------------------------------------------------------

class Prometheus:
    """A real Prometheus scraping one monitord every second (evaluating rules every second,
    sending alerts to `alertmanager` when given), with storage in `workdir`; stopped by PID."""

    def __init__(self, workdir: Path, scrape: str, rule_files: list[Path] | None = None,
                 alertmanager: str | None = None, scrape_job: Mapping[str, Any] | None = None,
                 extra_args: Sequence[str] = (), *, remote_write: str | None = None,
                 external_labels: Mapping[str, str] | None = None) -> None:
        """`extra_args`: more command-line flags; a --storage.tsdb.retention.time among them
        replaces the 1h default (Prometheus refuses the flag twice). `remote_write`: a
        receiver's write URL; then this Prometheus runs in agent mode (scrape and forward
        only: no rules, no queries, a WAL instead of a TSDB), as beside a shard."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        agent = remote_write is not None
        interval = {"scrape_interval": "1s", "scrape_timeout": "1s"}
        doc: dict[str, Any] = {
            "global": {**interval, "external_labels": dict(external_labels or {})} if agent
            else {**interval, "evaluation_interval": "1s"},
            "scrape_configs": [_scrape_job(scrape_job or {"job_name": JOB}, scrape)],
        }
        if agent:
            doc["remote_write"] = [{"url": remote_write}]
        else:
            doc["rule_files"] = [str(p) for p in rule_files or []]
        if alertmanager is not None:
            doc["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.log_path = workdir / "prometheus.log"
        retention = [] if agent or any(a.startswith("--storage.tsdb.retention.time=")
                                       for a in extra_args) \
            else ["--storage.tsdb.retention.time=1h"]
        storage = ["--enable-feature=agent", f"--storage.agent.path={workdir / 'agent'}"] \
            if agent else [f"--storage.tsdb.path={workdir / 'data'}"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={self.config}", *storage,
                 f"--web.listen-address=127.0.0.1:{self.port}", *retention, *extra_args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for("prometheus ready", _ready("prometheus", self.proc, self.url, self.log_path),
                     timeout=30)
        except BaseException:
            self.stop()
            raise

    def get(self, path: str, **params: str) -> Any:
        """`data` of a GET /api/v1/`path`; ApiError with Prometheus's message if it fails."""
        body = _get_json(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        if body.get("status") != "success":
            raise ApiError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def api(self, path: str, **params: str) -> Any:
        """`result` of a query endpoint (query, query_range)."""
        return self.get(path, **params)["result"]

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query's data: {"resultType": ..., "result": ...}."""
        return dict(self.get("query", query=expr))

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        return dict(self.get("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}",
                             step=f"{step:g}"))

    def instant(self, expr: str) -> float | None:
        """The value of a query that selects one series, or None."""
        result = self.api("query", query=expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def series_labels(self, expr: str) -> list[dict[str, str]]:
        """The label sets an instant vector query returns."""
        return [dict(s["metric"]) for s in self.api("query", query=expr)]

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        params = {"match[]": match} if match else {}
        return list(self.get(f"label/{label}/values", **params))

    def metric_names(self) -> set[str]:
        return set(self.label_values("__name__"))

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) as the rule evaluation sees them."""
        return list(self.get("alerts")["alerts"])

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.get("rules")["groups"])

    def stop(self) -> None:
        stop_process(self.proc, grace=15)


@contextmanager
def prometheus(workdir: Path, scrape: str, rule_files: list[Path] | None = None,
               alertmanager: str | None = None,
               scrape_job: Mapping[str, Any] | None = None,
               extra_args: Sequence[str] = ()) -> Iterator[Prometheus]:
    server = Prometheus(workdir, scrape, rule_files, alertmanager, scrape_job, extra_args)
    try:
        yield server
    finally:
        server.stop()


# --- Alertmanager --------------------------------------------------------------------------

class Alertmanager:
    """A real Alertmanager (no clustering, storage in `workdir`) on a free loopback port."""

    BINARY = "/usr/bin/prometheus-alertmanager"

    def __init__(self, workdir: Path, config: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.config = config
        self.log_path = workdir / "alertmanager.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.BINARY, f"--config.file={config}", f"--storage.path={workdir / 'data'}",
                 f"--web.listen-address={self.address}", "--cluster.listen-address=",
                 "--log.level=debug"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for("alertmanager ready", _ready("alertmanager", self.proc, self.url, self.log_path),
                     timeout=30)
        except BaseException:
            self.stop()
            raise

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts as Alertmanager holds them, with `status.state` active/suppressed and
        `status.inhibitedBy`."""
        return list(_get_json(f"{self.url}/api/v2/alerts"))

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Alerts sent the way Prometheus sends them ({"labels", "annotations", "startsAt"...})."""
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/api/v2/alerts", json.dumps(alerts).encode(),
            {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=15) as resp:  # noqa: S310 - loopback
            assert int(resp.status) == 200, resp.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc, grace=15)


def routed_receivers(config: Path, labels: Mapping[str, str]) -> list[str]:
    """The receivers Alertmanager's routing tree in `config` gives an alert with `labels`,
    as `amtool config routes test` computes them."""
    out = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={config}",
                          *(f"{k}={v}" for k, v in sorted(labels.items()))],
                         capture_output=True, text=True, check=True, timeout=30)
    return [name.strip() for name in out.stdout.strip().split(",") if name.strip()]


# --- the webhook receiver ------------------------------------------------------------------

@dataclass(frozen=True)
class NotifiedAlert:
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class Notification:
    """One POST from Alertmanager: `receiver` is the last element of the URL path (how the
    province's relay tells receivers apart), `named_receiver` the payload's own field."""

    receiver: str
    named_receiver: str
    status: str
    group_labels: dict[str, str]
    alerts: list[NotifiedAlert]
    received_at: float = field(default_factory=time.monotonic)


class WebhookReceiver:
    """A loopback HTTP server (in a thread) recording every Alertmanager notification."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.bad_requests: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.record(self.path, self.rfile.read(length))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reports what it received

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def record(self, path: str, body: bytes) -> None:
        try:
            payload = json.loads(body)
            notification = Notification(
                receiver=urllib.parse.urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1],
                named_receiver=payload["receiver"], status=payload["status"],
                group_labels=dict(payload.get("groupLabels") or {}),
                alerts=[NotifiedAlert(a["status"], dict(a["labels"]), dict(a.get("annotations") or {}))
                        for a in payload["alerts"]])
        except (ValueError, KeyError, TypeError) as exc:
            with self._lock:
                self.bad_requests.append(f"{path}: {exc!r}: {body[:300]!r}")
            return
        with self._lock:
            self.notifications.append(notification)

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self.notifications)

    def wait_for(self, what: str, check: Callable[[list[Notification]], T | None],
                 timeout: float = 60) -> T:
        """Until `check` of everything received so far returns something truthy."""
        return wait_for(what, lambda: check(self.received()), timeout=timeout)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
