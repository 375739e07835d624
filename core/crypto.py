"""Encryption at rest of the store's sensitive columns (``core.store.schema_sealed.SEALED``).

A ``PayloadCipher`` holds the keys of ``WARDEN_ENCRYPTION_KEYS`` (Fernet: AES-128-CBC with an
HMAC-SHA256, through ``cryptography``'s ``MultiFernet``): the first key encrypts, every key
decrypts, so a new key goes in front and rows written under the old one stay readable until
``python app.py keys rotate`` has re-encrypted them.

A stored value is ``enc:v1:<fernet token>``: versioned and recognisable. A value without the
prefix was written before encryption was switched on and is read as it is. A token that no
key opens raises ``UnreadablePayload`` naming the column (and the row), never a wrong value.
"""

from __future__ import annotations

import binascii
import os
from base64 import urlsafe_b64decode
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.errors import SettingsError, WardenError

PREFIX = "enc:v1:"
"""What every encrypted value starts with; another ``enc:`` version is refused, not guessed."""
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
        self._fernets = [Fernet(key.encode("ascii")) for key in keys]
        self._multi = MultiFernet(self._fernets) if self._fernets else None

    @property
    def keyed(self) -> bool:
        """True when there is a key to encrypt with."""
        return self._multi is not None

    def encrypt(self, text: str) -> str:
        """``text`` encrypted under the first key, as ``enc:v1:<token>``."""
        if self._multi is None:
            raise SettingsError("WARDEN_ENCRYPTION_KEYS: no key to encrypt stored data with")
        return PREFIX + self._multi.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str, kind: str, row: object = None) -> str:
        """The clear text of a stored value; a value without the prefix is returned as is.

        ``kind`` (``table.column``) and ``row`` (its key) name the value in the error raised
        when no key opens it.
        """
        if not stored.startswith("enc:"):
            return stored
        token = self._token(stored, kind, row)
        if self._multi is not None:
            try:
                return self._multi.decrypt(token).decode("utf-8")
            except InvalidToken:
                pass
        raise UnreadablePayload(_unreadable(kind, row))

    def rotate(self, stored: str, kind: str, row: object = None) -> str | None:
        """``stored`` re-encrypted under the first key, or ``None`` when it already is.

        A plain-text value (written before encryption was switched on) is encrypted.
        """
        if not stored.startswith("enc:"):
            return self.encrypt(stored)
        token = self._token(stored, kind, row)
        if self._multi is None:
            raise UnreadablePayload(_unreadable(kind, row))
        try:
            self._fernets[0].decrypt(token)
        except InvalidToken:
            pass
        else:
            return None
        try:
            return PREFIX + self._multi.rotate(token).decode("ascii")
        except InvalidToken:
            raise UnreadablePayload(_unreadable(kind, row)) from None

    @staticmethod
    def _token(stored: str, kind: str, row: object) -> bytes:
        if not stored.startswith(PREFIX):
            version = stored.split(":", 2)[1] if stored.count(":") >= 2 else "?"
            raise UnreadablePayload(
                f"{_name(kind, row)}: stored in an unknown encryption format {version!r} "
                f"(this Warden writes {PREFIX!r})"
            )
        try:
            return stored[len(PREFIX) :].encode("ascii")
        except UnicodeEncodeError:
            raise UnreadablePayload(f"{_name(kind, row)}: not a Fernet token") from None


def _name(kind: str, row: object) -> str:
    return kind if row is None else f"{kind} of row {row!r}"


def _unreadable(kind: str, row: object) -> str:
    return (
        f"{_name(kind, row)}: no key in WARDEN_ENCRYPTION_KEYS decrypts it "
        "(was the key that wrote it removed before `python app.py keys rotate` ran?)"
    )
