"""Shared material of the bot authentication tests: the bot, its keys, the bad bearers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.auth import AuthFailure
from sandbox.openid import (
    SigningKey,
    channel_claims,
    forge,
    mint,
    mint_hs256,
    mint_unsigned,
)

APP_ID = "6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f"
SERVICE_URL = "https://smba.trafficmanager.net/amer/"
CHANNEL = "msteams"


@dataclass(frozen=True)
class Keys:
    """The keys of a test: two published (Teams, Web Chat) and one never published."""

    teams: SigningKey
    webchat: SigningKey
    stranger: SigningKey


def make_keys() -> Keys:
    """Fresh RSA keys (slow: generate them once per module)."""
    return Keys(
        teams=SigningKey.generate("teams-key"),
        webchat=SigningKey.generate("webchat-key", endorsements=("webchat",)),
        stranger=SigningKey.generate("stranger-key"),
    )


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def good() -> dict[str, object]:
    """The claims of a valid Teams token for APP_ID."""
    return channel_claims(APP_ID, SERVICE_URL)


def bearer(token: str) -> str:
    """An Authorization header value."""
    return f"Bearer {token}"


def without(claim: str) -> dict[str, object]:
    """Valid claims minus one."""
    claims = good()
    claims.pop(claim)
    return claims


Case = Callable[[Keys], str]
"""Builds the Authorization header of one invalid request."""

INVALID: dict[str, tuple[Case, AuthFailure]] = {
    "empty-header": (lambda k: "", AuthFailure.MISSING),
    "garbage": (lambda k: "Bearer garbage", AuthFailure.MALFORMED),
    "basic-scheme": (lambda k: "Basic dXNlcjpwYXNz", AuthFailure.MALFORMED),
    "lowercase-scheme": (lambda k: "bearer " + mint(good(), k.teams), AuthFailure.MALFORMED),
    "three-parts": (lambda k: "Bearer xx.yy zz", AuthFailure.MALFORMED),
    "oversized": (lambda k: bearer("a" * 20_000), AuthFailure.MALFORMED),
    "hs256-public-key": (
        lambda k: bearer(mint_hs256(good(), k.teams.public_pem(), kid=k.teams.kid)),
        AuthFailure.ALGORITHM,
    ),
    "alg-none": (lambda k: bearer(mint_unsigned(good(), kid=k.teams.kid)), AuthFailure.ALGORITHM),
    "rs512": (lambda k: bearer(mint(good(), k.teams, algorithm="RS512")), AuthFailure.ALGORITHM),
    "critical-extension": (
        lambda k: bearer(forge({"alg": "RS256", "kid": k.teams.kid, "b64": False}, good())),
        AuthFailure.MALFORMED,
    ),
    "no-kid": (
        lambda k: bearer(mint(good(), k.teams, headers={"kid": None})),
        AuthFailure.UNKNOWN_KEY,
    ),
    "unknown-kid": (lambda k: bearer(mint(good(), k.stranger)), AuthFailure.UNKNOWN_KEY),
    "other-channel-key": (lambda k: bearer(mint(good(), k.webchat)), AuthFailure.ENDORSEMENT),
    "forged-signature": (
        lambda k: bearer(mint(good(), k.stranger, headers={"kid": k.teams.kid})),
        AuthFailure.SIGNATURE,
    ),
    "expired-beyond-skew": (
        lambda k: bearer(mint(channel_claims(APP_ID, SERVICE_URL, lifetime=-301), k.teams)),
        AuthFailure.EXPIRED,
    ),
    "not-yet-valid": (
        lambda k: bearer(
            mint(channel_claims(APP_ID, SERVICE_URL, not_before=time.time() + 600), k.teams)
        ),
        AuthFailure.NOT_YET_VALID,
    ),
    "no-exp": (lambda k: bearer(mint(without("exp"), k.teams)), AuthFailure.CLAIMS),
    "wrong-audience": (
        lambda k: bearer(mint(channel_claims("another-app", SERVICE_URL), k.teams)),
        AuthFailure.AUDIENCE,
    ),
    "audience-list": (
        lambda k: bearer(mint({**good(), "aud": [APP_ID, "another-app"]}, k.teams)),
        AuthFailure.AUDIENCE,
    ),
    "no-audience": (lambda k: bearer(mint(without("aud"), k.teams)), AuthFailure.CLAIMS),
    "wrong-issuer": (
        lambda k: bearer(
            mint(channel_claims(APP_ID, SERVICE_URL, issuer="https://evil.example"), k.teams)
        ),
        AuthFailure.ISSUER,
    ),
    "wrong-service-url": (
        lambda k: bearer(mint(channel_claims(APP_ID, "https://evil.example/"), k.teams)),
        AuthFailure.SERVICE_URL,
    ),
    "no-service-url": (
        lambda k: bearer(mint(without("serviceurl"), k.teams)),
        AuthFailure.SERVICE_URL,
    ),
}
"""Every kind of bearer the bot must refuse, and the reason it is refused for."""


def message(text: str = "hello", *, service_url: str = SERVICE_URL) -> dict[str, Any]:
    """A Teams message activity to the bot."""
    return {
        "type": "message",
        "id": "1700000000000",
        "channelId": CHANNEL,
        "serviceUrl": service_url,
        "from": {"id": "29:adele", "name": "Adele Vance"},
        "recipient": {"id": f"28:{APP_ID}", "name": "Warden"},
        "conversation": {"id": "a:1personal", "conversationType": "personal"},
        "text": text,
    }
