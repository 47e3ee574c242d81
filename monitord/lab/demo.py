"""`monitord lab`: build the province lab, run monitord against it, say where to point
Prometheus, Grafana and an MQTT client, and print a live summary until Ctrl-C or --duration.
`--faults` cycles demo faults (a cut kabupaten link, a VSAT outage, radio packet loss) so the
picture moves. Everything is torn down at the end; the files stay in the work directory."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import yaml

import monitord

if TYPE_CHECKING:
    from monitord.lab.faults import DelayedEchoes
    from monitord.lab.province import ProvinceLab
    from monitord.lab.summary import Change
    from monitord.lab.topology import LabPlan

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2
REPO = Path(monitord.__file__).resolve().parent.parent
DEFAULT_LISTEN = "127.0.0.1:9521"


def add_lab_parser(sub: Any) -> None:
    """`monitord lab ...` on the CLI's subparsers."""
    p = sub.add_parser("lab", help="run the province lab demo (root): namespaces, agents, "
                       "monitord, a live summary", description=__doc__)
    p.add_argument("--kabupaten", type=int, default=3, help="kabupaten links (default 3)")
    p.add_argument("--villages", type=int, default=4, help="radio villages per kabupaten (4)")
    p.add_argument("--vsat", type=int, default=1, help="VSAT villages per kabupaten (1)")
    p.add_argument("--dc", type=int, default=5, help="data-center devices besides the core (5)")
    p.add_argument("--duration", type=float, default=0,
                   help="seconds to run, then tear down (default: until Ctrl-C)")
    p.add_argument("--faults", action="store_true", help="cycle demo faults (~30 s each)")
    p.add_argument("--listen", default=DEFAULT_LISTEN,
                   help=f"monitord's /metrics address, on 127.0.0.1 (default {DEFAULT_LISTEN})")
    p.add_argument("--every", type=float, default=5, help="seconds between summaries (5)")
    p.add_argument("--workdir", type=Path,
                   help="where the inventory, logs and state go (default: a new temp directory)")
    p.set_defaults(func=run_lab)


def _loopback_port(listen: str) -> int:
    host, _, port = listen.rpartition(":")
    if host not in ("127.0.0.1", "") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen must be 127.0.0.1:PORT (the lab stays on loopback), not {listen!r}")
    return int(port)


def _port_free(port: int) -> bool:
    import socket  # noqa: PLC0415 - only here

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_and_plan(args: argparse.Namespace) -> tuple[int, LabPlan]:
    from monitord.lab.topology import LabPlan  # noqa: PLC0415

    if args.every <= 0 or args.duration < 0:
        raise ValueError("--every must be positive and --duration not negative")
    return _loopback_port(args.listen), LabPlan(kabupaten=args.kabupaten, villages=args.villages,
                                                vsat_villages=args.vsat, dc_devices=args.dc)


