"""Warden's identities: the bot's Entra app (Teams) and the Azure app that calls ARM and Graph.

Flat settings that ``core.settings.Settings`` inherits; the Azure and Bot Framework ones keep
their SDKs' own variable names (``AZURE_CLIENT_ID``, ``MICROSOFT_APP_ID``…).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from core.settings.runtime import split_list
from core.tls import ClientCertificate

BOT_FRAMEWORK_METADATA = "https://login.botframework.com/v1/.well-known/openidconfiguration"


class AppType(StrEnum):
    """The Bot Framework's app types (``MICROSOFT_APP_TYPE``)."""

    MULTI_TENANT = "MultiTenant"
    SINGLE_TENANT = "SingleTenant"
    USER_ASSIGNED_MSI = "UserAssignedMSI"


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


class BotIdentityFields(BaseModel):
    """The bot's Entra app, and the tenants whose Teams activities are served."""

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
    allowed_tenant_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Entra tenant ids whose Teams activities are served; "
        "activities from any other tenant are refused (403). Empty: any tenant.",
    )

    @field_validator("allowed_tenant_ids", mode="before")
    @classmethod
    def _split_bot_lists(cls, value: Any) -> Any:
        return split_list(value)


class AzureIdentityFields(BaseModel):
    """Warden's Azure identity and the ARM endpoint it calls (azure-identity's variables)."""

    arm_endpoint: str = Field(
        "https://management.azure.com", description="Azure Resource Manager's base URL."
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
