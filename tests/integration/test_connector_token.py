"""The Bot Connector token: fetched once, reused, and renewed once it is no longer good.

Warden in production mode replies through the connector sandbox with a bearer that
botbuilder's credentials (MSAL) get from a local Entra ID: the ARM sandbox's token endpoint
as the Bot Framework's tenant, over TLS.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator

import msal
import pytest
import requests
from botframework.connector.auth import AuthenticationConstants

import bot.adapter
import sandbox.arm_login
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.openid import OpenIdSandbox, channel_claims, mint, serve_openid_sandbox_in_thread
from tests.integration.bot_auth_cases import APP_ID, Keys, bearer, make_keys
from tests.integration.conftest import Warden, WardenFactory
from tests.support import ENCRYPTION_KEY, channel_id, install_activity, message_activity

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PASSWORD = "connector-token-test-password"
BOT_FRAMEWORK = "https://api.botframework.com"


@pytest.fixture
def keys() -> Keys:
    """The keys that sign the tests' Teams tokens."""
    return make_keys()


@pytest.fixture
def openid(keys: Keys) -> Iterator[OpenIdSandbox]:
    """The local OpenID metadata and JWKS that Warden validates Teams tokens with."""
    with serve_openid_sandbox_in_thread(sandbox=OpenIdSandbox(keys=[keys.teams])) as served:
        yield served


@pytest.fixture
async def entra(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ArmSandbox]:
    """A local Entra ID for the Bot Framework tenant; botbuilder's MSAL pointed at it."""
    monkeypatch.setattr(
        sandbox.arm_login, "_RESOURCES", (*sandbox.arm_login._RESOURCES, BOT_FRAMEWORK)
    )
    arm = ArmSandbox(
        tenant_id="botframework.com",
        client_id=APP_ID,
        client_secret=PASSWORD,
        seed_examples=False,
        token_lifetime=120,  # inside MSAL's five-minute margin: each ask gets a new one
    )
    async with run_arm_sandbox(sandbox=arm) as served:
        base = served.url.lower() + "/"
        monkeypatch.setattr(AuthenticationConstants, "TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX", base)
        monkeypatch.setattr(
            AuthenticationConstants, "TO_CHANNEL_FROM_BOT_LOGIN_URL", base + "botframework.com"
        )
        known = msal.authority.WELL_KNOWN_AUTHORITY_HOSTS
        monkeypatch.setattr(
            msal.authority, "WELL_KNOWN_AUTHORITY_HOSTS", frozenset({*known, "127.0.0.1"})
        )
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(served.ca_path))
        yield served
    for session in [o for o in gc.get_objects() if isinstance(o, requests.Session)]:
        session.close()  # MSAL's, held by botbuilder's credentials for the process's life


async def test_connector_token_reused_then_renewed_after_its_window(
    start_warden: WardenFactory,
    openid: OpenIdSandbox,
    entra: ArmSandbox,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two replies in the reuse window cost one token; after it, a new one is fetched and
    the reply still carries a bearer."""
    monkeypatch.setattr(bot.adapter, "TOKEN_REUSE_SECONDS", 0.5)
    warden: Warden = await start_warden(
        mode="production",
        microsoft_app_id=APP_ID,
        microsoft_app_password=PASSWORD,
        bot_openid_metadata_url=openid.metadata_url,
        encryption_keys=ENCRYPTION_KEY,
    )
    conversation = channel_id("tokens")
    service_url = warden.connector.url
    header = {"Authorization": bearer(mint(channel_claims(APP_ID, service_url), keys.teams))}

    async def turn(activity: dict[str, object]) -> None:
        response = await warden.client.post("/api/messages", json=activity, headers=header)
        assert response.status in (200, 201), await response.text()

    def token_requests() -> int:
        return len([r for r in entra.calls(service="login") if r.method == "POST"])

    await turn(install_activity(service_url, conversation))
    await turn(message_activity(service_url, conversation, "help"))
    assert token_requests() == 1, "one token for both replies"
    await asyncio.sleep(0.6)
    await turn(message_activity(service_url, conversation, "status"))
    assert token_requests() == 2, "renewed after the reuse window"
    replies = warden.connector.posts(successful=True)
    assert len(replies) == 3
    assert all(r.auth_present and r.auth_scheme == "Bearer" for r in replies)


async def test_connector_token_unavailable_reply_502_not_500(
    start_warden: WardenFactory, openid: OpenIdSandbox, entra: ArmSandbox, keys: Keys
) -> None:
    """Entra ID down: the turn answers 502 (the reply could not be delivered), never a 500."""
    entra.set_down(True, service="login")
    warden: Warden = await start_warden(
        mode="production",
        microsoft_app_id=APP_ID,
        microsoft_app_password=PASSWORD,
        bot_openid_metadata_url=openid.metadata_url,
        encryption_keys=ENCRYPTION_KEY,
    )
    service_url = warden.connector.url
    header = {"Authorization": bearer(mint(channel_claims(APP_ID, service_url), keys.teams))}
    activity = message_activity(service_url, channel_id("tokens"), "help")
    response = await warden.client.post("/api/messages", json=activity, headers=header)
    assert response.status == 502
    assert not warden.connector.posts()
