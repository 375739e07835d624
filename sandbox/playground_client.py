"""Drive a running Agents Playground: its test configuration, people, clicks and stream.

``PlaygroundClient`` plays the people in the Playground through the same HTTP and websocket
API its web page uses; ``ConversationStream`` collects what appears in the client. Facts about
its behaviour: ``docs/dev/agents-playground.md``. Depends on aiohttp and the standard library
only, never on Warden's own packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from sandbox.playground import Json, PlaygroundError

STREAM_PATH = "/_ws_conversation/v1/conversations/stream"


@dataclass(frozen=True)
class PlaygroundConfig:
    """The Playground's ``testConfig``, with lookups; ``raw`` is the whole ``config`` object.

    ``users`` lists the current user first; ``channels`` (each id, name, channelType) lists General
    first, whose id is the team id (``general_channel_id``).
    """

    raw: Json
    bot_id: str
    bot_name: str
    current_user_id: str
    users: list[Json]
    personal_chat_id: str
    group_chat_id: str
    team_id: str
    channels: list[Json]

    @classmethod
    def from_raw(cls, raw: Json) -> PlaygroundConfig:
        """Read the ``config`` object of ``GET /_internal/v1/testConfig``."""
        team = raw["teams"][0]
        return cls(
            raw,
            raw["bot"]["id"],
            raw["bot"]["name"],
            raw["currentUser"]["id"],
            [raw["currentUser"], *raw["users"]],
            raw["personalChat"]["id"],
            raw["groupChats"][0]["id"],
            team["id"],
            list(team["channels"]),
        )

    @property
    def general_channel_id(self) -> str:
        """The General channel's conversation id, which is the team id."""
        return self.team_id

    def channel_id(self, name: str) -> str:
        """Return the id of the channel called ``name``; ``KeyError`` if there is none."""
        for channel in self.channels:
            if channel["name"] == name:
                return str(channel["id"])
        raise KeyError(name)


@dataclass(frozen=True)
class Frame:
    """One websocket frame, flattened; ``raw`` is the frame as received.

    ``action`` is createMessage, updateMessage or typing; ``conversation_id`` is its
    ``actionConversationId`` (the channel, for the first post of a channel thread); the rest
    comes from its ``message``: ``message_id``, ``post_conversation_id`` (createMessage of a
    channel post only: ``<channel>;messageid=<id>``), ``from_id``, ``text``, ``attachments``
    (each ``{"contentType", "content"}``).
    """

    raw: Json
    action: str
    conversation_id: str
    message_id: str | None
    post_conversation_id: str | None
    from_id: str | None
    text: str | None
    attachments: list[Json]

    @classmethod
    def from_raw(cls, raw: Json) -> Frame:
        """Flatten one decoded websocket frame."""
        msg = raw.get("message") or {}
        return cls(
            raw,
            raw.get("action", ""),
            raw.get("actionConversationId", ""),
            msg.get("messageId"),
            msg.get("postConversationId"),
            (msg.get("from") or {}).get("id"),
            msg.get("text"),
            list(msg.get("attachments") or []),
        )


class ConversationStream:
    """Collects websocket frames in the background; ``wait_for`` wakes on each new frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Start reading ``ws``; use ``PlaygroundClient.stream()`` to get one."""
        self.frames: list[Frame] = []
        self._ws = ws
        self._changed = asyncio.Condition()
        self._closed = False
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    async with self._changed:
                        self.frames.append(Frame.from_raw(json.loads(msg.data)))
                        self._changed.notify_all()
        finally:
            async with self._changed:
                self._closed = True
                self._changed.notify_all()

    def mark(self) -> int:
        """Return a position to pass as ``since`` so later waits skip earlier frames."""
        return len(self.frames)

    async def wait_for(
        self,
        predicate: Callable[[Frame], bool],
        timeout: float = 10,  # noqa: ASYNC109 - the wait is the point of this method
        *,
        since: int = 0,
    ) -> Frame:
        """Return the first frame at or after ``since`` matching ``predicate``.

        Raises ``TimeoutError`` (listing the frames seen) after ``timeout`` seconds, and
        ``PlaygroundError`` if the websocket closes first.
        """

        def found() -> Frame | None:
            return next((f for f in self.frames[since:] if predicate(f)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: found() is not None or self._closed), timeout
                )
            except TimeoutError:
                seen = [(f.action, f.conversation_id, f.message_id) for f in self.frames[since:]]
                raise TimeoutError(f"no matching frame in {timeout}s; saw {seen}") from None
            if (frame := found()) is None:
                raise PlaygroundError("the conversation stream closed")
            return frame

    async def wait_for_create(
        self,
        *,
        from_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float = 10,  # noqa: ASYNC109
        since: int = 0,
    ) -> Frame:
        """Wait for a ``createMessage`` frame, if given from ``from_id`` in ``conversation_id``."""

        def match(f: Frame) -> bool:
            return (
                f.action == "createMessage"
                and from_id in (None, f.from_id)
                and conversation_id in (None, f.conversation_id)
            )

        return await self.wait_for(match, timeout, since=since)

    async def wait_for_update(
        self,
        message_id: str,
        *,
        timeout: float = 10,  # noqa: ASYNC109
        since: int = 0,
    ) -> Frame:
        """Wait for an ``updateMessage`` frame of the message ``message_id``."""

        def match(f: Frame) -> bool:
            return f.action == "updateMessage" and f.message_id == message_id

        return await self.wait_for(match, timeout, since=since)

    def created(self) -> list[Frame]:
        """All ``createMessage`` frames so far."""
        return [f for f in self.frames if f.action == "createMessage"]

    def updated(self) -> list[Frame]:
        """All ``updateMessage`` frames so far."""
        return [f for f in self.frames if f.action == "updateMessage"]

    async def aclose(self) -> None:
        """Close the websocket and wait for the reader to finish."""
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


