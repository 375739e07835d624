"""The token check in front of a real botbuilder CloudAdapter, over HTTP, offline.

Two wirings: ``guarded`` (pre-check, then ``CloudAdapter.process``, which validates the
bearer again) and ``validated_once`` (the check's claims handed to ``process_activity`` as an
``AuthenticateRequestResult``, so botbuilder does not validate again). botbuilder 4.17
fetches keys with ``requests`` (blocking), so the OpenID sandbox serves from its own thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.core import ActivityHandler, TurnContext, serializer_helper
from botbuilder.core.invoke_response import InvokeResponse
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, AdaptiveCardInvokeResponse, CallerIdConstants
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    JwtTokenExtractor,
)

from bot.auth import BotAuthError, BotTokenValidator, unauthorized
from core.openid_keys import OpenIdKeys
from sandbox.openid import (
    METADATA_PATH,
    OpenIdSandbox,
    mint,
    serve_openid_sandbox_in_thread,
)
from tests.integration.bot_auth_cases import (
    APP_ID,
    INVALID,
    FakeClock,
    Keys,
    bearer,
    good,
    make_keys,
    message,
)

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": []}


class BotConfig:
    """What ConfigurationBotFrameworkAuthentication reads: public-cloud values, local keys."""

    def __init__(self, metadata_url: str) -> None:
        self.APP_ID = APP_ID
        self.APP_PASSWORD = "not-a-secret"  # never used: the bot makes no outbound call
        self.APP_TYPE = "MultiTenant"
        self.APP_TENANTID = ""
        self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = metadata_url
        self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = metadata_url
        self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = (
            AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
        )
        self.TO_CHANNEL_FROM_BOT_LOGIN_URL = (
            AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX
        )
        self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = (
            AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        )
        self.OAUTH_URL = AuthenticationConstants.OAUTH_URL
        self.CALLER_ID = CallerIdConstants.public_azure_channel
        self.VALIDATE_AUTHORITY = True


class PublicCloudConfig:
    """The settings Warden passes today (``bot.adapter._BotConfig``): botbuilder's defaults."""

    def __init__(self) -> None:
        self.APP_ID = APP_ID
        self.APP_PASSWORD = "not-a-secret"  # never used: the bot makes no outbound call
        self.APP_TYPE = "MultiTenant"
        self.APP_TENANTID = ""


class RecordingBot(ActivityHandler):  # type: ignore[misc]
    """Records the turns that reach it; answers invokes with 200."""

    def __init__(self) -> None:
        self.turns: list[str] = []

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        self.turns.append(turn_context.activity.text)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        self.turns.append(turn_context.activity.name)
        body = AdaptiveCardInvokeResponse(status_code=200, type=CARD_TYPE, value=CARD)
        return InvokeResponse(status=200, body=body)


def guarded(validator: BotTokenValidator, adapter: CloudAdapter, bot: RecordingBot) -> Any:
    """The ``/api/messages`` handler: the pre-check, then botbuilder (TeamsAdapter.handle)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            await validator.authenticate(request)
        except BotAuthError:
            return unauthorized()
        response = await adapter.process(request, bot)
        return response if response is not None else web.Response(status=201)

    return handle


def validated_once(
    validator: BotTokenValidator,
    auth: BotFrameworkAuthentication,
    adapter: CloudAdapter,
    bot: RecordingBot,
) -> Any:
    """The ``/api/messages`` handler that validates once and hands botbuilder the result."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            claims = await validator.authenticate(request)
        except BotAuthError:
            return unauthorized()
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.Response(status=415)
        activity = Activity().deserialize(await request.json())
        identity = ClaimsIdentity(dict(claims.raw), True)
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        result.caller_id = CallerIdConstants.public_azure_channel
        result.connector_factory = auth.create_connector_factory(identity)
        invoke = await adapter.process_activity(result, activity, bot.on_turn)
        if invoke is None:
            return web.Response(status=201)
        return web.json_response(serializer_helper(invoke.body), status=invoke.status)

    return handle


@pytest.fixture(scope="module")
def keys() -> Keys:
    """RSA keys generated once for the module."""
    return make_keys()


@pytest.fixture
def openid(keys: Keys) -> Iterator[OpenIdSandbox]:
    """The OpenID sandbox, served from its own thread; botbuilder's cache entry dropped after."""
    sandbox = OpenIdSandbox(keys=[keys.teams, keys.webchat])
    with serve_openid_sandbox_in_thread(sandbox=sandbox) as served:
        yield served
    JwtTokenExtractor.metadataCache.pop(served.metadata_url, None)


@pytest.fixture
def bot() -> RecordingBot:
    """The bot behind the adapter."""
    return RecordingBot()


