"""Cards posted exactly once across crashes: the marker a post carries, and the lost answer.

The Bot Connector takes no idempotency key. So a card post is committed as started
(``core.store.card_sends``) before it leaves, and the card carries that post's marker in a
hidden element (``marked``). When Teams' answer is recorded the row goes; when a job finds
its post started but never answered, ``earlier_post`` asks ``AmbiguousPosts`` whether the
card reached the channel (its marker read back through Graph) before ``post_marked`` posts
it again. Incident cards (``bot.delivery``), evidence request cards
(``bot.evidence_delivery``), the auditors' alert cards (``bot.outside_changes``) and
evidence reminders (``bot.evidence_reminders``, replies in the thread of the owner's card,
read back among that thread's replies) all go through here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.types import Card
from core.errors import DeliveryError, Outcome
from core.metrics import Metrics
from core.models import ConversationRef
from core.store import card_sends
from core.store.card_sends import CardSend
from core.store.outbox import Job
from core.store.store import Store

if TYPE_CHECKING:
    from bot.delivery import CardSender

log = logging.getLogger(__name__)


@runtime_checkable
class TeamDirectory(Protocol):
    """Where a channel's team is in Microsoft Graph (the Bot Connector's team details)."""

    async def team_group_id(self, ref: ConversationRef) -> str | None:
        """The Entra ID group id of the team owning ``ref``'s channel; None outside a team."""


class PostFinder(Protocol):
    """Reads a conversation back to find a card Warden posted (Graph channel messages)."""

    async def find(
        self, team_id: str, channel_id: str, marker: str, since: float, thread: str | None = None
    ) -> str | None:
        """The id of the message that carries ``marker``, posted at ``since`` or later (with
        ``thread``: among the replies to that message); None when there is none. Raises
        ``DeliveryError``: with ``Outcome.RETRY`` when the read may succeed later, with any
        other outcome when it cannot be made (no permission)."""


POST_MARKER_PREFIX = "warden-post-"
"""Element ids of the hidden marker a posted card carries: the prefix, then the marker."""


def marked(card: Card, marker: str) -> Card:
    """``card`` with a hidden element whose id carries ``marker``.

    Teams keeps a card's JSON as posted, and Graph gives it back in the channel message's
    attachment, so the marker can be read back; a hidden element shows nothing and is valid
    Adaptive Card, and no click sends it back.
    """
    hidden = {"type": "TextBlock", "text": " ", "isVisible": False}
    return {**card, "body": [*card.get("body", []), {**hidden, "id": POST_MARKER_PREFIX + marker}]}


class AmbiguousPosts:
    """Settles a card post whose answer was never recorded: was the card posted or not?

    Found (the marker is in the channel): the card's message is adopted. Absent: it is posted.
    Unknown (no Graph, no permission, not a team channel): it is posted as before, which may
    show it twice; each outcome is counted in ``warden_delivery_ambiguous_total``.
    """

    def __init__(
        self,
        finder: PostFinder | None,
        teams: TeamDirectory | None,
        metrics: Metrics | None = None,
    ) -> None:
        self._finder = finder
        self._teams = teams
        self._metrics = metrics
        self._groups: dict[str, str] = {}  # a team's group id never changes: asked once

    async def resolve(
        self, ref: ConversationRef, send: CardSend, thread: str | None = None
    ) -> str | None:
        """The activity id of the earlier post when it reached the channel (with ``thread``:
        as a reply in that message's thread); else None."""
        found, resolution = None, "unknown"
        team = await self._team(ref) if self._finder is not None else None
        if self._finder is not None and team is not None:
            try:
                found = await self._finder.find(
                    team, ref.conversation_id, send.marker, send.started_at, thread
                )
            except DeliveryError as exc:
                if exc.outcome is Outcome.RETRY:
                    raise  # Graph is slow or busy: try the whole job again later
                log.warning("an ambiguous card post cannot be checked: %s", exc)
            else:
                resolution = "absent" if found is None else "found"
        if self._metrics is not None:
            self._metrics.delivery_ambiguous.labels(resolution).inc()
        return found

    async def _team(self, ref: ConversationRef) -> str | None:
        if self._teams is None or ref.team_id is None:
            return None
        if ref.team_id in self._groups:
            return self._groups[ref.team_id]
        try:
            group = await self._teams.team_group_id(ref)
        except DeliveryError as exc:
            if exc.outcome is Outcome.RETRY:
                raise
            log.warning("the team of an ambiguous card post is unknown: %s", exc)
            return None
        if group is not None:
            self._groups[ref.team_id] = group
        return group


