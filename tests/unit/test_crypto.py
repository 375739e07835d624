"""Encryption at rest: the payload cipher, its keys, and the sandbox's generated key."""

from __future__ import annotations

import stat
from base64 import b64decode, urlsafe_b64decode
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from core.crypto import (
    DEV_KEY_FILE,
    FERNET_PREFIX,
    PREFIX,
    PayloadCipher,
    UnreadablePayload,
    ensure_dev_key,
    generate_key,
    is_valid_key,
)
from core.errors import SettingsError
from core.logs import Scrubber
from core.settings import Mode, Settings, load_settings, payload_keys
from tests.support import ENCRYPTION_KEY, NEW_ENCRYPTION_KEY

TEXT = '{"title":"Mass download by adele.vance@contoso.com","owner":"Ådele"}'


def test_cipher_round_trip_versioned_prefix_no_clear_text() -> None:
    """A value comes back as it went in; stored, it is `enc:v2:` and shows none of the text."""
    cipher = PayloadCipher([ENCRYPTION_KEY])
    stored = cipher.encrypt(TEXT)
    assert stored.startswith("enc:v2:") and PREFIX == "enc:v2:"
    assert "adele" not in stored and "download" not in stored
    assert cipher.decrypt(stored, "incidents.payload") == TEXT


def test_cipher_stored_format_aes_256_gcm_under_hkdf_derived_key() -> None:
    """The stored format is the documented one, so that any tool holding the key can open it:
    base64 of a 12-byte nonce, the ciphertext and its tag, AES-256-GCM under HKDF-SHA256 of
    the configured key's 32 bytes (info ``warden enc:v2 aes-256-gcm``)."""
    stored = PayloadCipher([ENCRYPTION_KEY]).encrypt(TEXT)
    raw = b64decode(stored.removeprefix("enc:v2:"), validate=True)
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"warden enc:v2 aes-256-gcm"
    ).derive(urlsafe_b64decode(ENCRYPTION_KEY))
    assert AESGCM(key).decrypt(raw[:12], raw[12:], None).decode() == TEXT
    assert len(raw) == 12 + len(TEXT.encode()) + 16


def test_cipher_fernet_value_of_earlier_version_read_and_rotated_to_current_format() -> None:
    """A value an earlier Warden wrote (`enc:v1:`, Fernet) still reads, under either key;
    `rotate` rewrites it in the current format under the first key, then has nothing to do."""
    legacy = FERNET_PREFIX + Fernet(ENCRYPTION_KEY.encode()).encrypt(TEXT.encode()).decode()
    assert PayloadCipher([ENCRYPTION_KEY]).decrypt(legacy, "outbox.payload") == TEXT
    both = PayloadCipher([NEW_ENCRYPTION_KEY, ENCRYPTION_KEY])
    assert both.decrypt(legacy, "outbox.payload") == TEXT
    same_key = PayloadCipher([ENCRYPTION_KEY]).rotate(legacy, "outbox.payload")
    assert same_key is not None and same_key.startswith(PREFIX)
    rotated = both.rotate(legacy, "outbox.payload")
    assert rotated is not None and rotated.startswith(PREFIX)
    assert PayloadCipher([NEW_ENCRYPTION_KEY]).decrypt(rotated, "outbox.payload") == TEXT
    assert both.rotate(rotated, "outbox.payload") is None
    with pytest.raises(UnreadablePayload, match=r"outbox\.payload of row 7"):
        PayloadCipher([NEW_ENCRYPTION_KEY]).decrypt(legacy, "outbox.payload", 7)


def test_cipher_same_text_twice_different_tokens() -> None:
    """Equal values do not give equal stored values (a random IV per value)."""
    cipher = PayloadCipher([ENCRYPTION_KEY])
    assert cipher.encrypt(TEXT) != cipher.encrypt(TEXT)


