"""``GET /metrics`` (Prometheus text format); the edge (``web/edge.py``) measures requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.breaker import Breakers
from core.metrics import BREAKER_LEVEL, Metrics
from core.store import outbox
from core.store.store import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refresh = Callable[[], Awaitable[None]]


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
