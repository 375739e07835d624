"""One incident from two sources, triaged and linked to Jira, in the Agents Playground.

Warden is connected as ``make run`` connects it: the ARM sandbox (Sentinel, Resource Graph,
ARM deployments), the Graph sandbox (Defender XDR, polled) and the JSM sandbox. Defender XDR
raises an incident and Sentinel reports the same one (its ``providerIncidentId`` is the XDR
id); the incident names an Azure resource the CMDB holds, deployed 12 minutes before the first
alert. The responder (the Playground's Alex Wilber) sees ONE card with both sources, the
resource's CI and the deployment, assigns it to himself and links it to a JSM issue from chat.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from app import STORE, create_app
from connectors.resourcegraph.mapping import ci_from_row
from core.settings.jsm import JsmSettings
from core.store import cmdb_cis
from sandbox.arm import ArmSandbox
from sandbox.graph import GraphSandbox
from sandbox.jsm import JsmSandbox
from sandbox.playground import Playground
from sandbox.playground_client import Frame, PlaygroundClient
from tests.e2e.card_support import STEP_SECONDS, content, triage_data
from tests.integration.triage_support import connected_settings
from tests.processes import free_port
from tests.support import make_settings, signed

pytestmark = [pytest.mark.e2e, pytest.mark.arm_deployments(random_seed=7)]

URL = web.AppKey("url", str)
TITLE = "Web shell dropped on a finance App Service"


@pytest.fixture
async def warden(
    tmp_path: Path, sqlite_url: str, arm: ArmSandbox, defender_graph: GraphSandbox, jsm: JsmSandbox
) -> AsyncIterator[web.Application]:
    """Warden on a free local port, connected to the three sandboxes."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        port=port,
        **connected_settings(arm, graph_endpoint=defender_graph.graph_url),
        defender={"enabled": True, "poll_seconds": 0.3},
        jsm=JsmSettings(
            base_url=jsm.url,
            email=jsm.email,
            api_token=SecretStr(jsm.api_token),
            poll_seconds=3600,
        ),
    )
    app = create_app(settings)
    app[URL] = f"http://127.0.0.1:{port}"
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app
    finally:
        await runner.cleanup()


@pytest.fixture
def warden_url(warden: web.Application) -> str:
    """The ``teams`` fixture's bot: Warden's address."""
    return str(warden[URL])


async def test_playground_one_card_from_two_sources_triaged_and_linked_to_jira(
    teams: tuple[Playground, PlaygroundClient],
    warden: web.Application,
    arm: ArmSandbox,
    defender_graph: GraphSandbox,
    jsm: JsmSandbox,
) -> None:
    """Defender and Sentinel report one incident: one card naming both, with the resource's
    CI and the deployment 12 minutes before the first alert; *Assign to me* lands in Sentinel
    with Alex's name; ``link <n> to SEC-4`` shows the Jira issue on the card."""
    _, client = teams
    config = await client.test_config()
    channel = config.general_channel_id
    seen = datetime.datetime.now(datetime.UTC)
    rows = list(arm.resource_graph.rows.values())
    cis = [ci_from_row(r, owner_tags=["owner"], env_tags=["env"], seen_at=seen) for r in rows]
    await cmdb_cis.store_page(warden[STORE], cis, 1, "{}")  # what `cmdb sync` leaves

    async with client.stream() as stream:
        await client.install(channel)
        await client.send_message(channel, "subscribe incidents from sentinel and defender")
        await stream.wait_for(lambda f: "Subscribed" in content(f) and "Defender" in content(f))

        xdr = defender_graph.security.add_incident({"displayName": TITLE, "status": "active"})
        twin = arm.create_incident(
            {
                "title": TITLE,
                "severity": "High",
                "providerName": "Microsoft XDR",
                "providerIncidentId": xdr["id"],
            }
        )
        deployed = arm.deploy_before_incident(twin["name"], "webapp-release-42", 12)
        resource = deployed["properties"]["outputResources"][0]["id"].rsplit("/", 1)[-1]
        body, headers = signed(arm.incident(twin["name"]))
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{warden[URL]}/api/webhooks/sentinel", data=body, headers=headers
            ) as answer,
        ):
            assert answer.status == 202

        def whole(frame: Frame) -> bool:
            text = content(frame)
            return (
                TITLE in text
                and "Sentinel and Defender XDR" in text
                and "Deployed webapp-release-42 12 minutes before the first alert" in text
                and resource in text
            )

        shown = await stream.wait_for(whole, timeout=STEP_SECONDS)
        assert shown.message_id is not None
        posts = [f for f in stream.frames if f.action == "createMessage" and TITLE in content(f)]
        assert len({f.message_id for f in posts}) == 1, "the incident was posted twice"
        thread = posts[0].post_conversation_id or channel

        def latest() -> Frame:
            return [f for f in stream.frames if f.message_id == shown.message_id][-1]

        mark = stream.mark()
        await client.invoke_action(
            thread, str(shown.message_id), "incident.assign_me", triage_data(latest())
        )
        done = await stream.wait_for(
            lambda f: f.message_id == shown.message_id and "Done" in content(f),
            since=mark,
            timeout=STEP_SECONDS,
        )
        assert "Alex Wilber" in content(done)

        number = arm.incident(twin["name"])["properties"]["incidentNumber"]
        mark = stream.mark()
        await client.send_message(channel, f"link {number} to SEC-4")
        linked = await stream.wait_for(
            lambda f: f.message_id == shown.message_id and "SEC-4" in content(f),
            since=mark,
            timeout=STEP_SECONDS,
        )
        assert "webapp-release-42" in content(linked), "the link redraw lost the deployment"

    owner = arm.incident(twin["name"])["properties"]["owner"]
    assert owner["objectId"] == config.users[0]["aadObjectId"]
    assert len({f.message_id for f in stream.frames if TITLE in content(f)}) == 1
