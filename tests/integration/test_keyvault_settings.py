"""Settings from Azure Key Vault: the real azure-keyvault-secrets and azure-identity over HTTPS.

The vault sandbox borrows the ARM sandbox's CA and Entra ID token endpoint. Settings load
synchronously (as at start-up), so each load runs in a thread while the sandboxes serve
on the event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app import cli
from core.errors import SettingsError
from core.logs import SCRUBBER, configure_logging
from core.settings import Settings, load_settings
from sandbox.arm import ArmSandbox
from sandbox.arm_tls import make_tls_files
from sandbox.keyvault import KeyVaultSandbox, run_keyvault_sandbox
from tests.support import SECRET

PASSWORD = "kv-app-password-8f1e4c2a9d"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "WARDEN_KEY_VAULT_URL",
        "MICROSOFT_APP_PASSWORD",
        "WARDEN_OUTBOX__MAX_ATTEMPTS",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))


@pytest.fixture
async def vault(arm: ArmSandbox) -> AsyncIterator[KeyVaultSandbox]:
    """The Key Vault sandbox, holding the bot's password and one nested setting."""
    async with run_keyvault_sandbox(arm) as sandbox:
        sandbox.set_secret("MICROSOFT-APP-PASSWORD", PASSWORD)
        sandbox.set_secret("WARDEN-OUTBOX--MAX-ATTEMPTS", "5")
        yield sandbox


def _access(arm: ArmSandbox, vault: KeyVaultSandbox, **changes: Any) -> dict[str, Any]:
    """Init arguments that point Warden at the vault with the ARM sandbox's identity."""
    values: dict[str, Any] = {
        "key_vault_url": vault.url,
        "azure_tenant_id": arm.tenant_id,
        "azure_client_id": arm.client_id,
        "azure_client_secret": arm.client_secret,
        "azure_authority_host": arm.authority,
        "arm_ca_bundle": arm.ca_path,
    }
    values.update(changes)
    return values


async def _load(**overrides: Any) -> Settings:
    """``load_settings`` in a thread, as Warden's start-up runs it."""
    return await asyncio.to_thread(load_settings, **overrides)


