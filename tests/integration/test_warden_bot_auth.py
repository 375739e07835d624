"""Warden itself in production mode: every invalid bearer gets a bare 401, a valid one runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.openid import OpenIdSandbox, mint, serve_openid_sandbox_in_thread
from tests.integration.bot_auth_cases import (
    APP_ID,
    INVALID,
    SERVICE_URL,
    Keys,
    bearer,
    good,
    make_keys,
)
from tests.integration.conftest import Warden, WardenFactory
from tests.support import ENCRYPTION_KEY

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CASES = sorted(name for name in INVALID if name != "oversized")  # aiohttp answers 400 itself


@pytest.fixture(scope="module")
def keys() -> Keys:
    """RSA keys generated once for the module."""
    return make_keys()


@pytest.fixture
def openid(keys: Keys) -> Iterator[OpenIdSandbox]:
    """The local OpenID metadata and JWKS that sign the tests' Teams tokens."""
    with serve_openid_sandbox_in_thread(
        sandbox=OpenIdSandbox(keys=[keys.teams, keys.webchat])
    ) as served:
        yield served


@pytest.fixture
async def production(start_warden: WardenFactory, openid: OpenIdSandbox) -> Warden:
    """Warden in production mode with an app id, validating against the local keys."""
    return await start_warden(
        mode="production",
        microsoft_app_id=APP_ID,
        microsoft_app_password="canary-password-never-sent",
        bot_openid_metadata_url=openid.metadata_url,
        encryption_keys=ENCRYPTION_KEY,
    )


def _invoke() -> dict[str, Any]:
    """A card click from Teams whose answer needs no outbound call."""
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": "f:1",
        "channelId": "msteams",
        "serviceUrl": SERVICE_URL,
        "from": {"id": "29:adele", "name": "Adele Vance"},
        "recipient": {"id": f"28:{APP_ID}", "name": "Warden"},
        "conversation": {"id": "a:1personal", "conversationType": "personal"},
        "channelData": {"tenant": {"id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
        "value": {"action": {"type": "Action.Execute", "verb": "no.such.verb", "data": {}}},
    }


@pytest.mark.parametrize("case", CASES)
async def test_production_invalid_bearer_401_no_detail(
    production: Warden, keys: Keys, case: str
) -> None:
    """Each kind of invalid bearer gets 401 with an empty body, never a 500."""
    header = INVALID[case][0](keys)
    headers = {"Authorization": header} if header else {}
    response = await production.client.post("/api/messages", json=_invoke(), headers=headers)
    assert response.status == 401
    assert await response.read() == b""


async def test_production_missing_header_401(production: Warden) -> None:
    """No Authorization header at all gets 401."""
    response = await production.client.post("/api/messages", json=_invoke())
    assert response.status == 401


async def test_production_valid_bearer_turn_runs(production: Warden, keys: Keys) -> None:
    """A valid Teams token runs the turn: the card click gets its invoke response."""
    header = bearer(mint(good(), keys.teams))
    response = await production.client.post(
        "/api/messages", json=_invoke(), headers={"Authorization": header}
    )
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 200
    assert "This button no longer works" in str(body["value"])
