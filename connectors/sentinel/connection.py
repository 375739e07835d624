"""One connection to Sentinel for the whole process: the ARM client and its credential.

Built without I/O when the app is composed (the outbox's triage handler needs the client
before the worker starts); the token is fetched on first use. ``aclose`` releases both.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from connectors.http import resilient_client
from connectors.sentinel.client import SentinelClient
from connectors.sentinel.setup import credential
from core.breaker import Breakers
from core.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


def tls_verify(settings: Settings) -> ssl.SSLContext | bool:
    """What ARM, Entra and Graph certificates are checked against (a private CA in tests)."""
    if settings.arm_ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(settings.arm_ca_bundle))


@dataclass
class SentinelConnection:
    """The ARM HTTP client, the credential and the Sentinel client over them."""

    http: httpx.AsyncClient
    credential: AsyncTokenCredential
    client: SentinelClient

    @classmethod
    def from_settings(cls, settings: Settings, breakers: Breakers) -> SentinelConnection:
        """Connect as ``settings`` say (no I/O until the first call)."""
        http = resilient_client(
            breakers=breakers,
            verify=tls_verify(settings),
            client_cert=settings.arm_client_cert,
        )
        token = credential(settings)
        return cls(http, token, SentinelClient(http, token, base_url=settings.arm_endpoint))

    async def aclose(self) -> None:
        """Close the HTTP client and the credential."""
        await self.http.aclose()
        await self.credential.close()
