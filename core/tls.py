"""TLS client certificates (mutual TLS) for connectors, configured by file path.

``ClientCertificate`` is the settings sub-model a connector reuses for its own variables,
``WARDEN_<CONNECTOR>_CLIENT_CERT__CERT_FILE`` / ``__KEY_FILE`` / ``__KEY_PASSWORD``.
``problems`` checks, once at start, that the files can be read, hold a PEM certificate and
a PEM private key, that the password opens the key and that the key is the certificate's;
each problem names the variable to fix. ``load_into`` then puts them in an SSL context.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, Field, SecretStr

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class ClientCertificate(BaseModel):
    """A client certificate and its key, as PEM files (``…_CLIENT_CERT__<FIELD>``)."""

    cert_file: Path = Field(
        description="PEM file of the client certificate (intermediates may follow it)."
    )
    key_file: Path | None = Field(
        None, description="PEM file of its private key; unset: the key is in `CERT_FILE`."
    )
    key_password: SecretStr = Field(
        SecretStr(""), description="Password of an encrypted private key."
    )

    def problems(self, prefix: str) -> list[str]:
        """What stops this certificate from being used, each naming ``<prefix>__<FIELD>``.

        Empty when the files are readable, the key opens and belongs to the certificate.
        """
        cert_var, password_var = f"{prefix}__CERT_FILE", f"{prefix}__KEY_PASSWORD"
        key_var = f"{prefix}__KEY_FILE" if self.key_file is not None else cert_var
        key_path = self.key_file or self.cert_file
        try:
            cert_pem, key_pem = self.cert_file.read_bytes(), b""
        except OSError as exc:
            return [f"{cert_var}: cannot read {self.cert_file} ({exc.strerror or exc})"]
        try:
            key_pem = key_path.read_bytes()
        except OSError as exc:
            return [f"{key_var}: cannot read {key_path} ({exc.strerror or exc})"]
        try:
            certificate = x509.load_pem_x509_certificates(cert_pem)[0]
        except ValueError:
            return [f"{cert_var}: {self.cert_file} holds no PEM certificate"]
        password = self.key_password.get_secret_value().encode() or None
        try:
            key = serialization.load_pem_private_key(key_pem, password)
        except TypeError:
            if password:
                return [f"{password_var}: the key in {key_path} is not encrypted; unset it"]
            return [f"{password_var}: the key in {key_path} is encrypted; set its password"]
        except ValueError:
            if b"ENCRYPTED" in key_pem and password:
                return [f"{password_var}: wrong password for the key in {key_path}"]
            return [f"{key_var}: {key_path} holds no readable PEM private key"]
        if key.public_key().public_bytes(*_SPKI) != certificate.public_key().public_bytes(*_SPKI):
            return [f"{key_var}: the key in {key_path} does not belong to the certificate"]
        try:
            self.load_into(ssl.create_default_context())
        except ssl.SSLError as exc:
            return [f"{cert_var}: OpenSSL refused the certificate or key ({exc.reason or exc})"]
        return []

    def load_into(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """Load the certificate and key into ``context`` (changed in place) and return it."""
        password = self.key_password.get_secret_value() or None
        context.load_cert_chain(self.cert_file, self.key_file, password=password)
        return context
