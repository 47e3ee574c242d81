"""TLS of the HTTP endpoint: the server certificate and, optionally, client certificates.

The files are read once, when the config is loaded (a bad file is a config error naming it)
and again on every reload, so a renewed certificate is picked up by SIGHUP or /-/reload.
Key names and values follow Prometheus exporter-toolkit's tls_server_config.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

# Go's names, as in exporter-toolkit. RequestClientCert and RequireAnyClientCert accept a
# certificate without checking it, which authenticates nobody, so they are not offered.
ClientAuthType = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
TlsVersion = Literal["TLS12", "TLS13"]  # older versions are broken; OpenSSL refuses them too

_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_VERIFY = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
           "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}


class TlsFileError(ValueError):
    """A TLS file that cannot be used; `key` is its tls_server_config key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A loaded TLS setup: the settings as configured plus the context built from them."""

    cert_file: str
    key_file: str
    client_ca_file: str | None
    client_auth_type: ClientAuthType
    min_version: TlsVersion
    max_version: TlsVersion
    context: ssl.SSLContext = field(compare=False, repr=False)


def load_server_tls(cert_file: str, key_file: str, client_ca_file: str | None = None,
                    client_auth_type: ClientAuthType = "NoClientCert",
                    min_version: TlsVersion = "TLS12",
                    max_version: TlsVersion = "TLS13") -> ServerTls:
    """Read the files and build the server context. Raises TlsFileError naming the file."""
    _check_certificate(cert_file, "cert_file", "certificate")
    _check_private_key(key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[min_version]
    context.maximum_version = _VERSIONS[max_version]
    context.set_alpn_protocols(["http/1.1"])  # clients offering h2 learn it is not spoken
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsFileError("key_file", f"the private key in {key_file} does not belong to the "
                               f"certificate in {cert_file}") from None
        raise TlsFileError("cert_file", f"cannot use {cert_file} with {key_file}: "
                           f"{exc.reason or exc}") from None
    context.verify_mode = _VERIFY[client_auth_type]
    if client_ca_file is not None:
        _check_certificate(client_ca_file, "client_ca_file", "CA certificate")
        try:
            context.load_verify_locations(cafile=client_ca_file)
        except ssl.SSLError as exc:
            raise TlsFileError("client_ca_file", f"cannot use {client_ca_file} as client CA: "
                               f"{exc.reason or exc}") from None
    return ServerTls(cert_file, key_file, client_ca_file, client_auth_type, min_version,
                     max_version, context)


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(key, f"cannot read {path}: {exc.strerror or exc}") from None


def _check_certificate(path: str, key: str, what: str) -> None:
    data = _read(path, key)
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsFileError(key, f"{path} holds no PEM {what}") from None


def _check_private_key(path: str) -> None:
    """Checked here rather than by OpenSSL, which would prompt on the terminal for the
    passphrase of an encrypted key and otherwise only says "PEM lib"."""
    data = _read(path, "key_file")
    try:
        serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted, and no password given
        raise TlsFileError("key_file", f"{path} is an encrypted private key; monitord needs it "
                           "unencrypted (readable only by monitord's user)") from None
    except ValueError:
        raise TlsFileError("key_file", f"{path} holds no PEM private key") from None
