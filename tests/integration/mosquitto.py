"""A private mosquitto broker for integration tests, a test CA to give it TLS, and a paho
subscriber that records what the broker delivers.

The broker process and the recorder are monitord.lab's (the province lab and the soak use them
too): see there how they run. This module adds the test CA, a recorder made from a test broker
that tests can wait on, and `retained`.
"""

from __future__ import annotations

import datetime
import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitord.lab.broker import HOST, BrokerTls
from monitord.lab.broker import Mosquitto as LabMosquitto
from monitord.lab.mqtt_recorder import MqttRecorder as LabMqttRecorder
from monitord.lab.mqtt_recorder import Received

T = TypeVar("T")


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


class Mosquitto(LabMosquitto):
    """The lab's mosquitto (monitord.lab.broker) with TLS from a fresh test CA: `tls=True`
    makes the CA (`ca`, `ca_file`) and a server certificate for `cert_hosts`."""

    def __init__(self, workdir: Path, *, users: Mapping[str, str] | None = None,
                 tls: bool = False, cert_hosts: Sequence[str] = (HOST, "localhost"),
                 require_certificate: bool = False, persistence: bool = False,
                 acl_file: Path | None = None) -> None:
        self.ca: CertificateAuthority | None = None
        files: BrokerTls | None = None
        if tls:
            self.ca = CertificateAuthority.create(workdir / "pki", "monitord-test-ca")
            cert, key = self.ca.issue_server(workdir / "pki", cert_hosts)
            files = BrokerTls(self.ca.cert_file, cert, key)
        super().__init__(workdir, users=users, tls=files, require_certificate=require_certificate,
                         persistence=persistence, acl_file=acl_file)

    @property
    def ca_file(self) -> str:
        assert self.ca is not None, "this broker was made without TLS"
        return str(self.ca.cert_file)


class MqttRecorder(LabMqttRecorder):
    """monitord.lab's recorder, made from a test broker (TLS from its CA), that tests can wait on."""

    def __init__(self, broker: Mosquitto, topic: str, client_id: str = "recorder", *,
                 clean_session: bool = False, username: str | None = None,
                 password: str | None = None, tls: bool = False) -> None:
        super().__init__(broker.port, topic, client_id, clean_session=clean_session,
                         username=username, password=password,
                         ca_file=broker.ca_file if tls else None)

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
