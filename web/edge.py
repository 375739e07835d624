"""Warden's HTTP edge: one middleware around every request.

It does, in this order of nesting, what three middlewares used to (each cost a coroutine
frame, a ``try`` and its own look-ups on every request, a fifth of a webhook's CPU):

- correlates the request (``web/access.py``): an id taken from the caller or made new, set
  for every log line of the request and echoed in ``x-correlation-id``, inside a server span
  that continues the caller's ``traceparent``;
- turns HTTP errors into problem+json and unknown failures into a correlated 500
  (``web/problems.py``); ``/api/messages`` keeps botbuilder's own answers;
- counts and times the request by its route's pattern (``warden_http_requests_total``,
  ``warden_http_request_seconds``), and writes its one access line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDictProxy
from opentelemetry.trace import SpanKind

from core.logs import CORRELATION_HEADER, correlation_id, fresh_correlation_id
from core.logs import inbound_correlation_id as _inbound
from core.metrics import Metrics
from core.tracing import span
from web.access import access_line
from web.problems import http_problem, internal_problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CANCELLED = 499
"""The status an access line and the metrics give a request whose client went away."""


def edge_middleware(metrics: Metrics | None = None) -> Middleware:
    """The one middleware of Warden's HTTP edge (``metrics``: where requests are counted)."""
    observe = _observer(metrics) if metrics is not None else None

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = request.headers
        cid = _inbound(headers) or fresh_correlation_id()
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status = 500
        parent = _trace_headers(headers)
        try:
            with span(f"{request.method} {request.path}", parent=parent, kind=SpanKind.SERVER):
                try:
                    response = await handler(request)
                except web.HTTPException as exc:
                    if exc.status < 400 or request.path == "/api/messages":
                        raise
                    response = http_problem(exc)
                except Exception:  # noqa: BLE001 - the edge answers every failure
                    response = internal_problem(request, cid)
            status = response.status
            if not response.prepared:
                response.headers[CORRELATION_HEADER] = cid
            return response
        except web.HTTPException as exc:
            status = exc.status
            exc.headers[CORRELATION_HEADER] = cid
            raise
        except asyncio.CancelledError:
            status = _CANCELLED
            raise
        finally:
            elapsed = time.perf_counter() - started
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else None  # no route matched
            if observe is not None:
                observe(route or "unmatched", request.method, status, elapsed)
            access_line(request, route, status, elapsed * 1000)
            correlation_id.reset(token)

    return edge


def _trace_headers(headers: CIMultiDictProxy[str]) -> dict[str, str] | None:
    """The caller's W3C trace context headers, if it sent any."""
    parent = headers.get("traceparent")
    if parent is None:
        return None
    state = headers.get("tracestate")
    return {"traceparent": parent, **({"tracestate": state} if state is not None else {})}


def _observer(metrics: Metrics) -> Callable[[str, str, int, float], None]:
    """Counts and times a request; the labelled children are looked up once per label set."""
    counted: dict[tuple[str, str, int], Callable[[], None]] = {}
    timed: dict[str, Callable[[float], None]] = {}

    def observe(route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        inc = counted.get(key)
        if inc is None:
            inc = counted[key] = metrics.requests.labels(route, method, str(status)).inc
        inc()
        record = timed.get(route)
        if record is None:
            record = timed[route] = metrics.request_seconds.labels(route).observe
        record(seconds)

    return observe