@pytest.fixture
async def client(
    openid: OpenIdSandbox, bot: RecordingBot
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A server with the guarded CloudAdapter at ``/api/messages``."""
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(BotConfig(openid.metadata_url)))
    async with httpx.AsyncClient() as http:
        keys = OpenIdKeys(openid.metadata_url, http)
        app = web.Application()
        app.router.add_post(
            "/api/messages", guarded(BotTokenValidator([APP_ID], keys), adapter, bot)
        )
        async with TestClient(TestServer(app)) as test_client:
            yield test_client


@pytest.fixture
async def once_client(
    openid: OpenIdSandbox, bot: RecordingBot, clock: FakeClock
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A server with the validate-once wiring, botbuilder left on its public-cloud defaults."""
    auth = ConfigurationBotFrameworkAuthentication(PublicCloudConfig())
    async with httpx.AsyncClient() as http:
        validator = BotTokenValidator(
            [APP_ID], OpenIdKeys(openid.metadata_url, http, monotonic=clock)
        )
        app = web.Application()
        app.router.add_post(
            "/api/messages", validated_once(validator, auth, CloudAdapter(auth), bot)
        )
        async with TestClient(TestServer(app)) as test_client:
            yield test_client


@pytest.fixture
def clock() -> FakeClock:
    """The validator's key-cache clock."""
    return FakeClock()


async def post(
    client: TestClient[web.Request, web.Application], header: str | None, body: Any = None
) -> tuple[int, bytes]:
    """POST an activity (JSON) with an optional Authorization header."""
    headers = {"Authorization": header} if header is not None else {}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        response = await client.post("/api/messages", data=body, headers=headers)
    else:
        response = await client.post("/api/messages", json=body or message(), headers=headers)
    return response.status, await response.read()


# aiohttp itself refuses header fields over 8190 bytes with 400, before any handler runs.
OVER_HTTP = [case for case in INVALID if case != "oversized"]


@pytest.mark.parametrize("case", OVER_HTTP)
async def test_guarded_adapter_invalid_bearer_answers_401_without_detail(
    client: TestClient[web.Request, web.Application], bot: RecordingBot, keys: Keys, case: str
) -> None:
    """Every invalid bearer gets a bare 401 (botbuilder alone answers 500 to most)."""
    status, body = await post(client, INVALID[case][0](keys))
    assert (status, body) == (401, b"")
    assert bot.turns == []


async def test_guarded_adapter_missing_header_answers_401_without_detail(
    client: TestClient[web.Request, web.Application], bot: RecordingBot, openid: OpenIdSandbox
) -> None:
    """No Authorization header: a bare 401, and no key is fetched for it."""
    assert await post(client, None) == (401, b"")
    assert bot.turns == []
    assert openid.fetches(METADATA_PATH) == 0


async def test_guarded_adapter_body_not_an_activity_answers_401(
    client: TestClient[web.Request, web.Application], bot: RecordingBot, keys: Keys
) -> None:
    """A valid bearer on a body that is not an activity cannot be vouched for."""
    assert await post(client, bearer(mint(good(), keys.teams)), b"[not json") == (401, b"")
    assert bot.turns == []


async def test_guarded_adapter_valid_message_runs_turn(
    client: TestClient[web.Request, web.Application],
    bot: RecordingBot,
    keys: Keys,
    openid: OpenIdSandbox,
) -> None:
    """A valid Teams token runs the turn; botbuilder checked it against the local keys too."""
    status, _ = await post(client, bearer(mint(good(), keys.teams)), message("hello"))
    assert status == 201
    assert bot.turns == ["hello"]
    assert openid.fetches(METADATA_PATH) == 2  # the pre-check's fetch and botbuilder's own


async def assert_invoke_answered(
    client: TestClient[web.Request, web.Application], bot: RecordingBot, keys: Keys
) -> None:
    """POST a card action invoke with a valid token; the bot's invoke response comes back."""
    invoke = {**message(), "type": "invoke", "name": "adaptiveCard/action", "value": {}}
    response = await client.post(
        "/api/messages", json=invoke, headers={"Authorization": bearer(mint(good(), keys.teams))}
    )
    assert response.status == 200
    assert await response.json() == {"statusCode": 200, "type": CARD_TYPE, "value": CARD}
    assert bot.turns == ["adaptiveCard/action"]


async def test_guarded_adapter_valid_invoke_returns_invoke_response(
    client: TestClient[web.Request, web.Application], bot: RecordingBot, keys: Keys
) -> None:
    """An invoke with a valid token gets the bot's invoke response."""
    await assert_invoke_answered(client, bot, keys)


async def test_validated_once_adapter_valid_invoke_returns_invoke_response(
    once_client: TestClient[web.Request, web.Application], bot: RecordingBot, keys: Keys
) -> None:
    """The validate-once wiring returns the bot's invoke response as botbuilder does."""
    await assert_invoke_answered(once_client, bot, keys)


@pytest.mark.parametrize("case", OVER_HTTP)
async def test_validated_once_adapter_invalid_bearer_answers_401_without_detail(
    once_client: TestClient[web.Request, web.Application], bot: RecordingBot, keys: Keys, case: str
) -> None:
    """The validate-once wiring refuses every invalid bearer with a bare 401 too."""
    assert await post(once_client, INVALID[case][0](keys)) == (401, b"")
    assert bot.turns == []


async def test_validated_once_adapter_valid_message_runs_turn_with_one_fetch(
    once_client: TestClient[web.Request, web.Application],
    bot: RecordingBot,
    keys: Keys,
    openid: OpenIdSandbox,
) -> None:
    """A valid token runs the turn and botbuilder fetches nothing (no blocking I/O)."""
    status, _ = await post(once_client, bearer(mint(good(), keys.teams)), message("hello"))
    assert status == 201
    assert bot.turns == ["hello"]
    assert openid.fetches(METADATA_PATH) == 1


async def test_validated_once_adapter_rotated_key_runs_turn(
    once_client: TestClient[web.Request, web.Application],
    bot: RecordingBot,
    keys: Keys,
    openid: OpenIdSandbox,
    clock: FakeClock,
) -> None:
    """A key published after the first fetch is accepted once the refresh window allows."""
    assert (await post(once_client, bearer(mint(good(), keys.teams))))[0] == 201
    openid.publish(keys.stranger)
    clock.advance(300)
    assert (await post(once_client, bearer(mint(good(), keys.stranger))))[0] == 201
    assert bot.turns == ["hello", "hello"]
