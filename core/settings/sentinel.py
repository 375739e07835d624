"""Sentinel and the inbound webhooks: signing secrets, workspaces to poll, the nightly reconcile.

Flat settings (``WARDEN_<FIELD>``) that ``core.settings.Settings`` inherits.
"""

from __future__ import annotations

import base64
from datetime import UTC, time
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from core.settings.runtime import split_list


class SentinelFields(BaseModel):
    """Sentinel's webhooks and polling, and who else may authenticate a webhook."""

    sentinel_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `whsec_…` secrets; any one verifies (rotation). "
        "In sandbox mode a development secret is generated under `var/` when unset.",
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
    sentinel_comments_seconds: float = Field(
        60.0,
        gt=0,
        description="Seconds between two reads of the comments of open incidents on cards, "
        "relayed to the cards' threads (when Warden is connected to Sentinel).",
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

    @field_validator(
        "sentinel_webhook_secrets", "sentinel_workspaces", "webhook_entra_tenant_ids", mode="before"
    )
    @classmethod
    def _split_sentinel_lists(cls, value: Any) -> Any:
        return split_list(value)

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

    @field_validator("sentinel_workspaces")
    @classmethod
    def _check_workspaces(cls, value: list[str]) -> list[str]:
        for item in value:
            if len([part for part in item.strip("/").split("/") if part]) not in (3, 8):
                raise ValueError(
                    f"{item!r}: use subscription/resourceGroup/workspace or the workspace's ARM id"
                )
        return value

    @field_validator("sentinel_reconcile_at")
    @classmethod
    def _check_reconcile_at(cls, value: str) -> str:
        hours, _, minutes = value.strip().partition(":")
        if not (len(hours) == len(minutes) == 2 and hours.isdigit() and minutes.isdigit()):
            raise ValueError(f"{value!r}: use HH:MM (24-hour, UTC), e.g. 02:30")
        if int(hours) > 23 or int(minutes) > 59:
            raise ValueError(f"{value!r} is not a time of day")
        return value.strip()

    @property
    def sentinel_reconcile_time(self) -> time:
        """``WARDEN_SENTINEL_RECONCILE_AT`` as a time of day in UTC."""
        hours, minutes = self.sentinel_reconcile_at.split(":")
        return time(int(hours), int(minutes), tzinfo=UTC)

    @property
    def webhook_secrets(self) -> list[str]:
        """The raw webhook secrets (for signing and verifying only, never for logs)."""
        return [s.get_secret_value() for s in self.sentinel_webhook_secrets]
