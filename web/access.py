"""The access log and correlation ids of Warden's HTTP edge.

Every request gets a correlation id (taken, validated, from ``x-correlation-id``,
``x-ms-correlation-request-id`` or the W3C ``traceparent``, or made new), echoed in
``x-correlation-id`` and set for every log line written while it is served; and exactly one
scrubbed access line: method, path without query, route, status, outcome, duration and the
caller's address as a pseudonym.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry.trace import SpanKind

from core.logs import (
    CORRELATION_HEADER,
    SCRUBBER,
    correlation_id,
    fresh_correlation_id,
    inbound_correlation_id,
    outcome_of,
)
from core.tracing import span

_MAX_PATH = 512
_TRACE = frozenset({"traceparent", "tracestate"})
_access = logging.getLogger("warden.access")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def correlation_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Correlate the request, echo ``x-correlation-id`` and write its one access line."""
    cid = inbound_correlation_id(request.headers) or fresh_correlation_id()
    token = correlation_id.set(cid)
    started = time.perf_counter()
    status = 500
    trace_headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in _TRACE}
    try:
        with span(f"{request.method} {request.path}", parent=trace_headers, kind=SpanKind.SERVER):
            response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[CORRELATION_HEADER] = cid
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[CORRELATION_HEADER] = cid
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    finally:
        _access_line(request, status, (time.perf_counter() - started) * 1000)
        correlation_id.reset(token)


def _access_line(request: web.Request, status: int, duration_ms: float) -> None:
    resource = request.match_info.route.resource
    _access.log(
        logging.ERROR if status >= 500 else logging.INFO,
        "%s %s %s",
        request.method,
        request.path[:_MAX_PATH],
        status,
        extra={
            "event": "http.request",
            "method": request.method,
            "path": request.path[:_MAX_PATH],
            "route": resource.canonical if resource is not None else None,
            "status": status,
            "outcome": outcome_of(status),
            "duration_ms": round(duration_ms, 1),
            "remote": SCRUBBER.pseudonym(request.remote, "ip") if request.remote else None,
        },
    )
