"""Configuration items on the incident card: the CMDB CIs matching the incident's entities.

Warden is connected to the ARM sandbox (Sentinel: the incident and its entities) and the
ServiceNow sandbox (its seeded CMDB); the card is posted, the ``itsm.cmdb`` job reads the
entities and looks them up through the Table API, and the card is redrawn with what matched.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from app import WORKER
from core.settings.servicenow import ServiceNowSettings
from core.store import cmdb as cmdb_store
from core.store import outbox
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.sentinel_samples import updated_incident
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import Desk, connected_settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

WEB = ("web-prd-01", "10.20.1.11")
"""A seeded CI's name and IP address (``sandbox/servicenow_seed.py``)."""


@pytest.fixture
async def sandboxes() -> AsyncIterator[tuple[ArmSandbox, ServiceNowSandbox]]:
    """The ARM sandbox (Sentinel: incidents and entities) and the ServiceNow sandbox (its
    seeded CMDB)."""
    async with run_arm_sandbox() as arm, run_servicenow_sandbox() as snow:
        yield arm, snow


def _entity(kind: str, friendly_name: str, **properties: str) -> dict[str, Any]:
    """An entity as Incidents_ListEntities answers it."""
    name = str(uuid.uuid4())
    return {
        "id": f"/subscriptions/s/providers/Microsoft.SecurityInsights/Entities/{name}",
        "name": name,
        "type": "Microsoft.SecurityInsights/Entities",
        "kind": kind,
        "properties": {"friendlyName": friendly_name, **properties},
    }


def _host_and_ip(host: str, address: str) -> list[dict[str, Any]]:
    """An account (never looked up), a host and an IP address."""
    return [
        _entity("Account", "ada", accountName="ada", upnSuffix="contoso.com"),
        _entity("Host", host, hostName=host, dnsDomain="contoso.com"),
        _entity("Ip", address, address=address),
    ]


async def _desk(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    snow: ServiceNowSandbox,
    entities: list[dict[str, Any]],
) -> Desk:
    """A channel showing the card of a new incident whose entities are ``entities``."""
    settings = ServiceNowSettings(
        instance_url=snow.url, username=snow.username, password=SecretStr(snow.password)
    )
    warden = await start_warden(**connected_settings(arm, servicenow=settings))
    conversation = await warden.subscribed_channel()
    made = arm.create_incident({"title": "Beaconing from a web server", "severity": "High"})
    arm.workspace().incidents[str(made["name"]).lower()].entities = entities
    assert (await warden.webhook(made)).status == 202
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
    return Desk(warden, arm, conversation, made["name"])


def _cmdb_queries(snow: ServiceNowSandbox) -> int:
    """How many requests Warden made to the CMDB table."""
    return sum(1 for r in snow.requests if r.table == "cmdb_ci" and r.status == 200)


async def test_card_entities_naming_seeded_ci_show_it_after_outbox_settles(
    start_warden: WardenFactory, sandboxes: tuple[ArmSandbox, ServiceNowSandbox]
) -> None:
    """A host and an IP naming one seeded CI: the card lists it once (name, class, env,
    owner), under a *Configuration items* heading; the set is stored for the incident."""
    arm, snow = sandboxes
    desk = await _desk(start_warden, arm, snow, _host_and_ip(*WEB))
    await desk.settled()
    card = str(desk.card())
    assert "Configuration items" in card
    assert "web-prd-01" in card
    assert "Linux Server \u00b7 Production \u00b7 David Loo" in card
    assert card.count("web-prd-01") == 1
    stored = await cmdb_store.ci_set(desk.store, desk.key)
    assert stored is not None and [ci.name for ci in stored.items] == ["web-prd-01"]
    assert stored.items[0].owner == "David Loo"


async def test_card_entities_matching_no_ci_show_no_section(
    start_warden: WardenFactory, sandboxes: tuple[ArmSandbox, ServiceNowSandbox]
) -> None:
    """Entities that match no CI: an empty set is stored, the card has no CI section and is
    not redrawn for it."""
    arm, snow = sandboxes
    desk = await _desk(start_warden, arm, snow, _host_and_ip("WKS-0042", "203.0.113.9"))
    await desk.settled()
    assert "Configuration items" not in str(desk.card())
    assert desk.warden.connector.updates(desk.conversation) == []
    stored = await cmdb_store.ci_set(desk.store, desk.key)
    assert stored is not None and stored.items == [] and stored.stamp is None
    assert _cmdb_queries(snow) == 1


async def test_card_servicenow_down_then_up_ci_appears(
    start_warden: WardenFactory, sandboxes: tuple[ArmSandbox, ServiceNowSandbox]
) -> None:
    """ServiceNow down when the card is posted: the lookup waits in the outbox and the card
    shows no CI; once ServiceNow is back the lookup is retried and the card shows the CI."""
    arm, snow = sandboxes
    snow.down()
    desk = await _desk(start_warden, arm, snow, _host_and_ip(*WEB))

    async def lookup_failed() -> bool:
        jobs = await outbox.list_jobs(desk.store, outbox.PENDING)
        return any(j.kind == cmdb_store.CMDB_JOB and j.attempts >= 1 for j in jobs)

    await desk.warden.client.app[WORKER].wait_until(lookup_failed)
    assert "Configuration items" not in str(desk.card())
    snow.up()
    await desk.settled()
    card = str(desk.card())
    assert "web-prd-01" in card and "Production" in card
    done = [j for j in await outbox.list_jobs(desk.store) if j.kind == cmdb_store.CMDB_JOB]
    assert [j.status for j in done] == [outbox.DONE]


async def test_card_alert_count_change_looks_up_again(
    start_warden: WardenFactory, sandboxes: tuple[ArmSandbox, ServiceNowSandbox]
) -> None:
    """A new version with the same alert count looks nothing up again; one with another alert
    count does, and the card follows the CIs its entities now name."""
    arm, snow = sandboxes
    desk = await _desk(start_warden, arm, snow, _host_and_ip("WKS-0042", "203.0.113.9"))
    await desk.settled()
    assert _cmdb_queries(snow) == 1
    stored = arm.workspace().incidents[desk.name.lower()]
    stored.entities = _host_and_ip("dc-prd-01", "10.20.0.5")
    same = updated_incident(stored.render())
    same["properties"]["additionalData"]["alertsCount"] -= 1
    assert (await desk.warden.webhook(same)).status == 202
    await desk.settled()
    assert "Configuration items" not in str(desk.card())
    assert _cmdb_queries(snow) == 1
    newer = updated_incident(same)
    assert (await desk.warden.webhook(newer)).status == 202
    await desk.settled()
    card = str(desk.card())
    assert "dc-prd-01" in card and "Windows Server \u00b7 Production" in card
    assert _cmdb_queries(snow) == 2
