"""Jira's REST API over the wire: one call with credentials, JSON in and out, typed errors.

``JiraApi`` sends through the injected resilient ``httpx.AsyncClient`` with explicit timeouts
and the ``Authorization`` header of an ``Authenticator``; after a 401 it asks a renewable
authenticator (OAuth) for a new token and sends once more (``connectors.itsm_http``). What
the answers mean is the client's business, not this.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.auth import Authenticator
from connectors.http import DEFAULT_TIMEOUT
from connectors.itsm_http import ItsmSender
from connectors.jsm.errors import ERRORS, invalid_answer


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
        self._sender = ItsmSender(http, auth, ERRORS, timeout)

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
        url = self.base_url + path
        return await self._sender.send(
            method, url, label=path, params=params, body=body, repeatable=repeatable
        )
