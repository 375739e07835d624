"""Builders shared by the tests: Teams activities, signed webhooks, Warden settings."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from jsonschema import Draft7Validator

from core.settings import Settings
from core.settings.outbox import OutboxSettings
from core.signing import sign

SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4OTA="
OTHER_SECRET = "whsec_" + "YW5vdGhlci1zZWNyZXQtZm9yLXRlc3RzLTEyMzQ1Njc="
ENCRYPTION_KEY = "8s2ohLnOuqzdlAVbySYWSXOtkbVq5F9sKAAD1jJRNYk="
NEW_ENCRYPTION_KEY = "iF9mZEPEmp5JCDFZpXlXfEgrkrkuJUeW5NQU5xnFsrI="
BOT = {"id": "28:warden-bot", "name": "Warden"}
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
USER = {
    "id": "29:adele",
    "name": "Adele Vance",
    "aadObjectId": "2046feea-040d-4a46-9e2b-91c2941bfa70",
}


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test Warden: its own var dir and database, fast retries."""
    values: dict[str, Any] = {
        "var_dir": tmp_path,
        "database_url": database_url,
        "port": 0,
        "sentinel_webhook_secrets": SECRET,
        "migrate_apart": False,  # a child process a start: a second more for each test's Warden
        "outbox": OutboxSettings(
            backoff_base_seconds=0.05, backoff_max_seconds=0.3, poll_seconds=0.2, lease_seconds=5
        ),
    }
    values.update(overrides)
    return Settings(**values)


def channel_id(name: str = "soc") -> str:
    """A Teams channel id."""
    return f"19:{name}@thread.tacv2"


def install_activity(service_url: str, conversation: str) -> dict[str, Any]:
    """The conversationUpdate Teams sends when the bot is added to a team's channel."""
    return {
        "type": "conversationUpdate",
        "id": f"f:{uuid.uuid4().hex}",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": USER,
        "recipient": BOT,
        "conversation": {
            "id": conversation,
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": TENANT,
        },
        "membersAdded": [{"id": BOT["id"]}],
        "channelData": {
            "eventType": "teamMemberAdded",
            "team": {"id": conversation, "name": "Security Operations"},
            "channel": {"id": conversation, "name": "General"},
            "tenant": {"id": TENANT},
        },
    }


def removal_activity(service_url: str, conversation: str) -> dict[str, Any]:
    """The conversationUpdate Teams sends when the bot is removed from a team."""
    activity = install_activity(service_url, conversation)
    activity.pop("membersAdded")
    activity["membersRemoved"] = [{"id": BOT["id"]}]
    activity["channelData"]["eventType"] = "teamMemberRemoved"
    return activity


def message_activity(
    service_url: str, conversation: str, text: str, *, thread: str | None = None
) -> dict[str, Any]:
    """A channel message that @mentions the bot, as Teams delivers it: a new post, or a reply
    in the thread whose first message is ``thread``."""
    message_id = str(uuid.uuid4().int)[:13]
    activity = install_activity(service_url, conversation)
    for key in ("membersAdded",):
        activity.pop(key)
    activity.update(
        {
            "type": "message",
            "id": message_id,
            "text": f"<at>Warden</at> {text}",
            "textFormat": "plain",
            "entities": [{"type": "mention", "mentioned": BOT, "text": "<at>Warden</at>"}],
        }
    )
    activity["conversation"]["id"] = f"{conversation};messageid={thread or message_id}"
    activity["channelData"] = {
        "teamsChannelId": conversation,
        "team": {"id": conversation},
        "channel": {"id": conversation},
        "tenant": {"id": TENANT},
    }
    return activity


def signed(
    resource: Any,
    *,
    secret: str = SECRET,
    msg_id: str | None = None,
    timestamp: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A webhook body and its Standard Webhooks headers (JSON content type included)."""
    body = json.dumps(resource).encode()
    headers = sign(secret, body, msg_id=msg_id, timestamp=timestamp)
    headers["content-type"] = "application/json"
    return body, headers


def invoke_activity(
    service_url: str, conversation: str, verb: str, data: dict[str, Any]
) -> dict[str, Any]:
    """A click on an Action.Execute button of a card posted in a channel."""
    activity = install_activity(service_url, conversation)
    activity.pop("membersAdded")
    activity.update(
        {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "replyToId": "1700000000000",
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}},
        }
    )
    activity["conversation"]["id"] = f"{conversation};messageid=1700000000000"
    return activity


FILE_DOWNLOAD_TYPE = "application/vnd.microsoft.teams.file.download.info"


def personal_activity(service_url: str, conversation: str, user: dict[str, str]) -> dict[str, Any]:
    """The common part of an activity from ``user`` in their personal chat with the bot."""
    return {
        "id": str(uuid.uuid4().int)[:13],
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": user,
        "recipient": BOT,
        "conversation": {"id": conversation, "conversationType": "personal", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
    }


def file_attachment(name: str, download_url: str, file_type: str = "pdf") -> dict[str, Any]:
    """A file attached in a personal chat, as Teams hands it to a bot (``supportsFiles``)."""
    unique = str(uuid.uuid4()).upper()
    return {
        "contentType": FILE_DOWNLOAD_TYPE,
        "contentUrl": f"https://contoso-my.sharepoint.com/personal/olivia/Documents/{name}",
        "name": name,
        "content": {"downloadUrl": download_url, "uniqueId": unique, "fileType": file_type},
    }


def file_message_activity(
    service_url: str,
    conversation: str,
    files: list[dict[str, Any]],
    *,
    user: dict[str, str] = USER,
    channel: bool = False,
) -> dict[str, Any]:
    """A message carrying file attachments (and no text): in a personal chat, or, with
    ``channel``, posted in the channel ``conversation`` with the bot @mentioned."""
    if channel:
        activity = message_activity(service_url, conversation, "")
    else:
        activity = {**personal_activity(service_url, conversation, user), "type": "message"}
        activity["text"] = ""
    activity["from"] = user
    activity["attachments"] = [
        *files,
        {"contentType": "text/html", "content": "<div>evidence</div>"},
    ]
    return activity


def personal_invoke_activity(
    service_url: str, conversation: str, verb: str, data: dict[str, Any], user: dict[str, str]
) -> dict[str, Any]:
    """A click on an Action.Execute button of a card in ``user``'s personal chat."""
    activity = personal_activity(service_url, conversation, user)
    activity.update(
        {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "replyToId": "1700000000001",
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}},
        }
    )
    return activity


def openapi_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft7Validator:
    """A validator of ``schema`` whose ``#/components/...`` references read ``document``."""
    return Draft7Validator({**schema, "components": document["components"]})


async def assert_answer_described(
    document: dict[str, Any], operation: dict[str, Any], response: ClientResponse
) -> None:
    """``response`` (aiohttp) is one of ``operation``'s answers: its status is listed, its
    media type is the listed one and its body validates against the listed schema."""
    described = operation["responses"].get(str(response.status))
    assert described is not None, f"{response.status} is not in the document"
    [(media, content)] = described["content"].items()
    assert response.content_type == media
    errors = openapi_validator(document, content["schema"]).iter_errors(await response.json())
    assert not [error.message for error in errors]
