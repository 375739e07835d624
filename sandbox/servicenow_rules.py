"""The business rule of the ServiceNow sandbox: an outbound REST message after each write.

After every insert or update of a ``change_request`` or ``incident`` record (through the
API or ``portal_update``) the rule POSTs the record as JSON to the configured URL, signed
as Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; the
secret is ``whsec_<base64>``). Body::

    {"table": "change_request", "sys_id": "...", "operation": "insert" | "update",
     "record": {<every field, stored values, all strings>}, "sys_updated_by": "david.loo"}

Delivery runs in a background task and never delays the API answer; each attempt is
kept in ``RuleRunner.deliveries`` (status, or the error); failures are logged, not raised.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from standardwebhooks import Webhook

logger = logging.getLogger("sandbox.servicenow")

RULE_TABLES = frozenset({"change_request", "incident"})
"""The tables whose writes run the business rule."""

_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass
class RuleDelivery:
    """One attempt to deliver a business-rule message."""

    webhook_id: str
    table: str
    sys_id: str
    operation: str
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


class RuleRunner:
    """Runs the configured business rule and keeps its deliveries."""

    def __init__(
        self, now: Callable[[], datetime.datetime], on_delivery: Callable[[], None]
    ) -> None:
        """No rule yet; ``now`` stamps messages; ``on_delivery`` runs after each attempt."""
        self._now = now
        self._on_delivery = on_delivery
        self.url: str | None = None
        self._webhook: Webhook | None = None
        self.deliveries: list[RuleDelivery] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def configure(self, url: str | None, secret: str | None = None) -> None:
        """Set the rule's target and ``whsec_`` secret (None removes the rule)."""
        if url is None or secret is None:
            self.url, self._webhook = None, None
            return
        self.url, self._webhook = url, Webhook(secret)

    def fire(self, table: str, record: dict[str, str], operation: str) -> None:
        """Schedule the message for a written record (nothing if no rule or another table)."""
        if self.url is None or self._webhook is None or table not in RULE_TABLES:
            return
        body = {
            "table": table,
            "sys_id": record["sys_id"],
            "operation": operation,
            "record": dict(record),
            "sys_updated_by": record.get("sys_updated_by", ""),
        }
        delivery = RuleDelivery(uuid.uuid4().hex, table, record["sys_id"], operation)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            delivery.error = "no running event loop"
            self.deliveries.append(delivery)
            logger.warning("business rule %s not run: no event loop", delivery.webhook_id)
            return
        task = loop.create_task(self._deliver(self.url, self._webhook, delivery, json.dumps(body)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, webhook: Webhook, delivery: RuleDelivery, data: str) -> None:
        """POST one signed message and record the outcome."""
        stamp = self._now()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": webhook.sign(delivery.webhook_id, stamp, data),
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=_TIMEOUT) as session,
                session.post(url, data=data.encode(), headers=headers) as response,
            ):
                delivery.status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            delivery.error = type(err).__name__
            logger.warning("business rule delivery %s failed: %s", delivery.webhook_id, err)
        else:
            if not delivery.ok:
                logger.warning(
                    "business rule delivery %s answered %s", delivery.webhook_id, delivery.status
                )
        self.deliveries.append(delivery)
        self._on_delivery()

    async def drain(self) -> None:
        """Wait for the deliveries in flight (used when the sandbox stops)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
