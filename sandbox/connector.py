"""Local Bot Framework Connector (REST API v3) server speaking the real wire format.

Use it from tests::

    async with run_connector_sandbox() as sandbox:
        # sandbox.url is the serviceUrl, e.g. "http://127.0.0.1:54321/"
        ...
        entries = await sandbox.wait_for(lambda s: s.posts("19:abc@thread.tacv2"))

or standalone: ``python -m sandbox.connector --port 0``.

Connector routes (bodies validated against contracts/botframework-activity-v3.schema.json):
``POST /v3/conversations``, ``POST /v3/conversations/{id}/activities``,
``POST|PUT|DELETE /v3/conversations/{id}/activities/{activityId}``,
``GET /v3/conversations/{id}/members``, ``GET /v3/conversations/{id}/pagedmembers``,
``GET /v3/teams/{teamId}`` (its ``aadGroupId`` is what ``sandbox.graph`` takes as team id).
The control API lives under ``/_sandbox/`` (see ``sandbox.connector_control``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from aiohttp import web

from sandbox.connector_api import add_connector_routes, connector_middleware
from sandbox.connector_control import add_control_routes
from sandbox.connector_faults import Clock, Fault, FaultQueue, RateLimiter
from sandbox.connector_records import (
    ActivityIdFactory,
    ConnectorError,
    RequestRecord,
    StoredActivity,
    default_members,
)
from sandbox.request_log import RequestLog

__all__ = ["SANDBOX_KEY", "ConnectorSandbox", "Fault", "RequestRecord", "run_connector_sandbox"]

logger = logging.getLogger("sandbox.connector")

T = TypeVar("T")

_POSTS = frozenset({"SendToConversation", "ReplyToActivity"})


class ConnectorSandbox(RequestLog[RequestRecord]):
    """State and behaviour of one fake Connector: conversations, request log, faults.

    Not thread-safe: use it from the event loop that serves its app.
    """

    def __init__(
        self,
        *,
        require_auth: bool = False,
        rate_limit: bool = False,
        members: Sequence[dict[str, Any]] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """Create an empty sandbox.

        ``require_auth``: answer 401 to Connector calls without ``Authorization: Bearer``
        (the token itself is not verified). ``rate_limit``: enforce Teams' limits.
        ``members``: what the members endpoints return. ``clock``: for the rate limiter.
        """
        super().__init__("connector sandbox")
        self.require_auth = require_auth
        self.rate_limit = rate_limit
        self.members: list[dict[str, Any]] = list(members) if members else default_members()
        self.faults = FaultQueue()
        self.down = False
        self.down_retry_after: float | None = None
        self.rate_limiter = RateLimiter(clock=clock)
        self.url = ""
        self._ids = ActivityIdFactory()
        self._conversations: dict[str, dict[str, StoredActivity]] = {}
        self._removed: set[str] = set()
        self._app: web.Application | None = None

    @property
    def app(self) -> web.Application:
        """The aiohttp application serving this sandbox (built on first use)."""
        if self._app is None:
            self._app = self.make_app()
        return self._app

    def make_app(self) -> web.Application:
        """Build a new aiohttp application backed by this sandbox's state."""
        app = web.Application(middlewares=[connector_middleware(self)])
        app[SANDBOX_KEY] = self
        add_connector_routes(app, self)
        add_control_routes(app, self)
        return app

    # Conversations and activities.

    def next_activity_id(self) -> str:
        """Return a new unique Teams-like activity id (13-digit millisecond stamp)."""
        return self._ids.next_id()

    def is_removed(self, conversation_id: str) -> bool:
        """Tell whether the bot was removed from this conversation (or its parent thread)."""
        return _base(conversation_id) in self._removed

    def remove_conversation(self, conversation_id: str) -> None:
        """Simulate removing the bot: later calls on this conversation answer 403."""
        self._removed.add(_base(conversation_id))

    def restore_conversation(self, conversation_id: str) -> None:
        """Undo ``remove_conversation``."""
        self._removed.discard(_base(conversation_id))

    def ensure_member(self, conversation_id: str) -> None:
        """Raise the 403 BotNotInConversationRoster error if the bot was removed."""
        if self.is_removed(conversation_id):
            raise ConnectorError(
                403,
                "BotNotInConversationRoster",
                "The bot is not part of the conversation roster.",
            )

    def open_conversation(self, conversation_id: str) -> None:
        """Make the conversation known (it may stay empty)."""
        self._conversations.setdefault(conversation_id, {})

    def post_activity(
        self,
        conversation_id: str,
        body: dict[str, Any],
        reply_to_id: str | None = None,
        *,
        owned: bool = False,
    ) -> StoredActivity:
        """Store a new activity (creating the conversation lazily) and return it; a copy of
        ``body`` unless it is ``owned`` (nobody else holds it)."""
        self.ensure_member(conversation_id)
        stored = StoredActivity(
            id=self.next_activity_id(),
            conversation_id=conversation_id,
            body=body if owned else copy.deepcopy(body),
            reply_to_id=reply_to_id,
        )
        self._conversations.setdefault(conversation_id, {})[stored.id] = stored
        return stored

    def _related(self, conversation_id: str) -> list[str]:
        """Return the known conversation ids of the same channel, the given one first."""
        return [conversation_id] + [
            other
            for other in self._conversations
            if other != conversation_id and _base(other) == _base(conversation_id)
        ]

    def _lookup(self, conversation_id: str, activity_id: str) -> StoredActivity | None:
        """Return a stored activity, also looking in other threads of the same channel."""
        for candidate in self._related(conversation_id):
            found = self._conversations.get(candidate, {}).get(activity_id)
            if found is not None:
                return found
        return None

    def find_activity(self, conversation_id: str, activity_id: str) -> StoredActivity:
        """Return a stored activity, also looking in threads of the same channel.

        Raises ConnectorError 403 (bot removed) or 404 (ConversationNotFound /
        ActivityNotFound).
        """
        self.ensure_member(conversation_id)
        found = self._lookup(conversation_id, activity_id)
        if found is not None:
            return found
        if not any(other in self._conversations for other in self._related(conversation_id)):
            raise ConnectorError(404, "ConversationNotFound", "Conversation not found.")
        raise ConnectorError(404, "ActivityNotFound", "Activity not found in conversation.")

    def update_activity(
        self, conversation_id: str, activity_id: str, body: dict[str, Any], *, owned: bool = False
    ) -> StoredActivity:
        """Replace a stored activity's body (a copy unless ``owned``); raises ConnectorError
        403/404."""
        stored = self.find_activity(conversation_id, activity_id)
        stored.replace(body if owned else copy.deepcopy(body))
        return stored

    def delete_activity(self, conversation_id: str, activity_id: str) -> None:
        """Forget a stored activity; raises ConnectorError 403/404."""
        stored = self.find_activity(conversation_id, activity_id)
        del self._conversations[stored.conversation_id][stored.id]

    def has_conversation(self, conversation_id: str) -> bool:
        """Tell whether the conversation is known (opened, or posted to)."""
        return conversation_id in self._conversations

    def activities(self, conversation_id: str) -> list[StoredActivity]:
        """Return the activities currently stored in a conversation, oldest first."""
        return list(self._conversations.get(conversation_id, {}).values())

    def activity(self, conversation_id: str, activity_id: str) -> dict[str, Any]:
        """Return the current body of an activity; raises KeyError if it is not stored.

        Like the Connector, an activity of a channel is found through any of its threads.
        """
        found = self._lookup(conversation_id, activity_id)
        if found is None:
            raise KeyError(f"no activity {activity_id!r} in conversation {conversation_id!r}")
        return found.body

    # Faults.

    def add_fault(self, fault: Fault) -> Fault:
        """Queue a fault (see ``sandbox.connector_faults``) and return it."""
        return self.faults.add(fault)

    def set_down(self, down: bool = True, retry_after: float | None = None) -> None:
        """Switch the persistent "down" mode: every Connector call answers 503."""
        self.down = down
        self.down_retry_after = retry_after if down else None

    def clear_faults(self) -> None:
        """Drop queued faults and leave "down" mode (the rate limiter setting stays)."""
        self.faults.clear()
        self.set_down(False)

    def posts(
        self, conversation_id: str | None = None, *, successful: bool = False
    ) -> list[RequestRecord]:
        """Return logged sends and replies, optionally for one conversation / 2xx only."""
        return self._filter(_POSTS, conversation_id, None, successful)

    def updates(
        self,
        conversation_id: str | None = None,
        activity_id: str | None = None,
        *,
        successful: bool = False,
    ) -> list[RequestRecord]:
        """Return logged UpdateActivity calls, optionally filtered."""
        return self._filter({"UpdateActivity"}, conversation_id, activity_id, successful)

    def deletes(
        self,
        conversation_id: str | None = None,
        activity_id: str | None = None,
        *,
        successful: bool = False,
    ) -> list[RequestRecord]:
        """Return logged DeleteActivity calls, optionally filtered."""
        return self._filter({"DeleteActivity"}, conversation_id, activity_id, successful)

    def _filter(
        self,
        operations: frozenset[str] | set[str],
        conversation_id: str | None,
        activity_id: str | None,
        successful: bool,
    ) -> list[RequestRecord]:
        """Return log entries matching every given criterion."""
        return [
            entry
            for entry in self._log
            if entry.operation in operations
            and (conversation_id is None or entry.conversation_id == conversation_id)
            and (activity_id is None or entry.activity_id == activity_id)
            and (not successful or entry.ok)
        ]

    def reset(self) -> None:
        """Forget conversations, removals, the log, faults and rate-limit history."""
        self._conversations.clear()
        self._removed.clear()
        self._log.clear()
        self.clear_faults()
        self.rate_limiter.reset()


