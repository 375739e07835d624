"""Access tokens of the sandbox's Entra ID: RS256 JWTs signed with a key made at start.

Tokens look like the v1.0 app-only tokens Entra ID issues for ARM and Graph
(``aud``, ``iss`` = ``https://sts.windows.net/<tenant>/``, ``tid``, ``oid``, ``sub``,
``appid``, ``appidacr``, ``idtyp``, ``iat``/``nbf``/``exp``, ``roles``, ``ver`` = "1.0").
Only tokens signed by this issuer's key verify. The clock is injectable, so tests can
expire a token without waiting.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

Clock = Callable[[], float]
"""Seconds since the epoch."""

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
"""Microsoft Graph's application id (also accepted as a Graph token audience)."""

DEFAULT_GRAPH_ROLES = ("GroupMember.Read.All", "User.Read.All")
"""Application permissions a registered client holds on Graph unless told otherwise."""


@dataclass
class ClientApp:
    """A registered application: client id, secret, service principal and Graph roles."""

    client_id: str
    secret: str = field(repr=False)
    display_name: str = "Warden"
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    graph_roles: tuple[str, ...] = DEFAULT_GRAPH_ROLES

    def secret_matches(self, offered: str) -> bool:
        """Compare a presented secret in constant time."""
        return hmac.compare_digest(self.secret.encode(), offered.encode())


class TokenProblem(Exception):
    """Why a bearer token is refused: ``kind`` is malformed, signature, expired,
    not_yet_valid, audience or issuer; ``claims`` holds what could be read."""

    def __init__(self, kind: str, claims: dict[str, Any] | None = None) -> None:
        """Record the kind of problem and the (unverified) claims, if any."""
        super().__init__(kind)
        self.kind = kind
        self.claims = claims or {}


class TokenIssuer:
    """Signs and verifies the sandbox's access tokens for one tenant."""

    def __init__(self, tenant_id: str, *, lifetime: int = 3599, clock: Clock = time.time) -> None:
        """Make a new 2048-bit RSA signing key; tokens live ``lifetime`` seconds."""
        self.tenant_id = tenant_id
        self.lifetime = lifetime
        self.clock = clock
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_urlsafe(20)

    @property
    def issuer(self) -> str:
        """The ``iss`` of v1.0 tokens of this tenant."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    def issue(
        self,
        app: ClientApp,
        audience: str,
        *,
        lifetime: int | None = None,
        roles: Iterable[str] = (),
    ) -> tuple[str, int]:
        """Return (token, seconds it lives) for ``app`` and ``audience``."""
        now = int(self.clock())
        seconds = self.lifetime if lifetime is None else lifetime
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + seconds,
            "aio": secrets.token_urlsafe(24),
            "appid": app.client_id,
            "appidacr": "1",
            "idp": self.issuer,
            "idtyp": "app",
            "oid": app.object_id,
            "rh": secrets.token_urlsafe(16),
            "sub": app.object_id,
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if roles:
            claims["roles"] = list(roles)
        headers = {"kid": self.kid, "x5t": self.kid}
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers), seconds

    def verify(self, token: str, audiences: Iterable[str]) -> dict[str, Any]:
        """Return the claims of a token this issuer signed for one of ``audiences``.

        Raises TokenProblem (malformed, signature, expired, not_yet_valid, audience, issuer).
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenProblem("signature", _unverified(token)) from None
        except jwt.PyJWTError:
            raise TokenProblem("malformed") from None
        self._check_claims(claims, tuple(audiences))
        return claims

    def _check_claims(self, claims: dict[str, Any], audiences: tuple[str, ...]) -> None:
        """Raise TokenProblem unless issuer, lifetime and audience are acceptable."""
        now = self.clock()
        if claims.get("iss") != self.issuer or claims.get("tid") != self.tenant_id:
            raise TokenProblem("issuer", claims)
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int):
            raise TokenProblem("malformed", claims)
        if exp <= now:
            raise TokenProblem("expired", claims)
        if nbf > now + 300:
            raise TokenProblem("not_yet_valid", claims)
        if claims.get("aud") not in audiences:
            raise TokenProblem("audience", claims)

    def jwks(self) -> dict[str, Any]:
        """Return the JSON Web Key Set holding the public signing key."""
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "x5t": self.kid,
                    "n": _b64_int(numbers.n),
                    "e": _b64_int(numbers.e),
                    "issuer": f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
                }
            ]
        }


def _b64_int(value: int) -> str:
    """Return an integer as unpadded base64url of its big-endian bytes (JWK style)."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unverified(token: str) -> dict[str, Any]:
    """Return the claims of a token without verifying it (for messages only)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


def bearer_token(header: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