def test_cipher_legacy_plain_text_read_as_is() -> None:
    """A row written before encryption was switched on (no prefix) still reads."""
    assert PayloadCipher([ENCRYPTION_KEY]).decrypt(TEXT, "incidents.payload") == TEXT
    assert PayloadCipher([]).decrypt(TEXT, "incidents.payload") == TEXT


def test_cipher_two_keys_first_encrypts_both_decrypt() -> None:
    """With a new key in front, old values still read and new ones use the new key."""
    old = PayloadCipher([ENCRYPTION_KEY])
    both = PayloadCipher([NEW_ENCRYPTION_KEY, ENCRYPTION_KEY])
    written_before = old.encrypt(TEXT)
    written_after = both.encrypt(TEXT)
    assert both.decrypt(written_before, "outbox.payload") == TEXT
    assert PayloadCipher([NEW_ENCRYPTION_KEY]).decrypt(written_after, "outbox.payload") == TEXT
    with pytest.raises(UnreadablePayload):
        old.decrypt(written_after, "outbox.payload")


def test_cipher_rotate_moves_value_to_first_key_once() -> None:
    """`rotate` re-encrypts an old value under the first key, then has nothing left to do."""
    both = PayloadCipher([NEW_ENCRYPTION_KEY, ENCRYPTION_KEY])
    rotated = both.rotate(PayloadCipher([ENCRYPTION_KEY]).encrypt(TEXT), "incidents.payload")
    assert rotated is not None
    assert PayloadCipher([NEW_ENCRYPTION_KEY]).decrypt(rotated, "incidents.payload") == TEXT
    assert both.rotate(rotated, "incidents.payload") is None


def test_cipher_rotate_plain_text_encrypted() -> None:
    """`rotate` encrypts a value written before encryption was switched on."""
    cipher = PayloadCipher([ENCRYPTION_KEY])
    rotated = cipher.rotate(TEXT, "conversations.reference")
    assert rotated is not None and rotated.startswith(PREFIX)
    assert cipher.decrypt(rotated, "conversations.reference") == TEXT


def test_cipher_wrong_key_clear_error_names_column_and_row() -> None:
    """A value no key opens raises an error naming the column and row, never garbage."""
    stored = PayloadCipher([ENCRYPTION_KEY]).encrypt(TEXT)
    with pytest.raises(UnreadablePayload) as caught:
        PayloadCipher([NEW_ENCRYPTION_KEY]).decrypt(stored, "incidents.payload", "/sub/inc-1")
    message = str(caught.value)
    assert "incidents.payload" in message and "/sub/inc-1" in message
    assert "WARDEN_ENCRYPTION_KEYS" in message
    assert ENCRYPTION_KEY not in message and NEW_ENCRYPTION_KEY not in message
    with pytest.raises(UnreadablePayload, match=r"outbox\.payload"):
        PayloadCipher([NEW_ENCRYPTION_KEY]).rotate(stored, "outbox.payload", 7)


def test_cipher_tampered_truncated_or_unknown_version_refused() -> None:
    """A tampered or truncated value, or a format version this Warden does not know, is
    refused with the column's name, never read as something else."""
    cipher = PayloadCipher([ENCRYPTION_KEY])
    stored = cipher.encrypt(TEXT)
    middle = len(stored) // 2
    tampered = stored[:middle] + ("A" if stored[middle] != "A" else "B") + stored[middle + 1 :]
    for bad in (tampered, stored[:40], "enc:v2:", "enc:v2:not base64!", "enc:v2:é"):
        with pytest.raises(UnreadablePayload, match=r"incidents\.payload"):
            cipher.decrypt(bad, "incidents.payload")
    with pytest.raises(UnreadablePayload, match="unknown encryption format 'v3'"):
        cipher.decrypt("enc:v3:" + stored.removeprefix(PREFIX), "incidents.payload")


