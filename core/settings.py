"""Warden's settings: read once at boot from the environment, validated, then passed around.

A wrong value stops start-up with a message that names the environment variable
(``SettingsError``). Nothing here runs at import time; ``load_settings()`` does the work.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, time
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
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
from core.crypto import PayloadCipher, ensure_dev_key, is_valid_key
from core.errors import SettingsError
from core.keyvault import KeyVaultSource
from core.logs import SCRUBBER
from core.settings_budgets import BudgetsSettings
from core.settings_cmdb import CmdbSettings
from core.settings_connectors import ConnectorFlags
from core.settings_costs import CostsSettings
from core.settings_defender import DefenderSettings
from core.settings_delta import DeltaSettings
from core.settings_deployments import DeploymentSettings
from core.settings_itsm import ItsmSettings
from core.settings_jsm import JsmSettings
from core.settings_manifest import ManifestSettings
from core.settings_roles import RolesSettings
from core.settings_scim import ScimSettings
from core.settings_servicenow import ServiceNowSettings
from core.tls import ClientCertificate

BOT_FRAMEWORK_METADATA = "https://login.botframework.com/v1/.well-known/openidconfiguration"
DEV_SECRET_FILE = "dev-webhook-secret"  # noqa: S105 - a file name, not a secret
SHAREPOINT_SITE = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
    r":/(?P<path>(?:sites|teams)(?:/[^/:?#\s]+)+)"
)
"""``WARDEN_SHAREPOINT_SITE``: a host name, ``:/``, then ``sites/Name`` (or ``teams/Name``)."""
POLICY_SCOPE = re.compile(
    r"/subscriptions/[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    r"(/resourceGroups/[-\w._()]{0,89}[-\w_()])?/?",
    re.IGNORECASE,
)
"""``WARDEN_POLICY_SCOPES``: a subscription, or a resource group in one."""


class Mode(StrEnum):
    """How Warden runs: against the local sandbox, or against a real tenant."""

    SANDBOX = "sandbox"
    PRODUCTION = "production"


class AppType(StrEnum):
    """The Bot Framework's app types (``MICROSOFT_APP_TYPE``)."""

    MULTI_TENANT = "MultiTenant"
    SINGLE_TENANT = "SingleTenant"
    USER_ASSIGNED_MSI = "UserAssignedMSI"


class OutboxSettings(BaseModel):
    """Tuning of the delivery outbox (``WARDEN_OUTBOX__<FIELD>``)."""

    max_attempts: int = Field(8, ge=1, le=100, description="Attempts before a job is dead.")
    backoff_base_seconds: float = Field(1.0, gt=0, description="First retry delay.")
    backoff_max_seconds: float = Field(300.0, gt=0, description="Longest retry delay.")
    concurrency: int = Field(8, ge=1, le=256, description="Jobs delivered at once.")
    lease_seconds: float = Field(60.0, gt=0, description="How long a claimed job is held.")
    poll_seconds: float = Field(2.0, gt=0, description="Idle re-check interval.")
    retain_hours: float = Field(
        24.0, gt=0, description="How long finished jobs and webhook receipts are kept."
    )


class BotAuthSettings(BaseModel):
    """Checking the bearer of Teams' requests (``WARDEN_BOT_AUTH__<FIELD>``)."""

    clock_skew_seconds: float = Field(
        300.0, ge=0, le=600, description="Tolerance on a token's exp and nbf."
    )
    keys_max_age_seconds: float = Field(
        86_400.0, gt=0, description="How long fetched signing keys are trusted."
    )
    min_refresh_seconds: float = Field(
        300.0, ge=1, description="Least time between key fetches caused by an unknown key id."
    )
    fetch_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="Timeout of one metadata or key fetch."
    )


class PacingSettings(BaseModel):
    """Teams pacing (``WARDEN_PACING__<FIELD>``): stay under Teams' documented rate limits."""

    enabled: bool = Field(True, description="Pace card posts per conversation and per bot.")
    margin_seconds: float = Field(
        0.25,
        ge=0,
        le=5,
        description="How much later than it started a send still on the way may reach Teams "
        "(network delay); answered sends count from their answer.",
    )


