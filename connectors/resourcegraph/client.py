"""Async client of Azure Resource Graph's ``resources`` query (ARM, api-version 2022-10-01).

``POST {arm}/providers/Microsoft.ResourceGraph/resources`` with ``{subscriptions, query,
options: {$top, $skipToken, resultFormat: "objectArray"}}``; the answer ``{totalRecords,
count, data, $skipToken?, resultTruncated}`` is one page, and the next page is the same
request with the ``$skipToken`` it gave. The query only reads, so it is sent as idempotent
through the injected resilient ``httpx.AsyncClient``, with an ARM bearer token and explicit
timeouts, as for every ARM client (``connectors.arm_client``).

The per-user quota is honoured: every answer says how many queries are left
(``x-ms-user-quota-remaining``) and when the window resets (``x-ms-user-quota-resets-after``,
``hh:mm:ss``). When none is left, the next query waits for the reset instead of being
throttled; a 429 that comes anyway is waited out the same way (``max_throttled`` times).
A refused query raises ``ResourceGraphQueryError`` carrying the service's own message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from connectors.arm_client import ARM_ENDPOINT, ArmClient
from connectors.arm_token import ARM_SCOPE
from connectors.http import DEFAULT_TIMEOUT, parse_duration
from connectors.resourcegraph.errors import ERRORS, ResourceGraphError, ResourceGraphThrottled

API_VERSION = "2022-10-01"
"""The Resource Graph api-version this client speaks."""

PATH = "/providers/Microsoft.ResourceGraph/resources"
"""The query operation's path."""

MAX_TOP = 1000
"""The most rows Resource Graph returns in one page."""

Sleep = Callable[[float], Awaitable[None]]

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


@dataclass(frozen=True)
class ResourcePage:
    """One page of a query: its rows and where the next page starts (None: the last)."""

    rows: list[dict[str, Any]]
    skip_token: str | None
    total: int
    """``totalRecords``: the rows the whole query matches."""


@dataclass
class QuotaState:
    """What the newest answer said about the per-user quota."""

    remaining: int | None = None
    resets_at: float = 0.0
    """Monotonic time at which the quota window resets."""


class ResourceGraphClient(ArmClient[ResourceGraphError]):
    """Runs Resource Graph queries page by page (see the module docstring).

    The caller owns (and closes) ``http`` and ``credential``. ``sleep`` is how the client
    waits for the quota to reset.
    """

    api_version = API_VERSION
    errors = ERRORS
    empty_answer_ok = False

    def __init__(
        self,
        http: httpx.AsyncClient,
        credential: AsyncTokenCredential,
        *,
        base_url: str = ARM_ENDPOINT,
        api_version: str = API_VERSION,
        scope: str = ARM_SCOPE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_throttled: int = 5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Talk to ARM at ``base_url`` (https only: it carries a bearer token); wait out
        ``max_throttled`` throttled answers in a row with ``sleep``."""
        super().__init__(
            http,
            credential,
            base_url=base_url,
            api_version=api_version,
            scope=scope,
            timeout=timeout,
        )
        self._max_throttled = max_throttled
        self._sleep = sleep
        self.quota = QuotaState()

    async def page(
        self,
        query: str,
        *,
        subscriptions: Sequence[str] = (),
        top: int = MAX_TOP,
        skip_token: str | None = None,
    ) -> ResourcePage:
        """One page of ``query`` over ``subscriptions`` (every one the identity may read
        when empty), starting at ``skip_token``; ``ValueError`` for a bad ``top``."""
        if not 1 <= top <= MAX_TOP:
            raise ValueError(f"top must be from 1 to {MAX_TOP}")
        options: dict[str, Any] = {"$top": top, "resultFormat": "objectArray"}
        if skip_token:
            options["$skipToken"] = skip_token
        body: dict[str, Any] = {"query": query, "options": options}
        if subscriptions:
            body["subscriptions"] = list(subscriptions)
        answer = await self._query(body)
        return _page(answer)

    async def pages(
        self,
        query: str,
        *,
        subscriptions: Sequence[str] = (),
        top: int = MAX_TOP,
        skip_token: str | None = None,
    ) -> AsyncIterator[ResourcePage]:
        """Every page of ``query`` from ``skip_token`` on, fetched as the caller reads."""
        token = skip_token
        seen: set[str] = set()
        while True:
            found = await self.page(query, subscriptions=subscriptions, top=top, skip_token=token)
            yield found
            if found.skip_token is None:
                return
            if found.skip_token in seen:
                raise ERRORS.invalid_answer("the $skipToken repeats: the pages loop")
            seen.add(found.skip_token)
            token = found.skip_token

    async def _query(self, body: dict[str, Any]) -> Any:
        """POST the query once the quota allows; wait out a throttled answer; its JSON."""
        throttled = 0
        while True:
            await self._wait_for_quota()
            try:
                return await self._post(body)
            except ResourceGraphThrottled as exc:
                throttled += 1
                if throttled > self._max_throttled:
                    raise
                await self._sleep(exc.retry_after if exc.retry_after is not None else 1.0)

    async def _wait_for_quota(self) -> None:
        """Sleep until the quota window resets when the last answer left no query."""
        if self.quota.remaining is not None and self.quota.remaining <= 0:
            wait = self.quota.resets_at - time.monotonic()
            if wait > 0:
                await self._sleep(wait)
            self.quota.remaining = None

    async def _post(self, body: dict[str, Any]) -> Any:
        """One query (the transport may resend it: it only reads); its JSON or a typed error."""
        url = self._base_url + PATH
        return await self._call("POST", url, params=self._api, body=body, idempotent=True)

    def _answered(self, response: httpx.Response) -> None:
        """Note the quota every answer reports, a failure's too."""
        self._note_quota(response.headers)

    def _note_quota(self, headers: httpx.Headers) -> None:
        """Remember the quota the answer reports (nothing when it reports none)."""
        remaining = headers.get("x-ms-user-quota-remaining")
        resets = parse_duration(headers.get("x-ms-user-quota-resets-after"))
        try:
            self.quota.remaining = int(remaining) if remaining is not None else None
        except ValueError:
            self.quota.remaining = None
        self.quota.resets_at = time.monotonic() + (resets or 0.0)


def _page(answer: Any) -> ResourcePage:
    """The page in a query answer; ``ERRORS.invalid_answer`` when it is not one."""
    if not isinstance(answer, dict):
        raise ERRORS.invalid_answer("the answer is not a JSON object")
    rows = answer.get("data")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ERRORS.invalid_answer("the answer has no 'data' array of objects (resultFormat?)")
    token = answer.get("$skipToken")
    total = answer.get("totalRecords")
    return ResourcePage(
        rows=rows,
        skip_token=token if isinstance(token, str) and token else None,
        total=total if isinstance(total, int) else len(rows),
    )
