"""Entra ID bearer tokens on webhooks, for Azure-hosted senders that cannot sign bodies.

A Logic App or Function with a managed identity can call Warden with an Entra ID token whose
audience is Warden's app id. A token is accepted when it is RS256, signed by a key of its
tenant's OpenID metadata, from an allowed tenant (``tid``), issued by that tenant (v1 or v2
issuer), for Warden's audience, and within its lifetime (five minutes' skew).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import httpx
import jwt

from core.openid_keys import OpenIdKeys

log = logging.getLogger(__name__)

ENTRA_METADATA = "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
MAX_TOKEN_CHARS = 16_384


class EntraTokenValidator:
    """Checks ``Authorization: Bearer`` headers against Entra ID's keys per allowed tenant."""

    def __init__(
        self,
        tenant_ids: Iterable[str],
        audiences: Iterable[str],
        client: httpx.AsyncClient,
        *,
        metadata_url: str = ENTRA_METADATA,
        clock_skew: float = 300.0,
    ) -> None:
        self._audiences = [a for a in audiences if a]
        self._skew = clock_skew
        self._keys = {
            tenant.lower(): OpenIdKeys(metadata_url.format(tenant=tenant), client)
            for tenant in tenant_ids
        }

    async def check(self, authorization: str | None) -> bool:
        """True for a valid token; every other header (absent, malformed, forged) is False."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not token or len(token) > MAX_TOKEN_CHARS:
            return False
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        tenant = str(unverified.get("tid", "")).lower()
        keys = self._keys.get(tenant)
        kid = header.get("kid")
        if header.get("alg") != "RS256" or keys is None or not isinstance(kid, str):
            return False
        key = await keys.get(kid)
        if key is None:
            return False
        issuers = [
            f"https://sts.windows.net/{tenant}/",
            f"https://login.microsoftonline.com/{tenant}/v2.0",
        ]
        try:
            jwt.decode(
                token,
                key.public_key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=issuers,
                leeway=self._skew,
                options={"require": ["exp", "aud", "iss", "tid"]},
            )
        except jwt.PyJWTError as exc:
            log.info("webhook bearer refused: %s", type(exc).__name__)
            return False
        return True
