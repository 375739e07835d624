"""Triage in the Agents Playground: a responder clicks the card's buttons, Sentinel follows.

Warden is connected to the ARM sandbox (TLS, Entra token endpoint, Graph) as ``make run``
connects it; the incident exists in the sandbox Sentinel and reaches Warden by webhook; the
clicks are the Playground's ``invoke`` API, made by its current user (Alex Wilber).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app import create_app
from sandbox.arm import ArmSandbox
from sandbox.playground import Playground
from sandbox.playground_client import PlaygroundClient
from tests.e2e.card_support import STEP_SECONDS, content, incident_card, triage_data
from tests.integration.triage_support import connected_settings
from tests.processes import free_port
from tests.support import make_settings

pytestmark = pytest.mark.e2e


@pytest.fixture
async def warden_url(tmp_path: Path, sqlite_url: str, arm: ArmSandbox) -> AsyncIterator[str]:
    """Warden on a free local port, connected to the sandbox Sentinel."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        port=port,
        **connected_settings(arm),
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_playground_assign_rerate_comment_close_from_the_card(
    teams: tuple[Playground, PlaygroundClient], warden_url: str, arm: ArmSandbox
) -> None:
    """Assign to me, Severity, Comment and Close, clicked in the Playground: each lands in the
    sandbox Sentinel with the clicker's name, and the card shows the incident as it is."""
    _, client = teams
    config = await client.test_config()
    channel = config.general_channel_id
    made = arm.create_incident(
        {"title": "Impossible travel for a finance admin", "severity": "High", "status": "New"}
    )
    async with client.stream() as stream:
        card, thread = await incident_card(
            client, stream, channel, warden_url, made, "Impossible travel"
        )

        async def click(verb: str, inputs: dict[str, Any] | None = None) -> str:
            latest = [f for f in stream.frames if f.message_id == card.message_id][-1]
            data = {**triage_data(latest), **(inputs or {})}
            mark = stream.mark()
            answer = await client.invoke_action(thread, str(card.message_id), verb, data)
            assert answer["type"] == "application/vnd.microsoft.card.adaptive"
            done = await stream.wait_for(
                lambda f: (
                    f.action == "updateMessage"
                    and f.message_id == card.message_id
                    and "Done" in content(f)
                ),
                since=mark,
                timeout=STEP_SECONDS,
            )
            return content(done)

        assert "Alex Wilber" in await click("incident.assign_me")
        assert "MEDIUM" in await click("incident.severity", {"severity": "Medium"})
        await click("incident.comment", {"comment": "Blocked the sign-in; resetting MFA"})
        closed = await click(
            "incident.close",
            {"classification": "TruePositive:SuspiciousActivity", "comment": "Account secured"},
        )
        assert "Closed" in closed and "Reopen" in closed

    props = arm.incident(made["name"])["properties"]
    assert props["owner"]["objectId"] == config.users[0]["aadObjectId"]
    assert (props["severity"], props["status"]) == ("Medium", "Closed")
    assert props["classification"] == "TruePositive"
    comments = [c["properties"]["message"] for c in arm.comments(made["name"])]
    assert "Severity High \u2192 Medium by Alex Wilber via Teams" in comments
    assert any(c.startswith("Blocked the sign-in") and "Alex Wilber" in c for c in comments)
    assert any(c.startswith("Status New \u2192 Closed") for c in comments)
