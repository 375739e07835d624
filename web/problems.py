"""RFC 9457 problem details, and the answers the HTTP edge (``web/edge.py``) gives errors.

Known errors become a problem+json body that says what to fix; unknown ones get a
correlation id that is logged with the traceback and returned, and nothing else leaks.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from aiohttp import web

from core.logs import correlation_id

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
_BASE = "https://warden.dev/problems/"
_KEPT_HEADERS = frozenset({"allow", "retry-after", "www-authenticate"})


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A problem+json response (RFC 9457) with ``type`` under Warden's problem namespace."""
    body = {"type": _BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def http_problem(exc: web.HTTPException) -> web.Response:
    """The problem+json answer of an HTTP error raised by a handler (or by routing)."""
    kept = {k: v for k, v in exc.headers.items() if k.lower() in _KEPT_HEADERS}
    return problem(exc.status, exc.reason, exc.reason, slug=f"http-{exc.status}", headers=kept)


def internal_problem(request: web.Request, ref: str | None = None) -> web.Response:
    """The correlated 500 of an unknown failure, logged with its traceback (call it from the
    ``except`` block); ``ref`` is the request's correlation id."""
    ref = ref or correlation_id.get() or uuid.uuid4().hex[:12]
    log.exception("unhandled error on %s %s (ref %s)", request.method, request.path, ref)
    return problem(
        500,
        "Internal error",
        "Warden failed to handle this request; quote the reference when reporting it.",
        slug="internal",
        correlation_id=ref,
    )
