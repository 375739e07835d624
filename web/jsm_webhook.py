"""``POST /api/webhooks/jsm``: Jira's signed admin webhook about a changed issue.

The body is checked against ``X-Hub-Signature`` (secrets in ``WARDEN_JSM__WEBHOOK_SECRETS``)
before it is parsed; an unsigned or mis-signed delivery is 401 and changes nothing. The
webhook is a notice, not the truth: Warden reads the issue it names from Jira again, so a
replayed or stale body can never set a link back. The delivery's identifier is recorded
with the change in one transaction; a delivery seen before (Jira's retry, or a replay) is
answered 200 and changes nothing. 503 with ``Retry-After`` when Jira or the store cannot
answer now (Jira delivers again).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from connectors.jsm.mapping import issue_key_of_webhook
from connectors.jsm.webhook import HubSignatureError, verify_hub_signature
from core.errors import DeliveryError, StoreUnavailable
from core.itsm import ItsmRecord
from core.store import links as links_store
from core.store.store import Store
from web.webhooks import parse_body, read_json_body, signature_refused, unavailable

log = logging.getLogger(__name__)

IssueReader = Callable[[str], Awaitable[ItsmRecord | None]]


class JsmWebhook:
    """The request handler; ``read`` fetches the issue named (``JsmClient.get``)."""

    def __init__(
        self,
        secrets: Sequence[str],
        store: Store,
        read: IssueReader,
        *,
        max_bytes: int,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        self._secrets, self._store, self._read = list(secrets), store, read
        self._max_bytes, self._on_change = max_bytes, on_change

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, read the issue again, apply to the links, acknowledge."""
        body = await read_json_body(request, self._max_bytes)
        if isinstance(body, web.Response):
            return body
        try:
            identifier = verify_hub_signature(body, request.headers, self._secrets)
        except HubSignatureError as exc:
            log.info("jsm webhook refused: %s", exc)
            return signature_refused()
        key = parse_body(body, issue_key_of_webhook, title="Not an issue", slug="record")
        if isinstance(key, web.Response):
            return key
        try:
            record = await self._read(key)
            if record is None:
                return web.json_response({"issue": key, "cards": 0}, status=200)
            changed = await links_store.record_changed(self._store, record, receipt=identifier)
        except (DeliveryError, StoreUnavailable):
            return unavailable(
                "Warden cannot read the issue or save right now; nothing was changed."
            )
        if changed is None:
            return web.json_response({"issue": key, "cards": 0, "replayed": True}, status=200)
        if changed:
            self._on_change()
        return web.json_response({"issue": key, "cards": len(changed)}, status=202)
