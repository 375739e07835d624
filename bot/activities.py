"""Bot Framework activities as JSON: read the inbound ones, write the outbound ones.

Pure functions over the wire format (``contracts/botframework-activity-v3.schema.json``):
inbound activities become Warden's typed turns (``bot.types``); cards become the activities
that carry them. Teams puts the tenant, team and channel in ``channelData``.
"""

from __future__ import annotations

import html
import re
from typing import Any

from bot.types import (
    Card,
    CardAction,
    ChatFile,
    ExtensionAction,
    LinkPreview,
    LinkQuery,
    Membership,
    Message,
    SearchAnswer,
    SearchQuery,
    TaskAnswer,
    User,
)
from core.models import ConversationKind, ConversationRef

Activity = dict[str, Any]
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SEARCH_RESPONSE_TYPE = "application/vnd.microsoft.search.searchResponse"
ERROR_TYPE = "application/vnd.microsoft.error"
THUMBNAIL_TYPE = "application/vnd.microsoft.card.thumbnail"
FILE_DOWNLOAD_TYPE = "application/vnd.microsoft.teams.file.download.info"
"""The attachment Teams adds for a file attached in a personal chat (``supportsFiles``)."""
MAX_SEARCH_RESULTS = 50
"""Choices a typeahead answer carries at most, whatever ``top`` asks for."""
_MENTION = re.compile(r"<at[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_KINDS = {"channel": ConversationKind.CHANNEL, "groupChat": ConversationKind.GROUP_CHAT}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def message_text(raw: str | None) -> str:
    """The words a person typed: mentions and markup removed, white space folded."""
    text = _MENTION.sub(" ", raw or "")
    text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())


def tenant_of(activity: Activity) -> str | None:
    """The Entra tenant an activity comes from (``channelData.tenant.id`` first)."""
    tenant = _dict(_dict(activity.get("channelData")).get("tenant")).get("id")
    if tenant is None:
        tenant = _dict(activity.get("conversation")).get("tenantId")
    return tenant if isinstance(tenant, str) else None


def conversation_ref(activity: Activity) -> ConversationRef:
    """Where an inbound activity came from, as a reference for posting there later."""
    conversation = _dict(activity.get("conversation"))
    data = _dict(activity.get("channelData"))
    team, channel = _dict(data.get("team")), _dict(data.get("channel"))
    recipient = _dict(activity.get("recipient"))
    return ConversationRef(
        conversation_id=str(conversation.get("id", "")).split(";messageid=")[0],
        service_url=str(activity.get("serviceUrl", "")),
        channel_id=str(activity.get("channelId") or "msteams"),
        kind=_KINDS.get(str(conversation.get("conversationType")), ConversationKind.PERSONAL),
        tenant_id=tenant_of(activity),
        bot_id=str(recipient.get("id", "")),
        bot_name=str(recipient.get("name") or ""),
        name=channel.get("name") or conversation.get("name"),
        team_id=team.get("id"),
        team_name=team.get("name"),
    )


def user_of(activity: Activity) -> User:
    """The person behind an activity."""
    sender = _dict(activity.get("from"))
    return User(
        id=str(sender.get("id", "")),
        name=sender.get("name"),
        aad_object_id=sender.get("aadObjectId"),
    )


def message(activity: Activity) -> Message:
    """A message activity as Warden's ``Message``."""
    text = activity.get("text")
    conversation_id = str(_dict(activity.get("conversation")).get("id", ""))
    _, marker, thread = conversation_id.partition(";messageid=")
    return Message(
        text=message_text(text if isinstance(text, str) else None),
        user=user_of(activity),
        conversation=conversation_ref(activity),
        thread_id=thread if marker and thread else None,
        mentions=mentions_of(activity),
        files=files_of(activity),
    )


