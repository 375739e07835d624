"""Warden's Microsoft Graph client: msgraph-sdk over the resilient outbound layer.

msgraph-sdk's request adapter sends through Warden's own httpx client, without the SDK's
middleware: retries, Retry-After, the deadline and the per-host breaker come from
``connectors.http`` like every other client, and redirects are never followed (a bearer
token must not travel to another host). Building a client applies ``graph.speedups`` (the
SDK's per-call overhead, cut once for the process).
"""

from __future__ import annotations

import ssl

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

from connectors.http import resilient_client
from core.breaker import Breakers
from graph import speedups

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def graph_http(breakers: Breakers, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The HTTP client Graph calls go through (the caller closes it)."""
    return resilient_client(breakers=breakers, verify=verify)


def graph_client(
    credential: AsyncTokenCredential, http: httpx.AsyncClient, *, base_url: str
) -> GraphServiceClient:
    """A ``GraphServiceClient`` for ``base_url`` (``https://graph.microsoft.com/v1.0``)."""
    url = httpx.URL(base_url)
    if url.scheme != "https" or not url.host:
        raise ValueError(f"the Graph endpoint must be an https URL, not {base_url!r}")
    speedups.apply()
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[url.host]
    )
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