def run_lab(args: argparse.Namespace) -> int:
    # The lab's modules load only when a lab runs: the CLI stays light for everything else.
    from monitord.lab.errors import LabSetupError  # noqa: PLC0415
    from monitord.lab.network import remove_stale_labs  # noqa: PLC0415
    from monitord.lab.province import ProvinceLab, require_root  # noqa: PLC0415

    try:
        require_root()
        port, plan = _port_and_plan(args)
    except (ValueError, LabSetupError) as exc:
        print(f"monitord lab: {exc}", file=sys.stderr)
        return EXIT_SETUP
    if not _port_free(port):
        print(f"monitord lab: 127.0.0.1:{port} is in use (another monitord?): choose another "
              "port with --listen 127.0.0.1:PORT", file=sys.stderr)
        return EXIT_SETUP
    mqtt = _mosquitto_installed()
    if not mqtt:
        print("monitord lab: mosquitto is not installed, so the lab runs without MQTT "
              "(apt-get install mosquitto mosquitto-clients, or scripts/setup.sh --lab)")
    stale = remove_stale_labs()
    if stale:
        print(f"Removed what a killed earlier lab left behind: {', '.join(stale)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="monitord-lab-"))
    lab = ProvinceLab(workdir, plan, mqtt=mqtt, port=port)
    print(f"Building the province lab in {workdir}: {plan.kabupaten} kabupaten, "
          f"{plan.villages} radio + {plan.vsat_villages} VSAT villages each, "
          f"{plan.dc_devices + 1} data-center devices ...", flush=True)
    with _interrupts_end_the_demo() as teardown_begins:
        try:
            with lab:
                try:
                    return _run(lab, args)
                except KeyboardInterrupt:
                    return EXIT_OK
                finally:
                    teardown_begins()
        except LabSetupError as exc:
            print(f"monitord lab: {exc}", file=sys.stderr)
            return EXIT_SETUP
        except KeyboardInterrupt:  # while building: the lab has removed what it made
            return EXIT_OK
        finally:
            _report_teardown(lab)


def _mosquitto_installed() -> bool:
    from monitord.lab.broker import require_mosquitto  # noqa: PLC0415
    from monitord.lab.errors import LabSetupError  # noqa: PLC0415

    try:
        require_mosquitto()
    except LabSetupError:
        return False
    return True


@contextlib.contextmanager
def _interrupts_end_the_demo() -> Iterator[Callable[[], None]]:
    """SIGTERM ends the demo like Ctrl-C (the lab's context exits and tears everything down);
    once teardown begins (the function yielded), both are ignored so that it completes."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    previous = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, interrupt)
    try:
        yield ignore
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), previous, strict=True):
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def _run(lab: ProvinceLab, args: argparse.Namespace) -> int:
    from monitord.lab.summary import Frame, changes_between, render, snapshot  # noqa: PLC0415

    print(f"Lab built: {len(lab.topology.namespaces())} namespaces ({lab.prefix}-*), "
          f"{len(lab.devices)} devices, {len(lab.agents)} snmpsim agents, "
          f"{len(lab.echoes)} VSAT delay responders.", flush=True)
    events = _EventFeed(lab) if lab.broker is not None else None
    with ExitStack() as stack:
        if events is not None:
            stack.callback(events.stop)
        monitord_started = time.time()
        lab.start_monitord()
        print(_pointers(lab), flush=True)
        cycle = stack.enter_context(FaultCycle(demo_faults(lab))) if args.faults else None
        started = time.monotonic()
        deadline = started + args.duration if args.duration else None
        previous = None
        seen: list[Change] = []
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            time.sleep(min(args.every, deadline - now) if deadline is not None else args.every)
            notes = cycle.tick(time.monotonic() - started) if cycle is not None else []
            try:
                current = snapshot(lab.samples(), time.time())
            except OSError as exc:
                print(f"monitord is not answering ({exc}): see {lab.workdir / 'monitord.log'}",
                      file=sys.stderr)
                return EXIT_FAILED
            if events is not None:
                changes = events.recent()
            else:
                seen += changes_between(previous, current) if previous else []
                changes = seen[-20:]
            frame = Frame(monitord_started, previous, changes, notes)
            clear = "\033[H\033[2J" if sys.stdout.isatty() else "\n"
            print(clear + render(current, frame), flush=True)
            previous = current
    return EXIT_OK


def _pointers(lab: ProvinceLab) -> str:
    """Where to look: /metrics, a Prometheus config ready to run, Grafana, MQTT."""
    prometheus = write_prometheus_config(lab.workdir / "prometheus.yml", lab.port)
    dashboards = REPO / "dashboards"
    lines = [
        "",
        f"monitord is running: {lab.url}/metrics  (inventory {lab.inventory_path}, log "
        f"{lab.workdir / 'monitord.log'})",
        f"Prometheus: a scrape config is ready in {prometheus}:",
        f"    prometheus --config.file={prometheus} --storage.tsdb.path={lab.workdir / 'prometheus'}"
        " --web.listen-address=127.0.0.1:9090",
    ]
    if dashboards.is_dir():
        lines.append(f"Grafana: add that Prometheus (http://127.0.0.1:9090) as a data source, then "
                     f"import {dashboards}/monitord-*.json (see {dashboards / 'README.md'})")
    if lab.broker is not None:
        lines.append(f"MQTT: mosquitto_sub -h 127.0.0.1 -p {lab.broker.port} -t "
                     f"'{lab.topic_prefix}/#' -v")
    lines.append(f"States from the history: monitord targets -c {lab.inventory_path}")
    lines.append("Ctrl-C ends the demo and removes the lab.")
    return "\n".join(lines)


def write_prometheus_config(path: Path, port: int) -> Path:
    """A Prometheus config scraping the lab's monitord with the shipped rules (when this is a
    clone of the repository, which has them)."""
    rules = sorted((REPO / "exporters" / "prometheus" / "rules").glob("*.yml"))
    doc: dict[str, Any] = {"global": {"scrape_interval": "5s", "evaluation_interval": "5s"}}
    if rules:
        doc["rule_files"] = [str(p) for p in rules]
    doc["scrape_configs"] = [{"job_name": "monitord",  # the alert rules expect this job name
                              "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]
    path.write_text("# Prometheus for the monitord province lab (monitord lab).\n"
                    + yaml.safe_dump(doc, sort_keys=False))
    return path


def _report_teardown(lab: ProvinceLab) -> None:
    """Check, and say, that the lab left nothing behind."""
    from monitord.lab.network import routes_in_use  # noqa: PLC0415

    left = [ns for ns in _netns_names() if ns.startswith(f"{lab.prefix}-")]
    routes = routes_in_use()
    if left or routes:
        print(f"monitord lab: teardown left namespaces {left} and routes {routes}", file=sys.stderr)
    else:
        print(f"Lab torn down: namespaces, veths and processes removed; files kept in {lab.workdir}",
              flush=True)


def _netns_names() -> list[str]:
    import subprocess  # noqa: PLC0415

    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


class _EventFeed:
    """monitord's state events from the lab broker (a paho client on its own thread)."""

    def __init__(self, lab: ProvinceLab, keep: int = 50) -> None:
        import paho.mqtt.client as paho  # noqa: PLC0415
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

        from monitord.lab.summary import change_from_event  # noqa: PLC0415

        assert lab.broker is not None
        self._changes: deque[Change] = deque(maxlen=keep)
        self._lock = threading.Lock()
        topic = f"{lab.topic_prefix}/events"

        def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
            client.subscribe(topic, qos=1)

        def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
            change = change_from_event(bytes(message.payload))
            if change is not None:
                with self._lock:
                    self._changes.append(change)

        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="monitord-lab-demo")
        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", lab.broker.port, keepalive=30)
        self.client.loop_start()

    def recent(self) -> list[Change]:
        with self._lock:
            return sorted(self._changes, key=lambda c: c.time)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- demo faults --------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoFault:
    """A fault the demo shows: entering `make()`'s context starts it, leaving ends it."""

    title: str
    make: Callable[[], AbstractContextManager[object]]


