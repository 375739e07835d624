"""Teams channel messages in the Graph sandbox, read from a Connector sandbox's record.

``GET /v1.0/teams/{team-id}/channels/{channel-id}/messages`` (List channel messages)
answers a channel's top-level messages, newest first, as ``chatMessage`` resources: what
the bot posted through the Connector sandbox attached as ``GraphSandbox.channels``, so a
card is readable through Graph exactly as Teams shows it (a card attachment's ``content`` is
the card's JSON as a string). ``$top`` takes 1 to 50 (default 20); further pages follow
``@odata.nextLink``. The team id must be a GUID (the team's Entra ID group id, which the
Connector sandbox's ``GET /v3/teams/{id}`` gives); an unknown channel answers 404.

``GET /v1.0/teams/{team-id}/channels/{channel-id}/messages/{message-id}/replies`` (List
replies) answers the replies in a top-level message's thread the same way, newest first,
each with ``replyToId`` naming that message: what the bot posted to the thread's
conversation (``<channel>;messageid=<message-id>``) or as a reply to that message. An
unknown message answers 404.

The token needs ``ChannelMessage.Read.All``, or the resource-specific
``ChannelMessage.Read.Group`` (checked by ``sandbox.graph_api``).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from sandbox.arm_records import GraphError
from sandbox.connector_records import StoredActivity

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox

CHANNEL_ROLES = frozenset({"ChannelMessage.Read.All", "ChannelMessage.Read.Group"})
"""Application (or resource-specific) permissions that may read channel messages."""
MAX_TOP = 50
_DEFAULT_TOP = 20


def _stamp(activity_id: str) -> str:
    """The ISO time of a Connector sandbox activity (its id is a millisecond stamp)."""
    seconds = int(activity_id) / 1000 if activity_id.isdigit() else 0.0
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def chat_message(
    activity: StoredActivity, team_id: str, channel_id: str, reply_to: str | None = None
) -> dict[str, Any]:
    """The ``chatMessage`` Graph shows for an activity the bot posted in a channel (a reply
    in the thread of message ``reply_to`` when given)."""
    body, stamp = activity.body, _stamp(activity.id)
    sender: dict[str, Any] = body["from"] if isinstance(body.get("from"), dict) else {}
    attachments = []
    for index, attachment in enumerate(body.get("attachments") or []):
        content = attachment.get("content")
        attachments.append(
            {
                "id": f"{activity.id}-{index}",
                "contentType": attachment.get("contentType"),
                "contentUrl": attachment.get("contentUrl"),
                "content": json.dumps(content) if content is not None else None,
                "name": attachment.get("name"),
                "thumbnailUrl": None,
            }
        )
    html = str(body.get("text") or "") + "".join(
        f'<attachment id="{a["id"]}"></attachment>' for a in attachments
    )
    return {
        "id": activity.id,
        "replyToId": reply_to,
        "etag": str(activity.version),
        "messageType": "message",
        "createdDateTime": stamp,
        "lastModifiedDateTime": stamp,
        "deletedDateTime": None,
        "subject": None,
        "importance": "normal",
        "locale": "en-us",
        "from": {
            "user": None,
            "device": None,
            "application": {
                "id": sender.get("id"),
                "displayName": sender.get("name"),
                "applicationIdentityType": "bot",
            },
        },
        "body": {"contentType": "html", "content": html},
        "channelIdentity": {"teamId": team_id, "channelId": channel_id},
        "attachments": attachments,
        "mentions": [],
        "reactions": [],
    }


def _page_args(request: web.Request) -> tuple[int, int]:
    """``$top`` and the offset named by ``$skiptoken``; 400 for values Graph refuses."""
    try:
        top = int(request.query.get("$top", _DEFAULT_TOP))
        skip = int(request.query.get("$skiptoken", "0"))
    except ValueError:
        raise GraphError(400, "BadRequest", "Invalid paging parameter.") from None
    if not 1 <= top <= MAX_TOP or skip < 0:
        raise GraphError(400, "BadRequest", f"$top must be between 1 and {MAX_TOP}.")
    return top, skip


def _page(
    request: web.Request,
    sandbox: GraphSandbox,
    messages: list[StoredActivity],
    context: str,
    reply_to: str | None = None,
) -> web.Response:
    """200 with the page of ``messages`` (newest first) that ``$top``/``$skiptoken`` name,
    linking the next page; ``context`` names the collection as ``@odata.context`` does."""
    team_id, channel_id = request.match_info["teamId"], request.match_info["channelId"]
    top, skip = _page_args(request)
    page = messages[skip : skip + top]
    answer: dict[str, Any] = {
        "@odata.context": f"{sandbox.graph_url}/$metadata#{context}",
        "@odata.count": len(page),
        "value": [chat_message(a, team_id, channel_id, reply_to) for a in page],
    }
    if skip + top < len(messages):
        answer["@odata.nextLink"] = (
            f"{sandbox.graph_url}{request.rel_url.raw_path.removeprefix('/v1.0')}"
            f"?$top={top}&$skiptoken={skip + top}"
        )
    return web.json_response(answer)


def _top_level(request: web.Request, sandbox: GraphSandbox) -> list[StoredActivity]:
    """The channel's top-level messages, newest first; 404 for an unknown team or channel."""
    team_id, channel_id = request.match_info["teamId"], request.match_info["channelId"]
    try:
        uuid.UUID(team_id)
    except ValueError:
        raise GraphError(404, "NotFound", "No team found with Group Id " + team_id) from None
    source = sandbox.channels
    if source is None or not source.has_conversation(channel_id):
        raise GraphError(404, "NotFound", "Channel not found.")
    return [a for a in reversed(source.activities(channel_id)) if a.reply_to_id is None]