def files_of(activity: Activity) -> tuple[ChatFile, ...]:
    """The files a message carries: its ``file.download.info`` attachments with an https
    download URL (inline images, cards and other attachments are left out)."""
    files: list[ChatFile] = []
    for attachment in activity.get("attachments") or []:
        attachment = _dict(attachment)
        if attachment.get("contentType") != FILE_DOWNLOAD_TYPE:
            continue
        content = _dict(attachment.get("content"))
        url, name = content.get("downloadUrl"), attachment.get("name")
        if not isinstance(url, str) or not url.startswith("https://"):
            continue
        kind, unique, size = content.get("fileType"), content.get("uniqueId"), content.get("size")
        files.append(
            ChatFile(
                name=name.strip() if isinstance(name, str) and name.strip() else "file",
                download_url=url,
                unique_id=unique if isinstance(unique, str) else None,
                file_type=kind if isinstance(kind, str) else None,
                size=_int(size, -1) if _int(size, -1) >= 0 else None,
            )
        )
    return tuple(files)


def mentions_of(activity: Activity) -> tuple[User, ...]:
    """The people a message @mentions (its ``mention`` entities), the bot left out."""
    bot_id = _dict(activity.get("recipient")).get("id")
    people: list[User] = []
    for entity in activity.get("entities") or []:
        entity = _dict(entity)
        mentioned = _dict(entity.get("mentioned"))
        if entity.get("type") != "mention" or not mentioned.get("id"):
            continue
        if mentioned.get("id") == bot_id or mentioned.get("role") == "bot":
            continue
        people.append(
            User(
                id=str(mentioned["id"]),
                name=mentioned.get("name") if isinstance(mentioned.get("name"), str) else None,
                aad_object_id=mentioned.get("aadObjectId")
                if isinstance(mentioned.get("aadObjectId"), str)
                else None,
            )
        )
    return tuple(people)


def membership(activity: Activity) -> Membership | None:
    """The bot's own arrival or departure, or ``None`` when the activity is about others."""
    kind = activity.get("type")
    if kind == "installationUpdate":
        action = str(activity.get("action", ""))
        if action not in ("add", "add-upgrade", "remove", "remove-upgrade"):
            return None
        added = action.startswith("add")
    elif kind == "conversationUpdate":
        bot_id = _dict(activity.get("recipient")).get("id")
        joined = [_dict(m).get("id") for m in activity.get("membersAdded") or []]
        left = [_dict(m).get("id") for m in activity.get("membersRemoved") or []]
        if bot_id not in joined and bot_id not in left:
            return None
        added = bot_id in joined
    else:
        return None
    return Membership(conversation_ref(activity), added, user_of(activity))


def card_action(activity: Activity) -> CardAction:
    """An ``adaptiveCard/action`` invoke as Warden's ``CardAction``."""
    action = _dict(_dict(activity.get("value")).get("action"))
    return CardAction(
        verb=str(action.get("verb") or ""),
        user=user_of(activity),
        conversation=conversation_ref(activity),
        data=_dict(action.get("data")),
        activity_id=activity.get("replyToId"),
    )


def card_attachment(card: Card) -> dict[str, Any]:
    """An Adaptive Card as an activity attachment."""
    return {"contentType": CARD_TYPE, "content": card}


def card_message(ref: ConversationRef, card: Card) -> Activity:
    """A new message from the bot carrying ``card``, addressed to ``ref``'s conversation."""
    conversation: dict[str, Any] = {
        "id": ref.conversation_id,
        "conversationType": ref.kind.value,
        "isGroup": ref.kind is not ConversationKind.PERSONAL,
    }
    if ref.tenant_id:
        conversation["tenantId"] = ref.tenant_id
    return {
        "type": "message",
        "from": {"id": ref.bot_id, "name": ref.bot_name},
        "conversation": conversation,
        "channelId": ref.channel_id,
        "serviceUrl": ref.service_url,
        "attachments": [card_attachment(card)],
    }


