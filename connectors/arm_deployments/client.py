"""Async client of ARM deployments of resource groups (api-version 2024-03-01).

``GET {arm}{group}/providers/Microsoft.Resources/deployments`` lists a group's deployments
(``$top``, then ``nextLink``), ``GET .../deployments/{name}`` reads one and
``GET .../deployments/{name}/operations`` lists what it did, each operation naming the
resource it touched (``properties.targetResource.id``). Every call only reads, so it is sent
as idempotent through the injected resilient ``httpx.AsyncClient`` (retries, ``Retry-After``,
the per-host breaker), with an ARM bearer token and explicit timeouts, as for every ARM
client (``connectors.arm_client``). A ``nextLink`` to another host, or one seen before, is
refused: the token would go along, or the pages loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from connectors.arm_client import ARM_ENDPOINT as ARM_ENDPOINT
from connectors.arm_client import ArmClient
from connectors.arm_deployments.errors import ERRORS, DeploymentsError
from connectors.arm_deployments.mapping import deployment_from_resource
from core.deployments import Deployment, resource_group_of

API_VERSION = "2024-03-01"
"""The Microsoft.Resources api-version this client speaks."""


class DeploymentsClient(ArmClient[DeploymentsError]):
    """Reads the deployments of resource groups and the resources they touched.

    The caller owns (and closes) ``http`` and ``credential``.
    """

    api_version = API_VERSION
    errors = ERRORS
    empty_answer_ok = False

    async def list_raw(self, resource_group: str, *, top: int = 50) -> AsyncIterator[Any]:
        """Every ``DeploymentExtended`` of ``resource_group`` (its id), newest first, page
        by page as the caller reads; ``ValueError`` for an id that is not a group's."""
        if not 1 <= top <= 1000:
            raise ValueError("top must be from 1 to 1000")
        url = self._collection(resource_group)
        params = {**self._api, "$top": str(top)}
        pages = self._pages("GET", url, params, what="the deployments list", idempotent=True)
        async for page in pages:
            for item in page:
                yield item

    async def get(self, resource_group: str, name: str) -> Deployment:
        """One deployment, with the resources its operations touched; ``DeploymentNotFound``
        when the group has no deployment of that name."""
        url = f"{self._collection(resource_group)}/{_segment(name)}"
        resource = await self._call("GET", url, params=self._api, idempotent=True)
        return deployment_from_resource(resource, await self.operations(resource_group, name))

    async def operations(self, resource_group: str, name: str) -> list[Any]:
        """The deployment's operations (``DeploymentOperation`` objects, as ARM sends them)."""
        url = f"{self._collection(resource_group)}/{_segment(name)}/operations"
        found: list[Any] = []
        pages = self._pages("GET", url, self._api, what="the operations list", idempotent=True)
        async for page in pages:
            found += page
        return found

    def _collection(self, resource_group: str) -> str:
        """The absolute URL of a group's deployments collection."""
        group = resource_group_of(resource_group)
        if group is None or group != resource_group.strip().lower().rstrip("/"):
            raise ValueError(f"not a resource group id: {resource_group!r}")
        _, subscription, _, name = resource_group.strip().strip("/").split("/")[:4]
        path = f"/subscriptions/{_segment(subscription)}/resourceGroups/{_segment(name)}"
        return f"{self._base_url}{path}/providers/Microsoft.Resources/deployments"


def _segment(value: str) -> str:
    """One path segment, percent-encoded; ``ValueError`` for an empty one or a slash."""
    if not value or "/" in value:
        raise ValueError(f"not a path segment: {value!r}")
    return quote(value, safe="")
