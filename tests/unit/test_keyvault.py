"""Key Vault settings: how secret names map to settings, and where the vault stands."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from pydantic import SecretStr
from pydantic_settings import EnvSettingsSource, InitSettingsSource

from core.errors import SettingsError
from core.keyvault import (
    KeyVaultSource,
    SecretNames,
    VaultAccess,
    check_vault_url,
    describe,
    secret_name,
    warden_names,
)
from core.settings import Settings, load_settings

VAULT = "https://warden-prod.vault.azure.net"


def _mapped(secrets: dict[str, str]) -> dict[str, object]:
    """What pydantic-settings' Key Vault mapping makes of these secrets (names any case)."""
    lowered = {name.lower(): value for name, value in secrets.items()}
    return SecretNames(Settings, lowered, url=VAULT, credential=None)()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("WARDEN_KEY_VAULT_URL", "MICROSOFT_APP_PASSWORD", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))


def test_keyvault_secret_name_dashes_for_underscores() -> None:
    """A variable's secret name has dashes for underscores, ``--`` for the nested ``__``."""
    assert secret_name("MICROSOFT_APP_PASSWORD") == "MICROSOFT-APP-PASSWORD"
    assert secret_name("WARDEN_OUTBOX__MAX_ATTEMPTS") == "WARDEN-OUTBOX--MAX-ATTEMPTS"
    assert secret_name("WARDEN_ARM_CLIENT_CERT__KEY_PASSWORD") == (
        "WARDEN-ARM-CLIENT-CERT--KEY-PASSWORD"
    )


def test_keyvault_mapping_alias_prefixed_and_nested_names_become_fields() -> None:
    """Bot Framework names, WARDEN- names and nested -- names reach their fields."""
    mapped = _mapped(
        {
            "MICROSOFT-APP-PASSWORD": "app-password",
            "WARDEN-LOG-PEPPER": "pepper",
            "WARDEN-OUTBOX--MAX-ATTEMPTS": "5",
            "WARDEN-ARM-CLIENT-CERT--KEY-PASSWORD": "key-password",
        }
    )
    assert mapped == {
        "MICROSOFT_APP_PASSWORD": "app-password",
        "log_pepper": "pepper",
        "outbox": {"max_attempts": "5"},
        "arm_client_cert": {"key_password": "key-password"},
    }


def test_keyvault_mapping_case_ignored_like_key_vault() -> None:
    """Key Vault names ignore case, and so does the mapping."""
    assert _mapped({"warden-port": "8080"}) == {"port": "8080"}


def test_keyvault_mapping_underscore_spelling_not_matched() -> None:
    """A name spelt with underscores is no Key Vault name and maps to nothing."""
    assert _mapped({"WARDEN_PORT": "8080"}) == {}


def test_keyvault_warden_names_cover_unprefixed_variables() -> None:
    """The names read besides WARDEN-… are the Azure and Bot Framework variables."""
    names = warden_names(Settings)
    assert {"microsoft-app-password", "azure-client-secret", "bot-openid-metadata-url"} <= names
    assert not any(name.startswith("warden-") for name in names)


def test_keyvault_precedence_init_env_vault_dotenv() -> None:
    """Sources run init, environment, Key Vault, .env, file secrets, in that order."""
    init = InitSettingsSource(Settings, init_kwargs={})
    env = EnvSettingsSource(Settings)
    sources = Settings.settings_customise_sources(Settings, init, env, env, env)
    assert sources[:2] == (init, env)
    assert isinstance(sources[2], KeyVaultSource)
    assert len(sources) == 5


def test_keyvault_access_from_environment_and_init_names() -> None:
    """The vault and its identity come from the sources above it, by name or alias."""
    state = {
        "key_vault_url": VAULT + "/",
        "AZURE_TENANT_ID": "tenant",
        "azure_client_id": "client",
        "AZURE_CLIENT_SECRET": SecretStr("secret"),
        "arm_ca_bundle": Path("/ca.pem"),
    }
    access = VaultAccess.from_state(Settings, state)
    assert access == VaultAccess(VAULT, "tenant", "client", "secret", "", "/ca.pem")
    assert "secret" not in repr(access)


def test_keyvault_without_url_source_reads_nothing() -> None:
    """With no vault URL the source is empty and settings load from the environment."""
    assert VaultAccess.from_state(Settings, {"AZURE_CLIENT_ID": "x"}) is None
    assert load_settings().key_vault_url is None


@pytest.mark.parametrize(
    "url",
    ["http://warden.vault.azure.net", "warden.vault.azure.net", f"{VAULT}/secrets/x"],
)
def test_keyvault_bad_url_refused_naming_variable(url: str) -> None:
    """Only a vault's https base URL is accepted; the error names WARDEN_KEY_VAULT_URL."""
    with pytest.raises(SettingsError, match="WARDEN_KEY_VAULT_URL"):
        check_vault_url(url)


def test_keyvault_bad_url_in_environment_stops_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed vault URL stops start-up before anything is sent."""
    monkeypatch.setenv("WARDEN_KEY_VAULT_URL", "http://warden.vault.azure.net")
    with pytest.raises(SettingsError, match="WARDEN_KEY_VAULT_URL: use the vault's https URL"):
        load_settings()


def test_keyvault_challenge_check_off_only_on_loopback() -> None:
    """The challenge-resource check is skipped for a vault on this machine only."""
    assert VaultAccess("https://127.0.0.1:8443").loopback
    assert VaultAccess("https://localhost:8443").loopback
    assert VaultAccess("https://[::1]:8443").loopback
    assert not VaultAccess(VAULT).loopback
    assert not VaultAccess("https://10.0.0.5").loopback


def test_keyvault_describe_unreachable_and_token_failures() -> None:
    """Transport and identity failures read as one sentence, without a traceback."""
    refused = ServiceRequestError("pool error", error=ConnectionRefusedError(111, "refused"))
    assert describe(refused, VAULT) == f"cannot reach {VAULT}: refused"
    token = ClientAuthenticationError("Authentication failed:\n AADSTS7000215: Invalid secret")
    assert describe(token, VAULT) == (
        f"Warden's identity got no token for {VAULT}: "
        "Authentication failed: AADSTS7000215: Invalid secret"
    )
