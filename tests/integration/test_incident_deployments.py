"""Deployments and Azure CIs on the incident card: deployment-to-incident correlation.

Warden is connected to the ARM sandbox (Sentinel: the incident, its alerts and entities; ARM:
the deployments of resource groups). The incident names an Azure resource (an
``AzureResource`` entity) the CMDB holds as a CI; the card is posted, the ``arm.deployments``
job reads the incident's resources and their groups' deployments, and the card is redrawn
with the CI and the latest deployment before the first alert.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from app import WORKER
from connectors.resourcegraph.mapping import ci_from_row
from core.store import cmdb_cis, outbox
from core.store import deployments as deployments_store
from sandbox.arm import ArmSandbox, Fault
from sandbox.arm_deployments import deploy_to_incident, first_alert, quiet_resource
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import Desk, connected_settings

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.arm_deployments,
]


async def _synced_cmdb(desk: Desk) -> None:
    """The sandbox's resources stored as CMDB CIs (what a CMDB sync run leaves)."""
    seen = datetime.datetime.now(datetime.UTC)
    rows = list(desk.arm.resource_graph.rows.values())
    items = [ci_from_row(r, owner_tags=["owner"], env_tags=["env"], seen_at=seen) for r in rows]
    await cmdb_cis.store_page(desk.store, items, 1, "{}")


async def _desk(start_warden: WardenFactory, arm: ArmSandbox, **settings: object) -> Desk:
    """A channel subscribed to incidents, Warden connected to the sandbox (no card yet)."""
    warden = await start_warden(**connected_settings(arm, **settings))
    conversation = await warden.subscribed_channel()
    return Desk(warden, arm, conversation, "")


async def _incident_on(
    desk: Desk, *deployed: tuple[str, float], before_post: Callable[[str], object] | None = None
) -> tuple[str, str]:
    """A new incident naming a seeded resource no seeded deployment touched near its first
    alert, deployed (name, minutes before that alert; negative: after it) as given; its card
    posted (``before_post`` is given the resource id first). The resource's id and name."""
    made = desk.arm.create_incident({"title": "Web shell on an App Service", "severity": "High"})
    stored = desk.arm.workspace().incidents[str(made["name"]).lower()]
    rows = desk.arm.resource_graph.rows.values()
    row = quiet_resource(rows, desk.arm.deployments, first_alert(stored))
    for name, minutes in deployed:
        deploy_to_incident(desk.arm.deployments, stored, row["id"], minutes, name)
    desk.name = str(made["name"])
    if before_post is not None:
        before_post(row["id"])
    await _synced_cmdb(desk)
    assert (await desk.warden.webhook(made)).status == 202
    await desk.warden.connector.wait_for(
        lambda s: desk.warden.card_posts(desk.conversation) or None
    )
    return str(row["id"]), str(row["name"])


async def test_card_deployment_before_first_alert_shows_minutes_and_the_ci(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Of three deployments of the incident's resource (3 h and 12 min before the first
    alert, one after it), the card names the 12-minute one, and lists the resource's CI."""
    desk = await _desk(start_warden, arm)
    resource_id, name = await _incident_on(
        desk, ("infra-old", 180), ("webapp-release-42", 12), ("hotfix-after", -5)
    )
    await desk.settled()
    card = str(desk.card())
    assert "Deployed webapp-release-42 12 minutes before the first alert" in card
    assert "infra-old" not in card and "hotfix-after" not in card
    assert "Configuration items" in card and name in card
    view = await deployments_store.incident_deployments(desk.store, desk.key, 24 * 3600)
    assert view.resources == [resource_id.lower()]
    assert view.note is not None and view.note.minutes == 12
    stored = desk.arm.workspace().incidents[desk.name.lower()]
    assert first_alert(stored).tzinfo is not None
    assert arm.calls("DeploymentOperations_List", successful=True)


async def test_card_deployment_outside_lookback_is_not_shown(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """With a 60-minute look-back, a deployment 3 hours before the first alert is not shown;
    the CI still is."""
    desk = await _desk(start_warden, arm, deployments={"lookback_minutes": 60})
    _, name = await _incident_on(desk, ("infra-old", 180))
    await desk.settled()
    card = str(desk.card())
    assert "before the first alert" not in card
    assert name in card


async def test_card_arm_down_then_up_deployment_appears(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """ARM deployments down when the card is posted: the read waits in the outbox and the
    card shows no deployment; once ARM answers the read is retried and the card shows it."""
    desk = await _desk(start_warden, arm)

    def arm_down(resource_id: str) -> None:
        group = resource_id.split("/providers/")[0]
        path = f"{group}/providers/Microsoft.Resources"
        arm.add_fault(Fault(status=503, times=None, path=path))

    await _incident_on(desk, ("webapp-release-7", 30), before_post=arm_down)

    async def read_failed() -> bool:
        jobs = await outbox.list_jobs(desk.store, outbox.PENDING)
        return any(j.kind == deployments_store.DEPLOYMENTS_JOB and j.attempts >= 1 for j in jobs)

    await desk.warden.client.app[WORKER].wait_until(read_failed)
    assert "before the first alert" not in str(desk.card())
    arm.clear_faults()
    await desk.settled()
    assert "Deployed webapp-release-7 30 minutes before the first alert" in str(desk.card())


async def test_deployments_incident_gone_from_sentinel_nothing_in_the_dlq(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """An incident Sentinel no longer has (deleted there): its deployments are not read, the
    card stays as it is, and nothing waits in the dead-letter queue."""
    desk = await _desk(start_warden, arm)
    made = desk.arm.create_incident({"title": "Deleted before Warden asked", "severity": "High"})
    desk.arm.workspace().incidents.pop(str(made["name"]).lower())
    assert (await desk.warden.webhook(made)).status == 202
    await desk.warden.connector.wait_for(
        lambda s: desk.warden.card_posts(desk.conversation) or None
    )
    await desk.settled()
    counts = await outbox.counts(desk.store)
    assert not any(counts.get(status) for status in outbox.DLQ), counts