SANDBOX_KEY = web.AppKey("connector_sandbox", ConnectorSandbox)
"""Application key under which ``make_app`` stores its sandbox."""


def _base(conversation_id: str) -> str:
    """Return the conversation id without a ``;messageid=...`` thread suffix."""
    return conversation_id.split(";", 1)[0]


def _url_host(host: str) -> str:
    """Return the host as it must appear in a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@contextlib.asynccontextmanager
async def run_connector_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sandbox: ConnectorSandbox | None = None,
    require_auth: bool = False,
    rate_limit: bool = False,
) -> AsyncIterator[ConnectorSandbox]:
    """Serve a sandbox over HTTP for the duration of the block; yield it with ``url`` set.

    ``port=0`` picks a free port. ``require_auth``/``rate_limit`` apply only when
    no ``sandbox`` is given. ``sandbox.url`` ends with a slash (a bot's serviceUrl).
    """
    served = sandbox or ConnectorSandbox(require_auth=require_auth, rate_limit=rate_limit)
    runner = web.AppRunner(served.make_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        served.url = f"http://{_url_host(host)}:{bound_port}/"
        yield served
    finally:
        await runner.cleanup()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the standalone server's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.connector",
        description="Local Bot Framework Connector sandbox (Bot Connector REST API v3).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--require-auth", action="store_true", help="401 without a bearer token")
    parser.add_argument("--rate-limit", action="store_true", help="enforce Teams rate limits")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG logs requests)")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    """Run the sandbox until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with run_connector_sandbox(
        args.host, args.port, require_auth=args.require_auth, rate_limit=args.rate_limit
    ) as sandbox:
        logger.info("listening on %s", sandbox.url.rstrip("/"))
        await stop.wait()
    logger.info("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m sandbox.connector``: logs go to stdout via logging."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
