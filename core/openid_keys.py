"""Signing keys from an OpenID metadata document: fetched on demand, cached, throttled.

Used for every bearer Warden checks (Bot Framework tokens on ``/api/messages``, Entra ID
tokens on webhooks). Decoded RSA keys are kept with their ``endorsements`` (the channels a
Bot Framework key may sign for).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

KEYS_MAX_AGE_SECONDS = 86_400.0
"""How long fetched keys are trusted before a refetch (Microsoft: refresh daily)."""

MIN_REFRESH_SECONDS = 300.0
"""Least time between fetches caused by an unknown key id."""

_FIRST_LOAD_RETRY_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One RSA signing key and the channels it is endorsed for."""

    public_key: RSAPublicKey
    endorsements: frozenset[str]


class OpenIdKeys:
    """The signing keys described by one OpenID metadata URL, fetched on demand and cached.

    Fetches are single-flight. Keys older than ``max_age`` are refetched on use; if that
    fails the previous keys stay in use (they are still the issuer's) and the failure is
    logged. An unknown key id refetches at most once per ``min_refresh`` seconds.
    """

    def __init__(
        self,
        metadata_url: str,
        client: httpx.AsyncClient,
        *,
        max_age: float = KEYS_MAX_AGE_SECONDS,
        min_refresh: float = MIN_REFRESH_SECONDS,
        timeout: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Describe the key source; nothing is fetched until a key is needed."""
        self.metadata_url = metadata_url
        self._client = client
        self._max_age = max_age
        self._min_refresh = min_refresh
        self._timeout = timeout
        self._now = monotonic
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        """True once a fetch has succeeded (keys may be stale, never absent)."""
        return self._fetched_at is not None

    async def get(self, kid: str) -> SigningKey | None:
        """The key ``kid``, fetching only when the cache is stale or lacks it."""
        key = self._keys.get(kid)
        now = self._now()
        fresh = self._fetched_at is not None and now - self._fetched_at < self._max_age
        if key is not None and fresh:
            return key
        if self._lock.locked() or self._may_fetch(now):
            await self.refresh()  # joins a fetch under way rather than starting another
        return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        """Throttle: one attempt per ``min_refresh`` (sooner while nothing ever loaded)."""
        if self._attempted_at is None:
            return True
        wait = self._min_refresh
        if not self.loaded:
            wait = min(wait, _FIRST_LOAD_RETRY_SECONDS)
        return now - self._attempted_at >= wait

    async def refresh(self) -> bool:
        """Fetch the metadata and keys now (callers waiting meanwhile share the result)."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return self.loaded  # a fetch finished while this caller waited
            self._attempted_at = self._now()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                log.warning("signing keys from %s unavailable: %r", self.metadata_url, exc)
                return False
            else:
                self._keys, self._fetched_at = keys, self._now()
                log.info("loaded %d signing keys from %s", len(keys), self.metadata_url)
                return True
            finally:
                self._generation += 1

    async def _fetch(self) -> dict[str, SigningKey]:
        metadata = await self._get_json(self.metadata_url)
        jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
        if not isinstance(jwks_uri, str) or not _same_or_stronger_scheme(
            jwks_uri, self.metadata_url
        ):
            raise ValueError("the metadata has no usable jwks_uri")
        document = await self._get_json(jwks_uri)
        entries = document.get("keys") if isinstance(document, dict) else None
        keys = _parse_keys(entries if isinstance(entries, list) else [])
        if not keys:
            raise ValueError("the key set has no usable RSA signing key")
        return keys

    async def _get_json(self, url: str) -> Any:
        response = await self._client.get(url, timeout=self._timeout)
        response.raise_for_status()
        return response.json()


def _same_or_stronger_scheme(url: str, base: str) -> bool:
    """An absolute http(s) URL, and https whenever ``base`` is https."""
    scheme, base_scheme = urlsplit(url).scheme, urlsplit(base).scheme
    return bool(urlsplit(url).netloc) and scheme in ("https", base_scheme)


def _parse_keys(entries: list[Any]) -> dict[str, SigningKey]:
    """The RSA signature keys of a JWKS, decoded once; other entries are skipped."""
    keys: dict[str, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid, use = entry.get("kid"), entry.get("use", "sig")
        if not isinstance(kid, str) or not kid or use != "sig":
            continue
        try:
            public_key = RSAAlgorithm.from_jwk(entry)
        except (jwt.InvalidKeyError, ValueError, KeyError, TypeError):
            continue
        if not isinstance(public_key, RSAPublicKey):
            continue
        endorsements = entry.get("endorsements")
        names = endorsements if isinstance(endorsements, list) else []
        keys[kid] = SigningKey(public_key, frozenset(n for n in names if isinstance(n, str)))
    return keys
