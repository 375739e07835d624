"""Defender XDR as a second incident source: polled through Graph security, one card per
incident even when Sentinel reports it too, triaged from the card with attribution.

The real app polls the ARM sandbox (Sentinel) and the Graph sandbox (Defender XDR) and posts
through the Connector sandbox; the assertions read those sandboxes' request logs and state.
"""

from __future__ import annotations

from typing import Any

import pytest

from app import STORE, WORKER
from cards.verbs import CardVerb
from core.store import deployments as deployments_store
from core.store import outbox
from core.store.store import Store
from sandbox.arm import DEFAULT_SCOPE, ArmSandbox
from sandbox.graph import GraphSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.triage_support import Desk

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _settings(
    arm: ArmSandbox, defender_graph: GraphSandbox, *, sentinel_poll: bool
) -> dict[str, Any]:
    scope = DEFAULT_SCOPE
    values: dict[str, Any] = {
        "arm_endpoint": arm.url,
        "arm_ca_bundle": arm.ca_path,
        "graph_endpoint": defender_graph.graph_url,
        "azure_tenant_id": arm.tenant_id,
        "azure_client_id": arm.client_id,
        "azure_client_secret": arm.client_secret,
        "azure_authority_host": arm.authority,
        "defender": {"enabled": True, "poll_seconds": 0.2},
    }
    if sentinel_poll:
        values.update(
            sentinel_workspaces=f"{scope.subscription}/{scope.resource_group}/{scope.workspace}",
            sentinel_poll_seconds=0.2,
            sentinel_reconcile_enabled=False,
        )
    return values


async def _channel(warden: Warden, text: str) -> str:
    conversation = await warden.subscribed_channel()
    await warden.say(conversation, text)
    return conversation


def _xdr_twin(arm: ArmSandbox, incident_id: str, title: str) -> dict[str, Any]:
    """The Sentinel incident Defender XDR's connector raises for ``incident_id``."""
    return arm.create_incident(
        {"title": title, "providerName": "Microsoft XDR", "providerIncidentId": incident_id}
    )