async def earlier_post(
    store: Store,
    ambiguous: AmbiguousPosts,
    ref: ConversationRef,
    key: str,
    conversation_id: str,
    thread: str | None = None,
) -> tuple[CardSend | None, str | None]:
    """The post of card ``key`` into the conversation still unanswered (None: none is), and
    the activity id of its card when ``ambiguous`` found it in the channel (with ``thread``:
    among the replies to that message) (else None)."""
    earlier = await card_sends.started(store, key, conversation_id)
    if earlier is None:
        return None, None
    found = await ambiguous.resolve(ref, earlier, thread)
    if found is not None:
        log.info("a card post whose answer was lost is adopted (%s)", found)
    return earlier, found


async def post_marked(
    store: Store,
    sender: CardSender,
    ref: ConversationRef,
    key: str,
    conversation_id: str,
    card: Card,
    version: str,
    *,
    earlier: CardSend | None,
    job: Job,
) -> str:
    """Commit the post of card ``key`` as started, then post the card with its marker; the
    activity id Teams gave it. The caller records that id and forgets the started row in one
    commit (``card_sends.settle``, ``core.store.delta.record_posted``).

    ``earlier``'s marker is kept: one marker for every post of a card, so each of them stays
    findable. A post Teams refused made no card: its row is forgotten before the error goes
    on, and the next attempt posts without looking for one.
    """
    marker = earlier.marker if earlier is not None else card_sends.new_marker()
    await card_sends.start(store, key, conversation_id, marker, version, job=job)
    try:
        return await sender.post_card(ref, marked(card, marker))
    except DeliveryError as exc:
        if refused(exc):
            await card_sends.refused(store, key, conversation_id, job=job)
        raise


async def post_once(
    store: Store,
    sender: CardSender,
    ambiguous: AmbiguousPosts,
    ref: ConversationRef,
    key: str,
    card: Card,
    version: str,
    *,
    job: Job,
    thread: str | None = None,
) -> str | None:
    """The activity id of card ``key`` in ``ref``'s conversation (with ``thread``: a reply
    in that message's thread), posted once: the card of an earlier post whose answer was
    lost when ``ambiguous`` finds it, else the card posted now with its marker. The caller
    records it and forgets the post in flight (``card_sends.record``).

    None when Teams answered that the bot was removed: the conversation is then marked
    inactive (``left_conversation``), as an incident card's post marks it.
    """
    here = ref.conversation_id
    earlier, found = await earlier_post(store, ambiguous, ref, key, here, thread)
    if found is not None:
        return found
    target = ref if thread is None else in_thread(ref, thread)
    try:
        return await post_marked(
            store, sender, target, key, here, card, version, earlier=earlier, job=job
        )
    except DeliveryError as exc:
        if await left_conversation(store, exc, here, job, names_message=thread is not None):
            return None
        raise


def in_thread(ref: ConversationRef, message_id: str) -> ConversationRef:
    """``ref`` addressing the thread of its channel's message ``message_id``: a post there is
    a reply to that message (Teams: ``<channel>;messageid=<id>``)."""
    root = f"{ref.conversation_id};messageid={message_id}"
    return ref.model_copy(update={"conversation_id": root})


async def left_conversation(
    store: Store, exc: DeliveryError, conversation_id: str, job: Job, *, names_message: bool
) -> bool:
    """True when ``exc`` says the bot is no longer in the conversation, which is then marked
    inactive (nothing more is sent there until the bot is added again); False otherwise.

    403 always says so; 404 says so for a new top-level post, while for a post naming a
    message (an update, a reply in its thread) it may only say that message is gone.
    """
    if exc.status != 403 and (exc.status != 404 or names_message):
        return False
    await store.deactivate_conversation(conversation_id)
    log.warning("outbox job %s: conversation marked inactive (%s)", job.id, exc)
    return True


def refused(exc: DeliveryError) -> bool:
    """True when Teams answered a post with a refusal that made no card: a 4xx (but 408),
    or 503/429 (throttled). Other answers (500, 502, 504, no answer) may hide a card."""
    status = exc.status
    return status is not None and ((400 <= status < 500 and status != 408) or status == 503)
