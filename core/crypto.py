"""Encryption at rest of the store's sensitive columns (``core.store.schema_sealed.SEALED``).

A ``PayloadCipher`` holds the keys of ``WARDEN_ENCRYPTION_KEYS`` (32 random bytes each, in
Fernet's url-safe base64 form): the first key encrypts, every key decrypts, so a new key goes
in front and rows written under the old one stay readable until ``python app.py keys rotate``
has re-encrypted them.

A stored value is versioned and recognisable:

- ``enc:v2:<base64 of nonce ‖ ciphertext ‖ tag>``, what Warden writes: AES-256-GCM (an AEAD,
  one call into OpenSSL) under a key derived from the configured one with HKDF-SHA256, a
  random 96-bit nonce per value. A quarter of Fernet's CPU: every stored incident and outbox
  job is encrypted once and read back at least once.
- ``enc:v1:<fernet token>``, what earlier versions wrote (Fernet: AES-128-CBC with an
  HMAC-SHA256): still read; ``keys rotate`` rewrites such rows as ``enc:v2``.

A value without the prefix was written before encryption was switched on and is read as it
is. A value no key opens raises ``UnreadablePayload`` naming the column (and the row), never a
wrong value; another ``enc:`` version is refused, not guessed.
"""

from __future__ import annotations

import binascii
import os
from base64 import b64decode, b64encode, urlsafe_b64decode
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import SettingsError, WardenError

PREFIX = "enc:v2:"
"""What every value Warden encrypts starts with (AES-256-GCM)."""
FERNET_PREFIX = "enc:v1:"
"""Values written by earlier versions (Fernet): read, and rewritten by ``keys rotate``."""
_NONCE = 12
_KDF_INFO = b"warden enc:v2 aes-256-gcm"
DEV_KEY_FILE = "dev-encryption-key"
"""The sandbox's key under ``var_dir``, created once when no key is configured."""


class UnreadablePayload(WardenError):
    """A stored value that none of the configured keys can decrypt (or of an unknown format)."""

    user_message = "Warden cannot read part of its stored data; an operator has been told why."


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 of 32 bytes), for ``WARDEN_ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode("ascii")


def is_valid_key(raw: str) -> bool:
    """True when ``raw`` is a Fernet key: url-safe base64 of exactly 32 bytes."""
    try:
        return len(urlsafe_b64decode(raw.encode("ascii"))) == 32
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False


def ensure_dev_key(var_dir: Path) -> str:
    """The sandbox's encryption key, created under ``var_dir`` (mode 0600) on first use.

    Created with ``O_EXCL``: the file is never readable by others, not even for a moment, and
    two processes starting together end up with the same key.
    """
    path = var_dir / DEV_KEY_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(handle, "w", encoding="ascii") as file:
                file.write(generate_key() + "\n")
    return path.read_text(encoding="ascii").strip()


class PayloadCipher:
    """Encrypts and decrypts stored values with the configured keys (first one encrypts).

    Without keys it can still read values written before encryption (plain text) but
    refuses to encrypt: a store never silently writes in the clear.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        secrets = [urlsafe_b64decode(key.encode("ascii")) for key in keys]
        self._aeads = [AESGCM(_derive(secret)) for secret in secrets]
        self._fernets = [Fernet(key.encode("ascii")) for key in keys]
        self._multi = MultiFernet(self._fernets) if self._fernets else None

    @property
    def keyed(self) -> bool:
        """True when there is a key to encrypt with."""
        return bool(self._aeads)

    def encrypt(self, text: str) -> str:
        """``text`` encrypted under the first key, as ``enc:v2:<base64>``."""
        if not self._aeads:
            raise SettingsError("WARDEN_ENCRYPTION_KEYS: no key to encrypt stored data with")
        nonce = os.urandom(_NONCE)
        sealed = self._aeads[0].encrypt(nonce, text.encode("utf-8"), None)
        return PREFIX + b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, stored: str, kind: str, row: object = None) -> str:
        """The clear text of a stored value; a value without the prefix is returned as is.

        ``kind`` (``table.column``) and ``row`` (its key) name the value in the error raised
        when no key opens it.
        """
        if not stored.startswith("enc:"):
            return stored
        return self._open(stored, kind, row)[0]

    def rotate(self, stored: str, kind: str, row: object = None) -> str | None:
        """``stored`` re-encrypted under the first key in the current format, or ``None``
        when it already is.

        A plain-text value (written before encryption was switched on) is encrypted; a Fernet
        one (``enc:v1``, written by an earlier version) is rewritten as ``enc:v2``.
        """
        if not stored.startswith("enc:"):
            return self.encrypt(stored)
        text, current = self._open(stored, kind, row)
        return None if current else self.encrypt(text)

    def _open(self, stored: str, kind: str, row: object) -> tuple[str, bool]:
        """The clear text of an encrypted value, and whether it is in the current format
        under the first key."""
        if stored.startswith(PREFIX):
            try:
                raw = b64decode(stored[len(PREFIX) :].encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise UnreadablePayload(f"{_name(kind, row)}: not an enc:v2 value") from None
            nonce, sealed = raw[:_NONCE], raw[_NONCE:]
            for index, aead in enumerate(self._aeads):
                try:
                    return aead.decrypt(nonce, sealed, None).decode("utf-8"), index == 0
                except (InvalidTag, ValueError):
                    continue
            raise UnreadablePayload(_unreadable(kind, row))
        if stored.startswith(FERNET_PREFIX):
            try:
                token = stored[len(FERNET_PREFIX) :].encode("ascii")
            except UnicodeEncodeError:
                raise UnreadablePayload(f"{_name(kind, row)}: not a Fernet token") from None
            if self._multi is not None:
                try:
                    return self._multi.decrypt(token).decode("utf-8"), False
                except InvalidToken:
                    pass
            raise UnreadablePayload(_unreadable(kind, row))
        version = stored.split(":", 2)[1] if stored.count(":") >= 2 else "?"
        raise UnreadablePayload(
            f"{_name(kind, row)}: stored in an unknown encryption format {version!r} "
            f"(this Warden writes {PREFIX!r} and reads {FERNET_PREFIX!r} too)"
        )


def _derive(secret: bytes) -> bytes:
    """The AES-256-GCM key of a configured key: HKDF-SHA256, bound to this format, so the
    same secret never serves two algorithms as it is."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(secret)


def _name(kind: str, row: object) -> str:
    return kind if row is None else f"{kind} of row {row!r}"


def _unreadable(kind: str, row: object) -> str:
    return (
        f"{_name(kind, row)}: no key in WARDEN_ENCRYPTION_KEYS decrypts it "
        "(was the key that wrote it removed before `python app.py keys rotate` ran?)"
    )
