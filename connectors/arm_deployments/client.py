"""Async client of ARM deployments of resource groups (api-version 2024-03-01).

``GET {arm}{group}/providers/Microsoft.Resources/deployments`` lists a group's deployments
(``$top``, then ``nextLink``), ``GET .../deployments/{name}`` reads one and
``GET .../deployments/{name}/operations`` lists what it did, each operation naming the
resource it touched (``properties.targetResource.id``). Every call only reads, so it is sent
as idempotent through the injected resilient ``httpx.AsyncClient`` (retries, ``Retry-After``,
the per-host breaker), with an ARM bearer token (``connectors.arm_token``) and explicit
timeouts. A ``nextLink`` to another host, or one seen before, is refused: the token would go
along, or the pages loop.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from connectors.arm_deployments.errors import (
    DeploymentsError,
    DeploymentsUnavailable,
    error_from_credential,
    error_from_response,
    invalid_answer,
)
from connectors.arm_deployments.mapping import deployment_from_resource
from connectors.arm_token import ARM_SCOPE, ArmTokenCache
from connectors.http import DEFAULT_TIMEOUT, IDEMPOTENT_EXTENSION, host_key
from core.deployments import Deployment, resource_group_of
from core.errors import DeliveryError
from core.outcomes import classify_transport

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

ARM_ENDPOINT = "https://management.azure.com"
"""Azure Resource Manager in the public cloud."""

API_VERSION = "2024-03-01"
"""The Microsoft.Resources api-version this client speaks."""


class DeploymentsClient:
    """Reads the deployments of resource groups and the resources they touched.

    The caller owns (and closes) ``http`` and ``credential``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        credential: AsyncTokenCredential,
        *,
        base_url: str = ARM_ENDPOINT,
        api_version: str = API_VERSION,
        scope: str = ARM_SCOPE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to ARM at ``base_url`` (https only: it carries a bearer token)."""
        origin = httpx.URL(base_url)
        if origin.scheme != "https" or not origin.host:
            raise ValueError(f"base_url must be an https URL, not {base_url!r}")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._origin = host_key(origin)
        self._api = {"api-version": api_version}
        self._timeout = timeout
        self._tokens = ArmTokenCache(credential, error_from_credential, scope=scope)

    async def list_raw(self, resource_group: str, *, top: int = 50) -> AsyncIterator[Any]:
        """Every ``DeploymentExtended`` of ``resource_group`` (its id), newest first, page
        by page as the caller reads; ``ValueError`` for an id that is not a group's."""
        if not 1 <= top <= 1000:
            raise ValueError("top must be from 1 to 1000")
        url: str | None = self._collection(resource_group)
        params: dict[str, str] | None = {**self._api, "$top": str(top)}
        seen: set[str] = set()
        while url is not None:
            answer = await self._get(url, params)
            value = answer.get("value") if isinstance(answer, dict) else None
            if not isinstance(value, list):
                raise invalid_answer("the deployments list has no 'value' array")
            for item in value:
                yield item
            url, params = self._follow(answer.get("nextLink"), seen), None

    async def get(self, resource_group: str, name: str) -> Deployment:
        """One deployment, with the resources its operations touched; ``DeploymentNotFound``
        when the group has no deployment of that name."""
        url = f"{self._collection(resource_group)}/{_segment(name)}"
        resource = await self._get(url, self._api)
        return deployment_from_resource(resource, await self.operations(resource_group, name))

    async def operations(self, resource_group: str, name: str) -> list[Any]:
        """The deployment's operations (``DeploymentOperation`` objects, as ARM sends them)."""
        url = f"{self._collection(resource_group)}/{_segment(name)}/operations"
        found: list[Any] = []
        next_url: str | None = url
        params: dict[str, str] | None = self._api
        seen: set[str] = set()
        while next_url is not None:
            answer = await self._get(next_url, params)
            value = answer.get("value") if isinstance(answer, dict) else None
            if not isinstance(value, list):
                raise invalid_answer("the operations list has no 'value' array")
            found += value
            next_url, params = self._follow(answer.get("nextLink"), seen), None
        return found

    def _collection(self, resource_group: str) -> str:
        """The absolute URL of a group's deployments collection."""
        group = resource_group_of(resource_group)
        if group is None or group != resource_group.strip().lower().rstrip("/"):
            raise ValueError(f"not a resource group id: {resource_group!r}")
        _, subscription, _, name = resource_group.strip().strip("/").split("/")[:4]
        path = f"/subscriptions/{_segment(subscription)}/resourceGroups/{_segment(name)}"
        return f"{self._base_url}{path}/providers/Microsoft.Resources/deployments"

    def _follow(self, link: object, seen: set[str]) -> str | None:
        """The next page's URL; refuse another host (the token goes along) or a loop."""
        if not isinstance(link, str) or not link:
            return None
        url = httpx.URL(link)
        if host_key(url) != self._origin or link in seen:
            problem = "a loop" if link in seen else f"another host ({url.host})"
            raise DeploymentsError(f"nextLink points to {problem}", code="InvalidNextLink")
        seen.add(link)
        if "api-version" not in url.params:
            return str(url.copy_merge_params(self._api))
        return link

    async def _get(self, url: str, params: dict[str, str] | None) -> Any:
        """The JSON of a 2xx answer, else the typed error (None ``params``: a nextLink)."""
        headers = {
            "Authorization": f"Bearer {await self._tokens.bearer()}",
            "Accept": "application/json",
            "x-ms-client-request-id": str(uuid.uuid4()),
        }
        try:
            response = await self._http.get(
                url,
                params=params,
                headers=headers,
                timeout=self._timeout,
                extensions={IDEMPOTENT_EXTENSION: True},
            )
        except DeliveryError as exc:
            raise DeploymentsUnavailable.from_delivery(exc) from exc
        except httpx.HTTPError as exc:
            message = f"GET {httpx.URL(url).path}: {type(exc).__name__}"
            raise DeploymentsUnavailable(message, outcome=classify_transport(exc)) from exc
        if response.status_code == 401:
            self._tokens.forget()
        if response.is_error:
            raise error_from_response(response)
        try:
            return response.json()
        except ValueError:
            raise invalid_answer(f"GET {response.url.path}: not JSON") from None


def _segment(value: str) -> str:
    """One path segment, percent-encoded; ``ValueError`` for an empty one or a slash."""
    if not value or "/" in value:
        raise ValueError(f"not a path segment: {value!r}")
    return quote(value, safe="")
