"""ServiceNow in the Agents Playground: link an incident to a change from its card, close it.

Warden is connected to the ARM sandbox (Sentinel) and the ServiceNow sandbox as ``make run``
connects them (the sandbox's business rule calls Warden's webhook); the clicks are the
Playground's ``invoke`` API, made by its current user (Alex Wilber).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from app import create_app
from core.settings.servicenow import ServiceNowSettings
from sandbox.arm import ArmSandbox
from sandbox.playground import Playground
from sandbox.playground_client import Frame, PlaygroundClient
from sandbox.servicenow import ServiceNowSandbox
from tests.e2e.card_support import STEP_SECONDS, content, incident_card, triage_data
from tests.integration.triage_support import connected_settings
from tests.processes import free_port
from tests.support import make_settings

pytestmark = pytest.mark.e2e

HOOK_SECRET = "whsec_" + "cGxheWdyb3VuZC1zZXJ2aWNlbm93LWhvb2s="


@pytest.fixture
async def warden_url(
    tmp_path: Path, sqlite_url: str, arm: ArmSandbox, snow: ServiceNowSandbox
) -> AsyncIterator[str]:
    """Warden on a free local port, connected to both sandboxes; the rule calls it back."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        port=port,
        **connected_settings(arm),
        servicenow=ServiceNowSettings(
            instance_url=snow.url,
            username=snow.username,
            password=SecretStr(snow.password),
            webhook_secrets=[SecretStr(HOOK_SECRET)],
            poll_seconds=3600,
        ),
    )
    snow.set_business_rule(f"http://127.0.0.1:{port}/api/webhooks/servicenow", HOOK_SECRET)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_playground_link_incident_to_change_then_close_it(
    teams: tuple[Playground, PlaygroundClient],
    warden_url: str,
    arm: ArmSandbox,
    snow: ServiceNowSandbox,
) -> None:
    """*Link to ServiceNow…* on the card links the change (the card shows it); closing the
    incident on the card reaches the change as work notes and its Closed state; a change
    made in ServiceNow comes back to the card through the webhook."""
    _, client = teams
    config = await client.test_config()
    channel = config.general_channel_id
    change = snow.create(
        "change_request",
        {"short_description": "Block legacy auth for finance", "state": "-4"},
    )
    made = arm.create_incident(
        {"title": "Password spray against finance", "severity": "High", "status": "New"}
    )
    async with client.stream() as stream:
        card, thread = await incident_card(
            client, stream, channel, warden_url, made, "Password spray"
        )

        def latest() -> Frame:
            return [f for f in stream.frames if f.message_id == card.message_id][-1]

        data = {**triage_data(latest()), "record": change["number"]}
        answer = await client.invoke_action(thread, str(card.message_id), "incident.link", data)
        assert f"ServiceNow {change['number']}" in json.dumps(answer)
        mark = stream.mark()
        closing = {
            **triage_data(latest()),
            "classification": "TruePositive:SuspiciousActivity",
            "comment": "Legacy auth blocked",
        }
        await client.invoke_action(thread, str(card.message_id), "incident.close", closing)
        await stream.wait_for(
            lambda f: f.message_id == card.message_id and "Done" in content(f),
            since=mark,
            timeout=STEP_SECONDS,
        )
        deadline = time.monotonic() + STEP_SECONDS
        record = snow.record("change_request", change["sys_id"])
        while (record is None or record["state"] != "3") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            record = snow.record("change_request", change["sys_id"])
        assert record is not None and record["state"] == "3"
        notes = [n["value"] for n in snow.work_notes("change_request", change["sys_id"])]
        assert any("Closed" in n and "Alex Wilber" in n for n in notes)
        mark = stream.mark()
        snow.portal_update("change_request", change["sys_id"], {"state": "0"})
        reviewed = await stream.wait_for(
            lambda f: f.message_id == card.message_id and "Review" in content(f),
            since=mark,
            timeout=STEP_SECONDS,
        )
        assert change["number"] in content(reviewed)
