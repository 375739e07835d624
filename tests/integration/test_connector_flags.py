"""Feature flags per connector: a connector switched off starts nothing, says so, loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import SecretStr

from app import STORE
from connectors import registry
from core.settings.connectors import ConnectorFlag, ConnectorFlags
from core.settings.servicenow import ServiceNowSettings
from core.store import links as links_store
from core.store import outbox
from core.store.links import ITSM_CREATE_JOB
from core.triage import Actor
from sandbox.arm import ArmSandbox
from sandbox.sentinel_samples import sample_incident
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import connected_settings, open_desk


def _flags(**off: bool) -> ConnectorFlags:
    return ConnectorFlags(**{name: ConnectorFlag(enabled=not o) for name, o in off.items()})


def _snow(snow: ServiceNowSandbox) -> ServiceNowSettings:
    return ServiceNowSettings(
        instance_url=snow.url, username=snow.username, password=SecretStr(snow.password)
    )


def _facts(card: dict[str, Any]) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for item in card["body"]
        if item.get("type") == "FactSet"
        for fact in item["facts"]
    }


async def test_sentinel_off_refuses_its_webhook_and_subscribe_says_why(
    start_warden: WardenFactory,
) -> None:
    """The webhook answers 503 `connector-off` and stores nothing; `subscribe incidents`
    names the flag; /readyz stays ready and shows the connector off with its version."""
    warden = await start_warden(connectors=_flags(sentinel=True))

    response = await warden.webhook(sample_incident())
    problem = await response.json()
    assert response.status == 503
    assert problem["type"].endswith("/connector-off")
    assert "WARDEN_CONNECTORS__SENTINEL__ENABLED" in problem["detail"]
    assert await warden.jobs() == 0

    conversation = "19:soc@thread.tacv2"
    await warden.install(conversation)
    card = await warden.say(conversation, "subscribe incidents")
    assert "switched off" in str(card)
    assert "WARDEN_CONNECTORS__SENTINEL__ENABLED=true" in str(card)
    status = _facts(await warden.say(conversation, "status"))
    assert status["Subscription"] == "Not subscribed"
    assert status["Microsoft Sentinel"] == f"off · v{registry.BY_NAME['sentinel'].version}"

    ready = await (await warden.client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["checks"]["connectors"]["sentinel"]["state"] == "off"
    assert ready["checks"]["connectors"]["servicenow"]["state"] == "not configured"


async def test_servicenow_off_makes_no_call_and_holds_its_queued_work(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """Configured but switched off: `link` says so, ServiceNow hears nothing, and a change
    request queued for it waits in the outbox (unspent attempts, the reason given)."""
    desk = await open_desk(
        start_warden, arm, servicenow=_snow(snow), connectors=_flags(servicenow=True)
    )
    before = len(snow.requests)

    number = desk.arm.incident(desk.name)["properties"]["incidentNumber"]
    card = await desk.warden.say(desk.conversation, f"link {number} to CHG0030001")
    assert "WARDEN_CONNECTORS__SERVICENOW__ENABLED=true" in str(card)

    store = desk.warden.client.app[STORE]
    await links_store.request_change(store, desk.key, Actor(object_id="u-1", name="Avery"))
    for _ in range(100):
        held = [j for j in await outbox.list_jobs(store, None, 50) if j.kind == ITSM_CREATE_JOB]
        if held and held[0].last_error:
            break
        await asyncio.sleep(0.05)
    assert held[0].status == outbox.PENDING
    assert held[0].attempts == 0
    assert "WARDEN_CONNECTORS__SERVICENOW__ENABLED=false" in (held[0].last_error or "")
    assert len(snow.requests) == before  # nothing was sent to ServiceNow


async def test_servicenow_flag_on_by_default_runs_the_connector(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """The flag's default is on: the same settings without it link and call ServiceNow."""
    warden = await start_warden(**connected_settings(arm, servicenow=_snow(snow)))
    ready = await (await warden.client.get("/readyz")).json()
    assert ready["checks"]["connectors"]["servicenow"]["state"] == "on"
    assert ready["checks"]["connectors"]["sentinel"]["state"] == "on"
