"""Bot token validation against a local OpenID metadata server, with real RS256 tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.auth import AuthFailure, BotAuthError, BotTokenValidator, Claims
from core.openid_keys import OpenIdKeys
from sandbox.openid import (
    KEYS_PATH,
    METADATA_PATH,
    OpenIdSandbox,
    channel_claims,
    mint,
    run_openid_sandbox,
)
from tests.integration.bot_auth_cases import (
    APP_ID,
    CHANNEL,
    INVALID,
    SERVICE_URL,
    FakeClock,
    Keys,
    bearer,
    good,
    make_keys,
)


@pytest.fixture(scope="module")
def keys() -> Keys:
    """RSA keys generated once for the module (key generation is slow)."""
    return make_keys()


@pytest.fixture
async def openid(keys: Keys) -> AsyncIterator[OpenIdSandbox]:
    """The OpenID metadata and JWKS of the Teams and Web Chat keys, served over HTTP."""
    sandbox = OpenIdSandbox(keys=[keys.teams, keys.webchat])
    async with run_openid_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client the validator fetches keys with."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    """The key cache's clock."""
    return FakeClock()


@pytest.fixture
def validator(
    openid: OpenIdSandbox, http: httpx.AsyncClient, clock: FakeClock
) -> BotTokenValidator:
    """A validator for APP_ID trusting the sandbox's keys."""
    return BotTokenValidator([APP_ID], OpenIdKeys(openid.metadata_url, http, monotonic=clock))


async def test_validate_valid_token_returns_claims(
    validator: BotTokenValidator, keys: Keys
) -> None:
    """A Teams token for the bot, its channel and its service URL yields the claims."""
    claims = await validator.validate(
        bearer(mint(good(), keys.teams)), channel_id=CHANNEL, service_url=SERVICE_URL
    )
    assert isinstance(claims, Claims)
    assert (claims.app_id, claims.issuer) == (APP_ID, "https://api.botframework.com")
    assert (claims.channel_id, claims.service_url) == (CHANNEL, SERVICE_URL)
    assert claims.raw["serviceurl"] == SERVICE_URL