class FaultCycle:
    """Demo faults one after another: the first `first_after` seconds in, each for `active`
    seconds, then `pause` seconds of calm before the next, round and round. tick(elapsed)
    starts and ends them and says what it did; close() ends the one running."""

    def __init__(self, faults: list[DemoFault], first_after: float = 20.0, active: float = 30.0,
                 pause: float = 20.0) -> None:
        self.faults = faults
        self.first_after, self.active, self.pause = first_after, active, pause
        self._running: tuple[DemoFault, ExitStack] | None = None
        self._done = 0  # faults started so far

    def tick(self, elapsed: float) -> list[str]:
        notes = []
        if self._running is not None and elapsed >= self._ends(self._done - 1):
            fault, stack = self._running
            self._running = None
            try:
                stack.close()
            except Exception as exc:  # the demo goes on; the lab's teardown removes the rest
                notes.append(f"FAULT FAILED TO END: {fault.title}: {exc}")
            else:
                notes.append(f"FAULT ENDED: {fault.title}")
        if self._running is None and self.faults and elapsed >= self._starts(self._done):
            fault = self.faults[self._done % len(self.faults)]
            self._done += 1
            stack = ExitStack()
            try:
                stack.enter_context(fault.make())
            except Exception as exc:
                notes.append(f"FAULT FAILED TO START: {fault.title}: {exc}")
            else:
                self._running = (fault, stack)
                notes.append(f"FAULT STARTED (for {self.active:g} s): {fault.title}")
        elif self._running is not None:
            fault = self._running[0]
            left = self._ends(self._done - 1) - elapsed
            notes.append(f"FAULT ACTIVE ({left:.0f} s left): {fault.title}")
        return notes

    def _starts(self, index: int) -> float:
        return self.first_after + index * (self.active + self.pause)

    def _ends(self, index: int) -> float:
        return self._starts(index) + self.active

    def close(self) -> None:
        if self._running is not None:
            self._running[1].close()
            self._running = None

    def __enter__(self) -> FaultCycle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def demo_faults(lab: ProvinceLab) -> list[DemoFault]:
    """A cut link, a VSAT outage, 50 % loss towards radio villages (when iptables is there),
    round and round, each in the next kabupaten of its kind, so the picture keeps changing."""
    import shutil  # noqa: PLC0415

    from monitord.lab import faults  # noqa: PLC0415

    cuts, outages, losses = [], [], []
    for kab, link in lab.links.items():
        cuts.append(DemoFault(f"{kab}'s link cut (veth {link.core_dev} in {lab.core_ns} down): "
                              f"{link.device} DOWN, its villages UNREACHABLE",
                              partial(faults.link_cut, lab.link(kab))))
        echo = lab.echoes.get(link.vsat_ns or "")
        if echo is not None:
            outages.append(DemoFault(f"VSAT outage in {kab}: replies 2.5 s late, past the 1.5 s "
                                     f"timeout: {', '.join(link.vsat_villages)} DOWN",
                                     partial(_vsat_outage, echo, lab.plan)))
        if shutil.which("iptables") and link.villages:
            losses.append(DemoFault(f"rain fade in {kab}: 50 % of packets to its radio villages "
                                    "lost: DEGRADED (DOWN when probes lose every echo)",
                                    partial(faults.packet_loss, link.desa_ns, 0.5)))
    outages = outages[1:] + outages[:1]
    losses = losses[2:] + losses[:2]
    kinds = [group for group in (cuts, outages, losses) if group]
    return [group[i] for i in range(max(len(g) for g in kinds)) for group in kinds if i < len(group)]


@contextlib.contextmanager
def _vsat_outage(echo: DelayedEchoes, plan: LabPlan) -> Iterator[None]:
    echo.set_delay(2500)
    try:
        yield
    finally:
        echo.set_delay(plan.vsat_delay_ms, plan.vsat_jitter_ms)
