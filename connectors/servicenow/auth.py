"""How Warden authenticates to ServiceNow: basic auth, or OAuth2 client credentials.

``OAuthClientCredentials`` posts ``grant_type=client_credentials`` to the instance's
``/oauth_token.do`` and keeps the bearer token until ``margin`` seconds before its
``expires_in``; one caller fetches at a time. After a 401 the client ``forget``s it and
fetches a new one once. The token request only obtains a token, so it is sent as
idempotent (the resilient layer may retry it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from connectors.auth import REFRESH_MARGIN, Authenticator
from connectors.auth import BasicAuth as BasicAuth  # tests and callers name it here
from connectors.http import DEFAULT_TIMEOUT, IDEMPOTENT_EXTENSION
from connectors.servicenow.errors import (
    ServiceNowError,
    ServiceNowRefused,
    error_from_response,
    invalid_answer,
)
from core.errors import DeliveryError, Outcome
from core.settings_servicenow import ServiceNowSettings

TOKEN_PATH = "/oauth_token.do"  # noqa: S105 - a path, not a secret
"""The instance's OAuth token endpoint."""


class OAuthClientCredentials:
    """OAuth2 client credentials against ``{instance}/oauth_token.do``, token cached.

    The caller owns ``http``; ``clock`` gives monotonic seconds.
    """

    renewable = True

    def __init__(
        self,
        http: httpx.AsyncClient,
        instance_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Fetch tokens for ``client_id`` from ``instance_url``'s token endpoint."""
        self._http = http
        self._url = instance_url.rstrip("/") + TOKEN_PATH
        self._client_id = client_id
        self._secret = client_secret
        self._margin = margin
        self._clock = clock
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
            raise ServiceNowError.from_delivery(exc) from exc
        if response.is_error:
            error = error_from_response(response)
            if response.status_code in (400, 401):
                raise ServiceNowRefused(
                    f"token refused: {error.message}", status=response.status_code
                )
            raise error
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 1800))
        except (ValueError, KeyError, TypeError):
            raise invalid_answer("the token endpoint's answer has no access_token") from None
        self.fetched += 1
        return token, self._clock() + max(0.0, lifetime - self._margin)


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
