"""``@Warden link deployment <name> to CHG…``: an ARM deployment recorded under a change.

Warden is connected to the ARM sandbox (Sentinel and ARM deployments) and the ServiceNow
sandbox. The deployment is one Warden read for an incident's resource (``arm.deployments``);
the change is read from ServiceNow before anything is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from core.settings.servicenow import ServiceNowSettings
from core.store import deployments as deployments_store
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.arm_deployments import deploy_to_incident
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import Desk, connected_settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox with 20 seeded resources."""
    sandbox = ArmSandbox()
    sandbox.resource_graph.seed(20, random_seed=4)
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


async def _desk(start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox) -> Desk:
    """A card for an incident whose resource was deployed by ``webapp-release-9``, settled."""
    servicenow = ServiceNowSettings(
        instance_url=snow.url, username=snow.username, password=SecretStr(snow.password)
    )
    warden = await start_warden(**connected_settings(arm, servicenow=servicenow))
    conversation = await warden.subscribed_channel()
    made = arm.create_incident({"title": "Crypto miner on a VM", "severity": "High"})
    stored = arm.workspace().incidents[str(made["name"]).lower()]
    resource = sorted(arm.resource_graph.rows)[0]
    deploy_to_incident(arm.deployments, stored, resource, 20, "webapp-release-9")
    assert (await warden.webhook(made)).status == 202
    desk = Desk(warden, arm, conversation, str(made["name"]))
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
    await desk.settled()
    return desk


async def _links(desk: Desk) -> list[tuple[str, str]]:
    """(deployment name, change) of every stored link of ``webapp-release-9``."""
    found = await deployments_store.by_name(desk.store, "webapp-release-9")
    return [
        (x.deployment_name, x.change) for x in await deployments_store.links_of(desk.store, found)
    ]


async def test_link_deployment_records_change_with_who_and_when(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """A seen deployment and an existing change: linked once, by the person who typed it;
    typing it again says it already was."""
    desk = await _desk(start_warden, arm, snow)
    change = snow.create("change_request", {"short_description": "Release 9", "state": "-4"})
    answer = str(
        await desk.warden.say(
            desk.conversation, f"link deployment webapp-release-9 to {change['number']}"
        )
    )
    assert f"Linked deployment webapp-release-9 to {change['number']}" in answer
    found = await deployments_store.by_name(desk.store, "WEBAPP-release-9")
    links = await deployments_store.links_of(desk.store, found)
    assert [(x.change, x.deployment_name) for x in links] == [
        (change["number"], "webapp-release-9")
    ]
    assert links[0].linked_by and links[0].linked_by != "a Teams user"
    again = str(
        await desk.warden.say(
            desk.conversation, f"link deployment webapp-release-9 to {change['number']}"
        )
    )
    assert "was already linked" in again
    assert len(await _links(desk)) == 1


async def test_link_deployment_unknown_deployment_or_change_refused_nothing_stored(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """An unseen deployment, or a change ServiceNow does not have, is refused with the
    reason; no link is stored."""
    desk = await _desk(start_warden, arm, snow)
    change = snow.create("change_request", {"short_description": "Release 9", "state": "-4"})
    unseen = str(
        await desk.warden.say(desk.conversation, f"link deployment never-ran to {change['number']}")
    )
    assert "Warden has seen no deployment named never-ran" in unseen
    unknown = str(
        await desk.warden.say(desk.conversation, "link deployment webapp-release-9 to CHG0099999")
    )
    assert "No ServiceNow record CHG0099999 that Warden can read" in unknown
    assert await _links(desk) == []
