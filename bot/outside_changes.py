"""Outbox handler posting the auditors' cards about evidence records changed outside Warden.

An ``audit.outside_change`` job (``core.store.delta``) carries the changes themselves (its
payload is sealed at rest, as every outbox payload), so the card shows what the watch found
even if SharePoint changes again before the job runs. It carries the alert keys of its
changes too: a job run again after its card was posted (the worker stopped before the job
was marked done) finds them posted and posts nothing (``core.store.delta.record_posted``).

The post itself goes out as incident cards do (``bot.marked_posts``): committed as started
with a marker the card carries, so a job run again after Teams accepted the card but before
its answer was recorded (Warden stopped, the connection broke) finds the card in the channel
through Graph and records it instead of posting a second one. A 403 (the bot was removed
from the auditors' channel) marks that channel inactive, as for incident cards.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

from pydantic import ValidationError

from bot.delivery import CardSender
from bot.marked_posts import AmbiguousPosts, post_once
from cards.outside_changes import outside_change_card, outside_changes_summary_card
from core.errors import DeliveryError, Outcome
from core.outside_changes import OutsideChange
from core.store import delta as delta_store
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)


class OutsideChangeDelivery:
    """Runs ``audit.outside_change`` jobs: one alert card, or one summary card."""

    def __init__(
        self, store: Store, sender: CardSender, ambiguous: AmbiguousPosts | None = None
    ) -> None:
        """Post through ``sender`` to conversations ``store`` knows; ``ambiguous`` looks for
        the card of a post whose answer was lost (without it such a post is made again)."""
        self._store = store
        self._sender = sender
        self._ambiguous = ambiguous or AmbiguousPosts(None, None)

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
        ref, key = conversation.ref, card_key(job, keys)
        found = await post_once(
            self._store, self._sender, self._ambiguous, ref, key, card, ALERT_VERSION, job=job
        )
        if found is None:  # the bot was removed: the channel is now inactive
            return
        send = (key, ref.conversation_id)
        await delta_store.record_posted(self._store, keys, found, send=send, job=job)


ALERT_VERSION = "alert"
"""The version a started alert card post records: an alert card is never updated."""


def card_key(job: Job, keys: Sequence[Sequence[str]]) -> str:
    """The key of a job's card among posts in flight (``core.store.card_sends``): ``audit:``
    and a hash of its alert keys, the same however often the job runs (a job without alert
    keys, made before they were kept, is known by its id)."""
    if not keys:
        return f"audit:job:{job.id}"
    alerts = json.dumps(sorted([list(key) for key in keys]), separators=(",", ":"))
    return "audit:" + hashlib.sha256(alerts.encode()).hexdigest()