@pytest.mark.parametrize("case", list(INVALID))
async def test_validate_invalid_bearer_raises_bot_auth_error(
    validator: BotTokenValidator, keys: Keys, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every invalid kind of bearer is refused with its own reason, and never logged."""
    build, reason = INVALID[case]
    header = build(keys)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BotAuthError) as raised:
        await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    assert raised.value.reason is reason
    token = header.partition(" ")[2]
    assert not token or all(token not in r.getMessage() for r in caplog.records)
    assert not token or token not in str(raised.value)


async def test_validate_missing_header_raises_missing(validator: BotTokenValidator) -> None:
    """No Authorization header at all is refused before any key is fetched."""
    with pytest.raises(BotAuthError) as raised:
        await validator.validate(None, channel_id=CHANNEL, service_url=SERVICE_URL)
    assert raised.value.reason is AuthFailure.MISSING
    assert not validator.keys.loaded


@pytest.mark.parametrize(("channel_id", "service_url"), [("", SERVICE_URL), (CHANNEL, "")])
async def test_validate_activity_without_origin_raises_activity(
    validator: BotTokenValidator, keys: Keys, channel_id: str, service_url: str
) -> None:
    """An activity without channelId or serviceUrl cannot be vouched for, so it is refused."""
    with pytest.raises(BotAuthError) as raised:
        await validator.validate(
            bearer(mint(good(), keys.teams)), channel_id=channel_id, service_url=service_url
        )
    assert raised.value.reason is AuthFailure.ACTIVITY


@pytest.mark.parametrize(
    "claims",
    [
        channel_claims(APP_ID, SERVICE_URL, lifetime=-120),
        channel_claims(APP_ID, SERVICE_URL, not_before=time.time() + 120),
    ],
    ids=["expired-within-skew", "not-before-within-skew"],
)
async def test_validate_within_clock_skew_returns_claims(
    validator: BotTokenValidator, keys: Keys, claims: dict[str, object]
) -> None:
    """Clocks may disagree by up to five minutes either way."""
    result = await validator.validate(
        bearer(mint(claims, keys.teams)), channel_id=CHANNEL, service_url=SERVICE_URL
    )
    assert result.app_id == APP_ID


async def test_validate_bearer_seen_before_still_expires(
    openid: OpenIdSandbox, http: httpx.AsyncClient, keys: Keys
) -> None:
    """A bearer accepted once (its signature remembered) is refused once it expires."""
    strict = BotTokenValidator([APP_ID], OpenIdKeys(openid.metadata_url, http), clock_skew=0)
    claims = channel_claims(APP_ID, SERVICE_URL, lifetime=3.0)  # room for a loaded machine
    header = bearer(mint(claims, keys.teams))
    await strict.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    await strict.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    await asyncio.sleep(max(0.0, float(claims["exp"]) - time.time()) + 1.1)
    with pytest.raises(BotAuthError) as raised:
        await strict.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    assert raised.value.reason is AuthFailure.EXPIRED


async def test_validate_bearer_seen_before_checked_against_each_activity(
    validator: BotTokenValidator, keys: Keys
) -> None:
    """A remembered bearer still vouches only for its own service URL and channel."""
    header = bearer(mint(good(), keys.teams))
    await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    with pytest.raises(BotAuthError) as raised:
        await validator.validate(
            header, channel_id=CHANNEL, service_url="https://elsewhere.example/"
        )
    assert raised.value.reason is AuthFailure.SERVICE_URL
    with pytest.raises(BotAuthError) as raised:
        await validator.validate(header, channel_id="webchat", service_url=SERVICE_URL)
    assert raised.value.reason is AuthFailure.ENDORSEMENT


async def test_validate_key_endorsed_for_activity_channel_returns_claims(
    validator: BotTokenValidator, keys: Keys
) -> None:
    """A key endorsed for Web Chat is good for a Web Chat activity (endorsement is per channel)."""
    result = await validator.validate(
        bearer(mint(good(), keys.webchat)), channel_id="webchat", service_url=SERVICE_URL
    )
    assert result.channel_id == "webchat"


async def test_validator_for_bot_valid_token_returns_claims(
    openid: OpenIdSandbox, http: httpx.AsyncClient, keys: Keys
) -> None:
    """The public-cloud constructor trusts the Bot Framework issuer and the given metadata."""
    validator = BotTokenValidator.for_bot(APP_ID, http, metadata_url=openid.metadata_url)
    claims = await validator.validate(
        bearer(mint(good(), keys.teams)), channel_id=CHANNEL, service_url=SERVICE_URL
    )
    assert claims.issuer == "https://api.botframework.com"


def test_validator_without_app_id_raises_value_error(http: httpx.AsyncClient) -> None:
    """A validator that would accept no audience is refused at construction."""
    with pytest.raises(ValueError, match="app id"):
        BotTokenValidator(["", ""], OpenIdKeys("https://login.example/openid", http))


async def test_keys_many_turns_fetch_metadata_once(
    validator: BotTokenValidator, openid: OpenIdSandbox, keys: Keys
) -> None:
    """Keys are fetched on first use and then served from memory."""
    for _ in range(5):
        await validator.validate(
            bearer(mint(good(), keys.teams)), channel_id=CHANNEL, service_url=SERVICE_URL
        )
    assert (openid.fetches(METADATA_PATH), openid.fetches(KEYS_PATH)) == (1, 1)


async def test_keys_concurrent_first_turns_fetch_once(
    validator: BotTokenValidator, openid: OpenIdSandbox, keys: Keys
) -> None:
    """Turns arriving together on a cold cache share one fetch."""
    header = bearer(mint(good(), keys.teams))
    await asyncio.gather(
        *(
            validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
            for _ in range(20)
        )
    )
    assert openid.fetches(METADATA_PATH) == 1


async def test_keys_unknown_kid_flood_refreshes_once_per_window(
    validator: BotTokenValidator, openid: OpenIdSandbox, keys: Keys, clock: FakeClock
) -> None:
    """Forged key ids cause at most one refetch per refresh window."""
    await validator.validate(
        bearer(mint(good(), keys.teams)), channel_id=CHANNEL, service_url=SERVICE_URL
    )
    forged = bearer(mint(good(), keys.stranger))
    clock.advance(300)

    async def attempt() -> AuthFailure:
        try:
            await validator.validate(forged, channel_id=CHANNEL, service_url=SERVICE_URL)
        except BotAuthError as exc:
            return exc.reason
        raise AssertionError("a forged key id was accepted")

    reasons = await asyncio.gather(*(attempt() for _ in range(50)))
    assert set(reasons) == {AuthFailure.UNKNOWN_KEY}
    assert openid.fetches(METADATA_PATH) == 2
    clock.advance(299)
    await attempt()
    assert openid.fetches(METADATA_PATH) == 2
    clock.advance(1)
    await attempt()
    assert openid.fetches(METADATA_PATH) == 3


async def test_keys_rotated_key_accepted_after_refresh(
    validator: BotTokenValidator, openid: OpenIdSandbox, keys: Keys, clock: FakeClock
) -> None:
    """A key published after the first fetch is picked up when a token uses it."""
    await validator.validate(
        bearer(mint(good(), keys.teams)), channel_id=CHANNEL, service_url=SERVICE_URL
    )
    openid.publish(keys.stranger)
    clock.advance(300)
    result = await validator.validate(
        bearer(mint(good(), keys.stranger)), channel_id=CHANNEL, service_url=SERVICE_URL
    )
    assert result.app_id == APP_ID
    assert openid.fetches(METADATA_PATH) == 2


async def test_keys_older_than_a_day_refetched(
    validator: BotTokenValidator, openid: OpenIdSandbox, keys: Keys, clock: FakeClock
) -> None:
    """Cached keys are trusted for a day, then fetched again on use."""
    header = bearer(mint(good(), keys.teams))
    await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    clock.advance(86_399)
    await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    assert openid.fetches(METADATA_PATH) == 1
    clock.advance(1)
    await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    assert openid.fetches(METADATA_PATH) == 2


async def test_keys_withdrawn_key_refused_after_daily_refetch(
    validator: BotTokenValidator, openid: OpenIdSandbox, keys: Keys, clock: FakeClock
) -> None:
    """A key the issuer stops publishing stops being accepted at the next refetch."""
    header = bearer(mint(good(), keys.teams))
    await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    openid.withdraw(keys.teams.kid)
    clock.advance(86_400)
    with pytest.raises(BotAuthError) as raised:
        await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    assert raised.value.reason is AuthFailure.UNKNOWN_KEY


async def test_keys_endpoint_down_raises_keys_unavailable(
    validator: BotTokenValidator, openid: OpenIdSandbox, keys: Keys, clock: FakeClock
) -> None:
    """Without keys every bearer is refused, and retries are spaced out."""
    openid.down = True
    header = bearer(mint(good(), keys.teams))
    for _ in range(3):
        with pytest.raises(BotAuthError) as raised:
            await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
        assert raised.value.reason is AuthFailure.KEYS_UNAVAILABLE
    assert openid.fetches(METADATA_PATH) == 1
    openid.down = False
    clock.advance(10)
    assert (await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)).app_id


async def test_keys_refetch_failure_keeps_previous_keys(
    validator: BotTokenValidator,
    openid: OpenIdSandbox,
    keys: Keys,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed daily refetch keeps the keys already known, and says so in the log."""
    header = bearer(mint(good(), keys.teams))
    await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    openid.down = True
    clock.advance(86_400)
    with caplog.at_level(logging.WARNING, logger="bot.auth"):
        result = await validator.validate(header, channel_id=CHANNEL, service_url=SERVICE_URL)
    assert result.app_id == APP_ID
    assert any("unavailable" in record.getMessage() for record in caplog.records)


async def test_keys_https_metadata_with_http_jwks_refused() -> None:
    """An https metadata document may not send the key fetch over plain http."""
    metadata = {"jwks_uri": "http://login.example/keys"}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=metadata))
    async with httpx.AsyncClient(transport=transport) as client:
        keys = OpenIdKeys("https://login.example/v1/.well-known/openidconfiguration", client)
        assert await keys.refresh() is False
    assert not keys.loaded
