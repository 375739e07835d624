"""Warden's own view of a Teams turn: typed objects the handlers receive.

``bot/adapter.py`` is the only module that knows botbuilder; it turns activities into these
objects and the handlers' answers back into activities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.models import ConversationRef

Card = dict[str, Any]


@dataclass(frozen=True)
class User:
    """The person behind an activity."""

    id: str
    name: str | None = None
    aad_object_id: str | None = None


@dataclass(frozen=True)
class Message:
    """A message to the bot, with the bot's @mention removed and white space folded."""

    text: str
    user: User
    conversation: ConversationRef
    thread_id: str | None = None
    """The activity id of the thread's first message, for a reply in a channel thread."""


@dataclass(frozen=True)
class Membership:
    """The bot was added to, or removed from, a conversation."""

    conversation: ConversationRef
    added: bool
    user: User | None = None


@dataclass(frozen=True)
class CardAction:
    """A click on an ``Action.Execute`` button of one of Warden's cards."""

    verb: str
    user: User
    conversation: ConversationRef
    data: dict[str, Any] = field(default_factory=dict)
    activity_id: str | None = None


class TurnHandler(Protocol):
    """What the adapter calls for each kind of turn; each returns the cards to send."""

    async def on_message(self, message: Message) -> list[Card]:
        """Answer a message (the cards are sent as replies)."""

    async def on_membership(self, change: Membership) -> list[Card]:
        """React to the bot being added or removed (cards are sent when added)."""

    async def on_card_action(self, action: CardAction) -> Card:
        """Answer a card action with the card that replaces the clicked one."""
