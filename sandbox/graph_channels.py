"""Teams channel messages in the Graph sandbox, read from a Connector sandbox's record.

``GET /v1.0/teams/{team-id}/channels/{channel-id}/messages`` (List channel messages)
answers a channel's top-level messages, newest first, as ``chatMessage`` resources: what
the bot posted through the Connector sandbox attached as ``GraphSandbox.channels``, so a
card is readable through Graph exactly as Teams shows it (a card attachment's ``content`` is
the card's JSON as a string). ``$top`` takes 1 to 50 (default 20); further pages follow
``@odata.nextLink``. The team id must be a GUID (the team's Entra ID group id, which the
Connector sandbox's ``GET /v3/teams/{id}`` gives); an unknown channel answers 404.

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


def chat_message(activity: StoredActivity, team_id: str, channel_id: str) -> dict[str, Any]:
    """The ``chatMessage`` Graph shows for an activity the bot posted in a channel."""
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
        "replyToId": None,
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


def add_channel_routes(app: web.Application, sandbox: GraphSandbox) -> None:
    """Register List channel messages on ``app``."""

    async def list_messages(request: web.Request) -> web.Response:
        """200 with a page of the channel's messages, newest first."""
        team_id, channel_id = request.match_info["teamId"], request.match_info["channelId"]
        try:
            uuid.UUID(team_id)
        except ValueError:
            raise GraphError(404, "NotFound", "No team found with Group Id " + team_id) from None
        source = sandbox.channels
        if source is None or not source.has_conversation(channel_id):
            raise GraphError(404, "NotFound", "Channel not found.")
        top, skip = _page_args(request)
        newest = [a for a in reversed(source.activities(channel_id)) if a.reply_to_id is None]
        page = newest[skip : skip + top]
        answer: dict[str, Any] = {
            "@odata.context": f"{sandbox.graph_url}/$metadata#teams('{team_id}')/channels"
            f"('{quote(channel_id, safe='')}')/messages",
            "@odata.count": len(page),
            "value": [chat_message(a, team_id, channel_id) for a in page],
        }
        if skip + top < len(newest):
            answer["@odata.nextLink"] = (
                f"{sandbox.graph_url}/teams/{team_id}/channels/{quote(channel_id, safe='')}"
                f"/messages?$top={top}&$skiptoken={skip + top}"
            )
        return web.json_response(answer)

    app.router.add_get(
        "/v1.0/teams/{teamId}/channels/{channelId}/messages",
        list_messages,
        name="ListChannelMessages",
    )
