"""OAuth 2.0 client credentials for an ITSM connector (ServiceNow, Jira Service Management).

``OAuthClientCredentials`` posts ``grant_type=client_credentials`` to the token URL and
keeps the bearer token until ``margin`` seconds before its ``expires_in``; one caller
fetches at a time, and after a 401 the client ``forget``s it and fetches a new one once.
The token request only obtains a token, so it is sent as idempotent (the resilient layer
may retry it). A connector subclasses it once: its error family, the statuses that mean
the credentials were refused, the lifetime assumed when the answer gives none and, when its
settings name something else than the token URL, where the token endpoint is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from connectors.auth import REFRESH_MARGIN
from connectors.http import DEFAULT_TIMEOUT, IDEMPOTENT_EXTENSION
from connectors.itsm_errors import ItsmErrorKinds
from core.errors import DeliveryError


class OAuthClientCredentials:
    """OAuth 2.0 client credentials against a token endpoint, the token cached.

    The caller owns ``http``; ``clock`` gives monotonic seconds.
    """

    renewable = True

    errors: ClassVar[ItsmErrorKinds[Any]]
    """The service's error family: what a failed token request becomes."""

    refused_statuses: ClassVar[tuple[int, ...]] = (400, 401)
    """The token endpoint's statuses that mean the credentials were refused."""

    default_lifetime: ClassVar[float] = 3600.0
    """Seconds a token lives when the answer has no ``expires_in``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Fetch tokens for ``client_id`` from the token endpoint ``url`` names."""
        self._http, self._url = http, self.token_url(url)
        self._client_id, self._secret = client_id, client_secret
        self._margin, self._clock = margin, clock
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0
        """How many tokens were fetched (for metrics and tests)."""

    @classmethod
    def token_url(cls, url: str) -> str:
        """The token endpoint of the ``url`` the settings give (by default, itself)."""
        return url

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
            raise self.errors.base.from_delivery(exc) from exc
        if response.is_error:
            error = self.errors.from_response(response)
            if response.status_code in self.refused_statuses:
                message = f"token refused: {error.message}"
                raise self.errors.refused(message, status=response.status_code)
            raise error
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", self.default_lifetime))
        except (ValueError, KeyError, TypeError):
            raise self.errors.invalid_answer(
                "the token endpoint's answer has no access_token"
            ) from None
        self.fetched += 1
        return token, self._clock() + max(0.0, lifetime - self._margin)
