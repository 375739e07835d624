"""Reading a Teams channel back through Graph, to find a card Warden posted by its marker.

``GET /teams/{team-id}/channels/{channel-id}/messages`` lists a channel's messages, newest
first, with each card attachment's JSON as posted; the app reads it with the
resource-specific permission ``ChannelMessage.Read.Group`` that the manifest declares (or
``ChannelMessage.Read.All``). Only what was posted since the post in question (less a
margin for clock skew) is read, page by page. A card posted as a reply in a message's
thread is looked for among that thread's replies
(``GET .../messages/{message-id}/replies``, read to the end: Graph promises no order there).

Each search opens its own HTTP client: searches happen only after a post whose answer was
lost, so nothing is kept open between them.
"""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.chat_message_collection_response import (
    ChatMessageCollectionResponse,
)
from msgraph.generated.teams.item.channels.item.messages.item.replies.replies_request_builder import (  # noqa: E501
    RepliesRequestBuilder,
)
from msgraph.generated.teams.item.channels.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)

from core.breaker import Breakers
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status
from graph.client import graph_client, graph_http

log = logging.getLogger(__name__)

PAGE_SIZE = 50
"""Graph's largest ``$top`` for channel messages."""
MAX_PAGES = 40
"""How many pages one search reads at most (2,000 messages)."""
CLOCK_SKEW = timedelta(minutes=5)
"""How much earlier than Warden's clock says Teams may have stamped the post."""


class ChannelMessages:
    """Finds the message carrying a marker among a channel's newest messages."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        breakers: Breakers,
        *,
        base_url: str,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._credential = credential
        self._breakers = breakers
        self._base_url = base_url
        self._verify = verify

    async def find(
        self, team_id: str, channel_id: str, marker: str, since: float, thread: str | None = None
    ) -> str | None:
        """The id of the message posted at ``since`` or later that carries ``marker``: among
        the channel's top-level messages, or with ``thread`` among the replies to that one.

        None when there is no such message. ``DeliveryError``: ``RETRY`` when Graph is busy
        or unreachable, ``FAIL`` when the app may not read the channel.
        """
        after = datetime.fromtimestamp(since, UTC) - CLOCK_SKEW
        try:
            async with graph_http(self._breakers, self._verify) as http:
                client = graph_client(self._credential, http, base_url=self._base_url)
                channel = client.teams.by_team_id(team_id).channels.by_channel_id(channel_id)
                if thread is not None:
                    replies = channel.messages.by_chat_message_id(thread).replies
                    return await _search(replies, marker, after, newest_first=False)
                return await _search(channel.messages, marker, after, newest_first=True)
        except APIError as exc:
            status = exc.response_status_code or 0
            raise DeliveryError(
                f"channel messages: Graph answered {status}",
                outcome=classify_status(status),
                status=status,
            ) from None
        except ClientAuthenticationError as exc:
            raise DeliveryError(
                f"channel messages: no Graph token ({type(exc).__name__})", outcome=Outcome.FAIL
            ) from None


async def _search(
    messages: MessagesRequestBuilder | RepliesRequestBuilder,
    marker: str,
    after: datetime,
    *,
    newest_first: bool,
) -> str | None:
    """The id of the message carrying ``marker`` in the collection, page by page; a list
    ``newest_first`` is read only down to the messages older than ``after``."""
    page: ChatMessageCollectionResponse | None = await messages.get(
        RequestConfiguration(query_parameters=_top(messages))
    )
    for _ in range(MAX_PAGES):
        if page is None:
            return None
        found, older = _scan(page.value or [], marker, after)
        if found is not None or (older and newest_first) or not page.odata_next_link:
            return found
        page = await messages.with_url(page.odata_next_link).get()
    log.warning("channel messages: no marker in the newest %s pages", MAX_PAGES)
    return None


def _top(
    messages: MessagesRequestBuilder | RepliesRequestBuilder,
) -> Any:
    """The query asking for pages of :data:`PAGE_SIZE` messages."""
    if isinstance(messages, RepliesRequestBuilder):
        return RepliesRequestBuilder.RepliesRequestBuilderGetQueryParameters(top=PAGE_SIZE)
    return MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(top=PAGE_SIZE)


def _scan(messages: list[ChatMessage], marker: str, after: datetime) -> tuple[str | None, bool]:
    """The id of the message carrying ``marker`` in one page, and whether the page reached
    messages older than ``after`` (the search can stop there)."""
    older = False
    for message in messages:
        if message.created_date_time is not None and message.created_date_time < after:
            older = True
            continue
        for attachment in message.attachments or []:
            if marker in (attachment.content or ""):
                return message.id, older
    return None, older