async def test_keyvault_secret_in_vault_becomes_setting(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """A vault secret sets its variable, nested ones too, through the challenge flow."""
    vault.set_secret("WARDEN-SENTINEL-WEBHOOK-SECRETS", SECRET)
    settings = await _load(**_access(arm, vault))
    assert settings.microsoft_app_password.get_secret_value() == PASSWORD
    assert settings.outbox.max_attempts == 5
    assert settings.webhook_secrets == [SECRET]
    first = vault.requests[0]
    assert (first.operation, first.status, first.auth_present) == ("GetSecrets", 401, False)
    assert all(r.app_id == arm.client_id for r in vault.requests[1:])


async def test_keyvault_environment_overrides_vault(
    arm: ArmSandbox, vault: KeyVaultSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment wins over the vault, variable by variable."""
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "from-the-environment")
    settings = await _load(**_access(arm, vault))
    assert settings.microsoft_app_password.get_secret_value() == "from-the-environment"
    assert settings.outbox.max_attempts == 5


async def test_keyvault_address_and_identity_from_environment(
    arm: ArmSandbox, vault: KeyVaultSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WARDEN_KEY_VAULT_URL and the AZURE_* variables alone are enough."""
    for name, value in {
        "WARDEN_KEY_VAULT_URL": vault.url,
        "AZURE_TENANT_ID": arm.tenant_id,
        "AZURE_CLIENT_ID": arm.client_id,
        "AZURE_CLIENT_SECRET": arm.client_secret,
        "AZURE_AUTHORITY_HOST": arm.authority,
        "WARDEN_ARM_CA_BUNDLE": str(arm.ca_path),
    }.items():
        monkeypatch.setenv(name, value)
    settings = await _load()
    assert settings.microsoft_app_password.get_secret_value() == PASSWORD


async def test_keyvault_only_enabled_warden_secrets_read_across_pages(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """Every page is listed; other applications' and disabled secrets are never fetched."""
    vault.page_size = 2
    vault.set_secret("payroll-db-password", "not-ours-1234567")
    vault.set_secret("WARDEN-LOG-PEPPER", "disabled-pepper-123", enabled=False)
    vault.set_secret("WARDEN-PORT", "8443")
    settings = await _load(**_access(arm, vault))
    assert (settings.port, settings.log_pepper.get_secret_value()) == (8443, "")
    pages = vault.calls("GetSecrets", successful=True)
    assert len(pages) == 3 and "$skiptoken" in pages[-1].query
    fetched = {r.path for r in vault.calls("GetLatestSecret")}
    assert fetched == {
        "/secrets/MICROSOFT-APP-PASSWORD/",
        "/secrets/WARDEN-OUTBOX--MAX-ATTEMPTS/",
        "/secrets/WARDEN-PORT/",
    }


async def test_keyvault_unreachable_stops_start_naming_variable(arm: ArmSandbox) -> None:
    """A vault nobody answers for stops start-up with the variable and the reason."""
    access = {**_access(arm, KeyVaultSandbox(arm)), "key_vault_url": "https://127.0.0.1:1"}
    with pytest.raises(SettingsError) as caught:
        await _load(**access)
    assert str(caught.value) == (
        "WARDEN_KEY_VAULT_URL: cannot reach https://127.0.0.1:1: Connection refused"
    )
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_keyvault_forbidden_stops_start_with_reason(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """A vault that refuses Warden's identity (403) stops start-up, saying so."""
    vault.revoke(arm.client_id)
    with pytest.raises(SettingsError) as caught:
        await _load(**_access(arm, vault))
    assert str(caught.value) == (
        f"WARDEN_KEY_VAULT_URL: {vault.url} refused Warden (403 Forbidden): "
        "Caller is not authorized to perform action on resource."
    )


async def test_keyvault_bad_credential_stops_start_with_reason(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """A wrong client secret stops start-up with Entra ID's reason, not the secret."""
    with pytest.raises(SettingsError) as caught:
        await _load(**_access(arm, vault, azure_client_secret="wrong-secret-123456"))
    message = str(caught.value)
    assert message.startswith(
        f"WARDEN_KEY_VAULT_URL: Warden's identity got no token for {vault.url}"
    )
    assert "AADSTS7000215" in message and "wrong-secret-123456" not in message
    assert vault.calls("GetSecrets", successful=True) == []


async def test_keyvault_untrusted_vault_certificate_stops_start(
    arm: ArmSandbox, vault: KeyVaultSandbox, tmp_path: Path
) -> None:
    """A vault whose certificate is not trusted is not read (TLS is verified)."""
    other_ca = make_tls_files(tmp_path / "foreign").ca_path
    with pytest.raises(SettingsError, match=r"WARDEN_KEY_VAULT_URL: .*(TLS|CERTIFICATE_VERIFY)"):
        await _load(**_access(arm, vault, arm_ca_bundle=other_ca))


async def test_keyvault_secret_values_never_logged(
    arm: ArmSandbox, vault: KeyVaultSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Values read from the vault appear in no log record, and are redacted from now on."""
    caplog.set_level(logging.DEBUG)
    await _load(**_access(arm, vault))
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    stream = io.StringIO()
    handler = configure_logging("INFO", stream=stream)
    try:
        logging.getLogger("warden.test").info("the bot password is %s", PASSWORD)
    finally:
        logging.getLogger().removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert PASSWORD not in stream.getvalue() and "[REDACTED]" in line["msg"]
    assert PASSWORD not in SCRUBBER.scrub(f"password={PASSWORD}")


async def test_keyvault_cli_unreachable_vault_exits_without_traceback(
    arm: ArmSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line prints the one-line reason and exits 2, no traceback."""
    monkeypatch.setenv("WARDEN_KEY_VAULT_URL", "https://127.0.0.1:1")
    monkeypatch.setenv("AZURE_TENANT_ID", arm.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", arm.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", arm.client_secret)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["outbox", "list"])
    assert result.exit_code == 2
    assert "WARDEN_KEY_VAULT_URL: cannot reach https://127.0.0.1:1" in result.output
    assert "Traceback" not in result.output