def card_reply(inbound: Activity, card: Card) -> Activity:
    """The bot's reply to ``inbound`` carrying ``card`` (same conversation and thread)."""
    return {
        "type": "message",
        "from": inbound.get("recipient") or {},
        "recipient": inbound.get("from") or {},
        "conversation": inbound.get("conversation") or {},
        "channelId": inbound.get("channelId") or "msteams",
        "serviceUrl": inbound.get("serviceUrl", ""),
        "replyToId": inbound.get("id"),
        "attachments": [card_attachment(card)],
    }


def invoke_card_response(card: Card) -> dict[str, Any]:
    """The body of an ``adaptiveCard/action`` invoke response that replaces the card."""
    return {"statusCode": 200, "type": CARD_TYPE, "value": card}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def search_query(activity: Activity) -> SearchQuery:
    """An ``application/search`` invoke as Warden's ``SearchQuery``."""
    value = _dict(activity.get("value"))
    options = _dict(value.get("queryOptions"))
    text = value.get("queryText")
    return SearchQuery(
        text=text.strip() if isinstance(text, str) else "",
        dataset=str(value.get("dataset") or ""),
        user=user_of(activity),
        conversation=conversation_ref(activity),
        skip=max(0, _int(options.get("skip"), 0)),
        top=min(MAX_SEARCH_RESULTS, max(1, _int(options.get("top"), 15))),
    )


def search_response(answer: SearchAnswer) -> dict[str, Any]:
    """The body of an ``application/search`` invoke response: the choices, or a 400 error."""
    if answer.error is not None:
        return {
            "statusCode": 400,
            "type": ERROR_TYPE,
            "value": {"code": "BadRequest", "message": answer.error},
        }
    results = [{"title": r.title, "value": r.value} for r in answer.results]
    return {"statusCode": 200, "type": SEARCH_RESPONSE_TYPE, "value": {"results": results}}


def extension_action(activity: Activity) -> ExtensionAction:
    """A ``composeExtension/fetchTask`` or ``submitAction`` invoke as an ``ExtensionAction``.

    The message's words come from ``messagePayload.body.content`` (HTML or text; the
    markup is removed); ``data`` is what the dialog submitted.
    """
    value = _dict(activity.get("value"))
    body = _dict(_dict(value.get("messagePayload")).get("body"))
    content = body.get("content")
    return ExtensionAction(
        command_id=str(value.get("commandId") or ""),
        user=user_of(activity),
        conversation=conversation_ref(activity),
        message_text=message_text(content if isinstance(content, str) else None),
        data=_dict(value.get("data")),
    )


def task_response(answer: TaskAnswer) -> dict[str, Any]:
    """The body answering a message extension action: a dialog (``task`` ``continue``) with
    the card, else a ``composeExtension`` result of type ``message`` with the text."""
    if answer.card is not None:
        info = {
            "title": answer.title,
            "height": "medium",
            "width": "medium",
            "card": card_attachment(answer.card),
        }
        return {"task": {"type": "continue", "value": info}}
    return {"composeExtension": {"type": "message", "text": answer.message or ""}}


def link_query(activity: Activity) -> LinkQuery:
    """A ``composeExtension/queryLink`` invoke as Warden's ``LinkQuery``."""
    url = _dict(activity.get("value")).get("url")
    return LinkQuery(
        url=url.strip() if isinstance(url, str) else "",
        user=user_of(activity),
        conversation=conversation_ref(activity),
    )


def unfurl_response(preview: LinkPreview | None) -> dict[str, Any]:
    """The body answering ``composeExtension/queryLink``: the card with its preview, or an
    empty result (Teams then shows the plain link)."""
    attachments = []
    if preview is not None:
        thumbnail = {"title": preview.title, "text": preview.text}
        attachments.append(
            {
                **card_attachment(preview.card),
                "preview": {"contentType": THUMBNAIL_TYPE, "content": thumbnail},
            }
        )
    result = {"type": "result", "attachmentLayout": "list", "attachments": attachments}
    return {"composeExtension": result}
