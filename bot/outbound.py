"""Outbound Bot Connector calls over one pooled async HTTP client (no botbuilder here).

Card posts, replies and updates go straight to the Bot Connector REST API (v3) through one
shared ``aiohttp.ClientSession`` (its pool costs a fraction of httpx's under concurrent
calls): keep-alive connections, no thread pool, no hidden retries — the outbox
is the only retry authority (``docs/adr/0004-bot-connector-rest-pooled.md``). Each call passes
the host's circuit breaker, is timed and counted, and a failure becomes a ``DeliveryError``
with the outcome of the one classification table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from opentelemetry.trace import SpanKind
from pydantic_core import from_json, to_json

from core.breaker import Breakers, CircuitOpen
from core.errors import DeliveryError, Outcome
from core.logs import log_outbound
from core.metrics import Metrics
from core.outcomes import classify_status, classify_transport, parse_retry_after
from core.pacing import Pacer
from core.tracing import inject, span

TokenSource = Callable[[], Awaitable[str | None]]
SERVICE = "bot_connector"
_PATHS = {  # what the log line names: the operation, not the conversation or activity ids
    "POST": "/v3/conversations/{conversation}/activities",
    "PUT": "/v3/conversations/{conversation}/activities/{activity}",
}
_TEAM = "/v3/teams/{team}"
_MEMBER = "/v3/conversations/{conversation}/members/{member}"


def activities_url(service_url: str, conversation_id: str, activity_id: str | None = None) -> str:
    """The Connector URL of a conversation's activities (or of one activity)."""
    base = f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}"
    url = f"{base}/activities"
    return f"{url}/{quote(activity_id, safe='')}" if activity_id else url


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: the key of its circuit breaker."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ConnectorRest:
    """Sends and updates activities on a Bot Connector service URL."""

    def __init__(
        self,
        token: TokenSource,
        breakers: Breakers,
        metrics: Metrics | None = None,
        *,
        timeout: float = 10.0,
        pacer: Pacer | None = None,
    ) -> None:
        self._pacer = pacer
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._token = token
        self._breakers = breakers
        self._metrics = metrics

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str:
        """Post a new activity; returns the id the connector gave it."""
        url = activities_url(service_url, conversation_id)
        body = await self._call("POST", url, activity)
        activity_id = body.get("id") if isinstance(body, dict) else None
        if not activity_id:
            raise DeliveryError("the connector returned no activity id", outcome=Outcome.RETRY)
        return str(activity_id)

    async def reply(
        self, service_url: str, conversation_id: str, reply_to_id: str, activity: dict[str, Any]
    ) -> str:
        """Reply to an activity (ReplyToActivity); returns the reply's id.

        A reply answers a person who is waiting: it is tried even while the host's breaker
        is open (and counts as its probe), so ``status`` can say that delivery is paused. It
        does not wait for a pacing slot, but it is counted, so the cards after it leave room.
        """
        url = activities_url(service_url, conversation_id, reply_to_id)
        slot = self._pacer.record(conversation_id) if self._pacer is not None else None
        try:
            body = await self._call("POST", url, activity, guarded=False)
        finally:
            if slot is not None and self._pacer is not None:
                self._pacer.settle(slot)  # Teams counts it whether or not it succeeded
        return str(body.get("id", "")) if isinstance(body, dict) else ""

    async def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        """Replace an existing activity."""
        await self._call("PUT", activities_url(service_url, conversation_id, activity_id), activity)

    async def team_group_id(self, service_url: str, team_id: str) -> str | None:
        """The Entra ID group id of a team (FetchTeamDetails): Graph's id of the team.

        A channel's conversation reference names its team by the Teams thread id, while
        Graph's ``/teams/{team-id}`` takes the group id; the Connector knows both.
        """
        url = f"{service_url.rstrip('/')}/v3/teams/{quote(team_id, safe='')}"
        body = await self._call("GET", url, None, operation=_TEAM)
        group = body.get("aadGroupId") if isinstance(body, dict) else None
        return str(group) if group else None

    async def member(
        self, service_url: str, conversation_id: str, member_id: str
    ) -> dict[str, Any] | None:
        """One member of a conversation as Teams knows them (GetConversationMember: ``id``,
        ``name``, ``aadObjectId``, ``userPrincipalName``); None when not a member (404)."""
        url = (
            f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}"
            f"/members/{quote(member_id, safe='')}"
        )
        try:
            body = await self._call("GET", url, None, operation=_MEMBER)
        except DeliveryError as exc:
            if exc.status == 404:
                return None
            raise
        return body if isinstance(body, dict) else None

    def _http(self) -> aiohttp.ClientSession:
        """The pooled session, opened on first use (inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=32),
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        url: str,
        activity: dict[str, Any] | None,
        *,
        guarded: bool = True,
        operation: str | None = None,
    ) -> Any:
        path, host = operation or _PATHS[method], origin(url)
        breaker = self._breakers.for_host(host)
        try:
            if guarded:
                breaker.before_call()
        except CircuitOpen as exc:
            raise DeliveryError(
                str(exc), outcome=Outcome.RETRY, retry_after=exc.retry_after, attempted=False
            ) from None
        headers = {"Content-Type": "application/json; charset=utf-8"}
        token = await self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        try:
            with span(f"{SERVICE} {method}", kind=SpanKind.CLIENT):
                inject(headers)
                body = None if activity is None else to_json(activity)
                async with self._http().request(
                    method, url, data=body, headers=headers
                ) as response:
                    status, payload = response.status, await response.read()
                    retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            outcome = classify_transport(exc)
            breaker.record(ok=False)
            self._observe(outcome.value, started, method, host, path, exc)
            raise DeliveryError(
                f"connector unreachable: {type(exc).__name__}", outcome=outcome
            ) from None
        breaker.record(ok=status < 500)
        if status >= 400:
            error = _error(status, payload, retry_after)
            self._observe(error.outcome.value, started, method, host, path, status)
            raise error
        self._observe("ok", started, method, host, path, status)
        return from_json(payload) if payload else {}

    def _observe(
        self,
        outcome: str,
        started: float,
        method: str,
        host: str,
        path: str,
        result: int | BaseException,
    ) -> None:
        seconds = time.perf_counter() - started
        log_outbound(SERVICE, method, host, path, result, seconds * 1000)
        if self._metrics is not None:
            self._metrics.outbound.labels(SERVICE, outcome).inc()
            self._metrics.outbound_seconds.labels(SERVICE).observe(seconds)


def _error(status: int, payload: bytes, retry_after: str | None) -> DeliveryError:
    """The ``DeliveryError`` for a connector's error answer (its ErrorResponse code named)."""
    code = ""
    try:
        body = json.loads(payload) if payload else {}
        code = str(body.get("error", {}).get("code", "")) if isinstance(body, dict) else ""
    except (ValueError, AttributeError):
        pass
    message = f"connector answered {status}" + (f" ({code})" if code else "")
    return DeliveryError(
        message,
        outcome=classify_status(status),
        status=status,
        retry_after=parse_retry_after(retry_after),
    )
