"""``GET /metrics`` (Prometheus text format) and the middleware that measures every request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.breaker import Breakers
from core.metrics import BREAKER_LEVEL, Metrics
from core.store import outbox
from core.store.store import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refresh = Callable[[], Awaitable[None]]


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count and time each request by its route's pattern (never the raw path)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.request_seconds.labels(route).observe(time.perf_counter() - started)

    return middleware


def metrics_handler(metrics: Metrics, refresh: Refresh) -> Handler:
    """The scrape endpoint: refreshes the state gauges, then renders the registry."""

    async def handler(_request: web.Request) -> web.Response:
        await refresh()
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


async def refresh_gauges(metrics: Metrics, store: Store, breakers: Breakers) -> None:
    """Set the gauges that describe stored state, just before a scrape."""
    counts = await outbox.counts(store)
    for status in (*outbox.UNFINISHED, outbox.DONE, *outbox.DLQ):
        metrics.outbox_depth.labels(status).set(counts.get(status, 0))
    metrics.dlq_depth.set(sum(counts.get(status, 0) for status in outbox.DLQ))
    metrics.outbox_oldest.set(await outbox.oldest_pending_age(store))
    for host, facts in breakers.snapshot().items():
        metrics.breaker.labels(host).set(BREAKER_LEVEL[facts["state"]])
