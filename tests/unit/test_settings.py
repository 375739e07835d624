"""Settings are validated once, and a bad value names its environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SettingsError
from core.settings import DEV_SECRET_FILE, Mode, load_settings
from tests.support import ENCRYPTION_KEY, OTHER_SECRET, SECRET


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "WARDEN_MODE",
        "WARDEN_PORT",
        "WARDEN_SENTINEL_WEBHOOK_SECRETS",
        "MICROSOFT_APP_ID",
        "MICROSOFT_APP_TYPE",
        "WARDEN_OUTBOX__MAX_ATTEMPTS",
        "WARDEN_ENCRYPTION_KEYS",
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


def test_settings_production_without_secret_refused_none_generated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Production mode never invents a webhook secret: it refuses to start without one."""
    monkeypatch.setenv("WARDEN_MODE", "production")
    with pytest.raises(SettingsError, match="WARDEN_SENTINEL_WEBHOOK_SECRETS: required"):
        load_settings()
    assert not (tmp_path / DEV_SECRET_FILE).exists()


def test_settings_production_without_app_id_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production mode without an app id and credential does not start (fails closed)."""
    monkeypatch.setenv("WARDEN_MODE", "production")
    monkeypatch.setenv("WARDEN_SENTINEL_WEBHOOK_SECRETS", SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "MICROSOFT_APP_ID: required in production mode" in str(caught.value)
    assert "MICROSOFT_APP_PASSWORD: required in production mode" in str(caught.value)


def test_settings_production_managed_identity_needs_no_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user-assigned managed identity needs the app id and tenant, but no password."""
    monkeypatch.setenv("WARDEN_MODE", "production")
    monkeypatch.setenv("WARDEN_SENTINEL_WEBHOOK_SECRETS", SECRET)
    monkeypatch.setenv("MICROSOFT_APP_ID", "6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f")
    monkeypatch.setenv("MICROSOFT_APP_TYPE", "UserAssignedMSI")
    with pytest.raises(SettingsError, match="MICROSOFT_APP_TENANT_ID"):
        load_settings()
    monkeypatch.setenv("MICROSOFT_APP_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
    monkeypatch.setenv("WARDEN_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    assert load_settings().microsoft_app_id


def test_settings_production_plain_http_metadata_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """In production the OpenID metadata must be fetched over https."""
    monkeypatch.setenv("WARDEN_MODE", "production")
    monkeypatch.setenv("WARDEN_SENTINEL_WEBHOOK_SECRETS", SECRET)
    monkeypatch.setenv("MICROSOFT_APP_ID", "6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f")
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "s3cret")
    monkeypatch.setenv("BOT_OPENID_METADATA_URL", "http://127.0.0.1:1/openid")
    with pytest.raises(SettingsError, match="BOT_OPENID_METADATA_URL"):
        load_settings()


def test_settings_production_plain_http_servicenow_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In production ServiceNow credentials never travel over plain http (the sandbox may)."""
    monkeypatch.setenv("WARDEN_MODE", "production")
    monkeypatch.setenv("WARDEN_SENTINEL_WEBHOOK_SECRETS", SECRET)
    monkeypatch.setenv("MICROSOFT_APP_ID", "6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f")
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "s3cret")
    monkeypatch.setenv("WARDEN_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    monkeypatch.setenv("WARDEN_SERVICENOW__INSTANCE_URL", "http://snow.contoso.example")
    monkeypatch.setenv("WARDEN_SERVICENOW__USERNAME", "warden")
    monkeypatch.setenv("WARDEN_SERVICENOW__PASSWORD", "s3cret")
    with pytest.raises(SettingsError, match="WARDEN_SERVICENOW__INSTANCE_URL: must be https"):
        load_settings()
    monkeypatch.setenv("WARDEN_SERVICENOW__INSTANCE_URL", "https://snow.contoso.example")
    assert load_settings().servicenow.enabled
