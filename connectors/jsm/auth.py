"""How Warden authenticates to Jira: an account's e-mail + API token, or OAuth 2.0.

``ApiToken`` is HTTP basic auth with the account's e-mail address and an API token.
``OAuthClientCredentials`` posts ``grant_type=client_credentials`` to the token URL and
keeps the bearer token until ``margin`` seconds before its ``expires_in``; one caller fetches
at a time, and after a 401 the client ``forget``s it and fetches a new one once (the cache
is ``connectors.itsm_oauth``'s).
"""

from __future__ import annotations

import httpx

from connectors import itsm_oauth
from connectors.auth import Authenticator, BasicAuth
from connectors.jsm.errors import ERRORS
from core.settings.jsm import JsmSettings

ApiToken = BasicAuth
"""Jira's API token: basic auth with the account's e-mail address and the token."""


class OAuthClientCredentials(itsm_oauth.OAuthClientCredentials):
    """OAuth 2.0 client credentials against ``token_url``, the token cached."""

    errors = ERRORS
    refused_statuses = (400, 401, 403)
    default_lifetime = 3600.0


def authenticator(http: httpx.AsyncClient, settings: JsmSettings) -> Authenticator:
    """The authenticator ``settings`` describe (OAuth when a client id is set)."""
    if settings.client_id and settings.client_secret:
        return OAuthClientCredentials(
            http, settings.token_url, settings.client_id, settings.client_secret
        )
    if settings.email and settings.api_token:
        return ApiToken(settings.email, settings.api_token)
    raise ValueError("Jira is not configured (WARDEN_JSM__BASE_URL and its credentials)")
