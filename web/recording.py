"""Recording of inbound traffic (``WARDEN_RECORD_DIR``), for ``app.py replay``.

The middleware sits innermost, after authentication: it sees a request only once its handler
has answered, and records it only when Warden accepted it (a 2xx answer). A request Warden
refused changed nothing and is not recorded (the access log has it). The body is redacted
(:class:`core.recording.Redactor`) before it is written, one JSON line per request, to a
file per UTC day. A recording that cannot be written is logged; the request is not failed.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from core.recording import ROUTES, Kind, Recorded, Redactor, kept_headers, recording_file

log = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Recorder:
    """Appends redacted inbound requests to ``directory``, one file per day."""

    def __init__(
        self,
        directory: Path,
        redactor: Redactor,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._directory = directory
        self._redactor = redactor
        self._clock = clock
        self._lock = asyncio.Lock()  # lines in arrival order, never interleaved

    async def record(
        self, kind: Kind, path: str, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        """Write one accepted request; a body that is not JSON is skipped."""
        try:
            parsed = json.loads(body)
        except ValueError:
            return
        at = self._clock()
        # In a fresh context: the request's own marks (``mark_sensitive``: the message text,
        # the sender's name) would blank out the very command a replay must send again; the
        # redactor treats those fields itself (names and non-command text as pseudonyms).
        body = contextvars.Context().run(self._redactor.redact, kind, parsed)
        line = Recorded(
            at=at, kind=kind, path=path, status=status, body=body, headers=kept_headers(headers)
        ).line()
        async with self._lock:
            await asyncio.to_thread(_append, recording_file(self._directory, at), line)


def _append(file: Path, line: str) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def recording_middleware(recorder: Recorder) -> Middleware:
    """The middleware that records accepted POSTs to the routes of :data:`ROUTES`."""

    @web.middleware
    async def record(request: web.Request, handler: _Handler) -> web.StreamResponse:
        response = await handler(request)
        kind = ROUTES.get(request.path)
        if kind is None or request.method != "POST" or not 200 <= response.status < 300:
            return response
        try:
            await recorder.record(
                kind, request.path, response.status, await request.read(), request.headers
            )
        except OSError as exc:  # a full disk must not turn an accepted request into a 500
            log.warning("inbound request not recorded: %s", exc)
        return response

    return record
