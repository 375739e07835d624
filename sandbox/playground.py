"""Run the Microsoft 365 Agents Playground (npm ``@microsoft/m365agentsplayground``) and drive it.

``start_playground`` launches the Playground's Node CLI headless as a Teams client emulator with its
own mock Bot Connector; ``PlaygroundClient`` plays the people in it through the same HTTP and
websocket API its web page uses. Facts about its behaviour: ``docs/dev/agents-playground.md``.
Depends on aiohttp and the standard library only, never on Warden's own packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@microsoft/m365agentsplayground"
CONFIG_FILE_NAME = ".m365agentsplayground.yml"
STREAM_PATH = "/_ws_conversation/v1/conversations/stream"
_LISTENING = re.compile(rb"Listening on (\d+)")
_REQUIRED_KEYS = "version tenantId bot currentUser users personalChat groupChat team"
_OWN_ENV_PREFIXES = ("M365_AGENTS_PLAYGROUND_", "TEAMSAPPTESTER_", "TEAMS_APP_TEST_TOOL_")

Json = dict[str, Any]


class PlaygroundError(RuntimeError):
    """The Playground could not be started, or it answered a request with an error."""


_DEFAULT_USERS = "Alex Wilber,Megan Bowen,Adele Vance,Isaiah Langer,Patti Fernandez,Lynne Robbins"


def _user(n: int, name: str) -> Json:
    given, surname = name.split()
    mail = f"{given.lower()}{surname[0].lower()}@example.com"
    return {
        "id": f"user-id-{n}",
        "name": name,
        "userPrincipleName": mail,
        "email": mail,
        "aadObjectId": f"00000000-0000-0000-0000-00000000000{20 + n}",
        "givenName": given,
        "surname": surname,
    }


def default_config() -> Json:
    """Return the Playground's built-in configuration with fixed chat ids, ready to edit.

    The schema (config version 0.1.1) requires every key shown; ``users`` must hold exactly 5
    users and ``team.channels`` at most 1 channel (the General channel, whose id is the team id,
    is always added). ``userPrincipleName`` is spelled that way by the Playground.
    """
    users = [_user(n, name) for n, name in enumerate(_DEFAULT_USERS.split(","))]
    team_channels = [{"id": "channel-announcements-id", "name": "Announcements"}]
    return {
        "version": "0.1.1",
        "tenantId": "00000000-0000-0000-0000-0000000000001",
        "bot": {"id": "00000000-0000-0000-0000-00000000000011", "name": "Test Bot"},
        "currentUser": users[0],
        "users": users[1:],
        "personalChat": {"id": "personal-chat-id"},
        "groupChat": {"id": "group-chat-id", "name": "Group Chat"},
        "team": {
            "id": "team-id",
            "name": "My Team",
            "channels": team_channels,
            "aadGroupId": "00000000-0000-0000-0000-000000000031",
        },
    }


def write_config(workdir: Path, config: Mapping[str, Any]) -> Path:
    """Check ``config`` against the Playground's rules; write it to ``.m365agentsplayground.yml``.

    The file holds JSON, which the Playground's YAML 1.2 parser reads as is. Raises
    ``PlaygroundError`` for what the Playground would otherwise reject only after starting.
    """
    missing = set(_REQUIRED_KEYS.split()) - set(config)
    if missing:
        raise PlaygroundError(f"Playground config lacks {sorted(missing)}")
    if len(config["users"]) != 5 or len(config["team"].get("channels", [])) > 1:
        raise PlaygroundError("Playground config needs exactly 5 users and at most 1 channel")
    path = workdir / CONFIG_FILE_NAME
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


class Playground:
    """One Playground process; ``url`` is valid between ``start()`` and ``stop()``.

    Use ``start_playground(...)`` or ``async with Playground(...)``. It listens on all interfaces;
    ``url`` uses 127.0.0.1, ``browser_url`` is the address it announces (``http://localhost:PORT``).
    """

    def __init__(
        self,
        bot_endpoint: str,
        *,
        workdir: Path,
        port: int = 0,
        config: Mapping[str, Any] | None = None,
        node_modules: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        """Remember the settings; nothing starts before ``start()``."""
        self.bot_endpoint = bot_endpoint
        self.workdir = Path(workdir)
        self.requested_port = port
        self.config = config
        self.node_modules = Path(node_modules) if node_modules else REPO_ROOT / "node_modules"
        self.startup_timeout = startup_timeout
        self.log_path = self.workdir / "devTools" / "m365agentsplayground.log"
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._drains: list[asyncio.Task[None]] = []
        self._output: deque[str] = deque(maxlen=40)

    @property
    def url(self) -> str:
        """Base address for API calls, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._started_port()}"

    @property
    def browser_url(self) -> str:
        """The address to open in a browser to use the Playground as a person would."""
        return f"http://localhost:{self._started_port()}"

    @property
    def service_url(self) -> str:
        """The mock Bot Connector address the Playground puts in activities' ``serviceUrl``."""
        return f"http://localhost:{self._started_port()}/_connector"

    def _started_port(self) -> int:
        if not self.port:
            raise PlaygroundError("the Playground is not running")
        return self.port

    def _command(self) -> list[str]:
        cli = self.node_modules / PACKAGE / "cli.js"
        if not cli.is_file():
            raise PlaygroundError(f"{cli} is missing: run `npm ci` in {REPO_ROOT}")
        node = shutil.which("node")
        if node is None:
            raise PlaygroundError("`node` is not on PATH; install Node.js 20")
        flags = f"-c msteams --disable-telemetry -p {self.requested_port}".split()
        return [node, str(cli), "start", "-e", self.bot_endpoint, *flags]

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_ENV_PREFIXES)}
        env["TEAMSAPPTESTER_BROWSER"] = "none"
        env["M365_AGENTS_PLAYGROUND_LOGFILE"] = str(self.log_path)
        # It sends to the bot through HTTP(S)_PROXY unless NO_PROXY exempts the host.
        no_proxy = [env.get("NO_PROXY") or env.get("no_proxy") or "", "localhost,127.0.0.1,::1"]
        env["NO_PROXY"] = env["no_proxy"] = ",".join(filter(None, no_proxy))
        return env

    async def start(self) -> None:
        """Launch the CLI; return once its API answers, else raise ``PlaygroundError`` with logs."""
        command = self._command()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            write_config(self.workdir, self.config)
        self._proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=self.workdir,
            env=self._environment(),
            start_new_session=True,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stderr is not None
        self._drains.append(asyncio.create_task(self._drain(self._proc.stderr, self._output)))
        try:
            self.port = await asyncio.wait_for(self._read_port(), self.startup_timeout)
            await self._check_ready()
        except (TimeoutError, PlaygroundError, aiohttp.ClientError) as exc:
            await self.stop()
            raise PlaygroundError(
                f"the Playground did not start ({exc!r})\n{self.log_tail()}"
            ) from exc
        except BaseException:
            await self.stop()
            raise
        logger.info("Agents Playground on %s (bot %s)", self.url, self.bot_endpoint)

    async def _read_port(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while line := await stdout.readline():
            if match := _LISTENING.search(line):
                self._drains.append(asyncio.create_task(self._drain(stdout, self._output)))
                return int(match.group(1))
            self._output.append(line.decode(errors="replace").rstrip())
        raise PlaygroundError(f"the process exited with {await self._proc.wait()}")

    async def _check_ready(self) -> None:
        # Routes are mounted right after "Listening on"; a bad config leaves them unmounted (404).
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/_debug/ping") as r:
            if r.status != 200:
                raise PlaygroundError(f"/_debug/ping answered {r.status}")

    @staticmethod
    async def _drain(stream: asyncio.StreamReader, sink: deque[str]) -> None:
        while line := await stream.readline():
            sink.append(line.decode(errors="replace").rstrip())

    def log_tail(self, lines: int = 30) -> str:
        """Return the process's last output lines and its log file's tail, for error messages."""
        try:
            log = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            log = []
        out = "\n".join(self._output) or "(empty)"
        tail = "\n".join(log[-lines:]) or "(empty)"
        return f"--- output ---\n{out}\n--- {self.log_path} ---\n{tail}"

    async def stop(self, grace: float = 5.0) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL) and reap it; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        drains, self._drains = self._drains, []
        await asyncio.gather(*drains, return_exceptions=True)
        self.port = 0

    async def __aenter__(self) -> Playground:
        """Start the Playground."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the Playground."""
        await self.stop()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


@contextlib.asynccontextmanager
async def start_playground(
    bot_endpoint: str,
    *,
    workdir: Path,
    port: int = 0,
    config: Mapping[str, Any] | None = None,
    node_modules: Path | None = None,
    startup_timeout: float = 30.0,
) -> AsyncIterator[Playground]:
    """Run a Playground talking to ``bot_endpoint`` for the ``async with`` block, then stop it."""
    async with Playground(
        bot_endpoint,
        workdir=workdir,
        port=port,
        config=config,
        node_modules=node_modules,
        startup_timeout=startup_timeout,
    ) as pg:
        yield pg


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
    ) -> Json:
        """Post ``text`` as a user (``<at>bot</at> text`` if ``mention_bot``).

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
