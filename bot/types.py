"""Warden's own view of a Teams turn: typed objects the handlers receive.

``bot/adapter.py`` is the only module that knows botbuilder; it turns activities into these
objects and the handlers' answers back into activities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.models import ConversationRef

Card = dict[str, Any]


class Refusal(Exception):
    """An action that changes nothing; the message tells the person why."""


@dataclass(frozen=True)
class User:
    """The person behind an activity."""

    id: str
    name: str | None = None
    aad_object_id: str | None = None


@dataclass(frozen=True)
class ChatFile:
    """A file attached to a message in a personal chat (``file.download.info``).

    ``download_url`` is pre-authenticated and short-lived: fetch it at once, never show it.
    """

    name: str
    download_url: str
    unique_id: str | None = None
    file_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Message:
    """A message to the bot, with the bot's @mention removed and white space folded."""

    text: str
    user: User
    conversation: ConversationRef
    thread_id: str | None = None
    """The activity id of the thread's first message, for a reply in a channel thread."""
    mentions: tuple[User, ...] = ()
    """The people @mentioned in the message (not the bot), in order."""
    files: tuple[ChatFile, ...] = ()
    """The files attached to the message (inline images and cards are not files)."""


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


@dataclass(frozen=True)
class SearchQuery:
    """A typeahead search from an ``Input.ChoiceSet`` with dynamic data (``application/search``)."""

    text: str
    dataset: str
    user: User
    conversation: ConversationRef
    skip: int = 0
    top: int = 15


@dataclass(frozen=True)
class SearchResult:
    """One choice offered by a typeahead: what the person sees, and the value chosen."""

    title: str
    value: str


@dataclass(frozen=True)
class SearchAnswer:
    """The answer to a typeahead search: the choices, or why the search was refused."""

    results: list[SearchResult] = field(default_factory=list)
    error: str | None = None
    """Set when the search cannot be answered (an unknown dataset); the results are empty."""


@dataclass(frozen=True)
class ExtensionAction:
    """A message extension action on a chat message: its dialog asked for, or submitted."""

    command_id: str
    user: User
    conversation: ConversationRef
    message_text: str = ""
    """The words of the message the action was taken on (markup removed)."""
    data: dict[str, Any] = field(default_factory=dict)
    """What the dialog submitted (empty when the dialog is asked for)."""


@dataclass(frozen=True)
class TaskAnswer:
    """The answer to a message extension action: a dialog to show, or a message to say."""

    title: str = ""
    card: Card | None = None
    message: str | None = None


@dataclass(frozen=True)
class LinkQuery:
    """A link pasted in a compose box, for Warden to unfurl (``composeExtension/queryLink``)."""

    url: str
    user: User
    conversation: ConversationRef


@dataclass(frozen=True)
class LinkPreview:
    """An unfurled link: the card posted with the message, and its compact preview."""

    card: Card
    title: str
    text: str


class TurnHandler(Protocol):
    """What the adapter calls for each kind of turn; each returns what to send or answer."""

    async def on_message(self, message: Message) -> list[Card]:
        """Answer a message (the cards are sent as replies)."""

    async def on_membership(self, change: Membership) -> list[Card]:
        """React to the bot being added or removed (cards are sent when added)."""

    async def on_card_action(self, action: CardAction) -> Card:
        """Answer a card action with the card that replaces the clicked one."""

    async def on_search(self, query: SearchQuery) -> SearchAnswer:
        """Answer a typeahead search with the matching choices."""

    async def on_extension_fetch(self, action: ExtensionAction) -> TaskAnswer:
        """Answer a message extension action with its dialog."""

    async def on_extension_submit(self, action: ExtensionAction) -> TaskAnswer:
        """Do what a message extension's dialog submitted; say what happened."""

    async def on_link_query(self, query: LinkQuery) -> LinkPreview | None:
        """Unfurl a pasted link, or ``None`` to leave it a plain link."""
