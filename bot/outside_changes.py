"""Outbox handler posting the auditors' cards about evidence records changed outside Warden.

An ``audit.outside_change`` job (``core.store.delta``) carries the changes themselves (its
payload is sealed at rest, as every outbox payload), so the card shows what the watch found
even if SharePoint changes again before the job runs. It carries the alert keys of its
changes too: a job run again after its card was posted (the worker stopped before the job
was marked done) finds them posted and posts nothing (``core.store.delta.record_posted``).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from bot.delivery import CardSender
from cards.outside_changes import outside_change_card, outside_changes_summary_card
from core.errors import DeliveryError, Outcome
from core.outside_changes import OutsideChange
from core.store import delta as delta_store
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)


class OutsideChangeDelivery:
    """Runs ``audit.outside_change`` jobs: one alert card, or one summary card."""

    def __init__(self, store: Store, sender: CardSender) -> None:
        """Post through ``sender`` to conversations ``store`` knows."""
        self._store = store
        self._sender = sender

    async def __call__(self, job: Job) -> None:
        """Post the job's card to the auditors' channel."""
        payload = job.payload
        conversation = await self._store.conversation(str(payload.get("conversation_id")))
        if conversation is None:
            raise DeliveryError(
                "the auditors' channel is unknown to Warden (install it there)",
                outcome=Outcome.FAIL,
            )
        try:
            changes = [OutsideChange.model_validate(c) for c in payload.get("changes") or []]
        except ValidationError as exc:
            raise DeliveryError("malformed outside-change job", outcome=Outcome.FAIL) from exc
        if not conversation.active or not changes:
            log.info("outbox job %s skipped: nothing to post or channel inactive", job.id)
            return
        keys = [[str(part) for part in key] for key in payload.get("alerts") or []]
        if await delta_store.already_posted(self._store, keys):
            log.info("outbox job %s skipped: its card was posted already", job.id)
            return
        if payload.get("summary") or len(changes) > 1:
            card = outside_changes_summary_card(changes)
        else:
            card = outside_change_card(changes[0])
        activity_id = await self._sender.post_card(conversation.ref, card)
        await delta_store.record_posted(self._store, keys, activity_id)
