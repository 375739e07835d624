"""How Warden authenticates to Jira: an account's e-mail + API token, or OAuth 2.0.

``ApiToken`` is HTTP basic auth with the account's e-mail address and an API token.
``OAuthClientCredentials`` posts ``grant_type=client_credentials`` to the token URL and
keeps the bearer token until ``margin`` seconds before its ``expires_in``; one caller fetches
at a time, and after a 401 the client ``forget``s it and fetches a new one once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from connectors.auth import REFRESH_MARGIN, Authenticator, BasicAuth
from connectors.http import DEFAULT_TIMEOUT, IDEMPOTENT_EXTENSION
from connectors.jsm.errors import JsmError, JsmRefused, error_from_response, invalid_answer
from core.errors import DeliveryError
from core.settings_jsm import JsmSettings

ApiToken = BasicAuth
"""Jira's API token: basic auth with the account's e-mail address and the token."""


class OAuthClientCredentials:
    """OAuth 2.0 client credentials against ``token_url``, the token cached."""

    renewable = True

    def __init__(
        self,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Fetch tokens for ``client_id`` from ``token_url``; the caller owns ``http``."""
        self._http, self._url = http, token_url
        self._client_id, self._secret = client_id, client_secret
        self._margin, self._clock = margin, clock
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0
        """How many tokens were fetched (for metrics and tests)."""

    async def header(self) -> str:
        """``Bearer <token>``, fetched when none is held or it is within the margin."""
        async with self._lock:
            if self._token is None or self._token[1] <= self._clock():
                self._token = await self._fetch()
            return f"Bearer {self._token[0]}"

    def forget(self) -> None:
        """Drop the token (refused with 401): the next call fetches a new one."""
        self._token = None

    async def _fetch(self) -> tuple[str, float]:
        """A new token and the monotonic time to renew it at."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        try:
            response = await self._http.post(
                self._url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=DEFAULT_TIMEOUT,
                extensions={IDEMPOTENT_EXTENSION: True},
            )
        except DeliveryError as exc:
            raise JsmError.from_delivery(exc) from exc
        if response.is_error:
            error = error_from_response(response)
            if response.status_code in (400, 401, 403):
                raise JsmRefused(f"token refused: {error.message}", status=response.status_code)
            raise error
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise invalid_answer("the token endpoint's answer has no access_token") from None
        self.fetched += 1
        return token, self._clock() + max(0.0, lifetime - self._margin)


def authenticator(http: httpx.AsyncClient, settings: JsmSettings) -> Authenticator:
    """The authenticator ``settings`` describe (OAuth when a client id is set)."""
    if settings.client_id and settings.client_secret:
        return OAuthClientCredentials(
            http, settings.token_url, settings.client_id, settings.client_secret
        )
    if settings.email and settings.api_token:
        return ApiToken(settings.email, settings.api_token)
    raise ValueError("Jira is not configured (WARDEN_JSM__BASE_URL and its credentials)")