def _replies(request: web.Request, sandbox: GraphSandbox) -> list[StoredActivity]:
    """The replies in the thread of the top-level message the path names, newest first;
    404 when the channel holds no such message."""
    channel_id, message_id = request.match_info["channelId"], request.match_info["messageId"]
    if not any(a.id == message_id for a in _top_level(request, sandbox)):
        raise GraphError(404, "NotFound", "Message not found.")
    assert sandbox.channels is not None
    thread = sandbox.channels.activities(f"{channel_id};messageid={message_id}")
    answered = [a for a in sandbox.channels.activities(channel_id) if a.reply_to_id == message_id]
    return sorted([*thread, *answered], key=_order, reverse=True)


def _order(activity: StoredActivity) -> int:
    """Where an activity falls in time (its id is a millisecond stamp)."""
    return int(activity.id) if activity.id.isdigit() else 0


def add_channel_routes(app: web.Application, sandbox: GraphSandbox) -> None:
    """Register List channel messages and List replies on ``app``."""

    def context(request: web.Request) -> str:
        team_id, channel_id = request.match_info["teamId"], request.match_info["channelId"]
        return f"teams('{team_id}')/channels('{quote(channel_id, safe='')}')/messages"

    async def list_messages(request: web.Request) -> web.Response:
        """200 with a page of the channel's messages, newest first."""
        return _page(request, sandbox, _top_level(request, sandbox), context(request))

    async def list_replies(request: web.Request) -> web.Response:
        """200 with a page of the replies in a message's thread, newest first."""
        message_id = request.match_info["messageId"]
        replies = _replies(request, sandbox)
        named = f"{context(request)}('{message_id}')/replies"
        return _page(request, sandbox, replies, named, message_id)

    app.router.add_get(
        "/v1.0/teams/{teamId}/channels/{channelId}/messages",
        list_messages,
        name="ListChannelMessages",
    )
    app.router.add_get(
        "/v1.0/teams/{teamId}/channels/{channelId}/messages/{messageId}/replies",
        list_replies,
        name="ListChannelMessageReplies",
    )