def test_cipher_without_keys_refuses_to_encrypt() -> None:
    """A cipher without keys never writes in the clear: it refuses, naming the variable."""
    with pytest.raises(SettingsError, match="WARDEN_ENCRYPTION_KEYS"):
        PayloadCipher([]).encrypt(TEXT)


def test_generate_key_valid_and_distinct() -> None:
    """Generated keys are Fernet keys, never the same twice; other strings are not keys."""
    first, second = generate_key(), generate_key()
    assert first != second and is_valid_key(first) and is_valid_key(second)
    assert not is_valid_key("not-a-key") and not is_valid_key("") and not is_valid_key("é" * 44)


def test_dev_key_created_once_owner_only(tmp_path: Path) -> None:
    """The sandbox key is created once under var/, readable by its owner only, and reused."""
    first = ensure_dev_key(tmp_path / "var")
    assert ensure_dev_key(tmp_path / "var") == first and is_valid_key(first)
    mode = stat.S_IMODE((tmp_path / "var" / DEV_KEY_FILE).stat().st_mode)
    assert mode == 0o600


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment with nothing set but an isolated var/ directory."""
    for name in ("WARDEN_MODE", "WARDEN_ENCRYPTION_KEYS", "WARDEN_SENTINEL_WEBHOOK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    return monkeypatch


def test_settings_sandbox_without_keys_generates_one_once(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In sandbox mode with nothing configured, a key is created under var/ and reused."""
    first = load_settings().encryption_keys
    second = load_settings().encryption_keys
    assert [k.get_secret_value() for k in first] == [k.get_secret_value() for k in second]
    assert (tmp_path / DEV_KEY_FILE).read_text().strip() == first[0].get_secret_value()


def test_settings_production_without_keys_refused_none_generated(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Production mode never invents a key: it refuses to start, naming the variable."""
    env.setenv("WARDEN_MODE", "production")
    with pytest.raises(SettingsError, match="WARDEN_ENCRYPTION_KEYS: required in production"):
        load_settings()
    with pytest.raises(SettingsError, match="WARDEN_ENCRYPTION_KEYS: required in production"):
        payload_keys(Settings(mode=Mode.PRODUCTION, var_dir=tmp_path))
    assert not (tmp_path / DEV_KEY_FILE).exists()


@pytest.mark.parametrize(
    "raw",
    [
        f"{NEW_ENCRYPTION_KEY}, {ENCRYPTION_KEY}",
        f'["{NEW_ENCRYPTION_KEY}", "{ENCRYPTION_KEY}"]',
    ],
    ids=["comma-separated", "json-list"],
)
def test_settings_keys_comma_or_json_first_encrypts(env: pytest.MonkeyPatch, raw: str) -> None:
    """Keys are read comma-separated or as a JSON list, in order (the first encrypts)."""
    env.setenv("WARDEN_ENCRYPTION_KEYS", raw)
    assert payload_keys(load_settings()) == [NEW_ENCRYPTION_KEY, ENCRYPTION_KEY]


def test_settings_bad_key_refused_naming_variable_not_value(env: pytest.MonkeyPatch) -> None:
    """A key that is not a Fernet key stops start-up naming the variable, never the value."""
    env.setenv("WARDEN_ENCRYPTION_KEYS", f"{ENCRYPTION_KEY},hunter2-is-not-a-key")
    with pytest.raises(SettingsError, match="WARDEN_ENCRYPTION_KEYS") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value) and ENCRYPTION_KEY not in str(caught.value)
    assert "key 2" in str(caught.value)


def test_settings_keys_registered_with_scrubber(tmp_path: Path) -> None:
    """Encryption keys are secrets: the log scrubber redacts them once settings are registered."""
    scrubber = Scrubber()
    scrubber.register_settings(
        Settings(var_dir=tmp_path, encryption_keys=[SecretStr(ENCRYPTION_KEY)])
    )
    assert ENCRYPTION_KEY not in scrubber.scrub(f"key={ENCRYPTION_KEY} and {ENCRYPTION_KEY}")
