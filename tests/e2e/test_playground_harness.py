"""The Agents Playground harness (sandbox/playground.py) against the real Playground, no bot.

The bot endpoint is an unused local port: the Playground starts anyway. To stand in for a bot,
the tests post to the Playground's mock Bot Connector directly, as a bot would.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from sandbox.playground import (
    CONFIG_FILE_NAME,
    Playground,
    PlaygroundError,
    default_config,
    start_playground,
)
from sandbox.playground_client import PlaygroundClient
from tests.e2e.conftest import unused_endpoint

pytestmark = pytest.mark.e2e


async def post_as_bot(
    playground: Playground, method: str, path: str, activity: dict[str, object]
) -> dict[str, object]:
    """Send ``activity`` to the mock Bot Connector as the bot does; return the JSON answer."""
    url = f"{playground.service_url}/v3/conversations/{path}"
    async with aiohttp.ClientSession() as session, session.request(method, url, json=activity) as r:
        assert r.status in (200, 201), await r.text()
        answer: dict[str, object] = await r.json()
        return answer


def card(text: str) -> dict[str, object]:
    """An adaptive card attachment showing ``text``."""
    content = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": text}],
    }
    return {"contentType": "application/vnd.microsoft.card.adaptive", "content": content}


async def test_playground_default_config_lists_team_channels_and_users(
    client: PlaygroundClient,
) -> None:
    """testConfig returns the configured team, its General + extra channel, bot and 6 users."""
    cfg = await client.test_config()

    assert cfg.team_id == "team-id"
    assert cfg.general_channel_id == "team-id"
    assert [c["name"] for c in cfg.channels] == ["General", "Announcements"]
    assert cfg.channel_id("Announcements") == "channel-announcements-id"
    assert cfg.personal_chat_id == "personal-chat-id"
    assert cfg.group_chat_id == "group-chat-id"
    assert (cfg.bot_id, cfg.bot_name) == ("00000000-0000-0000-0000-00000000000011", "Warden")
    assert cfg.current_user_id == "user-id-0"
    assert [u["id"] for u in cfg.users] == [f"user-id-{n}" for n in range(6)]


async def test_playground_custom_config_changes_bot_and_team(
    node_modules: Path, tmp_path: Path
) -> None:
    """A config passed to start_playground is written as its yml file and takes effect."""
    config = default_config()
    config["bot"] = {"id": "warden-bot", "name": "Warden"}
    config["team"]["id"] = "19:warden-team@thread.tacv2"
    async with (
        start_playground(
            unused_endpoint(), workdir=tmp_path, config=config, node_modules=node_modules
        ) as pg,
        PlaygroundClient(pg.url) as pg_client,
    ):
        cfg = await pg_client.test_config()

    assert json.loads((tmp_path / CONFIG_FILE_NAME).read_text())["bot"]["name"] == "Warden"
    assert (cfg.bot_id, cfg.bot_name) == ("warden-bot", "Warden")
    assert cfg.general_channel_id == "19:warden-team@thread.tacv2"


async def test_playground_send_message_in_channel_returns_thread_id(
    client: PlaygroundClient,
) -> None:
    """A user's @mention in a channel starts a thread whose id is `<channel>;messageid=<id>`."""
    cfg = await client.test_config()
    channel = cfg.channel_id("Announcements")
    await client.install(channel)

    sent = await client.send_message(channel, "status")

    assert sent["postConversationId"] == f"{channel};messageid={sent['messageId']}"


async def test_playground_stream_bot_post_in_channel_yields_create_frame(
    playground: Playground, client: PlaygroundClient
) -> None:
    """A bot's post to a bare channel id arrives as createMessage with the thread's id."""
    cfg = await client.test_config()
    channel = cfg.channel_id("Announcements")
    async with client.stream() as stream:
        sent = await post_as_bot(
            playground,
            "POST",
            f"{channel}/activities",
            {"type": "message", "attachments": [card("hi")]},
        )
        frame = await stream.wait_for_create(from_id=cfg.bot_id, timeout=10)

    assert frame.message_id == sent["id"]
    assert frame.conversation_id == channel
    assert frame.post_conversation_id == f"{channel};messageid={sent['id']}"
    assert frame.attachments[0]["content"]["body"][0]["text"] == "hi"


async def test_playground_stream_bot_update_yields_update_frame_same_id(
    playground: Playground, client: PlaygroundClient
) -> None:
    """A bot's PUT of its channel post arrives as updateMessage with the same messageId."""
    cfg = await client.test_config()
    channel = cfg.general_channel_id
    async with client.stream() as stream:
        sent = await post_as_bot(
            playground,
            "POST",
            f"{channel}/activities",
            {"type": "message", "attachments": [card("v1")]},
        )
        update = {"type": "message", "id": sent["id"], "attachments": [card("v2")]}
        await post_as_bot(playground, "PUT", f"{channel}/activities/{sent['id']}", update)
        frame = await stream.wait_for_update(str(sent["id"]), timeout=10)

    assert frame.conversation_id == channel
    assert frame.post_conversation_id is None
    assert frame.attachments[0]["content"]["body"][0]["text"] == "v2"


async def test_playground_start_missing_node_modules_raises_npm_ci_hint(tmp_path: Path) -> None:
    """Without the npm package, start fails at once and says to run `npm ci`."""
    with pytest.raises(PlaygroundError, match="run `npm ci`"):
        async with start_playground(
            unused_endpoint(), workdir=tmp_path, node_modules=tmp_path / "node_modules"
        ):
            pass


async def test_playground_start_invalid_config_raises_with_log_tail(
    node_modules: Path, tmp_path: Path
) -> None:
    """A config the Playground rejects fails start with the Playground's own reason."""
    config = default_config()
    config["users"] = config["users"][:4]
    (tmp_path / CONFIG_FILE_NAME).write_text(json.dumps(config))

    with pytest.raises(PlaygroundError, match="must NOT have fewer than 5 items"):
        async with start_playground(unused_endpoint(), workdir=tmp_path, node_modules=node_modules):
            pass
