# ruff: noqa: F811  (fixtures imported from test_sandbox_graph are parameters here)
"""Contract tests: the Graph sandbox lists the replies in a channel message's thread as Graph
does (``GET /teams/{id}/channels/{id}/messages/{id}/replies``: ``chatMessage`` resources
newest first, ``replyToId`` naming the thread's message, ``@odata.nextLink`` paging, 404 for
an unknown message), and Warden's channel reader finds a marked reply there through
msgraph-sdk with the real azure-identity credential."""

from __future__ import annotations

import uuid

import httpx
from azure.identity.aio import ClientSecretCredential

from core.breaker import Breakers
from graph.channel_messages import ChannelMessages
from sandbox.arm import ArmSandbox
from sandbox.connector import ConnectorSandbox
from sandbox.graph import GraphSandbox
from tests.contract.test_sandbox_graph import (  # noqa: F401  (fixtures)
    arm,
    credential,
    graph,
    http,
)
from tests.support import channel_id

TEAM = str(uuid.uuid4())
CHANNEL = channel_id("auditors")


def thread(graph: GraphSandbox, replies: int) -> str:
    """The Graph sandbox reading a Connector sandbox's record, where a card is posted in the
    channel and ``replies`` cards in its thread; the card's id."""
    graph.channels = ConnectorSandbox()
    root = graph.channels.post_activity(CHANNEL, {"type": "message", "text": "card"})
    for n in range(replies):
        card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "id": f"mark-{n}"}]}
        body = {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }
        graph.channels.post_activity(f"{CHANNEL};messageid={root.id}", body)
    return root.id


async def test_replies_newest_first_naming_their_message_paged_by_next_link(
    graph: GraphSandbox, http: httpx.AsyncClient
) -> None:
    """Three replies at two a page: the newest first, each replying to the thread's message,
    the rest behind ``@odata.nextLink``; the channel's list still shows only the message."""
    root = thread(graph, 3)
    path = f"teams/{TEAM}/channels/{CHANNEL}/messages/{root}/replies"
    first = (await http.get(path, params={"$top": "2"})).json()
    second = (await http.get(first["@odata.nextLink"])).json()
    replies = first["value"] + second["value"]
    assert [r["replyToId"] for r in replies] == [root] * 3
    assert ["mark-2" in r["attachments"][0]["content"] for r in replies] == [True, False, False]
    assert "@odata.nextLink" not in second
    listed = (await http.get(f"teams/{TEAM}/channels/{CHANNEL}/messages")).json()
    assert [m["id"] for m in listed["value"]] == [root]


async def test_replies_of_an_unknown_message_return_404(
    graph: GraphSandbox, http: httpx.AsyncClient
) -> None:
    """A message the channel does not hold has no replies to list: 404 NotFound."""
    thread(graph, 1)
    answer = await http.get(f"teams/{TEAM}/channels/{CHANNEL}/messages/1234567890123/replies")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NotFound"


async def test_channel_reader_finds_a_marked_reply_in_the_thread_only(
    arm: ArmSandbox, graph: GraphSandbox, credential: ClientSecretCredential
) -> None:
    """``ChannelMessages.find`` with a thread finds the reply carrying the marker; without
    it, the channel's top-level messages do not hold it."""
    root = thread(graph, 2)
    reader = ChannelMessages(
        credential, Breakers(), base_url=graph.graph_url, verify=arm.ssl_context()
    )
    found = await reader.find(TEAM, CHANNEL, "mark-0", 0.0, thread=root)
    assert found is not None and found != root
    assert await reader.find(TEAM, CHANNEL, "mark-0", 0.0) is None
