"""``POST /api/webhooks/budgets?token=…``: Azure budget alerts from an action group.

An action group's webhook carries no signature, so the URL given to it carries a secret
token (compared in constant time with each of ``WARDEN_BUDGETS__WEBHOOK_TOKENS``; any one
opens it). Both the budget alert schema and the common alert schema are accepted. The card
goes to the conversation that subscribed the alert's resource group, else its subscription
(``subscribe budgets`` in Teams, or ``WARDEN_BUDGETS__CHANNELS``; Teams' wins for one scope),
else the operators' channel. 202 means
the alert and its card are committed (a resend of the same alert — same budget, scope,
period and threshold — answers 202 with ``duplicate: true`` and posts no second card);
401 wrong or missing token; 400 names the field of a body that is not a budget alert;
413 too large; 415 not JSON; 503 with ``Retry-After`` when the store cannot commit.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from core.budgets import BudgetAlert, channel_for
from core.errors import StoreUnavailable
from core.store import budget_subscriptions
from core.store import budgets as budgets_store
from core.store.store import Store
from web.problems import problem
from web.webhooks import parse_body, read_json_body, unavailable

log = logging.getLogger(__name__)

AlertParser = Callable[[Any], BudgetAlert]


class BudgetWebhook:
    """The request handler; ``parse`` maps either schema (``connectors.budgets.mapping``)."""

    def __init__(
        self,
        tokens: Sequence[str],
        store: Store,
        parse: AlertParser,
        *,
        channels: Mapping[str, str],
        operators_channel: str,
        max_bytes: int,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._tokens = [token.encode() for token in tokens]
        self._store = store
        self._parse = parse
        self._channels = channels
        self._operators = operators_channel
        self._max_bytes = max_bytes
        self._on_change = on_change

    def _authorized(self, request: web.Request) -> bool:
        """True when the query's ``token`` is one of the tokens (every one is compared)."""
        given = request.query.get("token", "").encode()
        matches = [hmac.compare_digest(given, token) for token in self._tokens]
        return bool(given) and any(matches)

    async def handle(self, request: web.Request) -> web.Response:
        """Check the token, parse, store once, acknowledge."""
        if not self._authorized(request):
            log.info("budget webhook refused: wrong or missing token")
            return problem(401, "Unauthorized", "Wrong or missing token.", slug="token")
        body = await read_json_body(request, self._max_bytes)
        if isinstance(body, web.Response):
            return body
        alert = parse_body(body, self._parse, title="Not a budget alert", slug="budget")
        if isinstance(alert, web.Response):
            return alert
        try:
            chat = await budget_subscriptions.routes(self._store, alert.subscription_id)
            conversation = channel_for(alert, self._channels, self._operators, chat)
            new = await budgets_store.record_alert(self._store, alert, conversation)
        except StoreUnavailable:
            return unavailable("Warden cannot save right now; nothing was stored.")
        if new:
            self._on_change()
        return web.json_response({"alert": alert.key, "duplicate": not new}, status=202)
