"""How Warden authenticates to ServiceNow: basic auth, or OAuth2 client credentials.

``OAuthClientCredentials`` posts ``grant_type=client_credentials`` to the instance's
``/oauth_token.do`` and keeps the bearer token until ``margin`` seconds before its
``expires_in``; one caller fetches at a time. After a 401 the client ``forget``s it and
fetches a new one once. The token request only obtains a token, so it is sent as
idempotent (the resilient layer may retry it). The cache is ``connectors.itsm_oauth``'s.
"""

from __future__ import annotations

import httpx

from connectors import itsm_oauth
from connectors.auth import Authenticator
from connectors.auth import BasicAuth as BasicAuth  # tests and callers name it here
from connectors.servicenow.errors import ERRORS, ServiceNowRefused
from core.errors import Outcome
from core.settings.servicenow import ServiceNowSettings

TOKEN_PATH = "/oauth_token.do"  # noqa: S105 - a path, not a secret
"""The instance's OAuth token endpoint."""


class OAuthClientCredentials(itsm_oauth.OAuthClientCredentials):
    """OAuth2 client credentials against ``{instance}/oauth_token.do``, token cached.

    The caller owns ``http``; ``clock`` gives monotonic seconds.
    """

    errors = ERRORS
    refused_statuses = (400, 401)
    default_lifetime = 1800.0

    @classmethod
    def token_url(cls, url: str) -> str:
        """The token endpoint of the instance at ``url``."""
        return url.rstrip("/") + TOKEN_PATH


def authenticator(http: httpx.AsyncClient, settings: ServiceNowSettings) -> Authenticator:
    """The authenticator ``settings`` describe (OAuth when a client id is set)."""
    if not settings.instance_url:
        raise ValueError("ServiceNow is not configured (WARDEN_SERVICENOW__INSTANCE_URL)")
    if settings.client_id and settings.client_secret:
        return OAuthClientCredentials(
            http, settings.instance_url, settings.client_id, settings.client_secret
        )
    if settings.username and settings.password:
        return BasicAuth(settings.username, settings.password)
    raise ServiceNowRefused("no ServiceNow credentials are configured", outcome=Outcome.FAIL)