async def test_defender_subscription_polled_incident_posted_with_defender_values(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> None:
    """A conversation subscribed from Defender gets Defender's incidents, polled with alerts."""
    warden = await start_warden(**_settings(arm, defender_graph, sentinel_poll=False))
    conversation = await _channel(warden, "subscribe incidents from defender")
    defender_graph.security.add_incident(
        {"displayName": "Email reported as phish", "status": "inProgress"}
    )
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
    card = str(warden.card_posts(conversation)[0].body)
    assert "Email reported as phish" in card and "Active" in card
    polls = defender_graph.calls("ListIncidents", successful=True)
    assert polls[0].query["$expand"] == "alerts"
    assert polls[0].query["$filter"].startswith("lastUpdateDateTime ge ")


async def test_sentinel_only_subscription_receives_no_defender_incident(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> None:
    """``subscribe incidents`` stays Sentinel's: a Defender-only incident is not posted."""
    warden = await start_warden(**_settings(arm, defender_graph, sentinel_poll=True))
    sentinel_only = await warden.subscribed_channel("sentinel-only")
    both = await _channel(warden, "subscribe incidents from sentinel and defender")
    defender_graph.security.add_incident({"displayName": "Defender only"})
    arm.create_incident({"title": "Sentinel only"})
    await warden.connector.wait_for(lambda s: len(warden.card_posts(both)) >= 2 or None)
    await _idle(warden)
    titles = str([r.body for r in warden.card_posts(sentinel_only)])
    assert "Sentinel only" in titles and "Defender only" not in titles


@pytest.mark.parametrize("sentinel_first", [True, False])
async def test_sentinel_and_defender_same_incident_one_card(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox, sentinel_first: bool
) -> None:
    """The incident both report (Sentinel's carries the XDR id) is one card, in either order."""
    warden = await start_warden(**_settings(arm, defender_graph, sentinel_poll=True))
    conversation = await _channel(warden, "subscribe incidents from sentinel and defender")
    title = "Ransomware on FIN-SRV-02"
    if sentinel_first:
        twin = _xdr_twin(arm, str(defender_graph.security.next_id), title)
        await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
        made = defender_graph.security.add_incident({"displayName": title, "status": "inProgress"})
    else:
        made = defender_graph.security.add_incident({"displayName": title, "status": "inProgress"})
        await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
        twin = _xdr_twin(arm, made["id"], title)
    assert twin["properties"]["providerIncidentId"] == made["id"]
    await warden.connector.wait_for(lambda s: s.updates(conversation, successful=True) or None)
    await _idle(warden)
    posts = warden.card_posts(conversation)
    assert len(posts) == 1, [p.body for p in posts]
    shown = str(warden.connector.updates(conversation, successful=True)[-1].body)
    assert title in shown
    assert ("/security/incidents/" in shown) is not sentinel_first  # the first key keeps the card


async def _idle(warden: Warden) -> None:
    store = warden.client.app[STORE]

    async def idle() -> bool:
        return not await outbox.list_jobs(store, outbox.UNFINISHED)

    await warden.client.app[WORKER].wait_until(idle)


async def test_defender_triage_status_patched_with_attribution_comment(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> None:
    """*Start work* on a Defender card PATCHes inProgress and comments who did it."""
    desk = await _defender_desk(start_warden, arm, defender_graph)
    await desk.click(CardVerb.STATUS, {"status": "Active"})
    await desk.settled()
    stored = defender_graph.security.incidents[desk.name].resource
    assert stored["status"] == "inProgress"
    assert [c["comment"] for c in stored["comments"]] == [
        "Status New \u2192 Active by Adele Vance via Teams"
    ]
    card = str(desk.card())
    assert "Done" in card and "Status New \u2192 Active" in card
    assert "Open in Defender" in card and "Open in Sentinel" not in card


async def test_defender_triage_assign_me_writes_upn_and_close_maps_classification(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> None:
    """*Assign to me* sets assignedTo to the clicker's directory UPN; closing maps the verdict."""
    desk = await _defender_desk(start_warden, arm, defender_graph)
    await desk.click(CardVerb.ASSIGN_ME)
    await desk.settled()
    stored = defender_graph.security.incidents[desk.name].resource
    assert stored["assignedTo"] == "john@contoso.com"  # the directory's UPN of the clicker
    await desk.click(
        CardVerb.CLOSE, {"classification": "FalsePositive:InaccurateData", "comment": "dup"}
    )
    await desk.settled()
    assert (stored["status"], stored["classification"], stored["determination"]) == (
        "resolved",
        "falsePositive",
        "notEnoughDataToValidate",
    )
    assert stored["resolvingComment"] == "dup"
    comments = [c["comment"] for c in stored["comments"]]
    assert comments[0].startswith("Assigned to john@contoso.com by Adele Vance via Teams")
    assert comments[1].endswith("by Adele Vance via Teams: dup")


async def test_defender_triage_forbidden_shows_refusal_on_card_not_retried(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> None:
    """A 403 from Graph is shown on the card as not applied, and the PATCH is sent once."""
    desk = await _defender_desk(start_warden, arm, defender_graph)
    defender_graph.security.incidents[desk.name].read_only = True
    await desk.click(CardVerb.STATUS, {"status": "Active"})
    await desk.settled()
    assert [c.status for c in defender_graph.calls("UpdateIncident")] == [403]
    card = str(desk.card())
    assert "did not let Warden update this incident" in card
    assert defender_graph.security.incidents[desk.name].resource["status"] == "active"


class _DefenderDesk(Desk):
    """A desk whose incident lives in the Graph sandbox (Defender XDR)."""

    def __init__(self, warden: Warden, arm: ArmSandbox, conversation: str, name: str) -> None:
        super().__init__(warden, arm, conversation, name)

    @property
    def key(self) -> str:
        return f"/security/incidents/{self.name}"


async def _defender_desk(
    start_warden: WardenFactory, arm: ArmSandbox, defender_graph: GraphSandbox
) -> _DefenderDesk:
    warden = await start_warden(**_settings(arm, defender_graph, sentinel_poll=False))
    conversation = await _channel(warden, "subscribe incidents from defender")
    made = defender_graph.security.add_incident(
        {"displayName": "Suspicious sign-in", "severity": "high"}
    )
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
    desk = _DefenderDesk(warden, arm, conversation, made["id"])
    await desk.settled()
    return desk


async def test_defender_card_shows_deployment_once_sentinel_twin_arrives(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    defender_graph: GraphSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defender XDR reports first (its key keeps the card, and Defender names no Azure
    resource); Sentinel's twin then names a resource deployed 12 minutes before the first
    alert: the one card shows that deployment. The twin's read is asked for once: when the
    twin reports again, the card's job sees it was asked for and writes nothing."""
    asked: list[str | None] = []
    ask = deployments_store.ask_incident

    async def counted(store: Store, incident_key: str, read_key: str | None = None) -> bool:
        asked.append(read_key)
        return await ask(store, incident_key, read_key)

    monkeypatch.setattr(deployments_store, "ask_incident", counted)
    warden = await start_warden(**_settings(arm, defender_graph, sentinel_poll=True))
    conversation = await _channel(warden, "subscribe incidents from sentinel and defender")
    title = "Web shell on FIN-APP-01"
    made = defender_graph.security.add_incident({"displayName": title, "status": "active"})
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
    await _idle(warden)
    twin = _xdr_twin(arm, made["id"], title)
    group = f"/subscriptions/{DEFAULT_SCOPE.subscription}/resourceGroups/rg-fin"
    resource = f"{group}/providers/Microsoft.Web/sites/fin-app-01"
    arm.deploy_before_incident(twin["name"], "webapp-release-42", 12, resource)
    note = "Deployed webapp-release-42 12 minutes before the first alert"
    await warden.connector.wait_for(
        lambda s: (
            any(note in str(u.body) for u in s.updates(conversation, successful=True)) or None
        ),
        timeout=20,
    )
    await _idle(warden)
    posts = warden.card_posts(conversation)
    assert len(posts) == 1, [p.body for p in posts]
    shown = str(warden.connector.updates(conversation, successful=True)[-1].body)
    assert "/security/incidents/" in shown and note in shown
    twin_key = str(twin["id"]).lower()
    assert asked.count(twin_key) == 1
    shown_before = len(warden.connector.updates(conversation, successful=True))
    arm.portal_update(str(twin["name"]), severity="Low")  # the twin reports again
    await warden.connector.wait_for(
        lambda s: len(s.updates(conversation, successful=True)) > shown_before or None,
        timeout=20,
    )
    await _idle(warden)
    assert asked.count(twin_key) == 1
