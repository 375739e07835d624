"""``POST /api/webhooks/sentinel``: signed incident webhooks, acknowledged once durable.

202 means the incident version and the card work it causes are committed (one transaction);
the same ``webhook-id`` again gets the same answer and causes nothing new. Refusals are
problem+json: 401 bad signature, 400 not an incident (naming the field), 413 too large,
415 not JSON, 503 with ``Retry-After`` when the store cannot commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from core.errors import InvalidPayload, StoreUnavailable
from core.ingest import IngestWriter
from core.json_body import json_value
from core.metrics import Metrics
from core.models import Incident
from core.signing import SignatureError, WebhookVerifier
from web.problems import problem

log = logging.getLogger(__name__)

T = TypeVar("T")
IncidentParser = Callable[[bytes], Incident]
"""Maps a webhook's raw JSON body to its incident (``json.JSONDecodeError``, ``InvalidPayload``)."""
BearerCheck = Callable[[str | None], Awaitable[bool]]
"""Whether an ``Authorization`` header carries a bearer Warden accepts."""

RETRY_AFTER_SECONDS = "5"


class SentinelWebhook:
    """The request handler; ``parse`` maps the vendor body (``connectors.sentinel.mapping``)."""

    def __init__(
        self,
        verifier: WebhookVerifier,
        writer: IngestWriter,
        parse: IncidentParser,
        *,
        max_bytes: int,
        metrics: Metrics | None = None,
        bearer: BearerCheck | None = None,
    ) -> None:
        self._metrics = metrics
        self._bearer = bearer
        self._verifier = verifier
        self._writer = writer
        self._parse = parse
        self._max_bytes = max_bytes

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, parse, store, acknowledge."""
        body = await read_json_body(request, self._max_bytes)
        if isinstance(body, web.Response):
            return body
        try:
            webhook_id = await self._authenticate(body, request)
        except SignatureError as exc:
            log.info("webhook refused: %s", exc)
            return signature_refused()
        incident = parse_body(body, self._parse, title="Not an incident", slug="incident", raw=True)
        if isinstance(incident, web.Response):
            return incident
        try:
            result = await self._writer.submit(incident, webhook_id)
        except StoreUnavailable:
            return unavailable("Warden cannot save right now; nothing was stored.")
        if self._metrics is not None:
            outcome = "duplicate" if result.duplicate else "accepted" if result.changed else "stale"
            self._metrics.ingested.labels("sentinel", outcome).inc()
        return web.json_response({"incident": result.incident_name}, status=202)

    async def _authenticate(self, body: bytes, request: web.Request) -> str | None:
        """The webhook id of a signed request, or of one with a valid Entra bearer.

        A Standard Webhooks signature is checked when its headers are there; otherwise, when
        Entra bearers are accepted, the ``Authorization`` header is (its ``webhook-id``
        header, if any, still deduplicates). ``SignatureError`` when neither holds.
        """
        if "webhook-signature" in request.headers or self._bearer is None:
            return self._verifier.verify(body, request.headers)
        if not await self._bearer(request.headers.get("Authorization")):
            raise SignatureError("no signature and no valid bearer")
        return request.headers.get("webhook-id") or None


async def read_json_body(request: web.Request, max_bytes: int) -> bytes | web.Response:
    """A webhook's raw JSON body, or the problem answer: 415 not JSON, 413 over ``max_bytes``."""
    if request.content_type != "application/json":
        return problem(415, "Unsupported media type", "Send application/json.", slug="media")
    if request.content_length is not None and request.content_length > max_bytes:
        return _too_large(max_bytes)
    try:  # read whole (and kept on the request, for the recorder), up to client_max_size
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large(max_bytes)
    return _too_large(max_bytes) if len(body) > max_bytes else body


def _too_large(max_bytes: int) -> web.Response:
    """The 413 answer (built only when needed: the hot path never pays for it)."""
    return problem(413, "Payload too large", f"The limit is {max_bytes} bytes.", slug="size")


def parse_body(
    body: bytes, parse: Callable[[Any], T], *, title: str, slug: str, raw: bool = False
) -> T | web.Response:
    """What ``parse`` makes of a JSON body (of its bytes themselves with ``raw``, else of its
    JSON value), or the 400 problem: not JSON (or not UTF-8), or (``title``, ``slug``) a
    message ``parse`` refuses, naming its field."""
    try:
        return parse(body if raw else json_value(body))
    except json.JSONDecodeError as exc:
        return problem(400, "Not JSON", f"The body is not JSON: {exc.msg}.", slug="json")
    except InvalidPayload as exc:
        return problem(400, title, str(exc), slug=slug, field=exc.field)


def signature_refused() -> web.Response:
    """The 401 answer to a message whose signature is wrong or missing."""
    return problem(401, "Unauthorized", "Invalid or missing signature.", slug="signature")


def unavailable(detail: str) -> web.Response:
    """The 503 answer when the work cannot be saved now (``detail`` says what); the sender
    retries after ``RETRY_AFTER_SECONDS``."""
    return problem(
        503,
        "Try again later",
        detail,
        slug="unavailable",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )
