"""Steps the evidence journeys in the Playground share: ``make run``'s Warden on free ports, a
local HTTPS evidence page, an @mention of a colleague, the buttons of the evidence cards, and
the sandbox SharePoint's state read through its control API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from app import create_app
from core.settings import Settings
from sandbox.embedded import graph_port, tls_dir
from sandbox.playground_client import ConversationStream, Frame, PlaygroundClient
from tests.e2e.card_support import STEP_SECONDS, content
from tests.processes import free_port
from tests.support import make_settings
from wiring.sandboxes import PLAYGROUND_URL

T = TypeVar("T")

REQUIREMENT = "ISO27001-A.8.5-MFA-ADMINS"
"""In the example catalog: links accepted, two approvals needed."""

REPORT = b"Conditional Access: require MFA for every privileged role (policy CA-007, on)\n"
"""The evidence the owner links to."""


def make_run_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings as ``make run`` has them (sandbox mode, nothing connected), on free ports; links
    to this machine's ``localhost`` are allowed."""
    return make_settings(
        tmp_path,
        database_url,
        port=free_port(),
        playground_port=free_port(),
        sandbox_arm_port=free_port(),
        sandbox_graph_port=free_port(),
        sandbox_servicenow_port=free_port(),
        sandbox_jsm_port=free_port(),
        sandbox_azurite_port=0,  # Azurite only where a test ingests costs (it is heavy)
        evidence_link_hosts="localhost",
    )


@dataclass
class Running:
    """Warden as ``make run`` starts it, and where to reach its parts."""

    settings: Settings
    warden_url: str
    playground_url: str
    app: web.Application | None = None

    @property
    def ca(self) -> ssl.SSLContext:
        """A client context trusting the sandbox CA."""
        return ssl.create_default_context(cafile=str(tls_dir(self.settings) / "ca.pem"))

    @property
    def graph_url(self) -> str:
        """The sandbox Graph's base address."""
        return f"https://127.0.0.1:{graph_port(self.settings)}"

    async def sharepoint_state(self) -> dict[str, Any]:
        """The sandbox SharePoint's whole state (``GET /_sandbox/state``)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.graph_url}/_sandbox/state", ssl=self.ca) as answer,
        ):
            assert answer.status == 200
            state: dict[str, Any] = await answer.json()
            return state


@contextlib.asynccontextmanager
async def make_run(settings: Settings) -> AsyncIterator[Running]:
    """Warden with ``--playground`` (its sandboxes and the Playground) for the block."""
    app = create_app(settings, playground=True)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        playground = f"http://127.0.0.1:{settings.playground_port}"
        assert app[PLAYGROUND_URL].endswith(f":{settings.playground_port}")
        yield Running(settings, f"http://127.0.0.1:{settings.port}", playground, app)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def evidence_page(settings: Settings) -> AsyncIterator[str]:
    """A local HTTPS page serving ``REPORT`` with the sandbox certificate; yields its link."""

    async def report(_request: web.Request) -> web.Response:
        return web.Response(body=REPORT, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/reports/mfa-conditional-access.txt", report)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    folder = tls_dir(settings)
    context.load_cert_chain(folder / "server.pem", folder / "server-key.pem")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield f"https://localhost:{port}/reports/mfa-conditional-access.txt"
    finally:
        await runner.cleanup()


def button(frame: Frame, verb: str) -> dict[str, Any]:
    """The data of the card's ``verb`` button (also inside a *Show card*)."""

    def walk(node: Any) -> dict[str, Any] | None:
        if isinstance(node, dict):
            if node.get("verb") == verb:
                return dict(node["data"])
            children: list[Any] = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            return None
        return next((found for c in children if (found := walk(c)) is not None), None)

    found = walk([a.get("content") for a in frame.attachments])
    if found is None:
        raise AssertionError(f"the card has no {verb} button: {content(frame)[:500]}")
    return found


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """``read()`` until ``ok`` holds (the outbox files to SharePoint in the background)."""
    deadline = time.monotonic() + STEP_SECONDS
    value = await read()
    while time.monotonic() < deadline:
        if ok(value):
            return value
        await asyncio.sleep(0.1)  # the worker's write lands in another server: poll it
        value = await read()
    if ok(value):
        return value
    raise AssertionError(f"never held: {json.dumps(value, default=str)[:1500]}")


def sp_list(state: dict[str, Any], display_name: str) -> dict[str, Any]:
    """One list (or library) of the only site in ``state``."""
    [site] = state["sites"]
    [found] = [x for x in site["lists"] if x["display_name"] == display_name]
    return dict(found)


async def request_and_submit(
    client: PlaygroundClient, stream: ConversationStream, link: str
) -> Frame:
    """Alex asks Megan (by her Entra object id) for evidence; she submits ``link`` on her
    card. Returns the reviewers' card."""
    config = await client.test_config()
    channel = config.general_channel_id
    megan = config.users[1]
    await client.install(channel)
    await client.send_message(  # as a person asks: @mentioning the owner
        channel, f"request evidence {REQUIREMENT} from <at>{megan['name']}</at>", people=[megan]
    )
    owner = await stream.wait_for(
        lambda f: f.action == "createMessage" and "evidence.submit" in content(f),
        timeout=STEP_SECONDS,
    )
    assert "Multi-factor" in content(owner)
    data = {**button(owner, "evidence.submit"), "kind": "link", "link": link}
    answer = await click(client, owner, "evidence.submit", data, megan["id"])
    assert "evidence.submit" not in json.dumps(answer)  # her card now waits for review
    review = await stream.wait_for(lambda f: "evidence.approve" in content(f), timeout=STEP_SECONDS)
    return review


async def approve_twice(client: PlaygroundClient, stream: ConversationStream, review: Frame) -> str:
    """Adele Vance, then Isaiah Langer approve on the reviewers' ``review`` card (the catalog's
    requirement needs two); the card's content once it says who approved."""
    users = (await client.test_config()).users
    adele, isaiah = users[2], users[3]
    first = await click(
        client, review, "evidence.approve", button(review, "evidence.approve"), adele["id"]
    )
    assert "Approvals: 1 of 2" in json.dumps(first), f"Adele's approval refused: {first}"
    halfway = await stream.wait_for(
        lambda f: f.message_id == review.message_id and "Approvals: 1 of 2" in content(f),
        timeout=STEP_SECONDS,
    )
    approve = button(halfway, "evidence.approve")
    second = await click(client, review, "evidence.approve", approve, isaiah["id"])
    assert "Approved by" in json.dumps(second), f"Isaiah's approval refused: {second}"

    def approved(frame: Frame) -> bool:
        return frame.message_id == review.message_id and "Approved by" in content(frame)

    return content(await stream.wait_for(approved, timeout=STEP_SECONDS))


async def click(
    client: PlaygroundClient, card: Frame, verb: str, data: dict[str, Any], user_id: str
) -> Any:
    """Click ``verb`` on ``card`` (its first frame: where it was posted) as ``user_id``; the
    invoke's answer. A card just shown may not be recorded as posted yet (Warden records it
    once Teams answered the post): the click is repeated until Warden knows the card."""
    for _ in range(50):
        answer = await client.invoke_action(
            where(card), str(card.message_id), verb, data, user_id=user_id
        )
        if "Not available here" not in json.dumps(answer):
            return answer
        await asyncio.sleep(0.1)  # the post's record lands after Teams answered it
    raise AssertionError(f"Warden never knew card {card.message_id} was posted")


def where(frame: Frame) -> str:
    """The conversation to click a card's buttons in: its channel thread, or its chat."""
    return frame.post_conversation_id or frame.conversation_id
