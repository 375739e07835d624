"""A running Warden with its SCIM endpoint on, and a SCIM client of it (Entra's way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse

from tests.integration.conftest import Warden, WardenFactory

TOKEN = "scim-current-" + "c" * 32
PREVIOUS = "scim-previous-" + "p" * 32
SCIM = "application/scim+json"


@dataclass
class Scim:
    """Requests to ``/scim/v2`` with the current token, as Entra ID's provisioning sends them."""

    warden: Warden

    async def send(
        self, method: str, path: str, body: Any = None, *, token: str = TOKEN, **headers: str
    ) -> ClientResponse:
        """One request; ``body`` is sent as ``application/scim+json``."""
        sent = {"Authorization": f"Bearer {token}", "Content-Type": SCIM, **headers}
        return await self.warden.client.request(method, f"/scim/v2{path}", json=body, headers=sent)

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        """The JSON answer of a request that must succeed with ``status``."""
        response = await self.send(method, path, body)
        text = await response.text()
        assert response.status == status, text
        return await response.json(content_type=None) if text else None

    async def user(self, user_name: str, **more: Any) -> dict[str, Any]:
        """Create a person; returns the stored resource."""
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
        body.update(more)
        created: dict[str, Any] = await self.ok("POST", "/Users", body, status=201)
        return created


async def scim_warden(start_warden: WardenFactory) -> Scim:
    """Warden with SCIM on, accepting the current and the previous token."""
    warden = await start_warden(scim={"tokens": f"{TOKEN},{PREVIOUS}"})
    return Scim(warden)
