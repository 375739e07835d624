"""Pull as well as push: Warden polls the ARM sandbox and the cards follow Sentinel."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.arm import DEFAULT_SCOPE, ArmSandbox
from tests.integration.conftest import Warden, WardenFactory

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _polling(arm: ArmSandbox) -> dict[str, Any]:
    scope = DEFAULT_SCOPE
    return {
        "sentinel_workspaces": f"{scope.subscription}/{scope.resource_group}/{scope.workspace}",
        "sentinel_poll_seconds": 0.2,
        "sentinel_reconcile_enabled": False,  # polling alone (test_sentinel_reconcile.py)
        "arm_endpoint": arm.url,
        "arm_ca_bundle": arm.ca_path,
        "azure_tenant_id": arm.tenant_id,
        "azure_client_id": arm.client_id,
        "azure_client_secret": arm.client_secret,
        "azure_authority_host": arm.authority,
    }


def _titles(warden: Warden, conversation: str) -> list[str]:
    return [
        str(r.body["attachments"][0]["content"]["body"][1]["inlines"][0]["text"])
        for r in warden.card_posts(conversation)
    ]


async def test_poll_new_incidents_posted_then_portal_change_updates_card(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Incidents found by polling are posted once; a change in the portal updates the card."""
    warden = await start_warden(**_polling(arm))
    conversation = await warden.subscribed_channel()
    made = [arm.create_incident({"title": f"Polled incident {n}"}) for n in range(3)]
    await warden.connector.wait_for(lambda s: len(warden.card_posts(conversation)) >= 3)
    assert sorted(t.split(" · ")[1] for t in _titles(warden, conversation)) == [
        f"Polled incident {n}" for n in range(3)
    ]
    scrape = await (await warden.client.get("/metrics")).text()
    lag = [line for line in scrape.splitlines() if line.startswith("warden_sync_last_success")]
    assert lag and float(lag[0].split()[-1]) > 0, "the poll's last success is exported"
    arm.portal_update(made[0]["name"], status="Active", severity="Low")
    updates = await warden.connector.wait_for(lambda s: s.updates(conversation, successful=True))
    assert "LOW" in str(updates[-1].body)
    assert len(warden.card_posts(conversation)) == 3


async def test_poll_restart_resumes_from_checkpoint_no_repost(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """After a restart the poller resumes from its checkpoint and posts nothing twice."""
    first = await start_warden(**_polling(arm))
    conversation = await first.subscribed_channel()
    arm.create_incident({"title": "Before the restart"})
    await first.connector.wait_for(lambda s: first.card_posts(conversation))
    await first.client.close()
    second = await start_warden(**_polling(arm))
    arm.create_incident({"title": "After the restart"})
    await second.connector.wait_for(lambda s: len(second.card_posts(conversation)) >= 2)
    polls = arm.calls("Incidents_List")
    assert polls and all(
        r.query.get("$filter", "").startswith("properties/lastModifiedTimeUtc ge ") for r in polls
    )
    assert r_orders(polls) == {"properties/lastModifiedTimeUtc asc"}
    assert len(second.card_posts(conversation)) == 2


def r_orders(records: list[Any]) -> set[str]:
    """The ``$orderby`` values the poller sent."""
    return {r.query.get("$orderby", "") for r in records}
