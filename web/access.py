"""The access log of Warden's HTTP edge (written by ``web/edge.py``).

Every request gets exactly one scrubbed access line: method, path without query, route,
status, outcome, duration and the caller's address as a pseudonym, with the request's
correlation id (taken, validated, from ``x-correlation-id``, ``x-ms-correlation-request-id``
or the W3C ``traceparent``, or made new).
"""

from __future__ import annotations

import logging

from aiohttp import web

from core.logs import SCRUBBER, outcome_of

_MAX_PATH = 512
_access = logging.getLogger("warden.access")


def access_line(request: web.Request, route: str | None, status: int, duration_ms: float) -> None:
    """Write the request's one access line (nothing is built when the level is off);
    ``route`` is the pattern of the route that matched (None: none did)."""
    level = logging.ERROR if status >= 500 else logging.INFO
    if not _access.isEnabledFor(level):
        return
    path = request.path[:_MAX_PATH]
    _access.log(
        level,
        "%s %s %s",
        request.method,
        path,
        status,
        extra={
            "event": "http.request",
            "method": request.method,
            "path": path,
            "route": route,
            "status": status,
            "outcome": outcome_of(status),
            "duration_ms": round(duration_ms, 1),
            "remote": SCRUBBER.pseudonym(request.remote, "ip") if request.remote else None,
        },
    )
