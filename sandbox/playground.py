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
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

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
        "aadObjectId": f"00000000-0000-0000-0000-0000000000{20 + n}",
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
        "bot": {"id": "00000000-0000-0000-0000-00000000000011", "name": "Warden"},
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
