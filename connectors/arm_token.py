"""One cached ARM bearer token from an azure-identity credential, shared by ARM clients.

Every client of an Azure Resource Manager API (Sentinel, Policy Insights, ...) needs the
same thing: a token for ``https://management.azure.com/.default``, kept until shortly
before it expires, fetched by one caller at a time, forgotten after a 401, and a
credential failure turned into the client's own typed error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.exceptions import AzureError


ARM_SCOPE = "https://management.azure.com/.default"
"""The token scope of ARM calls."""

REFRESH_MARGIN = 300.0
"""Seconds before expiry when a token is fetched again."""


class ArmTokenCache:
    """Holds one token of ``credential`` for ``scope``; ``on_error`` types its failures.

    The caller owns (and closes) ``credential``. ``clock`` gives epoch seconds.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        on_error: Callable[[AzureError], Exception],
        *,
        scope: str = ARM_SCOPE,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Fetch tokens for ``scope`` from ``credential`` when they are ``margin`` from expiry."""
        self._credential = credential
        self._on_error = on_error
        self._scope = scope
        self._margin = margin
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def bearer(self) -> str:
        """The token's text, fetched again when it is within the margin of its expiry."""
        async with self._lock:
            token = self._token
            if token is None or token.expires_on - self._margin <= self._clock():
                token = self._token = await self._fetch()
            return token.token

    def forget(self) -> None:
        """Drop the token (ARM refused it with 401): the next call fetches a new one."""
        self._token = None

    async def _fetch(self) -> AccessToken:
        """A token from the credential; its failures as ``on_error`` makes them."""
        from azure.core.exceptions import AzureError  # loaded with the credential already

        try:
            return await self._credential.get_token(self._scope)
        except AzureError as exc:
            raise self._on_error(exc) from exc
