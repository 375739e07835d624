"""``POST /api/webhooks/servicenow``: a business rule's signed message about a changed record.

ServiceNow's outbound REST message (after a ``change_request`` or ``incident`` is inserted or
updated) carries ``{"table", "sys_id", "operation", "record"}``, signed as Standard Webhooks
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; secrets in
``WARDEN_SERVICENOW__WEBHOOK_SECRETS``). 202 means the record's links (and their cards'
redraws) are committed with the message's id; an unsigned, expired or replayed message is
401 and changes nothing; 400 names the field of a message that is not a record; 503 with
``Retry-After`` when the store cannot commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from core.errors import StoreUnavailable
from core.itsm import ItsmRecord
from core.signing import SignatureError, WebhookVerifier
from core.store import links as links_store
from core.store.store import Store
from web.problems import problem
from web.webhooks import parse_body, read_json_body, signature_refused, unavailable

log = logging.getLogger(__name__)

RecordParser = Callable[[Any], ItsmRecord]


class ServiceNowWebhook:
    """The request handler; ``parse`` maps the message (``connectors.servicenow.mapping``)."""

    def __init__(
        self,
        verifier: WebhookVerifier,
        store: Store,
        parse: RecordParser,
        *,
        max_bytes: int,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._verifier = verifier
        self._store = store
        self._parse = parse
        self._max_bytes = max_bytes
        self._on_change = on_change

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, parse, apply to the links, acknowledge."""
        body = await read_json_body(request, self._max_bytes)
        if isinstance(body, web.Response):
            return body
        try:
            webhook_id = self._verifier.verify(body, request.headers)
        except SignatureError as exc:
            log.info("servicenow webhook refused: %s", exc)
            return signature_refused()
        record = parse_body(body, self._parse, title="Not a record", slug="record")
        if isinstance(record, web.Response):
            return record
        try:
            changed = await links_store.record_changed(self._store, record, receipt=webhook_id)
        except StoreUnavailable:
            return unavailable("Warden cannot save right now; nothing was changed.")
        if changed is None:
            log.info("servicenow webhook refused: replayed")
            return problem(401, "Unauthorized", "This message was delivered before.", slug="replay")
        if changed:
            self._on_change()
        return web.json_response({"record": record.number, "cards": len(changed)}, status=202)
