"""Inbound authentication's part of the composition: the check of Teams' bearer tokens and the
optional Entra bearer check of webhooks, both fetching their signing keys over one HTTP client
(``create_app`` closes it at shutdown, after the adapter)."""

from __future__ import annotations

import httpx

from bot.auth import BotTokenValidator
from connectors.entra import EntraTokenValidator
from core.settings import Settings
from web.webhooks import BearerCheck


def bot_token_validator(settings: Settings, http: httpx.AsyncClient) -> BotTokenValidator | None:
    """The validator of Teams' bearer tokens; none without an app id (sandbox mode)."""
    if not settings.microsoft_app_id:
        return None
    auth = settings.bot_auth
    return BotTokenValidator.for_bot(
        settings.microsoft_app_id,
        http,
        metadata_url=settings.bot_openid_metadata_url,
        clock_skew=auth.clock_skew_seconds,
        max_age=auth.keys_max_age_seconds,
        min_refresh=auth.min_refresh_seconds,
        timeout=auth.fetch_timeout_seconds,
    )


def webhook_bearer(settings: Settings, http: httpx.AsyncClient) -> BearerCheck | None:
    """The Entra bearer check of webhooks, when tenants are allowed to use one."""
    if not settings.webhook_entra_tenant_ids:
        return None
    app_id = settings.microsoft_app_id
    validator = EntraTokenValidator(
        settings.webhook_entra_tenant_ids,
        [app_id, f"api://{app_id}"],
        http,
        metadata_url=settings.webhook_entra_metadata_url,
    )
    return validator.check
