"""Local Bot Framework OpenID metadata and signing keys, and a minter of channel tokens.

The Bot Framework signs the bearer of every channel-to-bot request with a key published at
``https://login.botframework.com/v1/.well-known/openidconfiguration`` (note the spelling:
``openidconfiguration``, no hyphen); its ``jwks_uri`` lists RSA keys that carry an extra
``endorsements`` array naming the channels each key may vouch for (``msteams``, ...).
This sandbox serves the same two documents from local keys, so a bot can be pointed at it
(``BOT_OPENID_METADATA_URL``) and fed real RS256 tokens, valid or deliberately broken::

    async with run_openid_sandbox() as openid:
        token = mint(channel_claims("app-id", service_url), openid.keys[0])

``serve_openid_sandbox_in_thread`` serves from a thread of its own, for clients that block
the event loop while they fetch (botbuilder 4.17 fetches the keys with ``requests``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "BOT_FRAMEWORK_ISSUER",
    "KEYS_PATH",
    "METADATA_PATH",
    "OpenIdSandbox",
    "SigningKey",
    "channel_claims",
    "forge",
    "mint",
    "mint_hs256",
    "mint_unsigned",
    "run_openid_sandbox",
    "serve_openid_sandbox_in_thread",
]

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
"""The ``iss`` of every channel-to-bot token (public cloud)."""

METADATA_PATH = "/v1/.well-known/openidconfiguration"
"""Where the Bot Framework serves its OpenID metadata (same path as login.botframework.com)."""

KEYS_PATH = "/v1/.well-known/keys"
"""Where the Bot Framework serves its JWKS (the metadata's ``jwks_uri``)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair the sandbox publishes (public half) and signs tokens with."""

    kid: str
    private_key: rsa.RSAPrivateKey
    endorsements: tuple[str, ...] = ("msteams",)

    @classmethod
    def generate(
        cls, kid: str | None = None, endorsements: Sequence[str] = ("msteams",)
    ) -> SigningKey:
        """A fresh 2048-bit key; ``endorsements`` are the channel ids it may sign for."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid or uuid.uuid4().hex, private, tuple(endorsements))

    def jwk(self) -> dict[str, Any]:
        """The public key as the Bot Framework publishes it: a JWK plus ``endorsements``."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "endorsements": list(self.endorsements),
        }

    def public_pem(self) -> bytes:
        """The public key in PEM (what an algorithm-confusion attack uses as HMAC secret)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def channel_claims(
    app_id: str,
    service_url: str,
    *,
    issuer: str = BOT_FRAMEWORK_ISSUER,
    lifetime: float = 3600.0,
    not_before: float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims the Bot Framework puts in a channel-to-bot token, valid from ``now``.

    A negative ``lifetime`` makes a token that has already expired; ``not_before`` (epoch
    seconds) one that is not valid yet.
    """
    issued = time.time() if now is None else now
    return {
        "serviceurl": service_url,
        "nbf": int(issued if not_before is None else not_before),
        "exp": int(issued + lifetime),
        "iss": issuer,
        "aud": app_id,
    }


def mint(
    claims: Mapping[str, Any],
    key: SigningKey,
    *,
    headers: Mapping[str, Any] | None = None,
    algorithm: str = "RS256",
) -> str:
    """A token signed by ``key`` (RS256 unless another RSA ``algorithm`` is asked for).

    ``headers`` add to or replace ``kid`` and ``typ``; a ``None`` value removes the entry.
    """
    header: dict[str, Any] = {"kid": key.kid, "typ": "JWT"}
    header.update(headers or {})
    header = {name: value for name, value in header.items() if value is not None}
    return jwt.encode(dict(claims), key.private_key, algorithm=algorithm, headers=header)


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    """A compact JWS built by hand: any header, any claims, any signature bytes."""
    head = _b64url(json.dumps(dict(header), separators=(",", ":")).encode())
    body = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    return f"{head}.{body}.{_b64url(signature)}"


