"""Who may post to ``/api/messages``: Bot Framework channel tokens, checked fail-closed.

The Bot Framework signs the bearer of every channel-to-bot request (RS256) with a key it
publishes through OpenID metadata (``jwks_uri``); each key lists the channel ids it may
vouch for (``endorsements``). A bearer is accepted only when all of this holds:

- ``Authorization: Bearer <JWS>``, header ``alg`` exactly RS256, a ``kid`` that is published
  and whose key endorses the activity's ``channelId``, a valid signature;
- ``iss`` is an allowed issuer (``https://api.botframework.com``), ``aud`` is one of the
  bot's app ids, ``exp`` (required) and ``nbf`` hold within the clock skew (5 minutes);
- the ``serviceurl`` claim equals the activity's ``serviceUrl``.

Anything else raises ``BotAuthError``, whose reason is for logs only: the caller answers
401 with an empty body (``unauthorized()``). Keys are fetched once, decoded once and kept
for a day; an unknown ``kid`` refetches them at most once per five minutes, so forged
key ids cannot hammer the metadata endpoint. The happy path does no network I/O, and a
bearer seen before skips its RSA check (not its key, endorsement, time and claim checks).
This module does not import botbuilder (the one botbuilder module is ``bot/adapter.py``).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from core.openid_keys import (
    KEYS_MAX_AGE_SECONDS,
    MIN_REFRESH_SECONDS,
    OpenIdKeys,
)

log = logging.getLogger(__name__)

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
"""The ``iss`` of channel-to-bot tokens in the public cloud."""

BOT_FRAMEWORK_OPENID_METADATA_URL = (
    "https://login.botframework.com/v1/.well-known/openidconfiguration"
)
"""Where the public cloud's channel signing keys are described (``openidconfiguration``)."""

CLOCK_SKEW_SECONDS = 300.0
"""Tolerance on ``exp`` and ``nbf``: five minutes, as the Bot Framework specifies."""

MAX_TOKEN_CHARS = 16_384
"""Longest bearer examined; a Bot Framework token is about 1.5 KB."""

VERIFIED_BEARERS = 1_024
"""How many verified bearers are remembered (their RSA check is not repeated)."""

_ALGORITHM = "RS256"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class AuthFailure(StrEnum):
    """Why a bearer was refused: for logs and metrics, never for the response."""

    MISSING = "missing"
    MALFORMED = "malformed"
    ACTIVITY = "activity"
    ALGORITHM = "algorithm"
    UNKNOWN_KEY = "unknown_key"
    KEYS_UNAVAILABLE = "keys_unavailable"
    ENDORSEMENT = "endorsement"
    SIGNATURE = "signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUER = "issuer"
    AUDIENCE = "audience"
    CLAIMS = "claims"
    SERVICE_URL = "service_url"


