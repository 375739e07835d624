"""Defender XDR's feature flag (``WARDEN_CONNECTORS__DEFENDER__ENABLED``): switched off it
polls nothing and says so; it runs on its own when Sentinel's flag is off.
"""

from __future__ import annotations

import pytest

from cards.verbs import CardVerb
from connectors import registry
from core.settings.connectors import ConnectorFlag, ConnectorFlags
from sandbox.arm import ArmSandbox
from sandbox.graph import GraphSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.test_connector_flags import _facts
from tests.integration.test_defender_incidents import _DefenderDesk, _settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _off(name: str) -> ConnectorFlags:
    return ConnectorFlags(**{name: ConnectorFlag(enabled=False)})


async def test_defender_switched_off_polls_nothing_and_subscribe_names_the_flag(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> None:
    """Configured but switched off: `subscribe incidents from defender` names the flag, the
    subscription is not made, `status` and /readyz show it off, Graph is never asked."""
    settings = _settings(arm, defender_graph, sentinel_poll=False)
    warden = await start_warden(**settings, connectors=_off("defender"))
    conversation = "19:soc@thread.tacv2"
    await warden.install(conversation)
    card = await warden.say(conversation, "subscribe incidents from sentinel and defender")
    assert "WARDEN_CONNECTORS__DEFENDER__ENABLED=true" in str(card)
    status = _facts(await warden.say(conversation, "status"))
    assert status["Subscription"] == "Not subscribed"
    version = registry.BY_NAME["defender"].version
    assert status["Microsoft Defender XDR"] == f"off · v{version}"
    ready = await (await warden.client.get("/readyz")).json()
    assert ready["checks"]["connectors"]["defender"]["state"] == "off"
    assert ready["checks"]["connectors"]["sentinel"]["state"] == "on"
    assert defender_graph.calls("ListIncidents") == []


async def test_defender_runs_and_triages_with_sentinel_switched_off(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> None:
    """Sentinel's flag off, Defender's on: Defender incidents are polled, posted and triaged
    from the card; `subscribe incidents` (Sentinel's) says Sentinel is off."""
    warden = await start_warden(
        **_settings(arm, defender_graph, sentinel_poll=False), connectors=_off("sentinel")
    )
    conversation = await warden.subscribed_channel("sentinel-only")
    refused = await warden.say(conversation, "subscribe incidents")
    assert "WARDEN_CONNECTORS__SENTINEL__ENABLED=true" in str(refused)
    await warden.say(conversation, "subscribe incidents from defender")
    made = defender_graph.security.add_incident(
        {"displayName": "Suspicious sign-in", "severity": "high"}
    )
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
    desk = _DefenderDesk(warden, arm, conversation, made["id"])
    await desk.settled()
    await desk.click(CardVerb.STATUS, {"status": "Active"})
    await desk.settled()
    assert defender_graph.security.incidents[made["id"]].resource["status"] == "inProgress"
    assert [c for c in arm.calls() if c.operation.startswith("Incident")] == []  # Sentinel: none