def mint_hs256(claims: Mapping[str, Any], secret: bytes, *, kid: str) -> str:
    """An HS256 token keyed with ``secret`` (e.g. a public key's PEM: algorithm confusion)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    unsigned = forge(header, claims).rsplit(".", 1)[0]
    mac = hmac.new(secret, unsigned.encode("ascii"), hashlib.sha256).digest()
    return f"{unsigned}.{_b64url(mac)}"


def mint_unsigned(claims: Mapping[str, Any], *, kid: str) -> str:
    """An ``alg: none`` token (no signature at all)."""
    return forge({"alg": "none", "typ": "JWT", "kid": kid}, claims)


class OpenIdSandbox:
    """The published keys, the documents serving them, a request log and a down switch.

    The request log may be read from another thread than the one serving (it is locked).
    """

    def __init__(
        self, *, keys: Sequence[SigningKey] | None = None, issuer: str = BOT_FRAMEWORK_ISSUER
    ) -> None:
        """Publish ``keys`` (one fresh ``msteams`` key when omitted) for ``issuer``."""
        self.keys: list[SigningKey] = list(keys) if keys else [SigningKey.generate()]
        self.issuer = issuer
        self.url = ""
        self.down = False
        self._lock = threading.Lock()
        self._log: list[str] = []

    @property
    def metadata_url(self) -> str:
        """The URL to configure as ``BOT_OPENID_METADATA_URL`` (set once served)."""
        return self.url + METADATA_PATH

    def publish(self, key: SigningKey) -> None:
        """Add ``key`` to the JWKS (a key rotation, as clients will see on their next fetch)."""
        self.keys.append(key)

    def withdraw(self, kid: str) -> None:
        """Remove the key ``kid`` from the JWKS."""
        self.keys = [key for key in self.keys if key.kid != kid]

    def fetches(self, path: str = METADATA_PATH) -> int:
        """How many GETs of ``path`` the sandbox has answered or refused."""
        with self._lock:
            return sum(1 for entry in self._log if entry == path)

    def make_app(self) -> web.Application:
        """The aiohttp application serving the metadata and the JWKS."""
        app = web.Application()
        app.router.add_get(METADATA_PATH, self._metadata)
        app.router.add_get(KEYS_PATH, self._jwks)
        return app

    def _record(self, request: web.Request) -> None:
        with self._lock:
            self._log.append(request.path)
        if self.down:
            raise web.HTTPServiceUnavailable(headers={"Retry-After": "5"})

    async def _metadata(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{request.url.origin()}{KEYS_PATH}",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"keys": [key.jwk() for key in self.keys]})


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def _start(served: OpenIdSandbox, host: str, port: int) -> web.AppRunner:
    """Start serving ``served`` on this event loop and set its ``url``."""
    runner = web.AppRunner(served.make_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    served.url = f"http://{_url_host(host)}:{runner.addresses[0][1]}"
    return runner


@contextlib.asynccontextmanager
async def run_openid_sandbox(
    host: str = "127.0.0.1", port: int = 0, *, sandbox: OpenIdSandbox | None = None
) -> AsyncIterator[OpenIdSandbox]:
    """Serve a sandbox on this event loop for the block (``port=0``: a free port)."""
    served = sandbox or OpenIdSandbox()
    runner = await _start(served, host, port)
    try:
        yield served
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_openid_sandbox_in_thread(
    host: str = "127.0.0.1", port: int = 0, *, sandbox: OpenIdSandbox | None = None
) -> Iterator[OpenIdSandbox]:
    """Serve a sandbox from a thread with its own event loop, for blocking clients."""
    served = sandbox or OpenIdSandbox()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="openid-sandbox", daemon=True)
    thread.start()
    runner: web.AppRunner | None = None
    try:
        start = asyncio.run_coroutine_threadsafe(_start(served, host, port), loop)
        runner = start.result(timeout=30)
        yield served
    finally:
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