@dataclass
class PlaygroundClient:
    """Plays the Playground's users over its HTTP API; ``async with`` it to close its session."""

    base_url: str
    timeout: float = 10.0
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _config: PlaygroundConfig | None = field(default=None, init=False, repr=False)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                self.base_url, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def _call(self, method: str, path: str, body: Json | None = None) -> Any:
        async with self._http().request(method, path, json=body) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise PlaygroundError(f"{method} {path} -> {resp.status}: {text}")
            return json.loads(text) if text else None

    async def test_config(self) -> PlaygroundConfig:
        """Fetch ``GET /_internal/v1/testConfig`` (cached for later mentions and defaults)."""
        body = await self._call("GET", "/_internal/v1/testConfig")
        self._config = PlaygroundConfig.from_raw(body["config"])
        return self._config

    async def _cfg(self) -> PlaygroundConfig:
        return self._config or await self.test_config()

    async def install(self, conversation_id: str) -> None:
        """Install the bot in a conversation; it gets installationUpdate and conversationUpdate."""
        await self._call(
            "POST", f"/_debug/conversation/{quote(conversation_id, safe='')}/installation", {}
        )

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        user_id: str | None = None,
        mention_bot: bool = True,
        people: Sequence[Json] = (),
    ) -> Json:
        """Post ``text`` as a user (``<at>bot</at> text`` if ``mention_bot``); ``people``
        (Playground users: ``id``, ``name``) are @mentioned where ``text`` has ``<at>name</at>``.

        Returns ``{"messageId", "postConversationId", "timestamp"}``; in a channel the
        ``postConversationId`` (``<channel>;messageid=<id>``) is the thread the bot replies in.
        """
        cfg = await self._cfg()
        body: Json = {
            "from": {"id": user_id or cfg.current_user_id},
            "textFormat": "plain",
            "text": text,
        }
        if mention_bot:
            tag = f"<at>{cfg.bot_name}</at>"
            body["text"] = f"{tag} {text}"
            body["mentions"] = [{"mentioned": {"id": cfg.bot_id}, "text": tag}]
        if people:
            mentions = body.setdefault("mentions", [])
            for person in people:
                tag = f"<at>{person['name']}</at>"
                mentions.append({"mentioned": {"id": person["id"]}, "text": tag})
        path = f"/_conversation/v1/conversations/{quote(conversation_id, safe='')}/messages"
        result: Json = await self._call("POST", path, body)
        return result

    async def invoke_action(
        self,
        conversation_id: str,
        reply_to_id: str,
        verb: str,
        data: Json,
        *,
        user_id: str | None = None,
        title: str = "",
    ) -> Any:
        """Click an ``Action.Execute`` button on message ``reply_to_id``; return the invoke body.

        For a card posted in a channel pass its ``postConversationId`` as ``conversation_id``.
        """
        action = {"type": "Action.Execute", "title": title, "verb": verb, "data": data}
        return await self._call(
            "POST",
            "/_conversation/v1/invoke",
            {
                "name": "adaptiveCard/action",
                "from": {"id": await self._user(user_id)},
                "conversation": {"id": conversation_id},
                "replyToId": reply_to_id,
                "value": {"action": action},
            },
        )

    async def submit(
        self, conversation_id: str, reply_to_id: str, value: Json, *, user_id: str | None = None
    ) -> Any:
        """Click an ``Action.Submit`` button on message ``reply_to_id`` with ``value``."""
        return await self._call(
            "POST",
            "/_conversation/v1/submit",
            {
                "conversation": {"id": conversation_id},
                "from": {"id": await self._user(user_id)},
                "replyToId": reply_to_id,
                "value": value,
            },
        )

    async def _user(self, user_id: str | None) -> str:
        return user_id or (await self._cfg()).current_user_id

    @contextlib.asynccontextmanager
    async def stream(self) -> AsyncIterator[ConversationStream]:
        """Connect to the conversation websocket for the block; frames queued before are replayed
        to the first client only."""
        ws = await self._http().ws_connect(STREAM_PATH)
        stream = ConversationStream(ws)
        try:
            yield stream
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> PlaygroundClient:
        """Return the client."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.aclose()
