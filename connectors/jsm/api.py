"""Jira's REST API over the wire: one call with credentials, JSON in and out, typed errors.

``JiraApi`` sends through the injected resilient ``httpx.AsyncClient`` with explicit timeouts
and the ``Authorization`` header of an ``Authenticator``; after a 401 it asks a renewable
authenticator (OAuth) for a new token and sends once more. What the answers mean is the
client's business, not this.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.auth import Authenticator
from connectors.http import DEFAULT_TIMEOUT, IDEMPOTENT_EXTENSION
from connectors.jsm.errors import JsmUnavailable, error_from_response, invalid_answer
from core.errors import DeliveryError, Outcome


class JiraApi:
    """Calls one Jira site's REST API; the caller owns ``http``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        auth: Authenticator,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the REST API under ``base_url`` (the site, or the OAuth gateway path)."""
        origin = httpx.URL(base_url)
        if origin.scheme not in ("https", "http") or not origin.host:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._http, self._auth, self._timeout = http, auth, timeout

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        repeatable: bool = False,
    ) -> Any:
        """Send; the answer's JSON (None for 204). Only a ``repeatable`` POST is resent."""
        response = await self._send(method, path, params, body, repeatable)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise invalid_answer(f"{method} {path}: not JSON") from None

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
        repeatable: bool,
    ) -> httpx.Response:
        """Send with credentials; renew them once after a 401; a failure as a typed error."""
        for renewal in (False, True):
            headers = {"Authorization": await self._auth.header(), "Accept": "application/json"}
            try:
                response = await self._http.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self._timeout,
                    extensions={IDEMPOTENT_EXTENSION: True} if repeatable else {},
                )
            except DeliveryError as exc:
                raise JsmUnavailable.from_delivery(exc) from exc
            except httpx.HTTPError as exc:
                message = f"{method} {path}: {type(exc).__name__}"
                raise JsmUnavailable(message, outcome=Outcome.RETRY) from exc
            if response.status_code == 401 and self._auth.renewable and not renewal:
                self._auth.forget()
                continue
            if response.is_error:
                raise error_from_response(response)
            return response
        raise AssertionError("unreachable: the renewed attempt returns or raises")
