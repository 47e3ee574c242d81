"""A private mosquitto broker (Debian's 2.0.11) for integration tests, a test CA to give it
TLS, and a paho subscriber that records what the broker delivers.

The broker runs in the foreground on a config file of its own in the test's directory, on
127.0.0.1 only, and is stopped by its PID. It runs as root (`user root`): the tests run as root
in their namespace, and the default would drop to the `mosquitto` user, who cannot read the
test's password file, certificates or persistence directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import paho.mqtt.client as paho
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.harness import free_port, stop_process

T = TypeVar("T")

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"  # noqa: S105 - a program, not a password
HOST = "127.0.0.1"


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA whose certificate is `cert_file` (PEM)."""

    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    cert_file: Path

    @classmethod
    def create(cls, directory: Path, name: str) -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (_builder(subject, subject, key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        cert_file = directory / f"{name}.crt"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(name, key, cert, cert_file)

    def issue_server(self, directory: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
        """(certificate file, key file) of a server certificate naming `hosts` (IPs or DNS)."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._issue(directory, "server", hosts[0], ExtendedKeyUsageOID.SERVER_AUTH,
                           x509.SubjectAlternativeName(names))

    def issue_client(self, directory: Path, name: str) -> tuple[Path, Path]:
        """(certificate file, key file) of a client certificate for `name`."""
        return self._issue(directory, name, name, ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(self, directory: Path, stem: str, common_name: str, usage: x509.ObjectIdentifier,
               *extensions: x509.ExtensionType) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (_builder(subject, self.cert.subject, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
        return cert_file, key_file


def _builder(subject: x509.Name, issuer: x509.Name,
             public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)))


class Mosquitto:
    """mosquitto on 127.0.0.1:`port`. Options: password `users` (anonymous refused then),
    TLS with a fresh CA (`ca`, `ca_file`) and a server certificate for `cert_hosts`, client
    certificates from that CA required (`require_certificate`), `persistence` (retained
    messages and persistent sessions survive a restart), an `acl_file`."""

    def __init__(self, workdir: Path, *, users: Mapping[str, str] | None = None,
                 tls: bool = False, cert_hosts: Sequence[str] = (HOST, "localhost"),
                 require_certificate: bool = False, persistence: bool = False,
                 acl_file: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.users = dict(users or {})
        self.persistence = persistence
        self.acl_file = acl_file
        self.require_certificate = require_certificate
        self.config = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.ca: CertificateAuthority | None = None
        self._server_cert: tuple[Path, Path] | None = None
        if tls:
            self.ca = CertificateAuthority.create(workdir / "pki", "monitord-test-ca")
            self._server_cert = self.ca.issue_server(workdir / "pki", cert_hosts)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> str:
        assert self.ca is not None, "this broker was made without TLS"
        return str(self.ca.cert_file)

    def _config_text(self) -> str:
        lines = [
            "user root",
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'false' if self.users else 'true'}",
            f"log_dest file {self.log_path}",  # flushed per line, unlike its stdout
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.persistence:
            lines.append(f"persistence_location {self.workdir / 'persist'}/")
        if self.users:
            lines.append(f"password_file {self.workdir / 'passwd'}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.ca is not None and self._server_cert is not None:
            cert, key = self._server_cert
            lines += [f"cafile {self.ca.cert_file}", f"certfile {cert}", f"keyfile {key}"]
            if self.require_certificate:
                lines.append("require_certificate true")
        return "\n".join(lines) + "\n"

    def _write_passwords(self) -> None:
        path = self.workdir / "passwd"
        path.unlink(missing_ok=True)
        for index, (user, password) in enumerate(self.users.items()):
            create = ["-c"] if index == 0 else []
            subprocess.run([MOSQUITTO_PASSWD, *create, "-b", str(path), user, password],
                           check=True, capture_output=True, timeout=30)

    def start(self) -> Mosquitto:
        """Starts it (again, on the same port after stop() or kill())."""
        assert self.proc is None or self.proc.poll() is not None, "mosquitto is already running"
        if self.persistence:
            (self.workdir / "persist").mkdir(exist_ok=True)
        if self.users:
            self._write_passwords()
        self.config.write_text(self._config_text())
        self.log_path.touch()
        started_at = self.log_path.stat().st_size
        # Its stdout and stderr only say that it runs as root.
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_running(started_at)
        return self

    def _wait_running(self, log_offset: int, timeout: float = 10.0) -> None:
        """Until this run logged "running", which it does once its listener is open."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}:\n{self.log()}")
            with self.log_path.open("rb") as log:
                log.seek(log_offset)
                if b" running" in log.read():
                    return
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"mosquitto did not start within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file then) and wait."""
        stop_process(self.proc)

    def save(self, timeout: float = 10.0) -> None:
        """SIGUSR1: write the persistence file now, so a kill() afterwards loses no session."""
        assert self.proc is not None
        assert self.persistence, "this broker was made without persistence"
        saved = self.log().count("Saving in-memory database")
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while self.log().count("Saving in-memory database") <= saved:
            if time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not save within {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def pause(self) -> None:
        """SIGSTOP: a hung broker. The kernel still accepts bytes for it; nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttRecorder:
    """A paho subscriber on its own thread that records every message it is delivered.

    With `clean_session=False` (the default) and a fixed client id, the broker keeps its
    subscription and queues QoS 1 messages while it is away, so nothing published during a
    broker restart is missed (given broker persistence). paho reconnects it by itself.
    """

    def __init__(self, broker: Mosquitto, topic: str, client_id: str = "recorder", *,
                 clean_session: bool = False, username: str | None = None,
                 password: str | None = None, tls: bool = False) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean_session)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(ca_certs=broker.ca_file)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._broker = broker

    def start(self, timeout: float = 10.0) -> MqttRecorder:
        self.client.connect(HOST, self._broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise AssertionError(f"recorder did not subscribe to {self.topic} within {timeout}s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MqttRecorder:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            return
        if flags.session_present:  # the broker kept our subscription (persistent session)
            self._subscribed.set()
        else:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Received(message.topic, bytes(message.payload), message.retain))

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def on_topic(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    def wait_for(self, what: str, predicate: Callable[[list[Received]], T | None],
                 timeout: float = 15.0) -> T:
        """Until predicate(messages so far) is truthy; fails naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        result: T | None = None
        while time.monotonic() < deadline:
            result = predicate(self.messages)
            if result:
                return result
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                             f"received {len(self.messages)} messages, last result {result!r}")


def retained(broker: Mosquitto, topic: str, settle: float = 0.5, **options: Any) -> list[Received]:
    """What a new subscriber to `topic` gets: the retained messages (clean session).
    Retained messages arrive right after the SUBACK; `settle` bounds the wait for them."""
    with MqttRecorder(broker, topic, client_id=f"retained-{time.monotonic_ns()}",
                      clean_session=True, **options) as recorder:
        time.sleep(settle)
        return [m for m in recorder.messages if m.retain]