class BotAuthError(Exception):
    """A bearer that must be refused. ``reason``/``detail`` never contain the token."""

    def __init__(self, reason: AuthFailure, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified identity of a channel-to-bot request."""

    app_id: str
    issuer: str
    channel_id: str
    service_url: str
    expires_at: int
    raw: Mapping[str, Any]


def unauthorized() -> web.Response:
    """The one answer to every refused bearer: 401, an empty body, nothing to learn from."""
    return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})


class BotTokenValidator:
    """Checks channel-to-bot bearers for one bot (one or more app ids), fail-closed."""

    def __init__(
        self,
        app_ids: Iterable[str],
        keys: OpenIdKeys,
        *,
        issuers: Iterable[str] = (BOT_FRAMEWORK_ISSUER,),
        clock_skew: float = CLOCK_SKEW_SECONDS,
    ) -> None:
        """Accept tokens for ``app_ids`` from ``issuers``, signed by ``keys``.

        Raises ``ValueError`` without an app id or an issuer: such a validator would
        accept nothing, which is a configuration mistake to stop at start-up.
        """
        self._app_ids = frozenset(a for a in app_ids if a)
        self._issuers = frozenset(i for i in issuers if i)
        if not self._app_ids or not self._issuers:
            raise ValueError("a bot token validator needs an app id and an issuer")
        self.keys = keys
        self._skew = clock_skew
        # Bearers whose signature was verified, with the key that verified it: the channel
        # sends one bearer for up to an hour, so a repeat skips the RSA check (its times are
        # still checked each time, and a key no longer published voids its bearers).
        self._verified: OrderedDict[str, tuple[RSAPublicKey, dict[str, Any]]] = OrderedDict()

    @classmethod
    def for_bot(
        cls,
        app_id: str,
        client: httpx.AsyncClient,
        *,
        metadata_url: str = BOT_FRAMEWORK_OPENID_METADATA_URL,
        clock_skew: float = CLOCK_SKEW_SECONDS,
        max_age: float = KEYS_MAX_AGE_SECONDS,
        min_refresh: float = MIN_REFRESH_SECONDS,
        timeout: float = 10.0,
    ) -> BotTokenValidator:
        """The validator of a public-cloud bot: Bot Framework issuer, keys at ``metadata_url``."""
        keys = OpenIdKeys(
            metadata_url, client, max_age=max_age, min_refresh=min_refresh, timeout=timeout
        )
        return cls([app_id], keys, clock_skew=clock_skew)

    async def authenticate(self, request: web.Request) -> Claims:
        """Check the bearer of a POST to ``/api/messages`` against the activity it carries.

        Reads the body (aiohttp keeps it, so the request can still be processed after).
        """
        header = request.headers.get("Authorization")
        if not header:
            raise BotAuthError(AuthFailure.MISSING)
        channel_id, service_url = _activity_origin(await request.read())
        return await self.validate(header, channel_id=channel_id, service_url=service_url)

    async def validate(
        self, authorization_header: str | None, *, channel_id: str, service_url: str
    ) -> Claims:
        """The claims of a valid bearer for an activity; ``BotAuthError`` for anything else."""
        token = _bearer(authorization_header)
        if not channel_id or not service_url:
            raise BotAuthError(AuthFailure.ACTIVITY, "no channelId or serviceUrl")
        kid = _key_id(token)
        key = await self.keys.get(kid)
        if key is None:
            failure = AuthFailure.UNKNOWN_KEY if self.keys.loaded else AuthFailure.KEYS_UNAVAILABLE
            raise BotAuthError(failure)
        if channel_id not in key.endorsements:
            raise BotAuthError(AuthFailure.ENDORSEMENT, f"key not endorsed for {channel_id!r}")
        payload = self._verified_before(token, key.public_key)
        if payload is None:
            payload = self._decode(token, key.public_key)
            self._verified[token] = (key.public_key, payload)
            if len(self._verified) > VERIFIED_BEARERS:
                self._verified.popitem(last=False)
        return self._claims(payload, channel_id, service_url)

    def _verified_before(self, token: str, public_key: RSAPublicKey) -> dict[str, Any] | None:
        """The payload of a bearer this key verified before, when it is still in its time."""
        seen = self._verified.get(token)
        if seen is None or seen[0] is not public_key:
            return None
        payload = seen[1]
        now = time.time()
        if now > float(payload["exp"]) + self._skew:
            del self._verified[token]
            raise BotAuthError(AuthFailure.EXPIRED)
        not_before = payload.get("nbf")
        if isinstance(not_before, int | float) and now < float(not_before) - self._skew:
            raise BotAuthError(AuthFailure.NOT_YET_VALID)
        self._verified.move_to_end(token)
        return payload

    def _decode(self, token: str, public_key: RSAPublicKey) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                public_key,
                algorithms=[_ALGORITHM],
                issuer=self._issuers,
                leeway=self._skew,
                options={"require": ["exp", "iss", "aud"], "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            raise BotAuthError(AuthFailure.SIGNATURE) from None
        except jwt.ExpiredSignatureError:
            raise BotAuthError(AuthFailure.EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise BotAuthError(AuthFailure.NOT_YET_VALID) from None
        except jwt.InvalidIssuerError:
            raise BotAuthError(AuthFailure.ISSUER) from None
        except jwt.MissingRequiredClaimError as exc:
            raise BotAuthError(AuthFailure.CLAIMS, f"no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise BotAuthError(AuthFailure.MALFORMED, type(exc).__name__) from None

    def _claims(self, payload: dict[str, Any], channel_id: str, service_url: str) -> Claims:
        audience = payload.get("aud")
        if not isinstance(audience, str) or audience not in self._app_ids:
            raise BotAuthError(AuthFailure.AUDIENCE)
        if payload.get("serviceurl") != service_url:
            raise BotAuthError(AuthFailure.SERVICE_URL)
        return Claims(
            app_id=audience,
            issuer=str(payload["iss"]),
            channel_id=channel_id,
            service_url=service_url,
            expires_at=int(payload["exp"]),
            raw=payload,
        )


def _bearer(header: str | None) -> str:
    """The token of ``Bearer <token>`` (scheme spelt as the Bot Framework sends it)."""
    if not header:
        raise BotAuthError(AuthFailure.MISSING)
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token or " " in token or len(token) > MAX_TOKEN_CHARS:
        raise BotAuthError(AuthFailure.MALFORMED, "not a bearer token")
    return token


def _key_id(token: str) -> str:
    """The ``kid`` of an RS256 token whose header asks for nothing else.

    The header is read here rather than with ``jwt.get_unverified_header``, which decodes
    the whole token (a third of the check's cost); ``jwt.decode`` re-reads it all anyway.
    """
    segments = token.split(".")
    if len(segments) != 3 or not all(_BASE64URL.fullmatch(s) for s in segments[:2]):
        raise BotAuthError(AuthFailure.MALFORMED, "not a compact JWS")
    try:
        header = json.loads(base64.urlsafe_b64decode(segments[0] + "=" * (-len(segments[0]) % 4)))
    except ValueError:
        raise BotAuthError(AuthFailure.MALFORMED, "unreadable header") from None
    if not isinstance(header, dict):
        raise BotAuthError(AuthFailure.MALFORMED, "header is not an object")
    if header.get("alg") != _ALGORITHM:
        raise BotAuthError(AuthFailure.ALGORITHM, f"alg {str(header.get('alg'))[:16]!r}")
    if "crit" in header or "b64" in header:
        raise BotAuthError(AuthFailure.MALFORMED, "critical header extensions")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise BotAuthError(AuthFailure.UNKNOWN_KEY, "no kid")
    return kid


def _activity_origin(body: bytes) -> tuple[str, str]:
    """``(channelId, serviceUrl)`` of an activity body; empty strings when absent."""
    try:
        activity = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(activity, dict):
        return "", ""
    channel_id, service_url = activity.get("channelId"), activity.get("serviceUrl")
    return (
        channel_id if isinstance(channel_id, str) else "",
        service_url if isinstance(service_url, str) else "",
    )
