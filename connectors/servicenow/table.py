"""The Table API over the wire: one page of a query, one write, credentials and paging.

``TableApi`` sends through the injected resilient ``httpx.AsyncClient`` with explicit
timeouts and the ``Authorization`` header of an ``Authenticator``; after a 401 it asks a
renewable authenticator (OAuth) for new credentials and sends once more
(``connectors.itsm_http``). Every read and write asks for ``sysparm_display_value=all``
without reference links. Failures become the typed errors of ``errors``. What the records
mean is the client's business, not this.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.auth import Authenticator
from connectors.http import DEFAULT_TIMEOUT, host_key
from connectors.itsm_http import ItsmSender
from connectors.servicenow.errors import ERRORS, invalid_answer
from connectors.servicenow.query import Query, fields_param

_OUTPUT = {"sysparm_display_value": "all", "sysparm_exclude_reference_link": "true"}

Page = tuple[list[dict[str, Any]], str | None]
"""The records of one page and the URL of the next (the ``Link`` header), if any."""


class TableApi:
    """Calls ``/api/now/table`` of one instance; the caller owns ``http``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        instance_url: str,
        auth: Authenticator,
        *,
        page_size: int = 100,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the instance at ``instance_url`` (its origin, http or https)."""
        origin = httpx.URL(instance_url)
        if origin.scheme not in ("https", "http") or not origin.host:
            raise ValueError(f"instance_url must be an http(s) URL, not {instance_url!r}")
        self.instance = instance_url.rstrip("/")
        self.page_size = page_size
        self._origin = host_key(origin)
        self._sender = ItsmSender(http, auth, ERRORS, timeout)

    async def page(
        self,
        table: str,
        query: Query,
        *,
        limit: int | None = None,
        offset: int = 0,
        url: str | None = None,
    ) -> Page:
        """One page of ``query`` (or the page at a ``Link`` ``url``) and the next page's URL."""
        params: dict[str, str] | None = None
        if url is None:
            params = {
                "sysparm_query": query.encoded(),
                "sysparm_fields": fields_param(table),
                **_OUTPUT,
                "sysparm_limit": str(limit or self.page_size),
            }
            if offset:
                params["sysparm_offset"] = str(offset)
        response = await self._send("GET", url or f"/api/now/table/{table}", params=params)
        body = self._json(response)
        records = body.get("result") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise invalid_answer(f"GET {table}: the answer has no 'result' array of records")
        link = response.links.get("next", {}).get("url")
        return records, link if records else None

    async def write(
        self, method: str, path: str, body: dict[str, str], *, repeatable: bool = False
    ) -> dict[str, Any]:
        """POST or PATCH ``body``; the ``result`` record of the answer.

        Only a ``repeatable`` write may be sent again by the transport.
        """
        response = await self._send(
            method, path, params=dict(_OUTPUT), body=body, repeatable=repeatable
        )
        answer = self._json(response)
        record = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(record, dict):
            raise invalid_answer(f"{method} {path}: the answer has no 'result' record")
        return record

    def follow(self, link: str, seen: set[str]) -> str:
        """The next page's URL; refuse another host (credentials go along) or a loop."""
        if host_key(httpx.URL(link)) != self._origin or link in seen:
            raise invalid_answer("the Link header points to another host or loops")
        seen.add(link)
        return link

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
        repeatable: bool = False,
    ) -> httpx.Response:
        """Send with credentials; renew them once after a 401; a failure as a typed error."""
        target = url if url.startswith("http") else self.instance + url
        return await self._sender.send(
            method,
            target,
            label=httpx.URL(target).path,
            params=params,
            body=body,
            repeatable=repeatable,
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        """The answer's JSON; ``ServiceNowUnavailable`` when it is not JSON."""
        try:
            return response.json() if response.content else None
        except ValueError:
            method, path = response.request.method, response.url.path
            raise invalid_answer(f"{method} {path}: not JSON") from None
