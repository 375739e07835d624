"""Warden's settings: read once at boot from the environment, validated, then passed around.

A wrong value stops start-up with a message that names the environment variable
(``SettingsError``). Nothing here runs at import time; ``load_settings()`` does the work.
``Settings`` gathers the flat groups (``core.settings.runtime``, ``_sentinel``, ``_evidence``,
``_identity``) and one sub-model per area (``WARDEN_<AREA>__<FIELD>``).
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.catalog import load_catalog
from core.crypto import PayloadCipher, ensure_dev_key
from core.errors import SettingsError
from core.keyvault import KeyVaultSource
from core.logs import SCRUBBER
from core.settings.budgets import BudgetsSettings
from core.settings.cmdb import CmdbSettings
from core.settings.connectors import ConnectorFlags
from core.settings.costs import CostsSettings
from core.settings.defender import DefenderSettings
from core.settings.delta import DeltaSettings
from core.settings.deployments import DeploymentSettings
from core.settings.evidence import EvidenceFields
from core.settings.identity import AppType, AzureIdentityFields, BotAuthSettings, BotIdentityFields
from core.settings.itsm import ItsmSettings
from core.settings.jsm import JsmSettings
from core.settings.manifest import ManifestSettings
from core.settings.outbox import OutboxSettings, PacingSettings
from core.settings.roles import RolesSettings
from core.settings.runtime import Mode as Mode
from core.settings.runtime import RuntimeFields, SandboxFields, split_list
from core.settings.scim import ScimSettings
from core.settings.sentinel import SentinelFields
from core.settings.servicenow import ServiceNowSettings
from core.tls import ClientCertificate

DEV_SECRET_FILE = "dev-webhook-secret"  # noqa: S105 - a file name, not a secret


# pydantic lists inherited fields base-first: the last base's come first (README's table order).
class Settings(
    BotIdentityFields,
    AzureIdentityFields,
    EvidenceFields,
    SentinelFields,
    SandboxFields,
    RuntimeFields,
    BaseSettings,
):
    """Everything Warden can be configured with; see README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="WARDEN_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    responder_group_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Deprecated alias of `WARDEN_ROLES__RESPONDER_GROUPS` (its groups are added "
        "there): Entra group ids whose members may triage incidents from cards.",
    )
    responder_cache_seconds: float = Field(
        300.0, ge=0, description="How long a person's responder membership is remembered."
    )
    bot_auth: BotAuthSettings = Field(default_factory=BotAuthSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    pacing: PacingSettings = Field(default_factory=PacingSettings)
    servicenow: ServiceNowSettings = Field(
        default_factory=ServiceNowSettings,
        description="The ServiceNow connector (`WARDEN_SERVICENOW__<FIELD>`); off when no "
        "instance URL is set.",
    )
    cmdb: CmdbSettings = Field(
        default_factory=CmdbSettings,
        description="The Resource Graph → CMDB CI sync (`WARDEN_CMDB__<FIELD>`).",
    )
    deployments: DeploymentSettings = Field(
        default_factory=DeploymentSettings,
        description="ARM deployments on incident cards (`WARDEN_DEPLOYMENTS__<FIELD>`).",
    )
    costs: CostsSettings = Field(
        default_factory=CostsSettings,
        description="The Cost Management exports ingest (`WARDEN_COSTS__<FIELD>`); off when no "
        "storage account is set.",
    )
    budgets: BudgetsSettings = Field(
        default_factory=BudgetsSettings,
        description="Azure budget alerts as cards (`WARDEN_BUDGETS__<FIELD>`); off when no "
        "webhook token is set.",
    )
    scim: ScimSettings = Field(
        default_factory=ScimSettings,
        description="SCIM 2.0 provisioning from Entra ID (`WARDEN_SCIM__<FIELD>`); off when no "
        "token is set.",
    )
    delta: DeltaSettings = Field(
        default_factory=DeltaSettings,
        description="Evidence-library change detection through Graph delta queries "
        "(`WARDEN_DELTA__<FIELD>`); runs when SharePoint is configured.",
    )
    jsm: JsmSettings = Field(
        default_factory=JsmSettings,
        description="The Jira Service Management connector (`WARDEN_JSM__<FIELD>`); off when no "
        "site URL is set.",
    )
    itsm: ItsmSettings = Field(
        default_factory=ItsmSettings,
        description="ServiceNow and JSM together (`WARDEN_ITSM__<FIELD>`).",
    )
    defender: DefenderSettings = Field(
        default_factory=DefenderSettings,
        description="Defender XDR incidents through Graph security (`WARDEN_DEFENDER__<FIELD>`).",
    )
    connectors: ConnectorFlags = Field(
        default_factory=ConnectorFlags,
        description="Feature flags per connector (`WARDEN_CONNECTORS__<NAME>__ENABLED`).",
    )
    roles: RolesSettings = Field(
        default_factory=RolesSettings,
        description="Warden's roles from Entra groups and app roles (`WARDEN_ROLES__<FIELD>`).",
    )
    manifest: ManifestSettings = Field(
        default_factory=ManifestSettings,
        description="The Teams app package (`WARDEN_MANIFEST__<FIELD>`).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments, then the environment, then Azure Key Vault, then .env, defaults."""
        vault = KeyVaultSource(settings_cls)
        return init_settings, env_settings, vault, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _responder_alias(self) -> Settings:
        """``WARDEN_RESPONDER_GROUP_IDS`` (the older name) adds its groups to the responders'."""
        legacy = [g.lower() for g in self.responder_group_ids]
        extra = [g for g in legacy if g not in self.roles.responder_groups]
        if extra:
            groups = [*self.roles.responder_groups, *extra]
            self.roles = self.roles.model_copy(update={"responder_groups": groups})
        legacy_ttl = "responder_cache_seconds" in self.model_fields_set
        if legacy_ttl and "cache_seconds" not in self.roles.model_fields_set:
            ttl = self.responder_cache_seconds
            self.roles = self.roles.model_copy(update={"cache_seconds": ttl})
        return self

    @property
    def sentinel_connected(self) -> bool:
        """True when Warden can call Sentinel: workspaces to poll or an ARM client id."""
        return bool(self.sentinel_workspaces or self.azure_client_id)

    @field_validator("responder_group_ids", mode="before")
    @classmethod
    def _split_responder_groups(cls, value: Any) -> Any:
        return split_list(value)


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable that sets the field at ``loc`` of ``Settings``."""
    first = str(loc[0]) if loc else ""
    field = Settings.model_fields.get(first)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return "WARDEN_" + "__".join(parts).upper()


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise ``SettingsError`` naming each bad variable.

    In sandbox mode without webhook secrets, a development secret is created once under
    ``var_dir`` and reused, so ``demo`` and the server agree without any setup; so is an
    encryption key when ``WARDEN_ENCRYPTION_KEYS`` is unset.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = [f"{env_name(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None
    problems = bot_credential_problems(settings) + certificate_problems(settings)
    problems += _itsm_problems(settings)
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    if settings.requirements_file is not None:
        load_catalog(settings.requirements_file)  # SettingsError naming the file and line
    if settings.mode is Mode.SANDBOX and not settings.sentinel_webhook_secrets:
        secret = ensure_dev_secret(settings.var_dir)
        settings = settings.model_copy(update={"sentinel_webhook_secrets": [SecretStr(secret)]})
    if settings.mode is Mode.SANDBOX and not settings.encryption_keys:
        key = ensure_dev_key(settings.var_dir)
        settings = settings.model_copy(update={"encryption_keys": [SecretStr(key)]})
    return settings


def bot_credential_problems(settings: Settings) -> list[str]:
    """What stops Warden from authenticating Teams safely; empty when all is well.

    Production mode fails closed: no app id or no credential means no start.
    """
    problems = []
    production = settings.mode is Mode.PRODUCTION
    managed = settings.microsoft_app_type is AppType.USER_ASSIGNED_MSI
    if production and not settings.microsoft_app_id:
        problems.append("MICROSOFT_APP_ID: required in production mode")
    if production and not managed and not settings.microsoft_app_password.get_secret_value():
        problems.append("MICROSOFT_APP_PASSWORD: required in production mode")
    single = settings.microsoft_app_type is not AppType.MULTI_TENANT
    if settings.microsoft_app_id and single and not settings.microsoft_app_tenant_id:
        kind = settings.microsoft_app_type.value
        problems.append(f"MICROSOFT_APP_TENANT_ID: required for {kind} bots")
    if production and not settings.bot_openid_metadata_url.startswith("https://"):
        problems.append("BOT_OPENID_METADATA_URL: must be https in production mode")
    if settings.webhook_entra_tenant_ids and not settings.microsoft_app_id:
        problems.append("WARDEN_WEBHOOK_ENTRA_TENANT_IDS: needs MICROSOFT_APP_ID (the audience)")
    if production and not settings.sentinel_webhook_secrets:
        problems.append("WARDEN_SENTINEL_WEBHOOK_SECRETS: required in production mode")
    if production and not settings.encryption_keys:
        problems.append("WARDEN_ENCRYPTION_KEYS: required in production mode")
    instance = settings.servicenow.instance_url
    if production and instance and not instance.startswith("https://"):
        problems.append("WARDEN_SERVICENOW__INSTANCE_URL: must be https in production mode")
    site = settings.jsm.base_url
    if production and site and not site.startswith("https://"):
        problems.append("WARDEN_JSM__BASE_URL: must be https in production mode")
    return problems


def _itsm_problems(settings: Settings) -> list[str]:
    """A default ITSM system that is not configured (the sandbox one counts, in sandbox mode)."""
    snow, jsm = settings.servicenow.enabled, settings.jsm.enabled
    embedded = settings.mode is Mode.SANDBOX and not (snow or jsm)
    return settings.itsm.problems(
        servicenow=snow or (embedded and settings.sandbox_itsm == "servicenow"),
        jsm=jsm or (embedded and settings.sandbox_itsm == "jsm"),
    )


def certificate_problems(settings: Settings) -> list[str]:
    """What is wrong with the configured client certificates, each naming its variable."""
    problems = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, ClientCertificate):
            problems += value.problems(env_name((name,)))
    return problems


def ensure_dev_secret(var_dir: Path) -> str:
    """The sandbox's development webhook secret, created under ``var_dir`` on first use."""
    path = var_dir / DEV_SECRET_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)
    return secret


def payload_keys(settings: Settings) -> list[str]:
    """The raw encryption keys, the one that encrypts first (for the cipher only, never logs).

    In sandbox mode without ``WARDEN_ENCRYPTION_KEYS`` it is the key under ``var_dir``
    (created once); production mode without it raises ``SettingsError`` naming the variable.
    """
    keys = [key.get_secret_value() for key in settings.encryption_keys]
    if keys:
        return keys
    if settings.mode is Mode.PRODUCTION:
        raise SettingsError(
            "invalid settings:\n  WARDEN_ENCRYPTION_KEYS: required in production mode"
        )
    return [ensure_dev_key(settings.var_dir)]


def payload_cipher(settings: Settings) -> PayloadCipher:
    """The store's cipher; its keys are registered with the log scrubber first."""
    keys = payload_keys(settings)  # SettingsError in production mode without keys
    for key in keys:
        SCRUBBER.register_secret(key)
    return PayloadCipher(keys)
