"""A throw-away certificate authority so the ARM sandbox can serve HTTPS on loopback.

MSAL and azure-identity refuse authorities that are not ``https://``. The sandbox
therefore makes, at start, a private CA and a server certificate for ``localhost``,
``127.0.0.1`` and ``::1`` (with ``cryptography``, already installed as an
azure-identity dependency), writes them as PEM files, and serves TLS with them.

The same CA issues client certificates for mutual TLS (``issue_client_cert``), and
``server_context(require_client_cert=True)`` refuses a handshake without one of them.

A client trusts only this CA, per client, without touching the system store:

* azure-identity: ``ClientSecretCredential(..., connection_verify=ca_path)``
* httpx: ``httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_path))``
* aiohttp: ``session.get(url, ssl=ssl.create_default_context(cafile=ca_path))``
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=7)
_SKEW = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class ClientCertFiles:
    """PEM files of one client certificate the sandbox CA issued, and its key."""

    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one sandbox CA: the CA certificate and key, the server chain and its key."""

    ca_path: Path
    cert_path: Path
    key_path: Path
    ca_key_path: Path

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        """Return an SSL context serving the server certificate (TLS 1.2 or newer).

        With ``require_client_cert`` the handshake fails unless the client presents a
        certificate this CA issued (``issue_client_cert``).
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.ca_path))
        return context

    def client_context(self) -> ssl.SSLContext:
        """Return a verifying client SSL context that trusts this CA only."""
        return ssl.create_default_context(cafile=str(self.ca_path))


def _name(common_name: str) -> x509.Name:
    """Return an X.509 name with an organisation and a common name."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Warden sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    """Return a certificate builder with validity, serial and subject key id filled in."""
    now = datetime.datetime.now(datetime.timezone.utc)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """Return a self-signed CA certificate for ``key``."""
    name = _name("Warden sandbox test CA")
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )


def _leaf(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
) -> x509.CertificateBuilder:
    """Return an end-entity certificate builder for ``usage`` (server or client auth)."""
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return (
        _builder(_name(name), ca.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(authority, critical=False)
    )


def _server(
    key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """Return a server certificate for the loopback names, signed by the CA."""
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    return (
        _leaf("localhost", key, ca, ca_key, ExtendedKeyUsageOID.SERVER_AUTH)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None = None) -> None:
    """Write ``key`` as PKCS#8 PEM with mode 0600, encrypted when a password is given."""
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if password:
        encryption = serialization.BestAvailableEncryption(password.encode())
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a new CA and loopback server certificate as PEM files in ``directory``.

    The key file is written with mode 0600. Nothing is added to any system trust store.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca(ca_key)
    server = _server(server_key, ca, ca_key)
    pem = serialization.Encoding.PEM
    files = TlsFiles(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server-key.pem",
        directory / "ca-key.pem",
    )
    files.ca_path.write_bytes(ca.public_bytes(pem))
    files.cert_path.write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    _write_key(files.key_path, server_key)
    _write_key(files.ca_key_path, ca_key)
    return files


def issue_client_cert(
    files: TlsFiles, directory: Path, name: str = "warden", *, password: str | None = None
) -> ClientCertFiles:
    """Issue a client certificate (``CN=name``, client auth) from the CA of ``files``.

    Writes ``<name>.pem`` and ``<name>-key.pem`` (0600; encrypted with ``password`` if
    given) to ``directory`` and returns their paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    ca = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(files.ca_key_path.read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the sandbox CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _leaf(name, key, ca, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH).sign(
        ca_key, hashes.SHA256()
    )
    issued = ClientCertFiles(directory / f"{name}.pem", directory / f"{name}-key.pem")
    issued.cert_path.write_bytes(certificate.public_bytes(pem))
    _write_key(issued.key_path, key, password)
    return issued
