"""Settings are validated once, and a bad value names its environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SettingsError
from core.settings import DEV_SECRET_FILE, Mode, load_settings
from tests.support import OTHER_SECRET, SECRET


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "WARDEN_MODE",
        "WARDEN_PORT",
        "WARDEN_SENTINEL_WEBHOOK_SECRETS",
        "MICROSOFT_APP_ID",
        "MICROSOFT_APP_TYPE",
        "WARDEN_OUTBOX__MAX_ATTEMPTS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))


def test_settings_nothing_configured_sandbox_on_sqlite_defaults() -> None:
    """With nothing set, Warden runs in sandbox mode on SQLite under var/ at 127.0.0.1:3978."""
    settings = load_settings()
    assert settings.mode is Mode.SANDBOX
    assert (settings.host, settings.port) == ("127.0.0.1", 3978)
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("warden.db")


def test_settings_bad_port_error_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port that is not a number stops start-up naming WARDEN_PORT."""
    monkeypatch.setenv("WARDEN_PORT", "eighty")
    with pytest.raises(SettingsError, match="WARDEN_PORT"):
        load_settings()


def test_settings_bad_mode_error_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown mode stops start-up naming WARDEN_MODE."""
    monkeypatch.setenv("WARDEN_MODE", "staging")
    with pytest.raises(SettingsError, match="WARDEN_MODE"):
        load_settings()


def test_settings_bad_app_type_error_names_bot_framework_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Bot Framework's own variable names are used, and named in errors."""
    monkeypatch.setenv("MICROSOFT_APP_TYPE", "AnyTenant")
    with pytest.raises(SettingsError, match="MICROSOFT_APP_TYPE"):
        load_settings()


def test_settings_nested_outbox_error_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested setting's error names its WARDEN_OUTBOX__ variable."""
    monkeypatch.setenv("WARDEN_OUTBOX__MAX_ATTEMPTS", "0")
    with pytest.raises(SettingsError, match="WARDEN_OUTBOX__MAX_ATTEMPTS"):
        load_settings()


def test_settings_secret_without_prefix_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook secret that is not whsec_… is refused, naming the variable, not the value."""
    monkeypatch.setenv("WARDEN_SENTINEL_WEBHOOK_SECRETS", "hunter2")
    with pytest.raises(SettingsError, match="WARDEN_SENTINEL_WEBHOOK_SECRETS") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_settings_several_secrets_all_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated secrets are all accepted (rotation)."""
    monkeypatch.setenv("WARDEN_SENTINEL_WEBHOOK_SECRETS", f"{SECRET}, {OTHER_SECRET}")
    assert load_settings().webhook_secrets == [SECRET, OTHER_SECRET]


def test_settings_sandbox_without_secret_generates_one_once(tmp_path: Path) -> None:
    """In sandbox mode a development secret is created under var/ and reused."""
    first = load_settings().webhook_secrets
    second = load_settings().webhook_secrets
    assert first == second and first[0].startswith("whsec_")
    assert (tmp_path / DEV_SECRET_FILE).read_text().strip() == first[0]


def test_settings_production_without_secret_generates_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Production mode never invents a webhook secret."""
    monkeypatch.setenv("WARDEN_MODE", "production")
    assert load_settings().webhook_secrets == []
    assert not (tmp_path / DEV_SECRET_FILE).exists()
