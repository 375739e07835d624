"""Webhooks from Azure-hosted senders: an Entra ID bearer instead of a signature."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.openid import OpenIdSandbox, SigningKey, mint, serve_openid_sandbox_in_thread
from tests.integration.conftest import Warden, WardenFactory, incident

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
APP_ID = "6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    """The tenant's signing key (generated once)."""
    return SigningKey.generate("entra-key", endorsements=())


@pytest.fixture
def openid(key: SigningKey) -> Iterator[OpenIdSandbox]:
    """Entra ID's OpenID metadata and keys, served locally."""
    with serve_openid_sandbox_in_thread(sandbox=OpenIdSandbox(keys=[key])) as served:
        yield served


@pytest.fixture
async def warden(start_warden: WardenFactory, openid: OpenIdSandbox) -> Warden:
    """Warden accepting Entra bearers from one tenant, in sandbox mode."""
    return await start_warden(
        microsoft_app_id=APP_ID,
        microsoft_app_password="not-used-for-webhooks",
        bot_openid_metadata_url=openid.metadata_url,
        webhook_entra_tenant_ids=TENANT,
        webhook_entra_metadata_url=openid.metadata_url,
    )


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": APP_ID,
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "tid": TENANT,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


async def _post(warden: Warden, token: str | None) -> int:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(incident()).encode()
    response = await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)
    return response.status


async def test_entra_valid_bearer_without_signature_accepted(
    warden: Warden, key: SigningKey
) -> None:
    """A managed identity's token for Warden's app id, from the allowed tenant: 202."""
    assert await _post(warden, mint(_claims(), key)) == 202
    assert await _post(warden, mint(_claims(aud=f"api://{APP_ID}"), key)) == 202


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-app"},
        {"tid": OTHER_TENANT, "iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"},
        {"iss": "https://evil.example/"},
        {"exp": int(time.time()) - 900},
    ],
)
async def test_entra_bad_bearer_refused(
    warden: Warden, key: SigningKey, changes: dict[str, Any]
) -> None:
    """Wrong audience, another tenant, a foreign issuer or an expired token: 401."""
    assert await _post(warden, mint(_claims(**changes), key)) == 401


async def test_entra_forged_or_missing_bearer_refused(warden: Warden) -> None:
    """A token signed by an unknown key, garbage, or nothing at all: 401."""
    stranger = SigningKey.generate("entra-key", endorsements=())
    assert await _post(warden, mint(_claims(), stranger)) == 401
    assert await _post(warden, "garbage") == 401
    assert await _post(warden, None) == 401


@pytest.mark.parametrize("body", [b"not json", b'{"id": "\xff"}'])
async def test_entra_bearer_body_not_json_400(warden: Warden, key: SigningKey, body: bytes) -> None:
    """A valid bearer with a body that is not JSON, or not UTF-8: 400 "Not JSON", not a 500."""
    headers = {
        "content-type": "application/json",
        "Authorization": f"Bearer {mint(_claims(), key)}",
    }
    response = await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["title"] == "Not JSON"