class Settings(BaseSettings):
    """Everything Warden can be configured with; see README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="WARDEN_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    mode: Mode = Field(Mode.SANDBOX, description="`sandbox` (local, no tenant) or `production`.")
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(3978, ge=0, le=65535, description="Port the HTTP server binds.")
    playground_port: int = Field(
        56150, ge=0, le=65535, description="Port of the Agents Playground that `make run` starts."
    )
    sandbox_arm_port: int = Field(
        56160,
        ge=0,
        le=65535,
        description="Port of the sandbox Sentinel (ARM, Entra ID, Graph) that `make run` starts "
        "when no Sentinel is configured, so triage works in the Playground.",
    )
    sandbox_servicenow_port: int = Field(
        56170,
        ge=0,
        le=65535,
        description="Port of the sandbox ServiceNow that `make run` starts when no ServiceNow "
        "is configured, so incidents can be linked to change requests in the Playground.",
    )
    sandbox_graph_port: int = Field(
        56180,
        ge=0,
        le=65535,
        description="Port of the sandbox Microsoft Graph (SharePoint) that `make run` starts "
        "when no SharePoint site is configured, so evidence is filed in the Playground.",
    )
    sandbox_itsm: Literal["servicenow", "jsm"] = Field(
        "servicenow",
        description="The ITSM sandbox `make run` connects when no ITSM system is configured: "
        "`servicenow`, or `jsm` to try Jira Service Management in its place.",
    )
    sandbox_jsm_port: int = Field(
        56200,
        ge=0,
        le=65535,
        description="Port of the sandbox Jira Service Management that `make run` starts when "
        "`WARDEN_SANDBOX_ITSM` is `jsm`.",
    )
    sandbox_azurite_port: int = Field(
        56190,
        ge=0,
        le=65535,
        description="Port of Azurite (blob storage) that `make run` starts, when it is installed "
        "and no cost exports are configured, with a sample export for `costs ingest` (0: off).",
    )
    var_dir: Path = Field(Path("var"), description="Directory for local state (SQLite, keys).")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite under `var/`. "
        "Use `postgresql+asyncpg://…` for PostgreSQL.",
    )
    store_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="How long a store call waits for a lock or an answer; "
        "after that, ingest answers 503 with Retry-After.",
    )
    auto_migrate: bool = Field(True, description="Apply database migrations at start.")
    sentinel_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `whsec_…` secrets; any one verifies (rotation). "
        "In sandbox mode a development secret is generated under `var/` when unset.",
    )
    allowed_tenant_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Entra tenant ids whose Teams activities are served; "
        "activities from any other tenant are refused (403). Empty: any tenant.",
    )
    sentinel_workspaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Sentinel workspaces to poll, each "
        "`subscription/resourceGroup/workspace`; empty: no polling (webhooks only).",
    )
    sentinel_poll_seconds: float = Field(
        60.0, gt=0, description="Seconds between two polls of the Sentinel workspaces."
    )
    sentinel_reconcile_enabled: bool = Field(
        True,
        description="Walk every open incident of the Sentinel workspaces nightly (when "
        "`WARDEN_SENTINEL_WORKSPACES` is set); only changed incidents update cards.",
    )
    sentinel_reconcile_at: str = Field(
        "02:30",
        description="Time of day of the nightly reconcile, `HH:MM` in UTC; a night missed "
        "while Warden was down is caught up when it starts.",
    )
    policy_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated scopes whose Azure Policy non-compliance opens evidence "
        "requests, each `/subscriptions/{id}` or `/subscriptions/{id}/resourceGroups/{name}` "
        "(needs `WARDEN_REQUIREMENTS_FILE`); empty: no policy polling.",
    )
    policy_poll_seconds: float = Field(
        900.0, gt=0, description="Seconds between two reads of Azure Policy non-compliance."
    )
    evidence_channel: str | None = Field(
        None,
        description="Conversation id (e.g. `19:…@thread.tacv2`) where the owner's cards of "
        "requests opened from Azure Policy and by campaigns are posted; Warden must be installed "
        "there. "
        "Unset (or unknown to Warden): the requests are opened and audited, no card is posted.",
    )
    auditors_channel: str | None = Field(
        None,
        description="Conversation id of the auditors' channel, where evidence records changed "
        "outside Warden (a file replaced, a column edited, an audit item deleted) are posted as "
        "alert cards; Warden must be installed there. Unset: the changes are audited only.",
    )
    evidence_reminder_seconds: float = Field(
        3600.0,
        ge=0,
        description="Seconds between two rounds of evidence reminders and escalations (before "
        "the due date, on it, and when overdue); 0 turns reminders off.",
    )
    arm_endpoint: str = Field(
        "https://management.azure.com", description="Azure Resource Manager's base URL."
    )
    graph_endpoint: str = Field(
        "https://graph.microsoft.com/v1.0", description="Microsoft Graph's base URL."
    )
    sharepoint_site: str | None = Field(
        None,
        description="SharePoint site of the evidence records, `host:/sites/Name` (e.g. "
        "`contoso.sharepoint.com:/sites/Compliance`); provisioning creates its library and lists.",
    )
    evidence_link_hosts: str = Field(
        "",
        description="Comma-separated host suffixes evidence links may point to (e.g. "
        "`contoso.com,github.com`); empty: any public host the SSRF guard allows.",
    )
    evidence_file_hosts: str = Field(
        "*.sharepoint.com",
        description="Comma-separated hosts files attached in a Teams chat are downloaded from "
        "(exact names or `*.suffix` wildcards); Teams hands the bot a short-lived SharePoint or "
        "OneDrive download URL.",
    )
    sentinel_comments_seconds: float = Field(
        60.0,
        gt=0,
        description="Seconds between two reads of the comments of open incidents on cards, "
        "relayed to the cards' threads (when Warden is connected to Sentinel).",
    )
    responder_group_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Deprecated alias of `WARDEN_ROLES__RESPONDER_GROUPS` (its groups are added "
        "there): Entra group ids whose members may triage incidents from cards.",
    )
    responder_cache_seconds: float = Field(
        300.0, ge=0, description="How long a person's responder membership is remembered."
    )
    arm_ca_bundle: Path | None = Field(
        None, description="A PEM bundle to trust for ARM and Entra ID (e.g. the sandbox's CA)."
    )
    arm_client_cert: ClientCertificate | None = Field(
        None, description="A TLS client certificate Warden presents to ARM (mutual TLS)."
    )
    azure_tenant_id: str = Field(
        "",
        validation_alias=AliasChoices("AZURE_TENANT_ID", "azure_tenant_id"),
        description="Entra tenant of Warden's ARM identity (`AZURE_TENANT_ID`).",
    )
    azure_client_id: str = Field(
        "",
        validation_alias=AliasChoices("AZURE_CLIENT_ID", "azure_client_id"),
        description="Client id of Warden's ARM identity (`AZURE_CLIENT_ID`).",
    )
    azure_client_secret: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("AZURE_CLIENT_SECRET", "azure_client_secret"),
        description="Its secret (`AZURE_CLIENT_SECRET`); unset: managed identity.",
    )
    azure_authority_host: str | None = Field(
        None,
        validation_alias=AliasChoices("AZURE_AUTHORITY_HOST", "azure_authority_host"),
        description="Entra ID authority (`AZURE_AUTHORITY_HOST`); default the public cloud.",
    )
    key_vault_url: str | None = Field(
        None,
        description="Azure Key Vault (`https://<vault>.vault.azure.net`) whose secrets are read "
        "as settings too, with the ARM identity; the environment overrides them.",
    )
    webhook_entra_tenant_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Entra tenants whose tokens (audience = MICROSOFT_APP_ID) "
        "may authenticate webhooks instead of a signature; empty: signatures only.",
    )
    webhook_entra_metadata_url: str = Field(
        "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration",
        description="OpenID metadata of those tenants' signing keys (`{tenant}` is filled in).",
    )
    webhook_max_bytes: int = Field(1_048_576, ge=1024, description="Largest webhook body.")
    record_dir: Path | None = Field(
        None,
        description="When set, every accepted inbound webhook and Teams activity is appended, "
        "scrubbed as the logs are, to a JSON-lines file per day here, for `app.py replay`.",
    )
    microsoft_app_id: str = Field(
        "",
        validation_alias=AliasChoices("MICROSOFT_APP_ID", "microsoft_app_id"),
        description="The bot's Entra app id (`MICROSOFT_APP_ID`); empty in sandbox mode.",
    )
    microsoft_app_password: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("MICROSOFT_APP_PASSWORD", "microsoft_app_password"),
        description="The bot's client secret (`MICROSOFT_APP_PASSWORD`).",
    )
    microsoft_app_tenant_id: str = Field(
        "",
        validation_alias=AliasChoices("MICROSOFT_APP_TENANT_ID", "microsoft_app_tenant_id"),
        description="The bot's home tenant, for single-tenant bots (`MICROSOFT_APP_TENANT_ID`).",
    )
    microsoft_app_type: AppType = Field(
        AppType.MULTI_TENANT,
        validation_alias=AliasChoices("MICROSOFT_APP_TYPE", "microsoft_app_type"),
        description="`MultiTenant`, `SingleTenant` or `UserAssignedMSI` (`MICROSOFT_APP_TYPE`).",
    )
    bot_openid_metadata_url: str = Field(
        BOT_FRAMEWORK_METADATA,
        validation_alias=AliasChoices("BOT_OPENID_METADATA_URL", "bot_openid_metadata_url"),
        description="OpenID metadata of the keys that sign Teams' requests "
        "(`BOT_OPENID_METADATA_URL`); point it at a local one (`sandbox.openid`) to test offline.",
    )
    log_pepper: SecretStr = Field(
        SecretStr(""),
        description="Secret key of the pseudonyms that stand for e-mails, UPNs and addresses in "
        "logs; without it they are plain SHA-256 (guessable for a known address).",
    )
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Fernet keys that encrypt stored incidents, jobs and conversation references "
        "(comma-separated or a JSON list; `python app.py keys generate` makes one). The first "
        "encrypts, all decrypt: put a new key in front, then `python app.py keys rotate`. "
        "Required in production mode; in sandbox mode a key is generated under `var/` when unset.",
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint for traces (off when unset)."
    )
    requirements_file: Path | None = Field(
        None,
        description="YAML catalog of the requirements that need evidence (see "
        "`docs/examples/requirements.yaml`); checked at start, a bad one stops it naming the "
        "line. `python app.py catalog check` shows it.",
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

    @field_validator(
        "sentinel_webhook_secrets",
        "allowed_tenant_ids",
        "sentinel_workspaces",
        "policy_scopes",
        "webhook_entra_tenant_ids",
        "responder_group_ids",
        mode="before",
    )
    @classmethod
    def _split_secrets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sentinel_webhook_secrets")
    @classmethod
    def _check_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for item in value:
            raw = item.get_secret_value()
            if not raw.startswith("whsec_"):
                raise ValueError("each secret must start with 'whsec_'")
            try:
                base64.b64decode(raw.removeprefix("whsec_"), validate=True)
            except ValueError:
                raise ValueError("the part after 'whsec_' must be base64") from None
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("not a valid JSON list of keys") from None
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for position, item in enumerate(value, start=1):
            if not is_valid_key(item.get_secret_value()):
                raise ValueError(
                    f"key {position} is not a Fernet key (url-safe base64 of 32 bytes; "
                    "`python app.py keys generate` makes one)"
                )
        return value

    @field_validator("sentinel_workspaces")
    @classmethod
    def _check_workspaces(cls, value: list[str]) -> list[str]:
        for item in value:
            if len([part for part in item.strip("/").split("/") if part]) not in (3, 8):
                raise ValueError(
                    f"{item!r}: use subscription/resourceGroup/workspace or the workspace's ARM id"
                )
        return value

    @field_validator("policy_scopes")
    @classmethod
    def _check_policy_scopes(cls, value: list[str]) -> list[str]:
        for item in value:
            if POLICY_SCOPE.fullmatch(item.strip()) is None:
                raise ValueError(
                    f"{item!r}: use /subscriptions/{{id}} or "
                    "/subscriptions/{id}/resourceGroups/{name}"
                )
        return [item.strip().rstrip("/") for item in value]

    @field_validator("sentinel_reconcile_at")
    @classmethod
    def _check_reconcile_at(cls, value: str) -> str:
        hours, _, minutes = value.strip().partition(":")
        if not (len(hours) == len(minutes) == 2 and hours.isdigit() and minutes.isdigit()):
            raise ValueError(f"{value!r}: use HH:MM (24-hour, UTC), e.g. 02:30")
        if int(hours) > 23 or int(minutes) > 59:
            raise ValueError(f"{value!r} is not a time of day")
        return value.strip()

    @field_validator("sharepoint_site")
    @classmethod
    def _check_sharepoint_site(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if SHAREPOINT_SITE.fullmatch(value.strip()) is None:
            raise ValueError(
                f"{value!r}: use host:/sites/Name, e.g. contoso.sharepoint.com:/sites/Compliance"
            )
        return value.strip()

    @property
    def sentinel_reconcile_time(self) -> time:
        """``WARDEN_SENTINEL_RECONCILE_AT`` as a time of day in UTC."""
        hours, minutes = self.sentinel_reconcile_at.split(":")
        return time(int(hours), int(minutes), tzinfo=UTC)

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite under ``var_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'warden.db').resolve()}"

    @property
    def webhook_secrets(self) -> list[str]:
        """The raw webhook secrets (for signing and verifying only, never for logs)."""
        return [s.get_secret_value() for s in self.sentinel_webhook_secrets]


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


def settings_table() -> str:
    """README's configuration table (Markdown), generated from the model's fields."""
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if _model_of(field.annotation) is None:
            default = [] if field.default_factory is not None else field.default
            rows.append(_row(env_name((name,)), default, field.description))
        else:
            rows.extend(_nested_rows(f"WARDEN_{name.upper()}", field.annotation))
    return "\n".join(rows) + "\n"


def _nested_rows(prefix: str, annotation: Any) -> list[str]:
    """The rows of a sub-model's fields, ``PREFIX__FIELD``, sub-sub-models flattened too."""
    model, rows = _model_of(annotation), []
    assert model is not None
    for name, field in model.model_fields.items():
        variable = f"{prefix}__{name.upper()}"
        if _model_of(field.annotation) is not None:
            rows.extend(_nested_rows(variable, field.annotation))
        else:
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            rows.append(_row(variable, default, field.description))
    return rows


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings sub-model of a field's annotation (``Model`` or ``Model | None``)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _row(variable: str, default: Any, description: str | None) -> str:
    if isinstance(default, SecretStr):
        shown = "(empty)" if not default.get_secret_value() else "(set)"
    elif isinstance(default, Enum):
        shown = f"`{default.value}`"
    elif default in (None, "", []):
        shown = "(empty)"
    else:
        shown = "`{}`".format(str(default).replace("|", "\\|"))
    return f"| `{variable}` | {shown} | {description or ''} |"


def payload_cipher(settings: Settings) -> PayloadCipher:
    """The store's cipher; its keys are registered with the log scrubber first."""
    keys = payload_keys(settings)  # SettingsError in production mode without keys
    for key in keys:
        SCRUBBER.register_secret(key)
    return PayloadCipher(keys)
